"""OpenAI-compatible chat API: any OpenAI client (the ``openai`` package, Cherry Studio,
Chatbox, LibreChat...) can ask the speeches, with base URL ``http://HOST:PORT/v1``.

Routes (an ASGI `Router`, mounted at ``/v1`` by ``speechrag serve``, or by `mount_openai` on
any Starlette/FastAPI app):

- ``GET /v1/models`` and ``GET /v1/models/{id}``: the served models (`Model`: an id and the
  `answer()` options it fixes, e.g. a place).
- ``POST /v1/chat/completions``: the last user message is the question, earlier user messages
  are the history (follow-ups like ``那商丘呢？`` are completed from them); system, developer,
  assistant and tool messages are ignored. ``content`` is a string or a list of
  ``{"type": "text", "text": ...}`` parts. ``stream`` true answers as server-sent events:
  a chunk with the role, one chunk per sentence, the sources, a chunk with
  ``finish_reason: "stop"``, then ``data: [DONE]``. ``max_tokens``, ``temperature`` and any
  other unknown field are ignored: nothing is generated, so there is nothing to tune.

The reply's ``content`` is plain text: the cited sentences, each followed by ``[n]``, then
``来源：`` and one ``[n] citation`` line per source (or, when the speeches do not address the
question, the not-found sentence and the possibly related passages). Clients that render
markdown render it as markdown; the corpus is the operator's own.

Extensions (not in OpenAI's API; OpenAI clients ignore them or pass them via ``extra_body``):

- on the response, and on the final chunk of a stream, ``speechrag: {found, question, query,
  citations: [{n, citation, passage_id, speech_id, speech_title, section, paragraph, source,
  text, score, rank, quoted, also_in, also_in_citations}]}``: the sources as data (when
  ``found`` is false, the possibly related passages);
- on the request, ``speechrag: {k, mode, speeches, speaker, place, years}``: passed to ``ask``
  (`answer()`'s options; ``years`` is a year or ``[first, last]``).

Errors have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``: 400 for a
malformed request, 401 for a missing or wrong key (when ``api_key`` is set), 404 for an
unknown model (``code: "model_not_found"``, as OpenAI does), 413 for a body over the cap
(refused from its Content-Length, or while it is read: it is never read whole), 503 with
``Retry-After`` when every answering slot (`serving.Slots`) stays busy for ``queue_timeout``
seconds.
``usage`` is all zeros: no tokens are consumed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from speechrag.answering import Answer
from speechrag.errors import OptionError, QueryError, SpeechragError, one_line
from speechrag.options import QueryOptions
from speechrag.render import plain, plain_chunks
from speechrag.serving import BAD_KEY, AskFn, RequestLimits, Slots, bearer_ok, citation_dict

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Router
    from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

DEFAULT_MODEL = "speechrag"
OWNER = "speechrag"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
REQUEST_OPTIONS = frozenset({"k", "mode", "speeches", "speaker", "place", "years"})


@dataclass(frozen=True)
class Model:
    """One model of ``/v1/models``: the corpus, or a part of it, that clients pick by name.

    ``options`` are passed to ``ask`` with every question to this model and win over the
    request's own, e.g. ``Model("speechrag-shangqiu", {"place": ["商丘"]})``.
    """

    id: str
    options: Mapping[str, Any] = field(default_factory=dict)
    created: int = 0


@dataclass(frozen=True)
class ChatRequest:
    """A chat request reduced to what speechrag uses."""

    model: Model
    question: str
    history: tuple[str, ...]
    stream: bool
    include_usage: bool
    options: Mapping[str, Any]


class OpenAIError(Exception):
    """A request refused with an HTTP status, in OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


# --- parsing ------------------------------------------------------------------------------


def _models(models: Iterable[str | Model]) -> dict[str, Model]:
    out: dict[str, Model] = {}
    for m in models:
        model = Model(m) if isinstance(m, str) else m
        if not model.id or model.id in out:
            raise ValueError(f"model ids must be unique and non-empty, not {model.id!r}")
        out[model.id] = model
    if not out:
        raise ValueError("serve at least one model")
    return out


