"""Speech metadata from a document's first and last lines: title, date, speaker, occasion, place.

    parse_header(lines, title_hint="", filename="") -> Header(title, date, speaker, occasion, place, consumed)
    parse_trailer(lines) -> Trailer(date, speaker, occasion, issuer, consumed)

Speeches open with a few lines of metadata before the text, and letters, summaries and bulletins
close with a signature; ``consumed`` says how many lines they are, so corpus.py keeps them out of
the passages. Header lines are read in order and each must be one of these, else the header
ends (a salutation such as ``同志们：`` or ``各位代表：`` always ends it and is not consumed):

==============  =========================================================================
line            examples
==============  =========================================================================
title           ``政府工作报告``; a second line joins it: ``上的讲话`` (or ``告`` of a cut
                ``政府工作报``) directly, a subtitle ``——在全市经济工作会议上的讲话`` with ``——``
date line       ``（2017年2月11日）``, ``二〇一七年二月十一日``, ``2019年6月12日``
meta line       a date, an occasion and a person in any order and punctuation:
                ``——2017年2月11日在XX区第X届人民代表大会第X次会议上``,
                ``2025年1月19日在江苏省…会议上省长许昆林作政府工作报告。``,
                ``——2025年1月14日自治区人民政府主席王莉霞在…会议上的讲话``,
                ``----2025年1月15日龚正市长在上海市…会议的政府工作报告``
speaker line    ``XX区人民政府区长　　张三``, ``代省长 罗东川``, ``国务院总理`` then ``李强``,
                ``…市长 张三同志作政府工作报告``, ``致辞：饶毅（教师代表）``, a 2-4 character
                name alone under the title (``张 三``), checked against common surnames
web metadata    ``2019-03-05 08:12 来源：人民网``, ``发布时间：2011-04-11 发布人：史林``,
                ``来源：南方日报``, ``发表于`` / ``2016-07-07``, ``访问量：199``
issuer          ``宜春市统计局 国家统计局宜春调查队`` (an institution under the title)
editor's note   ``【导读】…``, ``编者按：…`` (a speaker named in it: ``任正非…在动员会上…``)
caption         ``2011年7月13日-16日，由…主办的“2011·东北亚煤炭交易会”在大连举行。图为…``
==============  =========================================================================

The title itself may name the speaker and occasion: ``张三同志在全县农村工作会议上的讲话``,
``仙桃市委书记刘强在…上的讲话``, ``国家发展改革委投资司韩志峰处长的讲话``. Dates are ISO
(``speechrag.dates``); a speech's own date wins over a web page's publication date. ``occasion``
is the ``在…上`` phrase as written (``在全县农村工作会议上``), as ``Speech.occasion`` documents.

A trailer (`parse_trailer`) is what closes a document below its last paragraph: a date line
(``2019.1.2``, ``（2023年4月12日）``), a signature (``张晓旭``, ``By yinguoqing``,
``汪廣平 校長 (中)``), an issuer in brackets (``（万载县统计局）``), signers whose names are
images (``党委书记:``), and an editor's closing note (``（这是邓小平同志在…上的讲话。）``).

``place`` is the place the office, occasion, title or issuer lines give the speech, a real
administrative division as written (``商丘市``, ``河南省``), or "" for a national speech: the
rules are `speechrag.places.header_place`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speechrag.boilerplate import matching_rule
from speechrag.dates import DATE, parse_date
from speechrag.people import labelled_speaker, people_in, person_name
from speechrag.places import foreign_place
from speechrag.text import HAN, SALUTATION, heading_level, normalise

log = logging.getLogger(__name__)

MAX_HEADER_LINES = 12  # a header longer than this is body text that happened to look like one
MAX_TITLE_CHARS = 60
MAX_TRAILER_LINES = 5


@dataclass(frozen=True)
class Header:
    """What a document's header says about the speech; ``consumed`` leading lines are header."""

    title: str
    date: str = ""
    speaker: str = ""
    occasion: str = ""
    place: str = ""
    consumed: int = 0
    # An editor's note among the header lines (导读, 编者按): not the speech's words, but often
    # the only place a fact is stated (what an award's prize was), so it becomes a passage after
    # the body under its own label: ((导读, text), …). A photo caption is only metadata.
    notes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Trailer:
    """What the lines closing a speech say; ``consumed`` trailing lines are not its text."""

    date: str = ""
    speaker: str = ""
    occasion: str = ""
    issuer: str = ""
    consumed: int = 0


