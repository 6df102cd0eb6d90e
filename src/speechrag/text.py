"""Shared text rules: character classes, normalisation, sentences and heading enumerators.

Ingestion, answering and the UI all cut text into sentences, recognise numbered headings and
clean a line the same way; each rule lives here once so a passage and a query (or a heading
and the example question made from it) can never be treated by two different versions of it.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from functools import cache

# --- character classes -------------------------------------------------------------------

# Ideographs (CJK Unified + Extension A): what "has Chinese" means for a query or a token.
HAN = r"\u3400-\u4dbf\u4e00-\u9fff"
# Everything laid out on the CJK grid: ideographs, CJK punctuation, kana, full-width forms.
CJK_WIDE = r"\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
CJK_QUOTES = "\u201c\u201d\u2018\u2019"
# Characters that may close a sentence after its final punctuation (quotes, brackets).
CLOSERS = "”’」』）)】》〕\"'"
NUMERALS = "一二三四五六七八九十百零〇"

_HAN = re.compile(f"[{HAN}]")
_CONTENT = re.compile(f"[0-9A-Za-z{HAN}]")
_CJK_SPACE = re.compile(f"(?<=[{CJK_WIDE}{CJK_QUOTES}])[ \t]+(?=[{CJK_WIDE}{CJK_QUOTES}])")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Kangxi radicals and CJK radical supplements (U+2E80-U+2FDF) stand in for ordinary ideographs
# in PDFs exported by some Word/WPS versions (⽣ for 生): no query would match them.
_RADICALS = re.compile("[\u2e80-\u2fdf]")

# A line that only greets the audience: 同志们：, 各位代表：, 同志们、朋友们！
SALUTATION = re.compile(
    r"^([^，。！？]{0,24}[、，,])?(?:亲爱的|尊敬的|敬爱的)?"
    r"(同志们|各位[^，。！？：:]{0,12}|女士们[、，,]?先生们|朋友们|同学们|老师们|同事们|来宾们|大家好)[：:！!，,]?$"
)


def has_han(text: str) -> bool:
    """True if ``text`` holds a Chinese character."""
    return _HAN.search(text) is not None


_LATIN = re.compile(r"[A-Za-z]")


def has_latin(text: str) -> bool:
    """True if ``text`` holds an ASCII letter (a pinyin place name needs one)."""
    return _LATIN.search(text) is not None


def has_content(text: str) -> bool:
    """True if ``text`` holds a letter, a digit or a Chinese character (not only punctuation)."""
    return _CONTENT.search(text) is not None


def is_broken_text(text: str) -> bool:
    """True if ``text`` holds unpaired surrogates: it cannot be encoded as UTF-8, so the encoder
    and every JSON layer would fail on it."""
    return _SURROGATE.search(text) is not None


# Full-width digits, Latin letters and ％ as their ASCII forms (７.５％ is 7.5%), so a figure is
# recognised, tokenised and matched in one form. Full-width Chinese punctuation （）：，；？！ stays:
# sentences, headings and headers are cut at it.
_HALF_WIDTH = str.maketrans(
    {**{chr(0xFF10 + i): chr(0x30 + i) for i in range(10)},
     **{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
     **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)},
     "％": "%"}
)
_WIDE_POINT = re.compile(r"(?<=\d)．(?=\d)")  # ７．５ (a full-width full stop between digits)
# Measure words a figure is written with (四十处, 3个, 二百公里): see also `answering.details`.
MEASURES = "个项年倍位家户人元省次例成处场所座里亩吨张台辆名篇届条件套本部期批类份种天月周岁小时斤"
# A space between a number and its unit or per cent sign (PDF text: 3 ％, 2019 年, 1500 万元),
# an approximate one's too (40 多年, 10 余个).
_FIGURE_SPACE = re.compile(rf"(?<=\d) +(?=[多余]?[%‰万亿千百{MEASURES}日号])")


def normalise(line: str) -> str:
    """NFC, control/format characters removed, spaces collapsed, stray CJK spaces removed;
    full-width digits, letters and ％ in their ASCII form, and no space inside a figure.

    Applied to every corpus line and every query, so both are compared in the same form; Kangxi
    radicals become the ideographs they stand for.
    """
    if _RADICALS.search(line):
        line = _RADICALS.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), line)
    line = unicodedata.normalize("NFC", line)
    line = "".join(
        " " if ch == "\t" else ch
        for ch in line
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co") or ch == "\t"
    )
    line = _SPACES.sub(" ", line).strip()
    line = _CJK_SPACE.sub("", line)  # before the digits are half-width: 增长 ３％ was 增长３％
    line = _WIDE_POINT.sub(".", line.translate(_HALF_WIDTH))
    return _FIGURE_SPACE.sub("", line)


_ADMIN_SUFFIX = re.compile("(特别行政区|自治区|自治州|自治县|自治旗|省|市|区|县|州|盟|旗|镇|乡)$")


def place_key(place: str) -> str:
    """A place without its administrative suffix, so 商丘 and 商丘市 name the same place in a
    filter (a header gives 商丘市, a speech's text may only say 商丘)."""
    stem = _ADMIN_SUFFIX.sub("", place.strip())
    return stem if len(stem) >= 2 else place.strip()


_SUFFIXES = ("市", "区", "县", "省", "州", "盟", "旗", "镇", "乡", "自治区", "自治州", "自治县", "自治旗", "特别行政区")


def place_variants(place: str) -> frozenset[str]:
    """The forms a place can be stored in that `place_key` treats as the same place (商丘 ->
    商丘, 商丘市, 商丘县, …): for engines that can only test equality (Milvus filters)."""
    key = place_key(place)
    return frozenset({place.strip(), key, *(key + s for s in _SUFFIXES)})


def display_width(text: str) -> int:
    """Terminal columns: wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# --- sentences ---------------------------------------------------------------------------

# Paragraph ends: a colon counts, since a line ending in one introduces the next paragraph.
_PARAGRAPH_END = "。！？!?；;…：:."
# Sentence stops never include "：" (it introduces) or "." (it may be a decimal point).
_STOPS = "。！？!?…"
_STOPS_AND_SEMICOLONS = _STOPS + "；;"


def _sentence_pattern(stops: str) -> re.Pattern[str]:
    s, c = re.escape(stops), re.escape(CLOSERS)
    return re.compile(f"[^{s}]*[{s}]+[{c}]*|[^{s}]+")


_SENTENCE = _sentence_pattern(_STOPS)
_CLAUSE = _sentence_pattern(_STOPS_AND_SEMICOLONS)


def ends_sentence(text: str) -> bool:
    """True if ``text`` ends like a finished paragraph (final punctuation before any closers)."""
    stripped = text.rstrip(CLOSERS)
    return bool(stripped) and stripped[-1] in _PARAGRAPH_END


def sentence_spans(text: str, *, at_semicolons: bool = False, min_chars: int = 1) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``, whitespace trimmed, closing quotes kept.

    Answers quote whole sentences and do not cut at ；: these speeches chain enumerations
    (第一…；第二…；第三…) with it, and a clause alone loses the list. Ingestion packs long
    paragraphs into parts and may cut there (``at_semicolons``).
    """
    spans = []
    for m in (_CLAUSE if at_semicolons else _SENTENCE).finditer(text):
        a, b = m.span()
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b - a >= min_chars:
            spans.append((a, b))
    return spans


def split_sentences(text: str, *, at_semicolons: bool = True) -> list[str]:
    """The sentences of ``text`` as strings (see `sentence_spans`)."""
    return [text[a:b] for a, b in sentence_spans(text, at_semicolons=at_semicolons)]


# --- heading enumerators -----------------------------------------------------------------

# (pattern, level): level 1 is a main section, 2 a subsection, 3 a point.
ENUMERATORS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(f"^[{NUMERALS}]+、"), 1),
    (re.compile(f"^[{NUMERALS}]+个[{NUMERALS}]+[，,、]"), 1),  # 一个三，就是要…
    (re.compile(f"^第[{NUMERALS}]+(部分|章|节|篇)"), 1),
    (re.compile(f"^[（(][{NUMERALS}]+[）)]"), 2),
    (re.compile(f"^第[{NUMERALS}]+[，,、：:]"), 2),
    (re.compile(f"^[{NUMERALS}]+[是要][，,、：:]?"), 2),
    (re.compile(r"^[0-9]+[、.．]"), 3),
    (re.compile(r"^[（(][0-9]+[）)]"), 3),
)


