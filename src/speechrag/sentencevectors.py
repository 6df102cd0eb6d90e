"""Sentence vectors made at build time, so a first answer embeds nothing but its question.

An answer quotes the sentences of its passages that are nearest the question in meaning
(`speechrag.answering.sentences`). Embedding those candidate sentences at question time made
a never-asked question's answer ~17x slower than its retrieval. A build therefore embeds every
sentence answers may quote (`quotable`: each passage split by `text.sentence_spans` with
``min_chars=2``, as answering splits it), through the same embedding cache as the passages,
and the generation stores them::

    sentences/keys.npy     uint64, sorted: the first 8 bytes of each distinct sentence's sha256
    sentences/vectors.npy  float16, row i is the unit vector of keys[i]

Both files are checksummed like the rest of the generation and memory-mapped at load, so a
large index costs page cache, not heap. Lookup is by text: a sentence the build did not embed
(an older generation, a Milvus index, a split rule changed since) is simply not found, and the
Searcher embeds it at question time as before.

float16 halves the size and moves a cosine by ~1e-3 at most, far below the gaps that order a
passage's sentences; the eval table is measured with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from speechrag.embedcache import Bulk, EmbeddingCache, embed, text_key
from speechrag.text import sentence_spans

if TYPE_CHECKING:
    from speechrag.encoders import Encoder

FOLDER = "sentences"
KEYS = "keys.npy"
VECTORS = "vectors.npy"
# The manifest's description: a build whose spec differs (another split, another precision)
# makes the index stale, so `speechrag build` refreshes it.
SPEC = {"split": "sentence_spans(min_chars=2)", "dtype": "float16", "key": "sha256[:8]"}
MIN_CHARS = 2


def quotable(texts: Iterable[str]) -> list[str]:
    """Every sentence an answer may quote from these passage texts, distinct, in first order."""
    out: dict[str, None] = {}
    for text in texts:
        for a, b in sentence_spans(text, min_chars=MIN_CHARS):
            out.setdefault(text[a:b])
    return list(out)


def sentence_keys(sentences: Sequence[str]) -> np.ndarray:
    """Each sentence's key: the first 8 bytes of its sha256 (the embedding cache's key)."""
    return np.fromiter((int(text_key(s)[:16], 16) for s in sentences), np.uint64, count=len(sentences))


class SentenceVectors:
    """Sentence text -> build-time unit vector (see the module docstring)."""

    def __init__(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if keys.ndim != 1 or vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        self.keys = keys
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @classmethod
    def from_sentences(cls, sentences: Sequence[str], vectors: np.ndarray) -> SentenceVectors:
        """Sorted by key, so a lookup is one `np.searchsorted`."""
        keys = sentence_keys(sentences)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        # Two distinct sentences with one 64-bit key (odds ~1e-7 at four million): the first
        # keeps it, the other is embedded at question time.
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        keys, order = keys[first], order[first]
        return cls(keys, np.ascontiguousarray(np.asarray(vectors)[order], dtype=np.float16))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / KEYS, self.keys, allow_pickle=False)
        np.save(folder / VECTORS, self.vectors, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> SentenceVectors:
        """Memory-mapped: pages are read as lookups touch them."""
        return cls(np.load(folder / KEYS, mmap_mode="r", allow_pickle=False),
                   np.load(folder / VECTORS, mmap_mode="r", allow_pickle=False))

    def lookup(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """float32 vectors of ``sentences`` (zero rows where not found) and which were found."""
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        if not len(self.keys) or not sentences:
            return out, np.zeros(len(sentences), dtype=bool)
        want = sentence_keys(sentences)
        pos = np.minimum(np.searchsorted(self.keys, want), len(self.keys) - 1)
        found = self.keys[pos] == want
        out[found] = self.vectors[pos[found]]
        return out, found


@dataclass(frozen=True)
class Embedded:
    """What a build embeds: one vector per passage, the quotable sentences' vectors, how many of
    each were embedded now (the rest came from the cache) and the seconds each step took."""

    vectors: np.ndarray
    embedded: int
    cached: int
    sentences: SentenceVectors
    sentences_embedded: int
    phases: dict[str, float]


def embed_corpus(encoder: Encoder, texts: Sequence[str], cache: EmbeddingCache, *,
                 progress: Callable[[int, int], None] | None = None,
                 sentence_progress: Callable[[int, int], None] | None = None,
                 bulk: Bulk | None = None) -> Embedded:
    """The passages' vectors, then their quotable sentences' through the same cache (where a
    one-sentence paragraph's sentence already is): the embedding step of every store's build."""
    t = time.perf_counter()
    vectors, embedded, cached = embed(encoder, texts, cache, progress, bulk=bulk)
    phases = {"embed": time.perf_counter() - t}
    t = time.perf_counter()
    quoted = quotable(texts)
    sentence_vectors, sentences_embedded, _ = embed(encoder, quoted, cache, sentence_progress, bulk=bulk)
    sentences = SentenceVectors.from_sentences(quoted, sentence_vectors)
    phases["sentences"] = time.perf_counter() - t
    return Embedded(vectors, embedded, cached, sentences, sentences_embedded, phases)
