"""The detail a question asks for (how often, how long, how much, who, when, what name) and whether a
sentence gives it.

A speech often addresses a topic without the detail asked: 天水's speech says a 《麦积山文艺奖》
will be set up, never how often it is awarded. Quoting the sentence about the award as the
answer to ``这个奖多久评一次？`` misleads; saying that the speech mentions the award but not how
often it is given does not. The patterns are deliberately plain: a figure is a digit or a
Chinese numeral with a unit (or an amount written out: 百分之十五, `text.written_figures`), a
person is a name with a title, a date is a year, month or day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from speechrag.people import people_in, self_introduction
from speechrag.text import CN_DIGITS, MEASURES, RANGE_JOINERS, written_figures


@dataclass(frozen=True)
class Detail:
    """One kind of detail: how a question asks for it, how a sentence gives it, and how to say
    to a reader that the speeches leave it out."""

    name: str
    asks: re.Pattern[str]
    gives: re.Pattern[str]
    missing: str  # completes 讲话提到了……，但没有说……


_NUM = "〇一二三四五六七八九十两百千万亿半"  # 零 alone is a word (零部件, 零售), inside a number it is not needed
# Measure words that make a Chinese numeral a figure (四十处, 一百场, 二百公里).
_UNITS = MEASURES
FREQUENCY = Detail(
    "frequency",
    re.compile(r"(?:多久|多长时间)[^，。？?；]{0,6}一[次届回]|隔多|几年一|每几|频率|周期|\bhow often\b", re.I),
    re.compile(rf"每[{_NUM}\d]*[年月季周天届期次]|[{_NUM}\d]+[年月]一[次届评]|一年一|定期|常态化|年度"),
    "多久一次",
)
# How long, not how often (培训为期多久？ 学习了多长时间？): a number of years, months, days, hours,
# terms (为期一个月, 两个学期, 每天十小时). Asked as a frequency, 两个学期 answered nothing and the
# notice said 没有说多久一次 over it.
DURATION = Detail(
    "duration",
    re.compile(r"多长时间|多久|为期|几个?(?:月|星期|小时|钟头)|几天|多少(?:天|个月|年|小时|分钟)|\bhow long\b", re.I),
    re.compile(rf"[{_NUM}\d]+(?:\.\d+)?[多余]?个?半?(?:年|月|周|星期|天|日|小时|钟头|分钟|秒|学期|季度|课时)"
               r"|半(?:年|天|个月)"),
    "多长时间",
)
WHEN = Detail(
    "when",
    re.compile(r"什么时候|何时|哪一?年|哪天|几月|几号|日期|什么年代|\bwhen\b|\b(which|what) (year|date|day)\b", re.I),
    re.compile(rf"(\d+|[{_NUM}]+|xx|XX)(年代|年|月|日)|月底|年底|年初|明日|今年|去年|明年|上个?世纪"),
    "具体时间",
)
# A person named by title. 长 starting the next word is no title: 干部长期, 城市长远, 大局长远
# (counted, 干部长期工作在一线 answered 仙桃是哪个部门牵头？), nor is 主任务.
TITLES = r"同志|(?:部|市|局)长(?![期远效足久治])|书记|主任(?!务)|委员"
WHO = Detail(
    "who",
    re.compile(r"谁|哪位|什么人|哪个部门|\bwho(m|se)?\b", re.I),
    re.compile(rf"{TITLES}|部门|一把手|领导"),
    "是谁",
)
AMOUNT = Detail(
    "amount",
    re.compile(r"多少|(?<!哪)几[个年次项位成倍种万岁人名]|百分之|比例|比率|金额|奖金|标准是|"
               r"\bhow (many|much|large|big)\b|\bwhat (percentage|percent|rate|ratio|number|share)\b", re.I),
    re.compile(rf"\d|[{_NUM}]+[{_UNITS}]|[{_NUM}]+[万亿]"),  # and `text.written_figures` (see `gives`)
    "具体数字",
)
NAME = Detail(
    "name",
    re.compile(r"叫什么|名字|名称|全称|简称|什么奖|什么文件|哪个文件|\b(called|named|titled?)\b", re.I),
    re.compile(r"《[^》]{2,40}》|“[^”]{2,40}”"),
    "名称",
)
# The name of an institution asked (公司的全称, 哪所学校的名称) is answered by an institution's name,
# not by any quoted title (离别时的《再见》 answered 李富涛所在公司的全称是什么？).
_ORG_NAME_Q = re.compile(r"(?:公司|单位|企业|学校|学院|大学|医院|机构|组织|集团|银行)的?(?:全称|名称|名字|简称)")
# A name is a registered form (…有限公司) or a place's institution (成都工业职业技术学院); 感谢公司
# and 进入公司 name none.
_ORG_NAME = re.compile(r"(?:(?![的了在是我你他她它们进入加这那该本各全和与及到从])[\u4e00-\u9fff]){2,12}"
                       r"(?P<kind>有限公司|有限责任公司|股份公司|集团|公司|学校|学院|大学|医院|研究院|研究所|协会|银行)")
_REGISTERED = ("有限公司", "有限责任公司", "股份公司", "集团")


def _names_institution(sentence: str) -> bool:
    from speechrag.places import find_divisions

    return any(m["kind"] in _REGISTERED or any(not d.common for d in find_divisions(m.group(0)))
               for m in _ORG_NAME.finditer(sentence))


# Most specific first: ``多久一次`` is a frequency, ``多久`` alone a duration, though ``几`` might read
# as an amount.
DETAILS = (FREQUENCY, DURATION, WHEN, WHO, NAME, AMOUNT)


# The unit a how-many question names (多少万元, 多少名会员, 几个人) and the units that answer it.
# 天水市文联有多少名会员？ is not answered by a sentence about 20xx年 work or the 三个一 mechanism:
# when a question names its unit, the figure must come with one of the same family, or be a
# bare large number (新出生人口近10万: the noun came first, the unit is left out).
_UNIT_FAMILIES = (("人", "名", "位"), ("元",), ("户", "家"), ("亩",), ("吨",), ("公里",), ("平方米",),
                  ("座", "所", "处"), ("场", "次"), ("岁",))
_ASKED_UNIT = re.compile(
    r"(?:多少|几)[万亿千百十]*(人(?![口员才民数群])|名|位|元|块钱|户|家|亩|吨|公里|平方米|座|所|处|场|次|岁)"
)
_MONEY_Q = re.compile(r"多少钱|经费|资金|预算|费用|金额|奖金|\bhow much money\b", re.I)
# A share asked (研发经费支出相当于生产总值的比例达到多少？) is answered by a per cent (4.5%左右), not by
# money, whatever else the question names.
PER_CENT = ("%",)
# …and so is a rate (失业率是多少？ 出生率为多少): a sentence that only names the rate, with any
# other count in it (数据来自…三家), does not answer it.
_RATIO_Q = re.compile(r"比例|比率|比重|占比|百分比|百分之(?:几|多少)|几成|率(?:是|为|达到|有|控制在)?多少|"
                      r"\b(percentage|percent|ratio|share)\b", re.I)
_PER_CENT_GIVEN = re.compile(r"\d\s*[%‰]|[百千]分之|[二三四五六七八九两]成")
# Dates are not amounts: 20xx年, 2016年, 二〇一〇年, 2016—2020年, 5月18日 hold numbers but answer no
# how-many question.
_YEAR = rf"(?:\d{{2}}[\dxX]{{2}}|[{CN_DIGITS}]{{4}})"
_DATES = re.compile(
    rf"(?:{_YEAR}年?\s*[{RANGE_JOINERS}]\s*)?{_YEAR}年"
    r"|[\d一二三四五六七八九十]{1,3}月(?:[\d一二三四五六七八九十]{1,3}[日号])?|\d{1,2}[日号]"
)
# Numbers that are no amount: a lone 一 before a measure word, an article or a word's last
# character (一个重要的社会问题, 一项工作, 统一部署), and numbers inside a short quotation, which
# name a thing (“1135”战略, “三个一”机制, “两非”).
_NOT_AMOUNTS = re.compile(rf"(?<![{_NUM}\d])一(?=[{_UNITS}些])|“[^”]{{1,12}}”")


def without_names_and_articles(sentence: str) -> str:
    """``sentence`` with its articles and quoted names blanked: what is left of its numbers
    are figures (amounts or dates)."""
    return _NOT_AMOUNTS.sub(" ", sentence)


_NUMBER = rf"(?:\d+(?:\.\d+)?|[{_NUM}]+(?:点[{_NUM}]+)?)"
# A count before its unit: digits, or Chinese numerals holding a digit. 万元 alone is no figure,
# nor is a template's blank (全平台销售总额达xxx万元): it answered 具体是多少万元 as found.
_COUNT = rf"(?:\d+(?:\.\d+)?|[{_NUM}]*[〇一二三四五六七八九十两半][{_NUM}]*(?:点[{_NUM}]+)?)"
# (a measure word after 万 makes it a counted figure of that unit; 360万天水儿女 is still bare)
_BARE_LARGE = re.compile(rf"{_NUMBER}[万亿]+(?![个项倍位家户人元次例名吨亩台辆张所座处场件套本部期批类份种%‰])")
# A sum of money leaves out 元 only at the end of a clause (奖励资金共计1500万。): 360万天水儿女
# is people, and it answered 这个奖的奖金有多少钱？
_BARE_MONEY = re.compile(rf"{_NUMBER}[万亿]+(?=[，。；、,.;:：！？!?）)\s]|$)")


# A rate asked (每户每年发多少钱？) is not answered by a total (为10.8万户…发放资金1500万元): the
# figure must be given per household or per person too.
_PER_ASKED = re.compile(r"每(?:户|人|名|位|家|个人|对)|人均|户均")
_PER_GIVEN = re.compile(r"每|人均|户均|/(?:人|户)")


def asked_unit(question: str) -> tuple[str, ...]:
    """The units that answer a how-many question naming one (("人", "名", "位") for 多少名),
    or () when it names none."""
    m = _ASKED_UNIT.search(question)
    if not m and _RATIO_Q.search(question):
        return PER_CENT
    unit = m.group(1) if m else ("元" if _MONEY_Q.search(question) else "")
    unit = "元" if unit == "块钱" else unit
    return next((f for f in _UNIT_FAMILIES if unit in f), ())


def missing_detail(detail: Detail, question: str) -> str:
    """What a partial answer says the speeches leave out (completes 讲话提到了……，但没有说……): an
    amount asked in a unit is that count (多少人, 多少钱, 比例), since a quoted sentence may well hold
    another figure, and 没有说具体数字 above a sentence holding one reads as false."""
    units = asked_unit(question) if detail is AMOUNT else ()
    if not units:
        return detail.missing
    return "比例" if units == PER_CENT else "多少钱" if units == ("元",) else f"多少{units[0]}"


def asked_detail(question: str) -> Detail | None:
    """The detail ``question`` asks for, or None (a why/how/what-about question)."""
    for d in DETAILS:
        if d.asks.search(question):
            return d
    return None


def gives(detail: Detail, sentence: str, question: str = "") -> bool:
    """Whether ``sentence`` gives the detail asked: for an amount, never a date standing in for
    a figure, per household or person when that is asked, and with the unit ``question`` names
    when it names one."""
    if detail is DURATION:  # 2019年 and 3月 are dates, not how long
        return detail.gives.search(_DATES.sub(" ", sentence)) is not None
    if detail is WHO:  # a title, or a name the sentence gives (我是本次的项目汇报人，连志林)
        return detail.gives.search(sentence) is not None or bool(people_in(sentence) or self_introduction(sentence))
    if detail is NAME and _ORG_NAME_Q.search(question):
        return _names_institution(sentence)
    if detail is not AMOUNT:
        return detail.gives.search(sentence) is not None
    text = without_names_and_articles(_DATES.sub(" ", sentence))
    if _PER_ASKED.search(question) and not _PER_GIVEN.search(text):
        return False
    units = asked_unit(question)
    if not units:
        return detail.gives.search(text) is not None or bool(written_figures(text))
    if units == PER_CENT:
        return _PER_CENT_GIVEN.search(text) is not None
    # (an approximate figure: 两千多名, 40余万人, 10来个)
    with_unit = rf"{_COUNT}\s?[万亿千百十]*[多余来]?[万亿千]*\s*(?:{'|'.join(units)})"
    bare = _BARE_MONEY if units == ("元",) else _BARE_LARGE
    return re.search(with_unit, text) is not None or bare.search(text) is not None
