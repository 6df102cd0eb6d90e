"""The page, ``/v1`` and ``/mcp`` on one real ``ui.serve`` server (what ``speechrag serve
--mcp --api-key KEY`` runs), driven by the ``openai`` and ``mcp`` packages' own clients and by
raw httpx: the key, the page's guards and limits, and one hot-reloading index for all three."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from gradio_client import Client

import speechrag
from live_server import free_port
from speechrag import Searcher, build_index, load_index, ui
from speechrag.answering import NOT_FOUND
from speechrag.errors import ConfigError
from speechrag.render import plain
from speechrag.serving import IndexService
from test_mcp_server import session as mcp_session
from test_openai_api import BAD_BODIES, assert_openai_error

KEY = "sk-serve-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
WATER_Q = "今年要新建多少处集中供水工程？"
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


@contextlib.contextmanager
def serving(index: Searcher | IndexService, **options: Any) -> Iterator[str]:
    demo = ui.serve(index, host="127.0.0.1", port=free_port(), block=False, delay=0, **options)
    try:
        yield str(demo.local_url).rstrip("/")
    finally:
        demo.close()


@pytest.fixture(scope="module")
def server(tiny_index: Searcher) -> Iterator[str]:
    with serving(tiny_index, api_key=KEY, mcp=True) as url:
        yield url


def chat(url: str, question: str = WATER_Q, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers=AUTH, timeout=60,
                      json={"model": "speechrag", "messages": [{"role": "user", "content": question}], **body})


# --- the three faces of one server ----------------------------------------------------------


def test_openai_client_on_the_chat_server(server: str, tiny_index: Searcher) -> None:
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == ["speechrag"]
    resp = client.chat.completions.create(model="speechrag", messages=[{"role": "user", "content": WATER_Q}])
    expected = speechrag.answer(WATER_Q, index=tiny_index)
    assert resp.choices[0].message.content == plain(expected)
    assert resp.model_extra["speechrag"]["found"] is expected.found  # type: ignore[index]
    streamed = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="speechrag", messages=[{"role": "user", "content": WATER_Q}], stream=True) if c.choices]
    assert "".join(streamed) == plain(expected)


def test_page_and_gradio_api_need_no_key(server: str) -> None:
    assert httpx.get(f"{server}/").status_code == 200
    result = Client(f"{server}/", verbose=False).predict("图书馆开放时间", api_name="/ask")
    assert result["citations"]


async def test_mcp_client_on_the_chat_server(server: str) -> None:
    async with mcp_session(server, KEY) as s:
        tools = {t.name for t in (await s.list_tools()).tools}
        found = await s.call_tool("search_speeches", {"query": WATER_Q, "k": 2, "years": [1990]})
        asked = await s.call_tool("ask_speeches", {"question": "北京冬奥会的吉祥物叫什么？"})
        counted = await s.call_tool("concordance", {"phrase": "图书馆"})
    assert tools == {"search_speeches", "ask_speeches", "concordance", "trend"}  # serve passes the live index
    assert counted.structured_content is not None and counted.structured_content["count"] > 0
    assert found.structured_content == {"query": WATER_Q, "passages": []}  # no fixture speech is dated
    data = asked.structured_content
    assert data is not None and data["found"] is False and data["answer"] == NOT_FOUND


@pytest.mark.parametrize("auth", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_key_required_on_v1_and_mcp(server: str, auth: dict[str, str]) -> None:
    body = {"model": "speechrag", "messages": [{"role": "user", "content": WATER_Q}]}
    assert_openai_error(httpx.post(f"{server}/v1/chat/completions", json=body, headers=auth), 401,
                        code="invalid_api_key")
    assert_openai_error(httpx.get(f"{server}/v1/models", headers=auth), 401)
    r = httpx.post(f"{server}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={**MCP_ACCEPT, **auth})
    assert r.status_code == 401


async def test_mcp_client_without_key_fails(server: str) -> None:
    with pytest.raises(ExceptionGroup):
        async with mcp_session(server, key=None) as s:
            await s.list_tools()


# --- sign-in ---------------------------------------------------------------------------------


USERS = (("ana", "pw-ana"), ("bo", "pw:bo"))


@pytest.fixture(scope="module")
def signed_in_server(tiny_index: Searcher) -> Iterator[str]:
    with serving(tiny_index, api_key=KEY, mcp=True, auth=USERS) as url:
        yield url


def test_sign_in_protects_the_page_and_its_api(signed_in_server: str) -> None:
    url = signed_in_server
    # Without a session: the config, the API description and the queue are refused, not served.
    assert httpx.get(f"{url}/config").status_code == 401
    assert httpx.get(f"{url}/gradio_api/info").status_code == 401
    assert httpx.post(f"{url}/gradio_api/call/ask", json={"data": [WATER_Q]}).status_code == 401
    with pytest.raises(Exception):  # noqa: B017 (gradio_client raises a bare ValueError or an httpx error)
        Client(f"{url}/", verbose=False).predict(WATER_Q, api_name="/ask")
    assert httpx.post(f"{url}/login", data={"username": "ana", "password": "wrong"}).status_code == 400
    for user in USERS:
        result = Client(f"{url}/", auth=user, verbose=False).predict("图书馆开放时间", api_name="/ask")
        assert result["citations"]


def test_sign_in_leaves_v1_and_mcp_to_the_api_key(signed_in_server: str) -> None:
    url = signed_in_server
    assert httpx.get(f"{url}/v1/models").status_code == 401
    assert httpx.get(f"{url}/v1/models", headers=AUTH).status_code == 200
    # A signed-in page session is not a key: the API stays keyed for scripts.
    with httpx.Client() as session:
        assert session.post(f"{url}/login", data={"username": "ana", "password": "pw-ana"}).status_code == 200
        assert session.get(f"{url}/config").status_code == 200
        assert session.get(f"{url}/v1/models").status_code == 401


def test_serve_refuses_exposure_without_sign_in(tiny_index: Searcher) -> None:
    with pytest.raises(ConfigError, match=r"serving on 0\.0\.0\.0 needs sign-in"):
        ui.serve(tiny_index, host="0.0.0.0", port=free_port(), block=False)
    with pytest.raises(ConfigError, match="--api-key"):
        ui.serve(tiny_index, host="127.0.0.1", port=free_port(), block=False, auth=USERS)


# --- the page's guards and limits hold for the new routes ------------------------------------


def test_no_openapi_schema_or_docs(server: str) -> None:
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert httpx.get(f"{server}{path}", timeout=10).status_code == 404, path


def test_guard_still_refuses_file_routes(server: str) -> None:
    for path in ("/gradio_api/file=/etc/passwd", "/file=/etc/passwd", "/gradio_api/upload",
                 "/gradio_api/proxy=http://127.0.0.1/"):
        assert httpx.get(f"{server}{path}", headers=AUTH).status_code == 403, path
    # ... but the analysis tab's downloads, and only those (a file beside one is refused)
    from speechrag.ui.analysis_tab import export

    csv_path, xlsx_path = export("trend", [{"组": "天水", "n": 1}], ["组", "n"])
    got = httpx.get(f"{server}/gradio_api/file={csv_path}", headers=AUTH)
    assert got.status_code == 200 and got.content.decode("utf-8-sig").splitlines() == ["组,n", "天水,1"]
    beside = Path(csv_path).with_name("notes.csv")
    beside.write_text("secret")
    escaped = f"{Path(csv_path).parent}/%2e%2e/{Path(csv_path).parent.name}/notes.csv"
    for path in (str(beside), escaped, f"{xlsx_path}/../notes.csv"):
        assert httpx.get(f"{server}/gradio_api/file={path}", headers=AUTH).status_code == 403, path


@pytest.mark.parametrize(("body", "status", "param"), [b[1:] for b in BAD_BODIES],
                         ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_openai_errors(server: str, body: Any, status: int, param: str | None) -> None:
    r = httpx.post(f"{server}/v1/chat/completions", content=json.dumps(body).encode(),
                   headers={**AUTH, "Content-Type": "application/json"}, timeout=60)
    assert_openai_error(r, status, param)


def test_body_caps(server: str) -> None:
    big = json.dumps({"model": "speechrag", "messages": [{"role": "user", "content": "问" * 4_000_000}]}).encode()
    r = httpx.post(f"{server}/v1/chat/completions", content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert_openai_error(r, 413, code="request_too_large")
    r = httpx.post(f"{server}/mcp", content=b"[" + b" " * 2_000_000 + b"]",
                   headers={**AUTH, **MCP_ACCEPT, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert chat(server).status_code == 200  # and the server goes on


def test_unknown_v1_route_is_an_openai_404(server: str) -> None:
    assert_openai_error(httpx.get(f"{server}/v1/embeddings", headers=AUTH), 404)


# --- options ----------------------------------------------------------------------------


def test_without_mcp_or_key(tiny_index: Searcher) -> None:
    with serving(tiny_index) as url:
        assert chat(url, stream=True).text.rstrip().endswith("data: [DONE]")
        r = httpx.post(f"{url}/v1/chat/completions",
                       json={"model": "speechrag", "messages": [{"role": "user", "content": WATER_Q}]})
        assert r.status_code == 200  # no key asked for
        assert httpx.post(f"{url}/mcp", json={}, headers=MCP_ACCEPT).status_code in (404, 405)


def test_one_service_reloads_for_page_api_and_tools(tiny_index: Searcher, tiny_index_copy: Path,
                                                     fixture_corpus: Path, tmp_path: Path) -> None:
    """A build published while the server runs is served by /v1, /mcp and the page alike."""
    from conftest import EXTRA_SPEECH

    service = IndexService(load_index(tiny_index_copy))
    with serving(service, mcp=True) as url:
        before = service.searcher.generation
        assert chat(url, "通村水泥路改造").json()["speechrag"]["citations"][0]["source"] not in EXTRA_SPEECH
        grown = shutil.copytree(fixture_corpus, tmp_path / "corpus")
        for name, text in EXTRA_SPEECH.items():
            (grown / name).write_text(text, encoding="utf-8")
        build_index(grown, tiny_index_copy, model="hash")
        cites = chat(url, "通村水泥路改造", speechrag={"mode": "keyword"}).json()["speechrag"]["citations"]
        assert cites[0]["source"] in EXTRA_SPEECH
        assert service.searcher.generation != before
        page = Client(f"{url}/", verbose=False).predict("通村水泥路改造", "keyword", api_name="/ask")
        assert page["citations"][0]["passage"]["source"] in EXTRA_SPEECH
        hits = httpx.post(f"{url}/mcp", headers=MCP_ACCEPT, timeout=60, json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "search_speeches", "arguments": {"query": "通村水泥路改造", "mode": "keyword"}}})
        assert hits.json()["result"]["structuredContent"]["passages"][0]["source"] in EXTRA_SPEECH


def test_mcp_without_its_package_is_a_config_error(tiny_index: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from speechrag.errors import ConfigError

    monkeypatch.setitem(sys.modules, "speechrag.mcp_server", None)  # what a missing `mcp` package does
    with pytest.raises(ConfigError, match=r"pip install 'speechrag\[mcp\]'"):
        ui.api_app_kwargs(IndexService(tiny_index), host="127.0.0.1", port=7860, mcp=True)
    kwargs = ui.api_app_kwargs(IndexService(tiny_index), host="127.0.0.1", port=7860)
    assert set(kwargs) == {"routes", "openapi_url", "docs_url", "redoc_url"}


def test_warm_up_loads_what_the_first_question_needs(shipped_index: Searcher) -> None:
    fresh = Searcher(shipped_index.store)  # nothing loaded on it yet
    service = IndexService(fresh)
    assert fresh._encoder is None
    thread = service.warm_up()
    thread.join(120)
    assert not thread.is_alive() and service.warm_up() is thread  # once per service
    assert fresh._encoder is not None and fresh._calibration is not None
    assert shipped_index.store.keyword.tokenizer._cut is not None  # type: ignore[attr-defined]
    assert "[1]" in service.ask("计生家庭意外伤害保险的理赔金额是多少？").text
