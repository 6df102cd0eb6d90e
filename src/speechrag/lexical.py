"""Keyword search: jieba tokens scored with BM25 (bm25s), saved beside the dense index.

Tokens come from jieba's search mode, which emits a long word and its shorter sub-words
(``计划生育`` -> ``计划``, ``生育``, ``计划生育``), so a query can match either granularity.
Punctuation, whitespace and a short list of function words are dropped: in BM25 they only add
noise to long paragraphs. A user dictionary (``corpus/userdict.txt``, jieba's format) is copied
into the index so queries are cut exactly as the passages were.

The cutting is `jiebacut.Cutter` (jieba-rs made to give jieba 0.42's tokens). This module holds
what is made of its tokens: the `Tokenizer` (lower case, no punctuation or stop words), the cut
of many texts in a pool of processes, and the BM25 matrix (`KeywordIndex`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing
import os
import shutil
import sys
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from speechrag.jiebacut import Cutter

log = logging.getLogger(__name__)


def _bm25s() -> Any:
    import bm25s

    # bm25s sets its own logger to DEBUG on import; hand the level back to the application.
    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s

# jieba's user dictionary may sit in the corpus folder (it is no speech); it is copied into the index.
USERDICT_NAME = "userdict.txt"

# Function words and speech fillers that appear in nearly every paragraph of these speeches.
_STOPWORDS_TEXT = """
    的 了 和 与 及 或 是 在 对 把 被 将 从 向 以 为 由 于 而 并 也 都 又 就 还 再 很 更 最 这 那
    其 之 所 等 个 着 过 啊 吧 呢 吗 嘛 呀 我 你 他 她 它 我们 你们 他们 大家 同志 同志们 一个 一些
    们 这个 那个 这些 那些 这样 那样 这种 如何 什么 怎么 怎样 哪些 可以 能够 已经 没有 不是 就是 以及 因为
    所以 但是 如果 而且 并且 进行 一是 二是 三是 四是 五是 一定 要 有 不 上 下 中 到 说 会 能 让 使 给
    a an and are as at be by for from in is it of on or that the this to was were with
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def _is_content(token: str) -> bool:
    if not token or token in STOPWORDS:
        return False
    # Keep a token if any character is a letter or digit; drops punctuation and symbols.
    return any(unicodedata.category(c)[0] in "LN" for c in token)


# A cut word as indexed, or None when it is dropped. Cached because the same few thousand words
# make up most of any text: at a million passages the uncached check cost more than the cutting.
# Bounded, since a server's queries may bring any number of new words.
@lru_cache(maxsize=1 << 17)
def _keep(word: str) -> str | None:
    token = word.strip().lower()
    return token if _is_content(token) else None


_CUTTERS: dict[str, Cutter] = {}
_CUTTERS_LOCK = threading.Lock()
_FORK_LOCK = threading.Lock()


class Tokenizer:
    """jieba search-mode tokens (`Cutter`) as indexed: lower-cased, without punctuation and
    stop words. Cutters are shared by user-dictionary content, so every index generation a
    long-running server loads reuses one dictionary instead of holding its own."""

    def __init__(self, userdict: Path | None = None) -> None:
        self.userdict = userdict if userdict is not None and userdict.is_file() else None
        self._cut: Cutter | None = None

    def cutter(self) -> Cutter:
        if self._cut is None:
            key = hashlib.sha256(self.userdict.read_bytes()).hexdigest() if self.userdict else ""
            with _CUTTERS_LOCK:
                if key not in _CUTTERS:
                    _CUTTERS[key] = Cutter(self.userdict)
                self._cut = _CUTTERS[key]
        return self._cut

    def __call__(self, text: str) -> list[str]:
        return [t for t in map(_keep, self.cutter().cut_for_search(text)) if t is not None]

    @property
    def fingerprint(self) -> str:
        """Changes whenever the same text could be cut differently."""
        h = hashlib.sha256()
        h.update(f"rjieba-{metadata.version('rjieba')}\0".encode())
        h.update("\n".join(sorted(STOPWORDS)).encode())
        if self.userdict is not None:
            # jieba's dict.txt gives the frequencies of words the user dictionary lists without one.
            h.update(f"jieba-{metadata.version('jieba')}\0".encode())
            h.update(b"\0userdict\0" + self.userdict.read_bytes())
        return h.hexdigest()[:16]


