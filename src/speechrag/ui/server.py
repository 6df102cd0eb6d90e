"""Serving the page: `serve` puts it, the OpenAI-compatible API at ``/v1``
(`speechrag.openai_api`) and, when asked, the MCP tools at ``/mcp`` (`speechrag.mcp_server`) on
one host and port, all behind `GuardMiddleware`, which refuses every route that reads a file or
fetches a URL (but the analysis tab's own CSV/XLSX downloads). The page, ``/v1`` and ``/mcp``
share one `IndexService`: one lock, one hot-reloading Searcher.
"""

from __future__ import annotations

import html
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from speechrag.config import LOOPBACK, check_exposure
from speechrag.errors import ConfigError, QueryError, SpeechragError, one_line
from speechrag.export import Exchange, check_format, export
from speechrag.searcher import Searcher
from speechrag.serving import IndexService, RequestLimits, Slots, bearer_ok
from speechrag.ui.analysis_tab import is_export
from speechrag.ui.conversation import Conversations
from speechrag.ui.handlers import STREAM_DELAY
from speechrag.ui.layout import CONCURRENCY_LIMIT, build_demo
from speechrag.ui.look import CSS, PAGE_JS, THEME
from speechrag.uploads import Uploader, UploadLimits
from speechrag.userdata import UserData

logger = logging.getLogger(__name__)

# Routes that read files from disk or fetch URLs for the browser. This app shows no files but
# the analysis tab's downloads (FILE_ROUTE below), takes no uploads (unless --allow-upload) and
# needs no proxy, so they are refused whatever GRADIO_ALLOWED_PATHS says.
BLOCKED_ROUTES = re.compile(
    r"^/+(gradio_api/+)?(file[=/]|proxy=|upload|custom_component/|stream/|run-history|runs"
    r"|vibe|undo-vibe|process_recording|dev/|monitoring)"
)


UPLOAD_ROUTES = re.compile(r"^/+(gradio_api/+)?upload(_progress)?/*$")
# The file route, let through for the analysis tab's downloads only (`analysis_tab.is_export`).
FILE_ROUTE = re.compile(r"^/+(gradio_api/+)?file=(?P<path>.+)$")


class GuardMiddleware:
    """ASGI middleware answering 403 to every file-serving route (see `BLOCKED_ROUTES`) but the
    file route for the analysis tab's CSV/XLSX downloads (`analysis_tab.is_export`: a table it
    wrote into its own folder); with ``allow_upload`` (``serve --allow-upload``), Gradio's
    upload route is let through, and only it: uploaded files are still never served back."""

    def __init__(self, app: Any, allow_upload: bool = False) -> None:
        self.app = app
        self.allow_upload = allow_upload

    def blocked(self, path: str) -> bool:
        if not BLOCKED_ROUTES.match(path):
            return False
        if self.allow_upload and UPLOAD_ROUTES.match(path):
            return False
        download = FILE_ROUTE.match(path)
        return not (download and is_export(download["path"]))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.blocked(scope.get("path", "")):
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": b"Forbidden"})
            return
        await self.app(scope, receive, send)


PAGE_TITLE = "讲话稿问答 · Speech Q&A"
# Gradio picks the language of its own words (the sign-in form, the drop zone, its messages)
# from navigator.language, with no setting on the server; it ships them in zh-CN. Readers of
# this page read Chinese whatever their browser says, so the page says zh-CN before Gradio's
# scripts run. The <html lang> itself is written here, in the HTML served: a screen reader
# reads the page as Chinese from the first byte, not once a script has run.
ZH_HEAD = (
    f"<title>{html.escape(PAGE_TITLE)}</title>"
    "<script>for (const [k, v] of [['language', 'zh-CN'], ['languages', ['zh-CN', 'zh']]])"
    " Object.defineProperty(Navigator.prototype, k, {get: () => v, configurable: true});</script>"
)
_HTML_LANG = re.compile(rb'(<html\b[^>]*?\blang=")[^"]*(")', re.IGNORECASE)
_HEAD = re.compile(rb"<head\b[^>]*>", re.IGNORECASE)


def localise_html(body: bytes) -> bytes:
    """Gradio's page as served to a Chinese reader: ``lang="zh-CN"``, our title, and Gradio's
    own words in Chinese (see `ZH_HEAD`)."""
    body = _HTML_LANG.sub(rb"\1zh-CN\2", body, count=1)
    head = _HEAD.search(body)
    return body if head is None else body[: head.end()] + ZH_HEAD.encode() + body[head.end():]


