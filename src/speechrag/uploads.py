"""Adding documents from the browser (``speechrag serve --allow-upload``) and the
``/add_documents`` endpoint: untrusted files in, a corpus folder and a rebuilt index out.

Each file is checked before it reaches the corpus folder: its size (`UploadLimits.max_bytes`;
Gradio's upload route stops a larger body before storing it), its type by content (`sniff`,
never the name: an executable named ``.pdf`` is refused), and a full read with the ingester's
own `Limits` (the docx decompression cap, page and time bounds), so a file that cannot be read
is reported with its reason instead of being stored. The stored name is made from the given
one by `safe_name`: no folders, no control characters, a bounded length, the suffix of the
type found; `add_documents` then copies it atomically without overwriting another file.

One `Uploader` runs one build at a time: a second upload while a rebuild runs is refused at
once with a message saying so (nothing of it is stored), and ``build_index`` holds the index's
own lock against other processes. The server's `IndexService` picks up the new generation on
its next call, as after any ``speechrag build``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechrag.errors import ConfigError, DocumentError, IndexLockedError, QueryError, one_line
from speechrag.formats import MB, Limits, read_document, sniff
from speechrag.lexical import USERDICT_NAME
from speechrag.serving import IndexService

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 80  # characters of the stem kept: ext4 allows 255 bytes, CJK takes 3 each
SNIFF_BYTES = 64 * 1024
# The suffix a stored file gets from its content; mht is Word's "web page" saved as .doc.
KIND_SUFFIX = {"docx": ".docx", "doc": ".doc", "mht": ".doc", "pdf": ".pdf", "html": ".html", "text": ".txt"}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may hold; ``read`` are the ingester's bounds on reading each file."""

    max_bytes: int = 50 * MB
    max_files: int = 20
    read: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class UploadReport:
    """What an upload did: files stored (given name -> stored name), files refused with the
    reason, the ids of the speeches they brought (or took away, for a removal: ``removed``
    holds source -> where the file was kept), and the build's summary line."""

    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    speeches: tuple[str, ...] = ()
    build: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["added"] = [{"name": n, "stored_as": s} for n, s in self.added]
        d["skipped"] = [{"name": n, "reason": r} for n, r in self.skipped]
        d["removed"] = [{"source": n, "kept_as": k} for n, k in self.removed]
        d["speeches"] = list(self.speeches)
        return d


def safe_name(given: str, suffix: str) -> str:
    """A file name that stays in the corpus folder whatever ``given`` holds: its last path
    part only (either separator), without control or reserved characters, leading dots or
    spaces, at most `MAX_NAME_CHARS` characters, with ``suffix`` (the type found)."""
    base = re.split(r"[/\\]", given or "")[-1]
    stem = base[: base.rfind(".")] if "." in base.lstrip(".") else base
    stem = _UNSAFE.sub("", stem).strip(" .")[:MAX_NAME_CHARS].strip(" .")
    name = f"{stem or 'document'}{suffix}"
    # The keyword index reads a corpus's userdict.txt as its dictionary: never let an upload be it.
    return f"upload-{name}" if name.lower() == USERDICT_NAME else name


