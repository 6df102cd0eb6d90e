"""Scope: the speeches a question is about, when it names them, and whose a sentence is.

A question that names a place (in Chinese, or in pinyin: ``Xiantao``), a speaker or a year, or a
follow-up completed from one, is about the speeches given for that place, by that speaker, or
about that year: the answer is taken from them first, and a sentence from another speech is
quoted only as related, with a label saying whose it is. Without this, ``那商丘呢？`` after a
question about 仙桃 was answered with 商丘's figure and 仙桃's under it, unlabelled.

A year is read as the question means it. ``2019年政府工作报告提出的目标`` names a document by its
year: the speeches given that year. ``2013年GDP完成多少`` names the year a figure is for: the
passages about 2013 (`Passage.about_year`), which in a collection of yearly reports are the
2014 report's review of 2013, not the 2013 report's review of 2012.

A place, speaker or year the question names that no document has (``上海`` in a collection
without Shanghai, ``2021年`` when no report covers it) is ``Scope.missing``: the answer says the
collection does not have it, rather than give another place's or year's figure as the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from speechrag.crosslingual import named_places
from speechrag.stores.base import Filter
from speechrag.text import has_han, has_latin, place_key

if TYPE_CHECKING:
    from speechrag.passage import Passage, Speech
    from speechrag.searcher import Hit, Ranking, Searcher


# Years counted from the speech's own (今年 is the year it was given): they say when, not what
# about. As topic words, 去年 in 仙桃's passages covered 仙桃去年的GDP是多少？ by 40 %, and its
# 去年 sex-ratio figure answered it.
RELATIVE_YEARS = frozenset(["今年", "去年", "明年", "前年", "后年", "本年", "当年", "上年"])


@dataclass(frozen=True)
class Scope:
    """What a question names: places, speakers and years, and the ids of the speeches they pick
    out. ``years`` are documents' years (the speeches given then), ``topic_years`` the years the
    question asks about (the passages about them); ``missing`` what it names that no document has."""

    places: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    speech_ids: frozenset[str] = frozenset()
    years: tuple[int, ...] = ()
    topic_years: tuple[int, ...] = ()
    missing: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.speech_ids)

    def holds(self, speech_id: str) -> bool:
        """Whether a passage of speech ``speech_id`` is in scope (everything is, when unscoped)."""
        return not self.speech_ids or speech_id in self.speech_ids

    def holds_passage(self, passage: Passage, text: str = "") -> bool:
        """Whether ``passage`` (or the sentence ``text`` of it) is in scope: its speech is, and
        when the question asks about a year, the passage is about that year or names it."""
        if not self.holds(passage.speech_id):
            return False
        if not self.topic_years:
            return True
        return passage.about_year in self.topic_years or any(f"{y}年" in (text or passage.text)
                                                             for y in self.topic_years)

    @property
    def names(self) -> tuple[str, ...]:
        """The places and speakers named: they pick the speeches, they are not the topic."""
        return (*self.places, *self.speakers)

    def topic_terms(self, terms: Sequence[str]) -> list[str]:
        """``terms`` without the names (a term holding a name, or held by one, is a name too:
        ``商丘市``, ``仙桃市委``) and the years counted from the speech's (``去年``)."""
        return [t for t in terms
                if t not in RELATIVE_YEARS and not any(n and (n in t or t in n) for n in self.names)]

    @property
    def label(self) -> str:
        """The places (or speakers) named, and the years, for a reader: ``仙桃``, ``仙桃2016年``."""
        years = self.years + self.topic_years
        return "、".join(self.places or self.speakers) + "、".join(f"{y}年" for y in years)


def _names(name: str, query: str) -> bool:
    return bool(name) and (name in query or place_key(name) in query)


def _named_division(place: str, query: str) -> bool:
    """Whether ``query`` names the division ``place`` in another form (宁夏 for 宁夏回族自治区)."""
    if not has_han(query):
        return False
    from speechrag.places import mentions_place

    return mentions_place(query, place)


