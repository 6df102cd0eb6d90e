"""Speech documents in, text blocks out: one loader per file format behind one function.

    read_document(path) -> Document(blocks=(Block(text, kind, level), ...), format, title, dropped)

The loader is chosen by sniffing the first bytes, not by the file name (a ``.doc`` that is really
a docx, a ``.pdf`` that is really an executable), the suffix being only a hint between text and
HTML:

==========================  =========  ==================================================
content                     loader     notes
==========================  =========  ==================================================
zip with word/document.xml  docx.py    body, nested tables, text boxes in document order
OLE2 ``D0 CF 11 E0``        doc.py     antiword (or catdoc) in a subprocess
``%PDF-``                   pdf.py     pdfminer.six line geometry -> paragraphs
HTML markers (or .htm[l])   html.py    trafilatura main text, then boilerplate.toml rules
``MIME-Version:`` (.mht)    html.py    the text/html part of Word's "single file web page"
anything else               plain.py   plain.decode (BOM, UTF-16, GB18030); markdown ``#``
==========================  =========  ==================================================

A loader reports only what the container itself says: a Title/Heading style, ``<h1>``, a
markdown ``#``. Recognising ``一、…`` enumerators, salutations and speech headers from the text is
left to ``speechrag.corpus`` and ``speechrag.header`` so it is the same for every format.

Every read is bounded (``Limits``): file size, zip members' uncompressed size, PDF pages, HTML
size and wall-clock time. A file that cannot or should not be read raises ``DocumentError`` with
a one-line reason ("no text layer (scanned?)", "encrypted PDF", ...) so a corpus build can skip
it and say why.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from speechrag.errors import DocumentError

if TYPE_CHECKING:
    from speechrag.formats.ocr import OcrReader

log = logging.getLogger(__name__)

SUFFIXES = (".docx", ".doc", ".pdf", ".html", ".htm", ".txt", ".md")

MB = 1024 * 1024
MAX_BYTES = 50 * MB

BlockKind = Literal["title", "heading", "paragraph"]


@dataclass(frozen=True)
class Block:
    """One unit of text in reading order: a title, a heading (``level`` 1-6) or a paragraph.
    ``line`` is its 1-based line in a text file (0 for other formats), so citations can point
    there and blank lines between blocks are known. ``indented``: a text file's line that starts
    set in (a tab, full-width spaces), which there begins a paragraph: a hard-wrapped line
    continuing one is not set in. ``pages`` (PDF) says where the text is on the pages:
    ``(offset, page)`` pairs, the 1-based page on which the text from ``offset`` on stands, so
    a paragraph that crosses a page end has two."""

    text: str
    kind: BlockKind
    level: int = 0
    line: int = 0
    indented: bool = False
    pages: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Document:
    """What a loader read from one file.

    ``title`` is a title the container itself gives (docx Title style or core properties, html
    ``<h1>``/``<title>`` without the site name, markdown ``#``), or "". ``dropped`` counts the
    lines the loader removed, by reason (a boilerplate rule's name, ``running-head``,
    ``page-number``), so the corpus report can show them. ``published`` is an ISO date the
    container gives for itself (a web page's publication date), a fallback only: the speech's own
    date from ``parse_header`` wins. File creation dates (docx core, PDF info) are not used: they
    are when someone saved the file. ``ocr`` counts what OCR did (``pages`` read, ``turned``
    upright, ``low-confidence`` lines kept, ``noise`` lines dropped); ``notes`` says which pages
    were left unread and why (``page 4: text stands vertically…``).
    """

    blocks: tuple[Block, ...]
    format: str
    title: str = ""
    dropped: tuple[tuple[str, int], ...] = ()
    published: str = ""
    ocr: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def lines(self) -> list[str]:
        """The blocks' texts: what ``speechrag.header.parse_header`` reads."""
        return [b.text for b in self.blocks]


@dataclass(frozen=True)
class Limits:
    """Bounds on one read: far above a real speech (a long government work report is a few
    dozen pages), far below what would stall a build or fill memory."""

    max_bytes: int = MAX_BYTES
    max_unzipped: int = 200 * MB  # sum of a docx's members, checked before reading any
    max_zip_members: int = 5000
    max_pages: int = 2000
    max_html_bytes: int = 10 * MB
    max_chars: int = 20_000_000  # text a loader may produce (antiword/catdoc output included)
    seconds: float = 60.0  # parsing; OCR has its own budget below
    # Pages of one PDF read by OCR, and the seconds they may take: ~0.3 pages/s on 2 cores here
    # (README, Performance), so a 300-page scan reads in ~17 minutes, within the budget.
    max_ocr_pages: int = 500
    ocr_seconds: float = 3600.0


@dataclass(frozen=True)
class Deadline:
    """A wall-clock bound checked between units of work (pages, paragraphs).

    Cooperative on purpose: a signal-based alarm would be process-global state and works only in
    the main thread. A single library call that never returns is therefore not interrupted: on the
    hostile fixtures (cyclic page tree with a self-referencing xref, 10,000 pages, truncated file)
    pdfminer gives up within 0.05 s; antiword/catdoc run in a subprocess with a hard timeout.
    """

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def check(self, what: str) -> None:
        if time.monotonic() > self.at:
            raise DocumentError(f"took over {self.seconds:g} s ({what}); damaged or pathological file")


_SITE_SEPARATOR = re.compile(r"\s+[-|｜—–]+\s+|_|｜|\s*--\s*|\s*——\s*(?=\S*(网|报|门户|政府|频道|新闻))")


_PLACEHOLDER = re.compile(
    r"(?i)untitled|无标题|新建\s*(Microsoft\s*)?(Word|WPS)\s*文档(\s*\(\d+\))?|文档\d*|Document\d*"
)


def clean_title(title: str, site: str = "") -> str:
    """A container's title without the site or file name that pages and Word files append:
    ``政府工作报告_青山区人民政府网`` -> ``政府工作报告``; ``Microsoft Word - 讲话.doc`` -> "".

    The first part before a separator (`` - ``, ``_``, ``|``) is kept, or the part that is not
    ``site`` when the site name comes first.
    """
    from speechrag.text import normalise

    title = normalise(title)
    title = re.sub(r"^Microsoft Word\s*-\s*", "", title)
    if re.search(r"\.(docx?|dotx?|wps|pdf|txt)$", title, re.IGNORECASE):
        return ""  # a file name, not a title
    if _PLACEHOLDER.fullmatch(title):
        return ""  # a tool's placeholder
    parts = [p.strip() for p in _SITE_SEPARATOR.split(title) if p and p.strip()]
    if site:
        parts = [p for p in parts if p != normalise(site)] or parts
    return parts[0] if parts else ""


def split_soft_breaks(raw: str) -> Iterator[str]:
    """A paragraph's text, split at line breaks that separate paragraphs.

    Web pages pasted into Word keep each ``<br>`` as ``w:br``, so one Word paragraph can hold a
    whole speech. A break splits when the text before it ends a sentence (or is a salutation
    ending in ：) and the text after it begins a new one (not a closing quote or punctuation), or
    when the text after it starts with a heading enumerator (二、…). Any other break is a manual
    line wrap inside a sentence and is joined (with a space only between Latin letters/digits).
    """
    from speechrag.text import SALUTATION, ends_sentence, heading_level, normalise

    pieces = [normalise(piece) for piece in raw.split("\n")]
    current = ""
    for piece in pieces:
        if not piece:
            if current:
                yield current
            current = ""
            continue
        if not current:
            current = piece
        elif (
            (ends_sentence(current) and piece[0] not in "，。、；：！？”’）)】》,.;:!?")
            or heading_level(piece)
            or SALUTATION.match(piece)  # 推优演讲稿 / 亲爱的同学们：: a title, then the salutation
        ):
            yield current
            current = piece
        else:
            joiner = " " if current[-1].isascii() and current[-1].isalnum() and piece[0].isascii() else ""
            current = current + joiner + piece
    if current:
        yield current


Loader = Callable[[bytes, Path, Limits, Deadline], Document]

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_MAGIC = (
    (b"\x7fELF", "an executable (ELF)"),
    (b"MZ", "an executable (MZ/PE)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7z archive"),
)
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<meta ", b"<title")


def sniff(head: bytes, suffix: str = "") -> str:
    """The loader name for a file starting with ``head`` ("docx", "doc", "pdf", "html", "mht", "text"),
    or raise DocumentError for content no loader reads. ``head`` must include the whole file
    for zip archives (the member list is at the end); other formats need only ~4 KB."""
    suffix = suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        return "docx"  # docx.py checks for word/document.xml and names what it found instead
    if head.startswith(_OLE2):
        return "doc"
    if b"%PDF-" in head[:1024]:  # the PDF spec tolerates junk before the header
        return "pdf"
    if head[:200].lstrip().lower().startswith(b"mime-version:"):
        return "mht"  # Word's "single file web page", often saved with a .doc suffix
    if head.startswith(b"{\\rtf"):
        raise DocumentError("RTF is not supported; save it as .docx")
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            hint = f" named {suffix}" if suffix else ""
            raise DocumentError(f"binary file, not text ({what}{hint})")
    sample = head[:2048].lower().lstrip(b"\xef\xbb\xbf \t\r\n")
    marked = any(m in sample for m in _HTML_MARKERS)
    # A text file may mention <html> in passing; a saved page starts with markup.
    if suffix in (".html", ".htm") or (marked and sample.startswith(b"<")):
        return "html"
    if marked and suffix not in (".txt", ".md"):
        return "html"
    if suffix in (".docx", ".doc", ".pdf"):
        # Text in a file named like a binary format: read it as text but say so.
        log.warning("%s content is not %s; reading it as text", suffix, suffix.lstrip("."))
    return "text"


def _loader(kind: str) -> Loader:
    # Imported on use: trafilatura takes 0.26 s to import and pdfminer 0.06 s (python -X importtime).
    if kind == "docx":
        from speechrag.formats import docx

        return docx.load
    if kind == "doc":
        from speechrag.formats import doc

        return doc.load
    if kind == "pdf":
        from speechrag.formats import pdf

        return pdf.load
    if kind == "html":
        from speechrag.formats import html

        return html.load
    if kind == "mht":
        from speechrag.formats import html

        return html.load_mht
    from speechrag.formats import plain

    return plain.load


def read_document(path: Path, *, max_bytes: int = MAX_BYTES, limits: Limits | None = None,
                  ocr: OcrReader | None = None) -> Document:
    """Read one speech document into blocks; raise DocumentError with the reason to skip it.

    Never returns a document without text: an empty docx or a blank page is an error too, so a
    caller has exactly two outcomes to handle. A PDF's pages without a text layer are read by
    ``ocr`` (`formats.ocr.OcrReader`: its workers, its progress), else by one made for this file.
    """
    limits = limits or Limits(max_bytes=max_bytes)  # an explicit ``limits`` wins over max_bytes
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise DocumentError(f"file is {size / MB:.0f} MB, over the {limits.max_bytes / MB:.0f} MB limit")
        with path.open("rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise DocumentError(f"cannot read the file ({exc.strerror})") from None
    if len(data) > limits.max_bytes:  # grew while we looked
        raise DocumentError(f"file is over the {limits.max_bytes / MB:.0f} MB limit")
    if not data.strip():
        raise DocumentError("empty file")
    kind = sniff(data, path.suffix)
    deadline = Deadline.after(limits.seconds)
    started = time.perf_counter()
    if kind == "pdf":
        from speechrag.formats import pdf

        document = pdf.load(data, path, limits, deadline, ocr=ocr)
    else:
        document = _loader(kind)(data, path, limits, deadline)
    log.debug("%s: %s, %d blocks in %.3f s", path.name, kind, len(document.blocks), time.perf_counter() - started)
    if not any(b.text.strip() for b in document.blocks):
        raise DocumentError(f"no text in this {document.format} file")
    return document


__all__ = [
    "MAX_BYTES",
    "SUFFIXES",
    "Block",
    "BlockKind",
    "Deadline",
    "Document",
    "DocumentError",
    "Limits",
    "clean_title",
    "read_document",
    "sniff",
    "split_soft_breaks",
]
