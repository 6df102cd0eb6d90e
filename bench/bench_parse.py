"""Parse throughput: read_document + parse_header over a folder of mixed speech documents.

    python bench/bench_parse.py [--docs 300] [--folder DIR] [--keep]

Makes ``--docs`` documents (default 300) in a temporary folder: docx (some with the speech in
nested tables, as web pastes are), HTML pages (UTF-8 and GBK) with site chrome, text and markdown
(UTF-8 and GBK/CRLF), each with a header and 6-40 paragraphs drawn at random from
corpus/speeches-jisheng.md, plus copies of the PDF and .doc fixtures (LibreOffice is not needed
here). Then reads every file once and prints MB of extracted text per second (UTF-8), seconds per
format and peak RSS. The goal for the whole ingestion is >= 1 MB/s of text.

Measured (300 files, 3.77 MB of text, 2 shared cores under load 2-3.6): 0.6-0.86 MB/s overall,
peak RSS 83 MB. PDF dominates: 20% of the files, 6% of the text, 60-75% of the time (~55 ms for
a 3-page file, 0.06-0.08 MB/s), almost all of it pdfminer.six tokenizing content streams and
reading the embedded CJK font's CMap in pure Python. docx (4.5-5.7 MB/s), text (7-12 MB/s) and
HTML (~2 MB/s, trafilatura) are well above the goal; .doc pays one antiword process per file.
"""

from __future__ import annotations

import argparse
import html
import random
import resource
import shutil
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from speechrag.formats import DocumentError, read_document  # noqa: E402
from speechrag.header import parse_header  # noqa: E402

DOCS = ROOT / "tests" / "fixtures" / "documents"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
PLACES = ["青山区", "洛阳市", "商丘市", "海淀区", "河南省", "仙桃市", "江宁区"]
NAMES = ["李建国", "王晓东", "赵文华", "刘宏", "孙丽", "张明", "周建华"]


def _pool() -> list[str]:
    """Sentences of the shipped corpus: paragraphs are recombined from them, so documents are
    alike in style but not near-duplicates of each other (as a real folder of speeches is)."""
    from speechrag.text import split_sentences

    text = (ROOT / "corpus" / "speeches-jisheng.md").read_text("utf-8")
    lines = [line.strip() for line in text.splitlines() if len(line.strip()) > 40 and not line.startswith("#")]
    return [s for line in lines for s in split_sentences(line) if len(s) > 8]


def _paragraph(rng: random.Random, pool: list[str]) -> str:
    return "".join(rng.sample(pool, rng.randint(2, 6)))


