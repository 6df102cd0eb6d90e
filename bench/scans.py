"""Scans made with real tools from real text, for tests/test_ocr.py and bench/bench_ocr.py.

    text_pdf(blocks, out)        a text PDF typeset by reportlab (STSong-Light, the Adobe CJK font
                                 every PDF reader substitutes; poppler draws it with Noto CJK)
    scan(pdf, out, dpi)          pdftoppm draws each page in grey at ``dpi``, img2pdf puts the images
                                 back into a PDF (no text layer), optionally a page turned sideways
    recall(reference, read)      character recall of ``reference`` in ``read``, whitespace ignored

Needs poppler-utils (pdftoppm; ``scripts/dev`` installs it), reportlab and img2pdf (the dev extra).
"""

from __future__ import annotations

import difflib
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def text_pdf(blocks: Sequence[tuple[str, str]], out: Path, *, size: float = 16, head: str = "",
             max_pages: int | None = None) -> Path:
    """Typeset ``(kind, text)`` blocks (kind ``title`` or ``paragraph``) as government documents
    are set: A4, ``size`` points (16 = 三号), paragraphs indented two characters, a running head and
    a ``- n -`` page number on every page. Returns ``out``."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    font = "STSong-Light"
    width, height = A4
    left, right, top, bottom = 80.0, 80.0, 90.0, 80.0
    per_line = int((width - left - right) // size)  # full-width characters on a line
    c = canvas.Canvas(str(out), pagesize=A4)
    c.setTitle("")
    page, y = 1, height - top

    def new_page() -> None:
        nonlocal page, y
        if head:
            c.setFont(font, 10.5)
            c.drawCentredString(width / 2, height - 50, head)
        c.setFont(font, 12)
        c.drawCentredString(width / 2, 45, f"- {page} -")
        c.showPage()
        page += 1
        y = height - top

    for kind, text in blocks:
        if max_pages and page > max_pages:
            break
        if kind == "title":
            c.setFont(font, size * 1.4)
            lines = [text[i : i + int(per_line / 1.4)] for i in range(0, len(text), int(per_line / 1.4))]
            for line in lines:
                if y < bottom:
                    new_page()
                c.setFont(font, size * 1.4)
                c.drawCentredString(width / 2, y, line)
                y -= size * 2.4
            continue
        for line in _wrap("\u3000\u3000" + text, font, size, width - left - right):
            if y < bottom:
                new_page()
            c.setFont(font, size)
            c.drawString(left, y, line)
            y -= size * 1.75
    if not (max_pages and page > max_pages):
        new_page()
    c.save()
    return out


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` (reportlab's own glyph widths)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, line = [], ""
    for ch in text:
        if line and stringWidth(line + ch, font, size) > width:
            lines.append(line)
            line = ""
        line += ch
    return [*lines, line] if line else lines


def scan(pdf: Path, out: Path, dpi: int, *, turn: Mapping[int, int] | None = None, jpeg: int = 0,
         first: int = 1, last: int = 0) -> Path:
    """``pdf`` drawn by pdftoppm at ``dpi`` in grey and put back into a PDF by img2pdf: a scan
    with no text layer. ``turn`` maps a 1-based page to the degrees its image is turned
    counter-clockwise (a page fed to the scanner sideways); ``jpeg`` > 0 stores the pages as JPEG
    of that quality, as most scanners do, else losslessly."""
    import img2pdf
    from PIL import Image

    turn = dict(turn or {})
    with tempfile.TemporaryDirectory() as tmp:
        args = ["pdftoppm", "-r", str(dpi), "-gray", "-png", "-f", str(first)]
        if last:
            args += ["-l", str(last)]
        subprocess.run([*args, str(pdf), f"{tmp}/p"], check=True, capture_output=True)
        images = []
        for n, png in enumerate(sorted(Path(tmp).glob("p-*.png"), key=lambda p: int(p.stem.split("-")[-1])),
                                start=first):
            image = Image.open(png).convert("L")
            if n in turn:
                image = image.rotate(turn[n], expand=True, fillcolor=255)
            path = Path(tmp) / f"s-{n:04d}.{'jpg' if jpeg else 'png'}"
            image.save(path, quality=jpeg) if jpeg else image.save(path)
            images.append(str(path))
        out.write_bytes(img2pdf.convert(images, layout_fun=img2pdf.get_fixed_dpi_layout_fun((dpi, dpi))))
    return out


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def recall(reference: str, read: str) -> float:
    """The share of ``reference``'s characters found, in order, in ``read`` (whitespace ignored):
    the matching blocks of difflib's alignment, which for near-identical texts is their longest
    common subsequence."""
    a, b = compact(reference), compact(read)
    if not a:
        return 1.0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return sum(m.size for m in matcher.get_matching_blocks()) / len(a)


def joined(texts: Iterable[str]) -> str:
    return "\n".join(texts)
