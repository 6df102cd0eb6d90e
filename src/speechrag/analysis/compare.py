"""Side by side: one question asked of each speech (or place, or year) on its own.

Each group is answered as `speechrag.answer` answers a question filtered to that group's
speeches: the same retrieval, the same choice of sentences and the same abstention, so a group
whose speeches do not address the topic says so (``status`` not_found) instead of lending its
best-scoring unrelated sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from speechrag.analysis.collection import Index, Years, speech_filter
from speechrag.analysis.trend import group_of
from speechrag.api import get_searcher
from speechrag.errors import QueryError
from speechrag.searcher import check_query

BY = ("speech", "place", "year", "speaker")
ABSENT = "未涉及 · not addressed"


@dataclass(frozen=True)
class Quote:
    """A sentence of a speech, with the citation of its passage."""

    text: str
    citation: str
    speech_id: str
    passage_id: str


@dataclass(frozen=True)
class GroupAnswer:
    """One group's answer: ``status`` found, partial (``notice`` says what is missing) or
    not_found (``quotes`` empty: the group's speeches do not address the question)."""

    group: str
    speeches: tuple[str, ...]
    status: str
    notice: str
    quotes: tuple[Quote, ...]

    @property
    def absent(self) -> bool:
        return self.status == "not_found"

    @property
    def text(self) -> str:
        """The quotes with their citations, one a line, or that the topic is absent."""
        if self.absent:
            return ABSENT
        lines = [self.notice] if self.notice else []
        return "\n".join([*lines, *(f"{q.text}（{q.citation}）" for q in self.quotes)])


@dataclass(frozen=True)
class Comparison:
    question: str
    by: str
    groups: tuple[GroupAnswer, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "by": self.by,
                "groups": [{"group": g.group, "speeches": list(g.speeches), "status": g.status, "notice": g.notice,
                            "quotes": [vars(q) for q in g.quotes]} for g in self.groups]}


def compare(
    question: str,
    *,
    by: str = "speech",
    speeches: str | Iterable[str] | None = None,
    speaker: str | Iterable[str] | None = None,
    place: str | Iterable[str] | None = None,
    years: Years = None,
    index: Index = None,
    max_sentences: int = 2,
    **answer_options: Any,
) -> Comparison:
    """``question`` answered for each group of speeches (``by``: speech, place, year or
    speaker) on its own, at most ``max_sentences`` cited sentences each; groups come in the
    index's order (years ascending). ``answer_options`` (k, mode, threshold, rrf_k) go to
    `speechrag.answer`. Filters as `speechrag.retrieve`; QueryError for bad input."""
    from speechrag.api import answer

    text = check_query(question)
    if by not in BY:
        raise QueryError(f"by must be one of {', '.join(BY)}. Currently, by is {by!r}")
    searcher = get_searcher(index)
    where = speech_filter(searcher, speeches=speeches, speaker=speaker, place=place, years=years)
    groups: dict[str, list[str]] = {}
    for speech in searcher.speeches:
        if where is None or where.allows(speech):
            groups.setdefault(group_of(speech, by), []).append(speech.id)
    order = sorted(groups, key=lambda g: (not g.isdigit(), g)) if by == "year" else list(groups)
    out = []
    for g in order:
        ans = answer(text, index=searcher, speeches=groups[g], max_sentences=max_sentences, **answer_options)
        quotes = () if ans.status == "not_found" else tuple(
            Quote(s.text, ans.citations[s.citation - 1].citation, ans.citations[s.citation - 1].passage.speech_id,
                  ans.citations[s.citation - 1].passage.id) for s in ans.sentences)
        out.append(GroupAnswer(g, tuple(groups[g]), ans.status, ans.notice, quotes))
    return Comparison(text, by, tuple(out))
