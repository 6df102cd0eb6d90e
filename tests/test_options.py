"""Every front door refuses every bad request option with an error that names the option."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from click.testing import CliRunner

import speechrag
from speechrag import Searcher
from speechrag.cli import cli
from speechrag.serving import IndexService

Q = "农村饮水安全工程"

# One bad value per option, as a door's own input: (CLI arguments, Python value).
BAD: dict[str, tuple[list[str], Any]] = {
    "k": (["-k", "0"], 0),
    "mode": (["--mode", "bogus"], "bogus"),
    "speeches": (["--speech", "nope"], ["nope"]),
    "speaker": (["--speaker", "nobody"], ["nobody"]),
    "place": (["--place", "nowhere"], ["nowhere"]),
    "years": (["--years", "2020-2010"], [2020, 2010]),
}


def via_cli(index: Searcher, field: str) -> str:
    result = CliRunner().invoke(cli, ["search", Q, "--index", str(index.location), *BAD[field][0]])
    assert result.exit_code != 0
    return result.output


def via_python(index: Searcher, field: str) -> str:
    with pytest.raises(speechrag.QueryError) as info:
        speechrag.retrieve(Q, index=index, **{field: BAD[field][1]})
    return str(info.value)


def via_v1(index: Searcher, field: str) -> str:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from speechrag.openai_api import mount_openai

    app = FastAPI()
    mount_openai(app, IndexService(index).ask)
    body = {"model": "speechrag", "messages": [{"role": "user", "content": Q}], "speechrag": {field: BAD[field][1]}}
    response = TestClient(app).post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert field in error["param"]
    return str(error["message"])


def via_mcp(index: Searcher, field: str) -> str:
    from speechrag.mcp_server import build_mcp_server

    service = IndexService(index)
    server = build_mcp_server(service.search, service.ask)

    async def call() -> str:
        try:
            result = await server.call_tool("search_speeches", {"query": Q, field: BAD[field][1]})
        except Exception as exc:
            return str(exc)
        return str(result)

    return anyio.run(call)


def via_langchain(index: Searcher, field: str) -> str:
    from speechrag.integrations.langchain import SpeechragRetriever

    with pytest.raises(speechrag.QueryError) as info:
        SpeechragRetriever(index=index).invoke(Q, **{field: BAD[field][1]})
    return str(info.value)


def via_llamaindex(index: Searcher, field: str) -> str:
    from speechrag.integrations.llamaindex import SpeechragRetriever

    with pytest.raises(speechrag.QueryError) as info:
        SpeechragRetriever(index=index, **{field: BAD[field][1]}).retrieve(Q)
    return str(info.value)


def via_page(index: Searcher, field: str) -> str:
    """The chat's send (the settings as they are) and then its answering event, as the page runs them."""
    import json
    from types import SimpleNamespace

    from speechrag.ui.conversation import Conversations
    from speechrag.ui.handlers import make_enqueue, make_respond

    settings: dict[str, Any] = {"k": 5, "mode": "hybrid", "speeches": [], "speakers": [], "places": [],
                                "year_from": None, "year_to": None}
    name = {"speaker": "speakers", "place": "places"}.get(field, field)
    if field == "years":
        settings["year_from"], settings["year_to"] = BAD[field][1]
    else:
        settings[name] = BAD[field][1]
    conversations, request = Conversations(), SimpleNamespace(session_hash="s")
    chat = make_enqueue(conversations)(json.dumps([["q0", Q]]), *settings.values(), request)[0]
    for update in make_respond(IndexService(index), conversations, delay=0)(request):
        chat = update[0] if isinstance(update[0], list) else chat
    return str(chat[-1]["content"])


DOORS = [via_cli, via_python, via_v1, via_mcp, via_langchain, via_llamaindex, via_page]


@pytest.mark.parametrize("field", list(BAD))
@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.__name__.removeprefix("via_"))
def test_a_bad_option_is_named_at_every_door(tiny_index: Searcher, door: Any, field: str) -> None:
    message = door(tiny_index, field)
    assert field in message, message
