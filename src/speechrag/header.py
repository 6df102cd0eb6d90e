"""Speech metadata from a document's first lines: title, date, speaker, occasion, place.

    parse_header(lines, title_hint="", filename="") -> Header(title, date, speaker, occasion, place, consumed)

Government speeches open with a few lines of metadata before the text; ``consumed`` says how many
leading lines they are, so corpus.py can keep them out of the passages. The lines are read in
order and each must be one of these, else the header ends (a salutation such as ``同志们：`` or
``各位代表：`` always ends it and is not consumed):

=============  ===========================================================================
line           examples
=============  ===========================================================================
title          ``政府工作报告``; a second line joins it: ``上的讲话`` directly, a subtitle
               ``——在全市经济工作会议上的讲话`` (or one without the dash) with ``——``
date line      ``（2017年2月11日）``, ``二〇一七年二月十一日``, ``2019年6月12日``
occasion line  ``——2017年2月11日在XX区第X届人民代表大会第X次会议上``, ``2017年2月11日在…上``
news line      ``2019-03-05 08:12 来源：人民网``, ``发布时间：2019-03-05``, ``来源：新华社``
speaker line   ``XX区人民政府区长　　张三``, ``…市长 张三同志作政府工作报告``, a 2-4 character
               name alone under the title (``张 三``), checked against common surnames
=============  ===========================================================================

The title itself may name the speaker and occasion: ``张三同志在全县农村工作会议上的讲话``,
``仙桃市委书记刘强在…上的讲话``. Dates are ISO (``YYYY-MM-DD``, ``YYYY-MM``, ``YYYY``), Chinese
numerals included; a speech's own date wins over a web page's publication date. ``occasion`` is
the ``在…上`` phrase as written (``在全县农村工作会议上``), as ``Speech.occasion`` documents.

``place`` is the most specific place named in the title, occasion or speaker lines, WITH its
administrative suffix (``青山区``, ``商丘市``, ``河南省``): the suffix says the level, and stems
alone collide (朝阳区/朝阳市). It is a word jieba's dictionary tags as a place (ns), or a name
directly followed by an institution (``XX区人民政府``, ``XX县第X届人民代表大会``); 全市, 本区,
开发区, 社区 and other common words never count. Note ``speechrag.corpus.detect_place`` returns
stems (``商丘``); strip the suffix to compare the two.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date as _date
from functools import cache
from pathlib import Path

from speechrag.lexical import jieba_dictionary
from speechrag.text import SALUTATION, heading_level, normalise

log = logging.getLogger(__name__)

MAX_HEADER_LINES = 10  # a header longer than this is body text that happened to look like one
MAX_TITLE_CHARS = 60


@dataclass(frozen=True)
class Header:
    """What a document's header says about the speech; ``consumed`` leading lines are header."""

    title: str
    date: str = ""
    speaker: str = ""
    occasion: str = ""
    place: str = ""
    consumed: int = 0


# --- dates --------------------------------------------------------------------------------

_CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
_YEAR = r"(?:\d{4}|[〇零○Ｏ一二三四五六七八九]{4})"
_MD = r"(?:\d{1,2}|[一二三四五六七八九十]{1,3})"
DATE = rf"(?:{_YEAR}\s*年(?:\s*{_MD}\s*月(?:\s*{_MD}\s*[日号])?)?|\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}})"
_DATE_PARTS = re.compile(
    rf"(?P<y>{_YEAR})\s*年(?:\s*(?P<m>{_MD})\s*月(?:\s*(?P<d>{_MD})\s*[日号])?)?"
    r"|(?P<iy>\d{4})[-/.](?P<im>\d{1,2})[-/.](?P<id>\d{1,2})"
)


