"""Render an `Answer` for a reader: markdown for the chat, HTML for the sources panel, plain
text for the terminal and the clipboard.

An Answer is data (sentences, citation numbers, spans); this module is the one place that turns
it into markup, and nothing parses the result back. Corpus text is untrusted: every string from
it is escaped here, for markdown (`escape_markdown`) or HTML (`html.escape`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from speechrag.answering import NOT_FOUND, PARTIAL, Answer, AnswerSentence, snippet

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


def markdown_chunks(ans: Answer) -> list[str]:
    """The answer as escaped markdown, one piece per sentence with its [n] marker (and a space
    after it, which markdown drops at the end of a message), for streaming. A partly answered
    question starts with what the speeches leave out, in italics, then the nearest sentences."""
    pieces = [f"{escape_markdown(s.text)}{escape_markdown(_label(s))}[{s.citation}] " for s in ans.sentences]
    if ans.found:
        return pieces
    if ans.status == PARTIAL and ans.sentences:
        return [f"*{escape_markdown(ans.notice)}*\n\n", *pieces]
    chunks = [escape_markdown(NOT_FOUND)]
    if ans.citations:
        chunks.append(RELATED_MD)
    for n, hit in enumerate(ans.citations, start=1):
        chunks.append(f"\n- {escape_markdown(hit.citation)}：{escape_markdown(snippet(hit.passage.text))} [{n}]")
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


def sources_html(ans: Answer | None) -> str:
    """The sources panel: one card per cited passage, every corpus string escaped."""
    if ans is None:
        return (
            '<div class="src-empty">提问后，这里显示答案引用的原文段落，引用的句子会高亮。<br>'
            "The passages an answer cites appear here, the quoted sentences highlighted.</div>"
        )
    if not ans.citations:
        return '<div class="src-empty">没有找到相关段落。No passages found.</div>'
    heading = ("引用来源 · Sources" if ans.found else "最接近的段落 · Nearest passages" if ans.status == PARTIAL
               else "可能相关的段落 · Possibly related")
    cards = [f"<h3>{heading}</h3>"]
    for n, hit in enumerate(ans.citations, start=1):
        p = hit.passage
        where = " · ".join(html.escape(x) for x in (p.section, p.paragraph_label) if x)
        also = ""
        if hit.also_in_citations:
            twins = "；".join(html.escape(c) for c in hit.also_in_citations)
            also = f'<div class="src-also">也见于 · also in：{twins}</div>'
        spans = hit.cited if ans.sentences else ()
        cards.append(
            f'<div class="src-card" data-n="{n}">'
            f'<div class="src-head"><span class="src-n">[{n}]</span>'
            f'<span class="src-title">{html.escape(p.speech_title)}</span> · {where}</div>'
            f'<div class="src-text">{highlight(p.text, spans)}</div>{also}</div>'
        )
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
