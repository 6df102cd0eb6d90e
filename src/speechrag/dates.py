"""Dates as speeches write them: ``2017年2月11日``, ``二〇一七年二月十一日``, ``（２０１９年７月１５日）``,
``2019.1.2``, ``2017/12/12``, ``2019-03-05 08:12``; and the date a file name gives.

Dates are ISO strings of the precision the text gives: ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``.
A year outside 1900-2100 is no speech's year (``1066年10月14日``, a figure's ``5000年``).
"""

from __future__ import annotations

import re
from datetime import date as _date

_CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
FIRST_YEAR, LAST_YEAR = 1900, 2100

YEAR = r"(?:\d{4}|[〇零○Ｏ一二三四五六七八九]{4})"
_MD = r"(?:\d{1,2}|[一二三四五六七八九十]{1,3})"
# A date as a line or sentence writes it (used inside the header patterns).
DATE = rf"(?:{YEAR}\s*年(?:\s*{_MD}\s*月(?:\s*{_MD}\s*[日号]?)?)?|\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}})"
_DATE_PARTS = re.compile(
    rf"(?P<y>{YEAR})\s*年(?:\s*(?P<m>{_MD})\s*月(?:\s*(?P<d>{_MD})\s*(?:[日号]|(?![\d一二三四五六七八九十])))?)?"
    r"|(?<!\d)(?P<iy>\d{4})[-/.](?P<im>\d{1,2})[-/.](?P<id>\d{1,2})(?!\d)"
)


def cn_number(text: str) -> int:
    """Arabic or Chinese numerals up to 99: 9, 十 10, 十一 11, 二十 20, 三十一 31; 二〇一七 2017."""
    if text.isdigit():
        return int(text.translate(FULLWIDTH_DIGITS))
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    value = 0
    for ch in text:
        value = value * 10 + _CN_DIGITS[ch]
    return value


def _iso(y: int, mo: int, d: int) -> str:
    if not FIRST_YEAR <= y <= LAST_YEAR:
        return ""
    if d:
        try:
            return _date(y, mo, d).isoformat()
        except ValueError:
            return ""
    if mo:
        return f"{y:04d}-{mo:02d}" if 1 <= mo <= 12 else ""
    return f"{y:04d}"


def parse_date(text: str) -> str:
    """The first valid date in ``text`` as ISO ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``; else "".

    A day without 日 counts only where no digit follows (``2011年09月26来源：`` is the 26th)."""
    for m in _DATE_PARTS.finditer(text.translate(FULLWIDTH_DIGITS)):
        try:
            if m.group("iy"):
                iso = _iso(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
            else:
                y = cn_number(m.group("y"))
                mo = cn_number(m.group("m")) if m.group("m") else 0
                d = cn_number(m.group("d")) if m.group("d") else 0
                iso = _iso(y, mo, d)
        except KeyError:
            continue
        if iso:
            return iso
    return ""


def year_of(iso: str) -> int | None:
    """The year of an ISO date ("" gives None)."""
    return int(iso[:4]) if iso[:4].isdigit() else None


# A date in a file name: 20130114, 2013-01-14, 2013_01_14, 2013年1月14日, or a year alone
# (2019年政府工作报告, report_2019), never inside a longer number (a phone number, 201901141234).
_NAME_DATE = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d\d)(?:[-_.]?(?P<m>0[1-9]|1[0-2])[-_.]?(?P<d>0[1-9]|[12]\d|3[01]))?(?!\d)"
)


def date_in_filename(name: str) -> str:
    """The date a file's name gives (``huawei_ren_20130114_award.pdf`` -> ``2013-01-14``,
    ``2019年政府工作报告.txt`` -> ``2019``), or "". Only the stem is read."""
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name.rsplit("/", 1)[-1])
    written = parse_date(stem)
    if written:
        return written
    for m in _NAME_DATE.finditer(stem):
        iso = _iso(int(m.group("y")), int(m.group("m") or 0), int(m.group("d") or 0))
        if iso:
            return iso
    return ""


# Years counted from the speech's own: they resolve against its date.
RELATIVE_YEARS = {"今年": 0, "本年": 0, "当年": 0, "去年": -1, "上年": -1, "上一年": -1, "过去一年": -1,
                  "前年": -2, "明年": 1, "下一年": 1, "来年": 1, "后年": 2}  # fmt: skip
_YEAR_IN_TEXT = re.compile(r"(?<![\d０-９])((?:19|20)\d\d|[〇零○一二三四五六七八九]{4})\s*年(?!代|度以|以来|前|后)")


def years_named(text: str) -> list[int]:
    """Every year ``text`` names with 年 (``2013年``, ``二〇一三年``), in order, each once."""
    out: list[int] = []
    for m in _YEAR_IN_TEXT.finditer(text.translate(FULLWIDTH_DIGITS)):
        try:
            y = cn_number(m.group(1))
        except KeyError:
            continue
        if FIRST_YEAR <= y <= LAST_YEAR and y not in out:
            out.append(y)
    return out


_RELATIVE = re.compile("|".join(sorted(map(re.escape, RELATIVE_YEARS), key=len, reverse=True)))
# Several years at once: 过去五年, 五年来, “十三五”时期, 1996年至2000年 speak about no one year.
_SPAN = re.compile(r"过去[二两三四五六七八九十\d]+年|[二两三四五六七八九十\d]+年来|五年|时期|以来")
_OPENING = re.compile(rf"^(?:{YEAR}\s*年|{'|'.join(map(re.escape, RELATIVE_YEARS))})(?![代度])")


def about_year(section: str, text: str, speech_year: int | None, base_year: int | None = None) -> int:
    """The year a passage speaks about (0 when it is several or unknown).

    The innermost heading that names one year decides (``一、2013年工作回顾``; ``去年工作回顾``
    of a 2014 report is 2013). Then the paragraph's own opening (``2013年，…``, ``去年，…``); else
    ``base_year``, the year the document is about (its title's: a 2022 bulletin published in
    2023 speaks about 2022), or the speech's year; 0 under a heading spanning years
    (``过去五年工作回顾``). Relative years (去年) count from the speech's year."""
    spanning = False
    for heading in reversed(section.split(" › ")) if section else ():
        if _SPAN.search(heading):
            spanning = True
            break
        named = years_named(heading)
        if len(named) == 1:
            return named[0]
        rel = _RELATIVE.search(heading)
        if rel and speech_year:
            return speech_year + RELATIVE_YEARS[rel.group(0)]
    m = _OPENING.match(text.translate(FULLWIDTH_DIGITS))
    if m:
        named = years_named(m.group(0))
        if named:
            return named[0]
        if speech_year:
            return speech_year + RELATIVE_YEARS[m.group(0)]
    return 0 if spanning else base_year or speech_year or 0
