"""Answer a question with the speeches' own sentences, each cited; abstain when they are silent.

No text is generated: the answer is a handful of sentences picked from the retrieved passages,
so it can only say what a speech said. The stages, one module each:

    followups.py   complete an elliptical question (``那商丘呢？``) from the turn before
    scope.py       the speeches the question names (a place, a speaker, a year), which answer first
    evidence.py    decide whether the speeches answer it at all (calibrated per encoder)
    details.py     the detail asked (how often, how much, who, when) and whether a sentence gives it
    sentences.py   pick and order the sentences that answer it, the fact first
    this module    `Answer` as data (sentences, citation numbers, spans) and `answer()`

Rendering an Answer (markdown for the chat, HTML for the sources, terminal text) lives in
`speechrag.render`; ``Answer.text`` is plain text and is never parsed back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from speechrag.answering.details import asked_detail
from speechrag.answering.evidence import Evidence, judge
from speechrag.answering.followups import content_terms, resolve_history
from speechrag.answering.scope import Scope, rank_in_scope, scope_of, speech_label
from speechrag.answering.sentences import MAX_SENTENCES, Candidate, select_sentences
from speechrag.errors import QueryError
from speechrag.options import QueryOptions
from speechrag.searcher import Hit, Searcher, check_query

log = logging.getLogger(__name__)

NOT_FOUND = "这些讲话中没有谈到这个问题。"
FOUND, PARTIAL, NOT_FOUND_STATUS = "found", "partial", "not_found"
STATUSES = (FOUND, PARTIAL, NOT_FOUND_STATUS)
RELATED_HEADING = "可能相关的段落："
RELATED = 3  # passages offered as "possibly related" when abstaining
SNIPPET_CHARS = 60


@dataclass(frozen=True)
class AnswerSentence:
    """One quoted sentence: its text, its citation number n (``Answer.citations[n-1]``) and its
    character span in that passage's text. ``speech`` names the speech it is from
    (``篇五·商丘``) when that is not the one the question is about, or not the one the answer's
    first sentence is from: a reader must not take another city's figure for the one asked."""

    text: str
    citation: int
    span: tuple[int, int]
    speech: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citation": self.citation, "span": list(self.span), "speech": self.speech}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnswerSentence:
        a, b = d["span"]
        return cls(str(d["text"]), int(d["citation"]), (int(a), int(b)), str(d.get("speech", "")))

    @property
    def plain(self) -> str:
        """The sentence as plain text: its speech's label, if any, then the citation mark."""
        label = f"（{self.speech}）" if self.speech else ""
        return f"{self.text}{label}[{self.citation}]"


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

    ``status`` is "found", "not_found", or "partial": the speeches address the topic but not
    the detail asked (how often, how much, who, when), or give it only for another place.
    A partial answer has ``found`` False, ``notice`` saying what is missing
    (``讲话提到了文艺奖，但没有说多久一次。``) and ``sentences`` the nearest ones, cited.
    """

    text: str
    citations: tuple[Hit, ...]
    found: bool
    question: str = ""
    query: str = ""
    mode: str = "hybrid"
    evidence: Evidence | None = None
    sentences: tuple[AnswerSentence, ...] = ()
    status: str = ""  # "" (built by hand): derived from found
    notice: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", FOUND if self.found else NOT_FOUND_STATUS)
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "found": self.found,
            "status": self.status,
            "notice": self.notice,
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
            status=str(d.get("status", "")),
            notice=str(d.get("notice", "")),
        )


def _compose(searcher: Searcher, chosen: Sequence[Candidate], hits: Sequence[Hit], scope: Scope,
             ) -> tuple[tuple[AnswerSentence, ...], tuple[Hit, ...]]:
    """The chosen sentences, best first, numbered by the first appearance of their passage, and
    the cited hits with their quoted spans. A sentence from outside the question's scope, or
    (when the question names none) from another place than the first sentence, is labelled."""
    numbers: dict[int, int] = {}
    spans: dict[int, list[tuple[int, int]]] = {}
    sentences = []
    first_place = searcher.place_of(hits[chosen[0].hit].passage) if chosen else ""
    for c in chosen:
        n = numbers.setdefault(c.hit, len(numbers) + 1)
        spans.setdefault(c.hit, []).extend(c.spans)
        span = (c.spans[0][0], c.spans[-1][1])
        passage = hits[c.hit].passage
        place = searcher.place_of(passage)
        other = not c.in_scope if scope else bool(place and first_place and place != first_place)
        label = speech_label(searcher, passage.speech_id) if other else ""
        sentences.append(AnswerSentence(passage.text[span[0] : span[1]], n, span, label))
    citations = tuple(replace(hits[i], cited=tuple(sorted(spans[i]))) for i in numbers)
    return tuple(sentences), citations


def _plain(sentences: Sequence[AnswerSentence], related: Sequence[Hit], notice: str = "") -> str:
    if sentences:
        body = "".join(s.plain for s in sentences)
        return f"{notice}\n{body}" if notice else body
    if not related:
        return notice or NOT_FOUND
    lines = [notice or NOT_FOUND, "", RELATED_HEADING]
    lines += [f"- {h.citation}：{snippet(h.passage.text)}[{n}]" for n, h in enumerate(related, start=1)]
    return "\n".join(lines)


def partial_notice(searcher: Searcher, query: str, sentences: Sequence[AnswerSentence], missing: str,
                   scope: Scope, elsewhere: bool) -> str:
    """讲话提到了……，但没有说…… for a partial answer, or 关于仙桃，讲话没有说……；篇五·商丘的讲话提到了：
    when only another place's speech gives the detail; "" when the sentences hold none of the
    question's words (then the speeches do not address it at all)."""
    if elsewhere and scope:
        others = "、".join(dict.fromkeys(s.speech for s in sentences if s.speech)) or "其他讲话"
        return f"关于{scope.label}，讲话没有说{missing}；{others}的讲话提到了："
    quoted = "".join(s.text for s in sentences).lower()
    said = [t for t in content_terms(searcher, query) if t in quoted and len(t) >= 2 and t not in scope.names]
    if not said:
        return ""
    return f"讲话提到了{'、'.join(said[:3])}，但没有说{missing}："


