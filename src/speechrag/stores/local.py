"""The local store: one generation folder of FAISS + bm25s + passages + speeches.

Files of a generation (storage.py handles the folder around them)::

    manifest.json    format, versions, encoder, counts, fingerprints, settings, sha256 of every file
    passages.jsonl   one Passage per line; line i is FAISS row i and keyword row i
    speeches.jsonl   one Speech per line, in corpus order
    dense.faiss      the FAISS index (flat or HNSW, inner product on unit vectors = cosine)
    keyword/         bm25s files (+ userdict.txt if one was used)
    sentences/       every quotable sentence's vector, by text (`speechrag.sentencevectors`);
                     absent from generations built with precomputed vectors

FAISS row number = passage position, so no id-mapping table is needed.
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechrag import storage
from speechrag.errors import EncoderMismatchError, IndexCorruptError, IndexLoadError
from speechrag.lexical import KeywordIndex, available_cores
from speechrag.passage import Passage, Speech
from speechrag.sentencevectors import FOLDER, SentenceVectors
from speechrag.stores.base import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, Filter, HeldWriter, versions

log = logging.getLogger(__name__)

FORMAT = 2
PASSAGES = "passages.jsonl"
SPEECHES = "speeches.jsonl"
DENSE = "dense.faiss"
KEYWORD = "keyword"
SENTENCES = FOLDER
_SEP = "\x00"  # between passages in the text document_frequency searches

DENSE_KINDS = ("flat", "hnsw")


def dense_spec(kind: str) -> dict[str, Any]:
    """The manifest's description of a dense index kind (changing a parameter marks it stale)."""
    if kind == "flat":
        return {"kind": "flat"}
    if kind == "hnsw":
        return {"kind": "hnsw", "M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}
    raise IndexLoadError(f"unknown dense index kind {kind!r}; choose one of {', '.join(DENSE_KINDS)}")


# OpenMP's thread count belongs to the calling thread, so it is set right before each use: a
# search answers one query and OpenMP threads only add contention (a 10k flat search measured
# 48 ms on 2 threads of a busy machine, 1.3 ms on one); a build should use every core.


def faiss_threads(n: int) -> None:
    import faiss

    faiss.omp_set_num_threads(max(1, n))


def build_dense(vectors: np.ndarray, kind: str, threads: int | None = None) -> Any:
    """A FAISS index over unit ``vectors`` (inner product = cosine), built on every core."""
    import faiss

    faiss_threads(threads or available_cores())
    spec = dense_spec(kind)
    dim = vectors.shape[1]
    idx: Any
    if kind == "hnsw":
        idx = faiss.IndexHNSWFlat(dim, spec["M"], faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = spec["efConstruction"]
        idx.hnsw.efSearch = spec["efSearch"]
    else:
        idx = faiss.IndexFlatIP(dim)
    idx.add(vectors)
    return idx


class LocalStore:
    """A loaded, verified generation (implements `speechrag.stores.base.Store`)."""

    def __init__(
        self,
        root: Path,
        directory: Path,
        manifest: dict[str, Any],
        passages: tuple[Passage, ...],
        speeches: tuple[Speech, ...],
        dense: Any,
        keyword: KeywordIndex,
        *,
        search_threads: int = 1,
        sentences: SentenceVectors | None = None,
    ) -> None:
        self.root = root
        self.directory = directory
        self._manifest = manifest
        self.all_passages = passages
        self._speeches = speeches
        self.dense = dense
        self.keyword = keyword
        self.search_threads = search_threads
        self.sentences = sentences
        order = {s.id: i for i, s in enumerate(speeches)}
        # Speech position of every row, so a Filter becomes a boolean mask in one numpy step.
        self._row_speech = np.fromiter((order[p.speech_id] for p in passages), np.int32, count=len(passages))
        self._by_id: dict[str, int] | None = None
        self._lowered: tuple[str, list[int]] | None = None
        # Rows [start, end) of each speech: ingestion writes a speech's passages together.
        self._ranges: dict[str, tuple[int, int]] = {}
        for row, p in enumerate(passages):
            start, _ = self._ranges.get(p.speech_id, (row, row))
            self._ranges[p.speech_id] = (start, row + 1)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r}, generation={self.generation!r}, passages={self.size})"

    # --- Store protocol ------------------------------------------------------------------

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def manifest(self) -> Mapping[str, Any]:
        return self._manifest

    @property
    def generation(self) -> str:
        return str(self._manifest["generation"])

    @property
    def size(self) -> int:
        return len(self.all_passages)

    @property
    def speeches(self) -> tuple[Speech, ...]:
        return self._speeches

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return [self.all_passages[int(r)] for r in rows]

    def passages_by_id(self, ids: Sequence[str]) -> dict[str, Passage]:
        by_id = self._ids()
        return {i: self.all_passages[by_id[i]] for i in ids if i in by_id}

    def passages_of(self, speech_id: str) -> list[Passage]:
        start, end = self._ranges.get(speech_id, (0, 0))
        return list(self.all_passages[start:end])

    def _ids(self) -> dict[str, int]:
        if self._by_id is None:
            with self._lock:
                if self._by_id is None:
                    self._by_id = {p.id: i for i, p in enumerate(self.all_passages)}
        return self._by_id

    def _mask(self, where: Filter | None) -> np.ndarray | None:
        if where is None or where.empty:
            return None
        allowed = np.fromiter((where.allows(s) for s in self._speeches), bool, count=len(self._speeches))
        return allowed[self._row_speech]

    def search_dense(
        self, vector: np.ndarray, k: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        vec = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        if vec.shape[1] != self.dense.d:
            raise EncoderMismatchError(
                f"query vector has dimension {vec.shape[1]} but index {self.root} has {self.dense.d}; "
                f"encode queries with {self._manifest['encoder']['name']!r}"
            )
        mask = self._mask(where)
        # A filter is applied after the search, so a filtered search ranks every row.
        depth = min(int(self.dense.ntotal) if mask is not None else k, int(self.dense.ntotal))
        if depth <= 0 or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        faiss_threads(self.search_threads)
        scores, rows = self.dense.search(vec, depth)
        keep = rows[0] >= 0  # approximate indexes pad with -1 when they find fewer than asked
        rows, scores = rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)
        if mask is not None:
            allowed = mask[rows]
            rows, scores = rows[allowed][:k], scores[allowed][:k]
        return rows, scores

    def search_keyword(
        self, query: str, k: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        mask = self._mask(where)
        depth = self.size if mask is not None else k
        rows, scores = self.keyword.search(query, depth)
        rows, scores = np.asarray(rows, np.int64), np.asarray(scores, np.float32)
        if mask is not None:
            allowed = mask[rows]
            rows, scores = rows[allowed][:k], scores[allowed][:k]
        return rows, scores

    def tokenize(self, text: str) -> list[str]:
        return self.keyword.tokenize(text)

    def document_frequency(self, term: str) -> int:
        if not term:
            return self.size
        if _SEP in term:  # it could match across two passages in the joined text
            return sum(term in p.text.lower() for p in self.all_passages)
        text, starts = self._joined_lowercase()
        # One C-level find per passage that holds the term, then on from the next passage's
        # start: lower-casing every passage per new term cost ~3 ms per English question at 78
        # passages, and grows with the corpus.
        found, pos = 0, text.find(term)
        while pos >= 0:
            found += 1
            row = bisect.bisect_right(starts, pos)  # the passage after the one holding the match
            if row >= len(starts):
                break
            pos = text.find(term, starts[row])
        return found

    def _joined_lowercase(self) -> tuple[str, list[int]]:
        """Every passage's text in lower case, joined by a separator no term holds, and where
        each passage starts. Built on first use, once: racing threads build equal copies."""
        if self._lowered is None:
            parts = [p.text.lower() for p in self.all_passages]
            starts, at = [], 0
            for part in parts:
                starts.append(at)
                at += len(part) + len(_SEP)
            self._lowered = (_SEP.join(parts), starts)
        return self._lowered

    def warm_up(self) -> None:
        """Build the structures first use would (`Searcher.warm_up`): the joined text behind
        `document_frequency` (~50 ms at 7,000 passages, linear in the corpus; every answer's
        coverage test asks) and the id map of near-twins' lookups."""
        self._joined_lowercase()
        self._ids()

    def sentence_vectors(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if self.sentences is None:
            dim = int(self._manifest["encoder"]["dim"])
            return np.zeros((len(sentences), dim), np.float32), np.zeros(len(sentences), bool)
        return self.sentences.lookup(sentences)

    def is_current(self) -> bool:
        return storage.current_generation(self.root) in (None, self.generation)

    def close(self) -> None:
        """Nothing is held open: FAISS and bm25s read their files whole at load."""


# --- loading -----------------------------------------------------------------------------


def open_local(path: str | Path, *, search_threads: int = 1) -> LocalStore:
    """Load and verify the live generation of the index folder at ``path``.

    Damage raises IndexCorruptError, a missing or unusable index IndexLoadError; every message
    names the command that fixes it.
    """
    root = Path(path)
    for attempt in range(3):
        gen = storage.resolve(root)
        try:
            return _load(root, gen, search_threads)
        except IndexCorruptError:
            # A build may have published a new generation and deleted ours mid-read.
            if attempt < 2 and gen != root and storage.resolve_quietly(root) not in (None, gen):
                log.info("index %s changed while loading; retrying", root)
                continue
            raise
    raise AssertionError("unreachable")


def _load(root: Path, gen: Path, search_threads: int) -> LocalStore:
    import faiss

    hint = storage.rebuild_hint(root)
    manifest = storage.read_manifest(gen, root, FORMAT)
    try:
        n = int(manifest["passages"])
        dim = int(manifest["encoder"]["dim"])
        storage.verify(gen, root, manifest)
        # Every file is now exactly what the build wrote (generations are never modified); the
        # except below is belt and braces.
        with (gen / PASSAGES).open(encoding="utf-8") as f:
            passages = tuple(Passage.from_dict(json.loads(line)) for line in f)
        with (gen / SPEECHES).open(encoding="utf-8") as f:
            speeches = tuple(Speech.from_dict(json.loads(line)) for line in f)
        dense = faiss.read_index(str(gen / DENSE))
        keyword = KeywordIndex.load(gen / KEYWORD)
        sentences = SentenceVectors.load(gen / SENTENCES) if (gen / SENTENCES).is_dir() else None
        store = LocalStore(root, gen, manifest, passages, speeches, dense, keyword, search_threads=search_threads,
                           sentences=sentences)
    except IndexLoadError:
        raise
    except Exception as exc:
        raise IndexCorruptError(
            f"index {gen} cannot be read ({type(exc).__name__}: {str(exc)[:120]}); {hint}"
        ) from None
    if sentences is not None and sentences.dim != dim:
        raise IndexCorruptError(f"index {gen} has {sentences.dim}-dimensional sentence vectors, not {dim}; {hint}")
    if not (len(passages) == n == dense.ntotal == keyword.size) or dense.d != dim:
        raise IndexCorruptError(
            f"index {gen} is inconsistent ({len(passages)} passages, {dense.ntotal} vectors, "
            f"{keyword.size} keyword rows, manifest says {n}); {hint}"
        )
    return store


# --- writing -----------------------------------------------------------------------------


def write_generation(
    root: Path,
    passages: Sequence[Passage],
    speeches: Sequence[Speech],
    vectors: np.ndarray,
    keyword: KeywordIndex,
    fields: Mapping[str, Any],
    sentences: SentenceVectors | None = None,
) -> str:
    """Write a complete generation beside the live one and return its name; `storage.publish`
    makes it live."""
    import faiss

    tmp = storage.start_generation(root, storage.new_generation_name())
    # Everything is written straight to its file: at a million passages a serialised copy of the
    # FAISS index or of passages.jsonl held in memory would each add gigabytes to the peak.
    with (tmp / PASSAGES).open("w", encoding="utf-8", newline="\n") as out:
        for p in passages:
            out.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
    with (tmp / SPEECHES).open("w", encoding="utf-8", newline="\n") as out:
        for s in speeches:
            out.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
    faiss.write_index(build_dense(vectors, fields["dense"]["kind"]), str(tmp / DENSE))
    keyword.save(tmp / KEYWORD)
    if sentences is not None:
        sentences.save(tmp / SENTENCES)
    return storage.finish_generation(tmp, {"format": FORMAT, **fields}).name


class LocalWriter(HeldWriter):
    """A new folder generation (`StoreWriter`): `publish` writes it beside the live one, makes it
    live (`storage.publish`, the one atomic step) and removes what is no longer live. ``keyword``
    is its keyword index (built for these passages, or the live one reused). Nothing is written
    before `publish`; a killed write is the next build's leftover."""

    def __init__(self, root: Path, keyword: KeywordIndex) -> None:
        super().__init__()
        self.root = root
        self.keyword = keyword

    def publish(self, manifest: Mapping[str, Any]) -> str:
        passages, speeches, vectors, sentences = self.held()
        fields = {**manifest, "passages": len(passages), "speeches": len(speeches), "versions": versions()}
        name = write_generation(self.root, passages, speeches, vectors, self.keyword, fields, sentences)
        storage.publish(self.root, name)
        storage.cleanup(self.root, name)
        return name


def copy_generation(root: Path, directory: Path, manifest: Mapping[str, Any], fields: Mapping[str, Any],
                    sentences: SentenceVectors | None = None) -> str:
    """A new generation with the same files as the one in ``directory`` (whose ``manifest`` the
    caller has read, and its files verified or just written) and an updated manifest (e.g. a new
    calibration), and with ``sentences`` in place of its sentence vectors if given: files are
    hard-linked where the file system allows, else copied."""
    import os
    import shutil

    tmp = storage.start_generation(root, storage.new_generation_name())
    for name in manifest["files"]:
        if sentences is not None and name.startswith(f"{SENTENCES}/"):
            continue
        src, dst = directory / name, tmp / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    if sentences is not None:
        sentences.save(tmp / SENTENCES)
    keep = {k: v for k, v in manifest.items() if k not in ("generation", "created", "files")}
    return storage.finish_generation(tmp, {**keep, **fields}).name