def heading_level(text: str) -> int:
    """The enumerator level of a line that starts like a heading, else 0."""
    for pattern, level in ENUMERATORS:
        if pattern.match(text):
            return level
    return 0


def strip_enumerator(text: str) -> str:
    """``text`` without its leading enumerator (``一、``, ``（二）``, ``一个三，``, ``3.``)."""
    for pattern, _ in ENUMERATORS:
        m = pattern.match(text)
        if m:
            return text[m.end() :].lstrip("，,、：: ")
    return text


# --- figures -----------------------------------------------------------------------------

CN_DIGITS = "〇零一二三四五六七八九两"
CN_MULTIPLIERS = "十百千万亿"
# A number as written: Arabic (after `normalise`, ASCII digits; 1,344 with thousands commas) with
# a 万/亿 multiplier (1344亿), or Chinese numerals (一千三百四十四亿, 二〇一〇, 七点五); per cent
# either way (15%, 百分之十五, 3‰, 千分之三).
_ARABIC = r"\d+(?:,\d{3})*(?:\.\d+)?"
_CHINESE = rf"[{CN_DIGITS}{CN_MULTIPLIERS}]+(?:点[{CN_DIGITS}]+)?"
_NUMBER = re.compile(
    rf"(?P<pre>百分之|千分之)?(?:(?P<ar>{_ARABIC})(?P<mul>[万亿]*)|(?P<cn>{_CHINESE}))(?P<post>[%‰])?"
)
# Two figures joined into a range: 6%－6.5%, 6.5%-7%, 6%—6.5%, 6%至6.5%, 3~5万.
RANGE_JOINERS = "-－—–~～至到"
_MULTIPLES = {"万": 10**4, "亿": 10**8}