def answer(
    searcher: Searcher,
    question: str,
    options: QueryOptions | None = None,
    *,
    history: Iterable[Any] | None = None,
    max_sentences: int = MAX_SENTENCES,
    threshold: float | None = None,
) -> Answer:
    """Answer ``question`` from ``searcher``'s speeches with cited sentences, or say they do not
    cover it (the public form, which takes an index path too, is `speechrag.api.answer`).

    ``history`` holds earlier turns (strings, ``{"role", "content"}`` messages or
    ``(user, assistant)`` pairs); an elliptical question is completed from the last one.
    ``options`` are k, mode, the filters and rrf_k (`QueryOptions`). ``threshold`` overrides the
    index's calibrated abstention threshold. Raises QueryError for bad input.
    """
    text = check_query(question)
    options = options or QueryOptions()
    if isinstance(max_sentences, bool) or not isinstance(max_sentences, int) or not 1 <= max_sentences <= 10:
        raise QueryError(f"max_sentences must be a whole number from 1 to 10, not {max_sentences!r}")
    k, mode, rrf_k = options.k, options.mode, options.rrf_k
    where = options.where(searcher.speeches)
    query = resolve_history(searcher, text, history)
    if query != text:
        log.info("follow-up %r resolved to %r", text, query)
    qvec, plain = searcher.query_vectors(query)
    ranking = searcher.rank(query, qvec, k, mode=mode, where=where, rrf_k=rrf_k, both=True)
    calibration = searcher.calibration
    evidence = judge(searcher, query, ranking, calibration, plain)
    cutoff = calibration.threshold if threshold is None else threshold
    sentences: tuple[AnswerSentence, ...] = ()
    citations: tuple[Hit, ...] = ()
    status, notice = NOT_FOUND_STATUS, ""
    # What the question names that no document has (上海 in a collection without it, a year no
    # report covers): say so, rather than answer with another place's or year's figure.
    missing = () if where is not None else scope_of(searcher, query).missing
    if missing:
        notice = f"资料中没有{'、'.join(missing)}的讲话或报告。"
    elif ranking.hits and evidence.content and evidence.score >= cutoff:
        scope, hits = rank_in_scope(searcher, query, qvec, ranking, k, mode=mode, where=where, rrf_k=rrf_k,
                                    elsewhere=True)
        detail = asked_detail(text) or asked_detail(query)
        chosen = select_sentences(searcher, query, qvec, hits, max_sentences=max_sentences,
                                  scope=scope, detail=detail)
        if chosen.chosen:
            sentences, citations = _compose(searcher, chosen.chosen, hits, scope)
            status = chosen.status
            if status == PARTIAL:
                notice = partial_notice(searcher, query, sentences, chosen.missing, scope, chosen.elsewhere)
                if not notice:  # the nearest sentences share no word with the question: silent
                    status, sentences, notice = NOT_FOUND_STATUS, (), ""
    found = status == FOUND
    if not sentences:
        citations = ranking.hits[:RELATED]
    return Answer(_plain(sentences, citations, notice), citations, found, text, query, mode, evidence,
                  sentences, status, notice)

__all__ = ["FOUND", "NOT_FOUND", "NOT_FOUND_STATUS", "PARTIAL", "Answer", "AnswerSentence", "Evidence", "answer"]