def _cn_number(text: str) -> int:
    """Arabic or Chinese numerals up to 99: 9, 十 10, 十一 11, 二十 20, 三十一 31; 二〇一七 2017."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    value = 0
    for ch in text:
        value = value * 10 + _CN_DIGITS[ch]
    return value


def parse_date(text: str) -> str:
    """The first valid date in ``text`` as ISO ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``; else ""."""
    for m in _DATE_PARTS.finditer(text.translate(_FULLWIDTH)):
        try:
            if m.group("iy"):
                y, mo, d = int(m.group("iy")), int(m.group("im")), int(m.group("id"))
            else:
                y = _cn_number(m.group("y"))
                mo = _cn_number(m.group("m")) if m.group("m") else 0
                d = _cn_number(m.group("d")) if m.group("d") else 0
            if not 1900 <= y <= 2100:
                continue
            if d:
                return _date(y, mo, d).isoformat()
            if mo:
                return f"{y:04d}-{mo:02d}" if 1 <= mo <= 12 else ""
            return f"{y:04d}"
        except (KeyError, ValueError):
            continue
    return ""


# --- line patterns ----------------------------------------------------------------------

_DASH = "—–－-─"
_MEETING = re.compile(r"会|典礼|仪式|论坛|活动|班|庆典|开幕|闭幕|启动|报告会|座谈")
# 在 + the meeting + 上, greedy so 在全市上半年经济形势分析会上 keeps its inner 上.
_OCCASION = re.compile(r"在(?P<occ>[^，。；！？]{2,60})上")
_OCCASION_LINE = re.compile(
    rf"^[（(]?\s*(?P<date>{DATE})?\s*(?:在(?P<occ>[^，。；！？]{{2,60}})上)?"
    r"(?P<kind>的?[^，。；]{0,10}?(?:讲话|报告|致辞|发言|演讲|总结))?\s*[）)]?$"
)
_DATE_LINE = re.compile(rf"^[（(【\[]?\s*(?:{DATE})\s*[）)】\]]?$")
_NEWS_LINE = re.compile(
    rf"^(?:(?:发布时间|发布日期|更新时间|日期|时间)[:：]\s*)?(?P<date>{DATE})(?:\s*\d{{1,2}}[:：]\d{{2}}(?:[:：]\d{{2}})?)?"
    r"(?:\s*(?:来源|作者|编辑|记者|通讯员|责任编辑|字号)[:：]\s*\S{0,30})*\s*$"
)
_SOURCE_LINE = re.compile(r"^(?:来源|信息来源|文章来源|作者|记者|通讯员|编辑|责任编辑)[:：]\s*\S.{0,40}$")
_TITLES = (
    "书记|副书记|市长|区长|县长|省长|州长|镇长|乡长|旗长|盟长|主席|主任|部长|厅长|局长|处长|科长|"
    "委员|秘书长|理事长|董事长|总经理|校长|院长|所长|会长|行长|司令员|政委|常委|巡视员|调研员|代表"
)
_SPEAKER_LINE = re.compile(
    rf"^(?P<office>[^，。！？；：]{{0,30}}?(?:{_TITLES}))\s*(?P<name>[\u4e00-\u9fff](?:\s?[\u4e00-\u9fff]){{1,3}})$"
)
_SPEAKER_REPORTS = re.compile(
    rf"^(?P<office>.{{0,30}}?(?:{_TITLES}))?\s*(?P<name>[\u4e00-\u9fff]{{2,4}}?)同志?(?:作|代表.{{1,12}}作).{{0,12}}报告$"
)
_SPEAKER_IN_TITLE = re.compile(
    rf"^(?P<office>.{{0,30}}?(?:{_TITLES}))?\s*(?P<name>[\u4e00-\u9fff]{{2,4}}?)(?P<comrade>同志)?(?:在|出席)"
)
# Lines of a document's preamble that say nothing about the speech but are not its text either:
# 附件2, （此件公开发布）, （根据录音整理）, 内部资料 注意保存. Consumed wherever they sit in the header.
_PREAMBLE = re.compile(
    r"^[（(【\[]?\s*(?:附件\s*\d{0,2}|此件公开发布|此件不公开|内部资料[，,、\s]*(?:注意保存)?|注意保存|根据录音整理|"
    r"(?:讲话|发言|整理|修改|送审|征求意见)稿|摘要|全文|节选|有删节)\s*[）)】\]]?$"
)
_BYLINE = re.compile(r"^[\u4e00-\u9fff](?:\s?[\u4e00-\u9fff]){1,3}$")
_SPEECH_WORD = re.compile(r"(讲话|报告|致辞|发言|演讲|讲稿|总结)$")
_SENTENCE_END = "。！？；!?;…"

# Common single-character surnames (397) and the compound ones: a byline or a
# name cut from a title must start with one, so 目录, 前言 or 市委书记 are never taken for names.
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
    "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯"
    "纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪"
    "简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎"
    "甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝"
    "郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍"
    "辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣"
    "信展阴昝智幸奉植衡富尧闭由"
)
_COMPOUND_SURNAMES = tuple(
    ["欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "夏侯", "令狐", "宇文"]
)
_NOT_NAMES = re.compile(r"同志|们|各位|代表|目录|前言|讲话|报告|说明|附件|摘要|提纲|全文|全市|全区|全县|全省|我们")


def _name(text: str) -> str:
    """``text`` as a person's name (2-4 characters from a common surname), or ""."""
    name = re.sub(r"\s+", "", text)
    if not 2 <= len(name) <= 4 or _NOT_NAMES.search(name):
        return ""
    return name if name[0] in _SURNAMES or name.startswith(_COMPOUND_SURNAMES) else ""