def message_text(content: object, param: str, *, text_only: bool = True) -> str:
    """The text of a message's ``content``: a string, or a list of text parts. Other parts
    (images, audio) are refused in the question (``text_only``) and skipped elsewhere, so an
    image earlier in a conversation does not block the rest of it."""
    if content is None:  # an assistant message that only called tools
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise OpenAIError(400, f"{param} must be a string or a list of text parts, not {_json_type(content)}",
                          param=param)
    texts = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise OpenAIError(400, f"{where} must be an object, not {_json_type(part)}", param=where)
        if part.get("type") != "text":
            if text_only:
                raise OpenAIError(400, f"{where} has type {part.get('type')!r}: only text parts are supported",
                                  param=where)
            continue
        if not isinstance(part.get("text"), str):
            raise OpenAIError(400, f"{where}.text must be a string", param=f"{where}.text")
        texts.append(part["text"])
    return "\n".join(texts)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def parse_chat(data: object, models: Mapping[str, Model], limits: RequestLimits) -> ChatRequest:
    """A chat-completions body checked field by field, or an OpenAIError naming the field."""
    if not isinstance(data, dict):
        raise OpenAIError(400, f"the request body must be a JSON object, not {_json_type(data)}")
    name = data.get("model")
    if not isinstance(name, str):
        raise OpenAIError(400, f"model must be a string, not {_json_type(name)}; use one of {', '.join(models)}",
                          param="model")
    if name not in models:
        raise OpenAIError(404, f"The model `{name}` does not exist; use one of {', '.join(models)}",
                          param="model", code="model_not_found")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise OpenAIError(400, f"messages must be a non-empty array, not {_json_type(messages)}", param="messages")
    if len(messages) > limits.max_messages:
        raise OpenAIError(400, f"messages has {len(messages)} entries, over the limit of {limits.max_messages}: "
                          "send only the recent turns", param="messages", code="too_many_messages")
    user_texts: list[str] = []
    last_user = -1
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise OpenAIError(400, f"{where} must be an object, not {_json_type(msg)}", param=where)
        role = msg.get("role")
        if role not in ROLES:
            raise OpenAIError(400, f"{where}.role must be one of {', '.join(sorted(ROLES))}, not {role!r}",
                              param=f"{where}.role")
        text = message_text(msg.get("content"), f"{where}.content", text_only=False)
        if role == "user":
            user_texts.append(text.strip())
            last_user = i
    if not user_texts:
        raise OpenAIError(400, "messages has no user message: the last one is the question", param="messages")
    question = message_text(messages[last_user]["content"], f"messages[{last_user}].content").strip()
    if not question:
        raise OpenAIError(400, "the last user message is empty: it is the question", param="messages")
    if len(question) > limits.max_question_chars:
        raise OpenAIError(400, f"the question is {len(question)} characters, over the "
                          f"{limits.max_question_chars}-character limit: shorten it", param="messages")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise OpenAIError(400, f"stream must be true or false, not {_json_type(stream)}", param="stream")
    stream_options = data.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise OpenAIError(400, "stream_options must be an object", param="stream_options")
    extra = data.get("speechrag")
    if extra is not None and not isinstance(extra, dict):
        raise OpenAIError(400, f"speechrag must be an object, not {_json_type(extra)}", param="speechrag")
    unknown = sorted(set(extra or {}) - REQUEST_OPTIONS)
    if unknown:
        raise OpenAIError(400, f"speechrag.{unknown[0]} is not an option: use {', '.join(sorted(REQUEST_OPTIONS))}",
                          param=f"speechrag.{unknown[0]}")
    model = models[name]
    try:  # checked here, as every door checks them: a bad value is a 400 naming the option
        QueryOptions.parse(extra)
    except OptionError as exc:
        raise OpenAIError(400, one_line(exc), param=f"speechrag.{exc.field}") from exc
    return ChatRequest(
        model=model,
        question=question,
        history=tuple(t for t in user_texts[:-1] if t),
        stream=bool(stream),
        include_usage=bool((stream_options or {}).get("include_usage")),
        options={**(extra or {}), **model.options},
    )


