"""PDF: text from pdfminer.six's character positions, rebuilt into paragraphs.

Why pdfminer.six at the character level (measured on tests/fixtures/documents/speech.pdf, a
3-page speech that LibreOffice exported; ms per file, mean of 5 runs on this 2-core machine):

============================  ====  ================================================================
library                        ms   text
============================  ====  ================================================================
pypdf 7.1 ``extract_text``      19  moves every “ ” to the start of its line (LibreOffice sets the
                                    quotes in a Latin font, a separate text run); no geometry
pdfminer.six ``extract_text``   40  right characters, but the quotes land in boxes of their own
pdfplumber 0.11 (on pdfminer)   57  right order (it clusters characters), one more dependency
pdfminer.six chars (this)      ~45  right order; x/y/size per character for paragraph rebuilding
============================  ====  ================================================================

PyMuPDF would be faster but is AGPL. pdfminer is run without its layout analysis
(``laparams=None``): we only need characters, and lines are rebuilt here:

1. characters are grouped into lines by baseline and ordered by x (this repairs the quotes);
   spaces are inserted only between Latin letters/digits that stand apart, never next to CJK,
   so ``2019 年 6 月`` comes out ``2019年6月``; Kangxi radicals (⽣) become ideographs (生);
2. running heads/feet are dropped: a line at the top or bottom of at least half the pages (digits
   ignored, so ``第 3 页`` and ``- 3 -`` match across pages), and any top/bottom line that is
   only a page number;
3. glyphs without a Unicode map ((cid:N)) are left out; a PDF of mostly such glyphs is refused
   ("no usable text layer"), as OCR is the only way in;
4. lines become paragraphs: a new one starts at an indented line, after a line that ends short
   of the right margin (by over 3 characters, or 1.5 at a sentence end), or after a vertical
   gap; a paragraph cut by a page end is rejoined because nothing ends it (the page's last line
   runs to the margin, the next page's first line is not indented).

Bounds: the declared page count is checked before any page is read (and pages are counted while
read), the deadline is checked between pages, and any exception pdfminer raises on a damaged
file becomes DocumentError("damaged PDF (...)").
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speechrag.formats import Block, Deadline, Document, DocumentError, Limits, clean_title
from speechrag.text import ends_sentence, normalise

if TYPE_CHECKING:
    from speechrag.formats.ocr import OcrReader

log = logging.getLogger(__name__)

# Page-number lines: "3", "- 3 -", "— 3 —", "第 3 页", "第3页 共12页", "3 / 12", "Page 3 of 12".
_PAGE_NUMBER = re.compile(
    r"^(?:[-—–\s]*\d{1,4}[-—–\s]*|第\s*\d{1,4}\s*页(?:\s*[，,/]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4}|(?:page\s*)?\d{1,4}\s*(?:of|/)\s*\d{1,4})$",
    re.IGNORECASE,
)
_EDGE_LINES = 2
  # lines at each of the top and bottom of a page that may be running heads/feet


@dataclass
class _Line:
    text: str
    x0: float
    x1: float
    top: float  # distance from the page top
    bottom: float
    size: float
    page: int


def _chars(item: Any) -> Iterator[Any]:
    from pdfminer.layout import LTChar, LTContainer

    for child in item:
        if isinstance(child, LTChar):
            yield child
        elif isinstance(child, LTContainer):
            yield from _chars(child)


def _has_image(item: Any) -> bool:
    from pdfminer.layout import LTContainer, LTImage

    return any(isinstance(c, LTImage) or (isinstance(c, LTContainer) and _has_image(c)) for c in item)


def _page_lines(layout: Any, page: int, counts: Counter[str]) -> list[_Line]:
    """Group a page's characters into lines by vertical overlap, each ordered by x.

    A glyph whose font has no Unicode map comes out of pdfminer as ``(cid:1234)``: it is left
    out and counted (``counts["unmapped"]``), so load() can refuse a page of nothing else.
    """
    height = float(layout.height)
    rows: list[list[Any]] = []
    for ch in sorted(_chars(layout), key=lambda c: (-(c.y0 + c.y1) / 2, c.x0)):
        text = ch.get_text()
        counts["chars"] += 1
        if text.startswith("(cid:"):
            counts["unmapped"] += 1
            continue
        if not text.strip():
            continue  # spaces are re-inserted from geometry below
        mid = (ch.y0 + ch.y1) / 2
        if rows:
            last = rows[-1]
            ref = last[0]
            if abs(mid - (ref.y0 + ref.y1) / 2) < max(ref.size, ch.size) * 0.45:
                last.append(ch)
                continue
        rows.append([ch])
    lines = []
    for row in rows:
        row.sort(key=lambda c: c.x0)
        row = _without_overprint(row)
        parts: list[str] = []
        prev = None
        for ch in row:
            text = ch.get_text()
            if prev is not None and ch.x0 - prev.x1 > 0.25 * ch.size:
                a, b = parts[-1][-1], text[0]
                if a.isascii() and a.isalnum() and b.isascii() and b.isalnum():
                    parts.append(" ")
            parts.append(text)
            prev = ch
        text = normalise("".join(parts))  # Kangxi radicals (⽣) become 生 there
        if text:
            sizes = Counter(round(c.size, 1) for c in row)
            lines.append(
                _Line(
                    text,
                    min(c.x0 for c in row),
                    max(c.x1 for c in row),
                    height - max(c.y1 for c in row),
                    height - min(c.y0 for c in row),
                    sizes.most_common(1)[0][0],
                    page,
                )
            )
    return lines


def _without_overprint(row: list[Any]) -> list[Any]:
    """The row without glyphs drawn twice: a fake bold strikes each character again a fraction of
    a point to the right (在在IPD动动员员 otherwise). A real repeat (谢谢) is a character apart."""
    out: list[Any] = []
    for ch in row:
        prev = out[-1] if out else None
        if prev is not None and ch.get_text() == prev.get_text() and abs(ch.x0 - prev.x0) < 0.3 * ch.size:
            continue
        out.append(ch)
    return out


def _edge_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def _drop_running(pages: Sequence[list[_Line]], dropped: Counter[str]) -> list[list[_Line]]:
    """Remove running heads/feet and page numbers from the top and bottom lines of each page.

    A running line must sit at an edge of at least half the pages (and of two): Word often leaves
    the head off the first page, so "every page" would miss it. A line that ends a sentence is
    never a running head: a salutation repeated at the top of two pages (同志们！) is speech.
    """
    edges: Counter[str] = Counter()
    for lines in pages:
        edges.update({_edge_key(x.text) for x in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]})
    need = max(2, (len(pages) + 1) // 2)
    running = {key for key, n in edges.items() if n >= need}
    out = []
    for lines in pages:
        edge_ids = {id(x) for x in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]}
        kept = []
        for line in lines:
            if id(line) in edge_ids and _PAGE_NUMBER.match(line.text):
                dropped["page-number"] += 1
            elif id(line) in edge_ids and _edge_key(line.text) in running and not ends_sentence(line.text):
                dropped["running-head"] += 1
            else:
                kept.append(line)
        out.append(kept)
    return out


def _paragraphs(pages: Sequence[list[_Line]]) -> list[Block]:
    lines = [line for page in pages for line in page]
    if not lines:
        return []
    size = Counter(line.size for line in lines).most_common(1)[0][0]
    left = Counter(round(line.x0) for line in lines).most_common(1)[0][0]
    right = sorted(line.x1 for line in lines)[int(len(lines) * 0.9)]
    spacing = Counter(
        round(b.top - a.top) for a, b in itertools.pairwise(lines) if a.page == b.page and b.top > a.top
    ).most_common(1)
    step = spacing[0][0] if spacing else size * 1.5
    blocks: list[Block] = []
    insets: list[float | None] = []  # each block's left edge when all its lines are set in from the margin
    current: list[_Line] = []
    rejoined = 0

    def inset(line: _Line) -> bool:
        return line.x0 > left + 0.8 * size

    def flush() -> None:
        if current:
            text = ""
            pages: list[tuple[int, int]] = []  # (offset, 1-based page) where the text moves to a page
            for line in current:
                joiner = " " if text and text[-1].isascii() and text[-1].isalnum() and line.text[0].isascii() else ""
                if not pages or pages[-1][1] != line.page + 1:
                    pages.append((len(text) + len(joiner) if text else 0, line.page + 1))
                text += joiner + line.text
            big = current[0].size >= size * 1.2
            kind = "title" if big and current[0].page == 0 and not blocks else "heading" if big else "paragraph"
            blocks.append(Block(text, kind, 1 if kind == "heading" else 0,  # type: ignore[arg-type]
                                pages=tuple(pages)))
            boxed = len(current) > 1 and all(inset(x) and abs(x.x0 - current[0].x0) < 0.3 * size for x in current)
            insets.append(current[0].x0 if boxed else None)
            current.clear()

    for line in lines:
        prev = current[-1] if current else None
        # A line set in as far as the one above it continues a box (an editor's note, a quote):
        # only the first line of a paragraph is indented.
        # (a box's line runs on mid-sentence to near the margin; a line that ends a sentence, or
        # stops short, ends its paragraph, and the next indented line starts another)
        boxed = (prev is not None and inset(prev) and inset(line) and abs(line.x0 - prev.x0) < 0.3 * size
                 and prev.x1 > right - 6 * size and not ends_sentence(prev.text) and line.page == prev.page)
        # A box has its own right edge, narrower than the page's.
        edge = max(x.x1 for x in current) if boxed else right
        new = (
            prev is None
            or (inset(line) and not boxed)  # first-line indent (or centred)
            # The previous line stopped short: its paragraph ended. By 1.5-3 characters only at a
            # sentence end, since a line of narrow Latin quotes (“”) also stops ~1.5 em short.
            or prev.x1 < edge - 3 * size
            or (prev.x1 < edge - 1.5 * size and ends_sentence(prev.text))
            or abs(line.size - prev.size) > 0.15 * size
            or (line.page == prev.page and line.top - prev.top > step * 1.6)
        )
        if new:
            flush()
        elif prev is not None and line.page != prev.page:
            rejoined += 1
        current.append(line)
    flush()
    log.debug("%d paragraphs rejoined across a page end", rejoined)
    return _notes_whole(blocks, insets, size)


def _notes_whole(blocks: list[Block], insets: Sequence[float | None], size: float) -> list[Block]:
    """An editor's note (【导读】…) set in a box is one block, however many paragraphs the box
    holds, so the header can leave it out of the speech whole."""
    from speechrag.header import EDITOR_NOTE

    out: list[Block] = []
    box: float | None = None
    for block, x in zip(blocks, insets, strict=True):
        if box is not None and x is not None and abs(x - box) < 0.3 * size and out:
            shift = len(out[-1].text)
            pages = (*out[-1].pages, *((offset + shift, page) for offset, page in block.pages))
            out[-1] = Block(out[-1].text + block.text, out[-1].kind, out[-1].level, pages=pages)
            continue
        box = x if x is not None and EDITOR_NOTE.match(block.text) else None
        out.append(block)
    return out


def load(data: bytes, path: Path, limits: Limits, deadline: Deadline, ocr: OcrReader | None = None) -> Document:
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser
    from pdfminer.pdftypes import resolve1

    pages: list[list[_Line]] = []
    glyphs: Counter[str] = Counter()
    images = False
    scanned: list[int] = []  # pages without usable text: read by OCR (formats/ocr.py)
    title = ""
    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)), password="")
        declared = resolve1(resolve1(document.catalog.get("Pages")) or {}).get("Count")
        if isinstance(declared, int) and declared > limits.max_pages:
            raise DocumentError(f"PDF has {declared:,} pages, over the {limits.max_pages:,}-page limit")
        for info in document.info:
            raw = resolve1(info.get("Title"))
            if isinstance(raw, bytes):
                title = clean_title(_pdf_string(raw))
        resources = PDFResourceManager(caching=True)
        device = PDFPageAggregator(resources, laparams=None)
        interpreter = PDFPageInterpreter(resources, device)
        for n, page in enumerate(PDFPage.create_pages(document)):
            if n >= limits.max_pages:
                raise DocumentError(f"PDF has over {limits.max_pages:,} pages")
            deadline.check(f"PDF page {n + 1}")
            interpreter.process_page(page)
            layout = device.get_result()
            before = glyphs.copy()
            lines = _page_lines(layout, n, glyphs)
            if not lines and _has_image(layout):
                images = True
            if _scanned(lines, glyphs - before, layout):
                scanned.append(n)
            pages.append(lines)
    except DocumentError:
        raise
    except PDFPasswordIncorrect:
        raise DocumentError("encrypted PDF") from None
    except PDFEncryptionError as exc:
        raise DocumentError(f"encrypted PDF ({exc})") from None
    except RecursionError:
        raise DocumentError("damaged PDF (cyclic structure)") from None
    except Exception as exc:
        raise DocumentError(f"damaged PDF ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not pages:
        raise DocumentError("damaged PDF (no pages)")
    read_by_ocr, notes = _read_scanned(data, pages, scanned, limits, ocr, path.name)
    if not read_by_ocr["pages"] and glyphs["unmapped"] > 0.3 * glyphs["chars"]:
        # Fonts embedded without a ToUnicode map (common in Chinese PDFs from old typesetting
        # software): the text layer is codes, not characters. OCR is the only way in.
        raise DocumentError(f"no usable text layer (fonts without a Unicode map): {_ocr_missing()}")
    if not any(pages):
        if read_by_ocr["pages"]:
            raise DocumentError(f"no text layer (scanned?), and OCR read no text on its {read_by_ocr['pages']} "
                                f"page(s)" + (f" ({notes[0]})" if notes else ""))
        raise DocumentError(f"no text layer (scanned?): {_ocr_missing()}" if images else "no text in this PDF")
    dropped: Counter[str] = Counter()
    if glyphs["unmapped"]:
        dropped["unmapped-glyph"] = glyphs["unmapped"]
    blocks = _paragraphs(_drop_running(pages, dropped))
    styled = next((b.text for b in blocks if b.kind == "title"), "")
    log.debug("%s: %d pages, dropped %s", path.name, len(pages), dict(dropped))
    return Document(tuple(blocks), "pdf", styled or title, tuple(sorted(dropped.items())),
                    ocr=tuple((k, v) for k, v in read_by_ocr.items() if v), notes=tuple(notes))


# --- pages without a text layer: OCR (formats/ocr.py) ---------------------------------------------


def _ocr_missing() -> str:
    from speechrag.formats.ocr import missing

    return missing() or "OCR read nothing"


def _scanned(lines: list[_Line], glyphs: Counter[str], layout: Any) -> bool:
    """A page to read by OCR: an image and no text, or text of glyphs without a Unicode map."""
    return (not lines and _has_image(layout)) or glyphs["unmapped"] > 0.3 * max(1, glyphs["chars"])


def _read_scanned(data: bytes, pages: list[list[_Line]], scanned: Sequence[int], limits: Limits,
                  ocr: OcrReader | None, name: str) -> tuple[Counter[str], list[str]]:
    """Fill the scanned pages' lines by OCR, in place: (what OCR did, notes on pages left unread)."""
    from speechrag.formats import ocr as ocr_module

    done: Counter[str] = Counter()
    if not scanned:
        return done, []
    listed = ", ".join(str(n + 1) for n in scanned[:10]) + (", …" if len(scanned) > 10 else "")
    missing = ocr_module.missing()
    if missing:
        return done, [f"page(s) {listed}: no text layer, not read: {missing}"]
    if len(scanned) > limits.max_ocr_pages:
        raise DocumentError(f"{len(scanned):,} pages to read by OCR, over the {limits.max_ocr_pages:,}-page "
                            "OCR limit (Limits.max_ocr_pages)")
    with contextlib.ExitStack() as stack:
        reader = ocr or stack.enter_context(ocr_module.OcrReader())
        read = reader.read(data, scanned, seconds=limits.ocr_seconds, what=name)
    notes = []
    for page in read:
        if page.skipped:
            notes.append(f"page {page.index + 1}: {page.skipped}")
        pages[page.index] = [
            _Line(normalise(x.text), x.x0, x.x1, x.top, x.bottom, x.size, page.index)
            for x in page.lines if normalise(x.text)
        ]
        done["pages"] += 1
        done["turned"] += page.rotation != 0
        done["low-confidence"] += page.low_confidence
        done["noise"] += page.noise
    return done, notes


def _pdf_string(raw: bytes) -> str:
    if raw.startswith((b"\xfe\xff", b"\xff\xfe")):
        return raw.decode("utf-16", errors="replace")
    from pdfminer.utils import decode_text

    return str(decode_text(raw))
