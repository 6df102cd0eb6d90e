"""Make the document fixtures in tests/fixtures/documents/ (run once; the outputs are committed).

    python scripts/make_fixtures.py            # needs python-docx, reportlab, pypdf (the dev extra)
                                               # and LibreOffice: apt-get install libreoffice-writer-nogui

CI never runs this: the tests read the committed files. Rerun it only to change a fixture, then
update the exact expectations in tests/test_formats.py and tests/test_header.py. The outputs are
not byte-identical from run to run (docx/PDF timestamps, the encryption salt), only their text.

The speeches are invented (some paragraphs borrowed from corpus/speeches-jisheng.md) and each
fixture has its own subject, so a question can target one: 青山区 government work report (nested
tables), 商丘 rural drinking water (headings, text box), 全县 education (.doc), 河南省 cultural
projects (PDF), 仙桃 business environment (HTML), 海淀区 work safety (GBK HTML), 洛阳 work report
(GBK text with CRLF).
"""

# ruff: noqa: E501  (fixture HTML and XML are kept as written, one element per line)
from __future__ import annotations

import io
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from docx import Document as new_docx
from docx.oxml import parse_xml
from docx.shared import Pt

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "documents"

# --- 1. report-nested-tables.docx: a work report pasted from a web page ----------------------

REPORT_QINGSHAN = [
    "政府工作报告",
    "——2017年2月11日在青山区第十八届人民代表大会第一次会议上",
    "青山区人民政府区长　　李建国",
    "各位代表：",
    "现在，我代表区人民政府，向大会报告工作，请予审议，并请区政协委员和其他列席人员提出意见。",
    "一、2016年工作回顾",
    "过去的一年，面对经济下行压力加大的复杂形势，全区上下攻坚克难，全年完成地区生产总值412亿元，增长7.8%。",
    "产业转型步伐加快。新引进亿元以上项目23个，钢铁深加工产业园一期建成投产，服务业增加值占比提高到46%。",
    "城市面貌明显改善。完成棚户区改造4100户，新建改造道路18条，青山江滩二期对市民开放。",
    "民生保障持续加强。城镇新增就业1.2万人，新建社区养老服务站15个，义务教育阶段学校全部达到标准化要求。",
    "二、2017年主要任务",
    "今年经济社会发展的主要预期目标是：地区生产总值增长7.5%左右，一般公共预算收入增长6%。",
    "着力推进老工业基地转型。支持钢铁企业延伸产业链，加快建设环保产业园，力争战略性新兴产业产值突破100亿元。",
    "着力保障和改善民生。全年办好十件实事，完成老旧小区改造30个，新增公办幼儿园学位2000个。",
    "各位代表，新的一年，我们将在区委的坚强领导下，凝心聚力，真抓实干，为建设现代化滨江新城区而努力奋斗！",
]


def report_nested_tables(path: Path) -> None:
    doc = new_docx()
    outer = doc.add_table(rows=1, cols=1)
    inner = outer.cell(0, 0).add_table(rows=2, cols=1)
    # Row 1 of the inner table: the header; row 2: the speech; the body itself stays empty.
    head, body = inner.cell(0, 0), inner.cell(1, 0)
    head.paragraphs[0].text = REPORT_QINGSHAN[0]
    for line in REPORT_QINGSHAN[1:3]:
        head.add_paragraph(line)
    body.paragraphs[0].text = REPORT_QINGSHAN[3]
    for line in REPORT_QINGSHAN[4:]:
        body.add_paragraph(line)
    # python-docx leaves an empty paragraph in the outer cell before the nested table; Word does too.
    doc.core_properties.title = "青山区政府工作报告 - 青山区人民政府门户网站"
    doc.save(str(path))


# --- 2. speech-headings.docx: heading styles, a text box, a repeated salutation ----------------

