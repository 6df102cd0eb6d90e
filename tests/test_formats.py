"""speechrag.formats: every loader on its committed fixture (exact blocks), sniffing, the
docx/HTML/PDF rules on small hand-made inputs, and every hostile file refused with its reason
within a time bound. Fixtures: tests/fixtures/documents/, made by scripts/make_fixtures.py."""

from __future__ import annotations

import io
import shutil
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from speechrag.boilerplate import boilerplate_rules
from speechrag.formats import (
    SUFFIXES,
    Block,
    Document,
    DocumentError,
    Limits,
    clean_title,
    pdf,
    read_document,
    sniff,
    split_soft_breaks,
)
from speechrag.formats.html import decode_html
from speechrag.text import normalise

DOCS = Path(__file__).parent / "fixtures" / "documents"
# Hostile files must be refused quickly: each takes < 0.1 s here; the bound only catches hangs.
HANG_BOUND_S = 10.0

needs_antiword = pytest.mark.skipif(
    not (shutil.which("antiword") or shutil.which("catdoc")),
    reason="apt-get install antiword (bash scripts/dev test does)",
)


def read(name: str) -> Document:
    return read_document(DOCS / name)


def texts(doc: Document) -> list[str]:
    return [b.text for b in doc.blocks]


def test_suffixes_cover_every_format() -> None:
    assert SUFFIXES == (".docx", ".doc", ".pdf", ".html", ".htm", ".txt", ".md")


# --- fixtures, exactly ------------------------------------------------------------------------


def test_docx_nested_tables_body_empty() -> None:
    doc = read("report-nested-tables.docx")
    assert doc.format == "docx"
    # core properties title "青山区政府工作报告 - 青山区人民政府门户网站", site name removed
    assert doc.title == "青山区政府工作报告"
    assert len(doc.blocks) == 15
    assert texts(doc)[:4] == [
        "政府工作报告",
        "——2017年2月11日在青山区第十八届人民代表大会第一次会议上",
        "青山区人民政府区长李建国",
        "各位代表：",
    ]
    assert "一、2016年工作回顾" in texts(doc) and "二、2017年主要任务" in texts(doc)
    assert (
        texts(doc)[-1]
        == "各位代表，新的一年，我们将在区委的坚强领导下，凝心聚力，真抓实干，为建设现代化滨江新城区而努力奋斗！"
    )
    assert all(b.kind == "paragraph" for b in doc.blocks)  # no styles in a web paste


def test_docx_headings_title_and_text_box_in_order() -> None:
    doc = read("speech-headings.docx")
    assert doc.title == "在全市农村饮水安全工作会议上的讲话"  # Title style; core title is a file name
    assert doc.blocks[0] == Block("在全市农村饮水安全工作会议上的讲话", "title")
    assert [(b.text, b.level) for b in doc.blocks if b.kind == "heading"] == [
        ("一、充分认识农村饮水安全工作的重要性", 1),
        ("二、突出抓好工程建设和运行管护", 1),
        ("三、加强组织领导，确保各项任务落到实处", 1),
    ]
    t = texts(doc)
    # the text box follows its anchor paragraph, once (the mc:Fallback VML copy is skipped)
    anchor = t.index("下面是去年的完成情况。")
    assert t[anchor + 1 : anchor + 3] == [
        "专栏：2017年农村饮水安全工程完成情况",
        "全年完成投资4.2亿元，新建水厂21座，受益人口46万人。",
    ]
    assert t.count("全年完成投资4.2亿元，新建水厂21座，受益人口46万人。") == 1
    # the repeated salutation stays a paragraph of its own, in place
    assert t.count("同志们、朋友们！") == 2
    assert t[t.index("二、突出抓好工程建设和运行管护") + 1] == "同志们、朋友们！"
    assert t[-1] == "让我们以更加扎实的作风，把这项惠及百万群众的民生工程办好！"
    assert len(doc.blocks) == 19


@needs_antiword
def test_doc_through_antiword() -> None:
    doc = read("old-speech.doc")
    assert doc.format == "doc"
    assert len(doc.blocks) == 11
    assert texts(doc)[:3] == ["张明同志在全县教育工作会议上的讲话", "（二〇一五年九月八日）", "同志们："]
    assert texts(doc)[-1] == "同志们，教育是民族振兴、社会进步的基石，让我们共同努力，把全县教育事业推向新的高度！"


