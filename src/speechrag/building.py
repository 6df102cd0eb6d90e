"""What a build needs whatever store it writes to: the corpus read, the fingerprints that say
whether an index is stale, and the `BuildSummary` it returns (what any store's writer checks and records,
`check_vectors` and `versions`, is in `stores.base`). `index.build_index` (a folder) and `stores.milvus` (a Milvus
location) both build from these, so neither repeats the other's rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from speechrag import storage
from speechrag.corpus import corpus_files, read_corpus, source_name, source_path
from speechrag.errors import CorpusError
from speechrag.lexical import USERDICT_NAME
from speechrag.passage import CorpusReport, Passage, SkippedFile
from speechrag.progress import Progress
from speechrag.stores.base import version

# The files whose rules shape ingestion output: a change in any of them marks every index stale.
_INGEST_FILES = ("corpus.py", "structure.py", "header.py", "dates.py", "people.py", "text.py", "passage.py",
                 "boilerplate.py", "boilerplate.toml")
_INGEST_DIRS = ("formats",)


# --- fingerprints ------------------------------------------------------------------------


def corpus_fingerprint(passages: Sequence[Passage]) -> str:
    """Hash of every passage's text and metadata, so a change in ingestion rules (not just in
    the corpus files) also marks the index stale."""
    h = hashlib.sha256()
    for p in passages:
        h.update(storage.canonical(p.to_dict()) + b"\n")
    return h.hexdigest()


def ingest_fingerprint() -> str:
    """Hash of the ingestion code and rules, and the versions of the libraries they use."""
    h = hashlib.sha256()
    pkg = resources.files("speechrag")
    names = [n for n in _INGEST_FILES if pkg.joinpath(n).is_file()]
    for d in _INGEST_DIRS:
        if pkg.joinpath(d).is_dir():
            names += sorted(f"{d}/{f.name}" for f in pkg.joinpath(d).iterdir() if f.name.endswith(".py"))
    for name in names:
        h.update(name.encode() + b"\0" + pkg.joinpath(name).read_bytes() + b"\0")
    for lib in ("jieba", "rjieba", "numpy", "cn2an"):  # jieba's dict.txt (place words); jieba-rs cuts; cn2an: twins
        h.update(f"{lib}-{version(lib)}\0".encode())
    return h.hexdigest()[:16]


def source_files(corpus: Path) -> dict[str, dict[str, Any]]:
    """Size and mtime of every corpus file (and the user dictionary), by path relative to the
    corpus root; sha256 is added by `with_hashes` where it is needed."""
    root, files = corpus_files(corpus)
    userdict = root / USERDICT_NAME
    out = {}
    for f in [*files, *([userdict] if userdict.is_file() else [])]:
        st = f.stat()
        out[source_name(root, f)] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    return out


def with_hashes(corpus: Path, sources: dict[str, dict[str, Any]],
                known: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``sources`` with each file's sha256: taken from ``known`` when size and mtime match it,
    read from the file otherwise."""
    root = corpus if corpus.is_dir() else corpus.parent
    out = {}
    for rel, info in sources.items():
        old = (known or {}).get(rel)
        if isinstance(old, Mapping) and old.get("bytes") == info["bytes"] and old.get("mtime_ns") == info["mtime_ns"]:
            digest = old.get("sha256")
        else:
            path = root / rel
            digest = storage.file_sha256(path if path.is_file() else source_path(root, rel) or path)
        out[rel] = {**info, "sha256": digest}
    return out



def userdict_for(corpus: Path) -> Path | None:
    path = (corpus if corpus.is_dir() else corpus.parent) / USERDICT_NAME
    return path if path.is_file() else None


# --- the summary -------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("h") else f"{n} {word}s"