def _is_title(line: str) -> bool:
    return (
        len(line) <= MAX_TITLE_CHARS
        and line[-1] not in _SENTENCE_END
        and "。" not in line
        and not heading_level(line)
        and not SALUTATION.match(line)
    )


def _occasion(text: str) -> str:
    for m in _OCCASION.finditer(text):
        if _MEETING.search(m.group("occ")):
            return f"在{m.group('occ')}上"
    return ""


# --- places -------------------------------------------------------------------------------

_ADMIN_SUFFIXES = tuple(
    ["特别行政区", "自治区", "自治州", "自治县", "自治旗", "省", "市", "区", "县", "州", "盟", "旗", "镇", "乡"]
)
_INSTITUTION = re.compile(r"^(?:人民政府|人民代表大会|人大|政协|委员会|党委|委|政府|第[一二三四五六七八九十百]+届)")
_NOT_STEM_START = set("全本我各该每此这那其上下在于由对向和与及的是为从将把被让给、")
# Common words that end like a place (ns in jieba or shaped like one) but name no place.
_COMMON = frozenset(
    [
        "开发区",
        "高新区",
        "新区",
        "城区",
        "市区",
        "郊区",
        "山区",
        "社区",
        "园区",
        "景区",
        "辖区",
        "片区",
        "街区",
        "小区",
        "地区",
        "灾区",
        "老区",
        "特区",
        "试验区",
        "示范区",
        "保护区",
        "功能区",
        "经济区",
        "自贸区",
        "都市",
        "城市",
        "超市",
        "上市",
        "股市",
        "集市",
        "省市",
        "县市",
        "乡镇",
        "城乡",
        "老乡",
        "家乡",
        "故乡",
        "下乡",
        "他乡",
        "城镇",
        "古镇",
        "重镇",
        "神州",
        "九州",
        "本省",
        "外省",
        "全省",
        "各省",
        "全州",
        "各州",
        "农村",
        "示范县",
        "贫困县",
        "强县",
        "大县",
        "百强县",
        "试点县",
        "试点市",
        "中心城区",
    ]
)


@cache
def place_words() -> frozenset[str]:
    """Words of three or more characters that jieba's own dictionary tags as places (ns)."""
    names: set[str] = set()
    # jieba-rs embeds the same dictionary but cannot list it; jieba's file is read as data.
    with jieba_dictionary().open(encoding="utf-8") as fh:
        for row in fh:
            parts = row.split()
            if len(parts) == 3 and parts[2] == "ns" and len(parts[0]) >= 3:
                names.add(parts[0])
    return frozenset(names)


@cache
def _ns_places() -> frozenset[str]:
    """Places from jieba's dictionary that end in an administrative suffix."""
    return frozenset(n for n in place_words()
                     if n.endswith(_ADMIN_SUFFIXES) and n not in _COMMON and n[0] not in _NOT_STEM_START)


def _places_in(text: str) -> list[tuple[int, int, str]]:
    """(start, end, place) for every place named in ``text``, longest match at each position."""
    known = _ns_places()
    found: list[tuple[int, int, str]] = []
    i = 0
    while i < len(text):
        hit = ""
        for length in range(min(12, len(text) - i), 2, -1):
            piece = text[i : i + length]
            if piece in known:
                hit = piece
                break
        if not hit:
            hit = _structural_place(text, i)
        if hit:
            found.append((i, i + len(hit), hit))
            i += len(hit)
        else:
            i += 1
    return found


def _structural_place(text: str, i: int) -> str:
    """A name jieba does not know, made certain by what follows: 青山区人民政府, 某某县第十届…."""
    if text[i] in _NOT_STEM_START:
        return ""
    for stem in (4, 3, 2):
        for suffix in _ADMIN_SUFFIXES:
            end = i + stem + len(suffix)
            candidate = text[i:end]
            if (
                candidate.endswith(suffix)
                and len(candidate) == stem + len(suffix)
                and re.fullmatch(r"[\u4e00-\u9fff]+", candidate)
                and candidate not in _COMMON
                and not any(ch in _NOT_STEM_START for ch in candidate[:stem])
                and _INSTITUTION.match(text[end:])
            ):
                return candidate
    return ""


def find_place(texts: Sequence[str]) -> str:
    """The place the first of ``texts`` (office, occasion, title) gives the speech, as written
    (河南省商丘市 -> 商丘市); "" for none or a national speech. See `speechrag.places`."""
    from speechrag.places import header_place

    return header_place(texts)


# --- the header ---------------------------------------------------------------------------