@pytest.mark.skipif(not shutil.which("catdoc"), reason="apt-get install catdoc")
def test_doc_through_catdoc_when_antiword_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr("speechrag.formats.doc.shutil.which", lambda name: None if name == "antiword" else real(name))
    assert texts(read("old-speech.doc"))[:3] == [
        "张明同志在全县教育工作会议上的讲话",
        "（二〇一五年九月八日）",
        "同志们：",
    ]


@needs_antiword
def test_ole2_that_is_not_word(tmp_path: Path) -> None:
    path = tmp_path / "sheet.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 20)
    started = time.perf_counter()
    with pytest.raises(DocumentError, match=r"^not a Word document|cannot read it"):
        read_document(path)
    assert time.perf_counter() - started < HANG_BOUND_S


def test_password_protected_docx_is_named(tmp_path: Path) -> None:
    path = tmp_path / "secret.docx"  # an OLE2 container with an EncryptedPackage stream
    path.write_bytes(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "EncryptedPackage".encode("utf-16-le") + bytes(500)
    )
    with pytest.raises(DocumentError, match=r"^encrypted Word document"):
        read_document(path)


def test_mht_saved_by_word_as_doc(tmp_path: Path) -> None:
    page = (DOCS / "page-gbk.html").read_bytes()
    import base64

    mht = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="----=_NextPart_01"\r\n\r\n'
        b'------=_NextPart_01\r\nContent-Type: text/html; charset="gb2312"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(page) + b"\r\n------=_NextPart_01--\r\n"
    )
    path = tmp_path / "speech.doc"
    path.write_bytes(mht)
    doc = read_document(path)
    assert doc.format == "mht"
    assert doc.title == "在全区安全生产工作会议上的讲话"
    assert texts(doc) == texts(read("page-gbk.html"))


def test_doc_without_antiword_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("speechrag.formats.doc.shutil.which", lambda name: None)
    with pytest.raises(DocumentError, match=r"^antiword/catdoc not installed: apt-get install antiword$"):
        read("old-speech.doc")


def test_pdf_running_heads_page_numbers_and_page_end_rejoin() -> None:
    doc = read("speech.pdf")
    assert doc.format == "pdf"
    t = texts(doc)
    assert len(t) == 22
    assert t[:4] == ["在全省文化惠民工程推进会上的讲话", "2019年6月12日", "河南省文化和旅游厅厅长赵文华", "同志们："]
    # three running heads and three "- n -" footers dropped, none left anywhere
    assert dict(doc.dropped) == {"running-head": 3, "page-number": 3}
    assert not any("推进会材料" in x or x.startswith("-") for x in t)
    # the quotes LibreOffice sets in a Latin font are back in place, and no CJK spaces
    assert (
        "曾经指出：“文艺工作，是党和人民事业的重要组成部分，在党和人民事业发展中具有十分重要的地位。”面对全面" in t[8]
    )
    assert "“端菜”与“点菜”" in t[14]
    assert all(" " not in x for x in t)
    # two paragraphs run over a page end (pages 1-2 and 2-3); each comes back whole
    assert t[10] == (
        "第二，满足人民群众不断增长的精神文化需求，必然要求我们做好文艺工作。当前，我省部分地区的文化设施"
        "还相对落后，文化产品也比较单一，还不能满足人民群众多层次、多方面、多样化的精神文化需求，需要我们"
        "创作出更多群众喜闻乐见的优秀作品。"
    )
    assert t[20] == (
        "要加强文化遗产保护利用，做好黄河文化、中原文化的挖掘阐释，推动优秀传统文化创造性转化、创新性发展，"
        "打造一批具有河南特色的文化品牌，讲好中原故事，传播中原声音，展示中原形象。"
    )
    assert t[17] == (
        "要推广“文化超市”点单模式，由群众自主选择文化服务项目，年内在全省所有县区推开，"
        "让群众从“被动接受”变为“主动点单”。"
    )
    headings = [x for x in t if x[:2] in ("一、", "二、", "三、")]
    assert headings == [
        "一、文化惠民工程取得明显成效",
        "二、准确把握当前工作中存在的问题",
        "三、扎实推进下一阶段重点工作",
    ]
    assert all(x[-1] in "。！？：" for x in t[3:] if x not in headings), t
    assert t[-1] == (
        "同志们，做好文化惠民工作，使命光荣，责任重大。"
        "让我们以更加饱满的热情、更加务实的作风，推动全省文化惠民工程再上新台阶！"
    )


