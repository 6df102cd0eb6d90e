"""HTML (a saved news or government page): the main text through trafilatura, then the
site chrome that survives it removed by the rules in ``boilerplate.toml``.

1. Decode: a byte-order mark, else ``<meta charset>`` / ``http-equiv`` content type in the first
   4 KB (gb2312 and gbk are read as their superset GB18030: Chinese sites label GBK pages
   gb2312 and then use GBK-only characters), else strict UTF-8, else GB18030.
2. Title: the longest ``<h1>`` found in ``<title>`` (sites put their logo in an ``<h1>`` too,
   and their name in ``<title>``), else ``<title>`` less its site name, else the first ``<h1>``.
3. Main text: ``trafilatura.extract(favor_recall=True, output_format="xml")``. Recall is
   preferred because precision drops short lines that are the speech's own header (date, speaker,
   salutation); XML keeps ``<head>`` (headings), ``<p>``, list items, table cells and ``<lb/>``
   apart, where its txt/markdown output splits paragraphs at inline ``<strong>``.
4. Text before the page's own headline, when the extracted text repeats it, is dropped as
   navigation; the headline becomes the first block, kind "title".
5. Chrome left inside the article container (来源/发布时间/点击数 lines, 【字号 大 中 小】,
   上一篇/下一篇, 扫一扫…, 版权所有…) is dropped by the whole-line rules in boilerplate.toml, the
   same rules corpus.py applies to scraped text, and counted in ``Document.dropped``.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections import Counter
from pathlib import Path

from lxml import etree
from lxml import html as lxml_html

from speechrag.boilerplate import boilerplate_rules
from speechrag.dates import DATE, parse_date
from speechrag.formats import Block, Deadline, Document, DocumentError, Limits, clean_title, split_soft_breaks
from speechrag.text import heading_level, normalise

log = logging.getLogger(__name__)

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE)
_GB_FAMILY = {"gb2312", "gbk", "gb_2312-80", "x-gbk", "cp936", "euc-cn", "gb18030", "hz-gb-2312"}


def decode_html(data: bytes) -> str:
    """Bytes of a web page to text: BOM, then the declared charset, then UTF-8, then GB18030."""
    boms = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    for bom, codec in boms:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    m = _META_CHARSET.search(data[:4096])
    declared = m.group(1).decode("ascii").lower() if m else ""
    if declared in _GB_FAMILY:
        declared = "gb18030"
    if declared:
        try:
            codecs.lookup(declared)
        except LookupError:
            log.warning("unknown charset %r declared; guessing", declared)
            declared = ""
    if declared:
        try:
            return data.decode(declared)
        except UnicodeDecodeError as exc:
            log.warning("page declares %s but byte %d is not; undecodable bytes replaced", declared, exc.start)
            return data.decode(declared, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def _title(tree: lxml_html.HtmlElement) -> str:
    """The headline: the longest <h1> found in <title> (a logo <h1> holds the shorter site name);
    else an <h1> that extends <title> less its site name; else that <title>; else the first <h1>."""
    site = tree.xpath("//meta[@property='og:site_name']/@content")
    raw = normalise(" ".join(tree.xpath("//title//text()")))
    page_title = clean_title(raw, str(site[0]) if site else "")
    h1s = [h for h in (normalise(h.text_content()) for h in tree.iter("h1")) if h]
    in_title = [h1 for h1 in h1s if h1 in raw]
    if in_title:
        return max(in_title, key=len)
    longer = [h1 for h1 in h1s if page_title and page_title in h1]  # <title> cut short
    return longer[0] if longer else page_title or (h1s[0] if h1s else "")


_PUBLISHED_META = (
    "//meta[@name='PubDate']/@content",  # Chinese government sites (the national CMS template)
    "//meta[@name='pubdate']/@content",
    "//meta[@property='article:published_time']/@content",
    "//meta[@name='publishdate']/@content",
)


def _published(tree: lxml_html.HtmlElement) -> str:
    """The page's publication date from its meta tags, or ""."""
    for xpath in _PUBLISHED_META:
        for value in tree.xpath(xpath):
            found = parse_date(str(value))
            if found:
                return found
    return ""


# A CMS page's date label, which main-text extraction leaves out with the chrome around it:
# 发布时间：2011-04-11, 发布日期：2017-05-15 10:49:00, 2011年09月26来源：
_DATE_LABEL = re.compile(
    rf"(?:发布时间|发布日期|发文日期|成文日期|日期|时间)\s*[:：]\s*(?P<a>{DATE})|(?P<b>{DATE})\s*(?:来源|作者|发布)"
)


