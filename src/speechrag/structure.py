"""One document's structure: where each speech starts, what is header, heading, salutation,
signature or body, and which lines are no text at all.

    speeches_of(doc, counts, filename=...) -> list[RawSpeech]

The rules, each counted (`Counts`) so ``speechrag corpus`` can show what it did:

1. header lines (title, date, occasion, speaker, source) become the speech's metadata
   (``header.py``), never passages; so do the signature lines that close it (``parse_trailer``);
2. classify each block: speech title, section heading, salutation, speaker label
   (``致辞：饶毅（教师代表）``), cue (``【视频播放】``, ``Page1 开始``) or body text;
3. rejoin paragraphs that a page break cut in two;
4. split a file into several speeches only where it clearly holds several: at a new title (a
   declared one, or a line its table of contents lists, or a title over a date line as in a
   collected-works volume), or at a fresh ``同志们：`` right after a speech closed
   (``…拜个年…！``). A salutation repeated inside a speech never splits it, and neither does a
   title repeated on every outline page of a slide deck.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from speechrag.boilerplate import matching_rule
from speechrag.formats import Block, Document
from speechrag.header import (
    DATE_LINE,
    MAX_HEADER_LINES,
    MAX_TRAILER_LINES,
    Header,
    Trailer,
    parse_header,
    parse_trailer,
)
from speechrag.people import labelled_speaker, person_name
from speechrag.text import SALUTATION, ends_sentence, has_content, heading_level, normalise

MAX_HEADING_CHARS = 40
# A heading without an enumerator: short, no punctuation, ending in a word that heads a part of a
# report or summary (2024年工作回顾, 主要工作, 工作感悟, 成就与不足). Its year is what the
# passages under it speak about (`dates.about_year`).
_TOPIC_HEADING = re.compile(
    r"^[^，。；：！？、,.;:!?()（）“”]{0,12}(?:回顾|安排|部署|任务|目标|工作|情况|总结|建议|措施|意见|体会|感悟|展望|"
    r"计划|成绩|成就|问题|不足|举措|思路|重点)$"
)
_SPEECH_WORDS = re.compile(r"讲话|致辞|发言|讲稿|演讲|报告|篇[一二三四五六七八九十]+$")
# Stage directions and slide cues in a presentation script: not the speech's words.
CUE = re.compile(
    r"^(?:[【\[（(][^】\]）)]{0,10}(?:播放|视频|展示|翻页|掌声|鼓掌|音乐|停顿|PPT|ppt|幻灯|切换|演示|demo)"
    r"[^】\]）)]{0,10}[】\]）)]|(?:Page|PAGE|page|P|第)\s*\d{1,3}\s*页?\s*(?:开始|结束)?)$"
)


@dataclass
class Counts:
    """What the structure rules removed or repaired, for the corpus report."""

    boilerplate: Counter[str] = field(default_factory=Counter)
    fragments: int = 0
    repaired: int = 0
    split: int = 0
    cues: int = 0
    signatures: int = 0
    front_matter: int = 0


@dataclass
class _Unit:
    kind: str  # "title" | "heading" | "salutation" | "speaker" | "body"
    text: str
    line: int
    level: int = 0
    after_gap: bool = False  # a blank line or dropped boilerplate line came before it
    header: Header | None = None  # a title's metadata, read from the lines under it
    indented: bool = False  # a text file's line set in: it begins a paragraph
    pages: tuple[tuple[int, int], ...] = ()  # Block.pages: (offset, page) where the text moves to a page


@dataclass
class RawSpeech:
    """One speech as the document lays it out, before it becomes passages."""

    heading: str
    line: int
    header: Header
    # (section, text, line, pages: Block.pages marks)
    paragraphs: list[tuple[str, str, int, tuple[tuple[int, int], ...]]] = field(default_factory=list)
    trailer: Trailer = field(default_factory=Trailer)
    labelled_speaker: str = ""  # a 致辞：NAME line inside the text


def _classify(block: Block, line: int, counts: Counts) -> _Unit | None:
    text = block.text
    rule = matching_rule(text)
    if rule is not None:
        counts.boilerplate[rule] += 1
        return None
    if not has_content(text):
        counts.fragments += 1  # a lone "；" or a rule line left by the scrape
        return None
    if CUE.match(text):
        counts.cues += 1
        return None
    level = heading_level(text)
    if block.kind != "paragraph":
        # A heading the container declares (``##``, a Heading style): its enumerator decides
        # the level; without one, a speech word makes it a speech title (``…讲话稿篇二``).
        if level:
            return _Unit("heading", text, line, level)
        if block.kind == "title" or _SPEECH_WORDS.search(text):
            return _Unit("title", text, line)
        return _Unit("heading", text, line, block.level or 1)
    if SALUTATION.match(text):
        return _Unit("salutation", text, line)
    if labelled_speaker(text) and not text.startswith(("By", "by", "BY")):
        return _Unit("speaker", labelled_speaker(text), line)
    if level and len(text) <= MAX_HEADING_CHARS and not ends_sentence(text) and "。" not in text \
            and not DATE_LINE.match(text):  # 2019.1.2 is a date, not section 2019
        return _Unit("heading", text, line, level)
    if _TOPIC_HEADING.match(text):
        return _Unit("heading", text, line, 1)
    return _Unit("body", text, line)


def _stands_alone(text: str) -> bool:
    """A line no paragraph runs on into: a date, a signature (张晓旭, By yinguoqing)."""
    return bool(DATE_LINE.match(text) or labelled_speaker(text) or person_name(text))


# --- collections: a table of contents, or titles over date lines -----------------------------

_TOC = re.compile(r"^目\s*录$")
_TOC_ENTRY = re.compile(r"^[·•●○◆\-—*\s]*(?P<title>[^…．.]{2,40}?)(?:[…．.\s]*\d{1,4})?$")
# Back matter a table of contents lists beside the pieces: never a speech.
_BACK_MATTER = re.compile(r"^(?:注\s*释|注\s*解|后\s*记|附\s*录|编后记|出版说明|说\s*明|索\s*引|参考文献)$")
_DATED_UNDER_TITLE = re.compile(r"^[（(]\s*(?:\d{4}|[〇零○一二三四五六七八九]{4})\s*年[^）)]{0,12}[）)]$")


def _is_piece_title(text: str) -> bool:
    return len(text) <= 40 and not ends_sentence(text) and "。" not in text and not SALUTATION.match(text)


def _collection(lines: Sequence[str]) -> tuple[list[int], int]:
    """Where the pieces of a collected volume start (block indices), and where its back matter
    (注释, 后记) starts (len(lines) when none). Pieces are the lines a 目录 lists, found again
    below it, when at least two of them carry a date or byline under them (else the contents are
    one document's sections); or, without contents, titles over a ``（一九七五年一月二十五日）`` line,
    when there are at least two."""
    norm = [normalise(x) for x in lines]
    end = len(lines)
    toc = next((i for i, x in enumerate(norm[: max(40, len(norm) // 5)]) if _TOC.match(x)), None)
    starts: list[int] = []
    if toc is not None:
        entries: dict[str, bool] = {}
        i = toc + 1
        while i < len(norm) and len(entries) < 500:
            m = _TOC_ENTRY.match(norm[i])
            if m is None or ends_sentence(norm[i]) or len(norm[i]) > 45:
                break
            entry = m.group("title").strip()
            if entry in entries:
                break  # the first piece's own title: the contents ended above it
            if not _DATED_UNDER_TITLE.match(norm[i]):
                entries[entry] = bool(_BACK_MATTER.match(entry))
            i += 1
        body = i
        seen: set[str] = set()
        for j in range(body, len(norm)):
            title = norm[j]
            if title in entries and title not in seen:
                seen.add(title)
                if entries[title]:
                    end = min(end, j)
                elif j < end:
                    starts.append(j)
        dated = sum(1 for j in starts if _dated(norm, j))
        if len(starts) >= 2 and dated >= 2:
            return starts, end
        starts, end = [], len(lines)
    starts = [j for j in range(len(norm) - 1) if _is_piece_title(norm[j]) and _DATED_UNDER_TITLE.match(norm[j + 1])]
    return (starts, end) if len(starts) >= 2 else ([], len(lines))


def _dated(norm: Sequence[str], j: int) -> bool:
    """A date line (or a byline, then a date line) right under line ``j``."""
    return any(_DATED_UNDER_TITLE.match(x) for x in norm[j + 1 : j + 3])


# --- units ----------------------------------------------------------------------------------


def _units(doc: Document, counts: Counts, *, filename: str) -> Iterator[_Unit]:
    """The document's units; header lines (at the start, and under each speech title) are read
    by `parse_header` into the title unit and never become units themselves."""
    lines = doc.lines
    first = parse_header(lines, title_hint=doc.title, filename=filename)
    starts, end = _collection(lines)
    if starts:
        counts.front_matter += starts[0] - first.consumed + (len(lines) - end)
        skip_to = starts[0]
    else:
        yield _Unit("title", first.title, _line(doc.blocks[0], 0), header=first)
        skip_to = first.consumed
    titles = {first.title}
    start_set = set(starts)
    gap, previous_line = True, 0
    for i, block in enumerate(doc.blocks[:end]):
        if i < skip_to:
            rule = matching_rule(block.text)
            if rule is not None:  # site chrome among the header lines: still counted
                counts.boilerplate[rule] += 1
            continue
        line = _line(block, i)
        if i in start_set:
            unit: _Unit | None = _Unit("title", normalise(block.text), line)
        else:
            unit = _classify(block, line, counts)
        if unit is None:
            gap = True
            continue
        if unit.kind == "title":
            if i not in start_set and unit.text in titles:
                counts.fragments += 1  # the deck's title again on an outline page: same speech
                continue
            unit.header = parse_header(lines[i : i + MAX_HEADER_LINES], filename=filename)
            unit.text = unit.header.title or unit.text
            titles.add(unit.text)
            skip_to = i + max(1, unit.header.consumed)
        # Text files say where blank lines were; other formats' blocks are paragraphs already.
        unit.after_gap = gap or not block.line or line > previous_line + 1
        unit.indented = block.indented
        unit.pages = block.pages
        gap, previous_line = False, line
        yield unit


def _line(block: Block, index: int) -> int:
    """The block's line in its file (text formats), else its position."""
    return block.line or index + 1


# In a format with explicit paragraphs (docx, html, pdf), an unfinished short paragraph is a
# caption or label (``专栏：2017年完成情况``), not half of a paragraph a page break cut: those
# halves are long. Text files are hard-wrapped at any width, so there any unfinished line joins.
_CUT_MIN_CHARS = 40
TEXT_FORMATS = ("txt", "md")


def _repair(units: Iterable[_Unit], counts: Counts, *, min_chars: int = 0) -> list[_Unit]:
    """Rejoin body text that a page break (or hard wrap) cut in two."""
    out: list[_Unit] = []
    for unit in units:
        prev = out[-1] if out else None
        if (
            unit.kind == "body"
            and prev is not None
            and prev.kind == "body"
            and len(prev.text) >= min_chars
            and not ends_sentence(prev.text)
            and not heading_level(unit.text)
            and not _stands_alone(unit.text)
            and not unit.indented
        ):
            joiner = " " if prev.text[-1].isascii() and unit.text[0].isascii() else ""
            prev.pages += _shift_pages(unit.pages, len(prev.text) + len(joiner), prev.pages)
            prev.text = prev.text + joiner + unit.text
            if unit.after_gap:
                counts.repaired += 1
            continue
        out.append(unit)
    return out


def _shift_pages(pages: tuple[tuple[int, int], ...], by: int,
                 before: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """A joined unit's page marks, moved ``by`` characters; a first mark on the page the text
    before it already ends on is left out."""
    shifted = tuple((offset + by, page) for offset, page in pages)
    return shifted[1:] if shifted and before and before[-1][1] == shifted[0][1] else shifted


# The end of a speech: thanks, greetings or wishes, ending with an exclamation mark.
_CLOSING = re.compile(
    r"(谢谢|拜个?年|恭祝|祝愿|祝大家|祝各位|致以|新春|春节|节日|身体健康|万事如意|再见)[^。？]*[！!]$"
)


def _split(units: Sequence[_Unit]) -> list[RawSpeech]:
    speeches: list[RawSpeech] = []
    current: RawSpeech | None = None
    path: list[tuple[int, str]] = []
    for unit in units:
        if unit.kind == "title":
            assert unit.header is not None
            current = RawSpeech(unit.text, unit.line, unit.header)
            speeches.append(current)  # a title with no paragraphs under it is dropped below
            path = []
        elif current is None:
            continue  # a collection's front matter
        elif unit.kind == "salutation":
            # A fresh 同志们： right after a speech closed starts a second speech pasted under
            # the same title (the shipped page's 篇五 holds 仙桃, then 商丘). Any other
            # salutation (同志们、朋友们！ between parts, 各位代表： in a report) is only skipped.
            if current.paragraphs and unit.text[-1] in "：:" and _CLOSING.search(current.paragraphs[-1][1]):
                current = RawSpeech(current.heading, unit.line, Header(current.heading))
                speeches.append(current)
                path = []
        elif unit.kind == "speaker":
            current.labelled_speaker = current.labelled_speaker or unit.text
        elif unit.kind == "heading":
            path = [p for p in path if p[0] < unit.level] + [(unit.level, unit.text)]
        else:
            current.paragraphs.append((" › ".join(t for _, t in path), unit.text, unit.line, unit.pages))
    return [s for s in speeches if s.paragraphs]


def speeches_of(doc: Document, counts: Counts, *, filename: str) -> list[RawSpeech]:
    """The speeches of one document, their header and trailer read, their paragraphs in order."""
    min_chars = 0 if doc.format in TEXT_FORMATS else _CUT_MIN_CHARS
    speeches = _split(_repair(_units(doc, counts, filename=filename), counts, min_chars=min_chars))
    for speech in speeches:
        # Never the first paragraph: a speech of a signature alone is still that text.
        tail = [t for _, t, *_ in speech.paragraphs[1:]][-MAX_TRAILER_LINES:]
        trailer = parse_trailer(tail) if tail else Trailer()
        if trailer.consumed:
            del speech.paragraphs[-trailer.consumed :]
            counts.signatures += trailer.consumed
        # After the body, so the speech's paragraphs keep their numbers.
        speech.paragraphs += [(label, text, speech.line, ()) for label, text in speech.header.notes]
        speech.trailer = trailer
    return speeches