def scope_of(searcher: Searcher, query: str) -> Scope:
    """The speeches ``query`` names by place, speaker or year (an empty Scope when it names none, or
    when it names every place the speeches are about: then nothing is singled out), and what it
    names that no document has (`Scope.missing`)."""
    speeches: tuple[Speech, ...] = searcher.speeches
    # An English question names a place in pinyin (``Xiantao``): the same scope as 仙桃.
    pinyin_named = set(named_places(query, searcher.place_aliases)) if has_latin(query) else set()
    places = tuple(p for p in searcher.places if _names(p, query) or p in pinyin_named or _named_division(p, query))
    # 商丘市 and 商丘 are one place: keep the names the speeches use, each once.
    places = tuple(dict.fromkeys(p for p in places if not any(p != q and p in q for q in places)))
    speakers = tuple(dict.fromkeys(s.speaker for s in speeches if s.speaker and s.speaker in query))
    missing = list(unknown_places(searcher, query, places))
    ids = frozenset(
        s.id for s in speeches
        if (s.place and any(place_key(s.place) == place_key(p) for p in places)) or s.speaker in speakers
    )
    named = named_years(query)
    documents = document_years(query)
    # A document's year narrows the places' speeches to those given that year, or picks out that
    # year's speeches alone.
    def of_year(s: Speech, y: int) -> bool:  # given that year, or a document of it (《2018年度总结》)
        return s.year == y or str(y) in s.title

    years = tuple(y for y in named if y in documents and any(of_year(s, y) for s in speeches))
    if years:
        dated = frozenset(s.id for s in speeches if any(of_year(s, y) for y in years))
        ids = dated if not (places or speakers) else ids & dated
        if not ids:
            missing.append(f"{'、'.join(places or speakers)}{years[0]}年")
    missing += [f"{y}年" for y in named if y in documents and not any(of_year(s, y) for s in speeches)]
    # A year asked about narrows to the speeches with passages about it; a year no passage is
    # about and no text names (2021年 in a collection that ends in 2019) is missing. One that
    # only a text names (1982年制定的国策) scopes nothing.
    topic: list[int] = []
    for y in (y for y in named if y not in documents):
        about = frozenset(s.id for s in speeches if y in s.years or s.year == y)
        if about and (ids & about or not (places or speakers)):
            ids = ids & about if ids else about
            topic.append(y)
        elif about:
            missing.append(f"{'、'.join(places or speakers)}{y}年")  # that year, but not for them
        elif not searcher.document_frequency(f"{y}年"):
            missing.append(f"{y}年")
    missing_names = tuple(dict.fromkeys(missing))
    if not ids or len(ids) == len(speeches):
        return Scope(missing=missing_names)
    return Scope(places, speakers, ids, years, tuple(topic), missing_names)


# After a place a question names as its scope: a document of it (上海市2019年政府工作报告) or
# its own figures, when the question opens with the place (上海今年的目标, 台湾省2025年…).
_OWNS = re.compile(r"^(?:\d{4}\s*年)?(?:的)?(?:政府)?(?:工作报告|报告|讲话|统计公报|公报|规划)")
_OPENING_YEAR = re.compile(r"^(?:\d{4}\s*年)?$")
# What may stand before a place's short name: nothing, punctuation, or a word that leads to a
# place (在上海, 到广州, 和深圳); another character makes it part of a word (汪广平 is a name).
_BEFORE_PLACE = set("在到去来赴和与及、，,：:的从向")
# …or after: a place's short name that begins an institution's or a thing's name (井冈山干部学院,
# 延安精神, 成都日报, 北京冬奥会) is that name, not the place.
_NAME_AFTER_PLACE = re.compile(
    # an institution's name may run on before its kind: 成都工业职业技术学院, 北京华为数字技术有限公司
    r"^(?:[\u4e00-\u9fff]{0,8}?(?:学院|大学|中学|小学|学校|党校|公司|集团|医院|银行|研究院|研究所|博物馆|纪念馆)|"
    r"精神|日报|晚报|电视台|"
    r"广播电台|机场|火车站|大桥|会议|峰会|论坛|宣言|协议|模式|经验|"
    # events named after their host city: 北京冬奥会, 上海世博会, 杭州亚运会, 广交会
    r"冬奥|奥运|残奥|亚运|世博|进博|博览会|交易会|运动会|马拉松|车展)")