SPEECH_WATER = {
    "title": "在全市农村饮水安全工作会议上的讲话",
    "header": ["（2018年3月20日）", "商丘市副市长　王晓东"],
    "opening": [
        "同志们：",
        "今天召开全市农村饮水安全工作会议，主要任务是总结去年农村饮水安全工程建设情况，部署今年的重点工作。",
    ],
    "sections": [
        (
            "一、充分认识农村饮水安全工作的重要性",
            [
                "农村饮水安全是最基本的民生工程。全市还有38万农村人口饮用高氟水、苦咸水，解决这个问题刻不容缓。",
                "各县区要把农村饮水安全工程作为脱贫攻坚的硬任务，列入重要议事日程。",
            ],
        ),
        (
            "二、突出抓好工程建设和运行管护",
            [
                "同志们、朋友们！",
                "今年全市计划新建集中供水工程65处，铺设管网1200公里，年底前实现农村自来水普及率达到85%。",
                "要建立县级水质检测中心，每季度至少开展一次水质抽检，确保群众喝上放心水。",
            ],
        ),
        (
            "三、加强组织领导，确保各项任务落到实处",
            [
                "同志们、朋友们！",
                "市政府将把农村饮水安全工作纳入年度目标考核，对工作不力的县区进行通报。",
                "让我们以更加扎实的作风，把这项惠及百万群众的民生工程办好！",
            ],
        ),
    ],
    "textbox": ["专栏：2017年农村饮水安全工程完成情况", "全年完成投资4.2亿元，新建水厂21座，受益人口46万人。"],
}

_TEXTBOX = """
<w:r xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"
     xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"
     xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
     xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"
     xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"
     xmlns:v="urn:schemas-microsoft-com:vml">
  <mc:AlternateContent>
    <mc:Choice Requires="wps">
      <w:drawing>
        <wp:anchor distT="0" distB="0" distL="114300" distR="114300" simplePos="0" relativeHeight="1"
                   behindDoc="0" locked="0" layoutInCell="1" allowOverlap="1">
          <wp:simplePos x="0" y="0"/>
          <wp:positionH relativeFrom="column"><wp:posOffset>0</wp:posOffset></wp:positionH>
          <wp:positionV relativeFrom="paragraph"><wp:posOffset>0</wp:posOffset></wp:positionV>
          <wp:extent cx="5000000" cy="900000"/>
          <wp:effectExtent l="0" t="0" r="0" b="0"/>
          <wp:wrapTopAndBottom/>
          <wp:docPr id="1" name="Text Box 1"/>
          <wp:cNvGraphicFramePr/>
          <a:graphic>
            <a:graphicData uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape">
              <wps:wsp>
                <wps:cNvSpPr txBox="1"/>
                <wps:spPr>
                  <a:xfrm><a:off x="0" y="0"/><a:ext cx="5000000" cy="900000"/></a:xfrm>
                  <a:prstGeom prst="rect"><a:avLst/></a:prstGeom>
                </wps:spPr>
                <wps:txbx><w:txbxContent>{paras}</w:txbxContent></wps:txbx>
                <wps:bodyPr/>
              </wps:wsp>
            </a:graphicData>
          </a:graphic>
        </wp:anchor>
      </w:drawing>
    </mc:Choice>
    <mc:Fallback>
      <w:pict><v:shape style="width:400pt;height:70pt"><v:textbox><w:txbxContent>{paras}</w:txbxContent></v:textbox></v:shape></w:pict>
    </mc:Fallback>
  </mc:AlternateContent>
</w:r>
"""


def speech_headings(path: Path) -> None:
    s = SPEECH_WATER
    doc = new_docx()
    doc.add_paragraph(s["title"], style="Title")
    for line in s["header"]:
        doc.add_paragraph(line)
    for line in s["opening"]:
        doc.add_paragraph(line)
    for heading, paras in s["sections"]:
        doc.add_paragraph(heading, style="Heading 1")
        for text in paras:
            doc.add_paragraph(text)
        if heading.startswith("一、"):
            anchor = doc.add_paragraph("下面是去年的完成情况。")
            paras_xml = "".join(f"<w:p><w:r><w:t>{t}</w:t></w:r></w:p>" for t in s["textbox"])
            anchor._p.append(parse_xml(_TEXTBOX.format(paras=paras_xml)))
    doc.core_properties.title = "speech-headings.docx"  # a file name, as Word often stores: ignored
    doc.save(str(path))


