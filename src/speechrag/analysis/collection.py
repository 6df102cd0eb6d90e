"""The collection as text to count in: every speech's paragraphs, whole, read from a loaded index.

Ingestion splits a long paragraph into parts (`speechrag.corpus.split_long`) so the encoder can
take it; a phrase may run across the cut. Analysis joins the parts back (`Paragraph`) and maps
an offset in the joined text to the part it stands in, so an occurrence is found once and
cited by the part it starts in. Near-twin paragraphs (`Passage.duplicates`) stay separate: the
same words said in two speeches were said twice.

Everything is read through the Searcher's public surface (``speeches``, ``speech_passages``,
``filter``), so a folder index and Milvus are read alike.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from speechrag.api import get_searcher
from speechrag.errors import QueryError
from speechrag.options import QueryOptions
from speechrag.passage import Passage, Speech
from speechrag.searcher import Searcher
from speechrag.stores.base import Filter

Index = Searcher | str | os.PathLike[str] | None
Years = tuple[int, int] | int | None


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of one speech, its split parts joined: ``text`` is the parts' texts in
    order, ``starts`` the offset in ``text`` where each part begins."""

    speech: Speech
    parts: tuple[Passage, ...]
    text: str
    starts: tuple[int, ...]

    @property
    def first(self) -> Passage:
        return self.parts[0]

    def passage_at(self, offset: int) -> Passage:
        """The part in which the character at ``offset`` stands."""
        return self.parts[bisect.bisect_right(self.starts, offset) - 1]


def join_parts(speech: Speech, passages: Iterable[Passage]) -> Iterator[Paragraph]:
    """The paragraphs of one speech's passages (in reading order): consecutive parts 1, 2, … of
    the same paragraph number become one `Paragraph`; a whole paragraph (part 0) is its own."""
    group: list[Passage] = []

    def flush() -> Paragraph:
        starts, offset = [], 0
        for p in group:
            starts.append(offset)
            offset += len(p.text)
        return Paragraph(speech, tuple(group), "".join(p.text for p in group), tuple(starts))

    for p in passages:
        if group and p.part > 1 and p.paragraph == group[-1].paragraph and p.part == group[-1].part + 1:
            group.append(p)
            continue
        if group:
            yield flush()
        group = [p]
    if group:
        yield flush()


@dataclass(frozen=True)
class Collection:
    """The speeches a question is about (filtered) and their paragraphs, in index order."""

    speeches: tuple[Speech, ...]
    paragraphs: tuple[Paragraph, ...]

    @classmethod
    def of(cls, speeches: Sequence[Speech], passages_of: Iterable[Sequence[Passage]]) -> Collection:
        paragraphs: list[Paragraph] = []
        for speech, passages in zip(speeches, passages_of, strict=True):
            paragraphs.extend(join_parts(speech, passages))
        return cls(tuple(speeches), tuple(paragraphs))

    @cached_property
    def joined(self) -> tuple[str, tuple[int, ...]]:
        """Every paragraph's text in one string, each followed by a line break (which
        `speechrag.text.normalise` removes from corpus text, so no phrase runs across it), and
        where each paragraph starts: one scan of a long string instead of one per paragraph."""
        starts, offset = [], 0
        for para in self.paragraphs:
            starts.append(offset)
            offset += len(para.text) + 1
        return "".join(para.text + "\n" for para in self.paragraphs), tuple(starts)

    @cached_property
    def characters(self) -> int:
        return sum(len(para.text) for para in self.paragraphs)

    def by_speech(self) -> dict[str, list[Paragraph]]:
        out: dict[str, list[Paragraph]] = {s.id: [] for s in self.speeches}
        for para in self.paragraphs:
            out[para.speech.id].append(para)
        return out


def load_collection(
    index: Index = None,
    *,
    speeches: str | Iterable[str] | None = None,
    speaker: str | Iterable[str] | None = None,
    place: str | Iterable[str] | None = None,
    years: Years = None,
) -> Collection:
    """The speeches of ``index`` that pass the filters (as `speechrag.retrieve` takes them), with
    their paragraphs. ``index`` is a Searcher, an index path, or None for the default index."""
    searcher = get_searcher(index)
    where = speech_filter(searcher, speeches=speeches, speaker=speaker, place=place, years=years)
    kept = [s for s in searcher.speeches if where is None or where.allows(s)]
    return Collection.of(kept, (searcher.speech_passages(s.id) for s in kept))


def speech_filter(searcher: Searcher, **filters: Any) -> Filter | None:
    """The filters (speeches, speaker, place, years), checked as every door checks them
    (`QueryOptions`: an OptionError naming the field), against ``searcher``'s speeches."""
    return QueryOptions.parse(filters).where(searcher.speeches)


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int within [low, high], else a QueryError naming it and its value."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QueryError(f"{name} must be a whole number from {low} to {high}. Currently, {name} is {value!r}")
    return value
