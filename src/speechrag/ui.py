"""The web chat (Gradio): questions in, cited answers streamed out, sources beside them.

Everything shown on the page that comes from the corpus or the user passes through
`escape_markdown` (chat bubbles) or `html.escape` (sources panel); the Chatbot's sanitiser
is a second line of defence, never the first (`gr.HTML` has none). The server serves only
Gradio's own assets: `GuardMiddleware` refuses every route that reads a file or fetches a URL.
"""

from __future__ import annotations

import html
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gradio as gr
from gradio.events import api as gr_api

from speechrag.answer import NOT_FOUND, Answer, answer, unescape_markdown
from speechrag.errors import QueryError, SpeechragError
from speechrag.index import Index
from speechrag.passage import Passage
from speechrag.retrieval import MAX_QUERY_CHARS, MODES, get_index, is_broken_text

logger = logging.getLogger(__name__)

MAX_K = 20  # the slider's top; answer() itself accepts up to retrieval.MAX_K
DEFAULT_K = 5
QUEUE_MAX_SIZE = 64
ANALYTICS_EVENTS = 500
CONCURRENCY_LIMIT = 4
STREAM_DELAY = 0.05  # seconds between streamed sentences, so the answer reads as it arrives
SHOWN_QUESTION_CHARS = 200

MODE_LABELS = {"hybrid": "混合 Hybrid", "dense": "语义 Dense", "keyword": "关键词 Keyword"}

# Routes that read files from disk or fetch URLs for the browser. This app shows no files,
# takes no uploads and needs no proxy, so they are refused whatever GRADIO_ALLOWED_PATHS says.
BLOCKED_ROUTES = re.compile(
    r"^/+(gradio_api/+)?(file[=/]|proxy=|upload|custom_component/|stream/|run-history|runs"
    r"|vibe|undo-vibe|process_recording|dev/|monitoring)"
)

# One sentence of `Answer.text` and its marker: escaped pairs or ordinary characters, then [n].
_MARKED_SENTENCE = re.compile(r"((?:\\.|[^\\\[])*)\[(\d+)\]", re.S)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")