def _speech(rng: random.Random, pool: list[str]) -> list[str]:
    place, name = rng.choice(PLACES), rng.choice(NAMES)
    y, m, d = rng.randint(2010, 2024), rng.randint(1, 12), rng.randint(1, 28)
    header = [
        f"在{place}第{rng.randint(1, 30)}次经济工作会议上的讲话",
        f"（{y}年{m}月{d}日）",
        f"{place}人民政府{place[-1]}长　{name}",
        "同志们：",
    ]
    body = []
    for n in range(rng.randint(6, 40)):
        if n % 6 == 0:
            body.append("一二三四五六七八九十"[min(n // 6, 9)] + "、" + rng.choice(pool)[:18].rstrip("。，；！？"))
        body.append(_paragraph(rng, pool))
    return header + body


def _docx(lines: list[str], nested: bool) -> bytes:
    paras = "".join(f"<w:p><w:r><w:t>{escape(line)}</w:t></w:r></w:p>" for line in lines)
    if nested:
        paras = f"<w:tbl><w:tr><w:tc><w:tbl><w:tr><w:tc>{paras}</w:tc></w:tr></w:tbl><w:p/></w:tc></w:tr></w:tbl><w:p/>"
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", f'<w:document xmlns:w="{W}"><w:body>{paras}</w:body></w:document>')
    return buf.getvalue()


def _html(lines: list[str]) -> str:
    chrome = (DOCS / "page.html").read_text("utf-8")
    start, end = chrome.index('<p class="info">'), chrome.index('<p class="qr">')
    body = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines[1:])
    page = chrome[:start] + body + "\n" + chrome[end:]
    return page.replace("仙桃市委书记刘强在全市优化营商环境大会上的讲话", html.escape(lines[0]))


def make_folder(folder: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    pool = _pool()
    for i in range(n):
        kind = i % 10
        lines = _speech(rng, pool)
        if kind in (0, 1, 2):
            (folder / f"{i:04d}.docx").write_bytes(_docx(lines, nested=kind == 0))
        elif kind in (3, 4):
            page = _html(lines)
            if kind == 4:
                (folder / f"{i:04d}.html").write_bytes(
                    page.replace('charset="utf-8"', 'charset="gbk"').encode("gbk", "replace")
                )
            else:
                (folder / f"{i:04d}.html").write_text(page, encoding="utf-8")
        elif kind == 5:
            (folder / f"{i:04d}.txt").write_bytes("\r\n".join(lines).encode("gbk", "replace"))
        elif kind == 6:
            (folder / f"{i:04d}.md").write_text("# " + "\n\n".join(lines), encoding="utf-8")
        elif kind in (7, 8):
            shutil.copy(DOCS / "speech.pdf", folder / f"{i:04d}.pdf")
        else:
            shutil.copy(
                DOCS / ("old-speech.doc" if shutil.which("antiword") else "speech.pdf"), folder / f"{i:04d}.doc"
            )


def big_text(folder: Path, megabytes: float, seed: int = 2) -> Path:
    """One long text file of many speeches (a 20 MB export is the case the issue measured)."""
    rng = random.Random(seed)
    pool = _pool()
    path = folder / "big.txt"
    with path.open("w", encoding="utf-8") as out:
        written = 0
        while written < megabytes * 1e6:
            lines = _speech(rng, pool)
            text = "## " + lines[0] + "\n\n" + "\n\n".join(lines[1:]) + "\n\n"
            out.write(text)
            written += len(text.encode("utf-8"))
    return path


def whole_pipeline(folder: Path) -> None:
    """read_corpus: loading, header, cleaning, structure, twins, passages: what a build parses."""
    from speechrag.corpus import read_corpus

    started = time.perf_counter()
    report = read_corpus(folder)
    elapsed = time.perf_counter() - started
    mb = sum(len(p.text.encode("utf-8")) for p in report.passages) / 1e6
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"read_corpus({folder.name}): {len(report.speeches)} speeches, {len(report.passages)} passages, "
          f"{mb:.2f} MB of passage text, {len(report.skipped)} skipped in {elapsed:.2f} s = {mb / elapsed:.2f} MB/s; "
          f"peak RSS {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--folder", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--big-text", type=float, default=0, metavar="MB",
                    help="instead: one text file of this many MB through read_corpus")
    args = ap.parse_args()
    if args.big_text:
        with tempfile.TemporaryDirectory() as tmp:
            big_text(Path(tmp), args.big_text)
            whole_pipeline(Path(tmp))
        return
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench-parse-"))
    folder.mkdir(parents=True, exist_ok=True)
    make_folder(folder, args.docs)
    files = sorted(folder.iterdir())
    chars = 0
    text_bytes = 0
    by_format: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # seconds, files, MB
    skipped = 0
    started = time.perf_counter()
    for file in files:
        t0 = time.perf_counter()
        try:
            doc = read_document(file)
        except DocumentError as exc:
            skipped += 1
            print(f"skipped {file.name}: {exc}")
            continue
        parse_header(doc.lines, title_hint=doc.title, filename=file.name)
        size = sum(len(b.text.encode("utf-8")) for b in doc.blocks)
        chars += sum(len(b.text) for b in doc.blocks)
        text_bytes += size
        stats = by_format[doc.format]
        stats[0] += time.perf_counter() - t0
        stats[1] += 1
        stats[2] += size / 1e6
    elapsed = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(files)} files ({skipped} skipped), {chars:,} characters, {text_bytes / 1e6:.2f} MB of text (UTF-8)")
    rate = text_bytes / 1e6 / elapsed
    print(f"{elapsed:.2f} s: {rate:.2f} MB/s, {len(files) / elapsed:.0f} files/s; peak RSS {rss:.0f} MB")
    for fmt, (secs, count, mb) in sorted(by_format.items(), key=lambda kv: -kv[1][0]):
        print(
            f"  {fmt:5} {int(count):4} files  {secs:6.2f} s  {secs / count * 1000:6.1f} ms/file  {mb / secs:6.2f} MB/s"
        )
    whole_pipeline(folder)
    if not args.keep and args.folder is None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
