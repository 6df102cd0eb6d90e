"""The speeches as MCP tools (Model Context Protocol), over the streamable HTTP transport at
``/mcp``, for Claude Desktop, Cursor, Cherry Studio and other MCP clients.

Two tools, typed and documented so a client's model can call them unaided:

- ``search_speeches(query, k=5, mode="hybrid", speeches=None, speaker=None, place=None,
  years=None) -> SearchResult``: passages;
- ``ask_speeches(question, history=None, k=5, mode="hybrid", speeches=None, speaker=None,
  place=None, years=None) -> AskResult``: the cited answer (plain text with ``[n]`` markers,
  then its sources) and the sources as data.

Given ``index`` (a function returning the live Searcher), two more, for the collection as a
research instrument (`speechrag.analysis`):

- ``concordance(phrase, ..., context=20, regex=False, sort="date", limit=100) ->
  ConcordanceResult``: every occurrence (the first ``limit`` listed, all counted);
- ``trend(phrases, by="year", per=10000, ...) -> Trend``: occurrences and rates per group, and
  each phrase's first and last dated occurrence.

Each call runs in a worker thread once one of the answering slots (`serving.Slots`, shared with
``/v1`` under ``speechrag serve``) is free; a call that waits too long is a "busy" tool error.

Bad input (an empty question, an unknown speech id) comes back as a tool error with the
one-line message; an unexpected failure as a generic error (the SDK keeps its text on the
server). With ``api_key`` set, every request needs ``Authorization: Bearer <api_key>``, as on
the OpenAI routes; the SDK's DNS-rebinding check refuses Host and Origin headers other than
loopback unless ``allowed_hosts``/``allowed_origins`` name them.

Why the ``mcp`` package's server (``MCPServer``, FastMCP's name since mcp 2) rather than
Gradio's built-in one (``launch(mcp_server=True)``), measured on gradio 6.31 and mcp 2.3:

- Gradio's MCP server does not run with mcp 2: ``demo.launch(mcp_server=True)`` still starts
  the page, but sets ``demo.mcp_error = "Error launching MCP server: 'Server' object has no
  attribute 'call_tool'"`` and serves no ``/gradio_api/mcp`` (404). Its ``gradio[mcp]``
  extra pins ``mcp<2`` and ``pydantic<=2.12.5``, older than what this project installs.
- Gradio turns every API endpoint of the app into a tool; the page's own handlers are
  hidden by ``api_visibility`` flags, so keeping the tool list to what we mean to offer
  depends on every future event being flagged right. Here the tools are the two written below.
- Gradio's MCP routes live under ``/gradio_api/``, beside the file and upload routes that
  ``GuardMiddleware`` refuses; keeping that guard right would mean carving MCP out of its
  pattern. ``/mcp`` here is one route, with its own bearer-token check and body cap.
- Tool errors: Gradio reports an exception as text; here a ``QueryError`` becomes an MCP
  tool error with its one-line message, and other failures say nothing of their internals.

The server is stateless (``stateless_http``: no sessions to keep or expire) and answers with
plain JSON rather than an event stream: each tool call is one short request.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from speechrag.analysis import Concordance, Occurrence, Trend
from speechrag.answering import NOT_FOUND, NOT_FOUND_STATUS, Answer
from speechrag.errors import SpeechragError, one_line
from speechrag.options import MAX_K, MODES, QueryOptions
from speechrag.render import plain
from speechrag.searcher import MAX_QUERY_CHARS, Hit, Searcher
from speechrag.serving import BAD_KEY, AskFn, RequestLimits, SearchFn, Slots, bearer_ok, citation_dict

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.routing import Route
    from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One passage of a speech, with what it takes to cite it."""

    n: Annotated[int, Field(description="Its number: the answer's [n] markers refer to it.")]
    citation: Annotated[str, Field(description="Speech title · section · paragraph: 篇五（商丘） · 二、… · 第7段.")]
    text: Annotated[str, Field(description="The passage, verbatim.")]
    quoted: Annotated[tuple[str, ...], Field(description="The sentences of the passage the answer quotes.")]
    passage_id: str
    speech_id: str
    speech_title: str
    section: str
    paragraph: int
    source: Annotated[str, Field(description="The speech's file in the corpus.")]
    score: float
    rank: int
    also_in: Annotated[tuple[str, ...], Field(description="Passage ids of the near-identical copies folded into it.")]
    also_in_citations: Annotated[tuple[str, ...], Field(description="Other speeches with a near-identical passage.")]


