"""The web chat (Gradio): questions in, cited answers streamed out, sources beside them.

Answers are rendered by `speechrag.render`: everything shown on the page that comes from the
corpus or the user is escaped there (markdown for the chat bubbles, HTML for the sources
panel); the Chatbot's sanitiser is a second line of defence, never the first (`gr.HTML` has
none). The server serves only Gradio's own assets: `GuardMiddleware` refuses every route that
reads a file or fetches a URL.

`serve` also serves, on the same host and port, the OpenAI-compatible API at ``/v1``
(`speechrag.openai_api`) and, when asked, the MCP tools at ``/mcp`` (`speechrag.mcp_server`).
The page, ``/v1`` and ``/mcp`` share one `IndexService`: one lock, one hot-reloading Searcher.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gradio as gr
from gradio.events import api as gr_api

from speechrag.errors import ConfigError, QueryError, SpeechragError, one_line
from speechrag.passage import Passage, Speech
from speechrag.render import escape_markdown, markdown_chunks, sources_html
from speechrag.searcher import MAX_QUERY_CHARS, MODES, Searcher
from speechrag.serving import IndexService, Limits, Slots
from speechrag.text import strip_enumerator

logger = logging.getLogger(__name__)

MAX_K = 20  # the slider's top; answer() itself accepts up to retrieval.MAX_K
DEFAULT_K = 5
QUEUE_MAX_SIZE = 64
ANALYTICS_EVENTS = 500
CONCURRENCY_LIMIT = 4
STREAM_DELAY = 0.05  # seconds between streamed sentences, so the answer reads as it arrives
SHOWN_QUESTION_CHARS = 200
EXAMPLE_SCAN = 5000  # passages read for example questions: the first speeches suffice

MODE_LABELS = {"hybrid": "混合 Hybrid", "dense": "语义 Dense", "keyword": "关键词 Keyword"}

# Routes that read files from disk or fetch URLs for the browser. This app shows no files,
# takes no uploads and needs no proxy, so they are refused whatever GRADIO_ALLOWED_PATHS says.
BLOCKED_ROUTES = re.compile(
    r"^/+(gradio_api/+)?(file[=/]|proxy=|upload|custom_component/|stream/|run-history|runs"
    r"|vibe|undo-vibe|process_recording|dev/|monitoring)"
)


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


# --- what the page offers -----------------------------------------------------------------


def speech_choices(speeches: Sequence[Speech]) -> list[tuple[str, str]]:
    """(title, id) of every speech in the index, in corpus order."""
    return [(s.title, s.id) for s in speeches]


_PLAIN_CLAUSE = re.compile(r"^[\u4e00-\u9fff、“”]{4,24}$")


def example_questions(passages: Sequence[Passage], n: int = 4) -> list[str]:
    """Questions made from the section headings, taking speeches in turn so they differ.

    A heading is an instruction ("突出重点，狠抓落实，扎实做好…工作"); its last clause asked
    with 如何 is a question the speech answers. Only headings of plain Chinese are used.
    """
    by_speech: dict[str, list[str]] = {}
    taken: set[str] = set()
    for p in passages:
        clause = strip_enumerator(p.section.split(" › ")[0]).split("，")[-1]
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


Chat = list[dict[str, str]]
Update = tuple[Chat, list[str], str, str]


def make_respond(service: IndexService, delay: float = STREAM_DELAY) -> Callable[..., Iterator[Update]]:
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
            yield chat, turns, sources_html(None), ""
            ans = service.ask(question, turns, mode=mode, k=int(k), speeches=speeches or None)
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
        for chunk in markdown_chunks(ans):
            text += chunk
            # A new list per update: Gradio diffs successive values, so none may be mutated.
            yield [*chat, {"role": "assistant", "content": text}], turns, panel, ""
            time.sleep(delay)
        yield [*chat, {"role": "assistant", "content": text}], [*turns, ans.question], panel, ""

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


def make_ask(service: IndexService) -> Callable[..., dict[str, Any]]:
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
            return service.ask(question, turns, mode=mode, k=_whole(k), speeches=speech_ids or None).to_dict()
        except SpeechragError as exc:
            raise gr.Error(one_line(exc), print_exception=False) from exc

    return ask


# --- the page -----------------------------------------------------------------------------


def build_demo(service: IndexService, *, delay: float = STREAM_DELAY) -> gr.Blocks:
    """The chat page over `service`; `delay` paces the sentence-by-sentence streaming."""
    searcher = service.searcher
    respond = make_respond(service, delay)
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
                examples = example_questions(searcher.store.passages(range(min(searcher.store.size, EXAMPLE_SCAN))))
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
                        speech_choices(searcher.speeches),
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
        gr_api(make_ask(service), api_name="ask", concurrency_id="answer")
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=CONCURRENCY_LIMIT)
    # Gradio's queue keeps per-event monitoring data (~2.3 KB each) for its last 10,000 events
    # ($GRADIO_ANALYTICS_MAX_EVENTS), even with analytics off: the 10-minute soak's server RSS
    # climbed by that until the cap. A smaller cap set by the operator still wins.
    queue = demo._queue
    queue.ANALYTICS_MAX_EVENTS = min(queue.ANALYTICS_MAX_EVENTS, ANALYTICS_EVENTS)
    return demo


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def api_app_kwargs(service: IndexService, *, host: str, port: int, api_key: str | None = None,
                   mcp: bool = False, limits: Limits | None = None) -> dict[str, Any]:
    """The ``app_kwargs`` that put ``/v1`` (and with ``mcp``, ``/mcp``) on the page's own
    FastAPI app: routes passed at construction come before Gradio's, and a lifespan passed
    there runs inside Gradio's. Both share ``service`` and one set of answering slots, and
    require ``api_key`` (when set) as a bearer token."""
    from starlette.routing import Mount

    from speechrag.openai_api import openai_router

    limits = limits or Limits(max_concurrency=CONCURRENCY_LIMIT)
    slots = Slots(limits)
    routes: list[Any] = [Mount("/v1", openai_router(service.ask, api_key=api_key, limits=limits, slots=slots))]
    kwargs: dict[str, Any] = {"routes": routes}
    if mcp:
        try:
            from speechrag.mcp_server import mcp_endpoint
        except ImportError as exc:
            raise ConfigError("the MCP tools need the mcp package: pip install 'speechrag[mcp]'") from exc
        # The SDK refuses Host headers other than loopback's (DNS rebinding); a server that
        # listens on a named address must accept that name too.
        extra_hosts = [] if host in LOOPBACK else [f"{host}:{port}"]
        endpoint = mcp_endpoint(service.search, service.ask, api_key=api_key, slots=slots,
                                allowed_hosts=extra_hosts, allowed_origins=[f"http://{h}" for h in extra_hosts])
        routes.append(endpoint.route)
        kwargs["lifespan"] = endpoint.lifespan
    return kwargs


def serve(
    searcher: Searcher | IndexService,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    block: bool = True,
    delay: float = STREAM_DELAY,
    api_key: str | None = None,
    mcp: bool = False,
) -> gr.Blocks:
    """Serve the chat on host:port (no share link), the OpenAI-compatible API at ``/v1`` and,
    with ``mcp``, the MCP tools at ``/mcp``; ``api_key``, when set, is required by ``/v1`` and
    ``/mcp`` as ``Authorization: Bearer <key>``. With `block=False`, return once listening
    (then `demo.local_url` is the address and `demo.close()` stops it)."""
    from starlette.middleware import Middleware

    service = searcher if isinstance(searcher, IndexService) else IndexService(searcher)
    demo = build_demo(service, delay=delay)
    if host not in LOOPBACK and not api_key:
        logger.warning("serving /v1%s on %s without an API key: anyone who can reach it may use it",
                       " and /mcp" if mcp else "", host)
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
        app_kwargs={"middleware": [Middleware(GuardMiddleware)],
                    **api_app_kwargs(service, host=host, port=port, api_key=api_key, mcp=mcp)},
    )
    logger.info("serving on %s", demo.local_url)
    if block:
        demo.block_thread()
    return demo