# --- 3. old-speech.doc (via LibreOffice) ------------------------------------------------------

SPEECH_EDUCATION = [
    "张明同志在全县教育工作会议上的讲话",
    "（二〇一五年九月八日）",
    "同志们：",
    "今天是第三十一个教师节前夕，县委、县政府召开全县教育工作会议，表彰一批优秀教师和先进集体。",
    "一、肯定成绩，坚定办好人民满意教育的信心",
    "近三年来，全县累计投入教育资金5.6亿元，新建改建校舍12万平方米，全面完成薄弱学校改造任务。",
    "高考本科上线人数连续三年突破两千人，职业教育毕业生就业率保持在95%以上。",
    "二、突出重点，推动教育事业均衡发展",
    "要加快推进城区学校扩容，今年秋季新增学位3000个，着力解决城区大班额问题。",
    "要实施乡村教师支持计划，为乡村教师发放生活补助，每人每月不低于300元。",
    "同志们，教育是民族振兴、社会进步的基石，让我们共同努力，把全县教育事业推向新的高度！",
]


def _soffice(src: Path, fmt: str, outdir: Path) -> Path:
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if not exe:
        sys.exit("LibreOffice is needed: apt-get install libreoffice-writer-nogui")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                exe,
                f"-env:UserInstallation=file://{profile}",
                "--headless",
                "--convert-to",
                fmt,
                "--outdir",
                str(outdir),
                str(src),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    return outdir / (src.stem + "." + fmt.split(":")[0])


def old_speech_doc(path: Path, tmp: Path) -> None:
    doc = new_docx()
    for line in SPEECH_EDUCATION:
        doc.add_paragraph(line)
    src = tmp / "old-speech.docx"
    doc.save(str(src))
    shutil.move(_soffice(src, "doc", tmp), path)


# --- 4. speech.pdf: three-plus pages, running head, page numbers --------------------------------

