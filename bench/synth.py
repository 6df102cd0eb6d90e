"""Synthetic corpora for the scale benchmark, grown from the shipped corpus.

Text: each synthetic passage is 2-4 sentences of the shipped corpus. Most slots continue a run
of consecutive sentences from one "home" paragraph (so a passage reads like a paragraph and
keeps its topic); the rest are sentences drawn from anywhere in the corpus. jieba and BM25 see
real Chinese sentences with the corpus's own term statistics.

Vectors: the encoder never runs at scale. Every distinct sentence is embedded once with the
real encoder (``encode_passages``); a synthetic passage's vector is the length-weighted mean of
its sentences' vectors, normalised, plus isotropic Gaussian noise of norm ``NOISE`` (0.2, so
cosine to the clean mixture is about 0.98), normalised again. Passages sharing sentences are
therefore near each other, as paraphrases would be, and no two vectors are identical.

Queries: the corpus's eval questions plus clauses cut from random sentences, embedded once with
``encode_queries``.

Everything is a pure function of (base data, size, seed), so each benchmark process can rebuild
the same corpus instead of shipping gigabytes between processes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechrag.passage import Passage

SENTENCE_RE = re.compile(r"[^。！？；]+[。！？；]?")
CLAUSE_RE = re.compile(r"[^，、。！？；：]+")
MIN_SENTENCE = 8
NOISE = 0.2
STAY_HOME = 0.7  # chance that the next slot continues the home paragraph
CHUNK = 50_000


def split_sentences(text: str) -> list[str]:
    return [s for s in (m.group(0).strip() for m in SENTENCE_RE.finditer(text)) if s]


@dataclass(frozen=True)
class Base:
    """The real material: sentences (with the passage each came from) and the queries."""

    passages: tuple[Passage, ...]
    sentences: tuple[str, ...]
    home: np.ndarray  # sentence -> index of its passage
    first: np.ndarray  # passage -> index of its first sentence
    count: np.ndarray  # passage -> number of sentences
    sentence_vectors: np.ndarray
    queries: tuple[str, ...]
    query_vectors: np.ndarray

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "base.npz", home=self.home, first=self.first, count=self.count,
                 sentence_vectors=self.sentence_vectors, query_vectors=self.query_vectors)
        meta = {"passages": [p.to_dict() for p in self.passages], "sentences": list(self.sentences),
                "queries": list(self.queries)}
        (directory / "base.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, directory: Path) -> Base:
        meta = json.loads((directory / "base.json").read_text("utf-8"))
        with np.load(directory / "base.npz") as z:
            arrays = {k: z[k] for k in z.files}
        return cls(
            passages=tuple(Passage.from_dict(d) for d in meta["passages"]),
            sentences=tuple(meta["sentences"]),
            queries=tuple(meta["queries"]),
            **arrays,
        )


def sentence_table(passages: Sequence[Passage]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    sentences: list[str] = []
    home: list[int] = []
    first = np.zeros(len(passages), np.int64)
    count = np.zeros(len(passages), np.int64)
    for i, p in enumerate(passages):
        first[i] = len(sentences)
        parts = [s for s in split_sentences(p.text) if len(s) >= MIN_SENTENCE]
        sentences.extend(parts)
        home.extend([i] * len(parts))
        count[i] = len(parts)
    return sentences, np.asarray(home, np.int64), first, count


def make_queries(sentences: Sequence[str], questions: Sequence[str], n: int, seed: int) -> list[str]:
    """The eval questions, then clauses (one or two) cut from random sentences, up to ``n``."""
    rng = np.random.default_rng(seed + 1)
    out = list(dict.fromkeys(q.strip() for q in questions if q.strip()))[:n]
    seen = set(out)
    while len(out) < n:
        clauses = [c for c in CLAUSE_RE.findall(sentences[int(rng.integers(len(sentences)))]) if len(c) >= 4]
        if not clauses:
            continue
        j = int(rng.integers(len(clauses)))
        q = clauses[j] + (clauses[j + 1] if j + 1 < len(clauses) and rng.random() < 0.4 else "")
        if len(q) >= 6 and q not in seen:
            seen.add(q)
            out.append(q)
    return out


def layout(base: Base, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sentence ids (n, 4; -1 pads) and the home passage of each synthetic passage."""
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero(base.count > 0)
    homes = usable[rng.integers(len(usable), size=n)]
    length = rng.integers(2, 5, size=n)
    start = base.first[homes] + rng.integers(0, base.count[homes])
    ids = np.full((n, 4), -1, np.int64)
    end = base.first[homes] + base.count[homes]
    nxt = start.copy()
    for slot in range(4):
        active = slot < length
        stay = (rng.random(n) < STAY_HOME) & (nxt < end)
        if slot == 0:
            stay[:] = True
        anywhere = rng.integers(len(base.sentences), size=n)
        pick = np.where(stay, nxt, anywhere)
        ids[active, slot] = pick[active]
        nxt = np.where(stay, nxt + 1, nxt)
    return ids, homes


def vectors(base: Base, ids: np.ndarray, seed: int) -> np.ndarray:
    """Length-weighted mean of sentence vectors, normalised, plus noise of norm NOISE, normalised."""
    rng = np.random.default_rng(seed + 2)
    lengths = np.array([len(s) for s in base.sentences], np.float32)
    s_vecs = base.sentence_vectors.astype(np.float32)
    dim = s_vecs.shape[1]
    out = np.empty((len(ids), dim), np.float32)
    for a in range(0, len(ids), CHUNK):
        chunk = ids[a : a + CHUNK]
        w = np.where(chunk >= 0, lengths[np.maximum(chunk, 0)], 0.0).astype(np.float32)
        mix = np.einsum("nk,nkd->nd", w, s_vecs[np.maximum(chunk, 0)])
        mix /= np.linalg.norm(mix, axis=1, keepdims=True)
        noise = rng.standard_normal(mix.shape, dtype=np.float32)
        noise *= NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
        mix += noise
        mix /= np.linalg.norm(mix, axis=1, keepdims=True)
        out[a : a + CHUNK] = mix
    return out


def texts(base: Base, ids: np.ndarray) -> list[str]:
    s = base.sentences
    return ["".join(s[j] for j in row if j >= 0) for row in ids.tolist()]


def make_passages(base: Base, n: int, seed: int) -> tuple[list[Passage], np.ndarray]:
    """``n`` synthetic Passages (metadata of their home paragraph) and their unit vectors."""
    ids, homes = layout(base, n, seed)
    body = texts(base, ids)
    real = base.passages
    passages = [
        Passage(id=f"syn{i:07d}", speech_id=real[h].speech_id, speech_title=real[h].speech_title,
                section=real[h].section, paragraph=i + 1, text=t, source=real[h].source, line=real[h].line)
        for i, (t, h) in enumerate(zip(body, homes.tolist(), strict=True))
    ]
    return passages, vectors(base, ids, seed)


def make_texts(base: Base, n: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The same corpus as ``make_passages`` as plain texts, plus the sentence ids of each."""
    ids, _ = layout(base, n, seed)
    return texts(base, ids), vectors(base, ids, seed), ids
