"""Targets over the years: for each dated speech (a government work report), the sentence that
sets this year's target for an indicator, and the figure parsed.

A report dated 2019 sets targets for 2019 (``今年…主要预期目标是：国内生产总值增长6%－6.5%``)
and reports results for 2018 in its review (``国内生产总值增长6.6%``, under ``一、2018年工作回顾``,
which `Passage.about_year` dates 2018). A sentence is a target when it is not about an earlier
year (neither its passage's year nor a 回顾/过去 heading), carries no mark of a result (预计,
初步统计, 实现了, 完成了), and sets something: a target word (目标, 预期, 力争, 控制在) in the
sentence, the paragraph before it or the heading, or a qualifier on the figure (左右, 以上, 以内,
不低于). The figure is the one written right after the indicator, up to the next comma, so
``国内生产总值增长6%左右，居民消费价格涨幅3%左右`` gives 6% for the first and 3% for the second.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from speechrag.analysis.collection import Collection, Index, Paragraph, Years, load_collection
from speechrag.dates import years_named
from speechrag.errors import QueryError
from speechrag.text import CN_DIGITS, CN_MULTIPLIERS, RANGE_JOINERS, figure_values, normalise, split_sentences

# Names the same indicator goes by in national, provincial and city reports.
_GDP = ("国内生产总值", "地区生产总值", "生产总值", "GDP")
_CPI = ("居民消费价格指数", "居民消费价格", "消费价格", "CPI")
_JOBS = ("城镇新增就业", "新增就业")
_UNEMPLOYMENT = ("城镇调查失业率", "调查失业率")
_REGISTERED = ("城镇登记失业率", "登记失业率")  # another indicator than the surveyed rate
ALIASES: dict[str, tuple[str, ...]] = {
    **{name: _GDP for name in _GDP},
    **{name: _CPI for name in _CPI},
    **{name: _JOBS for name in _JOBS},
    **{name: _UNEMPLOYMENT for name in _UNEMPLOYMENT},
    **{name: _REGISTERED for name in _REGISTERED},
}
# Words before or after an indicator that make it another one (人均地区生产总值, 单位地区生产
# 总值能耗, 占地区生产总值的比重).
_NOT_BEFORE = re.compile("(人均|单位|万元|海洋|旅游|数字经济|占|与|同)$")
_NOT_AFTER = re.compile("能耗|比重|占比|水耗|电耗|排放|的")
MAX_GAP = 8  # characters between an indicator and its figure (涨幅控制在 is 5)

_NUM = rf"(?:\d+(?:,\d{{3}})*(?:\.\d+)?|[{CN_DIGITS}{CN_MULTIPLIERS}]+(?:点[{CN_DIGITS}]+)?)"
_UNIT = ("(?:个百分点|%|‰|[万亿千]{0,2}(?:人次|人|美元|元|吨标准煤|吨|千瓦时|千瓦|户|个|家|亩|公里|平方米"
         "|件|台|项|所|辆|套|间|张|次)|[万亿]{1,2})?")
_PREFIX = "不低于|不少于|不高于|不超过|不大于|至少|超过|高于|低于|力争|突破"
_SUFFIX = "左右|以上|以内|以下|上下|之内"
FIGURE = re.compile(
    rf"(?P<pre>{_PREFIX})?(?P<pc1>百分之)?(?P<a>{_NUM})(?P<u1>{_UNIT})"
    rf"(?:(?P<join>[{RANGE_JOINERS}]{{1,2}})(?P<pc2>百分之)?(?P<b>{_NUM})(?P<u2>{_UNIT}))?"
    rf"(?P<post>{_SUFFIX})?"
)
_TARGET_WORDS = re.compile("目标|预期|力争|争取|控制在|确保")
_RESULT_WORDS = re.compile("预计|初步统计|初步核算|实现了|完成了|同比|全年实现|全年完成")
_REVIEW = re.compile("回顾|过去|去年")


@dataclass(frozen=True)
class Figure:
    """A figure as written (``text``) and read: ``low``..``high`` (equal for one value) in
    ``unit`` (``%``, ``万人``, ``个百分点``; a 万/亿 before the unit stays in it), and its
    ``qualifier`` (左右, 以上, 以内, 不低于, …; "" for none)."""

    text: str
    low: Decimal
    high: Decimal
    unit: str
    qualifier: str

    @property
    def is_range(self) -> bool:
        return self.low != self.high

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "low": str(self.low), "high": str(self.high), "unit": self.unit,
                "qualifier": self.qualifier}


@dataclass(frozen=True)
class Target:
    """The sentence of one speech that sets a target for ``indicator`` (as the sentence names
    it) for ``year``, the figure, and where it stands."""

    indicator: str
    year: int
    figure: Figure
    sentence: str
    speech_id: str
    title: str
    date: str
    place: str
    section: str
    citation: str
    passage_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"indicator": self.indicator, "year": self.year, "figure": self.figure.to_dict(),
                "sentence": self.sentence, "speech_id": self.speech_id, "title": self.title, "date": self.date,
                "place": self.place, "section": self.section, "citation": self.citation,
                "passage_id": self.passage_id}


def _number(text: str) -> tuple[Decimal, str] | None:
    """A number as written and the 万/亿 it ends with, if Chinese numerals (一千一百万 ->
    (1100, 万)); None for numerals that are no number (十四五)."""
    tail = ""
    if text[-1] in "万亿" and len(text) > 1 and not text[0].isdigit():
        text, tail = text[:-1], text[-1]
    values = figure_values(text)
    if len(values) != 1:
        return None
    try:
        return Decimal(values[0]), tail
    except InvalidOperation:
        return None


def parse_figure(text: str) -> Figure | None:
    """The figure at the start of ``text`` (normalised first): ``6%－6.5%``, ``3%左右``,
    ``1100万人以上``, ``不低于6%``, ``百分之六左右``, ``6.5%至7%``; None when ``text`` does not start
    with a figure that has a unit (a year such as 2020年 is no figure here)."""
    text = normalise(text)
    m = FIGURE.match(text)
    if m is None:
        return None
    a = _number(m["a"])
    b = _number(m["b"]) if m["b"] else None
    if a is None or (m["b"] and b is None):
        return None
    u1 = ("%" if m["pc1"] else "") or a[1] + m["u1"]
    u2 = ("%" if m["pc2"] else "") or (b[1] + m["u2"] if b else "")
    unit = u2 or u1
    if not unit:
        return None
    low = a[0]
    high = b[0] if b else low
    qualifier = m["post"] or m["pre"] or ""
    return Figure(m.group(0), min(low, high), max(low, high), unit, qualifier)


def _pattern(indicator: str) -> re.Pattern[str]:
    names = ALIASES.get(indicator, (indicator,))
    return re.compile("|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)))


def find_figures(sentence: str, indicator: str) -> Iterator[tuple[str, Figure]]:
    """(the indicator as named, its figure) for each time ``sentence`` gives the indicator a
    figure: the first figure after it, with at most a few words between (增长, 涨幅控制在, 预期
    增长: no figure, no 的 and no 能耗 or 比重, which make it another indicator), before the next
    comma or enumeration mark."""
    for m in _pattern(normalise(indicator)).finditer(sentence):
        if _NOT_BEFORE.search(sentence[:m.start()]):
            continue
        clause = re.split("[，,。；;：:、]", sentence[m.end():], maxsplit=1)[0]
        for gap in range(min(len(clause), MAX_GAP + 1)):
            if _NOT_AFTER.search(clause[:gap]) or re.search(r"\d", clause[:gap]):
                break
            figure = parse_figure(clause[gap:])
            if figure is not None:
                yield m.group(0), figure
                break


def is_target(para: Paragraph, start: int, sentence: str, year: int, figure: Figure) -> bool:
    """Whether the sentence at offset ``start`` of ``para`` sets a target for ``year`` (the
    speech's) with ``figure``, rather than reporting a result (see the module docstring)."""
    passage = para.passage_at(start)
    if passage.about_year and passage.about_year < year:
        return False
    if _REVIEW.search(passage.section) or _RESULT_WORDS.search(sentence):
        return False
    return bool(figure.qualifier or _TARGET_WORDS.search(sentence)
                or "目标" in para.text[:start] or "目标" in passage.section)


def speech_targets(paragraphs: Iterable[Paragraph], indicator: str, year: int) -> list[Target]:
    """Every target for ``indicator`` in one speech given in ``year``, in reading order."""
    out = []
    pattern = _pattern(indicator)
    for para in paragraphs:
        if not pattern.search(para.text):
            continue
        offset = 0
        for sentence in split_sentences(para.text, at_semicolons=False):
            start = para.text.find(sentence, offset)
            offset = start + len(sentence)
            for named, figure in find_figures(sentence, indicator):
                if not is_target(para, start, sentence, year, figure):
                    continue
                later = [y for y in years_named(sentence) if y > year]
                passage, speech = para.passage_at(start), para.speech
                out.append(Target(named, later[0] if later else max(year, passage.about_year), figure, sentence,
                                  speech.id, speech.title, speech.date, speech.place, passage.section,
                                  passage.citation, passage.id))
    return out


def targets(
    indicator: str,
    *,
    speeches: str | Iterable[str] | None = None,
    speaker: str | Iterable[str] | None = None,
    place: str | Iterable[str] | None = None,
    years: Years = None,
    index: Index = None,
) -> tuple[Target, ...]:
    """For each dated speech that sets one, the target for ``indicator`` for the speech's own
    year (a later year's only if it sets none for its own), oldest speech first. Indicators
    with other names in other reports are looked for under all of them (`ALIASES`: 国内生产总值
    also finds 地区生产总值 and GDP). Filters as `speechrag.retrieve`; QueryError for bad input."""
    if not isinstance(indicator, str) or not normalise(indicator):
        raise QueryError(f"indicator must be a non-empty string. Currently, indicator is {indicator!r}")
    collection = load_collection(index, speeches=speeches, speaker=speaker, place=place, years=years)
    return collect(collection, normalise(indicator))


def collect(collection: Collection, indicator: str) -> tuple[Target, ...]:
    """`targets` over a collection already loaded."""
    found = []
    by_speech = collection.by_speech()
    for speech in collection.speeches:
        if not speech.year:
            continue
        listed = speech_targets(by_speech[speech.id], indicator, speech.year)
        own = [t for t in listed if t.year == speech.year]
        if own or listed:
            found.append((own or listed)[0])
    return tuple(sorted(found, key=lambda t: (t.date, t.year)))