SPEECH_CULTURE_HEAD = [
    "在全省文化惠民工程推进会上的讲话",
    "2019年6月12日",
    "河南省文化和旅游厅厅长　赵文华",
    "同志们：",
]
SPEECH_CULTURE_BODY = [
    "这次会议的主要任务是，总结全省文化惠民工程实施以来的成效，分析存在的问题，安排部署下一阶段的重点任务。",
    "一、文化惠民工程取得明显成效",
    "三年来，全省累计建成村级综合性文化服务中心4.6万个，覆盖率达到98%，乡镇综合文化站实现全覆盖。全省公共图书馆、文化馆、博物馆全部实现免费开放，年均服务群众超过一亿人次。",
    "送戏下乡活动深入开展，全省各级文艺院团每年为农村群众送戏2万余场，农家书屋图书更新率提高到每年10%。",
    "曾经指出：“文艺工作，是党和人民事业的重要组成部分，在党和人民事业发展中具有十分重要的地位。”面对全面建设小康社会和构建社会主义和谐社会的战略任务，面对人民群众日益增长的精神文化需求，促进全社会形成积极向上的共同精神追求，是当今时代对文艺工作提出的新要求。繁荣社会主义先进文化，建设和谐文化，为构建社会主义和谐社会作出贡献，既是文艺工作者的庄严使命，又是现阶段文化工作的时代主题。",
    "第一，推动社会主义文艺大发展大繁荣，必须要求我们做好文艺工作。当今时代，文化已经成为衡量一个国家、一个地区综合实力的重要指标。具体到我省，文化资源丰富，但文化产业规模偏小，文化的影响力和竞争力还不强，迫切需要把资源优势转化为发展优势，广大文艺工作者和各级文联组织要发挥联系广泛、人才荟萃的优势，主动作为。",
    "第二，满足人民群众不断增长的精神文化需求，必然要求我们做好文艺工作。当前，我省部分地区的文化设施还相对落后，文化产品也比较单一，还不能满足人民群众多层次、多方面、多样化的精神文化需求，需要我们创作出更多群众喜闻乐见的优秀作品。",
    "二、准确把握当前工作中存在的问题",
    "一些地方重建设、轻管理，部分村级文化服务中心平时大门紧锁，设施闲置，群众参与度不高，没有真正发挥作用。",
    "基层文化人才匮乏的问题依然突出，全省乡镇综合文化站专职人员平均不足两人，很多还身兼数职，难以专心开展文化服务工作。",
    "文化服务供需对接不够精准，送到基层的文化产品有时不合群众口味，“端菜”与“点菜”脱节的现象还比较普遍，这个问题必须认真研究解决。",
    "第三，不断发展着的新情况新形势，必然要求我们做好文艺工作。随着改革的深化、科技的进步、网络的普及，文学和艺术领域自身发生了许多新的变化，新的文艺样式层出不穷，新的文艺群体不断涌现，这些都对我们的工作提出了新的课题，需要我们在创新中求发展，在发展中求繁荣，不断提高文化服务的覆盖面和实效性，让文化惠民工程真正惠及千家万户，让广大农村群众共享文化发展成果。",
    "三、扎实推进下一阶段重点工作",
    "要推广“文化超市”点单模式，由群众自主选择文化服务项目，年内在全省所有县区推开，让群众从“被动接受”变为“主动点单”。",
    "要实施基层文化人才培育计划，每年培训乡镇文化站长和村级文化管理员各一万人次，建立文化志愿者服务队伍，壮大基层文化力量。",
    "要健全考核评价机制，把群众满意度作为评价文化惠民工程的主要标准，考核结果与下一年度资金安排挂钩，对排名靠后的市县进行约谈。",
    "要加强文化遗产保护利用，做好黄河文化、中原文化的挖掘阐释，推动优秀传统文化创造性转化、创新性发展，打造一批具有河南特色的文化品牌，讲好中原故事，传播中原声音，展示中原形象。",
    "同志们，做好文化惠民工作，使命光荣，责任重大。让我们以更加饱满的热情、更加务实的作风，推动全省文化惠民工程再上新台阶！",
]
RUNNING_HEAD = "全省文化惠民工程推进会材料"

_PAGE_FIELD = (
    '<w:p xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:pPr><w:jc w:val="center"/></w:pPr>'
    '<w:r><w:t xml:space="preserve">- </w:t></w:r><w:fldSimple w:instr="PAGE"><w:r><w:t>1</w:t></w:r></w:fldSimple>'
    '<w:r><w:t xml:space="preserve"> -</w:t></w:r></w:p>'
)


def speech_pdf(path: Path, tmp: Path) -> None:
    doc = new_docx()
    style = doc.styles["Normal"]
    style.font.size = Pt(16)  # 三号, as government documents are set: three pages from ~2,000 characters
    style.paragraph_format.first_line_indent = Pt(32)
    style.paragraph_format.space_after = Pt(0)
    section = doc.sections[0]
    section.header.paragraphs[0].text = RUNNING_HEAD
    footer = section.footer
    footer._element.remove(footer.paragraphs[0]._p)
    footer._element.append(parse_xml(_PAGE_FIELD))
    for line in SPEECH_CULTURE_HEAD + SPEECH_CULTURE_BODY:
        p = doc.add_paragraph(line)
        if line in SPEECH_CULTURE_HEAD[:3]:
            p.paragraph_format.first_line_indent = Pt(0)
    src = tmp / "speech.docx"
    doc.save(str(src))
    shutil.move(_soffice(src, "pdf", tmp), path)


