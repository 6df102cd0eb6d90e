"""A `Store` in Milvus: one collection per generation, an alias naming the live one.

Where things live, for an index called ``NAME`` (default ``speechrag``) at ``URI``::

    URI                 ``x.db`` -> Milvus Lite embedded in this process (a data directory);
                        ``http(s)://host:port`` -> a Milvus server (token from the caller)
    NAME                alias -> the live generation's collection (switched in one call)
    NAME_g<stamp>_<hex> a generation: one row per passage, primary key ``id`` = row 0..n-1;
                        passage fields, speech metadata for `Filter` (speaker, place, year),
                        ``dense`` (FLOAT_VECTOR, IP on unit vectors = cosine) and ``sparse``
                        (BM25 function output of ``text``, jieba-rs analyzer)
    NAME_g..._meta      its side collection: row 0 the manifest, row i+1 speech i, as JSON
    NAME_g..._sent      the vector of every sentence answers may quote, primary key the first
                        8 bytes of its sha256 (`speechrag.sentencevectors`); absent when the
                        build was given precomputed vectors
    x.db.lock           (Lite) held by a running build; for a server a lock file in the
                        local folder (`local_dir`)
    x.db.cache/         (Lite) embedding cache, one .npz per encoder fingerprint; for a server
                        under `local_dir`

Why a side collection for speeches and the manifest: Lite drops a collection's description,
a server keeps properties in its metadata store (etcd, ~1.5 MB a request), and the speeches of
10^8 passages (~10^6 speeches, ~300 MB of JSON) fit neither. A collection pages and scales,
and dies with its generation. Milvus refuses a collection without a vector field, so it carries
a 2-dim dummy vector.

`publish_milvus` writes a new generation, flushes, loads, checks counts and probes it, then
points the alias at it (``create_alias`` the first time, ``alter_alias`` after) and drops the
old one. A build killed at any point leaves the alias where it was; the next build drops every
collection of this index that the alias does not name. `open_milvus` reads the alias once: a
`MilvusStore` stays on its generation (rows are stable) until the caller sees `is_current()`
go False and opens again.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

import numpy as np

from speechrag.encoders import Encoder, check_encoder, get_encoder
from speechrag.errors import (
    EncoderMismatchError,
    IndexCorruptError,
    IndexLoadError,
    IndexLockedError,
    QueryError,
)
from speechrag.lexical import STOPWORDS, Tokenizer
from speechrag.passage import Passage, Speech
from speechrag.sentencevectors import SentenceVectors, sentence_keys
from speechrag.stores.base import Filter, check_vectors, versions
from speechrag.text import place_variants

log = logging.getLogger(__name__)

__all__ = [
    "MilvusStore",
    "MilvusTarget",
    "check_encoder",
    "filter_expression",
    "live_manifest",
    "open_milvus",
    "parse_uri",
    "publish_milvus",
    "quote",
    "release_lite",
]

FORMAT = 1
DEFAULT_NAME = "speechrag"
INDEX_TYPES = ("HNSW", "FLAT", "IVF_FLAT", "IVF_PQ", "DISKANN")
# Lite 3.2.2 cannot build these: create_index on inserted rows fails ("reserved for a future
# phase" / "unknown index_type"); declared on an empty collection they were seen reported
# "Finished" and never built. Refused up front on Lite.
SERVER_ONLY = frozenset({"IVF_PQ", "DISKANN"})
# The local store's HNSW settings (index.py), so the two engines answer alike.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 600
IVF_NPROBE = 32
PQ_DIMS_PER_CODE = 8  # 384 dims -> m = 48 sub-quantisers of 8 bits: 48 bytes a vector
DISKANN_SEARCH_LIST = 200
MAX_TOPK = 16384  # Milvus refuses a larger limit
NO_YEAR = -(2**31)  # year of a speech without a date: below every range a Filter can give
INSERT_BATCH = 1000
QUERY_BATCH = 1000
VARCHAR_MAX = 65535  # bytes
DF_CACHE = 100_000  # document frequencies kept per store
META_DIM = 2
CURRENT_POLL_SECONDS = 1.0  # how often is_current() reads the alias (two RPCs)

ANALYZER: dict[str, Any] = {
    # jieba search mode: Milvus's "jieba" tokenizer is jieba-rs (its own build), the library
    # lexical.Tokenizer cuts with; lexical.Cutter also splits runs such as COVID-19 as jieba 0.42
    # did, which a recent jieba-rs keeps whole. The filters drop punctuation and the same stop words, so
    # `MilvusStore.tokenize` (lexical.Tokenizer) matches what was indexed on a server. Lite ignores
    # the string filters ("lowercase", "cnalphanumonly") but applies "stop", and lower-cases anyway.
    "tokenizer": {"type": "jieba", "mode": "search"},
    "filter": ["lowercase", "cnalphanumonly", {"type": "stop", "stop_words": sorted(STOPWORDS)}],
}

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,180}")


# --- where: URIs, names, local folders ------------------------------------------------------


@dataclass(frozen=True)
class MilvusTarget:
    """A parsed index location: ``uri`` as given, whether it is Lite, and the alias name."""

    uri: str
    lite: bool
    name: str = DEFAULT_NAME

    @property
    def client_uri(self) -> str:
        return str(Path(self.uri).resolve()) if self.lite else self.uri.rstrip("/")

    def local_dir(self, root: Path | None = None) -> Path:
        """The local folder for the lock and the embedding cache of this index."""
        if self.lite:
            return Path(f"{Path(self.uri).resolve()}.cache")
        parsed = urlparse(self.uri)
        base = root if root is not None else Path.home() / ".cache" / "speechrag" / "milvus"
        return base / f"{parsed.hostname}_{parsed.port or 19530}_{self.name}"

    def lock_path(self, root: Path | None = None) -> Path:
        if self.lite:
            return Path(f"{Path(self.uri).resolve()}.lock")
        return self.local_dir(root) / ".lock"


def parse_uri(uri: str | Path, name: str = DEFAULT_NAME) -> MilvusTarget:
    """``x.db`` -> Lite; ``http(s)://host:port`` -> server; anything else is refused."""
    text = str(uri)
    if not _NAME_RE.fullmatch(name):
        raise IndexLoadError(f"index name {name!r} is not a Milvus name; use letters, digits and _")
    if text.endswith(".db"):
        return MilvusTarget(text, True, name)
    parsed = urlparse(text)
    if parsed.scheme in ("http", "https") and parsed.hostname:
        return MilvusTarget(text, False, name)
    raise IndexLoadError(
        f"{text!r} is not a Milvus location; give a path ending .db (Milvus Lite) or http(s)://host:port"
    )


