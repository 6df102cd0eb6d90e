"""Answer a question with the speeches' own sentences, each cited; abstain when they are silent.

No text is generated: the answer is a handful of sentences picked from the retrieved passages,
so it can only say what a speech said. The stages, one module each:

    followups.py   complete an elliptical question (``那商丘呢？``) from the turn before
    evidence.py    decide whether the speeches answer it at all (calibrated per encoder)
    sentences.py   pick and order the sentences that answer it
    this module    `Answer` as data (sentences, citation numbers, spans) and `answer()`

Rendering an Answer (markdown for the chat, HTML for the sources, terminal text) lives in
`speechrag.render`; ``Answer.text`` is plain text and is never parsed back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from speechrag.answering.evidence import Evidence, judge
from speechrag.answering.followups import resolve_history
from speechrag.answering.sentences import MAX_SENTENCES, Candidate, select_sentences
from speechrag.errors import QueryError
from speechrag.searcher import (
    RRF_K,
    Hit,
    Searcher,
    check_k,
    check_mode,
    check_query,
    check_rrf_k,
    get_searcher,
)

log = logging.getLogger(__name__)

NOT_FOUND = "这些讲话中没有谈到这个问题。"
RELATED_HEADING = "可能相关的段落："
RELATED = 3  # passages offered as "possibly related" when abstaining
SNIPPET_CHARS = 60


@dataclass(frozen=True)
class AnswerSentence:
    """One quoted sentence: its text, its citation number n (``Answer.citations[n-1]``) and its
    character span in that passage's text."""

    text: str
    citation: int
    span: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citation": self.citation, "span": list(self.span)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnswerSentence:
        a, b = d["span"]
        return cls(str(d["text"]), int(d["citation"]), (int(a), int(b)))


def snippet(text: str, chars: int = SNIPPET_CHARS) -> str:
    return text[:chars] + ("…" if len(text) > chars else "")


@dataclass(frozen=True)
class Answer:
    """A cited answer, as data.

    ``sentences`` are the quoted sentences in order; ``text`` is them as plain text, each
    followed by ``[n]`` (no markup, no escapes). ``citations[n-1]`` is the Hit sentence n came
    from, its ``cited`` spans marking the quoted sentences. ``found`` is False when the speeches
    do not address the question: ``sentences`` is then empty, ``citations`` are the nearest
    passages offered as possibly related, and ``text`` says so and lists them. ``query`` is the
    question after follow-up resolution, the text actually searched.
    """

    text: str
    citations: tuple[Hit, ...]
    found: bool
    question: str = ""
    query: str = ""
    mode: str = "hybrid"
    evidence: Evidence | None = None
    sentences: tuple[AnswerSentence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "found": self.found,
            "question": self.question,
            "query": self.query,
            "mode": self.mode,
            "sentences": [s.to_dict() for s in self.sentences],
            "citations": [h.to_dict() for h in self.citations],
            "evidence": self.evidence.to_dict() if self.evidence else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Answer:
        ev = d.get("evidence")
        return cls(
            text=str(d["text"]),
            citations=tuple(Hit.from_dict(h) for h in d.get("citations", ())),
            found=bool(d["found"]),
            question=str(d.get("question", "")),
            query=str(d.get("query", "")),
            mode=str(d.get("mode", "hybrid")),
            evidence=Evidence(**ev) if ev else None,
            sentences=tuple(AnswerSentence.from_dict(s) for s in d.get("sentences", ())),
        )


def _compose(chosen: Sequence[Candidate], hits: Sequence[Hit]) -> tuple[tuple[AnswerSentence, ...], tuple[Hit, ...]]:
    """The chosen sentences, best first, numbered by the first appearance of their passage, and
    the cited hits with their quoted spans."""
    numbers: dict[int, int] = {}
    spans: dict[int, list[tuple[int, int]]] = {}
    sentences = []
    for c in chosen:
        n = numbers.setdefault(c.hit, len(numbers) + 1)
        spans.setdefault(c.hit, []).extend(c.spans)
        span = (c.spans[0][0], c.spans[-1][1])
        sentences.append(AnswerSentence(hits[c.hit].passage.text[span[0] : span[1]], n, span))
    citations = tuple(replace(hits[i], cited=tuple(sorted(spans[i]))) for i in numbers)
    return tuple(sentences), citations


def _plain(sentences: Sequence[AnswerSentence], related: Sequence[Hit]) -> str:
    if sentences:
        return "".join(f"{s.text}[{s.citation}]" for s in sentences)
    if not related:
        return NOT_FOUND
    lines = [NOT_FOUND, "", RELATED_HEADING]
    lines += [f"- {h.citation}：{snippet(h.passage.text)}[{n}]" for n, h in enumerate(related, start=1)]
    return "\n".join(lines)


def answer(
    question: str,
    *,
    k: int = 5,
    history: Iterable[Any] | None = None,
    mode: str = "hybrid",
    speeches: str | Iterable[str] | None = None,
    speaker: str | Iterable[str] | None = None,
    place: str | Iterable[str] | None = None,
    years: tuple[int, int] | int | None = None,
    index: Searcher | str | os.PathLike[str] | None = None,
    max_sentences: int = MAX_SENTENCES,
    threshold: float | None = None,
    rrf_k: float = RRF_K,
) -> Answer:
    """Answer ``question`` from the speeches with cited sentences, or say they do not cover it.

    ``history`` holds earlier turns (strings, ``{"role", "content"}`` messages or
    ``(user, assistant)`` pairs); an elliptical question is completed from the last one.
    ``speeches``/``speaker``/``place``/``years`` filter as in `retrieve()`. ``threshold``
    overrides the index's calibrated abstention threshold. Raises QueryError for bad input.
    """
    text = check_query(question)
    k = check_k(k)
    mode = check_mode(mode)
    rrf_k = check_rrf_k(rrf_k)
    if isinstance(max_sentences, bool) or not isinstance(max_sentences, int) or not 1 <= max_sentences <= 10:
        raise QueryError(f"max_sentences must be a whole number from 1 to 10, not {max_sentences!r}")
    searcher = get_searcher(index)
    where = searcher.filter(speeches, speaker=speaker, place=place, years=years)
    query = resolve_history(searcher, text, history)
    if query != text:
        log.info("follow-up %r resolved to %r", text, query)
    qvec = searcher.encode_query(query)
    ranking = searcher.rank(query, qvec, k, mode=mode, where=where, rrf_k=rrf_k, both=True)
    calibration = searcher.calibration
    evidence = judge(searcher, query, ranking, calibration)
    cutoff = calibration.threshold if threshold is None else threshold
    sentences: tuple[AnswerSentence, ...] = ()
    citations: tuple[Hit, ...] = ()
    if ranking.hits and evidence.score >= cutoff:
        chosen = select_sentences(searcher, query, qvec, ranking.hits, max_sentences=max_sentences)
        sentences, citations = _compose(chosen, ranking.hits)
    found = bool(sentences)
    if not found:
        citations = ranking.hits[:RELATED]
    return Answer(_plain(sentences, citations), citations, found, text, query, mode, evidence, sentences)


__all__ = ["NOT_FOUND", "Answer", "AnswerSentence", "Evidence", "answer"]