def _published_in_text(tree: lxml_html.HtmlElement) -> str:
    """The page's own date from a labelled date in its text (a fallback: meta tags first)."""
    body = tree.find("body")
    text = normalise(" ".join((body if body is not None else tree).itertext()))[:20000]
    for m in _DATE_LABEL.finditer(text):
        found = parse_date(m.group("a") or m.group("b"))
        if found:
            return found
    return ""


# trafilatura's XML: block elements hold text and inline elements (hi, ref, lb); a table cell or
# list item may hold <p>s of its own (a <br>-separated speech in a layout table comes out so).
_BLOCK_TAGS = frozenset({"p", "head", "item", "cell", "quote", "list", "table", "row", "main", "doc", "div"})


def _blocks(main: etree._Element) -> list[Block]:
    blocks: list[Block] = []
    _walk(main, blocks)
    return blocks


def _walk(el: etree._Element, out: list[Block]) -> None:
    """Blocks in document order: each block element's own text, split around nested blocks."""
    level = 0
    if el.tag == "head":
        rend = el.get("rend", "h2")
        level = int(rend[1]) if re.fullmatch(r"h[1-6]", rend) else 2
    buffer = [el.text or ""]

    def flush() -> None:
        for text in split_soft_breaks("".join(buffer)):
            out.append(Block(text, "heading", level) if level else Block(text, "paragraph"))
        buffer.clear()

    for child in el:
        if child.tag in _BLOCK_TAGS:
            flush()
            _walk(child, out)
        else:
            buffer.append(_inline(child))
        buffer.append(child.tail or "")
    flush()


def _inline(el: etree._Element) -> str:
    if el.tag == "lb":
        return "\n"
    return (el.text or "") + "".join(_inline(child) + (child.tail or "") for child in el)


def load(data: bytes, path: Path, limits: Limits, deadline: Deadline) -> Document:
    import trafilatura

    if len(data) > limits.max_html_bytes:
        raise DocumentError(f"HTML page is over {limits.max_html_bytes // (1024 * 1024)} MB")
    text = decode_html(data)
    try:
        tree = lxml_html.fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise DocumentError(f"not readable as HTML ({exc})") from None
    title = _title(tree)
    published = _published(tree)  # before trafilatura, which prunes the tree it is given
    deadline.check("parsing HTML")
    extracted = trafilatura.extract(
        tree,
        favor_recall=True,
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        deduplicate=False,
        output_format="xml",
    )
    deadline.check("extracting the main text")
    if not extracted:
        raise DocumentError("no main text found in the HTML page")
    root = etree.fromstring(extracted.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    main = root.find("main")
    blocks = _blocks(main if main is not None else root)
    rules = boilerplate_rules()
    dropped: Counter[str] = Counter()
    kept: list[Block] = []
    meta_lines: list[str] = []
    for block in blocks:
        rule = next((r for r in rules if r.matches(block.text)), None)
        if rule is not None:
            dropped[rule.name] += 1
            if rule.name == "page-meta":
                meta_lines.append(block.text)
        else:
            kept.append(block)
    # The article's own headline inside the text: what comes before it is navigation (old
    # table-layout sites keep their menus in the same table as the article).
    at = next((i for i, b in enumerate(kept) if title and b.text == title), None)
    if at is None and kept and kept[0].kind == "heading" and kept[0].level <= 2 and not heading_level(kept[0].text):
        # <title> is only the site's name (明道中學校友會) and the text opens with its own headline
        title, at = kept[0].text, 0
    if at is not None:
        if at:
            dropped["before-title"] += at
        kept = [Block(title, "title"), *kept[at + 1 :]]
    elif title and kept:
        kept.insert(0, Block(title, "title"))
    # else the 发布时间 line just dropped as chrome
    published = published or next((d for d in map(parse_date, meta_lines) if d), "") or _published_in_text(tree)
    return Document(tuple(kept), "html", title, tuple(sorted(dropped.items())), published)


def load_mht(data: bytes, path: Path, limits: Limits, deadline: Deadline) -> Document:
    """An MHT/MHTML file (a web page or Word's "single file web page"): its first text/html part."""
    import email
    import email.policy

    message = email.message_from_bytes(data, policy=email.policy.compat32)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload.strip():
                charset = part.get_content_charset()
                if charset and not _META_CHARSET.search(payload[:4096]):
                    payload = f'<meta charset="{charset}">'.encode("ascii", "ignore") + payload
                document = load(payload, path, limits, deadline)
                return Document(document.blocks, "mht", document.title, document.dropped, document.published)
    raise DocumentError("MHT file without an HTML part")