def _gen_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(name)}_g[0-9]{{8}}T[0-9]{{6}}Z_[0-9a-f]{{6}}")


def _meta_name(collection: str) -> str:
    return f"{collection}_meta"


def _sent_name(collection: str) -> str:
    return f"{collection}_sent"


# The side collections of a generation, by suffix: they live and die with it.
_SIDE_SUFFIXES = ("_meta", "_sent")


def _side_collections(gen: str) -> tuple[str, ...]:
    return tuple(f"{gen}{suffix}" for suffix in _SIDE_SUFFIXES)


def _connect(target: MilvusTarget, token: str | None, *, create: bool) -> Any:
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    if target.lite:
        path = Path(target.uri)
        if not create and not path.exists():
            raise IndexLoadError(f"no index at {target.uri}; run `speechrag build --index {target.uri}`")
        path.resolve().parent.mkdir(parents=True, exist_ok=True)
    try:
        return MilvusClient(uri=target.client_uri, token=token or "")
    except MilvusException as exc:
        if target.lite:
            # Lite holds an flock on the data directory: one process at a time.
            raise IndexLockedError(
                f"{target.uri} is open in another process (Milvus Lite allows one); stop it, "
                "or serve the index from a Milvus server"
            ) from None
        raise IndexLoadError(f"cannot reach Milvus at {target.uri} ({exc}); check the URI and token") from None


def release_lite(uri: str | Path) -> None:
    """Stop this process's embedded Milvus Lite server for ``uri`` (a ``.db``), so another
    process can open the database. Every client of it in this process stops working: call it
    when this process is done with the database (e.g. before a build in a subprocess)."""
    target = parse_uri(uri)
    if target.lite:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(target.client_uri)


def _alias_target(client: Any, name: str) -> str | None:
    # list first: describe_alias on a missing alias makes pymilvus log an ERROR.
    if name not in client.list_aliases().get("aliases", []):
        return None
    return str(client.describe_alias(name)["collection_name"])


# --- filter expressions ---------------------------------------------------------------------


