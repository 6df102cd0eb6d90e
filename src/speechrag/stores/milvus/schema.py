"""Milvus: where an index lives (URIs, Lite folders, the alias), the connection, the filter
expressions and the collections' schema. See the package docstring for the layout.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from speechrag.errors import (
    IndexLoadError,
    IndexLockedError,
)
from speechrag.lexical import STOPWORDS
from speechrag.passage import Passage, Speech
from speechrag.stores.base import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, Filter
from speechrag.text import place_variants

log = logging.getLogger(__name__)


FORMAT = 1
DEFAULT_NAME = "speechrag"
INDEX_TYPES = ("HNSW", "FLAT", "IVF_FLAT", "IVF_PQ", "DISKANN")
# Lite 3.2.2 cannot build these: create_index on inserted rows fails ("reserved for a future
# phase" / "unknown index_type"); declared on an empty collection they were seen reported
# "Finished" and never built. Refused up front on Lite.
SERVER_ONLY = frozenset({"IVF_PQ", "DISKANN"})
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


def gen_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(name)}_g[0-9]{{8}}T[0-9]{{6}}Z_[0-9a-f]{{6}}")


def meta_name(collection: str) -> str:
    return f"{collection}_meta"


def sent_name(collection: str) -> str:
    return f"{collection}_sent"


# The side collections of a generation, by suffix: they live and die with it.
SIDE_SUFFIXES = ("_meta", "_sent")


def side_collections(gen: str) -> tuple[str, ...]:
    return tuple(f"{gen}{suffix}" for suffix in SIDE_SUFFIXES)


def connect(target: MilvusTarget, token: str | None, *, create: bool) -> Any:
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    if target.lite:
        path = Path(target.uri)
        if not create and not path.exists():
            raise IndexLoadError(f"no index at {target.uri}; run `speechrag build --index {target.uri}`")
        path.resolve().parent.mkdir(parents=True, exist_ok=True)
    try:
        return MilvusClient(uri=target.client_uri, token=token or "")
    except Exception as exc:  # pymilvus raises MilvusException, and grpc or OS errors of its own
        if target.lite and isinstance(exc, MilvusException):
            # Lite holds an flock on the data directory: one process at a time.
            raise IndexLockedError(
                f"{target.uri} is open in another process (Milvus Lite allows one); stop it, "
                "or serve the index from a Milvus server"
            ) from None
        reason = " ".join(str(getattr(exc, "message", "") or exc).split())  # one line, whatever the library wrote
        raise IndexLoadError(f"cannot reach Milvus at {target.uri} ({reason}); check the URI and token") from None


def release_lite(uri: str | Path) -> None:
    """Stop this process's embedded Milvus Lite server for ``uri`` (a ``.db``), so another
    process can open the database. Every client of it in this process stops working: call it
    when this process is done with the database (e.g. before a build in a subprocess)."""
    target = parse_uri(uri)
    if target.lite:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(target.client_uri)


def alias_target(client: Any, name: str) -> str | None:
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


def in_expr(field: str, values: Iterable[str]) -> str:
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
        parts.append(in_expr(field, values))
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


def index_spec(index_type: str, n: int, dim: int) -> dict[str, Any]:
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


def passage_schema(client: Any, dim: int) -> Any:
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


def index_params(client: Any, spec: Mapping[str, Any]) -> Any:
    p = client.prepare_index_params()
    p.add_index("dense", index_type=spec["kind"], metric_type="IP", params=dict(spec["build"]))
    p.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return p


def meta_schema(client: Any) -> tuple[Any, Any]:
    from pymilvus import DataType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("body", DataType.VARCHAR, max_length=VARCHAR_MAX)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=META_DIM)  # Milvus requires a vector field
    p = client.prepare_index_params()
    p.add_index("v", index_type="FLAT", metric_type="L2")
    return s, p


def sent_schema(client: Any, dim: int) -> tuple[Any, Any]:
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


def varchar(value: str, field: str, limit: int) -> str:
    if len(value.encode("utf-8")) > limit:
        raise ValueError(f"passage field {field} has {len(value.encode())} bytes; Milvus allows {limit}")
    return value


def passage_rows(passages: Sequence[Passage], speeches: Mapping[str, Speech], vectors: np.ndarray,
          start: int) -> list[dict[str, Any]]:
    rows = []
    for i, p in enumerate(passages, start):
        sp = speeches.get(p.speech_id)
        year = sp.year if sp is not None else None
        rows.append({
            "id": i, "pid": varchar(p.id, "id", 256), "text": varchar(p.text, "text", VARCHAR_MAX),
            "speech_id": varchar(p.speech_id, "speech_id", 1024),
            "speech_title": varchar(p.speech_title, "speech_title", 4096),
            "section": varchar(p.section, "section", VARCHAR_MAX), "paragraph": p.paragraph, "part": p.part,
            "source": varchar(p.source, "source", 4096), "line": p.line,
            "duplicates": varchar(json.dumps(list(p.duplicates), ensure_ascii=False), "duplicates", VARCHAR_MAX),
            "speaker": varchar(sp.speaker if sp else "", "speaker", 1024),
            "place": varchar(sp.place if sp else "", "place", 1024),
            "year": NO_YEAR if year is None else year,
            "page": p.page, "last_page": p.last_page,
            "dense": vectors[i].tolist(),
        })
    return rows


def passage_of_row(row: Mapping[str, Any], dates: Mapping[str, str]) -> Passage:
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


# dense kinds `build_index(dense=...)` / `speechrag build --dense` take for a Milvus index
DENSE_KINDS = tuple(k.lower() for k in INDEX_TYPES)
KEYWORD_SPEC: dict[str, Any] = {"analyzer": ANALYZER, "function": "BM25"}
