"""OCR quality and speed on scans of real speeches (README, "Scanned PDFs").

    python bench/bench_ocr.py [--dpi 150 300] [--workers N] [--pages 20] [PDF ...]

Each text PDF (default: the real speeches under ../shared/realdev/docs/pdf, the fixture speech.pdf
and a 20-page government work report typeset here from a real .docx) is drawn by pdftoppm at each
dpi and put back into a PDF by img2pdf (bench/scans.py). Both versions are read by
``read_document``; the table gives the character recall of the text layer's paragraphs in the
scan's, whether they came out as the same paragraphs on the same pages, and pages per second.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

from scans import recall, scan, text_pdf  # noqa: E402

from speechrag.formats import read_document  # noqa: E402
from speechrag.formats.ocr import OcrReader  # noqa: E402

# ../shared/realdev beside the repository (CI, the main checkout), or beside a worktree's parent
REALDEV = next((p / "shared" / "realdev" / "docs" for p in (ROOT.parent, ROOT.parent.parent)
                if (p / "shared" / "realdev" / "docs").is_dir()), ROOT.parent / "shared" / "realdev" / "docs")
# The IPD speech's text layer draws every glyph twice (fake bold; issue 23): not a reference.
SKIP = {"huawei_ren_19990417_ipd_mobilization.pdf"}


def sources(tmp: Path, pages: int) -> list[Path]:
    found = sorted(p for p in (REALDEV / "pdf").glob("*.pdf") if p.name not in SKIP)
    found.append(ROOT / "tests" / "fixtures" / "documents" / "speech.pdf")
    report = REALDEV / "docx" / "2025年海南省政府工作报告.docx"
    if report.exists() and pages:
        doc = read_document(report)
        blocks = [("title" if b.kind == "title" else "paragraph", b.text) for b in doc.blocks]
        found.append(text_pdf(blocks, tmp / "hainan_report.pdf", head="2025年海南省政府工作报告", max_pages=pages))
    return found


def _undouble(text: str) -> str:
    """A line whose every glyph the text layer draws twice (fake bold, issue 23) as printed."""
    return text[::2] if len(text) % 2 == 0 and text[::2] == text[1::2] else text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pdfs", nargs="*", type=Path)
    ap.add_argument("--dpi", nargs="+", type=int, default=[150, 300])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--pages", type=int, default=20, help="pages of the typeset work report (0: leave it out)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        pdfs = args.pdfs or sources(tmp, args.pages)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print("| dpi | file | pages | recall | same paragraphs | same pages | seconds | pages/s | CPU s/page |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for dpi in args.dpi:
            total_pages = total_seconds = 0.0
            hits = chars = 0.0
            with OcrReader(args.workers) as reader:
                for pdf in pdfs:
                    text = read_document(pdf)
                    scanned = scan(pdf, tmp / f"{pdf.stem}-{dpi}.pdf", dpi)
                    started, cpu = time.perf_counter(), reader.cpu
                    read = read_document(scanned, ocr=reader)
                    seconds, cpu = time.perf_counter() - started, reader.cpu - cpu
                    pages = dict(read.ocr).get("pages", 0)
                    ref = "\n".join(_undouble(b.text) for b in text.blocks)
                    r = recall(ref, "\n".join(b.text for b in read.blocks))
                    same = len(text.blocks) == len(read.blocks)
                    same_pages = [b.pages for b in text.blocks] == [b.pages for b in read.blocks]
                    n = len(ref)
                    hits += r * n
                    chars += n
                    total_pages += pages
                    total_seconds += seconds
                    print(f"| {dpi} | {pdf.name} | {pages} | {r:.3f} | {same} ({len(read.blocks)}/{len(text.blocks)})"
                          f" | {same_pages} | {seconds:.1f} | {pages / seconds:.2f} | {cpu / max(1, pages):.1f} |",
                          flush=True)
            print(f"| {dpi} | **all** | {total_pages:.0f} | **{hits / chars:.3f}** | | | {total_seconds:.1f} | "
                  f"**{total_pages / total_seconds:.2f}** | {reader.cpu / max(1, total_pages):.1f} |", flush=True)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