def _line(text: str, page: int, top: float, x0: float = 90, x1: float = 522, size: float = 16) -> pdf._Line:
    return pdf._Line(text, x0, x1, top, top + size, size, page)


def test_pdf_running_lines_need_half_the_pages_and_no_sentence_end() -> None:
    pages = [
        [
            _line("某某会议材料", p, 50),
            _line("同志们、朋友们！", p, 100, x0=122, x1=260),
            _line(f"第 {p + 1} 页", p, 800),
        ]
        for p in range(4)
    ]
    pages[2][2:2] = [_line("12", 2, 400), _line("正文。", 2, 500)]  # a number mid-page is text
    dropped: Counter[str] = Counter()
    kept = pdf._drop_running(pages, dropped)
    assert [[x.text for x in p] for p in kept] == [["同志们、朋友们！"]] * 2 + [
        ["同志们、朋友们！", "12", "正文。"]
    ] + [["同志们、朋友们！"]]
    assert dropped == {"running-head": 4, "page-number": 4}
    # on a single page nothing repeats, so only the page-number pattern applies
    single: Counter[str] = Counter()
    assert [x.text for x in pdf._drop_running([pages[0][:]], single)[0]] == ["某某会议材料", "同志们、朋友们！"]


def test_pdf_kangxi_radicals_become_ideographs() -> None:
    assert normalise("⼈⺠⽣活") == "人⺠生活"  # U+2E8C (radicals supplement) has no NFKC form
    assert normalise("⽇⽉") == "日月"


def test_pdf_paragraphs_from_geometry() -> None:
    lines = [
        _line("在全市会议上的讲话", 0, 60, x0=200, x1=400, size=22),  # larger, centred: the title
        _line("同志们：", 0, 120, x0=122, x1=186),
        _line("第一段从缩进开始，一直写到右边", 0, 150, x0=122),
        _line("界，然后在这一行的中间结束。", 0, 180, x1=300),
        _line("第二段没有缩进但上一行很短，", 0, 210),
        _line("所以它另起一段。", 0, 240, x1=250),
        _line("第三段写到页面底部的右边界", 0, 270, x0=122),
        _line("还没有结束，", 1, 60),  # page 2: not indented, so it continues the paragraph
        _line("在下一页才写完。", 1, 90, x1=250),
    ]
    blocks = pdf._paragraphs([[x for x in lines if x.page == 0], [x for x in lines if x.page == 1]])
    assert blocks == [
        Block("在全市会议上的讲话", "title", pages=((0, 1),)),
        Block("同志们：", "paragraph", pages=((0, 1),)),
        Block("第一段从缩进开始，一直写到右边界，然后在这一行的中间结束。", "paragraph", pages=((0, 1),)),
        Block("第二段没有缩进但上一行很短，所以它另起一段。", "paragraph", pages=((0, 1),)),
        # the page mark says where page 2 starts in the paragraph: at 还没有结束
        Block("第三段写到页面底部的右边界还没有结束，在下一页才写完。", "paragraph", pages=((0, 1), (13, 2))),
    ]


CHROME = (
    "版权所有",
    "ICP",
    "点击数",
    "字号",
    "打印",
    "关闭窗口",
    "扫一扫",
    "上一篇",
    "下一篇",
    "推荐阅读",
    "首页",
    "责任编辑",
)


def test_html_page_main_text_without_chrome() -> None:
    doc = read("page.html")
    assert doc.format == "html"
    assert doc.title == "仙桃市委书记刘强在全市优化营商环境大会上的讲话"
    assert doc.blocks[0] == Block(doc.title, "title")
    t = texts(doc)
    assert t[1:3] == ["2019-03-05 08:12 来源：仙桃日报", "同志们："]
    assert t[-1] == "同志们，营商环境就是生产力，让我们以“等不起”的紧迫感，推动仙桃高质量发展迈出新步伐！"
    assert len(t) == 10
    assert not [x for x in t if any(c in x for c in CHROME)]
    assert dict(doc.dropped) == {
        "editor-credit": 1,
        "navigation": 2,
        "page-meta": 1,
        "qr-code": 1,
        "related-heading": 1,
    }