@dataclass
class _State:
    title: list[str]
    date: str = ""
    published: str = ""
    speaker: str = ""
    office: str = ""
    occasion: str = ""
    meta_seen: bool = False  # a non-title header line has been read: no more title lines


def _speaker_from_title(title: str, state: _State) -> None:
    m = _SPEAKER_IN_TITLE.match(title)
    if m and _OCCASION.search(title):
        name = m.group("name") if m.group("comrade") else _name(m.group("name"))
        if name and (m.group("comrade") or m.group("office") or _name(name)):
            state.speaker = state.speaker or name
            state.office = state.office or (m.group("office") or "")


def _read_line(line: str, state: _State) -> bool:
    """Take one header line into ``state``; False when the line is not header (the body begins)."""
    if _PREAMBLE.match(line):
        return True
    stripped = line.lstrip(_DASH).strip()
    dashed = stripped != line
    if _DATE_LINE.match(stripped):
        state.date = state.date or parse_date(stripped)
        state.meta_seen = True
        return True
    m = _OCCASION_LINE.match(stripped)
    # A date alone with a speech word is a title (2019年政府工作报告), not an occasion line.
    occasion_line = m is not None and (
        bool(m.group("occ") and _MEETING.search(m.group("occ"))) or bool(m.group("date") and not m.group("kind"))
    )
    if m and occasion_line:
        if m.group("kind") and not m.group("date") and not state.meta_seen and len(state.title) < 2:
            # 在…上的讲话 without a date: the title itself, or the subtitle under a main title.
            state.title.append(stripped)
            return True
        if m.group("date"):
            state.date = state.date or parse_date(m.group("date"))
        if m.group("occ"):
            state.occasion = state.occasion or f"在{m.group('occ')}上"
        state.meta_seen = True
        return True
    if dashed and state.title and _is_title(stripped) and not state.meta_seen:
        state.title.append(stripped)  # ——凝心聚力 再创佳绩
        return True
    m = _NEWS_LINE.match(line)
    if m:
        state.published = state.published or parse_date(m.group("date"))
        state.meta_seen = True
        return True
    if _SOURCE_LINE.match(line):
        state.meta_seen = True
        return True
    for pattern in (_SPEAKER_LINE, _SPEAKER_REPORTS):
        m = pattern.match(line)
        if m and _name(m.group("name")):
            state.speaker = _name(m.group("name"))
            state.office = (m.group("office") or "").strip()
            state.meta_seen = True
            return True
    if state.title and _BYLINE.match(line) and _name(line) and not state.speaker:
        state.speaker = _name(line)
        state.meta_seen = True
        return True
    if not _is_title(line):
        return False
    if not state.title and not state.meta_seen:
        state.title.append(line)
        return True
    if state.title and not state.meta_seen and len(state.title) == 1 and _second_title_line(state.title[0], line):
        state.title.append(line)
        return True
    if not state.title and state.meta_seen and not state.date and not state.speaker:
        state.title.append(line)  # a news page: 来源/date line first, then the title
        return True
    return False


def _second_title_line(first: str, line: str) -> bool:
    """A title's second line: the rest of a cut title (…会议 / 上的讲话) or a subtitle."""
    if line.startswith(("上的", "的", "上")) and _SPEECH_WORD.search(line):
        return True
    return bool(_SPEECH_WORD.search(line) and not _SPEECH_WORD.search(first) and line.startswith("在"))


def _join_title(parts: Sequence[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    first, second = parts[0], parts[1]
    if second.startswith(("上的", "的", "上")):
        return first + second
    return f"{first}——{second}"


def parse_header(lines: Sequence[str], *, title_hint: str = "", filename: str = "") -> Header:
    """Read the metadata lines at the top of a speech (see the module docstring)."""
    state = _State(title=[])
    consumed = 0
    for number, raw in enumerate(lines[:MAX_HEADER_LINES], start=1):
        line = normalise(raw)
        if not line:
            continue
        if SALUTATION.match(line) or not _read_line(line, state):
            break
        consumed = number
    title_parts = [p for p in state.title if p]
    title = _join_title(title_parts) if title_parts else ""
    if title_parts:
        _speaker_from_title(title_parts[0], state)
        state.occasion = state.occasion or _occasion(title)
    elif title_hint:
        _speaker_from_title(normalise(title_hint), state)
        state.occasion = state.occasion or _occasion(normalise(title_hint))
    title = title or normalise(title_hint) or Path(filename).stem
    place_texts = [t for t in (state.office, state.occasion, title) if t]
    return Header(
        title=title,
        date=state.date or state.published,
        speaker=state.speaker,
        occasion=state.occasion,
        place=find_place(place_texts),
        consumed=consumed,
    )