THEME = gr.themes.Default(
    # System fonts only: nothing is fetched from a font CDN.
    font=["Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "ui-sans-serif", "sans-serif"],
    font_mono=["Noto Sans Mono CJK SC", "ui-monospace", "monospace"],
)

CSS = """
#sources .src-card { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 8px 12px; margin-bottom: 10px; background: var(--background-fill-secondary); }
#sources h3 { margin: 0 0 8px 0; font-size: 1rem; }
#sources .src-head { font-weight: 600; margin-bottom: 4px; }
#sources .src-n { color: var(--color-accent); margin-right: 6px; }
#sources .src-text { line-height: 1.75; margin: 4px 0; white-space: pre-wrap; }
#sources mark { background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 2px; }
#sources .src-also, #sources .src-empty { color: var(--body-text-color-subdued); font-size: 0.9em; }
"""


class GuardMiddleware:
    """ASGI middleware answering 403 to every file-serving route (see `BLOCKED_ROUTES`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and BLOCKED_ROUTES.match(scope.get("path", "")):
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": b"Forbidden"})
            return
        await self.app(scope, receive, send)


# --- rendering ----------------------------------------------------------------------------


def escape_markdown(text: str) -> str:
    """Make untrusted text render literally in a markdown bubble: no tags, links or images."""
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # Entities rather than backslashes for these: `\<` would still reach the HTML parser, and
    # GFM turns `http://…` into a link even with its dots escaped, but not `http&#58;//…`.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace(":", "&#58;")


def answer_chunks(ans: Answer) -> list[str]:
    """The answer as escaped markdown, one piece per sentence with its [n] marker (and a
    space after it, which markdown drops at the end of a message).

    `Answer.text` is already escaped by `answer()`; it is unescaped and escaped again here so
    that nothing reaches the page without this module's own (stricter) escaping.
    """
    if not ans.found:
        chunks = [escape_markdown(NOT_FOUND)]
        if ans.citations:
            chunks.append("\n\n**可能相关的段落（仅供参考）· Possibly related:**\n")
        for n, hit in enumerate(ans.citations, start=1):
            text = hit.passage.text
            snippet = text[:60] + ("…" if len(text) > 60 else "")
            chunks.append(f"\n- {escape_markdown(hit.citation)}：{escape_markdown(snippet)} [{n}]")
        return chunks
    # `answer()` escapes every `[` of corpus text, so an unescaped `[n]` is always a marker.
    chunks = [
        f"{escape_markdown(unescape_markdown(m.group(1)).strip())}[{m.group(2)}] "
        for m in _MARKED_SENTENCE.finditer(ans.text)
    ]
    return chunks or [escape_markdown(unescape_markdown(ans.text))]


def highlight(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Escaped `text` with the given character spans (the cited sentences) in <mark>."""
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
    heading = "引用来源 · Sources" if ans.found else "可能相关的段落 · Possibly related"
    cards = [f"<h3>{heading}</h3>"]
    for n, hit in enumerate(ans.citations, start=1):
        p = hit.passage
        where = " · ".join(html.escape(x) for x in (p.section, _paragraph_label(p)) if x)
        also = ""
        if hit.also_in_citations:
            twins = "；".join(html.escape(c) for c in hit.also_in_citations)
            also = f'<div class="src-also">也见于 · also in：{twins}</div>'
        spans = hit.cited if ans.found else ()
        cards.append(
            f'<div class="src-card" data-n="{n}">'
            f'<div class="src-head"><span class="src-n">[{n}]</span>'
            f'<span class="src-title">{html.escape(p.speech_title)}</span> · {where}</div>'
            f'<div class="src-text">{highlight(p.text, spans)}</div>{also}</div>'
        )
    return "\n".join(cards)


def _paragraph_label(p: Passage) -> str:
    return f"第{p.paragraph}段" + (f"（{p.part}）" if p.part else "")


# --- what the page offers -----------------------------------------------------------------


def speech_choices(passages: Sequence[Passage]) -> list[tuple[str, str]]:
    """(title, id) of every speech in the index, in corpus order."""
    seen: dict[str, str] = {}
    for p in passages:
        seen.setdefault(p.speech_id, p.speech_title)
    return [(title, sid) for sid, title in seen.items()]


_NUMBERING = re.compile(r"^([一二三四五六七八九十]+个三|[一二三四五六七八九十]+[、.．]|\d+[、.．])")
_PLAIN_CLAUSE = re.compile(r"^[\u4e00-\u9fff、“”]{4,24}$")


def example_questions(passages: Sequence[Passage], n: int = 4) -> list[str]:
    """Questions made from the section headings, taking speeches in turn so they differ.

    A heading is an instruction ("突出重点，狠抓落实，扎实做好…工作"); its last clause asked
    with 如何 is a question the speech answers. Only headings of plain Chinese are used.
    """
    by_speech: dict[str, list[str]] = {}
    taken: set[str] = set()
    for p in passages:
        clause = _NUMBERING.sub("", p.section).lstrip("，,").split("，")[-1]
        clause = clause.removeprefix("就是要").strip()
        q = f"如何{clause}？"
        if _PLAIN_CLAUSE.match(clause) and q not in taken:
            taken.add(q)
            by_speech.setdefault(p.speech_id, []).append(q)
    out: list[str] = []
    queues = list(by_speech.values())
    while len(out) < n and any(queues):
        for qs in queues:
            if qs and len(out) < n:
                out.append(qs.pop(0))
    return out


# --- the handlers -------------------------------------------------------------------------


def check_question(question: object) -> str:
    """The question stripped, or a QueryError naming the problem and the fix (in Chinese)."""
    q = question.strip() if isinstance(question, str) else ""
    if not q:
        raise QueryError("问题是空的：请输入一个问题。(empty question: type one)")
    if len(q) > MAX_QUERY_CHARS:
        raise QueryError(
            f"问题太长（{len(q)} 字，上限 {MAX_QUERY_CHARS} 字）：请缩短后再问。"
            f"(question too long: {len(q)} > {MAX_QUERY_CHARS} characters)"
        )
    if is_broken_text(q):
        raise QueryError("问题含有无法识别的字符：请重新输入。(broken characters: unpaired surrogates)")
    return q


class Asker:
    """`answer()` over one index, with the question checked here first (server-side)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        # One encoder serves every session; whether it is thread-safe is not promised.
        self._lock = threading.Lock()

    def __call__(
        self,
        question: object,
        *,
        mode: str = "hybrid",
        k: int = DEFAULT_K,
        speeches: Sequence[str] | None = None,
        history: Sequence[str] | None = None,
    ) -> Answer:
        q = check_question(question)
        with self._lock:
            if not self.index.is_current():
                # A rebuild was published (`speechrag build` while the server runs): serve it.
                logger.info("index %s: new generation published, reloading", self.index.root)
                self.index = get_index(self.index.root)
            return answer(
                q,
                k=k,
                history=list(history or ()),
                mode=mode,
                speeches=list(speeches) if speeches else None,
                index=self.index,
            )


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


Chat = list[dict[str, str]]
Update = tuple[Chat, list[str], str, str]


def make_respond(asker: Asker, delay: float = STREAM_DELAY) -> Callable[..., Iterator[Update]]:
    """The chat handler: yields (chat, turns, sources panel, textbox) as the answer streams."""

    def respond(
        question: str, chat: Chat, turns: list[str], mode: str, k: float, speeches: list[str]
    ) -> Iterator[Update]:
        shown = question.strip() if isinstance(question, str) else ""
        # Echo broken text safely: a lone surrogate would make the JSON event stream fail.
        shown = shown.encode("utf-8", "replace").decode("utf-8")
        if len(shown) > SHOWN_QUESTION_CHARS:
            shown = shown[:SHOWN_QUESTION_CHARS] + "…"
        chat = [*(chat or []), {"role": "user", "content": escape_markdown(shown) or "（空）"}]
        turns = list(turns or [])
        try:
            q = check_question(question)
            yield chat, turns, sources_html(None), ""
            ans = asker(q, mode=mode, k=int(k), speeches=speeches, history=turns)
        except SpeechragError as exc:
            chat.append({"role": "assistant", "content": "⚠️ " + escape_markdown(one_line(exc))})
            yield chat, turns, sources_html(None), ""
            return
        except Exception:
            logger.exception("answer() failed")
            chat.append({"role": "assistant", "content": "⚠️ 内部错误，请稍后再试。(internal error)"})
            yield chat, turns, sources_html(None), ""
            return
        panel = sources_html(ans)
        text = ""
        for chunk in answer_chunks(ans):
            text += chunk
            # A new list per update: Gradio diffs successive values, so none may be mutated.
            yield [*chat, {"role": "assistant", "content": text}], turns, panel, ""
            time.sleep(delay)
        yield [*chat, {"role": "assistant", "content": text}], [*turns, q], panel, ""

    return respond


def _whole(k: object) -> int:
    """k as sent by a client (JSON may carry 5, 5.0 or "5"), or a QueryError."""
    try:
        value = float(k)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise QueryError(f"k must be a whole number, not {k!r}") from None
    if not value.is_integer():
        raise QueryError(f"k must be a whole number, not {k!r}")
    return int(value)


def _texts(value: object, name: str) -> list[str] | None:
    """An optional list of strings from a client, or a QueryError naming the argument."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise QueryError(f"{name} must be a list of strings, not {type(value).__name__}")
    return list(value)


def make_ask(asker: Asker) -> Callable[..., dict[str, Any]]:
    """The `/ask` API endpoint."""

    def ask(
        question: str,
        mode: str = "hybrid",
        k: int = DEFAULT_K,
        speeches: list[str] | None = None,
        history: list[str] | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the speeches.

        Returns {text, found, question, query, mode, citations: [...], evidence}; each sentence
        of text ends with [n], and citations[n-1] gives its speech, section and paragraph.
        """
        try:
            speech_ids, turns = _texts(speeches, "speeches"), _texts(history, "history")
            return asker(question, mode=mode, k=_whole(k), speeches=speech_ids, history=turns).to_dict()
        except SpeechragError as exc:
            raise gr.Error(one_line(exc), print_exception=False) from exc

    return ask


# --- the page -----------------------------------------------------------------------------


def build_demo(index: Index, *, delay: float = STREAM_DELAY) -> gr.Blocks:
    """The chat page over `index`; `delay` paces the sentence-by-sentence streaming."""
    asker = Asker(index)
    respond = make_respond(asker, delay)
    # Gradio's queue keeps per-event monitoring data (~2.3 KB each) for its last 10,000 events,
    # even with analytics off: the 10-minute soak's server RSS climbed by that until the cap.
    # Read when the queue is created, so it is set here; a value the operator set wins.
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", str(ANALYTICS_EVENTS))
    demo = gr.Blocks(title="讲话稿问答 · Speech Q&A", analytics_enabled=False)
    with demo:
        gr.Markdown(
            "## 讲话稿问答 · Speech Q&A\n"
            "答案全部摘自讲话原文，每句后的 [n] 对应右侧的原文段落。"
            "Every answer sentence is quoted from a speech; [n] points to its source on the right."
        )
        turns = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="对话 · Chat",
                    elem_id="chat",
                    height=460,
                    sanitize_html=True,
                    render_markdown=True,
                    latex_delimiters=[],
                    allow_tags=False,
                    feedback_options=None,
                    buttons=["copy"],
                    placeholder="在下方输入问题，或点一个示例问题。<br>Ask below, or pick an example.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="输入问题，按回车发送 · Type a question, press Enter",
                        show_label=False,
                        max_length=MAX_QUERY_CHARS,
                        lines=1,
                        max_lines=4,
                        scale=5,
                        elem_id="question",
                        autofocus=True,
                    )
                    send = gr.Button("发送 Send", variant="primary", scale=1, min_width=90)
                examples = example_questions(index.passages)
                shown_examples = (
                    gr.Examples(
                        examples=[[q] for q in examples],
                        inputs=[question],
                        label="示例问题 · Examples（点一下即提问 · click to ask）",
                        cache_examples=False,
                    )
                    if examples
                    else None
                )
            with gr.Column(scale=2):
                sources = gr.HTML(
                    sources_html(None), js_on_load=None, elem_id="sources", max_height=520
                )
                with gr.Accordion("检索设置 · Settings", open=True):
                    mode = gr.Radio(
                        [(MODE_LABELS[m], m) for m in ("hybrid", "dense", "keyword") if m in MODES],
                        value="hybrid",
                        label="检索方式 · Search mode",
                    )
                    k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="段落数 · Passages")
                    speeches = gr.Dropdown(
                        speech_choices(index.passages),
                        value=[],
                        multiselect=True,
                        label="限定讲话 · Speeches",
                        info="不选即搜索全部 · none selected = all",
                    )
                    clear = gr.Button("清空对话 · Clear chat", variant="secondary")

        chat_event: dict[str, Any] = {
            "fn": respond,
            "inputs": [question, chatbot, turns, mode, k, speeches],
            "outputs": [chatbot, turns, sources, question],
            "api_visibility": "private",
            "concurrency_id": "answer",
            "show_progress": "minimal",
        }
        question.submit(**chat_event)
        send.click(**chat_event)
        if shown_examples is not None:  # a click fills the box, then asks
            shown_examples.load_input_event.then(**chat_event)

        def reset() -> tuple[Chat, list[str], str, str]:
            return [], [], sources_html(None), ""

        clear.click(reset, outputs=[chatbot, turns, sources, question],
                    api_visibility="private", queue=False)
        # The chat's own bin icon clears the messages; forget the turns and sources with them.
        chatbot.clear(reset, outputs=[chatbot, turns, sources, question],
                      api_visibility="private", queue=False)
        gr_api(make_ask(asker), api_name="ask", concurrency_id="answer")
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=CONCURRENCY_LIMIT)
    return demo


def serve(
    index: Index,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    block: bool = True,
    delay: float = STREAM_DELAY,
) -> gr.Blocks:
    """Serve the chat on host:port (no share link); with `block=False`, return once listening
    (then `demo.local_url` is the address and `demo.close()` stops it)."""
    from starlette.middleware import Middleware

    demo = build_demo(index, delay=delay)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=True,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        quiet=True,  # Gradio's banner suggests share=True, which this app never uses
        footer_links=["api"],
        theme=THEME,
        css=CSS,
        app_kwargs={"middleware": [Middleware(GuardMiddleware)]},
    )
    logger.info("serving on %s", demo.local_url)
    if block:
        demo.block_thread()
    return demo