# Below this many texts a process pool costs more (start-up, dictionary load) than it saves.
PARALLEL_MIN = 20_000
_CHUNK = 2_000
# A passage with no content token gets this one, which no query can produce, so it still
# occupies its row (bm25s cannot index an empty document).
_EMPTY = "\x00"
# Pairs (passage, token) scored at a time in _lucene_matrix.
_SCORE_BLOCK = 1 << 20


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cut(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tokens of ``texts`` as (chunk vocabulary, int32 token ids into it, tokens per text):
    compact to send between processes."""
    cutter = tokenizer.cutter()
    words: list[str] = []
    counts: list[int] = []
    for text in texts:
        cut = cutter.cut_for_search(text)
        words += cut
        counts.append(len(cut))
    # Each distinct word is judged once, then every word becomes its id in one C-level pass: a
    # loop over the tokens in Python cost more than jieba-rs's cutting. Ids follow first
    # appearance; -1 marks a word that is not indexed.
    vocab: dict[str, int] = {}
    code: dict[str, int] = {}
    for word in dict.fromkeys(words):
        token = _keep(word)
        code[word] = -1 if token is None else vocab.setdefault(token, len(vocab))
    ids = np.fromiter(map(code.__getitem__, words), dtype=np.int32, count=len(words))
    kept = ids >= 0
    ends = np.cumsum(counts, dtype=np.int64)
    kept_before = np.concatenate(([0], np.cumsum(kept, dtype=np.int64)))
    lengths = (kept_before[ends] - kept_before[ends - np.asarray(counts, dtype=np.int64)]).astype(np.int32)
    ids = ids[kept]
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        ids = np.insert(ids, kept_before[ends[empty]], vocab.setdefault(_EMPTY, len(vocab)))
        lengths[empty] = 1
    return list(vocab), ids, lengths


# The tokenizer of the build that forked the pool: a forked worker uses it as inherited, loaded
# and without taking _CUTTERS_LOCK (another parent thread may have held it at the fork).
_FORK_TOKENIZER: Tokenizer | None = None


def _cut_in_worker(userdict: str | None, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    tokenizer = _FORK_TOKENIZER or Tokenizer(Path(userdict) if userdict else None)
    return _cut(tokenizer, texts)


def _cut_chunks(
    texts: Sequence[str], tokenizer: Tokenizer, workers: int
) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
    """Chunks of ``texts`` cut into tokens, in order."""
    chunks = [texts[i : i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield _cut(tokenizer, chunk)
        return
    # fork: children share the loaded dictionary and need no importable __main__ (spawn re-runs
    # the caller's script). They only run jieba-rs (no threads, no locks; its per-thread HMM
    # state is the child's own) and Python that takes no lock another thread could be holding at
    # the fork. Processes rather than threads: jieba-rs releases the GIL, but the token handling
    # around it holds it, and a 1M-passage build cut single-core (~100 s) missed its 60 s goal.
    global _FORK_TOKENIZER
    fork = os.name == "posix"
    tokenizer("")  # load the dictionary before forking
    userdict = str(tokenizer.userdict) if tokenizer.userdict else None
    with _FORK_LOCK:  # one pool at a time, so _FORK_TOKENIZER is the right one for it
        _FORK_TOKENIZER = tokenizer if fork else None
        ctx = multiprocessing.get_context("fork" if fork else "spawn")
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx) as pool:
                yield from pool.map(_cut_in_worker, [userdict] * len(chunks), chunks)
        finally:
            _FORK_TOKENIZER = None


def _token_ids(
    texts: Sequence[str], tokenizer: Tokenizer, workers: int
) -> tuple[dict[str, int], list[tuple[np.ndarray, np.ndarray]]]:
    """The vocabulary (token -> id, ids by first appearance) and, per chunk of ``texts``, its
    int32 token ids into that vocabulary and int32 tokens per text."""
    vocab: dict[str, int] = {}
    chunks: list[tuple[np.ndarray, np.ndarray]] = []
    for chunk_vocab, ids, lengths in _cut_chunks(texts, tokenizer, workers):
        # Tokens become ids as each chunk arrives: a million passages held as lists of token
        # strings took ~14 GB, as int32 arrays ~0.5 GB.
        remap = np.array([vocab.setdefault(t, len(vocab)) for t in chunk_vocab], dtype=np.int32)
        chunks.append((remap[ids] if len(ids) else np.zeros(0, np.int32), lengths))
    return vocab, chunks


def _bm25_from_ids(vocab: dict[str, int], chunks: list[tuple[np.ndarray, np.ndarray]]) -> Any:
    """A ``bm25s.BM25`` holding what ``BM25().index((docs, vocab), create_empty_token=False)``
    would hold for the texts ``chunks`` describe (see `_token_ids`; the list is emptied).

    bm25s computes that index in Python loops over the passages, ~50 s at a million; this builds
    the same arrays, to the bit (tests/test_lexical.py compares every saved file), with numpy.
    The object is filled as ``BM25.index`` fills it, so ``save``, ``load`` and ``get_scores``
    are bm25s's own.
    """
    bm25 = _bm25s().BM25()
    # The arrays are built for bm25s's defaults only; should a release change them, fail loudly.
    if (bm25.method, bm25.idf_method, bm25.dtype, bm25.int_dtype) != ("lucene", "lucene", "float32", "int32"):
        raise RuntimeError(f"bm25s {metadata.version('bm25s')} changed its defaults; _lucene_matrix needs updating")
    data, indices, indptr, num_docs = _lucene_matrix(chunks, len(vocab), bm25.k1, bm25.b)
    bm25.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": num_docs}
    bm25.vocab_dict = vocab
    bm25.unique_token_ids_set = set(vocab.values())
    bm25.nonoccurrence_array = None  # lucene has none (only bm25l and bm25+ do)
    return bm25


def _lucene_matrix(
    chunks: list[tuple[np.ndarray, np.ndarray]], n_vocab: int, k1: float, b: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """bm25s's (0.3) lucene score matrix, passages x tokens, as CSC ``data`` (float32), ``indices``
    (int32 passage rows), ``indptr`` (int64), and the number of passages.

    Entry (row d, token t) with t in d: idf(t) * tf / (k1 * (1 - b + b * len(d) / avg len) + tf),
    idf(t) = log(1 + (N - df + 0.5) / (df + 0.5)), with bm25s's dtypes and rounding: idf is
    computed in Python floats and stored as float32; the tf part and the product in float64
    (a numpy float64 scalar meets bm25s's float32 tf array), the product stored as float32.
    """
    lengths = np.concatenate([n for _, n in chunks]) if chunks else np.zeros(0, np.int32)
    num_docs = len(lengths)
    # One int64 key per token occurrence, token << 32 | row. Sorted, a token's repeats in one
    # passage sit together and the distinct keys are in CSC order (token, then row): one sort
    # (numpy's SIMD sort, ~1 s for 100M keys) replaces bm25s's per-passage Counters and its
    # argsort. Each chunk is released once copied; the peak, ~17 bytes a token (keys, pair
    # starts, rows), is below bm25s's (its per-pair arrays, sort keys and argsort, ~36 a pair).
    keys = np.empty(int(lengths.sum(dtype=np.int64)), dtype=np.int64)
    pos = row = 0
    chunks.reverse()
    while chunks:
        ids, n = chunks.pop()
        part = keys[pos : pos + len(ids)]
        part[:] = ids
        part <<= 32
        part |= np.repeat(np.arange(row, row + len(n), dtype=np.int64), n)
        pos += len(ids)
        row += len(n)
        del ids, n, part
    keys.sort()
    first = np.empty(len(keys), dtype=bool)  # where a (token, row) pair starts
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    del first
    nnz = len(starts)
    rows = keys.view(np.int32)[0 if sys.byteorder == "little" else 1 :: 2]  # the keys' low halves
    indices = rows[starts]
    # indptr[t]: the pairs of tokens before t; a token's document frequency is its column's size.
    indptr = np.searchsorted(starts, np.searchsorted(keys, np.arange(n_vocab + 1, dtype=np.int64) << 32))
    indptr = indptr.astype(np.int64, copy=False)
    del keys, rows
    df = np.diff(indptr)

    # idf through math.log (as bm25s), once per distinct document frequency: numpy's SIMD log
    # may differ from libm's in the last bit. A token in no passage keeps idf 0, as in bm25s.
    idf = np.zeros(n_vocab, dtype=np.float32)
    dfs, where = np.unique(df, return_inverse=True)
    idf_of = np.array([math.log(1 + (num_docs - d + 0.5) / (d + 0.5)) if d else 0.0 for d in dfs.tolist()])
    idf[:] = idf_of[where]

    norm = np.zeros(num_docs)
    if pos:  # else no passage has a token (avg 0): nothing to score
        # bm25s: the mean of an np.array of Python ints (int64), then per passage
        # k1 * ((1 - b) + b * len / avg) in float64, the same operations in the same order.
        lengths64 = lengths.astype(np.int64)
        norm = k1 * ((1 - b) + b * lengths64 / lengths64.mean())
    # The scores in blocks of pairs: with float64 temporaries the size of the whole matrix,
    # faulting in their fresh memory (numpy asks the kernel for huge pages) took longer than
    # the arithmetic; block-sized ones are reused.
    data = np.empty(nnz, dtype=np.float32)
    for lo in range(0, nnz, _SCORE_BLOCK):
        hi = min(lo + _SCORE_BLOCK, nnz)
        ends = starts[lo + 1 : hi + 1] if hi < nnz else np.append(starts[lo + 1 : hi], pos)
        tf = (ends - starts[lo:hi]).astype(np.float32)  # bm25s's tf array is float32
        x = norm[indices[lo:hi]]
        x += tf  # float64 + float32: float64, as bm25s's float64 scalar + float32 array
        np.divide(tf, x, out=x)
        # Each pair's idf: the tokens (columns) this block spans, each repeated for its pairs here.
        first_col = int(np.searchsorted(indptr, lo, "right")) - 1
        end_col = int(np.searchsorted(indptr, hi, "left"))
        counts = np.minimum(indptr[first_col + 1 : end_col + 1], hi) - np.maximum(indptr[first_col:end_col], lo)
        np.multiply(x, np.repeat(idf[first_col:end_col], counts), out=data[lo:hi])  # float64, stored float32
    return data, indices, indptr, num_docs


class KeywordIndex:
    """BM25 over jieba search-mode tokens; row i is passage i, the same numbering as the FAISS index."""

    def __init__(self, bm25: Any, tokenizer: Tokenizer) -> None:
        self._bm25 = bm25
        self.tokenizer = tokenizer

    @property
    def size(self) -> int:
        return int(self._bm25.scores["num_docs"])

    def tokenize(self, text: str) -> list[str]:
        return self.tokenizer(text)

    @classmethod
    def build(
        cls, texts: Sequence[str], userdict: Path | None = None, workers: int | None = None
    ) -> KeywordIndex:
        """BM25 over ``texts``. Large corpora are cut in ``workers`` processes (default: one per
        available core from PARALLEL_MIN texts on)."""
        if workers is None:
            workers = available_cores() if len(texts) >= PARALLEL_MIN else 1
        tokenizer = Tokenizer(userdict)
        vocab, chunks = _token_ids(texts, tokenizer, workers)
        return cls(_bm25_from_ids(vocab, chunks), tokenizer)

    def search(self, query: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Rows and BM25 scores of the best ``k`` passages sharing a token with ``query``.

        Passages with score 0 (no shared token) are never returned, so fewer than ``k`` rows
        may come back, and none for a query made only of stop words.
        """
        vocab = self._bm25.vocab_dict
        tokens = [t for t in self.tokenize(query) if t in vocab]
        if not tokens or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        # Ties broken by row so results are deterministic.
        top = top[np.lexsort((top, -scores[top]))]
        top = top[scores[top] > 0]
        return top.astype(np.int64), scores[top]

    def save(self, directory: Path) -> list[Path]:
        """Write the index into ``directory``; returns the files written."""
        directory.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(directory), show_progress=False)
        if self.tokenizer.userdict is not None:
            shutil.copyfile(self.tokenizer.userdict, directory / USERDICT_NAME)
        return sorted(p for p in directory.iterdir() if p.is_file())

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex:
        bm25s = _bm25s()

        bm25 = bm25s.BM25.load(str(directory), load_corpus=False, mmap=False)
        return cls(bm25, Tokenizer(directory / USERDICT_NAME))