# --- line patterns ----------------------------------------------------------------------

_DASH = "—–－-─"
_MEETING = re.compile(r"会|典礼|仪式|论坛|活动|班|庆典|开幕|闭幕|启动|报告会|座谈")
# 在 + the meeting + 上, greedy so 在全市上半年经济形势分析会上 keeps its inner 上.
_OCCASION = re.compile(r"在(?P<occ>[^，。；！？]{2,60})上")
# …在上海市第十六届人民代表大会第三次会议的政府工作报告: the 上 left out before 的.
_OCCASION_NO_SHANG = re.compile(
    r"在(?P<occ>[^，。；！？在]{2,60}?(?:会议|大会|年会|全会|会))(?=的)")
_KIND = re.compile(r"(?:的|上的)?[^，。；]{0,10}?(?:讲话|报告|致辞|发言|演讲|总结)。?$")
# A date, then only more of a date: （一九七五年九月二十七日、十月四日）, 2011年7月13日-16日.
DATE_LINE = re.compile(rf"^[（(【\[]?\s*(?:{DATE})[\d〇零○一二三四五六七八九十年月日号、，,至到—－\-~～\s]*[）)】\]]?$")
_DATE_START = re.compile(rf"^[（(]?\s*(?P<date>{DATE})")
_WEB_KEYS = (
    "来源|信息来源|文章来源|稿件来源|作者|记者|通讯员|编辑|责任编辑|审核|发布人|发布者|发布机构|发文机关|发文日期|"
    "成文日期|发布时间|发布日期|更新时间|日期|时间|索\\s*引\\s*号|主题分类|访问量|浏览次数|浏览|点击数|点击|阅读|"
    "字号|分类于|发表于|标签|文号"
)
_WEB_FIELD = re.compile(rf"(?:{_WEB_KEYS})\s*[:：]?")
# 2019-03-05 08:12 来源：人民网 / 发布时间：2011-04-11 发布人：史林 / 2011年09月26来源：
_NEWS_LINE = re.compile(
    rf"^(?:(?:{_WEB_KEYS})\s*[:：]?\s*)?(?P<date>{DATE})(?:\s*\d{{1,2}}[:：]\d{{2}}(?:[:：]\d{{2}})?)?"
    rf"(?:\s*(?:{_WEB_KEYS})\s*[:：]\s*\S{{0,30}})*\s*$"
)
# 来源：南方日报, 来源 : 南方日报, 发表于 (its value on the next line), 访问量：199
_KEY_VALUE = re.compile(rf"^(?P<key>{_WEB_KEYS})\s*[:：]?\s*(?P<value>\S.{{0,40}})?$")
_OFFICE_ONLY = re.compile(
    r"^[^，。！？；：]{0,30}?(?:总理|主席|省长|市长|区长|县长|书记|主任|部长|委员长|校长|院长|会长)$")
