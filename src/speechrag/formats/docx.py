"""docx: walk ``word/document.xml`` in document order into blocks.

What Word files of speeches hold, and how each is read:

- body paragraphs (``w:p``), with the paragraph style mapped to a block kind: Title -> title,
  Heading 1-6 / 标题 1-6 (by styleId, by the style's name in styles.xml, or by an outline level)
  -> heading;
- tables (``w:tbl``), nested to any depth: a web page pasted into Word often holds the whole
  speech inside tables nested in tables with an empty body, so every cell is walked in order;
- text boxes (``w:txbxContent``) after the paragraph that anchors them; Word writes each text box
  twice (``mc:Choice`` DrawingML and ``mc:Fallback`` VML), so the fallback copy is skipped;
- content controls (``w:sdt``) and smart tags are walked through; deleted text (``w:delText``) and
  field codes (``w:instrText``) are not ``w:t`` and so never read;
- ``w:tab`` -> space, ``w:br``/``w:cr`` -> a line break that splits the paragraph into two blocks
  only where both sides look like separate paragraphs (a web paste), else is dropped.

The archive is checked before anything is decompressed: member count and the sum of declared
uncompressed sizes (a zip bomb is refused), and every member read is bounded too. The XML parser
resolves no entities, loads no DTD and touches no network.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from speechrag.formats import (
    MB,
    Block,
    BlockKind,
    Deadline,
    Document,
    DocumentError,
    Limits,
    clean_title,
    split_soft_breaks,
)

log = logging.getLogger(__name__)

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_DC = "http://purl.org/dc/elements/1.1/"


def _q(tag: str, ns: str = _W) -> str:
    return f"{{{ns}}}{tag}"


P, TBL, TR, TC, T, TAB, BR, CR = (_q(t) for t in ("p", "tbl", "tr", "tc", "t", "tab", "br", "cr"))
SDT, SDT_CONTENT, TXBX, PPR, PSTYLE = (_q(t) for t in ("sdt", "sdtContent", "txbxContent", "pPr", "pStyle"))
OUTLINE, VAL, STYLE, STYLE_ID, NAME = (_q(t) for t in ("outlineLvl", "val", "style", "styleId", "name"))
FALLBACK, CHOICE, ALT = _q("Fallback", _MC), _q("Choice", _MC), _q("AlternateContent", _MC)
# Containers whose children are paragraphs/tables/runs in reading order.
_PASS_THROUGH = {SDT_CONTENT, _q("smartTag"), _q("customXml"), _q("ins"), CHOICE}
_SKIP = {FALLBACK, _q("del"), _q("sdtPr"), _q("sdtEndPr"), _q("rPr"), PPR, _q("tblPr"), _q("tblGrid"), _q("trPr")}

_HEADING = re.compile(r"^(?:heading|标题)\s*([1-6])$", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    # No entity expansion (billion laughs), no DTD, no network; huge_tree stays off so libxml2's
    # own depth and text-node limits apply.
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, remove_comments=True)


def _read_member(zf: zipfile.ZipFile, name: str, cap: int) -> bytes:
    with zf.open(name) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise DocumentError(f"docx expands to over {cap // MB} MB (zip bomb?)")
    return data


def _open(data: bytes, limits: Limits) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DocumentError("damaged docx (not a readable zip archive)") from None
    infos = zf.infolist()
    if len(infos) > limits.max_zip_members:
        raise DocumentError(f"docx has {len(infos)} parts, over {limits.max_zip_members} (zip bomb?)")
    total = sum(i.file_size for i in infos)
    if total > limits.max_unzipped:
        raise DocumentError(f"docx expands to over {limits.max_unzipped // MB} MB (zip bomb?)")
    names = {i.filename for i in infos}
    if "word/document.xml" not in names:
        if "content.xml" in names:
            raise DocumentError("an OpenDocument (.odt) file, not docx; save it as .docx")
        if "xl/workbook.xml" in names or "ppt/presentation.xml" in names:
            raise DocumentError("a spreadsheet or presentation, not a Word document")
        raise DocumentError("a zip archive without word/document.xml, not a docx")
    return zf


def _xml(zf: zipfile.ZipFile, name: str, limits: Limits) -> etree._Element | None:
    try:
        raw = _read_member(zf, name, limits.max_unzipped)
    except KeyError:
        return None
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise DocumentError(f"damaged docx ({name}: {exc})") from None
    if b"<!DOCTYPE" in raw[:2048].upper():
        # Word never writes a DTD; one here can only be an entity-expansion attack.
        raise DocumentError(f"docx part {name} declares a DTD (entity expansion attack?)")
    try:
        return etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        raise DocumentError(f"damaged docx ({name} is not well-formed XML: {exc.msg})") from None


def _label_kind(label: str) -> tuple[BlockKind, int] | None:
    """Title/heading from a style id or name: Title, 标题 -> title; Heading1, heading 2, 标题 3 -> heading."""
    if label.strip().lower() in ("title", "标题"):
        return "title", 0
    m = _HEADING.match(re.sub(r"(\D)(\d)$", r"\1 \2", label.strip()))
    return ("heading", int(m.group(1))) if m else None


def _outline_kind(ppr: etree._Element | None) -> tuple[BlockKind, int] | None:
    outline = ppr.find(OUTLINE) if ppr is not None else None
    value = outline.get(VAL, "") if outline is not None else ""
    return ("heading", int(value) + 1) if value.isdigit() and int(value) < 6 else None


def _style_kinds(styles: etree._Element | None) -> dict[str, tuple[BlockKind, int]]:
    """styleId -> (kind, level) for the title and heading styles, by name, id or outline level.

    The name decides first: Chinese Word saves Heading 1 as styleId "1" named "heading 1".
    """
    kinds: dict[str, tuple[BlockKind, int]] = {}
    if styles is None:
        return kinds
    for style in styles.iter(STYLE):
        sid = style.get(STYLE_ID) or ""
        name_el = style.find(NAME)
        name = name_el.get(VAL, "") if name_el is not None else ""
        kind = _label_kind(name) or _label_kind(sid) or _outline_kind(style.find(PPR))
        if kind:
            kinds[sid] = kind
    return kinds


def _paragraph_kind(p: etree._Element, kinds: dict[str, tuple[BlockKind, int]]) -> tuple[BlockKind, int]:
    ppr = p.find(PPR)
    style = ppr.find(PSTYLE) if ppr is not None else None
    if style is not None:
        sid = style.get(VAL) or ""
        kind = kinds.get(sid) or _label_kind(sid)  # styles.xml may be missing
        if kind:
            return kind
    return _outline_kind(ppr) or ("paragraph", 0)


def _children(parent: etree._Element, tag: str) -> Iterator[etree._Element]:
    """``parent``'s own children with ``tag`` (a table's rows, a row's cells; not those of tables
    nested deeper), looking through content controls (``w:sdt``) that wrap them."""
    for child in parent:
        if child.tag == tag:
            yield child
        elif child.tag == SDT:
            content = child.find(SDT_CONTENT)
            if content is not None:
                yield from (c for c in content if c.tag == tag)


def _rows(table: etree._Element) -> Iterator[etree._Element]:
    return _children(table, TR)


def _cells(row: etree._Element) -> Iterator[etree._Element]:
    return _children(row, TC)


class _Walker:
    """Collects blocks in document order; one instance per document (no shared state)."""

    def __init__(self, kinds: dict[str, tuple[BlockKind, int]], limits: Limits, deadline: Deadline) -> None:
        self.kinds = kinds
        self.limits = limits
        self.deadline = deadline
        self.blocks: list[Block] = []
        self.chars = 0
        self.paragraphs = 0

    def container(self, el: etree._Element) -> None:
        """Walk a body, cell, text box or content control: paragraphs and tables in order."""
        for child in el:
            tag = child.tag
            if tag == P:
                self.paragraph(child)
            elif tag == TBL:
                for row in _rows(child):
                    for cell in _cells(row):
                        self.container(cell)
            elif tag == SDT:
                content = child.find(SDT_CONTENT)
                if content is not None:
                    self.container(content)
            elif tag == ALT:
                choice = child.find(CHOICE)
                if choice is not None:
                    self.container(choice)
            elif tag in _PASS_THROUGH:
                self.container(child)

    def paragraph(self, p: etree._Element) -> None:
        self.paragraphs += 1
        if self.paragraphs % 500 == 0:
            self.deadline.check("reading docx paragraphs")
        parts: list[str] = []
        boxes: list[etree._Element] = []
        self._runs(p, parts, boxes)
        kind, level = _paragraph_kind(p, self.kinds)
        for text in split_soft_breaks("".join(parts)):
            self._add(Block(text, kind, level))
        for box in boxes:
            self.container(box)

    def _runs(self, el: etree._Element, parts: list[str], boxes: list[etree._Element]) -> None:
        for child in el:
            tag = child.tag
            if tag == T:
                parts.append("".join(str(t) for t in child.itertext()))
            elif tag == TAB:
                parts.append(" ")
            elif tag in (BR, CR):
                parts.append("\n")
            elif tag == TXBX:
                boxes.append(child)
            elif tag == FALLBACK or tag in _SKIP:
                continue  # the VML copy of a text box already read from mc:Choice
            elif tag in (P, TBL):
                continue  # only inside a text box, reached through boxes
            else:
                self._runs(child, parts, boxes)

    def _add(self, block: Block) -> None:
        self.chars += len(block.text)
        if self.chars > self.limits.max_chars:
            raise DocumentError(f"docx holds over {self.limits.max_chars:,} characters of text")
        self.blocks.append(block)


def _core_title(zf: zipfile.ZipFile, limits: Limits) -> str:
    core = _xml(zf, "docProps/core.xml", limits)
    if core is None:
        return ""
    el = core.find(_q("title", _DC))
    # Word writes the file or template name here as often as a real title: clean_title drops it.
    return clean_title(el.text or "") if el is not None else ""


def load(data: bytes, path: Path, limits: Limits, deadline: Deadline) -> Document:
    with _open(data, limits) as zf:
        document = _xml(zf, "word/document.xml", limits)
        if document is None:  # pragma: no cover - _open checked the name
            raise DocumentError("a zip archive without word/document.xml, not a docx")
        body = document.find(_q("body"))
        if body is None:
            raise DocumentError("damaged docx (word/document.xml has no body)")
        walker = _Walker(_style_kinds(_xml(zf, "word/styles.xml", limits)), limits, deadline)
        try:
            walker.container(body)
        except RecursionError:  # tables in tables beyond any real document (libxml2 allows 256 levels)
            raise DocumentError("damaged docx (nested too deeply)") from None
        core_title = _core_title(zf, limits)
    blocks = tuple(b for b in walker.blocks if b.text)
    styled = next((b.text for b in blocks if b.kind == "title"), "")
    log.debug("%s: %d paragraphs -> %d blocks", path.name, walker.paragraphs, len(blocks))
    return Document(blocks=blocks, format="docx", title=styled or core_title)