def test_html_gbk_page() -> None:
    doc = read("page-gbk.html")
    assert doc.title == "在全区安全生产工作会议上的讲话"
    t = texts(doc)
    assert t[1:4] == ["（2020年1月6日）", "海淀区副区长孙丽", "同志们："]
    assert t[-1] == "同志们，安全生产责任重于泰山，各单位要坚决守住安全底线！"
    assert not [x for x in t if any(c in x for c in CHROME)]


def test_text_gbk_crlf() -> None:
    doc = read("report-gbk-crlf.txt")
    assert doc.format == "txt"
    t = texts(doc)
    assert len(t) == 11
    assert t[:4] == [
        "政府工作报告",
        "二〇一八年一月九日在洛阳市第十五届人民代表大会第三次会议上",
        "洛阳市人民政府市长刘宏",
        "各位代表：",
    ]
    assert not any("\r" in x for x in t)


# --- hostile files ---------------------------------------------------------------------------

HOSTILE = [
    ("bomb.docx", r"^docx expands to over 200 MB \(zip bomb\?\)$"),
    ("empty.docx", r"^no text in this docx file$"),
    # scanned.pdf (grey blocks, no text layer) is read by OCR: tests/test_ocr.py
    ("encrypted.pdf", r"^encrypted PDF$"),
    ("broken.pdf", r"^damaged PDF \("),
    ("cyclic.pdf", r"^damaged PDF \("),
    ("pages-10000.pdf", r"^PDF has 10,000 pages, over the 2,000-page limit$"),
    ("fake.pdf", r"^binary file, not text \(an executable \(ELF\) named \.pdf\)$"),
    ("binary.txt", r"^binary file, not text$"),
]


@pytest.mark.parametrize(("name", "reason"), HOSTILE)
def test_hostile_file_is_refused_with_its_reason(name: str, reason: str) -> None:
    started = time.perf_counter()
    with pytest.raises(DocumentError, match=reason):
        read(name)
    assert time.perf_counter() - started < HANG_BOUND_S


def test_pdf_whose_page_count_lies(tmp_path: Path) -> None:
    """/Count 1 over a tree that repeats one page 10,000 times: pdfminer walks each page object
    once, so this reads one page quickly instead of walking 10,000."""
    path = tmp_path / "lie.pdf"
    path.write_bytes((DOCS / "pages-10000.pdf").read_bytes().replace(b"/Count 10000", b"/Count 00001"))
    started = time.perf_counter()
    assert texts(read_document(path)) == ["page"]
    assert time.perf_counter() - started < HANG_BOUND_S