@dataclass(frozen=True)
class SearchResult:
    """The passages found for a query, best first."""

    query: str
    passages: tuple[Source, ...]


@dataclass(frozen=True)
class AskResult:
    """An answer made only of the speeches' own sentences, each followed by [n]."""

    found: Annotated[bool, Field(description="False when the speeches do not address the question; sources are "
                                             "then only possibly related passages.")]
    status: Annotated[str, Field(description="found, partial (the speeches address the topic but not the detail "
                                             "asked: answer says what is missing, then the nearest sentences) or "
                                             "not_found.")]
    answer: Annotated[str, Field(description="The cited sentences as plain text (the not-found sentence if "
                                             "status is not_found).")]
    text: Annotated[str, Field(description="The answer followed by its sources, one '[n] citation' a line: "
                                           "ready to show.")]
    question: str
    query: Annotated[str, Field(description="The question as searched, completed from the history if it "
                                            "was a follow-up.")]
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class ConcordanceResult:
    """Where a phrase occurs: ``count`` occurrences in all, the first ``limit`` of them listed."""

    phrase: Annotated[str, Field(description="The phrase as matched (normalised: full-width digits as ASCII).")]
    regex: bool
    count: Annotated[int, Field(description="Occurrences in all the speeches searched.")]
    speeches: Annotated[int, Field(description="Speeches searched.")]
    characters: Annotated[int, Field(description="Characters searched.")]
    occurrences: Annotated[tuple[Occurrence, ...], Field(description="Each with its speech, citation and the text "
                                                                     "left and right of the match.")]
    truncated: Annotated[bool, Field(description="True when more occurrences exist than are listed.")]

    @classmethod
    def of(cls, found: Concordance, limit: int) -> ConcordanceResult:
        return cls(found.phrase, found.regex, len(found), found.speeches, found.characters,
                   found.occurrences[:limit], len(found) > limit)


def source(n: int, hit: Hit) -> Source:
    """Source [n] as `citation_dict` gives it, its lists as the tuples the schema declares."""
    fields: dict[str, Any] = {key: tuple(v) if isinstance(v, list) else v for key, v in citation_dict(n, hit).items()}
    return Source(**fields)


# --- the server ---------------------------------------------------------------------------

Query = Annotated[str, Field(description="The question or keywords, in Chinese for best results.",
                             min_length=1, max_length=MAX_QUERY_CHARS)]
# Bounds and choices are in the schema for clients to read, and checked by `QueryOptions`, so a
# bad value is the error every door gives (naming the option), not pydantic's own words.
K = Annotated[int, Field(description="How many passages to retrieve.",
                         json_schema_extra={"minimum": 1, "maximum": MAX_K})]
ModeArg = Annotated[str, Field(description="hybrid (meaning and words, the best default), dense (meaning) "
                                           "or keyword (words).", json_schema_extra={"enum": list(MODES)})]
Speeches = Annotated[list[str] | None, Field(description="Speech ids to search (null: all speeches).")]
Speakers = Annotated[list[str] | None, Field(description="Only speeches by these speakers (null: any).")]
Places = Annotated[list[str] | None, Field(description="Only speeches about these places, e.g. 商丘 (null: any).")]
Years = Annotated[list[int] | None, Field(description="Only speeches given in these years: [year] or [first, last] "
                                                      "(null: any).", json_schema_extra={"minItems": 1, "maxItems": 2})]


def _filters(speeches: list[str] | None, speaker: list[str] | None, place: list[str] | None,
             years: list[int] | None) -> dict[str, Any]:
    """The speech filters as given (checked by the analysis functions, through `QueryOptions`)."""
    return {"speeches": speeches, "speaker": speaker, "place": place, "years": years}


