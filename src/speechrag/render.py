"""Render an `Answer` for a reader: markdown for the chat, HTML for the sources panel, plain
text for the terminal and the clipboard; and a speech for the reading view, the scope of a
question as chips.

An Answer is data (sentences, citation numbers, spans); this module is the one place that turns
it into markup, and nothing parses the result back. Corpus text is untrusted: every string from
it is escaped here, for markdown (`escape_markdown`) or HTML (`html.escape`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any

from speechrag.answering import NOT_FOUND, PARTIAL, Answer, AnswerSentence, snippet
from speechrag.passage import Passage, Speech

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")

RELATED_MD = "\n\n**可能相关的段落（仅供参考）· Possibly related:**\n"


def escape_markdown(text: str) -> str:
    """Make untrusted text render literally in a markdown bubble: no tags, links or images."""
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # Entities rather than backslashes for these: `\<` would still reach the HTML parser, and
    # GFM turns `http://…` into a link even with its dots escaped, but not `http&#58;//…`.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace(":", "&#58;")


def _label(s: AnswerSentence) -> str:
    """A sentence's speech label, when it is not from the speech the question is about."""
    return f"（{s.speech}）" if s.speech else ""


def markdown_chunks(ans: Answer, href: Callable[[int], str] | None = None) -> list[str]:
    """The answer as escaped markdown, one piece per sentence with its [n] marker (and a space
    after it, which markdown drops at the end of a message), for streaming. With ``href``, each
    marker is a link to ``href(n)`` (an in-page anchor: the page turns its click into the
    reading view). A partly answered question starts with what the speeches leave out, in
    italics, then the nearest sentences."""

    def marker(n: int) -> str:
        return f"[\\[{n}\\]]({href(n)})" if href else f"[{n}]"

    pieces = [f"{escape_markdown(s.text)}{escape_markdown(_label(s))}{marker(s.citation)} " for s in ans.sentences]
    if ans.found:
        return pieces
    if ans.status == PARTIAL and ans.sentences:
        return [f"*{escape_markdown(ans.notice)}*\n\n", *pieces]
    chunks = [escape_markdown(ans.notice or NOT_FOUND)]
    if ans.citations:
        chunks.append(RELATED_MD)
    for n, hit in enumerate(ans.citations, start=1):
        chunks.append(f"\n- {escape_markdown(hit.citation)}：{escape_markdown(snippet(hit.passage.text))} {marker(n)}")
    return chunks


def markdown(ans: Answer) -> str:
    return "".join(markdown_chunks(ans))