def _raw_pdf(objects: list[bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % off for off in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def test_pdf_fonts_without_unicode_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CID font with Identity encoding and no ToUnicode: pdfminer yields (cid:N) codes."""
    stream = b"BT /F1 12 Tf 72 720 Td <" + b"".join(b"%04X" % i for i in range(1, 40)) + b"> Tj ET"
    path = tmp_path / "cid.pdf"
    path.write_bytes(
        _raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
                b" /Resources << /Font << /F1 5 0 R >> >> >>",
                b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
                b"<< /Type /Font /Subtype /Type0 /BaseFont /SimSun /Encoding /Identity-H /DescendantFonts [6 0 R] >>",
                b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimSun /DW 1000"
                b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>",
            ]
        )
    )
    # Without the ocr extra it is refused naming the extra; with it, the page goes to OCR
    # (tests/test_ocr.py: test_pages_without_usable_text_go_to_ocr).
    monkeypatch.setattr("speechrag.formats.ocr.missing", lambda: "OCR needs the ocr extra (pip install x)")
    with pytest.raises(DocumentError, match=r"^no usable text layer \(fonts without a Unicode map\): OCR needs"):
        read_document(path)


def test_hostile_fixtures_stay_small() -> None:
    # the bomb is 300 MB uncompressed but must stay tiny in git
    assert (DOCS / "bomb.docx").stat().st_size < 4096
    with zipfile.ZipFile(DOCS / "bomb.docx") as zf:
        assert zf.getinfo("word/document.xml").file_size > 200 * 1024 * 1024


def test_file_size_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes("讲话".encode() * 1000)
    with pytest.raises(DocumentError, match="over the 0 MB limit"):
        read_document(big, max_bytes=1000)


def test_unzipped_cap_is_checked_before_reading(tmp_path: Path) -> None:
    body = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    body += b"<w:p><w:r><w:t>" + "很长的文字".encode() * 50_000 + b"</w:t></w:r></w:p></w:body></w:document>"
    path = _docx(tmp_path, body)
    with pytest.raises(DocumentError, match=r"^docx expands to over 0 MB \(zip bomb\?\)$"):
        read_document(path, limits=Limits(max_unzipped=100_000))


def test_zip_that_lies_about_its_size(tmp_path: Path) -> None:
    """Headers that declare 1,000 bytes for a 750 KB member: reading stops at the declared size
    (zipfile), so the bomb check cannot be dodged; the cut-off XML is reported as damage."""
    body = _body("<w:p><w:r><w:t>" + "很长的文字" * 50_000 + "</w:t></w:r></w:p>")
    path = _docx(tmp_path, body)
    data = bytearray(path.read_bytes())
    size = len(body).to_bytes(4, "little")
    assert data.count(size) == 2  # the local header and the central directory entry
    data[:] = data.replace(size, (1000).to_bytes(4, "little"))
    path.write_bytes(bytes(data))
    with pytest.raises(DocumentError, match=r"^damaged docx"):
        read_document(path)


def test_time_bound_is_enforced_between_pages() -> None:
    with pytest.raises(DocumentError, match=r"^took over 0 s"):
        read_document(DOCS / "speech.pdf", limits=Limits(seconds=0))


# --- sniffing: content decides, the suffix only hints ----------------------------------------


def test_content_not_suffix_picks_the_loader(tmp_path: Path) -> None:
    renamed = tmp_path / "report.doc"  # a docx saved with the old suffix
    renamed.write_bytes((DOCS / "report-nested-tables.docx").read_bytes())
    assert read_document(renamed).format == "docx"
    page_as_txt = tmp_path / "saved.txt"
    page_as_txt.write_bytes((DOCS / "page.html").read_bytes())
    assert read_document(page_as_txt).format == "html"
    pdf_as_txt = tmp_path / "x.txt"
    pdf_as_txt.write_bytes((DOCS / "speech.pdf").read_bytes())
    assert read_document(pdf_as_txt).format == "pdf"


@pytest.mark.parametrize(
    ("head", "suffix", "kind"),
    [
        (b"PK\x03\x04rest", ".docx", "docx"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", ".txt", "doc"),
        (b"junk\n%PDF-1.7", ".bin", "pdf"),
        (b"\xef\xbb\xbf<!DOCTYPE html><html>", ".txt", "html"),
        (b"<p>hand-written fragment</p>", ".htm", "html"),
        ("# 标题\n正文".encode(), ".md", "text"),
        ("正文里提到<html>标签".encode(), ".txt", "text"),
    ],
)
def test_sniff(head: bytes, suffix: str, kind: str) -> None:
    assert sniff(head, suffix) == kind


def test_sniff_refuses_rtf_and_images() -> None:
    with pytest.raises(DocumentError, match="RTF"):
        sniff(b"{\\rtf1\\ansi", ".doc")
    with pytest.raises(DocumentError, match=r"binary file, not text \(a PNG image named \.docx\)"):
        sniff(b"\x89PNG\r\n", ".docx")


def test_odt_and_xlsx_zip_are_named(tmp_path: Path) -> None:
    for member, reason in (("content.xml", "OpenDocument"), ("xl/workbook.xml", "spreadsheet")):
        path = tmp_path / "x.docx"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(member, "<x/>")
        with pytest.raises(DocumentError, match=reason):
            read_document(path)


def test_markdown_headings(tmp_path: Path) -> None:
    path = tmp_path / "s.md"
    path.write_text("# 在全市会议上的讲话\r\n\r\n## 一、总体要求\r\n同志们：\r\n", encoding="utf-8")
    doc = read_document(path)
    assert doc.format == "md" and doc.title == "在全市会议上的讲话"
    assert doc.blocks == (
        Block("在全市会议上的讲话", "title", line=1),
        Block("一、总体要求", "heading", 2, line=3),
        Block("同志们：", "paragraph", line=4),
    )


# --- docx details on hand-made XML -------------------------------------------------------------

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _docx(tmp_path: Path, document: bytes, styles: bytes | None = None) -> Path:
    path = tmp_path / "t.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", document)
        if styles is not None:
            zf.writestr("word/styles.xml", styles)
    return path


def _body(inner: str) -> bytes:
    return (
        f'<w:document xmlns:w="{W}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        f"<w:body>{inner}</w:body></w:document>"
    ).encode()


def _p(text: str, style: str = "") -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{ppr}<w:r><w:t>{text}</w:t></w:r></w:p>"


def test_docx_soft_breaks_split_only_between_paragraphs(tmp_path: Path) -> None:
    runs = (
        "<w:p><w:r><w:t>第一段说完了。</w:t><w:br/><w:t>第二段开始，这一行</w:t><w:br/>"
        "<w:t>被手工折行了。</w:t><w:br/><w:t>二、下一部分</w:t><w:tab/><w:t>标题</w:t></w:r></w:p>"
    )
    doc = read_document(_docx(tmp_path, _body(runs)))
    assert texts(doc) == ["第一段说完了。", "第二段开始，这一行被手工折行了。", "二、下一部分标题"]


def test_docx_chinese_style_ids_outline_levels_and_content_controls(tmp_path: Path) -> None:
    styles = (
        f'<w:styles xmlns:w="{W}">'
        '<w:style w:styleId="1"><w:name w:val="heading 1"/></w:style>'
        '<w:style w:styleId="a3"><w:name w:val="标题"/></w:style>'
        '<w:style w:styleId="ZDY"><w:name w:val="自定义"/><w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style>'
        "</w:styles>"
    ).encode()
    body = _body(
        _p("讲话题目", "a3")
        + _p("一、第一部分", "1")
        + _p("（一）小节", "ZDY")
        + "<w:sdt><w:sdtContent>"
        + _p("控件里的段落。")
        + "</w:sdtContent></w:sdt>"
        + "<w:p><w:r><w:t>删掉的</w:t></w:r><w:del><w:r><w:delText>不该出现</w:delText></w:r></w:del></w:p>"
    )
    doc = read_document(_docx(tmp_path, body, styles))
    assert doc.blocks == (
        Block("讲话题目", "title"),
        Block("一、第一部分", "heading", 1),
        Block("（一）小节", "heading", 2),
        Block("控件里的段落。", "paragraph"),
        Block("删掉的", "paragraph"),
    )
    assert doc.title == "讲话题目"


def test_docx_with_a_dtd_is_refused(tmp_path: Path) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "AAAAAAAAAA">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        + _body("<w:p><w:r><w:t>&c;正文。</w:t></w:r></w:p>")
    )
    with pytest.raises(DocumentError, match=r"declares a DTD \(entity expansion attack\?\)"):
        read_document(_docx(tmp_path, laughs))


@pytest.mark.parametrize(("depth", "ok"), [(60, True), (400, False)])
def test_docx_deeply_nested_tables(tmp_path: Path, depth: int, ok: bool) -> None:
    inner = _p("最里层的讲话正文。")
    for _ in range(depth):
        inner = f"<w:tbl><w:tr><w:tc>{inner}</w:tc></w:tr></w:tbl>"
    path = _docx(tmp_path, _body(inner))
    started = time.perf_counter()
    if ok:
        assert texts(read_document(path)) == ["最里层的讲话正文。"]
    else:  # libxml2 refuses XML deeper than 256 elements: reported as damage, never a crash
        with pytest.raises(DocumentError, match=r"^damaged docx"):
            read_document(path)
    assert time.perf_counter() - started < HANG_BOUND_S


def test_split_soft_breaks_keeps_quotes_with_their_sentence() -> None:
    assert list(split_soft_breaks("他说：“要抓落实。\n”大家都赞同。")) == ["他说：“要抓落实。”大家都赞同。"]
    assert list(split_soft_breaks("English words\nwrapped here")) == ["English words wrapped here"]
    assert list(split_soft_breaks("同志们：\n今天开会。")) == ["同志们：", "今天开会。"]


# --- HTML details ---------------------------------------------------------------------------


def test_decode_html_charsets() -> None:
    text = "讲话全文"
    assert decode_html(b'<meta charset="gb2312">' + text.encode("gbk")).endswith(text)
    assert decode_html(b"<html>" + text.encode("gb18030")).endswith(text)  # no meta: UTF-8 fails, GB18030
    assert decode_html(b'<meta charset="utf-8">' + text.encode()).endswith(text)
    assert decode_html(b"\xef\xbb\xbf<meta charset=gbk>" + text.encode()).endswith(text)  # BOM wins


@pytest.mark.parametrize(
    "line",
    [
        "【字号 大 中 小】【我要打印】【关闭窗口】",
        "[打印本页] [关闭窗口]",
        "字号：大 中 小 | 打印 | 关闭",
        "扫一扫在手机打开当前页",
        "发布时间：2019-03-05 09:30 来源：仙桃日报点击数：2381",
        "来源：海淀区应急管理局 浏览次数：87",
        "推荐阅读",
        "推荐阅读：",
        "上一篇：全市春季植树造林工作现场会召开",
        "下一篇：市政府召开第十二次常务会议",
        "责任编辑：张华",
        "当前位置：首页 > 新闻中心 > 领导讲话",
        "版权所有：仙桃市人民政府网 主办单位：仙桃市人民政府办公室",
        "网站标识码：4290040001 鄂ICP备05003262号",
        "返回顶部",
    ],
)
def test_site_chrome_is_matched_by_a_boilerplate_rule(line: str) -> None:
    assert any(rule.matches(line) for rule in boilerplate_rules()), line


@pytest.mark.parametrize(
    "line",
    [
        "2019-03-05 08:12 来源：仙桃日报",  # the speech's own date line: parse_header reads it
        "（2020年1月6日）",
        "同志们，我们要切实保护知识产权，维护版权所有者的合法权益。",
        "今年网站点击数大幅增长，说明政务公开工作取得了实效。",
        "要推广“文化超市”点单模式，由群众自主选择文化服务项目。",
        "一、清醒认识营商环境存在的差距",
    ],
)
def test_speech_lines_are_not_chrome(line: str) -> None:
    assert not [rule.name for rule in boilerplate_rules() if rule.matches(line)]


def test_clean_title() -> None:
    assert clean_title("政府工作报告_青山区人民政府网") == "政府工作报告"
    assert clean_title("仙桃市人民政府网 - 在全市会议上的讲话", "仙桃市人民政府网") == "在全市会议上的讲话"
    assert clean_title("Microsoft Word - 讲话稿.doc") == ""
    assert clean_title("在全市经济工作会议上的讲话") == "在全市经济工作会议上的讲话"


OLD_TABLE_PAGE = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>在全县春耕生产工作会议上的讲话--XX县人民政府</title></head>
<body><table width="100%"><tr><td><a href="/">首页</a> | <a href="/a">政务公开</a> | <a href="/b">领导之窗</a></td></tr>
<tr><td><table><tr><td width="200"><a href="/x">领导讲话</a><br><a href="/y">工作动态</a></td>
<td><table><tr><td align="center"><b>在全县春耕生产工作会议上的讲话</b></td></tr>
<tr><td align="center">发布日期：2016-03-12 浏览次数：356</td></tr>
<tr><td>　　同志们：<br>　　今天召开全县春耕生产工作会议，主要任务是安排部署今年春耕生产工作。<br>
　　一、认清形势，增强做好春耕生产的责任感<br>　　今年全县粮食播种面积要稳定在80万亩以上，确保粮食总产达到35万吨。<br>
　　同志们，春耕生产时间紧、任务重，各级各部门要迅速行动起来！</td></tr></table></td></tr></table></td></tr>
<tr><td>版权所有：XX县人民政府 技术支持：XX网络公司</td></tr></table></body></html>"""


def test_html_old_table_layout_gbk_page(tmp_path: Path) -> None:
    """A government page of the 2000s: GB2312 label, layout tables, <br> between paragraphs,
    menus in the same table as the article."""
    path = tmp_path / "old.htm"
    path.write_bytes(OLD_TABLE_PAGE.encode("gbk"))
    doc = read_document(path)
    assert doc.title == "在全县春耕生产工作会议上的讲话"  # <title> without the site name
    assert texts(doc) == [
        "在全县春耕生产工作会议上的讲话",
        "同志们：",
        "今天召开全县春耕生产工作会议，主要任务是安排部署今年春耕生产工作。",
        "一、认清形势，增强做好春耕生产的责任感",
        "今年全县粮食播种面积要稳定在80万亩以上，确保粮食总产达到35万吨。",
        "同志们，春耕生产时间紧、任务重，各级各部门要迅速行动起来！",
    ]
    assert dict(doc.dropped) == {"before-title": 2, "nav-bar": 1, "page-meta": 1, "site-footer": 1}
    assert doc.published == "2016-03-12"  # from the 发布日期 line dropped as chrome


def test_html_title_skips_a_logo_h1(tmp_path: Path) -> None:
    path = tmp_path / "logo.html"
    page = (DOCS / "page.html").read_text("utf-8")
    path.write_text(page.replace("<body>", "<body><h1>仙桃市人民政府网</h1>"), "utf-8")
    assert read_document(path).title == "仙桃市委书记刘强在全市优化营商环境大会上的讲话"
    # the site name first in <title>: the headline <h1> still wins over the logo <h1>
    title = "仙桃市委书记刘强在全市优化营商环境大会上的讲话"
    flipped = page.replace(f"<title>{title}_仙桃市人民政府网</title>", f"<title>仙桃市人民政府网 - {title}</title>")
    path.write_text(flipped.replace("<body>", "<body><h1>仙桃市人民政府网</h1>"), "utf-8")
    assert read_document(path).title == title


def test_html_published_from_meta(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    page = (DOCS / "page.html").read_text("utf-8")
    path.write_text(page.replace("<title>", '<meta name="PubDate" content="2019-03-06 10:00"><title>'), "utf-8")
    assert read_document(path).published == "2019-03-06"
    assert read("page.html").published == "2019-03-05"


def test_html_without_main_text(tmp_path: Path) -> None:
    path = tmp_path / "nav.html"
    path.write_text("<html><body><nav><a href='/'>首页</a></nav></body></html>", encoding="utf-8")
    with pytest.raises(DocumentError, match=r"no main text|no text"):
        read_document(path)


def test_pdf_bytes_in_memory_only() -> None:
    # read_document reads the file once; the loader never reopens the path (works on a pipe copy)
    data = (DOCS / "speech.pdf").read_bytes()
    assert sniff(io.BytesIO(data).read(2048), ".pdf") == "pdf"


def _pdf(path: Path, draw: Callable[[Any], None]) -> Path:
    """A one-page PDF drawn with reportlab in the non-embedded STSong-Light CID font."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    draw(c)
    c.showPage()
    c.save()
    path.write_bytes(buf.getvalue())
    return path


def test_pdf_glyphs_struck_twice_for_a_fake_bold_are_read_once(tmp_path: Path) -> None:
    def draw(c: Any) -> None:
        c.setFont("STSong-Light", 16)
        for dx in (0, 0.3):  # the same run again, a fraction of a point to the right
            c.drawString(72 + dx, 760, "在动员大会上的讲话")
        c.setFont("STSong-Light", 11)
        c.drawString(72, 720, "谢谢大家，我们要把工作做好。")

    texts = [b.text for b in read_document(_pdf(tmp_path / "bold.pdf", draw)).blocks]
    assert texts == ["在动员大会上的讲话", "谢谢大家，我们要把工作做好。"]


def test_pdf_an_editors_note_set_in_a_box_is_one_block(tmp_path: Path) -> None:
    """A 【导读】 box of two paragraphs, set in from both margins, then the speech: the box is one
    block (the header leaves it out whole), the speech starts after it."""
    note = ("【导读】流程的核心是要反映业务的本质，企业的三大业务流分别是产品开发、市场销售和售后服务，"
            "为此建立对应的三个流程系统，同时用流程的方式进行固化。")
    note2 = "流程建设最大的难度是随时面对很多的噪音、阻力和反弹，总有人想随便找个借口就打发它，学不好就不行。"
    body = ("我们有幸能找到一个很好的老师，这就是它。华为公司的最低纲领应该是要活下去，那最高纲领是超过它。"
            "所以你们大家认为可不可以学习。现在有多少人有新的想法能超越它的那些请举手，不要怕嘛，我们可以向你"
            "学习。当你去实践过，也能产生那么多的产值，我们就应该向你学习。") * 3  # the page is mostly speech

    def lines(text: str, width: int) -> list[str]:
        return [text[i : i + width] for i in range(0, len(text), width)]

    def draw(c: Any) -> None:
        c.setFont("STSong-Light", 10)
        y = 760
        for paragraph in (note, note2):
            for line in lines(paragraph, 40):  # the box: 30 pt in from each margin
                c.drawString(90, y, line)
                y -= 14
        y -= 10
        for k, line in enumerate(lines(body[:44], 44) + lines(body[44:], 46)):
            c.drawString(60 + 20 * (k == 0), y, line)  # the speech: a first-line indent
            y -= 14

    blocks = [b.text for b in read_document(_pdf(tmp_path / "note.pdf", draw)).blocks]
    assert blocks == [note + note2, body]