def unknown_places(searcher: Searcher, query: str, known: Sequence[str]) -> tuple[str, ...]:
    """Places ``query`` names as places (real administrative divisions) that no speech is about:
    missing when no passage mentions them either (井冈山 in 井冈山干部学院 is a place a speech
    talks about), or when the question takes them as its scope (上海今年的目标是什么,
    台湾省2025年政府工作报告提出的目标), which another place's figure cannot answer."""
    from speechrag.places import find_divisions, same_place

    held = [*(s.place for s in searcher.speeches if s.place), *known]
    found: list[str] = []
    for m in find_divisions(query):
        before = query[m.start - 1] if m.start else ""
        if m.common or not (m.full or not before or before in _BEFORE_PLACE or not has_han(before)):
            continue
        if not m.full and _NAME_AFTER_PLACE.match(query[m.end :]):
            continue
        if any(same_place(m.text, h) for h in held):
            continue
        scoping = bool(_OWNS.match(query[m.end :])) or bool(_OPENING_YEAR.match(query[: m.start]))
        if scoping or not searcher.document_frequency(place_key(m.text)):
            found.append(m.text)
    return tuple(dict.fromkeys(found))


_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)\s*年(?!代)")
# A year naming a document: 2019年政府工作报告, 2017年那篇年终总结, 2018年度总结, 2016年的讲话.
_DOCUMENT_YEAR = re.compile(
    r"(?<!\d)((?:19|20)\d\d)\s*年(?:度|的|那篇|那份|这篇|的那篇)?\s*"
    r"(?:[\u4e00-\u9fff]{0,8}?(?:政府)?工作报告|[\u4e00-\u9fff]{0,4}?(?:讲话|致辞|报告|公报|总结|发言|贺词))"
)
_YEAR_EN = re.compile(r"\b(?:in|of|during|for|since)\s+((?:19|20)\d\d)\b", re.IGNORECASE)


def named_years(query: str) -> tuple[int, ...]:
    """The years a question names: ``2016年`` in Chinese, ``in 2016`` in English (a bare number
    in Chinese text is read as a year only when 年 follows: 2000元 is no year)."""
    if has_han(query):
        found = [int(m.group(1)) for m in _YEAR.finditer(query)]
    else:
        found = [int(m.group(1)) for m in _YEAR_EN.finditer(query)]
    return tuple(dict.fromkeys(found))


def document_years(query: str) -> frozenset[int]:
    """The years ``query`` names as a document's (``2019年政府工作报告``, ``2018年度总结``)."""
    return frozenset(int(m.group(1)) for m in _DOCUMENT_YEAR.finditer(query))


def without_names(searcher: Searcher, query: str, scope: Scope) -> str:
    """``query`` without the places and speakers its scope names, in Chinese or in pinyin."""
    words = query
    for name in (*scope.places, *scope.speakers):
        words = words.replace(name, " ")
    aliases = [a for a, p in searcher.place_aliases.items() if p in scope.places] if has_latin(query) else []
    if aliases:
        # Not \b: a pinyin name runs straight into Chinese (``Xiantao的``), both word characters.
        pattern = "(?<![a-z])(" + "|".join(map(re.escape, aliases)) + ")(?![a-z])"
        words = re.sub(pattern, " ", words, flags=re.IGNORECASE)
    return words


def speech_label(searcher: Searcher, speech_id: str) -> str:
    """A short name for a speech, for a sentence quoted from outside the question's scope:
    its title with the place folded in (``篇五（商丘）`` -> ``篇五·商丘``)."""
    speech = searcher.speech(speech_id)
    if speech is None:
        return ""
    title = speech.title.strip()
    if speech.place and title.endswith(f"（{speech.place}）"):
        title = f"{title[: -len(speech.place) - 2]}·{speech.place}"
    elif speech.place and speech.place not in title:
        title = f"{title}·{speech.place}"
    if speech.year and str(speech.year) not in title and any(
            s.title == speech.title and s.id != speech.id for s in searcher.speeches):
        title = f"{title}·{speech.year}年"  # yearly reports all titled 政府工作报告
    return title