# --- responses ----------------------------------------------------------------------------


def speechrag_extra(ans: Answer) -> dict[str, Any]:
    return {
        "found": ans.found,
        "status": ans.status,
        "question": ans.question,
        "query": ans.query,
        "citations": [citation_dict(n, h) for n, h in enumerate(ans.citations, 1)],
    }


_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def completion(ans: Answer, model: str, cid: str, created: int) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": plain(ans), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": dict(_USAGE),
        "speechrag": speechrag_extra(ans),
    }


def completion_chunks(ans: Answer, model: str, cid: str, created: int, include_usage: bool = False,
                      ) -> list[dict[str, Any]]:
    """The stream as chunks: the role, one sentence each, the sources, then the stop."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in plain_chunks(ans)]
    chunks.append({**chunk({}, "stop"), "speechrag": speechrag_extra(ans)})
    if include_usage:  # OpenAI's stream_options.include_usage: a last chunk with no choices
        chunks.append({**chunk({}), "choices": [], "usage": dict(_USAGE)})
    return chunks


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# --- the routes ---------------------------------------------------------------------------


class _ChatService:
    """The state of one mounted API: the ask callable, models, limits and answering slots."""

    def __init__(self, ask: AskFn, api_key: str | None, models: Mapping[str, Model], limits: RequestLimits,
                 slots: Slots, stream_delay: float) -> None:
        self.ask = ask
        self.api_key = api_key
        self.models = models
        self.limits = limits
        self.slots = slots
        self.stream_delay = stream_delay

    def error(self, exc: OpenAIError) -> Response:
        from starlette.responses import JSONResponse

        headers = dict(exc.headers)
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    def check_key(self, request: Request) -> None:
        if not bearer_ok(request.headers.get("authorization"), self.api_key):
            raise OpenAIError(401, BAD_KEY, code="invalid_api_key")

    async def read_body(self, request: Request) -> bytes:
        """The body, refused with a 413 as soon as it is known to pass the cap."""
        cap = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise OpenAIError(400, "Content-Length is not a number")
            if int(declared) > cap:
                raise OpenAIError(413, f"the request body is {int(declared)} bytes, over the {cap}-byte limit",
                                  code="request_too_large")
        from starlette.requests import ClientDisconnect

        chunks, size = [], 0
        try:
            async for chunk in request.stream():  # chunked bodies have no Content-Length: count
                size += len(chunk)
                if size > cap:
                    raise OpenAIError(413, f"the request body is over the {cap}-byte limit",
                                      code="request_too_large")
                chunks.append(chunk)
        except ClientDisconnect:  # nobody is left to read the answer
            raise OpenAIError(400, "the client disconnected while sending the request") from None
        return b"".join(chunks)

    async def models_list(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        try:
            self.check_key(request)
        except OpenAIError as exc:
            return self.error(exc)
        data = [self.model_card(m) for m in self.models.values()]
        return JSONResponse({"object": "list", "data": data})

    async def model_get(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        try:
            self.check_key(request)
            name = request.path_params["model"]
            if name not in self.models:
                raise OpenAIError(404, f"The model `{name}` does not exist", param="model", code="model_not_found")
        except OpenAIError as exc:
            return self.error(exc)
        return JSONResponse(self.model_card(self.models[name]))

    @staticmethod
    def model_card(m: Model) -> dict[str, Any]:
        return {"id": m.id, "object": "model", "created": m.created, "owned_by": OWNER}

    async def chat(self, request: Request) -> Response:
        from starlette.responses import JSONResponse, StreamingResponse

        try:
            self.check_key(request)
            raw = await self.read_body(request)
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise OpenAIError(400, "the request body is not valid JSON") from None
            req = parse_chat(data, self.models, self.limits)
            ans = await self.answer(req)
        except OpenAIError as exc:
            return self.error(exc)
        log.debug("%s: %d-character question, %d earlier turns, found=%s", req.model.id, len(req.question),
                  len(req.history), ans.found)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not req.stream:
            return JSONResponse(completion(ans, req.model.id, cid, created))
        chunks = completion_chunks(ans, req.model.id, cid, created, req.include_usage)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering
        return StreamingResponse(self.events(chunks), media_type="text/event-stream", headers=headers)

    async def events(self, chunks: Sequence[dict[str, Any]]) -> AsyncIterator[str]:
        for i, chunk in enumerate(chunks):
            if self.stream_delay and 1 < i < len(chunks) - 1:
                await asyncio.sleep(self.stream_delay)
            yield f"data: {_dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    async def answer(self, req: ChatRequest) -> Answer:
        """ask() in a worker thread, once a slot is free."""
        try:
            return await self.slots.run(self.ask, req.question, req.history, **req.options)
        except TimeoutError as exc:
            raise OpenAIError(503, one_line(exc), kind="server_error", code="server_busy",
                              headers={"Retry-After": "1"}) from None
        except OptionError as exc:  # known only to the index: a speech, speaker or place it lacks
            raise OpenAIError(400, one_line(exc), param=f"speechrag.{exc.field}") from exc
        except QueryError as exc:
            raise OpenAIError(400, one_line(exc), param="messages") from exc
        except SpeechragError as exc:
            log.warning("answer failed: %s", one_line(exc))
            raise OpenAIError(500, one_line(exc), kind="server_error") from exc
        except Exception as exc:
            log.exception("answer failed")
            raise OpenAIError(500, "internal error while answering", kind="server_error") from exc


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    from starlette.responses import JSONResponse

    exc = OpenAIError(404, f"no route {scope.get('path', '')!r}: use /v1/models or /v1/chat/completions",
                      code="unknown_url")
    await JSONResponse(exc.body(), status_code=404)(scope, receive, send)


def openai_router(
    ask: AskFn,
    *,
    api_key: str | None = None,
    models: Sequence[str | Model] = (DEFAULT_MODEL,),
    limits: RequestLimits | None = None,
    slots: Slots | None = None,
    stream_delay: float = 0.0,
) -> Router:
    """The OpenAI-compatible routes (``/models``, ``/models/{id}``, ``/chat/completions``)
    as a Starlette `Router`, to mount at ``/v1`` on any Starlette or FastAPI app.

    ``ask(question, history, **options) -> Answer`` answers; ``api_key``, when set, is required
    as ``Authorization: Bearer <api_key>``; ``models`` are ids or `Model`s, the first the usual
    one; ``limits`` bound each request (default: ``slots``'), ``slots`` (default: its own) the
    answers running at once: pass the one the host's other servers use, to share the bound;
    ``stream_delay`` paces the streamed sentences (seconds; 0 sends them at once).
    """
    from starlette.routing import Route, Router

    limits = limits or (slots.limits if slots else RequestLimits())
    service = _ChatService(ask, api_key, _models(models), limits, slots or Slots(limits), stream_delay)
    return Router(
        routes=[
            Route("/models", service.models_list, methods=["GET"]),
            Route("/models/{model:path}", service.model_get, methods=["GET"]),
            Route("/chat/completions", service.chat, methods=["POST"]),
        ],
        default=_not_found,
    )


def mount_openai(app: Any, ask: AskFn, *, path: str = "/v1", **options: Any) -> ASGIApp:
    """Mount `openai_router` (same options) on a Starlette/FastAPI ``app`` at ``path``;
    returns the router."""
    router = openai_router(ask, **options)
    app.mount(path, router)
    return router
