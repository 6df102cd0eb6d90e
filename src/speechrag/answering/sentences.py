"""Which sentences of the retrieved passages answer the question, best first.

Each sentence is scored by meaning (its cosine with the question, rescaled over the
candidates), by words (question terms in the sentence, and in its passage and speech title,
which name the place a question asks about), and, when the question asks for a figure or a
name, by holding one; a small prior favours better-ranked passages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from speechrag.answering.details import TITLES, Detail, gives, missing_detail, without_names_and_articles
from speechrag.answering.evidence import coverage
from speechrag.answering.followups import content_terms
from speechrag.answering.scope import Scope
from speechrag.searcher import RRF_K
from speechrag.sentencevectors import MIN_CHARS
from speechrag.text import has_figure, has_han, is_prose, sentence_spans

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
_FIGURE_S_WEAK = re.compile(r"[一二三四五六七八九十两百千万亿]+[个项年倍位家户人元省次]")
_NAME_S = re.compile(rf"{TITLES}|《[^》]{{2,40}}》")


# A sentence this short is a heading or a lead-in (``纵观变化，“五好”印象，令人欣慰。``): the
# statement it announces is the next sentence, which is quoted with it.
LEAD_IN_CHARS = 24


@dataclass(frozen=True)
class Candidate:
    """One quotable sentence (with its lead-in's follower) and its score."""

    hit: int  # position in the ranking's hits
    spans: tuple[tuple[int, int], ...]  # the sentence, plus the next one when it is a lead-in
    score: float
    in_scope: bool = True  # its speech is one the question names (always, when it names none)
    terms: frozenset[str] = frozenset()  # the question's content terms it holds
    text: str = ""
    kind: float = 0.0  # what it scored for holding a figure or a name, as the question asks


@dataclass(frozen=True)
class Selection:
    """The sentences chosen, best first, and whether they answer the question.

    ``status`` is "found", or "partial" when the speeches address the topic but not the detail
    asked: ``missing`` says which detail (`details.missing_detail`), and ``elsewhere`` is True
    when a speech outside the question's scope gives it (another city's figure), so the
    sentences are offered as related, not as the answer.
    """

    chosen: tuple[Candidate, ...]
    status: str = "found"
    missing: str = ""
    elsewhere: bool = False


# Sentence score weights (meaning, rescaled to 0-1 over the candidates, has weight 1); chosen
# on eval/questions.jsonl by the share of answers that hold the gold fact.
W_WORDS = 0.8
W_CONTEXT = 0.3
W_PLACE = 0.5  # the passage's speech is about the place the question names
W_KIND = 1.0
W_RANK = 0.3
# `rerank`: a passage's rank fused with the rank of its best sentence, weighted this much
# more (1 and 2 gave the same gold R@1, 0.820; 2 was better on the held-out set, 0.737 vs 0.632).
SENTENCE_RANK_WEIGHT = 2.0
# Best sentences scoring within this of each other tie, and the passage order decides: the score
# is a sum of rough features, and a difference of a few thousandths (1.2624 vs 1.2627 for
# 现在生第二个孩子还要去审批吗？) is noise that overrode both retrievers. Gold R@1 is the same
# from 0.01 to 0.05 (0.856-0.865), held-out R@1 too (0.737); 0.1 lost held-out questions.
SENTENCE_TIE = 0.03
# A sentence gives the detail asked only if its IDF-weighted coverage of the question's topic
# words (place names aside) is at least this share of the best any candidate reaches: a figure
# about something else does not answer ``这个奖的奖金是多少？``. Chosen on eval/questions.jsonl
# (partial and place kinds against figure, name and date kinds).
DETAIL_COVERAGE = 0.4
PARTIAL_SENTENCES = 2  # a partial answer cites the nearest sentence or two, no more




def figure_kind(sentence: str) -> float:
    """What ``sentence`` scores for holding a figure when one is asked: 1 for a figure (a digit,
    or an amount in Chinese numerals: 百分之十五, 一千三百四十四亿, `text.has_figure`), half that for a
    numeral with a measure word (三个, 五年: as often a phrase as a figure), else 0. Articles and
    quoted names (一个, “三个一”) hold no figure."""
    figures = without_names_and_articles(sentence)
    return 1.0 if has_figure(figures) else 0.5 if _FIGURE_S_WEAK.search(figures) else 0.0


def _is_lead_in(sentence: str) -> bool:
    return len(sentence) < LEAD_IN_CHARS or sentence.rstrip("”’\"'").endswith(("：", ":"))


def _order(cands: Sequence[Candidate]) -> list[Candidate]:
    return sorted(cands, key=lambda c: -c.score)


# A quotable sentence: (its hit's position, its index among the passage's spans, the spans).
_Slot = tuple[int, int, list[tuple[int, int]]]


def _sentence_slots(hits: Sequence[Hit]) -> tuple[list[_Slot], list[str]]:
    """The sentences of ``hits`` an answer may quote, in passage order, and their texts: split
    as the build split the sentences it stored vectors for (`sentencevectors.MIN_CHARS`)."""
    slots: list[_Slot] = []
    for i, h in enumerate(hits):
        if not is_prose(h.passage.text):
            continue
        spans = sentence_spans(h.passage.text, min_chars=MIN_CHARS)
        slots.extend((i, j, spans) for j in range(len(spans)))
    return slots, [hits[i].passage.text[spans[j][0] : spans[j][1]] for i, j, spans in slots]


def score_sentences(searcher: Searcher, query: str, hits: Sequence[Hit], scope: Scope,
                    cands: Sequence[_Slot], texts: Sequence[str],
                    cos: np.ndarray) -> tuple[list[Candidate], list[str]]:
    """The `_sentence_slots` of ``hits`` scored (see the module docstring), given their
    cosines with the question, and the question terms they were scored on."""
    lo, hi = float(cos.min()), float(cos.max())
    meaning = (cos - lo) / (hi - lo) if hi > lo else np.ones_like(cos)
    # An English question's words are in no sentence, and as terms absent from the corpus they
    # would outweigh every other: its Chinese terms are what can match.
    # The places and speakers it names are left to the scope (W_PLACE): among its few terms a
    # name would outweigh the topic, and every sentence of that city's speech would seem to
    # answer. (Until this stop only an English question's were: counted in Chinese, 结合商丘实际，
    # 我讲以下三个方面的问题。 outranked what 两非 means; gold R@1 0.820 -> 0.847.)
    asked = list(searcher.translate(query)) or content_terms(searcher, query)
    terms = scope.topic_terms(asked) or asked
    wants_figure = _FIGURE_Q.search(query) is not None
    wants_name = _NAME_Q.search(query) is not None
    inside = [scope.holds(h.passage.speech_id) for h in hits]
    context = [
        coverage(searcher, terms, f"{h.passage.speech_title} {h.passage.text}") + W_PLACE * (bool(scope) and ins)
        for h, ins in zip(hits, inside, strict=True)
    ]
    scored: list[Candidate] = []
    for (i, j, spans), text, m in zip(cands, texts, meaning.tolist(), strict=True):
        own = spans[j : j + 2] if _is_lead_in(text) and j + 1 < len(spans) else spans[j : j + 1]
        full = hits[i].passage.text[own[0][0] : own[-1][1]]
        kind = figure_kind(full) if wants_figure else 0.0
        if wants_name and _NAME_S.search(full):
            kind = max(kind, 1.0)
        words = coverage(searcher, terms, full)
        score = m + W_WORDS * words + W_CONTEXT * context[i] + W_KIND * kind + W_RANK / (1 + i)
        low = full.lower()
        held = scope.holds_passage(hits[i].passage, full) if scope.topic_years else inside[i]
        scored.append(Candidate(i, tuple(own), score, held, frozenset(t for t in terms if t in low), full, kind))
    return scored, terms


def rerank(searcher: Searcher, query: str, qvec: np.ndarray, hits: Sequence[Hit],
           scope: Scope | None = None) -> tuple[Hit, ...]:
    """``hits`` reordered by Reciprocal Rank Fusion of their rank and the rank of their best
    sentence's score (without its passage-rank prior), SENTENCE_RANK_WEIGHT to 1, the
    speeches ``scope`` names still first.

    A passage embedding averages a long paragraph, and BM25 weighs all of it: the paragraph
    that holds the one sentence a question asks about (``计划生育工作始于上个世纪70年代``
    inside a 700-character review of 40 years) ranked below a paragraph about the topic in
    general. Ranked by its best sentence as well, R@1 went 0.730 -> 0.820 on the gold set and
    0.553 -> 0.737 on the held-out set (`speechrag eval`). Only the build's sentence vectors
    are used, so it costs about a millisecond; an index without them (built from precomputed
    ``vectors=``, or before they were stored) keeps ``hits`` as they are, rather than embed
    sentences at search time.
    """
    scope = scope or Scope()
    cands, texts = _sentence_slots(hits)
    if len(hits) < 2 or not cands:
        return tuple(hits)
    vecs, found = searcher.store.sentence_vectors(texts)
    if not found.all():
        return tuple(hits)
    scored, _ = score_sentences(searcher, query, hits, scope, cands, texts, vecs @ qvec)
    best = [-np.inf] * len(hits)
    for c in scored:
        best[c.hit] = max(best[c.hit], c.score - W_RANK / (1 + c.hit))
    sentence_rank = {i: sum(b > best[i] + SENTENCE_TIE for b in best) for i in range(len(hits))}
    fused = [1.0 / (RRF_K + 1 + i) + SENTENCE_RANK_WEIGHT / (RRF_K + 1 + sentence_rank[i])
             for i in range(len(hits))]
    order = sorted(range(len(hits)), key=lambda i: (not scope.holds(hits[i].passage.speech_id), -fused[i]))
    return tuple(replace(hits[i], rank=n, score=fused[i]) for n, i in enumerate(order, start=1))


def select_sentences(
    searcher: Searcher,
    query: str,
    qvec: np.ndarray,
    hits: Sequence[Hit],
    *,
    max_sentences: int = MAX_SENTENCES,
    margin: float = SENTENCE_MARGIN,
    scope: Scope | None = None,
    detail: Detail | None = None,
) -> Selection:
    """The sentences that answer ``query``, best first (see the module docstring).

    With a ``scope``, sentences from the speeches it names come first; with a ``detail`` (the
    question asks how often, how much, who, when, what name) the first sentence is the best
    one that gives it, and when none does the selection is "partial".
    """
    scope = scope or Scope()
    cands, texts = _sentence_slots(hits)
    if not cands:
        return Selection(())
    cos = searcher.sentence_vectors(texts) @ qvec
    scored, terms = score_sentences(searcher, query, hits, scope, cands, texts, cos)
    ranked = _order(scored)
    in_scope = [c for c in ranked if c.in_scope] or ranked
    status, missing = "found", ""
    first = in_scope[0]
    focused = detail is not None and has_han(query)
    if focused:
        assert detail is not None
        topic = scope.topic_terms(terms)
        # Topical enough: a share of the best topic coverage any candidate (in scope or not)
        # reaches, so a paraphrased question is not held to words it does not share with
        # the speech, while another place's sentence that holds every word sets the bar.
        cover = {id(c): coverage(searcher, topic, c.text) for c in ranked}
        bar = DETAIL_COVERAGE * max(cover.values(), default=0.0)

        def answers(c: Candidate) -> bool:
            return gives(detail, c.text, query) and cover[id(c)] >= bar and cover[id(c)] > 0

        giving = [c for c in in_scope if answers(c)]
        if giving:
            first = giving[0]
        else:
            status, missing = "partial", missing_detail(detail, query)
            other = [c for c in ranked if not c.in_scope and answers(c)]
            if other:
                # Another speech gives the figure for another place: offer it, labelled, alone.
                return Selection((other[0],), status, missing, elsewhere=True)
            # The nearest sentences are those nearest in meaning and words, not those holding
            # some other figure: 360万天水儿女 was offered for 这个奖的奖金有多少钱？, not the award.
            ranked = _order([replace(c, score=c.score - W_KIND * c.kind) for c in ranked])
            in_scope = [c for c in ranked if c.in_scope] or ranked
            first = in_scope[0]
    # The first sentence, then sentences close to it in score; when a detail is asked, only
    # those holding a question term none before them holds: the fact first, then stop.
    not_topic = set(terms) - set(scope.topic_terms(terms))  # names and relative years
    chosen = [first]
    taken = {(first.hit, span) for span in first.spans}
    held: set[str] = set(first.terms)
    limit = min(max_sentences, PARTIAL_SENTENCES) if status == "partial" else max_sentences
    for c in ranked:
        if len(chosen) >= limit or c.score < first.score - margin:
            break
        keys = {(c.hit, span) for span in c.spans}
        if keys & taken or (focused and not (c.terms - held - not_topic)):
            continue
        if scope and not c.in_scope and status == "found":
            continue  # another speech's sentence under an in-scope answer adds another place's facts
        taken |= keys
        held |= c.terms
        chosen.append(c)
    return Selection(tuple(chosen), status, missing)