# …市长 王五同志作政府工作报告 / 李四代表市人民政府作报告: a speaker line however the name sits
_REPORTS = re.compile(r"^(?P<before>[^，。]{2,40}?)同?志?(?:作|代表.{1,12}作).{0,12}报告。?$")
# Lines of a document's preamble that say nothing about the speech but are not its text either:
# 附件2, （此件公开发布）, （根据录音整理）, 内部资料 注意保存. Consumed wherever they sit in the header.
_PREAMBLE = re.compile(
    r"^[（(【\[]?\s*(?:附件\s*\d{0,2}|此件公开发布|此件不公开|内部资料[，,、\s]*(?:注意保存)?|注意保存|根据录音整理|"
    r"(?:讲话|发言|整理|修改|送审|征求意见)稿|摘要|全文|节选|有删节)\s*[）)】\]]?$"
)
_DRAFT = re.compile(r"^(?:讲话|发言|演讲)稿$")
_BYLINE = re.compile(rf"^[{HAN}](?:\s?[{HAN}]){{1,3}}$")
_SPEECH_WORD = re.compile(r"(讲话|报告|致辞|发言|演讲|讲稿|总结|祝词|贺词|公报)$")
_SENTENCE_END = "。！？；!?;…"
# An editor's note before the speech: 【导读】, 【导 读】, 编者按：, 内容提要.
EDITOR_NOTE = re.compile(
    r"^[【\[]?\s*(?:导\s*读|编\s*者\s*按|编者的话|核心提示|内容提要|阅读提示|提\s*要)\s*[】\]]?\s*[:：]?"
)
# A note's speaker: a name, then (in the same sentence) 在…会上 and a verb of speaking.
_NOTE_SPEAKER = re.compile(
    rf"(?P<name>[{HAN}]{{2,4}})[^。！？]{{0,30}}?在[^。！？，]{{0,20}}(?:会|典礼|论坛)上[^。！？]{{0,4}}"
    r"(?:讲话|发言|致辞|指出|强调|表示|说|放出|提出)"
)
# A photo caption or lead under a news title: dated, and it names the event in quotes.
_EVENT = re.compile(r"“(?P<event>[^”]{2,30}(?:会|论坛|典礼|仪式|峰会|年会|博览会|交易会|大会))”")
# Issuing institutions: 宜春市统计局, 国家统计局宜春调查队, XX市人民政府办公室.
_ISSUER = re.compile(
    rf"^[{HAN}·\s]{{2,40}}(?:局|委员会|委|办公室|办公厅|人民政府|政府|调查队|中心|协会|联合会|学会|研究会|研究院|"
    r"研究所|学院|大学|学校|集团|公司|党委|党组|支部|工会|团委|编辑部|宣传部|组织部)$"
)
_GREETING = re.compile(r"^(?:大家|各位|尊敬的|亲爱的|敬爱的|老师们|同学们|朋友们|女士们|同志们|我们|我是)")
_ENUMERATED = re.compile(r"^(?:[一二三四五六七八九十]+|\d+)[.．、]")
# 党委书记: / 院 长: a signer whose name is an image, or left blank
_SIGNER = re.compile(rf"^[{HAN}\s]{{1,12}}(?:书记|长|主任|主席|经理)\s*[:：]$")
_END_MARK = re.compile(r"^[（(【\[]?\s*(?:完|全文完|本文完|END|end)\s*[）)】\]]?$")
# （这是邓小平同志在…上的讲话。…）: an editor's closing note
_CLOSING_NOTE = re.compile(r"^[（(](?:这是|此文是|本文是|本文系|此文系|这篇是)(?P<note>.{4,200})[）)]$")
# 在…上的讲话 in an editor's note names the occasion, meeting word or not (…团以上干部上的讲话)
_NOTE_OCCASION = re.compile(r"在(?P<occ>[^，。；！？在]{2,60})上的(?:讲话|发言|谈话|报告|致辞|祝词|插话|答问)")
_CAPTION_NAME = re.compile(r"^(?P<line>[^，。]{2,20}?)\s*[（(][左中右前后一二三四五][）)]$")


def _is_title(line: str) -> bool:
    return (
        len(line) <= MAX_TITLE_CHARS
        and line[-1] not in _SENTENCE_END
        and "。" not in line
        and not heading_level(line)
        and not _ENUMERATED.match(line)
        and not SALUTATION.match(line)
        and not _GREETING.match(line)
    )


