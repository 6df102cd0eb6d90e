"""Milvus: `MilvusStore`, one published generation read through the alias, and `open_milvus`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from speechrag.encoders import Encoder, check_encoder, get_encoder
from speechrag.errors import (
    EncoderMismatchError,
    IndexCorruptError,
    IndexLoadError,
    QueryError,
)
from speechrag.lexical import Tokenizer
from speechrag.passage import Passage, Speech
from speechrag.sentencevectors import sentence_keys
from speechrag.stores.base import Filter
from speechrag.stores.milvus.schema import (
    DEFAULT_NAME,
    DF_CACHE,
    FORMAT,
    MAX_TOPK,
    PAGE_FIELDS,
    PASSAGE_FIELDS,
    QUERY_BATCH,
    MilvusTarget,
    alias_target,
    connect,
    filter_expression,
    in_expr,
    meta_name,
    parse_uri,
    passage_of_row,
    quote,
    sent_name,
)

log = logging.getLogger(__name__)

CURRENT_POLL_SECONDS = 1.0  # how often is_current() reads the alias (two RPCs)


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
                found[int(row["id"])] = passage_of_row(row, self._dates)
        missing = [r for r in wanted if r not in found]
        if missing:
            raise IndexCorruptError(f"{self._collection} has no row {missing[0]}; "
                                    f"run `speechrag build --index {self.location} --force`")
        return [found[r] for r in wanted]

    def passages_of(self, speech_id: str) -> list[Passage]:
        # Rows are numbered in corpus order, so sorting by id gives reading order.
        fields = list(dict.fromkeys([*self._fields, "id"]))
        rows = self._query(in_expr("speech_id", [speech_id]), fields, MAX_TOPK)
        return [passage_of_row(r, self._dates) for r in sorted(rows, key=lambda r: int(r["id"]))]

    def passages_by_id(self, ids: Sequence[str]) -> dict[str, Passage]:
        out: dict[str, Passage] = {}
        for chunk in _chunks(sorted(set(ids)), QUERY_BATCH):
            # Repeated texts share an id prefix but not an id, so at most one row each.
            for row in self._query(in_expr("pid", chunk), self._fields, len(chunk)):
                out[str(row["pid"])] = passage_of_row(row, self._dates)
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
        rows = self._call("query", sent_name(self._collection), filter=f"id in {list(at)}",
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
            live = alias_target(self._client, self._target.name)
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


def read_meta(client: Any, collection: str, uri: str) -> tuple[dict[str, Any], tuple[Speech, ...]]:
    meta = meta_name(collection)
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
    client = connect(target, token, create=False)
    try:
        collection = alias_target(client, name)
        if collection is None:
            raise IndexLoadError(f"no index at {target.uri}; run `speechrag build --index {target.uri}`")
        manifest, speeches = read_meta(client, collection, target.uri)
        if manifest.get("format") != FORMAT:
            raise IndexLoadError(
                f"index {target.uri} has format {manifest.get('format')!r}; this speechrag reads format "
                f"{FORMAT}; run `speechrag build --index {target.uri} --force`"
            )
        if encoder is not None:
            check_encoder(manifest, get_encoder(encoder) if isinstance(encoder, str) else encoder, target.uri)
        client.load_collection(collection)  # a restarted server starts with collections released
        if manifest.get("sentences"):
            client.load_collection(sent_name(collection))
    except BaseException:
        client.close()
        raise
    return MilvusStore(client, target, collection, manifest, speeches)
