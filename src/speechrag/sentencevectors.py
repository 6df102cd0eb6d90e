"""Sentence vectors made at build time, so a first answer embeds nothing but its question.

An answer quotes the sentences of its passages that are nearest the question in meaning
(`speechrag.answering.sentences`). Embedding those candidate sentences at question time made
a never-asked question's answer ~17x slower than its retrieval. A build therefore embeds every
sentence answers may quote (`quotable`: each prose passage split by `text.sentence_spans` with
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

Embedded once, and only what is new: a sentence that is its passage's only one takes the
passage's vector (the same words, embedded already), and a sentence the embedding cache holds
is never embedded again. A build publishes the passages first and adds these vectors as the
next generation (`index.build_index`): they are the second half of the work, and answers work
without them, only slower.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from speechrag.embedcache import Bulk, EmbeddingCache, embed, text_key
from speechrag.text import is_prose, sentence_spans

if TYPE_CHECKING:
    from speechrag.encoders import Encoder

FOLDER = "sentences"
KEYS = "keys.npy"
VECTORS = "vectors.npy"
# The manifest's description: a build whose spec differs (another split, another precision)
# makes the index stale, so `speechrag build` refreshes it.
SPEC = {"split": "sentence_spans(min_chars=2)", "dtype": "float16", "key": "sha256[:8]"}
MIN_CHARS = 2


def quotable(texts: Iterable[str]) -> dict[str, int | None]:
    """Every sentence an answer may quote from these passage texts, distinct, in first order,
    each with the row of a passage it is the whole of (its vector is that passage's), else None.

    A passage that is not prose (a title, a header, a caption: `text.is_prose`) is never quoted,
    so its sentences need no vector."""
    out: dict[str, int | None] = {}
    for row, text in enumerate(texts):
        if not is_prose(text):
            continue
        spans = sentence_spans(text, min_chars=MIN_CHARS)
        for a, b in spans:
            sentence = text[a:b]
            if len(spans) == 1 and out.get(sentence) is None:
                out[sentence] = row
            else:
                out.setdefault(sentence)
    return out


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
    """The sentence vectors a build stores, how many sentences were embedded now and how many
    took their passage's vector."""

    sentences: SentenceVectors
    embedded: int
    reused: int


def embed_sentences(encoder: Encoder, texts: Sequence[str], passage_vectors: np.ndarray, cache: EmbeddingCache,
                    *, progress: Callable[[int, int], None] | None = None, bulk: Bulk | None = None) -> Embedded:
    """The vectors of every sentence answers may quote from passages ``texts`` (whose vectors
    are ``passage_vectors``, row for row): a passage's only sentence takes its vector, the rest
    come from the cache or are embedded now, through it."""
    quoted = quotable(texts)
    rest = [s for s, row in quoted.items() if row is None]
    embedded_vectors, embedded, _ = embed(encoder, rest, cache, progress, bulk=bulk)
    vectors = np.zeros((len(quoted), passage_vectors.shape[1]), dtype=np.float32)
    at = {s: i for i, s in enumerate(rest)}
    for i, (sentence, row) in enumerate(quoted.items()):
        vectors[i] = passage_vectors[row] if row is not None else embedded_vectors[at[sentence]]
    return Embedded(SentenceVectors.from_sentences(list(quoted), vectors), embedded, len(quoted) - len(rest))