def build_mcp_server(search: SearchFn, ask: AskFn, *, name: str = "speechrag", slots: Slots | None = None,
                     index: Callable[[], Searcher] | None = None) -> MCPServer[Any]:
    """An MCP server with the two tools, calling ``search`` and ``ask`` in ``slots`` (default:
    its own); with ``index`` (the live Searcher, e.g. ``IndexService.current``), also
    ``concordance`` and ``trend``."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    # MCPServer() calls logging.basicConfig(level=INFO) with its own handler: a library must
    # not configure the host's logging (only the CLI sets levels here), so undo it.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server: MCPServer[Any] = MCPServer(
        name,
        instructions="Search and quote a collection of Chinese speeches (讲话稿). Answers are the speeches' own "
        "sentences with [n] citations; nothing is made up.",
    )
    root.handlers[:], root.level = handlers, level
    slots = slots or Slots()

    async def call(fn: Any, *args: Any, **given: Any) -> Any:
        try:
            QueryOptions.parse(given)  # a bad value: an OptionError naming it, as at every door
            return await slots.run(fn, *args, **{name: v for name, v in given.items() if v is not None})
        except (SpeechragError, TimeoutError) as exc:  # bad input, or every slot busy
            raise ToolError(one_line(exc)) from exc

    @server.tool(title="Search the speeches")
    async def search_speeches(query: Query, k: K = 5, mode: ModeArg = "hybrid", speeches: Speeches = None,
                              speaker: Speakers = None, place: Places = None, years: Years = None) -> SearchResult:
        """Find the passages of the speeches most relevant to a query, best first, each with its citation."""
        hits: list[Hit] = await call(search, query, k=k, mode=mode, speeches=speeches, speaker=speaker, place=place,
                                     years=years)
        return SearchResult(query=query, passages=tuple(source(n, h) for n, h in enumerate(hits, 1)))

    @server.tool(title="Ask the speeches")
    async def ask_speeches(
        question: Query,
        history: Annotated[list[str] | None, Field(description="Earlier questions in this conversation, oldest "
                                                                "first: a follow-up like 那商丘呢？ is completed from "
                                                                "them.")] = None,
        k: K = 5,
        mode: ModeArg = "hybrid",
        speeches: Speeches = None,
        speaker: Speakers = None,
        place: Places = None,
        years: Years = None,
    ) -> AskResult:
        """Answer a question with sentences quoted from the speeches, each followed by [n] citing its source; says so
        when the speeches do not address it. Quote the answer as it is; do not add to it."""
        ans: Answer = await call(ask, question, history or [], k=k, mode=mode, speeches=speeches, speaker=speaker,
                                 place=place, years=years)
        return AskResult(
            found=ans.found,
            status=ans.status,
            answer=NOT_FOUND if ans.status == NOT_FOUND_STATUS else ans.text,
            text=plain(ans),
            question=ans.question,
            query=ans.query,
            sources=tuple(source(n, h) for n, h in enumerate(ans.citations, 1)),
        )

    if index is not None:
        add_analysis_tools(server, call, index)
    return server


Phrase = Annotated[str, Field(description="Exact text to find, e.g. 新常态 (full- and half-width digits alike); "
                                          "with regex, a Python regular expression.", min_length=1, max_length=200)]


def add_analysis_tools(server: MCPServer[Any], call: Callable[..., Any], index: Callable[[], Searcher]) -> None:
    """The ``concordance`` and ``trend`` tools over ``index()`` (see the module docstring)."""
    from speechrag.analysis import concordance as find
    from speechrag.analysis import trend as count

    @server.tool(title="Concordance of a phrase")
    async def concordance(
        phrase: Phrase,
        speeches: Speeches = None,
        speaker: Speakers = None,
        place: Places = None,
        years: Years = None,
        context: Annotated[int, Field(description="Characters shown either side.", ge=0, le=200)] = 20,
        regex: Annotated[bool, Field(description="Read phrase as a regular expression.")] = False,
        sort: Annotated[Literal["date", "speech", "left", "right"],
                        Field(description="date (oldest first), speech (reading order), left or right context.")
                        ] = "date",
        limit: Annotated[int, Field(description="At most this many occurrences listed (all are counted).",
                                    ge=1, le=1000)] = 100,
    ) -> ConcordanceResult:
        """Every occurrence of an exact phrase in the speeches (not a search by meaning): the speech, date,
        speaker, place, citation, and the text left and right of it. Use for how a term is used and where."""
        found: Concordance = await call(lambda: find(phrase, context=context, regex=regex, sort=sort, index=index(),
                                                     **_filters(speeches, speaker, place, years)))
        return ConcordanceResult.of(found, limit)

    @server.tool(title="Trend of phrases")
    async def trend(
        phrases: Annotated[list[str], Field(description="One to ten exact phrases, e.g. [\"新常态\", \"高质量发展\"].",
                                            min_length=1, max_length=10)],
        by: Annotated[Literal["year", "speaker", "place", "speech"],
                      Field(description="Group the speeches by this.")] = "year",
        per: Annotated[int, Field(description="Rates per this many characters.", ge=1)] = 10_000,
        speeches: Speeches = None,
        speaker: Speakers = None,
        place: Places = None,
        years: Years = None,
        regex: Annotated[bool, Field(description="Read each phrase as a regular expression.")] = False,
    ) -> Trend:
        """How often each phrase occurs per year (or speaker, place, speech): occurrences, the group's characters
        and the rate per 10,000 characters; and each phrase's first and last occurrence in a dated speech, cited."""
        result: Trend = await call(lambda: count(phrases, by=by, per=per, regex=regex, index=index(),
                                                 **_filters(speeches, speaker, place, years)))
        return result


