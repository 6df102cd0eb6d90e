"""Plain text and markdown (.txt, .md): decoded as the corpus always has been, one block a line.

Decoding (`decode`): UTF-8 with or without BOM, UTF-16 with BOM, then GB18030; strict, never a
silent guess.
``str.splitlines`` handles CRLF and lone CR. A markdown ``#`` line is a title (one ``#``) or a
heading (``##``… level = number of ``#``); every other non-blank line is a paragraph. Rejoining
hard-wrapped lines stays in corpus.py, which already does it for every format.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import unicodedata
from pathlib import Path

from speechrag.formats import Block, BlockKind, Deadline, Document, DocumentError, Limits
from speechrag.text import ends_sentence, normalise

_MD_HEADING = re.compile(r"^(#{1,6})\s*(.*?)\s*#*\s*$")
# An org-mode headline (``** 演讲稿``) at the start of a line; `` * item`` (indented) is a list item.
_ORG_HEADING = re.compile(r"^(\*{1,6})\s+(\S.{0,40})$")


def blocks_from_lines(lines: list[str], *, markdown: bool = True) -> list[Block]:
    """Non-blank normalised lines as blocks; ``#`` lines as title/heading when ``markdown``."""
    blocks: list[Block] = []
    for number, raw in enumerate(lines, start=1):
        line = normalise(raw)
        if not line:
            continue
        md = _MD_HEADING.match(line) if markdown else None
        org = _ORG_HEADING.match(raw.rstrip())
        if md and md.group(2):
            level = len(md.group(1))
            kind: BlockKind = "title" if level == 1 else "heading"
            blocks.append(Block(md.group(2), kind, 0 if level == 1 else level, line=number))
        elif org and not ends_sentence(org.group(2)) and "。" not in org.group(2):
            # the first headline of a text is its title, the others headings
            kind = "heading" if blocks else "title"
            blocks.append(Block(normalise(org.group(2)), kind, len(org.group(1)) if blocks else 0, line=number))
        else:
            indented = raw[:1] in ("\t", "\u3000") or raw[:2] == "  "
            blocks.append(Block(line, "paragraph", line=number, indented=indented))
    return blocks


def decode(data: bytes, name: str) -> str:
    """Decode a corpus file strictly; raise DocumentError naming the file if it cannot be done."""
    if not data.strip():
        raise DocumentError(f"{name}: file is empty; remove it from the corpus or add text to it")
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _check_text(data.decode(codec), name)
            except UnicodeDecodeError as exc:
                raise DocumentError(
                    f"{name}: starts with a {codec} byte-order mark but is not valid {codec} "
                    f"(byte {exc.start}); re-save it as UTF-8"
                ) from None
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{name}: looks like a binary file (NUL bytes); not text")
    try:
        return _check_text(data.decode("utf-8"), name)
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    # GB18030 accepts most byte pairs, so UTF-8 read as GBK decodes too, into rare characters
    # (涓€鍦ㄥ). Real GBK text is mostly the common characters; when it is not, valid multi-byte
    # UTF-8 before the bad byte means a damaged UTF-8 file: say so rather than give mojibake.
    # (A GBK text can start like UTF-8 by chance: 一 is D2 BB, a valid UTF-8 pair.)
    if text and _common_share(text) >= 0.8:
        return _check_text(text, name)
    if any(b >= 0x80 for b in data[:bad_at]):
        raise DocumentError(
            f"{name}: invalid UTF-8 at byte {bad_at} (the file is UTF-8 before it); "
            "repair that byte or re-save the file as UTF-8"
        )
    if text:
        return _check_text(text, name)
    raise DocumentError(f"{name}: not valid UTF-8, UTF-16 (with BOM) or GB18030/GBK; re-save it as UTF-8")


def _common_share(text: str) -> float:
    """The share of a text's Chinese characters that are GB2312's 3,755 common ones (level 1,
    lead bytes B0-D7): ~0.95 in real Chinese text, far less in UTF-8 misread as GBK."""
    han = [ch for ch in text[:20000] if "\u4e00" <= ch <= "\u9fff"]
    if not han:
        return 0.0
    common = 0
    for ch in han:
        with contextlib.suppress(UnicodeEncodeError):
            common += 0xB0 <= ch.encode("gb2312")[0] <= 0xD7
    return common / len(han)


def _check_text(text: str, name: str) -> str:
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > max(8, len(text) // 50):
        raise DocumentError(
            f"{name}: looks like a binary file ({controls} control characters); not text"
        )
    if not text.strip():
        raise DocumentError(f"{name}: file is empty; remove it from the corpus or add text to it")
    return text



def load(data: bytes, path: Path, limits: Limits, deadline: Deadline) -> Document:
    try:
        text = decode(data, path.name)
    except DocumentError as exc:
        # decode's messages start with the file name; the caller adds it again, so drop it.
        reason = str(exc).removeprefix(f"{path.name}: ")
        if "binary" in reason:
            reason = "binary file, not text"
        raise DocumentError(reason) from None
    if len(text) > limits.max_chars:
        raise DocumentError(f"text file holds over {limits.max_chars:,} characters")
    blocks = blocks_from_lines(text.splitlines())
    title = next((b.text for b in blocks if b.kind == "title"), "")
    fmt = "md" if path.suffix.lower() == ".md" else "txt"
    return Document(blocks=tuple(blocks), format=fmt, title=title)