def encrypted_pdf(path: Path) -> None:
    """A one-page text PDF (reportlab, CJK through the non-embedded STSong-Light CID font, so a
    few KB) encrypted with a user password."""
    from pypdf import PdfReader, PdfWriter
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("STSong-Light", 14)
    c.drawString(72, 760, "在全市档案工作会议上的讲话（内部资料，加密）")
    c.showPage()
    c.save()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buf.getvalue())))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    writer.write(path)


def scanned_pdf(path: Path) -> None:
    """An image-only page, as a scanner makes: lines of grey blocks where text would be."""
    from PIL import Image, ImageDraw
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    rng = random.Random(7)
    img = Image.new("L", (600, 840), 255)
    draw = ImageDraw.Draw(img)
    for row in range(60, 800, 24):
        x = 60
        while x < 540:
            w = rng.randint(12, 18)
            draw.rectangle([x, row, x + w, row + 14], fill=rng.randint(20, 90))
            x += w + 4
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    c = canvas.Canvas(str(path), pagesize=A4)
    c.drawImage(ImageReader(io.BytesIO(buf.getvalue())), 0, 0, width=A4[0], height=A4[1])
    c.showPage()
    c.save()


def _raw_pdf(objects: list[bytes], root: int, *, prev_self: bool = False) -> bytes:
    """A minimal PDF from numbered object bodies, with a correct xref (optionally one whose
    trailer's /Prev points back at itself: a cyclic xref chain)."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    prev = b" /Prev %d" % xref if prev_self else b""
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, prev, xref)
    )
    return out.getvalue()


def broken_pdf(good: Path, path: Path) -> None:
    """speech.pdf cut off at 40% (no xref, no trailer) with garbage where the rest was."""
    data = good.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 5] + bytes(random.Random(3).randbytes(512)))


def cyclic_pdf(path: Path) -> None:
    """A page tree whose /Kids contains the tree itself, and an xref chain that loops."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ]
    path.write_bytes(_raw_pdf(objects, 1, prev_self=True))


def many_pages_pdf(path: Path) -> None:
    """10,000 pages in a few hundred bytes: the root's 100 kids are one Pages node whose 100 kids
    are one page, so a reader that walks the tree meets 10,000 pages."""
    stream = b"BT /F1 12 Tf 72 720 Td (page) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join([b"5 0 R"] * 100) + b"] /Count 10000 >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Pages /Parent 2 0 R /Kids [" + b" ".join([b"6 0 R"] * 100) + b"] /Count 100 >>",
        b"<< /Type /Page /Parent 5 0 R /MediaBox [0 0 595 842] /Contents 3 0 R /Resources << /Font << /F1 4 0 R >> >> >>",
    ]
    path.write_bytes(_raw_pdf(objects, 1))


# --- 5. HTML pages: chrome both around the article (trafilatura drops it) and inside the
# article's own container, as many government sites put the 来源/字号/上一篇 lines (the
# boilerplate.toml rules drop those) -------------------------------------------------------------------------------

PAGE_XIANTAO = {
    "title": "仙桃市委书记刘强在全市优化营商环境大会上的讲话",
    "dateline": "2019-03-05 08:12 来源：仙桃日报",
    "paras": [
        "同志们：",
        "今天召开全市优化营商环境大会，就是要动员全市上下进一步解放思想、转变作风，全力打造一流营商环境。",
        "一、清醒认识营商环境存在的差距",
        "去年全市新登记市场主体1.8万户，但企业开办时间平均仍需5个工作日，与先进地区相比还有明显差距。",
        "一些部门办事环节多、材料多、跑腿多的问题依然存在，“玻璃门”“旋转门”现象时有发生。",
        "二、聚焦重点领域深化改革",
        "今年要实现企业开办一日办结，工程建设项目审批时间压减到80个工作日以内，“一网通办”事项达到90%以上。",
        "同志们，营商环境就是生产力，让我们以“等不起”的紧迫感，推动仙桃高质量发展迈出新步伐！",
    ],
}

