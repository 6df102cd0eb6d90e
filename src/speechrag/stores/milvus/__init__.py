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

from speechrag.encoders import check_encoder
from speechrag.stores.milvus.publish import MilvusWriter, live_manifest, publish_milvus
from speechrag.stores.milvus.schema import (
    DEFAULT_NAME,
    DENSE_KINDS,
    FORMAT,
    INDEX_TYPES,
    KEYWORD_SPEC,
    MilvusTarget,
    filter_expression,
    index_spec,
    parse_uri,
    quote,
    release_lite,
)
from speechrag.stores.milvus.store import CURRENT_POLL_SECONDS, MilvusStore, open_milvus

__all__ = [
    "CURRENT_POLL_SECONDS",
    "DEFAULT_NAME",
    "DENSE_KINDS",
    "FORMAT",
    "INDEX_TYPES",
    "KEYWORD_SPEC",
    "MilvusStore",
    "MilvusTarget",
    "MilvusWriter",
    "check_encoder",
    "filter_expression",
    "index_spec",
    "live_manifest",
    "open_milvus",
    "parse_uri",
    "publish_milvus",
    "quote",
    "release_lite",
]
