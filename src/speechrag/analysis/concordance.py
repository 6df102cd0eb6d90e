"""Concordance: every occurrence of a phrase in the speeches, with its context and citation.

Matching is on the text as the index holds it: both the phrase and the corpus are in the form
`speechrag.text.normalise` gives (full-width digits and letters as ASCII, no stray CJK
spaces), so ２０１４年 finds 2014年. It is exact string matching, never tokens: 常态 is found
inside 新常态. Occurrences do not overlap (the next search starts after a match, as
`str.count` counts), a phrase across a split paragraph's parts is found once, and near-twin
paragraphs in two speeches count once in each.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from speechrag.analysis.collection import Collection, Index, Paragraph, Years, check_int, load_collection
from speechrag.errors import QueryError
from speechrag.text import normalise

MAX_PHRASE_CHARS = 200
MAX_CONTEXT = 500
SORTS = ("date", "speech", "left", "right")


@dataclass(frozen=True)
class Occurrence:
    """One place a phrase stands: the speech (title, date, speaker, place), the section and
    paragraph, the citation of the part it starts in, and the text around it."""

    speech_id: str
    title: str
    date: str
    speaker: str
    place: str
    section: str
    paragraph: int
    citation: str
    left: str
    match: str
    right: str
    offset: int  # where the match starts in the (joined) paragraph
    passage_id: str  # the passage (part) the match starts in

    @property
    def line(self) -> str:
        """``left[match]right``, the concordance line as plain text."""
        return f"{self.left}[{self.match}]{self.right}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Occurrence:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Concordance:
    """The occurrences of ``phrase`` (as normalised) in ``speeches`` speeches of ``characters``
    characters, in the order ``sort`` asked for."""

    phrase: str
    regex: bool
    occurrences: tuple[Occurrence, ...]
    speeches: int
    characters: int

    def __len__(self) -> int:
        return len(self.occurrences)

    def __iter__(self) -> Iterator[Occurrence]:
        return iter(self.occurrences)

    def to_dict(self) -> dict[str, Any]:
        return {"phrase": self.phrase, "regex": self.regex, "count": len(self.occurrences),
                "speeches": self.speeches, "characters": self.characters,
                "occurrences": [o.to_dict() for o in self.occurrences]}


@dataclass(frozen=True)
class Phrase:
    """What to look for: ``text`` as normalised, and the compiled ``pattern``."""

    text: str
    regex: bool
    pattern: re.Pattern[str]


def compile_phrase(phrase: object, *, regex: bool = False) -> Phrase:
    """The phrase, normalised as corpus text is; QueryError for an empty or too long phrase, a
    broken regular expression or one that matches the empty string."""
    if not isinstance(phrase, str):
        raise QueryError(f"phrase must be a string, not {type(phrase).__name__}")
    text = normalise(phrase)
    if not text:
        raise QueryError(f"phrase is empty after normalising. Currently, phrase is {phrase!r}")
    if len(text) > MAX_PHRASE_CHARS:
        raise QueryError(f"phrase must be at most {MAX_PHRASE_CHARS} characters. Currently, it has {len(text)}")
    if not regex:
        return Phrase(text, False, re.compile(re.escape(text)))
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise QueryError(f"phrase {text!r} is not a regular expression: {exc}") from None
    if pattern.search("") is not None:
        raise QueryError(f"phrase {text!r} matches the empty string; give a pattern that needs a character")
    return Phrase(text, True, pattern)


def find_spans(collection: Collection, phrase: Phrase) -> Iterator[tuple[Paragraph, int, int]]:
    """(paragraph, start, end) of every match, in collection order. A plain phrase is found in
    one scan of the joined text; a regular expression paragraph by paragraph (a class such as
    ``\\s`` could otherwise run across the line break that separates them)."""
    paragraphs = collection.paragraphs
    if not phrase.regex:
        text, starts = collection.joined
        for m in phrase.pattern.finditer(text):
            i = bisect.bisect_right(starts, m.start()) - 1
            yield paragraphs[i], m.start() - starts[i], m.end() - starts[i]
        return
    for para in paragraphs:
        for m in phrase.pattern.finditer(para.text):
            yield para, m.start(), m.end()


def occurrence(para: Paragraph, start: int, end: int, context: int) -> Occurrence:
    speech, passage = para.speech, para.passage_at(start)
    return Occurrence(
        speech_id=speech.id, title=speech.title, date=speech.date, speaker=speech.speaker, place=speech.place,
        section=para.first.section, paragraph=para.first.paragraph, citation=passage.citation,
        left=para.text[max(0, start - context):start], match=para.text[start:end],
        right=para.text[end:end + context], offset=start, passage_id=passage.id,
    )


def sort_occurrences(items: Iterable[Occurrence], sort: str) -> list[Occurrence]:
    """``date``: oldest speech first (undated last), then reading order; ``speech``: reading
    order (the index's); ``left``: by the words just before the match, read backwards (the
    concordancer's left sort); ``right``: by the words just after it."""
    listed = list(items)  # reading order already: every sort below is stable
    if sort == "date":
        return sorted(listed, key=lambda o: (not o.date, o.date))
    if sort == "left":
        return sorted(listed, key=lambda o: (o.left[::-1], o.match))
    if sort == "right":
        return sorted(listed, key=lambda o: (o.match, o.right))
    if sort == "speech":
        return listed
    raise QueryError(f"sort must be one of {', '.join(SORTS)}. Currently, sort is {sort!r}")


def concordance(
    phrase: str,
    *,
    speeches: str | Iterable[str] | None = None,
    speaker: str | Iterable[str] | None = None,
    place: str | Iterable[str] | None = None,
    years: Years = None,
    context: int = 20,
    regex: bool = False,
    sort: str = "date",
    index: Index = None,
) -> Concordance:
    """Every occurrence of ``phrase`` in the speeches that pass the filters (as
    `speechrag.retrieve` takes them), with ``context`` characters either side (within the
    paragraph), its speech and citation. ``regex`` reads the phrase as a Python regular
    expression (normalised first, like the text). ``sort`` is one of `SORTS`. Raises
    QueryError for bad input."""
    context = check_int("context", context, 0, MAX_CONTEXT)
    if sort not in SORTS:
        raise QueryError(f"sort must be one of {', '.join(SORTS)}. Currently, sort is {sort!r}")
    compiled = compile_phrase(phrase, regex=regex)
    collection = load_collection(index, speeches=speeches, speaker=speaker, place=place, years=years)
    return search(collection, compiled, context=context, sort=sort)


def search(collection: Collection, phrase: Phrase, *, context: int = 20, sort: str = "date") -> Concordance:
    """`concordance` over a collection already loaded."""
    found = (occurrence(para, a, b, context) for para, a, b in find_spans(collection, phrase))
    return Concordance(phrase.text, phrase.regex, tuple(sort_occurrences(found, sort)),
                       len(collection.speeches), collection.characters)