def occasion_of(text: str) -> str:
    """The ``在…上`` phrase of ``text`` naming a meeting (``在全县教育工作会议上``), or ""."""
    for m in _OCCASION.finditer(text):
        if _MEETING.search(m.group("occ")):
            return f"在{m.group('occ')}上"
    bare = _OCCASION_NO_SHANG.search(text)
    return f"在{bare.group('occ')}上" if bare else ""


# --- places -------------------------------------------------------------------------------


def find_place(texts: Sequence[str]) -> str:
    """The place the first of ``texts`` (office, occasion, title) gives the speech, as written
    (河南省商丘市 -> 商丘市); "" for none or a national speech. See `speechrag.places`."""
    from speechrag.places import header_place

    return header_place(texts)


# --- the header ---------------------------------------------------------------------------


@dataclass
class _State:
    title: list[str] = field(default_factory=list)
    date: str = ""
    published: str = ""
    speaker: str = ""
    office: str = ""
    occasion: str = ""
    issuer: str = ""
    caption: str = ""
    notes: list[tuple[str, str]] = field(default_factory=list)
    note_speaker: str = ""
    meta_seen: bool = False  # a non-title header line has been read: no more title lines
    pending_key: str = ""  # a web field whose value is on the next line (发表于 / 2016-07-07)
    pending_office: bool = False  # an office alone on its line (国务院总理): the name follows


def _take_person(line: str, state: _State) -> bool:
    """The speaker of a meta line (the last person it names next to an office)."""
    people = people_in(line)
    if not people:
        return False
    name, office = people[-1]
    state.speaker = state.speaker or name
    state.office = state.office or office
    return True


def _meta_line(line: str, state: _State) -> bool:
    """A line of date, occasion and person (see the module docstring), read into ``state``."""
    stripped = line.lstrip(_DASH + " ").strip()
    dashed = stripped != line
    if len(stripped) > 120 or "，" in stripped or "；" in stripped:
        return False
    m = _DATE_START.match(stripped)
    occasion = occasion_of(stripped)
    rest = stripped[m.end() :].lstrip("日号）) ") if m else stripped
    if m and not rest:
        return False  # a date alone: DATE_LINE's
    people = people_in(stripped)
    if stripped.endswith("。") and not _KIND.search(stripped):
        return False  # a sentence of the body that starts with a date
    if not (m or dashed or stripped.startswith("在")):
        return False
    if not m and not people:
        # 在…上的讲话 without a date or a person is a title (or the subtitle under a main title)
        if occasion and not state.meta_seen and len(state.title) < 2 and _KIND.search(stripped):
            state.title.append(stripped)
            return True
        if not (dashed and occasion):
            return False
    elif m and not (occasion or people or rest.startswith("在")):
        return False
    if m:
        state.date = state.date or parse_date(m.group("date"))
    state.occasion = state.occasion or occasion
    _take_person(stripped, state)
    state.meta_seen = True
    return True


def _web_line(line: str, state: _State) -> bool:
    m = _NEWS_LINE.match(line)
    if m:
        state.published = state.published or parse_date(m.group("date"))
        state.meta_seen = True
        state.pending_key = ""
        return True
    kv = _KEY_VALUE.match(line)
    if kv and (kv.group("value") is None or not kv.group("value").endswith(tuple(_SENTENCE_END))):
        state.meta_seen = True
        state.pending_key = "" if kv.group("value") else kv.group("key")
        return True
    if state.pending_key and len(line) <= 30 and line[-1] not in _SENTENCE_END:
        if parse_date(line):
            state.published = state.published or parse_date(line)
        state.pending_key = ""
        return True
    return False