_PAGE_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta {meta}>
<title>{title}_{site}</title>
<meta name="keywords" content="营商环境,讲话">
<script>var _hmt = _hmt || []; (function() {{ var hm = document.createElement("script"); }})();</script>
<style>body {{ font-family: SimSun; }} .nav li {{ float: left; }}</style>
</head>
<body>
<div class="top"><a href="/">{site}</a> | <a href="/en/">English</a> | <a href="/m/">手机版</a></div>
<div class="nav"><ul><li><a href="/">首页</a></li><li><a href="/xw/">新闻中心</a></li><li><a href="/zw/">政务公开</a></li><li><a href="/ldjh/">领导讲话</a></li><li><a href="/hd/">互动交流</a></li></ul></div>
<div class="crumb">当前位置：<a href="/">首页</a> &gt; <a href="/xw/">新闻中心</a> &gt; <a href="/ldjh/">领导讲话</a></div>
<div class="article">
<h1>{title}</h1>
<div class="content" id="zoom">
<p class="info">{info}</p>
<p class="tools">【字号 <a href="#">大</a> <a href="#">中</a> <a href="#">小</a>】【<a href="#">我要打印</a>】【<a href="#">关闭窗口</a>】</p>
{body}
<p class="qr">扫一扫在手机打开当前页</p>
<p>上一篇：{prev}</p><p>下一篇：{next}</p>
<p>推荐阅读：</p>
<p><a href="/a/4.html">全市优化营商环境工作推进会召开</a></p>
<p>责任编辑：张华</p>
</div>
</div>
<div class="related"><h3>推荐阅读</h3><ul>
<li><a href="/a/1.html">全市春季植树造林工作现场会召开</a></li>
<li><a href="/a/2.html">市政府召开第十二次常务会议</a></li>
<li><a href="/a/3.html">我市召开防汛抗旱工作会议</a></li>
</ul></div>
<div class="footer"><p>版权所有：{site}　主办单位：{owner}</p><p>网站标识码：4290040001　鄂ICP备05003262号</p><p><a href="/map/">网站地图</a> | <a href="/lx/">联系我们</a></p></div>
</body>
</html>
"""


def _html(title: str, site: str, owner: str, meta: str, info: str, paras: list[str], prev: str, nxt: str) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paras)
    return _PAGE_TEMPLATE.format(
        meta=meta, title=title, site=site, owner=owner, info=info, body=body, prev=prev, next=nxt
    )


def page_html(path: Path) -> None:
    s = PAGE_XIANTAO
    paras = [s["dateline"], *s["paras"]]  # the newspaper's own date line opens the article text
    html = _html(
        s["title"],
        "仙桃市人民政府网",
        "仙桃市人民政府办公室",
        'charset="utf-8"',
        "发布时间：2019-03-05 09:30　来源：仙桃日报　点击数：2381",
        paras,
        "全市春季植树造林工作现场会召开",
        "市政府召开第十二次常务会议",
    )
    path.write_text(html, encoding="utf-8")


PAGE_HAIDIAN = {
    "title": "在全区安全生产工作会议上的讲话",
    "paras": [
        "（2020年1月6日）",
        "海淀区副区长　孙丽",
        "同志们：",
        "这次会议的主要任务是，总结2019年全区安全生产工作，部署2020年重点任务，确保全区安全形势持续稳定。",
        "一、2019年安全生产形势总体平稳",
        "全年全区生产安全事故起数和死亡人数同比分别下降12%和15%，未发生较大以上生产安全事故。",
        "二、2020年重点抓好三项工作",
        "要深入开展危险化学品、建筑施工、电动自行车等重点行业领域专项整治，春节前完成全部高层建筑消防检查。",
        "同志们，安全生产责任重于泰山，各单位要坚决守住安全底线！",
    ],
}


def page_gbk_html(path: Path) -> None:
    s = PAGE_HAIDIAN
    html = _html(
        s["title"],
        "北京市海淀区人民政府",
        "北京市海淀区人民政府办公室",
        'http-equiv="Content-Type" content="text/html; charset=gbk"',
        "发布时间：2020-01-08　来源：海淀区应急管理局　点击数：1024　【字体：大 中 小】",
        s["paras"],
        "区政府召开第九十次常务会",
        "海淀区召开2020年防汛工作会议",
    )
    path.write_bytes(html.replace("<meta http-equiv", '<meta charset="gbk">\n<meta http-equiv', 1).encode("gbk"))


# --- 6. report-gbk-crlf.txt -----------------------------------------------------------------

REPORT_LUOYANG = [
    "政府工作报告",
    "二〇一八年一月九日在洛阳市第十五届人民代表大会第三次会议上",
    "洛阳市人民政府市长　　刘宏",
    "",
    "各位代表：",
    "",
    "现在，我代表市人民政府，向大会报告政府工作，请予审议，并请市政协各位委员和其他列席人员提出意见。",
    "一、过去五年工作回顾",
    "五年来，全市生产总值由2900亿元增加到4340亿元，年均增长9.1%，洛阳在全省副中心城市地位进一步巩固。",
    "牡丹文化节、河洛文化旅游节影响持续扩大，2017年接待游客1.2亿人次，旅游总收入突破千亿元。",
    "二、2018年工作安排",
    "加快推进城市轨道交通1号线、2号线建设，年内完成投资150亿元，启动洛阳机场三期改扩建工程。",
    "各位代表！奋斗创造历史，实干成就未来。让我们为加快建设中原城市群副中心城市而努力奋斗！",
]


def report_gbk_crlf(path: Path) -> None:
    path.write_bytes("\r\n".join(REPORT_LUOYANG).encode("gbk") + b"\r\n")


# --- 7. hostile files -------------------------------------------------------------------------


def bomb_docx(path: Path) -> None:
    """A docx whose document.xml expands to 300 MB (honestly declared), bzip2'd into ~1 KB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        info = zipfile.ZipInfo("word/document.xml")
        info.compress_type = zipfile.ZIP_BZIP2
        with zf.open(info, "w", force_zip64=True) as fh:
            fh.write(
                b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
            )
            chunk = b"A" * (1 << 20)
            for _ in range(300):
                fh.write(chunk)
            fh.write(b"</w:t></w:r></w:p></w:body></w:document>")
    path.write_bytes(buf.getvalue())


