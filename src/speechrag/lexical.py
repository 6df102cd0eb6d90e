"""Keyword search: jieba tokens scored with BM25 (bm25s), saved beside the dense index.

Tokens come from jieba's search mode, which emits a long word and its shorter sub-words
(``计划生育`` -> ``计划``, ``生育``, ``计划生育``), so a query can match either granularity.
Punctuation, whitespace and a short list of function words are dropped: in BM25 they only add
noise to long paragraphs. A user dictionary (``corpus/userdict.txt``, jieba's format) is copied
into the index so queries are cut exactly as the passages were.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import shutil
import threading
import unicodedata
from array import array
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

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


_CUTTERS: dict[str, Any] = {}
_CUTTERS_LOCK = threading.Lock()
_FORK_LOCK = threading.Lock()


class Tokenizer:
    """jieba search-mode cutter with its own dictionary, so a user dictionary never leaks into
    jieba's global tokenizer (other code in the process may use jieba differently)."""

    def __init__(self, userdict: Path | None = None) -> None:
        self.userdict = userdict if userdict is not None and userdict.is_file() else None
        self._jieba: Any = None

    def _cutter(self) -> Any:
        if self._jieba is None:
            # Loading jieba's dictionary takes ~1 s and holds the GIL; every index generation
            # loaded by a long-running server would pay it again, so cutters are shared by
            # user-dictionary content.
            key = hashlib.sha256(self.userdict.read_bytes()).hexdigest() if self.userdict else ""
            with _CUTTERS_LOCK:
                if key not in _CUTTERS:
                    import jieba

                    # jieba logs its dictionary loading at DEBUG through its own stderr handler.
                    jieba.setLogLevel(logging.WARNING)
                    # Without a user dictionary, jieba's global tokenizer is the same thing and
                    # ingestion (place detection) has usually loaded it already.
                    t = jieba.dt if self.userdict is None else jieba.Tokenizer()
                    t.initialize()
                    if self.userdict is not None:
                        t.load_userdict(str(self.userdict))
                    _CUTTERS[key] = t
                self._jieba = _CUTTERS[key]
        return self._jieba

    def __call__(self, text: str) -> list[str]:
        cut = self._cutter().cut_for_search(text)
        return [t for t in (w.strip().lower() for w in cut) if _is_content(t)]

    @property
    def fingerprint(self) -> str:
        """Changes whenever the same text could be cut differently."""
        h = hashlib.sha256()
        h.update(f"jieba-{metadata.version('jieba')}\0".encode())
        h.update("\n".join(sorted(STOPWORDS)).encode())
        if self.userdict is not None:
            h.update(b"\0userdict\0" + self.userdict.read_bytes())
        return h.hexdigest()[:16]


# Below this many texts a process pool costs more (start-up, dictionary load) than it saves.
PARALLEL_MIN = 20_000
_CHUNK = 2_000
# A passage with no content token gets this one, which no query can produce, so it still
# occupies its row (bm25s cannot index an empty document).
_EMPTY = "\x00"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cut(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[list[str], array[int], array[int]]:
    """Tokens of ``texts`` as (chunk vocabulary, token ids into it, tokens per text): compact to
    send between processes."""
    vocab: dict[str, int] = {}
    ids: array[int] = array("i")
    lengths: array[int] = array("i")
    for text in texts:
        tokens = tokenizer(text) or [_EMPTY]
        ids.extend(vocab.setdefault(t, len(vocab)) for t in tokens)
        lengths.append(len(tokens))
    return list(vocab), ids, lengths


# The tokenizer of the build that forked the pool: a forked worker uses it as inherited, loaded
# and without taking _CUTTERS_LOCK (another parent thread may have held it at the fork).
_FORK_TOKENIZER: Tokenizer | None = None


def _cut_in_worker(userdict: str | None, texts: Sequence[str]) -> tuple[list[str], array[int], array[int]]:
    tokenizer = _FORK_TOKENIZER or Tokenizer(Path(userdict) if userdict else None)
    return _cut(tokenizer, texts)


def _cut_chunks(
    texts: Sequence[str], tokenizer: Tokenizer, workers: int
) -> Iterator[tuple[list[str], array[int], array[int]]]:
    """Chunks of ``texts`` cut into tokens, in order."""
    chunks = [texts[i : i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield _cut(tokenizer, chunk)
        return
    # fork, as jieba's own parallel mode does: children share the loaded dictionary and need no
    # importable __main__ (spawn re-runs the caller's script). They only run jieba, pure Python
    # that takes no lock another thread could be holding at the fork.
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


class KeywordIndex:
    """BM25 over jieba tokens; row i is passage i, the same numbering as the FAISS index."""

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
        available core from PARALLEL_MIN texts on); jieba is pure Python and holds the GIL."""
        bm25s = _bm25s()

        tokenizer = Tokenizer(userdict)
        if workers is None:
            workers = available_cores() if len(texts) >= PARALLEL_MIN else 1
        vocab: dict[str, int] = {}
        docs: list[array[int]] = []
        for chunk_vocab, ids, lengths in _cut_chunks(texts, tokenizer, workers):
            # Tokens become ids as each chunk arrives: a million passages held as lists of token
            # strings took ~14 GB, as int32 arrays ~0.5 GB.
            remap = np.array([vocab.setdefault(t, len(vocab)) for t in chunk_vocab], dtype=np.int32)
            global_ids = remap[np.frombuffer(ids, dtype=np.int32)] if len(ids) else np.zeros(0, np.int32)
            start = 0
            for n in lengths:
                docs.append(array("i", global_ids[start : start + n].tobytes()))
                start += n
        bm25 = bm25s.BM25()
        bm25.index((docs, vocab), show_progress=False, create_empty_token=False)
        return cls(bm25, tokenizer)

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