class BearerGuard:
    """ASGI wrapper answering 401 unless ``Authorization: Bearer <api_key>`` is sent."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            raw = headers.get(b"authorization")
            if not bearer_ok(raw.decode("latin-1") if raw else None, self.api_key):
                from starlette.responses import JSONResponse

                body = {"error": {"message": BAD_KEY, "type": "invalid_request_error", "param": None,
                                  "code": "invalid_api_key"}}
                await JSONResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class McpEndpoint:
    """The MCP server as the two pieces a host app needs: ``route`` (add it to the app's
    routes) and ``lifespan`` (run it inside the app's lifespan: it runs the session manager's
    task group, without which no request is served). `mount_mcp` does both; a host that
    builds its app elsewhere (Gradio's ``launch(app_kwargs={"lifespan": ...})``) takes them."""

    server: MCPServer[Any]
    route: Route

    def lifespan(self, app: Any = None) -> contextlib.AbstractAsyncContextManager[None]:
        return self.server.session_manager.run()


def mcp_endpoint(
    search: SearchFn,
    ask: AskFn,
    *,
    path: str = "/mcp",
    api_key: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    allowed_origins: Sequence[str] | None = None,
    limits: RequestLimits | None = None,
    slots: Slots | None = None,
    name: str = "speechrag",
    index: Callable[[], Searcher] | None = None,
) -> McpEndpoint:
    """The tools served at ``path`` over streamable HTTP, behind the bearer-token check.

    ``allowed_hosts``/``allowed_origins`` (``"host:port"``, ``"http://host:port"``; ``*``
    for any port) are the Host and Origin headers accepted besides loopback's. ``limits`` cap
    the body (default: ``slots``'); ``slots`` (default: its own) bound the calls running at
    once: pass the one ``/v1`` uses, to share the bound. ``index`` adds the analysis tools.
    """
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.routing import Route

    limits = limits or (slots.limits if slots else RequestLimits())
    server = build_mcp_server(search, ask, name=name, slots=slots or Slots(limits), index=index)
    loopback_hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    loopback_origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*loopback_hosts, *(allowed_hosts or ())],
        allowed_origins=[*loopback_origins, *(allowed_origins or ())],
    )
    inner = server.streamable_http_app(
        streamable_http_path=path,
        stateless_http=True,
        json_response=True,
        transport_security=security,
        max_request_body_size=limits.max_body_bytes,
    )
    # A Route, not a Mount: a Mount answers ``/mcp`` with a redirect to ``/mcp/``. The inner
    # app sees the full path, so it serves the same one.
    return McpEndpoint(server, Route(path, endpoint=BearerGuard(inner, api_key)))


def mount_mcp(app: Any, search: SearchFn, ask: AskFn, **options: Any) -> McpEndpoint:
    """Serve the tools on a Starlette/FastAPI ``app`` before it starts: `mcp_endpoint`'s
    route added to its routes, its lifespan run inside the app's own (which this wraps)."""
    endpoint = mcp_endpoint(search, ask, **options)
    app.router.routes.append(endpoint.route)
    host_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(host: Any) -> AsyncIterator[Any]:
        # A mounted app's own lifespan never runs; the session manager's task group must.
        async with endpoint.lifespan(host), host_lifespan(host) as state:
            yield state

    app.router.lifespan_context = lifespan
    return endpoint