class ChineseMiddleware:
    """ASGI middleware passing every HTML response through `localise_html` (the page and the
    sign-in form are the same HTML); anything else goes through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def rewrite(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                kinds = dict(message.get("headers") or [])
                if kinds.get(b"content-type", b"").startswith(b"text/html") and b"content-encoding" not in kinds:
                    start = message  # held until the body is whole
                    return
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = localise_html(b"".join(chunks))
                headers = [(k, v) for k, v in start.get("headers") or [] if k != b"content-length"]
                await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, rewrite)


MAX_EXPORT_QUESTIONS = 20  # a program's /export asks these in turn: bounded like any request


def signed_in_user(request: Any) -> str | None:
    """The user Gradio's sign-in cookie names, read as Gradio's own `/login_check` reads it
    (routes.get_current_user: ``access-token[-unsecure]-<cookie_id>`` in ``app.tokens``); None
    when the request carries no valid sign-in."""
    app = request.app
    cookie_id = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}")
    user = getattr(app, "tokens", {}).get(token)
    return str(user) if user else None


def sign_in_on(request: Any) -> bool:
    return getattr(request.app, "auth", None) is not None


def export_route(service: IndexService, conversations: Conversations, *, api_key: str | None = None) -> Any:
    """``/export``: ``GET ?session=<page>&format=docx|markdown[&answer=n]`` downloads a page's
    conversation (or its reply n); ``POST {"questions": [...], "format": ...}`` asks the
    questions in turn (each a follow-up of the ones before) and returns them as a document.
    With sign-in on, both need the sign-in cookie (or the API key as a bearer token, as `/v1`
    does); a page's conversation is only its user's. Without sign-in, a page's session id
    (random, known to that page only) is what names its conversation."""
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    def refuse(status: int, message: str) -> Response:
        return PlainTextResponse(message + "\n", status_code=status)

    def speaker(speech_id: str) -> str:
        speech = service.searcher.speech(speech_id)
        return speech.speaker if speech is not None else ""

    def ask_all(questions: list[str]) -> list[Exchange]:
        out: list[Exchange] = []
        history: list[str] = []
        for question in questions:
            ans = service.ask(question, history)
            history.append(ans.question)
            out.append(Exchange(question, ans))
        return out

    async def endpoint(request: Any) -> Response:
        from anyio import to_thread

        user = signed_in_user(request)
        keyed = api_key is not None and bearer_ok(request.headers.get("authorization"), api_key)
        if sign_in_on(request) and user is None and not keyed:
            return refuse(401, "请先登录 · sign in first (or send the API key as Authorization: Bearer <key>)")
        try:
            if request.method == "GET":
                params = request.query_params
                fmt = check_format(params.get("format", "docx"))
                conv = conversations.find(params.get("session", ""))
                if conv is None or (sign_in_on(request) and not keyed and conv.user != user):
                    return refuse(404, "没有这个对话 · no such conversation (reload the page)")
                only = params.get("answer")
                if only is not None and not only.isdigit():
                    raise QueryError(f"answer must be a reply number, not {only!r}")
                exchanges = conv.exchanges(None if only is None else int(only))
                if not exchanges:
                    return refuse(404, "没有可导出的回答 · nothing to export yet")
            else:
                if not sign_in_on(request) and api_key is not None and not keyed:
                    return refuse(401, "send the API key as Authorization: Bearer <key>")
                try:
                    body = await request.json()
                except ValueError:
                    raise QueryError("the body must be JSON: {\"questions\": [...], \"format\": \"docx\"}") from None
                questions = body.get("questions") if isinstance(body, dict) else None
                if (not isinstance(questions, list) or not questions or len(questions) > MAX_EXPORT_QUESTIONS
                        or not all(isinstance(q, str) for q in questions)):
                    raise QueryError(f"questions must be a list of 1 to {MAX_EXPORT_QUESTIONS} strings")
                fmt = check_format(body.get("format", "docx"))
                exchanges = await to_thread.run_sync(ask_all, questions)
            content, media, name = await to_thread.run_sync(export, exchanges, fmt, speaker)
        except SpeechragError as exc:
            return refuse(400, one_line(exc))
        return Response(content, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})

    return Route("/export", endpoint, methods=["GET", "POST"])


def api_app_kwargs(service: IndexService, *, host: str, port: int, api_key: str | None = None,
                   mcp: bool = False, limits: RequestLimits | None = None,
                   conversations: Conversations | None = None) -> dict[str, Any]:
    """The ``app_kwargs`` that put ``/v1`` (and with ``mcp``, ``/mcp``) on the page's own
    FastAPI app: routes passed at construction come before Gradio's, and a lifespan passed
    there runs inside Gradio's. Both share ``service`` and one set of answering slots, and
    require ``api_key`` (when set) as a bearer token."""
    from starlette.routing import Mount

    from speechrag.openai_api import openai_router

    limits = limits or RequestLimits(max_concurrency=CONCURRENCY_LIMIT)
    slots = Slots(limits)
    routes: list[Any] = [Mount("/v1", openai_router(service.ask, api_key=api_key, limits=limits, slots=slots)),
                         export_route(service, conversations if conversations is not None else Conversations(),
                                      api_key=api_key)]
    # No /openapi.json (nor /docs, /redoc: Gradio turns those off): the schema would list every
    # route to anyone, signed in or not; /v1 is documented as OpenAI's API.
    kwargs: dict[str, Any] = {"routes": routes, "openapi_url": None, "docs_url": None, "redoc_url": None}
    if mcp:
        try:
            from speechrag.mcp_server import mcp_endpoint
        except ImportError as exc:
            raise ConfigError("the MCP tools need the mcp package: pip install 'speechrag[mcp]'") from exc
        # The SDK refuses Host headers other than loopback's (DNS rebinding); a server that
        # listens on a named address must accept that name too.
        extra_hosts = [] if host in LOOPBACK else [f"{host}:{port}"]
        endpoint = mcp_endpoint(service.search, service.ask, api_key=api_key, slots=slots,
                                allowed_hosts=extra_hosts, allowed_origins=[f"http://{h}" for h in extra_hosts],
                                index=service.current)
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
    auth: Sequence[tuple[str, str]] = (),
    open_access: bool = False,
    upload_to: str | os.PathLike[str] | None = None,
    upload_limits: UploadLimits | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> gr.Blocks:
    """Serve the chat on host:port (no share link), the OpenAI-compatible API at ``/v1`` and,
    with ``mcp``, the MCP tools at ``/mcp``; ``api_key``, when set, is required by ``/v1`` and
    ``/mcp`` as ``Authorization: Bearer <key>``. ``auth`` (user, password) pairs put the page
    and its API (``/ask``, ``/gradio_api/*``) behind Gradio's sign-in; off loopback they are
    required unless ``open_access`` (see `check_exposure`). ``upload_to`` (a corpus folder; off
    by default) lets the page and ``/add_documents`` add documents there and rebuild the index
    (`speechrag.uploads`). ``data_dir`` (`Settings.data_dir`) holds the SQLite file of feedback
    (`speechrag.userdata`); without it the page offers no 👍/👎. With `block=False`, return once
    listening (then `demo.local_url` is the address and `demo.close()` stops it)."""
    from starlette.middleware import Middleware

    check_exposure(host, auth=auth, open_access=open_access, api_key=api_key)
    service = searcher if isinstance(searcher, IndexService) else IndexService(searcher)
    listening = threading.Event()  # the warm-up's Python half waits for it: it slowed the page 1.4 s
    service.warm_up(after=listening)
    uploader = None if upload_to is None else Uploader(service, Path(upload_to), limits=upload_limits)
    conversations = Conversations()  # the page's chats, which /export reads too
    userdata = None if data_dir is None else UserData.in_dir(data_dir)
    demo = build_demo(service, delay=delay, uploader=uploader, signed_in=bool(auth), conversations=conversations,
                      userdata=userdata)
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
        auth=list(auth) or None,
        auth_message=f"{PAGE_TITLE}：请登录 · Please sign in",
        footer_links=["api"],
        theme=THEME,
        css=CSS,
        js=PAGE_JS,
        # Gradio's upload route stops reading a body past this, before it is stored.
        max_file_size=uploader.limits.max_bytes if uploader else None,
        app_kwargs={"middleware": [Middleware(GuardMiddleware, allow_upload=uploader is not None),
                                   Middleware(ChineseMiddleware)],
                    **api_app_kwargs(service, host=host, port=port, api_key=api_key, mcp=mcp,
                                     conversations=conversations)},
    )
    logger.info("serving on %s", demo.local_url)
    listening.set()
    if block:
        demo.block_thread()
    return demo
