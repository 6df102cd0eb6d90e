"""jieba 0.42's cut, on jieba-rs: `Cutter` (the default and the search mode) and a user
dictionary read as jieba reads it.

The cutting is jieba-rs (the ``rjieba`` bindings: jieba's algorithm, dictionary and HMM in Rust,
~15x faster than jieba in Python and the GIL released), made to give jieba 0.42's tokens;
tests/test_lexical.py compares the two on every text the tests have and on generated ones. Where
two cuts are equally probable (``一一一``: ``一一 一`` or ``一 一一``) each library's rounding may
pick its own, so the order of the same words can differ; BM25 cannot tell. The ``jieba`` package
is still installed, but only as data: its ``dict.txt`` (the dictionary jieba-rs embeds) is read
for place words (header.py) and for a user dictionary's word frequencies; it is never imported.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechrag.errors import CorpusError


def jieba_dictionary() -> Path:
    """jieba's ``dict.txt`` (``word freq tag`` a line), the dictionary jieba-rs embeds, found
    without importing jieba."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError("the jieba package (its dict.txt) is missing: pip install jieba")
    return Path(next(iter(spec.submodule_search_locations))) / "dict.txt"


# --- jieba 0.42's cut, on jieba-rs ------------------------------------------------------------

# jieba-rs 0.11 keeps runs such as ``COVID-19``, ``3.5K``, ``a_b`` or ``1.2.3`` whole where
# jieba's HMM splits them (``COVID`` ``-`` ``19``) and, in search mode, adds its own parts of them.
# Only a text holding a letter or digit next to one of these symbols can differ (jieba's block
# characters are [A-Za-z0-9+#&._%-]); such texts are cut, then the run is split as jieba's HMM
# does (its re_skip) and search mode's sub-words are added here as jieba adds them.
_MAY_DIFFER = re.compile(r"[A-Za-z0-9][+#&._%\-]|[+#&._%\-][A-Za-z0-9]")
_RUN = re.compile(r"[A-Za-z0-9+#&._%\-]{2,}")
_HMM_SKIP = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")  # jieba.finalseg.re_skip
_USERDICT_LINE = re.compile(r"^(.+?)( [0-9]+)?( [a-z]+)?$")  # jieba.re_userdict
# A word no text can reach (NUL is never inside a block jieba-rs cuts): it only carries the part
# of jieba's total frequency that jieba-rs does not count (see _load_userdict).
_TOTAL_ONLY = "\x00total"


class Cutter:
    """One jieba-rs dictionary (jieba's own plus an optional user dictionary) that cuts as
    ``jieba.Tokenizer`` 0.42 with the same user dictionary does, in its default mode (`cut`) and
    search mode (`cut_for_search`), HMM on. Thread-safe once built."""

    def __init__(self, userdict: Path | None = None) -> None:
        import rjieba

        self._jieba = rjieba.Jieba()
        # Words a user dictionary gives frequency 0, jieba's way to delete a word: jieba leaves
        # them out of its word graph and search mode and splits them if the HMM proposes them.
        self._deleted: frozenset[str] = frozenset()
        if userdict is not None:
            self._deleted = _load_userdict(self._jieba, userdict)

    def cut(self, text: str) -> list[str]:
        words: list[str] = self._jieba.cut(text, True)
        if not self._deleted and not _MAY_DIFFER.search(text):
            return words
        out: list[str] = []
        for w in words:
            if len(w) > 1 and w in self._deleted:
                out.extend(w)
            elif len(w) > 1 and _RUN.fullmatch(w) and not self._jieba.has_word(w):
                out.extend(p for p in _HMM_SKIP.split(w) if p)
            else:
                out.append(w)
        return out

    def cut_for_search(self, text: str) -> list[str]:
        if not self._deleted and not _MAY_DIFFER.search(text):
            words: list[str] = self._jieba.cut_for_search(text, True)
            return words
        out: list[str] = []
        for w in self.cut(text):
            for n in (2, 3):  # jieba.Tokenizer.cut_for_search: known 2- and 3-grams, then the word
                if len(w) > n:
                    out.extend(g for g in (w[i : i + n] for i in range(len(w) - n + 1)) if self._known(g))
            out.append(w)
        return out

    def _known(self, word: str) -> bool:
        return bool(self._jieba.has_word(word)) and word not in self._deleted


def _read_userdict(path: Path) -> list[tuple[str, int | None, str | None]]:
    """(word, frequency or None, tag or None) per line, parsed as jieba.load_userdict does."""
    entries = []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        try:
            line = raw.strip().decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError:
            raise CorpusError(f"{path.name}: line {number} is not UTF-8, as jieba's user dictionary must be") from None
        match = _USERDICT_LINE.match(line)
        if match is None:  # an empty line
            continue
        word, freq, tag = match.groups()
        entries.append((word, int(freq) if freq else None, tag.strip() if tag else None))
    return entries


class _JiebaFrequencies:
    """jieba's frequency table (``Tokenizer.FREQ``: every word, and every prefix of one at 0) and
    total, kept as jieba keeps them while it loads a user dictionary."""

    def __init__(self) -> None:
        self.freq: dict[str, int] = {}
        self.total = 0
        with jieba_dictionary().open(encoding="utf-8") as fh:
            for line in fh:
                word, freq = line.split(" ")[:2]
                self.add(word, int(freq))

    def add(self, word: str, freq: int) -> None:
        self.freq[word] = freq
        self.total += freq  # even when the word was there: jieba never subtracts its old count
        for end in range(1, len(word)):
            self.freq.setdefault(word[:end], 0)

    def suggest(self, word: str, segments: Sequence[str]) -> int:
        # jieba.Tokenizer.suggest_freq(word, tune=False), to the same float operations: jieba-rs
        # computes it in logarithms, one off in about one word in seven.
        share = 1.0
        for seg in segments:
            share *= self.freq.get(seg, 1) / float(self.total)
        return max(int(share * self.total) + 1, self.freq.get(word, 1))


def _load_userdict(jieba: Any, path: Path) -> frozenset[str]:
    """Add ``path``'s words to ``jieba`` (an rjieba.Jieba) with the frequencies jieba would give
    them, and jieba's total; returns the words given frequency 0."""
    entries = _read_userdict(path)
    words = [w for w, _, _ in entries]
    # A missing frequency is jieba's suggest_freq, which needs jieba's counts; so does a word
    # already known, whose old count jieba keeps in its total. Only then is dict.txt read.
    table = None
    if any(f is None for _, f, _ in entries) or len(set(words)) < len(words) or any(map(jieba.has_word, words)):
        table = _JiebaFrequencies()
    deleted: set[str] = set()
    uncounted = 0  # counts jieba's total keeps and jieba-rs's drops (a word's previous count)
    for word, given, tag in entries:
        freq = given
        if table is not None:
            if freq is None:
                freq = table.suggest(word, jieba.cut(word, False))
            if jieba.has_word(word):
                uncounted += table.freq.get(word, 0)
            table.add(word, freq)
        assert freq is not None
        if freq == 0:
            deleted.add(word)
        else:
            deleted.discard(word)
        if freq or jieba.has_word(word):
            jieba.add_word(word, freq, tag)
    if uncounted:
        jieba.add_word(_TOTAL_ONLY, uncounted, None)
    return frozenset(deleted)
