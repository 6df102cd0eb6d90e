"""Plain text and markdown (.txt, .md): decoded as the corpus always has been, one block a line.

Decoding (`decode`): UTF-8 with or without BOM, UTF-16 with BOM, then GB18030; strict, never a
silent guess.
``str.splitlines`` handles CRLF and lone CR. A markdown ``#`` line is a title (one ``#``) or a
heading (``##``… level = number of ``#``); every other non-blank line is a paragraph. Rejoining
hard-wrapped lines stays in corpus.py, which already does it for every format.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

from speechrag.formats import Block, BlockKind, Deadline, Document, DocumentError, Limits
from speechrag.text import normalise

_MD_HEADING = re.compile(r"^(#{1,6})\s*(.*?)\s*#*\s*$")


def blocks_from_lines(lines: list[str], *, markdown: bool = True) -> list[Block]:
    """Non-blank normalised lines as blocks; ``#`` lines as title/heading when ``markdown``."""
    blocks: list[Block] = []
    for number, raw in enumerate(lines, start=1):
        line = normalise(raw)
        if not line:
            continue
        md = _MD_HEADING.match(line) if markdown else None
        if md and md.group(2):
            level = len(md.group(1))
            kind: BlockKind = "title" if level == 1 else "heading"
            blocks.append(Block(md.group(2), kind, 0 if level == 1 else level, line=number))
        else:
            blocks.append(Block(line, "paragraph", line=number))
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
        # Valid multi-byte UTF-8 before the bad byte means a damaged UTF-8 file, not GBK: say so
        # rather than let GB18030 (which accepts most byte pairs) turn it into mojibake.
        if any(b >= 0x80 for b in data[: exc.start]):
            raise DocumentError(
                f"{name}: invalid UTF-8 at byte {exc.start} (the file is UTF-8 before it); "
                "repair that byte or re-save the file as UTF-8"
            ) from None
    try:
        return _check_text(data.decode("gb18030"), name)
    except UnicodeDecodeError:
        pass
    raise DocumentError(f"{name}: not valid UTF-8, UTF-16 (with BOM) or GB18030/GBK; re-save it as UTF-8")


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
