"""Plain text and markdown (.txt, .md): decoded as the corpus always has been, one block a line.

Decoding is ``speechrag.corpus.decode`` (UTF-8 with or without BOM, UTF-16 with BOM, then
GB18030; strict, never a silent guess), imported rather than copied so both paths agree.
``str.splitlines`` handles CRLF and lone CR. A markdown ``#`` line is a title (one ``#``) or a
heading (``##``… level = number of ``#``); every other non-blank line is a paragraph. Rejoining
hard-wrapped lines stays in corpus.py, which already does it for every format.
"""

from __future__ import annotations

import re
from pathlib import Path

from speechrag.corpus import decode, normalise
from speechrag.errors import CorpusError
from speechrag.formats import Block, Deadline, Document, DocumentError, Limits

_MD_HEADING = re.compile(r"^(#{1,6})\s*(.*?)\s*#*\s*$")


def blocks_from_lines(lines: list[str], *, markdown: bool = True) -> list[Block]:
    """Non-blank normalised lines as blocks; ``#`` lines as title/heading when ``markdown``."""
    blocks: list[Block] = []
    for raw in lines:
        line = normalise(raw)
        if not line:
            continue
        md = _MD_HEADING.match(line) if markdown else None
        if md and md.group(2):
            level = len(md.group(1))
            blocks.append(Block(md.group(2), "title" if level == 1 else "heading", 0 if level == 1 else level))
        else:
            blocks.append(Block(line, "paragraph"))
    return blocks


def load(data: bytes, path: Path, limits: Limits, deadline: Deadline) -> Document:
    try:
        text = decode(data, path.name)
    except CorpusError as exc:
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