def empty_docx(path: Path) -> None:
    new_docx().save(str(path))


def binary_txt(path: Path) -> None:
    path.write_bytes(random.Random(11).randbytes(4096))


def fake_pdf(path: Path) -> None:
    # An ELF header (64-bit, little-endian, x86-64 executable) and zero padding, named .pdf.
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + bytes(2000))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        report_nested_tables(OUT / "report-nested-tables.docx")
        speech_headings(OUT / "speech-headings.docx")
        old_speech_doc(OUT / "old-speech.doc", tmp)
        speech_pdf(OUT / "speech.pdf", tmp)
    encrypted_pdf(OUT / "encrypted.pdf")
    scanned_pdf(OUT / "scanned.pdf")
    broken_pdf(OUT / "speech.pdf", OUT / "broken.pdf")
    cyclic_pdf(OUT / "cyclic.pdf")
    many_pages_pdf(OUT / "pages-10000.pdf")
    page_html(OUT / "page.html")
    page_gbk_html(OUT / "page-gbk.html")
    report_gbk_crlf(OUT / "report-gbk-crlf.txt")
    bomb_docx(OUT / "bomb.docx")
    empty_docx(OUT / "empty.docx")
    binary_txt(OUT / "binary.txt")
    fake_pdf(OUT / "fake.pdf")
    for f in sorted(OUT.iterdir()):
        print(f"{f.stat().st_size:>8}  {f.name}")


if __name__ == "__main__":
    main()