def check_file(path: Path, given: str, limits: UploadLimits) -> str:
    """The name to store ``path`` under, or a DocumentError with the reason it is refused."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise DocumentError(f"file is {size / MB:.1f} MB, over the {limits.max_bytes / MB:.0f} MB upload limit")
    with path.open("rb") as fh:
        # A zip's member list is at its end: sniff needs all of it (size is already bounded).
        is_zip = fh.read(4) == b"PK\x03\x04"
        fh.seek(0)
        head = fh.read(limits.max_bytes if is_zip else SNIFF_BYTES)
    suffix = Path(given).suffix.lower()
    kind = sniff(head, suffix)
    keep_md = kind == "text" and suffix == ".md"
    return safe_name(given, ".md" if keep_md else KIND_SUFFIX.get(kind, ".txt"))


REMOVED = ".removed"  # a corpus subfolder; files there end in .removed, so no build reads them


# A rebuild's progress by phase: ``progress(phase, done, total)``, phase one of "reading",
# "embedding" (the passages: once done, the index answers with them) and "sentences" (the
# vectors of the sentences answers quote), as `speechrag build` shows them.
PhaseProgress = Callable[[str, int, int], None]


def _phases(progress: PhaseProgress | None) -> dict[str, Any]:
    if progress is None:
        return {}
    report = progress

    def phase(name: str) -> Callable[[int, int], None]:
        return lambda done, total: report(name, done, total)

    return {"read_progress": phase("reading"), "progress": phase("embedding"),
            "sentence_progress": phase("sentences")}


class Uploader:
    """Checks uploads, stores them in ``corpus`` and rebuilds ``service``'s index, one build
    at a time (see the module docstring); removes a document the same way."""

    def __init__(self, service: IndexService, corpus: Path, *, limits: UploadLimits | None = None) -> None:
        if not corpus.is_dir():
            raise ConfigError(f"uploads need a corpus folder, and {corpus} is not one: pass --corpus DIR")
        self.service, self.corpus = service, corpus
        self.limits = limits or UploadLimits()
        self._building = threading.Lock()

    def add(self, files: Sequence[tuple[str | Path, str]],
            progress: PhaseProgress | None = None) -> UploadReport:
        """Add ``files`` ((path, name as given) pairs) to the corpus and rebuild."""
        if len(files) > self.limits.max_files:
            raise QueryError(f"{len(files)} files at once; send at most {self.limits.max_files}")
        with self._one_build("nothing was added; send the files again"):
            return self._add(files, progress)

    def remove(self, source: str, progress: PhaseProgress | None = None) -> UploadReport:
        """Take the document ``source`` (a speech's source file, as ``/documents`` lists it) out
        of the corpus and rebuild. The file is moved to the corpus's `REMOVED` folder, not
        deleted, so a mistake can be undone by moving it back."""
        with self._one_build("nothing was removed; try again"):
            return self._remove(source, progress)

    @contextlib.contextmanager
    def _one_build(self, then: str) -> Iterator[None]:
        if not self._building.acquire(blocking=False):
            raise IndexLockedError(f"a rebuild is running: {then} when it finishes")
        try:
            yield
        finally:
            self._building.release()

    def _remove(self, source: str, progress: PhaseProgress | None) -> UploadReport:
        from speechrag.index import build_index

        started = time.perf_counter()
        speeches = self.service.speeches()
        gone = tuple(s.id for s in speeches if s.source == source)
        # Only a file the index lists, and only inside the corpus folder: never a path from outside.
        from speechrag.corpus import source_path

        found = source_path(self.corpus, source) if gone else None
        path = found.resolve() if found is not None else self.corpus / source
        if not gone or not path.is_file() or not path.is_relative_to(self.corpus.resolve()):
            raise QueryError(f"no document {source!r} in the corpus: see /documents for the source files")
        if {s.source for s in speeches} == {source}:
            raise QueryError("that is the last document: add another before removing it")
        kept = self.corpus / REMOVED / f"{time.strftime('%Y%m%dT%H%M%S')}-{path.name}{REMOVED}"
        kept.parent.mkdir(exist_ok=True)
        path.rename(kept)
        summary = build_index(self.corpus, self.service.searcher.location, **_phases(progress))
        log.info("removed %s (kept as %s); %s", source, kept, summary)
        build = f"索引已更新 · index rebuilt: {summary.speeches} speeches, {summary.passages} passages"
        return UploadReport(removed=((source, str(kept.relative_to(self.corpus))),), speeches=gone, build=build,
                            seconds=time.perf_counter() - started)

    def _add(self, files: Sequence[tuple[str | Path, str]],
             progress: PhaseProgress | None) -> UploadReport:
        from speechrag.addfiles import add_documents
        from speechrag.index import build_index

        started = time.perf_counter()
        skipped: list[tuple[str, str]] = []
        with tempfile.TemporaryDirectory(prefix="speechrag-upload-") as tmp:
            staged: dict[Path, str] = {}
            for n, (path, given) in enumerate(files):
                try:
                    # A folder each: two uploads may clean to the same name (add_documents renames).
                    dest = Path(tmp) / str(n) / check_file(Path(path), given, self.limits)
                    dest.parent.mkdir()
                    shutil.copyfile(path, dest)
                    read_document(dest, limits=self.limits.read)  # readable as the build will read it
                    staged[dest] = given
                except (DocumentError, OSError) as exc:
                    skipped.append((given, one_line(exc)))
            results = add_documents(list(staged), self.corpus)
        added = [(staged[Path(r.source)], Path(r.dest).name) for r in results if r.status in ("added", "renamed")]
        skipped += [(staged[Path(r.source)], "the same file is already in the corpus")
                    for r in results if r.status == "unchanged"]
        if not added:
            return UploadReport(skipped=tuple(skipped), seconds=time.perf_counter() - started)
        summary = build_index(self.corpus, self.service.searcher.location, **_phases(progress))
        stored = {name for _, name in added}
        speeches = tuple(s.id for s in self.service.speeches() if Path(s.source).name in stored)
        log.info("upload: %d file(s) added, %d skipped; %s", len(added), len(skipped), summary)
        # Without the index's path: the page's users need not learn the server's folders.
        build = (f"索引已更新 · index rebuilt: {summary.speeches} speeches, {summary.passages} passages "
                 f"({summary.embedded} newly embedded) in {summary.seconds:.1f}s")
        return UploadReport(added=tuple(added), skipped=tuple(skipped), speeches=speeches, build=build,
                            seconds=time.perf_counter() - started)
