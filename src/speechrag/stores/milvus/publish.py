"""Milvus: publishing a generation (a collection written, checked, then the alias switched and
the old one dropped) and reading the live generation's manifest for a build."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from speechrag.errors import (
    IndexCorruptError,
    IndexLoadError,
    IndexLockedError,
)
from speechrag.passage import Passage, Speech
from speechrag.sentencevectors import SentenceVectors
from speechrag.stores.base import HeldWriter, check_vectors, versions
from speechrag.stores.milvus.schema import (
    ANALYZER,
    DEFAULT_NAME,
    FORMAT,
    INSERT_BATCH,
    META_DIM,
    SERVER_ONLY,
    SIDE_SUFFIXES,
    VARCHAR_MAX,
    MilvusTarget,
    alias_target,
    connect,
    gen_re,
    index_params,
    index_spec,
    meta_name,
    meta_schema,
    parse_uri,
    passage_rows,
    passage_schema,
    sent_name,
    sent_schema,
    side_collections,
    varchar,
)
from speechrag.stores.milvus.store import read_meta

log = logging.getLogger(__name__)


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
    pattern = gen_re(name)
    dropped = []
    for coll in client.list_collections():
        base = next((coll.removesuffix(x) for x in SIDE_SUFFIXES if coll.endswith(x)), coll)
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
    spec = index_spec(kind, len(passages), dim)
    by_id = {s.id: s for s in speeches}
    started = time.perf_counter()

    lock = _lock(target, local_dir)
    client = connect(target, token, create=True)
    try:
        old = alias_target(client, name)
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
            for coll in (gen, *side_collections(gen)):
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
    client.create_collection(gen, schema=passage_schema(client, dim))
    for start in range(0, len(passages), INSERT_BATCH):
        client.insert(gen, passage_rows(passages[start : start + INSERT_BATCH], by_id, vectors, start))
    meta_fields, meta_index = meta_schema(client)
    meta = meta_name(gen)
    client.create_collection(meta, schema=meta_fields)
    bodies = [json.dumps(dict(fields), ensure_ascii=False, sort_keys=True)]
    bodies += [json.dumps(s.to_dict(), ensure_ascii=False) for s in speeches]
    zero = [0.0] * META_DIM
    for start in range(0, len(bodies), INSERT_BATCH):
        client.insert(meta, [{"id": i, "body": varchar(b, "speech", VARCHAR_MAX), "v": zero}
                             for i, b in enumerate(bodies[start : start + INSERT_BATCH], start)])
    indexed = [(gen, index_params(client, spec)), (meta, meta_index)]
    if sentences is not None:
        sent_fields, sent_index = sent_schema(client, dim)
        sent = sent_name(gen)
        client.create_collection(sent, schema=sent_fields)
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


def live_manifest(target: MilvusTarget, token: str | None) -> tuple[dict[str, Any] | None, str]:
    """The live generation's manifest, or None and why not."""
    if target.lite and not Path(target.uri).exists():
        return None, "no index yet"
    client = connect(target, token, create=False)
    try:
        collection = alias_target(client, target.name)
        if collection is None:
            return None, "no index yet"
        try:
            return read_meta(client, collection, target.uri)[0], ""
        except IndexLoadError as exc:
            return None, f"existing index unusable ({exc})"
    finally:
        client.close()


class MilvusWriter(HeldWriter):
    """A new Milvus generation (`StoreWriter`): `publish` is `publish_milvus` (a collection
    written, checked, then the alias switched and the old generation dropped; a failed write
    drops what it made, and the alias is untouched)."""

    def __init__(self, uri: str | Path, *, index_type: str = "HNSW", token: str | None = None,
                 name: str = DEFAULT_NAME, local_dir: Path | None = None) -> None:
        super().__init__()
        self.uri, self.index_type, self.token, self.name, self.local_dir = uri, index_type, token, name, local_dir

    def publish(self, manifest: Mapping[str, Any]) -> str:
        passages, speeches, vectors, sentences = self.held()
        return publish_milvus(self.uri, passages, speeches, vectors, manifest, index_type=self.index_type,
                              token=self.token, name=self.name, local_dir=self.local_dir, sentences=sentences)
