"""The unit of retrieval: one paragraph (or one part of a long paragraph) of one speech."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Passage:
    """A citable paragraph.

    ``id`` depends only on the paragraph's text (plus a counter for exact repeats), so it is
    stable across rebuilds while the text is unchanged. ``paragraph`` is 1-based within the
    speech; a paragraph too long for the encoder is split into parts (``part`` 1, 2, ...) that
    share its number. ``part`` is 0 for a paragraph kept whole.
    """

    id: str
    speech_id: str
    speech_title: str
    section: str
    paragraph: int
    text: str
    source: str
    line: int
    duplicates: tuple[str, ...] = ()
    part: int = 0
    speech_date: str = ""  # the speech's ISO date, so a citation says when it was said
    # The year the passage speaks about (0: unknown): a section 一、2013年工作回顾 of a report
    # given in 2014 speaks about 2013, its 今年 about 2014 (`speechrag.dates.about_year`).
    about_year: int = 0
    page: int = 0  # the 1-based page of a paged source (PDF) where the passage starts; 0 for others
    last_page: int = 0  # the page where it ends (the same page unless it crosses a page end)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duplicates"] = list(self.duplicates)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Passage:
        return cls(
            id=str(d["id"]),
            speech_id=str(d["speech_id"]),
            speech_title=str(d["speech_title"]),
            section=str(d["section"]),
            paragraph=int(d["paragraph"]),
            text=str(d["text"]),
            source=str(d["source"]),
            line=int(d["line"]),
            duplicates=tuple(str(x) for x in d.get("duplicates", ())),
            part=int(d.get("part", 0)),
            speech_date=str(d.get("speech_date", "")),
            about_year=int(d.get("about_year", 0) or 0),
            page=int(d.get("page", 0)),
            last_page=int(d.get("last_page", d.get("page", 0))),
        )

    @property
    def citation(self) -> str:
        """Human-readable source: ``2017-02-11 · 青山区政府工作报告 · 一、… · 第3段`` (the date
        when the speech has one), then ``· 第5页`` when it is from a paged source."""
        return " · ".join(x for x in (self.speech_date, self.speech_title, self.section, self.paragraph_label,
                                      self.page_label) if x)

    @property
    def page_label(self) -> str:
        """``第5页``, ``第5–6页`` for a passage that crosses a page end, or "" (no pages)."""
        if not self.page:
            return ""
        return f"第{self.page}页" if self.last_page <= self.page else f"第{self.page}–{self.last_page}页"

    @property
    def paragraph_label(self) -> str:
        """``第3段``, or ``第3段（2）`` for the second part of a split paragraph."""
        return f"第{self.paragraph}段" + (f"（{self.part}）" if self.part else "")


@dataclass(frozen=True)
class Speech:
    """One speech as read from the corpus: what ``speechrag corpus`` tabulates."""

    id: str
    title: str
    source: str
    line: int
    place: str = ""
    paragraphs: int = 0
    characters: int = 0
    duplicates: int = 0  # passages of this speech with a near-twin elsewhere
    truncated: bool = False
    date: str = ""  # ISO: YYYY-MM-DD, YYYY-MM or YYYY; "" when the document gives none
    speaker: str = ""
    occasion: str = ""  # the 在…会议上 phrase
    format: str = ""  # the loader that read the file: md, txt, docx, doc, pdf, html
    years: tuple[int, ...] = ()  # the years its passages speak about (`Passage.about_year`)
    ocr: bool = False  # some of its pages were read by OCR (a scan): its text may hold misreadings

    @property
    def year(self) -> int | None:
        return int(self.date[:4]) if self.date[:4].isdigit() else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["years"] = list(self.years)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Speech:
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "years" in fields:
            fields["years"] = tuple(int(y) for y in fields["years"])
        return cls(**fields)


@dataclass(frozen=True)
class SkippedFile:
    """A corpus file that was not read, and the one-line reason."""

    source: str
    reason: str


@dataclass(frozen=True)
class CorpusReport:
    """Everything ingestion learned: the passages, the speeches and what was cleaned."""

    passages: tuple[Passage, ...]
    speeches: tuple[Speech, ...]
    files: int = 0
    boilerplate_dropped: int = 0
    fragments_dropped: int = 0
    paragraphs_repaired: int = 0
    signatures_dropped: int = 0  # closing lines read as a signature (date, name, issuer)
    paragraphs_split: int = 0
    twin_pairs: int = 0
    boilerplate_by_rule: dict[str, int] = field(default_factory=dict)
    skipped: tuple[SkippedFile, ...] = ()
    # what OCR did (files, pages, turned, low-confidence, noise; formats.Document.ocr summed) and
    # the pages it left unread, with their reasons
    ocr: dict[str, int] = field(default_factory=dict)
    unread_pages: tuple[SkippedFile, ...] = ()