def _speaker_line(line: str, state: _State) -> bool:
    labelled = labelled_speaker(line)
    if labelled:
        state.speaker = state.speaker or labelled
        state.meta_seen = True
        return True
    m = _REPORTS.match(line)
    if m:
        before = m.group("before").removesuffix("同志")
        people = people_in(before)
        name = people[-1][0] if people else next(
            (person_name(before[-n:]) for n in (3, 2, 4) if person_name(before[-n:])), "")
        if name:
            state.speaker = state.speaker or name
            state.office = state.office or (people[-1][1] if people else "")
            state.meta_seen = True
            return True
    people = people_in(line)
    if people and not any(c in line for c in "，。；！？") and re.sub(r"\s", "", line).endswith(people[-1][0]):
        name, office = people[-1]
        state.speaker = state.speaker or name
        state.office = state.office or office
        state.meta_seen = True
        return True
    if _OFFICE_ONLY.match(line) and (state.title or state.meta_seen):
        state.office = state.office or line
        state.pending_office = True
        state.meta_seen = True
        return True
    if (state.title or state.pending_office) and _BYLINE.match(line) and person_name(line) and not state.speaker:
        state.speaker = person_name(line)
        state.meta_seen = True
        state.pending_office = False
        return True
    return False


def _read_line(line: str, state: _State) -> bool:
    """Take one header line into ``state``; False when the line is not header (the body begins)."""
    if _PREAMBLE.match(line):
        if not state.title and not state.meta_seen and _DRAFT.match(line):
            state.title.append(line)  # 发言稿 alone at the top: the only title it has
        return True
    note = EDITOR_NOTE.match(line)
    if note and (state.title or state.meta_seen):
        label = re.sub(r"[\s【】\[\]:：]", "", note.group(0))
        if line[note.end() :].strip():
            state.notes.append((label, line[note.end() :].strip()))
        m = _NOTE_SPEAKER.search(line)
        if m:
            for length in (3, 2, 4):
                if person_name(m.group("name")[:length]):
                    state.note_speaker = state.note_speaker or person_name(m.group("name")[:length])
                    break
        state.meta_seen = True
        return True
    stripped = line.lstrip(_DASH + " ").strip()
    if DATE_LINE.match(stripped):
        date = parse_date(stripped)
        if state.pending_key:
            state.published = state.published or date
            state.pending_key = ""
        else:
            state.date = state.date or date
        state.meta_seen = True
        return True
    if _meta_line(line, state):
        return True
    if stripped != line and state.title and _is_title(stripped) and not state.meta_seen:
        state.title.append(stripped)  # ——凝心聚力 再创佳绩
        return True
    if _web_line(line, state):
        return True
    if _caption(line, state):
        return True
    if _speaker_line(line, state):
        return True
    if state.title and _ISSUER.match(line) and len(line) <= 40:
        state.issuer = state.issuer or line
        state.meta_seen = True
        return True
    if not _is_title(line):
        return False
    if state.title and _repeats_title(line, state.title):
        return True  # the newspaper's own title under the compiler's: 政府工作报告
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


def _caption(line: str, state: _State) -> bool:
    """A dated photo caption or lead naming the event: its occasion (and issuer, for the place)."""
    m = _DATE_START.match(line)
    event = _EVENT.search(line)
    if not (m and state.title and ("图为" in line or (event and re.search(r"举行|召开|开幕|举办", line)))):
        return False
    state.published = state.published or parse_date(m.group("date"))
    if event and not state.occasion:
        state.occasion = f"在{event.group('event')}上"
    state.caption = line
    state.meta_seen = True
    return True


def _repeats_title(line: str, title: Sequence[str]) -> bool:
    joined = "".join(title)
    return len(line) >= 4 and line in joined and _SPEECH_WORD.search(line) is not None


def _second_title_line(first: str, line: str) -> bool:
    """A title's second line: the rest of a cut title (…会议 / 上的讲话, 政府工作报 / 告) or a subtitle."""
    if len(line) <= 3 and _SPEECH_WORD.search(first + line) and not _SPEECH_WORD.search(first):
        return True
    if line.startswith(("上的", "的", "上")) and _SPEECH_WORD.search(line):
        return True
    return bool(_SPEECH_WORD.search(line) and not _SPEECH_WORD.search(first) and line.startswith("在"))


