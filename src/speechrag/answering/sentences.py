"""Which sentences of the retrieved passages answer the question, best first.

Each sentence is scored by meaning (its cosine with the question, rescaled over the
candidates), by words (question terms in the sentence, and in its passage and speech title,
which name the place a question asks about), and, when the question asks for a figure or a
name, by holding one; a small prior favours better-ranked passages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from speechrag.answering.evidence import coverage
from speechrag.answering.followups import content_terms
from speechrag.text import sentence_spans

if TYPE_CHECKING:
    from speechrag.searcher import Hit, Searcher

# Defaults chosen on eval/questions.jsonl (`speechrag eval --mode all`).
MAX_SENTENCES = 3
# A further sentence joins the answer only if it scores this close to the best one.
SENTENCE_MARGIN = 1.0

_FIGURE_Q = re.compile(
    r"多少|几[个年次项位成倍种月号岁万]|百分之|比例|比率|数字|数量|金额|哪一?年|何年|什么时候|何时|日期|"
    r"\bhow (many|much)\b|\bwhat (percentage|percent|rate|ratio|number|share|year|date)\b|"
    r"\bwhich year\b|\bwhen\b|\bfigure\b|\btarget\b",
    re.IGNORECASE,
)
_NAME_Q = re.compile(
    r"谁|哪位|什么人|叫什么|名字|名称|哪个文件|什么文件|哪个部门|什么奖|哪[个些]?地方|"
    r"\bwho\b|\bwhom\b|\bname[ds]?\b|\bcalled\b|\btitled?\b",
    re.IGNORECASE,
)
_FIGURE_S = re.compile(r"\d")
_FIGURE_S_WEAK = re.compile(r"[一二三四五六七八九十两百千万亿]+[个项年倍位家户人元省次]")
_NAME_S = re.compile(r"同志|部长|书记|市长|主任|局长|委员|《[^》]{2,40}》")


# A sentence this short is a heading or a lead-in (``纵观变化，“五好”印象，令人欣慰。``): the
# statement it announces is the next sentence, which is quoted with it.
LEAD_IN_CHARS = 24


@dataclass(frozen=True)
class Candidate:
    """One quotable sentence (with its lead-in's follower) and its score."""

    hit: int  # position in the ranking's hits
    spans: tuple[tuple[int, int], ...]  # the sentence, plus the next one when it is a lead-in
    score: float


# Sentence score weights (meaning, rescaled to 0-1 over the candidates, has weight 1); chosen
# on eval/questions.jsonl by the share of answers that hold the gold fact.
W_WORDS = 0.8
W_CONTEXT = 0.3
W_PLACE = 0.5  # the passage's speech is about the place the question names
W_KIND = 1.0
W_RANK = 0.3


def _is_lead_in(sentence: str) -> bool:
    return len(sentence) < LEAD_IN_CHARS or sentence.rstrip("”’\"'").endswith(("：", ":"))


def select_sentences(
    searcher: Searcher,
    query: str,
    qvec: np.ndarray,
    hits: Sequence[Hit],
    *,
    max_sentences: int = MAX_SENTENCES,
    margin: float = SENTENCE_MARGIN,
) -> list[Candidate]:
    """The sentences that answer ``query``, best first (see the module docstring)."""
    cands: list[tuple[int, int, list[tuple[int, int]]]] = []
    for i, h in enumerate(hits):
        spans = sentence_spans(h.passage.text, min_chars=2)
        for j in range(len(spans)):
            cands.append((i, j, spans))
    if not cands:
        return []
    texts = [hits[i].passage.text[spans[j][0] : spans[j][1]] for i, j, spans in cands]
    cos = searcher.sentence_vectors(texts) @ qvec
    lo, hi = float(cos.min()), float(cos.max())
    meaning = (cos - lo) / (hi - lo) if hi > lo else np.ones_like(cos)
    terms = content_terms(searcher, query)
    wants_figure = _FIGURE_Q.search(query) is not None
    wants_name = _NAME_Q.search(query) is not None
    named = [p for p in searcher.places if p in query]
    context = [
        coverage(searcher, terms, f"{h.passage.speech_title} {h.passage.text}")
        + W_PLACE * (searcher.place_of(h.passage) in named)
        for h in hits
    ]
    scored: list[Candidate] = []
    for (i, j, spans), text, m in zip(cands, texts, meaning.tolist(), strict=True):
        own = spans[j : j + 2] if _is_lead_in(text) and j + 1 < len(spans) else spans[j : j + 1]
        full = hits[i].passage.text[own[0][0] : own[-1][1]]
        kind = 0.0
        if wants_figure:
            kind = 1.0 if _FIGURE_S.search(full) else 0.5 if _FIGURE_S_WEAK.search(full) else 0.0
        if wants_name and _NAME_S.search(full):
            kind = max(kind, 1.0)
        words = coverage(searcher, terms, full)
        score = m + W_WORDS * words + W_CONTEXT * context[i] + W_KIND * kind + W_RANK / (1 + i)
        scored.append(Candidate(i, tuple(own), score))
    scored.sort(key=lambda c: -c.score)
    best = scored[0].score
    chosen: list[Candidate] = []
    taken: set[tuple[int, tuple[int, int]]] = set()
    for c in scored:
        if len(chosen) == max_sentences or c.score < best - margin:
            break
        keys = {(c.hit, span) for span in c.spans}
        if keys & taken:
            continue
        taken |= keys
        chosen.append(c)
    return chosen