def quote(value: str) -> str:
    """A Milvus string literal for ``value``: double-quoted, with ``\\``, ``"`` and line breaks
    escaped (the escapes both Lite's parser and the server's accept), so a speaker name can
    neither break the expression nor add to it."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def _in(field: str, values: Iterable[str]) -> str:
    return f"{field} in [{', '.join(quote(v) for v in sorted(values))}]"


def filter_expression(where: Filter | None) -> str | None:
    """The Milvus boolean expression for ``where`` ("" = no condition); None when it can match
    nothing (an empty set in a field), so the caller can skip the search."""
    if where is None or where.empty:
        return ""
    parts = []
    # A place matches with or without its administrative suffix, as Filter.allows does.
    places = None if where.places is None else frozenset(v for p in where.places for v in place_variants(p))
    for field, values in (("speech_id", where.speeches), ("speaker", where.speakers), ("place", places)):
        if values is None:
            continue
        if not values:
            return None
        parts.append(_in(field, values))
    if where.years is not None:
        lo, hi = (int(y) for y in where.years)
        lo = max(lo, NO_YEAR + 1)  # a speech without a date never matches
        if lo > hi:
            return None
        parts.append(f"(year >= {lo} and year <= {hi})")
    return " and ".join(parts)


# --- schema ---------------------------------------------------------------------------------


def _pq_m(dim: int) -> int:
    """Sub-quantisers for IVF_PQ: dim / 8, or the nearest smaller divisor of dim (m must divide it)."""
    m = max(1, dim // PQ_DIMS_PER_CODE)
    while dim % m:
        m -= 1
    return m


def _index_spec(index_type: str, n: int, dim: int) -> dict[str, Any]:
    """Build and search parameters of the dense index, recorded in the manifest."""
    kind = index_type.upper()
    if kind == "HNSW":
        return {"kind": kind, "build": {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION},
                "search": {"ef": HNSW_EF_SEARCH}}
    if kind == "FLAT":
        return {"kind": kind, "build": {}, "search": {}}
    # IVF: ~4 sqrt(n) lists is Milvus's and FAISS's rule of thumb; at most 65536.
    nlist = int(min(65536, max(1, 4 * round(n**0.5))))
    if kind == "IVF_FLAT":
        return {"kind": kind, "build": {"nlist": nlist}, "search": {"nprobe": min(IVF_NPROBE, nlist)}}
    if kind == "IVF_PQ":
        return {"kind": kind, "build": {"nlist": nlist, "m": _pq_m(dim), "nbits": 8},
                "search": {"nprobe": min(IVF_NPROBE, nlist)}}
    if kind == "DISKANN":
        return {"kind": kind, "build": {}, "search": {"search_list": DISKANN_SEARCH_LIST}}
    raise IndexLoadError(f"unknown Milvus index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")


def _schema(client: Any, dim: int) -> Any:
    from pymilvus import DataType, Function, FunctionType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)  # the row: FAISS's numbering
    s.add_field("pid", DataType.VARCHAR, max_length=256)
    s.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True,
                analyzer_params=ANALYZER)
    s.add_field("speech_id", DataType.VARCHAR, max_length=1024)
    s.add_field("speech_title", DataType.VARCHAR, max_length=4096)
    s.add_field("section", DataType.VARCHAR, max_length=VARCHAR_MAX)
    s.add_field("paragraph", DataType.INT32)
    s.add_field("part", DataType.INT32)
    s.add_field("source", DataType.VARCHAR, max_length=4096)
    s.add_field("line", DataType.INT32)
    s.add_field("duplicates", DataType.VARCHAR, max_length=VARCHAR_MAX)  # JSON list of passage ids
    s.add_field("speaker", DataType.VARCHAR, max_length=1024)
    s.add_field("place", DataType.VARCHAR, max_length=1024)
    s.add_field("year", DataType.INT32)
    s.add_field("page", DataType.INT32)  # a PDF passage's first and last page (0: not paged)
    s.add_field("last_page", DataType.INT32)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                            input_field_names=["text"], output_field_names=["sparse"]))
    return s


def _index_params(client: Any, spec: Mapping[str, Any]) -> Any:
    p = client.prepare_index_params()
    p.add_index("dense", index_type=spec["kind"], metric_type="IP", params=dict(spec["build"]))
    p.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return p


def _meta_schema(client: Any) -> tuple[Any, Any]:
    from pymilvus import DataType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("body", DataType.VARCHAR, max_length=VARCHAR_MAX)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=META_DIM)  # Milvus requires a vector field
    p = client.prepare_index_params()
    p.add_index("v", index_type="FLAT", metric_type="L2")
    return s, p


def _sent_schema(client: Any, dim: int) -> tuple[Any, Any]:
    from pymilvus import DataType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)  # the uint64 text key, as int64 bits
    s.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
    p = client.prepare_index_params()
    # Only ever fetched by key; Milvus will not load a collection without a vector index.
    p.add_index("v", index_type="FLAT", metric_type="IP")
    return s, p


PASSAGE_FIELDS = ["id", "pid", "text", "speech_id", "speech_title", "section", "paragraph", "part",
                  "source", "line", "duplicates"]
PAGE_FIELDS = ["page", "last_page"]  # absent from collections built before pages were kept


def _varchar(value: str, field: str, limit: int) -> str:
    if len(value.encode("utf-8")) > limit:
        raise ValueError(f"passage field {field} has {len(value.encode())} bytes; Milvus allows {limit}")
    return value


def _rows(passages: Sequence[Passage], speeches: Mapping[str, Speech], vectors: np.ndarray,
          start: int) -> list[dict[str, Any]]:
    rows = []
    for i, p in enumerate(passages, start):
        sp = speeches.get(p.speech_id)
        year = sp.year if sp is not None else None
        rows.append({
            "id": i, "pid": _varchar(p.id, "id", 256), "text": _varchar(p.text, "text", VARCHAR_MAX),
            "speech_id": _varchar(p.speech_id, "speech_id", 1024),
            "speech_title": _varchar(p.speech_title, "speech_title", 4096),
            "section": _varchar(p.section, "section", VARCHAR_MAX), "paragraph": p.paragraph, "part": p.part,
            "source": _varchar(p.source, "source", 4096), "line": p.line,
            "duplicates": _varchar(json.dumps(list(p.duplicates), ensure_ascii=False), "duplicates", VARCHAR_MAX),
            "speaker": _varchar(sp.speaker if sp else "", "speaker", 1024),
            "place": _varchar(sp.place if sp else "", "place", 1024),
            "year": NO_YEAR if year is None else year,
            "page": p.page, "last_page": p.last_page,
            "dense": vectors[i].tolist(),
        })
    return rows


def _passage(row: Mapping[str, Any], dates: Mapping[str, str]) -> Passage:
    """A stored row as a Passage; its speech's date comes from the speech records (one copy per
    speech, not per row)."""
    return Passage(
        id=str(row["pid"]), speech_id=str(row["speech_id"]), speech_title=str(row["speech_title"]),
        section=str(row["section"]), paragraph=int(row["paragraph"]), text=str(row["text"]),
        source=str(row["source"]), line=int(row["line"]),
        duplicates=tuple(str(x) for x in json.loads(row["duplicates"])), part=int(row["part"]),
        speech_date=dates.get(str(row["speech_id"]), ""),
        page=int(row.get("page", 0)), last_page=int(row.get("last_page", 0)),
    )


# --- the store ------------------------------------------------------------------------------


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


class MilvusStore:
    """One published generation in Milvus, read-only (implements `stores.base.Store`).

    Searches name the generation's collection, not the alias, so rows stay the rows of this
    generation while a newer one is published; once the old collection is dropped a search
    raises IndexLoadError saying to reopen.
    """

    def __init__(self, client: Any, target: MilvusTarget, collection: str, manifest: dict[str, Any],
                 speeches: tuple[Speech, ...]) -> None:
        self._client = client
        self._target = target
        self._collection = collection
        self._manifest = MappingProxyType(manifest)
        self._speeches = speeches
        self._dates = {sp.id: sp.date for sp in speeches}
        self._spec: Mapping[str, Any] = manifest["dense"]
        self._tokenizer = Tokenizer()
        self._df: dict[str, int] = {}
        self._checked = time.monotonic()  # just opened from the alias: current until polled
        self._current = True
        names = {f["name"] for f in client.describe_collection(collection).get("fields", ())}
        self._fields = PASSAGE_FIELDS + [f for f in PAGE_FIELDS if f in names]

    def __repr__(self) -> str:
        return f"MilvusStore({self._target.uri!r}, generation={self._collection!r}, passages={self.size})"

    @property
    def location(self) -> str:
        return self._target.uri

    @property
    def manifest(self) -> Mapping[str, Any]:
        return self._manifest

    @property
    def generation(self) -> str:
        return self._collection

    @property
    def size(self) -> int:
        return int(self._manifest["passages"])

    @property
    def speeches(self) -> tuple[Speech, ...]:
        return self._speeches

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from pymilvus.exceptions import MilvusException

        try:
            return getattr(self._client, method)(*args, **kwargs)
        except MilvusException as exc:
            try:
                gone = not self._client.has_collection(self._collection)
            except Exception:
                raise IndexLoadError(f"cannot reach Milvus at {self.location} ({str(exc)[:160]}); "
                                     "check that it is running") from None
            if gone:
                raise IndexLoadError(
                    f"generation {self._collection} of {self.location} has been replaced; open the index again"
                ) from None
            raise IndexCorruptError(
                f"Milvus {method} failed on {self._collection} ({str(exc)[:160]}); "
                f"run `speechrag build --index {self.location} --force`"
            ) from None

    def _query(self, expr: str, fields: list[str], limit: int | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"filter": expr, "output_fields": fields}
        if limit is not None:
            kwargs["limit"] = limit
        return list(self._call("query", self._collection, **kwargs))

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        wanted = [int(r) for r in rows]
        if any(not 0 <= r < self.size for r in wanted):
            raise QueryError(f"rows must be in 0..{self.size - 1}. Currently, rows include "
                             f"{next(r for r in wanted if not 0 <= r < self.size)}")
        found: dict[int, Passage] = {}
        for chunk in _chunks(sorted(set(wanted)), QUERY_BATCH):
            for row in self._query(f"id in [{', '.join(map(str, chunk))}]", self._fields, len(chunk)):
                found[int(row["id"])] = _passage(row, self._dates)
        missing = [r for r in wanted if r not in found]
        if missing:
            raise IndexCorruptError(f"{self._collection} has no row {missing[0]}; "
                                    f"run `speechrag build --index {self.location} --force`")
        return [found[r] for r in wanted]

    def passages_of(self, speech_id: str) -> list[Passage]:
        # Rows are numbered in corpus order, so sorting by id gives reading order.
        fields = list(dict.fromkeys([*self._fields, "id"]))
        rows = self._query(_in("speech_id", [speech_id]), fields, MAX_TOPK)
        return [_passage(r, self._dates) for r in sorted(rows, key=lambda r: int(r["id"]))]

    def passages_by_id(self, ids: Sequence[str]) -> dict[str, Passage]:
        out: dict[str, Passage] = {}
        for chunk in _chunks(sorted(set(ids)), QUERY_BATCH):
            # Repeated texts share an id prefix but not an id, so at most one row each.
            for row in self._query(_in("pid", chunk), self._fields, len(chunk)):
                out[str(row["pid"])] = _passage(row, self._dates)
        return out

    def _search(self, data: Any, field: str, k: int, where: Filter | None,
                params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0:
            raise QueryError(f"k must be greater than 0. Currently, k is {k}")
        expr = filter_expression(where)
        k = min(k, self.size, MAX_TOPK)
        if expr is None or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        res = self._call("search", self._collection, data=[data], anns_field=field, limit=k, filter=expr,
                         search_params=dict(params), output_fields=["id"])
        hits = list(res[0]) if res else []
        rows = np.array([int(h["id"]) for h in hits], dtype=np.int64)
        scores = np.array([float(h["distance"]) for h in hits], dtype=np.float32)
        return rows, scores

    def search_dense(self, vector: np.ndarray, k: int, where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        dim = int(self._manifest["encoder"]["dim"])
        if vec.shape[0] != dim:
            raise EncoderMismatchError(
                f"query vector has dimension {vec.shape[0]} but {self.location} has {dim}; "
                f"encode queries with {self._manifest['encoder']['name']!r}"
            )
        inner: dict[str, Any] = dict(self._spec["search"])
        for key in ("ef", "search_list"):  # HNSW and DiskANN need their list at least k long
            if key in inner:
                inner[key] = max(int(inner[key]), k)
        return self._search(vec.tolist(), "dense", k, where, {"metric_type": "IP", "params": inner})

    def search_keyword(self, query: str, k: int, where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        if not self.tokenize(query):
            # No content word: nothing can share a keyword (and an empty BM25 query is an error).
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows, scores = self._search(query, "sparse", k, where, {"metric_type": "BM25"})
        # Lite returns BM25 scores negated (a distance); a server returns them positive. Both are
        # best first; only the order means anything across engines (IDF is per segment in Lite).
        return rows, np.abs(scores)

    def search_hybrid(self, vector: np.ndarray, query: str, k: int, where: Filter | None = None, *,
                      depth: int | None = None, rrf_k: int = 60) -> tuple[np.ndarray, np.ndarray]:
        """Dense and keyword fused by Milvus in one call (``hybrid_search`` with RRF): rows and
        RRF scores, best first. Each side contributes its top ``depth`` (default ``k``), so this
        equals fusing `search_dense` and `search_keyword` at that depth by Σ 1/(rrf_k + rank).
        Not in the `Store` protocol yet (see docs/scale-out.md): one round trip instead of two."""
        from pymilvus import AnnSearchRequest, RRFRanker

        if k <= 0:
            raise QueryError(f"k must be greater than 0. Currently, k is {k}")
        expr = filter_expression(where)
        depth = min(depth or k, self.size, MAX_TOPK)
        k = min(k, self.size, MAX_TOPK)
        if expr is None or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        inner: dict[str, Any] = dict(self._spec["search"])
        for key in ("ef", "search_list"):
            if key in inner:
                inner[key] = max(int(inner[key]), depth)
        requests = [AnnSearchRequest(data=[vec.tolist()], anns_field="dense", limit=depth, expr=expr,
                                     param={"metric_type": "IP", "params": inner})]
        if self.tokenize(query):
            requests.append(AnnSearchRequest(data=[query], anns_field="sparse", limit=depth, expr=expr,
                                             param={"metric_type": "BM25"}))
        res = self._call("hybrid_search", self._collection, reqs=requests, ranker=RRFRanker(rrf_k), limit=k,
                         output_fields=["id"])
        hits = list(res[0]) if res else []
        return (np.array([int(h["id"]) for h in hits], dtype=np.int64),
                np.array([float(h["distance"]) for h in hits], dtype=np.float32))

    def tokenize(self, text: str) -> list[str]:
        # Lite has no run_analyzer; lexical.Tokenizer cuts as ANALYZER is configured to.
        return self._tokenizer(text)

    def document_frequency(self, term: str) -> int:
        """Passages containing ``term``: one ``text like "%term%"`` scan of the text column per
        new term (cached on the store). On a server that is a full scan of every segment, so at
        10^8 passages it costs seconds; a DF table written at build time would replace it."""
        # One lookup, not `in` then `[]`: another thread's clear() may fall between the two.
        cached = self._df.get(term)
        if cached is not None:
            return cached
        if len(self._df) >= DF_CACHE:
            self._df.clear()  # bounded: a long-running server sees an open-ended stream of terms
        if not term:
            return self.size
        expr = f"text like {quote('%' + term + '%')}"
        if "%" in term or "_" in term:
            # They are wildcards with no portable escape (Lite has none): the LIKE finds a superset,
            # which is counted exactly here.
            n = 0
            last = -1
            while True:
                batch = self._query(f"{expr} and id > {last}", ["id", "text"], QUERY_BATCH)
                n += sum(term in r["text"] for r in batch)
                if len(batch) < QUERY_BATCH:
                    break
                last = max(int(r["id"]) for r in batch)
        else:
            res = self._query(expr, ["count(*)"])
            n = int(res[0]["count(*)"])
        self._df[term] = n
        return n

    def sentence_vectors(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """One query by primary key for all of them (a few dozen per answer)."""
        dim = int(self._manifest["encoder"]["dim"])
        out, found = np.zeros((len(sentences), dim), np.float32), np.zeros(len(sentences), bool)
        if not sentences or not self._manifest.get("sentences"):
            return out, found  # built from precomputed vectors: answers embed their sentences
        at: dict[int, list[int]] = {}
        for i, key in enumerate(sentence_keys(sentences).view(np.int64).tolist()):
            at.setdefault(key, []).append(i)
        rows = self._call("query", _sent_name(self._collection), filter=f"id in {list(at)}",
                          output_fields=["id", "v"])
        for r in rows:
            for i in at.get(int(r["id"]), ()):
                out[i], found[i] = r["v"], True
        return out, found

    def is_current(self) -> bool:
        """False once the alias names another generation. Reading the alias is two RPCs, and
        `IndexService` asks before every question, so the answer is reused for
        `CURRENT_POLL_SECONDS`: a rebuild is served at most that long after it is published."""
        now = time.monotonic()
        if now - self._checked < CURRENT_POLL_SECONDS:
            return self._current
        try:
            live = _alias_target(self._client, self._target.name)
        except Exception as exc:  # a server that is briefly unreachable: keep serving what we have
            log.warning("cannot read alias %s at %s (%s)", self._target.name, self.location, exc)
            return True
        # The answer before the time: a thread reading between the two would otherwise reuse
        # the old answer for another second. Threads polling at once only repeat the RPCs.
        self._current = live in (None, self._collection)
        self._checked = now
        return self._current

    def close(self) -> None:
        # Closes the connection only. With Lite, pymilvus keeps the embedded server (and the
        # database's one-process lock) for the life of the process, shared by every client of
        # that .db here: stopping it would break a newer store opened on the same file during a
        # hot reload. `release_lite` stops it when the process is done with the database.
        self._client.close()


# --- opening --------------------------------------------------------------------------------


def _read_meta(client: Any, collection: str, uri: str) -> tuple[dict[str, Any], tuple[Speech, ...]]:
    meta = _meta_name(collection)
    if not client.has_collection(meta):
        raise IndexCorruptError(f"{uri}: {meta} is missing; run `speechrag build --index {uri} --force`")
    client.load_collection(meta)
    bodies: dict[int, str] = {}
    last = -1
    while True:  # paged by id: a query returns at most 16384 rows
        batch = client.query(meta, filter=f"id > {last}", output_fields=["id", "body"], limit=QUERY_BATCH)
        for r in batch:
            bodies[int(r["id"])] = str(r["body"])
        if len(batch) < QUERY_BATCH:
            break
        last = max(int(r["id"]) for r in batch)
    try:
        manifest = json.loads(bodies.pop(0))
        speeches = tuple(Speech.from_dict(json.loads(bodies[i])) for i in range(1, len(bodies) + 1))
    except (KeyError, ValueError, TypeError) as exc:
        raise IndexCorruptError(
            f"{uri}: {meta} is damaged ({type(exc).__name__}); run `speechrag build --index {uri} --force`"
        ) from None
    return manifest, speeches


def open_milvus(uri: str | Path, *, token: str | None = None, encoder: str | Encoder | None = None,
                name: str = DEFAULT_NAME) -> MilvusStore:
    """The live generation of the index ``name`` at ``uri``.

    ``encoder`` (a name or an Encoder) asserts which encoder queries will use; one whose name or
    fingerprint differs from the build's raises EncoderMismatchError. No index raises
    IndexLoadError naming the build command.
    """
    target = parse_uri(uri, name)
    client = _connect(target, token, create=False)
    try:
        collection = _alias_target(client, name)
        if collection is None:
            raise IndexLoadError(f"no index at {target.uri}; run `speechrag build --index {target.uri}`")
        manifest, speeches = _read_meta(client, collection, target.uri)
        if manifest.get("format") != FORMAT:
            raise IndexLoadError(
                f"index {target.uri} has format {manifest.get('format')!r}; this speechrag reads format "
                f"{FORMAT}; run `speechrag build --index {target.uri} --force`"
            )
        if encoder is not None:
            check_encoder(manifest, get_encoder(encoder) if isinstance(encoder, str) else encoder, target.uri)
        client.load_collection(collection)  # a restarted server starts with collections released
        if manifest.get("sentences"):
            client.load_collection(_sent_name(collection))
    except BaseException:
        client.close()
        raise
    return MilvusStore(client, target, collection, manifest, speeches)


# --- publishing -----------------------------------------------------------------------------


def _lock(target: MilvusTarget, local_dir: Path | None) -> Any:
    from filelock import FileLock, Timeout

    path = target.lock_path(local_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise IndexLockedError(
            f"another `speechrag build` is writing {target.uri} (lock {path}); wait for it to finish"
        ) from None
    return lock


def _drop_leftovers(client: Any, name: str, keep: str | None) -> list[str]:
    """Drop this index's collections that the alias does not name: what killed or superseded
    builds left. Called with the build lock held."""
    pattern = _gen_re(name)
    dropped = []
    for coll in client.list_collections():
        base = next((coll.removesuffix(x) for x in _SIDE_SUFFIXES if coll.endswith(x)), coll)
        if pattern.fullmatch(base) and base != keep:
            log.info("dropping leftover collection %s", coll)
            client.drop_collection(coll)
            dropped.append(coll)
    return dropped


def _versions(client: Any) -> dict[str, str]:
    out = versions(("speechrag", "pymilvus", "milvus-lite", "jieba", "rjieba"))
    try:
        out["server"] = str(client.get_server_version())
    except Exception:
        out["server"] = "unknown"
    return out


def _count(client: Any, collection: str) -> int:
    return int(client.query(collection, filter="", output_fields=["count(*)"])[0]["count(*)"])


def _probe(client: Any, collection: str, vectors: np.ndarray, passages: Sequence[Passage],
           spec: Mapping[str, Any]) -> None:
    """Check that the new generation answers before the alias points at it."""
    got = client.query(collection, filter="id in [0]", output_fields=["pid"])
    if not got or got[0]["pid"] != passages[0].id:
        raise IndexCorruptError(f"probe of {collection} failed: row 0 is not passage {passages[0].id}")
    res = client.search(collection, data=[vectors[0].tolist()], anns_field="dense", limit=1,
                        search_params={"metric_type": "IP", "params": dict(spec["search"])}, output_fields=["id"])
    hits = list(res[0]) if res else []
    # PQ scores are approximate; exact and graph indexes find a stored vector at cosine ~1.
    floor = 0.5 if spec["kind"] == "IVF_PQ" else 0.99
    if not hits or float(hits[0]["distance"]) < floor:
        raise IndexCorruptError(f"probe of {collection} failed: its own vector 0 is not found (hits {hits})")


def publish_milvus(
    uri: str | Path,
    passages: Sequence[Passage],
    speeches: Sequence[Speech],
    vectors: np.ndarray,
    manifest: Mapping[str, Any],
    *,
    index_type: str = "HNSW",
    token: str | None = None,
    name: str = DEFAULT_NAME,
    local_dir: Path | None = None,
    sentences: SentenceVectors | None = None,
) -> str:
    """Write a new generation of index ``name`` at ``uri`` and make it the live one; returns its
    collection name (the generation).

    ``manifest`` must carry ``encoder`` (``name``, ``fingerprint``, ``dim``) and
    ``corpus_fingerprint``; format, counts, the dense spec, analyzer and versions are added.
    ``vectors`` holds one unit row per passage, row i for ``passages[i]``; ``sentences``, the
    build-time sentence vectors answers read (none: answers embed their sentences). ``local_dir``
    is where a server index keeps its build lock (default ``~/.cache/speechrag/milvus/...``).
    """
    target = parse_uri(uri, name)
    kind = index_type.upper()
    if kind in SERVER_ONLY and target.lite:
        raise IndexLoadError(f"{kind} is not built by Milvus Lite; use HNSW, FLAT or IVF_FLAT, or a Milvus server")
    if not passages:
        raise ValueError("no passages to publish; give a corpus with at least one passage")
    enc = manifest.get("encoder") or {}
    if not {"name", "fingerprint", "dim"} <= set(enc) or "corpus_fingerprint" not in manifest:
        raise ValueError("manifest needs encoder.name, encoder.fingerprint, encoder.dim and corpus_fingerprint")
    dim = int(enc["dim"])
    vectors = check_vectors(vectors, len(passages), dim)
    spec = _index_spec(kind, len(passages), dim)
    by_id = {s.id: s for s in speeches}
    started = time.perf_counter()

    lock = _lock(target, local_dir)
    client = _connect(target, token, create=True)
    try:
        old = _alias_target(client, name)
        _drop_leftovers(client, name, old)
        gen = f"{name}_g{datetime.now(UTC):%Y%m%dT%H%M%SZ}_{secrets.token_hex(3)}"
        fields = {
            **manifest,
            "format": FORMAT,
            "generation": gen,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "passages": len(passages),
            "speeches": len(speeches),
            "dense": spec,
            "keyword": {"analyzer": ANALYZER, "function": "BM25"},
            "backend": {"engine": "milvus", "lite": target.lite},
            "versions": _versions(client),
        }
        if "sources" in fields and len(json.dumps(fields, ensure_ascii=False).encode()) > VARCHAR_MAX:
            # The manifest is one VARCHAR row; thousands of corpus files outgrow it. Without the
            # file list a refresh decides "up to date" after parsing (corpus fingerprint).
            del fields["sources"]
        try:
            _write_generation(client, gen, fields, passages, speeches, by_id, vectors, spec, target.lite, sentences)
        except BaseException:
            # A Python-level failure cleans up after itself; a killed build leaves its
            # collections to the next build's _drop_leftovers.
            for coll in (gen, *_side_collections(gen)):
                try:
                    client.drop_collection(coll)
                except Exception:
                    log.warning("could not drop the failed build's collection %s", coll)
            raise
        # The switch: one call, after which every new open sees the new generation.
        if old is None:
            client.create_alias(gen, name)
        else:
            client.alter_alias(gen, name)
        if old is not None:
            _drop_leftovers(client, name, gen)
        log.info("published %s at %s: %d passages, %s, %.1fs", gen, target.uri, len(passages), kind,
                 time.perf_counter() - started)
        return gen
    finally:
        client.close()
        lock.release()


def _write_generation(client: Any, gen: str, fields: Mapping[str, Any], passages: Sequence[Passage],
                      speeches: Sequence[Speech], by_id: Mapping[str, Speech], vectors: np.ndarray,
                      spec: Mapping[str, Any], lite: bool, sentences: SentenceVectors | None = None) -> None:
    """Create, fill, index, load and check a generation and its side collections."""
    dim = vectors.shape[1]
    client.create_collection(gen, schema=_schema(client, dim))
    for start in range(0, len(passages), INSERT_BATCH):
        client.insert(gen, _rows(passages[start : start + INSERT_BATCH], by_id, vectors, start))
    meta_schema, meta_index = _meta_schema(client)
    meta = _meta_name(gen)
    client.create_collection(meta, schema=meta_schema)
    bodies = [json.dumps(dict(fields), ensure_ascii=False, sort_keys=True)]
    bodies += [json.dumps(s.to_dict(), ensure_ascii=False) for s in speeches]
    zero = [0.0] * META_DIM
    for start in range(0, len(bodies), INSERT_BATCH):
        client.insert(meta, [{"id": i, "body": _varchar(b, "speech", VARCHAR_MAX), "v": zero}
                             for i, b in enumerate(bodies[start : start + INSERT_BATCH], start)])
    indexed = [(gen, _index_params(client, spec)), (meta, meta_index)]
    if sentences is not None:
        sent_schema, sent_index = _sent_schema(client, dim)
        sent = _sent_name(gen)
        client.create_collection(sent, schema=sent_schema)
        keys = sentences.keys.view(np.int64)
        for start in range(0, len(sentences), INSERT_BATCH):
            vecs = np.asarray(sentences.vectors[start : start + INSERT_BATCH], dtype=np.float32)
            client.insert(sent, [{"id": int(k), "v": v} for k, v in zip(keys[start : start + INSERT_BATCH], vecs,
                                                                             strict=True)])
        indexed.append((sent, sent_index))
    # Insert first, index after the flush: a server then builds each index once, on sealed
    # segments, instead of on growing ones.
    for coll, params in indexed:
        client.flush(coll)
        # Lite builds indexes synchronously and lacks AllocTimestamp, which pymilvus's wait for
        # an index calls; a server is waited for, so load finds the index built.
        client.create_index(coll, params, sync=not lite)
        client.load_collection(coll)
    counts = tuple(_count(client, coll) for coll, _ in indexed)
    expected = (len(passages), len(bodies), *(() if sentences is None else (len(sentences),)))
    if counts != expected:
        raise IndexCorruptError(f"{gen} holds {counts} rows after flush, expected {expected}; build again")
    _probe(client, gen, vectors, passages, spec)


# dense kinds `build_index(dense=...)` / `speechrag build --dense` take for a Milvus index
DENSE_KINDS = tuple(k.lower() for k in INDEX_TYPES)
KEYWORD_SPEC: dict[str, Any] = {"analyzer": ANALYZER, "function": "BM25"}


def live_manifest(target: MilvusTarget, token: str | None) -> tuple[dict[str, Any] | None, str]:
    """The live generation's manifest, or None and why not."""
    if target.lite and not Path(target.uri).exists():
        return None, "no index yet"
    client = _connect(target, token, create=False)
    try:
        collection = _alias_target(client, target.name)
        if collection is None:
            return None, "no index yet"
        try:
            return _read_meta(client, collection, target.uri)[0], ""
        except IndexLoadError as exc:
            return None, f"existing index unusable ({exc})"
    finally:
        client.close()