@dataclass(frozen=True)
class BuildSummary:
    """What ``build_index`` did."""

    index: str
    generation: str
    encoder: str
    speeches: int
    passages: int
    embedded: int
    cached: int
    seconds: float
    bytes: int
    up_to_date: bool
    # Seconds per step of a build that wrote a generation: embed, keyword, write.
    phases: Mapping[str, float] = field(default_factory=dict)
    keyword_reused: bool = False
    # Settings this build changed from the index's own, e.g. "dense index: hnsw -> flat".
    changes: tuple[str, ...] = ()
    # Corpus files that could not be read, with the reason (the rest were indexed).
    skipped: tuple[SkippedFile, ...] = ()
    # Distinct quotable sentences stored with their vectors, and how many of them were embedded
    # now (the rest came from the cache); 0, 0 when the build was given precomputed vectors.
    sentences: int = 0
    sentences_embedded: int = 0
    # Of those, sentences that are their passage's only one: they took its vector, unembedded.
    sentences_reused: int = 0
    # Seconds from the start until the index answered (its passages published), and whether the
    # sentence vectors are in (False: `index.complete_index` or the next build adds them).
    answerable_seconds: float | None = None
    complete: bool = True

    def __str__(self) -> str:
        size = f"{self.bytes / 1e6:.2f} MB"
        what = f"{_plural(self.speeches, 'speech')}, {_plural(self.passages, 'passage')}"
        if self.up_to_date:
            return (f"{self.index} is up to date: {what}, encoder {self.encoder}, {size} ({self.seconds:.2f}s)"
                    f"{self._skipped()}")
        reused = ", keyword index reused" if self.keyword_reused else ""
        changed = "".join(f"\nchanged {c}" for c in self.changes)
        quoted = (f"; {_plural(self.sentences, 'sentence')}, {self.sentences_embedded} embedded"
                  if self.sentences else "")
        # Both moments once they are apart enough to matter (a second build of seconds is one).
        when = (f"in {self.seconds:.2f}s (answerable after {self.answerable_seconds:.2f}s)"
                if self.complete and self.answerable_seconds is not None
                and self.answerable_seconds < self.seconds - 0.5
                else f"in {self.seconds:.2f}s")
        if not self.complete:
            when += "; sentence vectors not added yet (answers are slower until `speechrag build` adds them)"
        return (f"built {self.index}: {what} ({self.embedded} embedded, {self.cached} cached{reused}{quoted}), "
                f"encoder {self.encoder}, {size} {when}{changed}{self._skipped()}")

    def _skipped(self) -> str:
        return "".join(f"\nskipped {s.source}: {s.reason}" for s in self.skipped)



# --- checks and staleness ----------------------------------------------------------------


def stale_reasons(manifest: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Why an index with ``manifest`` is not the one a build wanting ``wanted`` would make."""
    reasons = []
    if manifest.get("format") != wanted["format"]:
        reasons.append("index format changed")
    if "corpus_fingerprint" in wanted and manifest.get("corpus_fingerprint") != wanted["corpus_fingerprint"]:
        reasons.append("corpus changed")
    if "sources" in wanted and _digests(manifest.get("sources")) != _digests(wanted["sources"]):
        reasons.append("corpus files changed")
    if "ingest" in wanted and manifest.get("ingest") != wanted["ingest"]:
        reasons.append("ingestion rules changed")
    enc = manifest.get("encoder", {})
    if {k: enc.get(k) for k in ("name", "fingerprint")} != wanted["encoder"]:
        reasons.append(f"encoder changed ({enc.get('name')} -> {wanted['encoder']['name']})")
    if manifest.get("dense") != wanted["dense"]:
        reasons.append("dense index kind changed")
    if manifest.get("keyword") != wanted["keyword"]:
        reasons.append("keyword tokenizer changed")
    if wanted.get("sentences") and manifest.get("sentences") != wanted["sentences"]:
        reasons.append("sentence vectors missing or made differently")  # index._SENTENCES_STALE
    return reasons


def _digests(sources: Any) -> dict[str, Any]:
    """Corpus files by content: a file touched but unchanged is the same file."""
    if not isinstance(sources, Mapping):
        return {}
    return {rel: info.get("sha256") for rel, info in sources.items() if isinstance(info, Mapping)}



def skipped_of(manifest: Mapping[str, Any]) -> tuple[SkippedFile, ...]:
    rows = manifest.get("skipped") or []
    return tuple(SkippedFile(str(r[0]), str(r[1])) for r in rows if isinstance(r, list) and len(r) == 2)


def read_source(corpus: Path | CorpusReport, *, strict: bool = False, progress: Progress | None = None,
          ocr_progress: Progress | None = None) -> CorpusReport:
    if isinstance(corpus, CorpusReport):
        return corpus
    report = read_corpus(corpus, strict=strict, progress=progress, ocr_progress=ocr_progress)
    if not report.passages:
        raise CorpusError(f"corpus {corpus} has no passages to index; add speeches to it")
    return report