def highlight(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Escaped ``text`` with the given character spans (the cited sentences) in <mark>."""
    out, pos = [], 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, len(text))
        if start >= end:  # overlapping or out of range: nothing new to mark
            continue
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def sources_html(ans: Answer | None, key: str = "") -> str:
    """The sources panel: one card per cited passage, every corpus string escaped. With
    ``key`` (the answer's place in the chat), each card carries ``data-cite="key-n"`` for the
    page to open it in the reading view."""
    if ans is None:
        return (
            '<div class="src-empty">提问后，这里显示答案引用的原文段落，引用的句子会高亮。<br>'
            "The passages an answer cites appear here, the quoted sentences highlighted.</div>"
        )
    if not ans.citations:
        return '<div class="src-empty">没有找到相关段落。No passages found.</div>'
    heading = ("引用来源 · Sources" if ans.found else "最接近的段落 · Nearest passages" if ans.status == PARTIAL
               else "可能相关的段落 · Possibly related")
    cards = [f"<h2>{heading}</h2>"]  # under the page's h1: no skipped level
    for n, hit in enumerate(ans.citations, start=1):
        p = hit.passage
        where = " · ".join(html.escape(x) for x in (p.section, p.paragraph_label, p.page_label) if x)
        also = ""
        if hit.also_in_citations:
            twins = "；".join(html.escape(c) for c in hit.also_in_citations)
            also = f'<div class="src-also">也见于 · also in：{twins}</div>'
        spans = hit.cited if ans.sentences else ()
        cite = f' data-cite="{html.escape(key)}-{n}" tabindex="0" role="button"' if key else ""
        cards.append(
            f'<div class="src-card" data-n="{n}"{cite}>'
            f'<div class="src-head"><span class="src-n">[{n}]</span>'
            f'<span class="src-title">{html.escape(p.speech_title)}</span> · {where}</div>'
            f'<div class="src-text">{highlight(p.text, spans)}</div>{also}</div>'
        )
    # What "Copy with sources" puts on the clipboard: the plain text, read by the page's script.
    cards.append(f'<pre class="src-plain" hidden>{html.escape(plain(ans))}</pre>')
    return "\n".join(cards)


def plain_chunks(ans: Answer) -> list[str]:
    """`plain` cut into pieces to stream: one sentence with its [n] marker each, then the
    sources (an abstention: a line each). Joined, they are exactly ``plain(ans)``."""
    if not ans.sentences:
        # an abstention's text already lists the related passages
        return ans.text.splitlines(keepends=True)
    sources = "\n\n来源：" + "".join(f"\n[{n}] {h.citation}" for n, h in enumerate(ans.citations, start=1))
    pieces = [s.plain for s in ans.sentences]
    if ans.notice:
        pieces.insert(0, f"{ans.notice}\n")
    if "".join(pieces) != ans.text:  # an Answer built by hand, without its sentences
        pieces = [ans.text]
    return [*pieces, sources]


def plain(ans: Answer) -> str:
    """The answer as plain text followed by its sources, one per line: for the terminal, the
    clipboard, and chat clients (the OpenAI-compatible API, MCP) that show text as it is."""
    return "".join(plain_chunks(ans))


# --- the reading view and the documents list --------------------------------------------------


def speech_meta(speech: Speech) -> str:
    """The metadata line of a speech, plain: date · speaker · place · occasion."""
    return " · ".join(x for x in (speech.date, speech.speaker, speech.place, speech.occasion) if x)


def reading_html(speech: Speech, passages: Sequence[Passage], *, target: str = "",
                 spans: Sequence[tuple[int, int]] = ()) -> str:
    """A whole speech to read: its title and metadata, each section heading once, every
    paragraph numbered. The passage with id ``target`` is marked (``rv-target``, for the page
    to scroll to) with ``spans`` of its text highlighted. Every corpus string is escaped."""
    meta = speech_meta(speech)
    source = f"{speech.source}（{speech.format}{'，OCR' if speech.ocr else ''}）" if speech.format else speech.source
    # A bar that stays at the top while the speech scrolls: the way back and what is being read
    # (the page's script turns a click on the button into the hidden #back's).
    bar = (f'<div class="rv-bar"><button type="button" class="rv-back">← 返回对话 · Back to chat</button>'
           f'<span class="rv-bar-title" aria-hidden="true">{html.escape(speech.title)}</span></div>')
    out = [bar, f'<article class="rv" lang="zh-CN"><h2 class="rv-title">{html.escape(speech.title)}</h2>',
           f'<div class="rv-meta">{html.escape(meta)}</div>' if meta else "",
           f'<div class="rv-source">来源文件 · Source file：{html.escape(source)}</div>',
           '<div class="rv-ocr">扫描件，文字由OCR识别，可能有误 · Scanned: text read by OCR, may hold misreadings</div>'
           if speech.ocr else ""]
    section = None
    for p in passages:
        if p.section != section:
            section = p.section
            if section:
                out.append(f'<h3 class="rv-section">{html.escape(section)}</h3>')
        hit = p.id == target
        text = highlight(p.text, spans) if hit else html.escape(p.text)
        cls = "rv-p rv-target" if hit else "rv-p"
        focus = ' tabindex="-1"' if hit else ""  # the page moves focus to it on open
        page = f' data-page="{p.page}"' if p.page else ""
        label = " · ".join(x for x in (p.paragraph_label, p.page_label) if x)
        out.append(f'<p class="{cls}" data-paragraph="{p.paragraph}"{page}{focus}><span class="rv-n">'
                   f'{html.escape(label)}</span>{text}</p>')
    if not passages:
        out.append('<p class="rv-empty">这篇讲话没有可显示的段落。No paragraphs to show.</p>')
    out.append("</article>")
    return "".join(out)


READING_EMPTY = ('<div class="rv-empty">在上面的表格中点一篇讲话，或点答案里的 [n]，在这里阅读全文。<br>'
                 "Pick a speech in the table above, or click an [n] in an answer, to read it here.</div>")


def examples_html(questions: Sequence[str]) -> str:
    """The example questions as buttons (the page's script asks one when it is clicked); nothing
    when there are none. The questions come from the corpus's headings: escaped."""
    if not questions:
        return ""
    items = "".join(f'<li><button type="button" class="ex-q" data-ask="{html.escape(q, quote=True)}">'
                    f"{html.escape(q)}</button></li>" for q in questions)
    return f'<div class="ex"><h2 class="ex-h">示例问题（点一下即提问）</h2><ul class="ex-list">{items}</ul></div>'


def chips_html(chips: Sequence[tuple[str, str]]) -> str:
    """The scope of the next question as chips: (label, value) pairs, values escaped."""
    items = "".join(f'<span class="chip"><span class="chip-k">{html.escape(k)}</span>{html.escape(v)}</span>'
                    for k, v in chips)
    return f'<div class="chips" aria-label="当前检索范围 · Current scope">{items}</div>'


def staged_html(names: Sequence[str]) -> str:
    """The files dropped and waiting for "Add and rebuild", names escaped."""
    if not names:
        return ""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in names)
    return (f'<div class="up-staged"><strong>待添加 · Ready to add {len(names)}</strong><ul>{items}</ul>'
            "点「添加并更新索引」开始 · press Add and rebuild to start</div>")


def upload_html(report: dict[str, Any]) -> str:
    """What an upload did (`UploadReport.to_dict()`), file names and reasons escaped."""
    added = "".join(f"<li>{html.escape(a['name'])} → {html.escape(a['stored_as'])}</li>" for a in report["added"])
    skipped = "".join(f"<li>{html.escape(s['name'])}：{html.escape(s['reason'])}</li>" for s in report["skipped"])
    removed = "".join(f"<li>{html.escape(r['source'])} → {html.escape(r['kept_as'])}</li>"
                      for r in report.get("removed", ()))
    if removed:
        out = [f'<div class="up-ok"><strong>已删除 · Removed</strong><ul>{removed}</ul></div>']
    else:
        out = [f'<div class="up-ok"><strong>已添加 · Added {len(report["added"])}</strong><ul>{added}</ul></div>'
               if added else '<div class="up-ok">没有添加文件 · Nothing added</div>']
    if skipped:
        out.append(f'<div class="up-skip"><strong>未添加 · Not added {len(report["skipped"])}</strong>'
                   f"<ul>{skipped}</ul></div>")
    if report.get("build"):
        out.append(f'<div class="up-build">{html.escape(report["build"])}</div>')
    return "".join(out)
