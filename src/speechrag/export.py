"""A conversation (or one answer) as a document to keep: Word (.docx, python-docx) or Markdown.

Each answer is written as the chat shows it, its sentences quoted with their [n], then its
numbered sources: date · title · section · paragraph (· page), the speaker, and the sentences
quoted from that passage. The text is the corpus's own, so Markdown escapes it
(`render.escape_markdown`); python-docx writes text runs, which Word never reads as markup.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from speechrag.answering import Answer
from speechrag.errors import QueryError
from speechrag.render import escape_markdown
from speechrag.searcher import Hit

FORMATS = {"docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
           "markdown": ("text/markdown; charset=utf-8", "md")}
TITLE = "讲话稿问答 · 对话记录"
NOT_ANSWERED = "（未回答 · not answered）"


@dataclass(frozen=True)
class Exchange:
    """One question and what became of it: an Answer, or a note (stopped, failed)."""

    question: str
    answer: Answer | None = None
    note: str = NOT_ANSWERED


Speaker = Callable[[str], str]  # a speech id -> its speaker ("" when unknown)


def check_format(name: object) -> str:
    if name not in FORMATS:
        raise QueryError(f"format must be one of {', '.join(FORMATS)}, not {name!r}")
    return str(name)


def source_line(n: int, hit: Hit, speaker: Speaker) -> str:
    """``[n] date · title · section · 第p段 · 讲话人：X`` (plain text)."""
    who = speaker(hit.passage.speech_id)
    return f"[{n}] {hit.citation}" + (f" · 讲话人：{who}" if who else "")


def answer_lines(ans: Answer) -> list[str]:
    """The answer's text as shown: its notice, then each quoted sentence with its [n] (an
    abstention: its own text, which lists the nearest passages)."""
    if not ans.sentences:
        return [line for line in ans.text.splitlines() if line.strip()]
    return ([ans.notice] if ans.notice else []) + [s.plain for s in ans.sentences]


def to_markdown(exchanges: Sequence[Exchange], speaker: Speaker, *, title: str = TITLE) -> str:
    out = [f"# {escape_markdown(title)}", "", f"导出时间：{_now()}", ""]
    for i, ex in enumerate(exchanges, start=1):
        out += [f"## 问{i}：{escape_markdown(ex.question.strip())}", ""]
        if ex.answer is None:
            out += [escape_markdown(ex.note), ""]
            continue
        out += [escape_markdown(line) + "  " for line in answer_lines(ex.answer)] + [""]
        if ex.answer.citations:
            out += ["**来源 · Sources**", ""]
            for n, hit in enumerate(ex.answer.citations, start=1):
                out.append(f"{n}\\. {escape_markdown(source_line(n, hit, speaker).split(' ', 1)[1])}")
                out += [f"    > {escape_markdown(s)}" for s in hit.cited_sentences]
            out.append("")
    return "\n".join(out)


def to_docx(exchanges: Sequence[Exchange], speaker: Speaker, *, title: str = TITLE) -> bytes:
    from docx import Document
    from docx.oxml.ns import qn

    doc = Document()
    # East Asian text takes the eastAsia font slot; without it Word falls back per machine.
    normal = doc.styles["Normal"]
    normal.font.name = "Noto Sans CJK SC"
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "Noto Sans CJK SC")
    doc.core_properties.title = title
    doc.core_properties.language = "zh-CN"
    doc.add_heading(title, level=0)
    doc.add_paragraph(f"导出时间：{_now()}")
    for i, ex in enumerate(exchanges, start=1):
        doc.add_heading(f"问{i}：{ex.question.strip()}", level=1)
        if ex.answer is None:
            doc.add_paragraph(ex.note)
            continue
        for line in answer_lines(ex.answer):
            doc.add_paragraph(line)
        if ex.answer.citations:
            doc.add_heading("来源 · Sources", level=2)
            for n, hit in enumerate(ex.answer.citations, start=1):
                doc.add_paragraph(source_line(n, hit, speaker))
                for sentence in hit.cited_sentences:
                    doc.add_paragraph(f"「{sentence}」", style="Quote")
    data = io.BytesIO()
    doc.save(data)
    return data.getvalue()


def export(exchanges: Sequence[Exchange], fmt: str, speaker: Speaker) -> tuple[bytes, str, str]:
    """(content, media type, file name) of ``exchanges`` in format ``fmt`` (docx | markdown)."""
    media, suffix = FORMATS[check_format(fmt)]
    body = to_docx(exchanges, speaker) if fmt == "docx" else to_markdown(exchanges, speaker).encode("utf-8")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return body, media, f"speechrag-{stamp}.{suffix}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