def rank_in_scope(searcher: Searcher, query: str, qvec: Any, ranking: Ranking, k: int, *, mode: str = "hybrid",
                  where: Filter | None = None, rrf_k: float, elsewhere: bool = False) -> tuple[Scope, tuple[Hit, ...]]:
    """The question's scope and its hits: the k best passages of the speeches it names, then the
    k best of the other speeches. A filter given by the caller is the scope (`filter_scope`);
    only with ``elsewhere`` (an answer) are other speeches' passages added after its own. An
    unscoped question keeps ``ranking``'s hits."""
    if where is not None:
        # The filters chosen in the page (or given to answer()) are the scope, as if the
        # question had named them: their speeches' passages are ``ranking``'s, and another
        # speech's sentence that gives the detail they leave out is offered labelled
        # (关于仙桃，讲话没有说多少钱；篇五·商丘的讲话提到了：), never as theirs.
        if not elsewhere:  # retrieve() keeps to the filter, ranked as it ranks: only an answer looks past it
            return Scope(), ranking.hits
        scope, words, own = filter_scope(searcher, where), query, ranking.hits
    else:
        scope = scope_of(searcher, query)
        # Within the scope the place's name tells passages apart only by whether they happen to
        # repeat it (a speech's opening does), so the keyword search leaves it out: with it, the
        # gold passage of 6 仙桃 questions fell from first to second (eval/questions.jsonl).
        words = without_names(searcher, query, scope) if scope else query
        own = _own_hits(searcher, scope, words, qvec, k, mode=mode, rrf_k=rrf_k) if scope else ()
    if not scope:
        return scope, ranking.hits
    # The others are searched without the name too: with it, the place's own passages fill the
    # list and another place's figure, the one a reader must be told is not this place's, is
    # never seen.
    others = searcher.rank(words, qvec, 2 * k, mode=mode, rrf_k=rrf_k).hits
    return scope, _merge(own, [h for h in others if not scope.holds(h.passage.speech_id)], k)


def _own_hits(searcher: Searcher, scope: Scope, words: str, qvec: Any, k: int, *, mode: str,
              rrf_k: float) -> tuple[Hit, ...]:
    """The best passages of the speeches ``scope`` names. When it asks about a year, the
    passages about that year come first (the 2014 report's review of 2013), in rank order, and
    twice k of them are kept: a report's review of one year is twenty paragraphs of figures that
    all share the question's words (宁夏's 全年实现地区生产总值5503亿元 was the sixth, and the
    answer said the report had no figure)."""
    depth = 4 * k if scope.topic_years else k
    scoped = searcher.rank(words, qvec, depth, mode=mode, where=Filter(speeches=scope.speech_ids), rrf_k=rrf_k)
    if not scope.topic_years:
        return scoped.hits
    about = [h for h in scoped.hits if scope.holds_passage(h.passage)]
    return tuple([*about, *(h for h in scoped.hits if h not in about)][:2 * k])

def filter_scope(searcher: Searcher, where: Filter) -> Scope:
    """A caller's place, speaker or year filter as a Scope: the speeches it allows, labelled by
    them (empty when it allows every speech, or only picks speeches by id)."""
    ids = frozenset(s.id for s in searcher.speeches if where.allows(s))
    if len(ids) == len(searcher.speeches) or not (where.places or where.speakers or where.years):
        return Scope()  # all, or speeches chosen by id (compare's groups): no place to be labelled
    years = tuple(sorted({where.years[0], where.years[1]})) if where.years else ()
    return Scope(tuple(sorted(where.places or ())), tuple(sorted(where.speakers or ())), ids, years)


def _merge(scoped: Sequence[Hit], everywhere: Sequence[Hit], k: int) -> tuple[Hit, ...]:
    """The scoped hits first, then the best others, renumbered; k of each at most."""
    ids = {h.passage.id for h in scoped}
    others = [h for h in everywhere if h.passage.id not in ids][:k]
    return tuple(replace(h, rank=n) for n, h in enumerate([*scoped, *others], start=1))
