"""HTML (a saved news or government page): the main text through trafilatura, then the
site chrome that survives it removed by the rules in ``boilerplate.toml``.

1. Decode: a byte-order mark, else ``<meta charset>`` / ``http-equiv`` content type in the first
   4 KB (gb2312 and gbk are read as their superset GB18030: Chinese sites label GBK pages
   gb2312 and then use GBK-only characters), else strict UTF-8, else GB18030.
2. Title: the ``<h1>`` whose text appears in ``<title>`` (some sites put the logo in an
   ``<h1>``), else the first ``<h1>``, else ``<title>`` without the site name.
3. Main text: ``trafilatura.extract(favor_recall=True, output_format="xml")``. Recall is
   preferred because precision drops short lines that are the speech's own header (date, speaker,
   salutation); XML keeps ``<head>`` (headings), ``<p>``, list items, table cells and ``<lb/>``
   apart, where its txt/markdown output splits paragraphs at inline ``<strong>``.
4. Chrome left inside the article container (来源/发布时间/点击数 lines, 【字号 大 中 小】,
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

from speechrag.corpus import boilerplate_rules, normalise
from speechrag.formats import Block, Deadline, Document, DocumentError, Limits, clean_title, split_soft_breaks

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
    page_title = normalise(" ".join(tree.xpath("//title//text()")))
    site = tree.xpath("//meta[@property='og:site_name']/@content")
    h1s = [normalise(h.text_content()) for h in tree.iter("h1")]
    h1s = [h for h in h1s if h]
    for h1 in h1s:
        if h1 in page_title:
            return h1
    if h1s:
        return h1s[0]
    return clean_title(page_title, site[0] if site else "")


def _blocks(main: etree._Element) -> list[Block]:
    blocks: list[Block] = []
    for el in main.iter("p", "head", "item", "cell", "quote"):
        if el.tag == "quote" and el.find("p") is not None:
            continue  # its paragraphs are visited themselves
        if any(a.tag in ("p", "item", "cell") for a in el.iterancestors()):
            continue  # nested in a block already read whole
        raw = _text_with_breaks(el)
        level = 0
        if el.tag == "head":
            rend = el.get("rend", "h2")
            level = int(rend[1]) if re.fullmatch(r"h[1-6]", rend) else 2
        for text in split_soft_breaks(raw):
            blocks.append(Block(text, "heading", level) if level else Block(text, "paragraph"))
    return blocks


def _text_with_breaks(el: etree._Element) -> str:
    parts = [el.text or ""]
    for child in el:
        if child.tag == "lb":
            parts.append("\n")
        else:
            parts.append(_text_with_breaks(child))
        parts.append(child.tail or "")
    return "".join(parts)


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
    for block in blocks:
        rule = next((r for r in rules if r.matches(block.text)), None)
        if rule is not None:
            dropped[rule.name] += 1
        elif block.kind == "heading" and block.text == title and not kept:
            dropped["title-repeated"] += 1  # the <h1> kept in the text as well: it is the title
        else:
            kept.append(block)
    if kept and title and kept[0].text != title:
        kept.insert(0, Block(title, "title"))
    elif kept and title:
        kept[0] = Block(title, "title")
    return Document(tuple(kept), "html", title, tuple(sorted(dropped.items())))