@cache
def _cn_value(numerals: str) -> Decimal | None:
    """Chinese numerals as a number (一千三百四十四亿, 二〇一〇, 七点五), or None when they are
    not one (万一, 十四五: words and names that happen to be written with numerals)."""
    import cn2an  # imported on first use: its import takes about half a second

    try:
        value = cn2an.cn2an(numerals, "normal")
    except (ValueError, KeyError, IndexError, TypeError):
        # 一万万 (a hundred million, as older texts and "{一万}万人" write it): cn2an refuses a
        # unit twice; the last 万 or 亿 multiplies what comes before it.
        if len(numerals) > 1 and numerals[-1] in "万亿":
            inner = _cn_value(numerals[:-1])
            return None if inner is None else inner * (10_000 if numerals[-1] == "万" else 100_000_000)
        return None
    return Decimal(str(value))


def _value(m: re.Match[str]) -> Decimal | None:
    if m["ar"] is not None:
        value = Decimal(m["ar"].replace(",", ""))
        for ch in m["mul"]:
            value *= _MULTIPLES[ch]
        return value
    return _cn_value(m["cn"])


def _canonical(m: re.Match[str]) -> str:
    """A number in one form whatever the script: 15%, 百分之十五 and 百分之15 -> ``15%``;
    1344亿 and 一千三百四十四亿 -> ``134400000000``; numerals that are no number stay as written."""
    value = _value(m)
    text = m["cn"] if value is None else format(value.normalize(), "f")
    per = m["post"] or {"百分之": "%", "千分之": "‰"}.get(m["pre"] or "", "")
    return text + per


def figure_values(text: str) -> tuple[str, ...]:
    """Every number written in ``text`` (digits or Chinese numerals, with its per cent sign or
    万/亿), each in one form (`_canonical`), sorted: two texts whose figures differ anywhere
    (2013 vs 2014, 7.5% vs 百分之八, 一年来 vs 五年来) have different values."""
    return tuple(sorted(_canonical(m) for m in _NUMBER.finditer(text)))


def written_figures(text: str) -> list[tuple[int, int]]:
    """Spans of the figures written in Chinese numerals that are amounts, not words: a per cent
    (百分之十五), a decimal (七点五), a number with a multiplier (一千三百四十四亿, 三十) or a
    year in digits (二〇一〇年). Lone numerals (一个, 三农), multipliers alone (千万, 百姓) and
    numerals that are no number (万一, 十四五) are not."""
    spans = []
    for m in _NUMBER.finditer(text):
        cn = m["cn"]
        if cn is None:
            continue
        strong = bool(m["pre"] or m["post"]) or "点" in cn or (
            len(cn) >= 2 and any(c in CN_MULTIPLIERS for c in cn) and any(c in CN_DIGITS for c in cn)
        ) or (len(cn) == 4 and text.startswith("年", m.end()) and not any(c in CN_MULTIPLIERS for c in cn))
        if strong and _cn_value(cn) is not None:
            spans.append(m.span())
    return spans


def has_figure(text: str) -> bool:
    """Whether ``text`` holds a figure: a digit, or an amount in Chinese numerals
    (`written_figures`)."""
    return any(ch.isdigit() for ch in text) or bool(written_figures(text))


# A line with none of these, and shorter than PROSE_CHARS, is a title, header or caption.
_PROSE_STOPS = "。！？!?；;…"
PROSE_CHARS = 40


def is_prose(text: str) -> bool:
    """Whether ``text`` reads as a sentence: it ends a clause somewhere, or is long enough to be
    a statement cut short. A title, a date line, a ``政府工作报告——…区长XXX`` header or a
    ``专栏：…`` caption is not, and is never quoted as an answer (nor are its sentences embedded
    at build time: `sentencevectors.quotable`)."""
    return any(ch in text for ch in _PROSE_STOPS) or len(text) >= PROSE_CHARS