def _join_title(parts: Sequence[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    first, second = parts[0], parts[1]
    if second.startswith(("上的", "的", "上")) or len(second) <= 3:
        return first + second
    return f"{first}——{second}"


def _speaker_from_title(title: str, state: _State) -> None:
    """张三同志在…上的讲话 / 仙桃市委书记刘强在…上的讲话 / 国家发展改革委投资司韩志峰处长的讲话."""
    if not (_OCCASION.search(title) or _SPEECH_WORD.search(title)):
        return
    m = re.match(rf"^(?P<name>[{HAN}]{{2,4}}?)同志(?:在|出席|的)", title)
    if m and person_name(m.group("name")):
        state.speaker = state.speaker or person_name(m.group("name"))
        return
    people = people_in(title)
    if people:
        state.speaker = state.speaker or people[0][0]
        state.office = state.office or people[0][1]
        return
    m = re.match(rf"^(?P<name>[{HAN}]{{2,4}}?)在[^，。]{{2,60}}上", title)
    if m and person_name(m.group("name")):
        state.speaker = state.speaker or person_name(m.group("name"))


def parse_header(lines: Sequence[str], *, title_hint: str = "", filename: str = "") -> Header:
    """Read the metadata lines at the top of a speech (see the module docstring)."""
    state = _State()
    consumed = 0
    for number, raw in enumerate(lines[:MAX_HEADER_LINES], start=1):
        line = normalise(raw)
        if not line or matching_rule(line):
            continue  # site chrome between header lines (corpus.py drops it too)
        if SALUTATION.match(line) or not _read_line(line, state):
            break
        consumed = number
    title_parts = [p for p in state.title if p]
    title = _join_title(title_parts) if title_parts else ""
    if title_parts:
        _speaker_from_title(title_parts[0], state)
        state.occasion = state.occasion or occasion_of(title)
    elif title_hint:
        _speaker_from_title(normalise(title_hint), state)
        state.occasion = state.occasion or occasion_of(normalise(title_hint))
    title = title or normalise(title_hint) or Path(filename).stem
    place_texts = [t for t in (state.office, state.occasion, state.issuer, title, state.caption) if t]
    return Header(
        title=title,
        date=state.date or state.published,
        speaker=state.speaker or state.note_speaker,
        occasion=state.occasion,
        place=find_place(place_texts) or foreign_place(state.occasion),
        consumed=consumed,
        notes=tuple(state.notes),
    )


# --- the trailer ----------------------------------------------------------------------------


def parse_trailer(lines: Sequence[str]) -> Trailer:
    """Read the signature lines closing a speech (see the module docstring), last line first."""
    date = speaker = occasion = issuer = ""
    consumed = 0
    for raw in reversed(lines[-MAX_TRAILER_LINES:]):
        line = normalise(raw)
        if not line:
            consumed += 1
            continue
        bare = line.strip("（()）【】[] ")
        note = _CLOSING_NOTE.match(line)
        if DATE_LINE.match(line) and parse_date(line):
            date = date or parse_date(line)
        elif note:
            said = _NOTE_OCCASION.search(note.group("note"))
            occasion = occasion or (f"在{said.group('occ')}上" if said else occasion_of(note.group("note")))
            m = re.search(rf"(?P<name>[{HAN}]{{2,4}}?)同志", note.group("note"))
            if m and person_name(m.group("name")):
                speaker = speaker or person_name(m.group("name"))
        elif labelled_speaker(line):
            speaker = speaker or labelled_speaker(line)
        elif _BYLINE.match(line) and person_name(line):
            speaker = speaker or person_name(line)
        elif _SIGNER.match(line) or _END_MARK.match(line):
            pass
        elif (m := _CAPTION_NAME.match(line)) and people_in(m.group("line")):
            speaker = speaker or people_in(m.group("line"))[0][0]
        elif _ISSUER.match(bare) and (bare != line or len(bare) <= 30):
            issuer = issuer or bare
        else:
            break
        consumed += 1
    return Trailer(date, speaker, occasion, issuer, consumed)
