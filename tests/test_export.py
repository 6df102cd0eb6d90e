"""Exporting a conversation: Word (opened again with python-docx) and Markdown, and the
`/export` endpoint of a real server, with and without sign-in."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from docx import Document

from speechrag import Searcher, answer, build_index, load_index, ui
from speechrag.errors import QueryError
from speechrag.export import Exchange, export, source_line, to_docx, to_markdown

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
SPEECH_DOCX = Path(__file__).parent / "fixtures" / "documents" / "speech-headings.docx"
QUESTIONS = ["去年全县共有多少户计生家庭参加了保险？", "今年要新建多少处集中供水工程？"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docx_text(data: bytes) -> str:
    return "\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs)


def speakers(index: Searcher) -> Any:
    return lambda sid: (s.speaker if (s := index.speech(sid)) else "")


def conversation(index: Searcher) -> list[Exchange]:
    out, history = [], []
    for q in QUESTIONS:
        ans = answer(q, history=history, index=index)
        history.append(ans.question)
        out.append(Exchange(q, ans))
    return [*out, Exchange("停下的问题", None, ui.STOPPED)]


def test_docx_holds_every_answer_and_each_citation(tiny_index: Searcher) -> None:
    exchanges = conversation(tiny_index)
    text = docx_text(to_docx(exchanges, speakers(tiny_index)))
    for ex in exchanges:
        assert ex.question in text
        if ex.answer is None:
            assert ui.STOPPED in text
            continue
        assert ex.answer.citations
        for n, hit in enumerate(ex.answer.citations, start=1):
            assert source_line(n, hit, speakers(tiny_index)) in text  # date · title · section · paragraph
            assert hit.passage.speech_title in text and f"第{hit.passage.paragraph}段" in text
            for sentence in hit.cited_sentences:
                assert f"「{sentence}」" in text
        for s in ex.answer.sentences:
            assert s.plain in text  # each quoted sentence with its [n]


def test_source_line_names_the_speaker(tmp_path: Path) -> None:
    import shutil

    (tmp_path / "c").mkdir()
    shutil.copy(SPEECH_DOCX, tmp_path / "c")  # a speech whose header names its speaker, 王晓东
    build_index(tmp_path / "c", tmp_path / "e", model="hash")
    index = load_index(tmp_path / "e")
    ans = answer("全市还有多少农村人口饮用高氟水、苦咸水？", index=index)
    hit = ans.citations[0]
    line = source_line(1, hit, speakers(index))
    assert line == f"[1] {hit.citation} · 讲话人：王晓东"
    assert line in docx_text(to_docx([Exchange("q", ans)], speakers(index)))


def test_markdown_escapes_the_corpus(tmp_path: Path) -> None:
    build_index(HOSTILE, tmp_path / "e", model="hash")
    index = load_index(tmp_path / "e")
    ans = answer("今天召开保险工作会议的主要任务是什么？", index=index)
    md = to_markdown([Exchange("<img src=x onerror=alert(1)>", ans)], speakers(index))
    assert "<img" not in md and "<script" not in md and "](http" not in md
    assert "\\[1\\]" in md or "[1]" in md


def test_export_checks_its_format(tiny_index: Searcher) -> None:
    body, media, name = export(conversation(tiny_index), "markdown", speakers(tiny_index))
    assert name.endswith(".md") and media.startswith("text/markdown") and QUESTIONS[0].encode() in body
    with pytest.raises(QueryError, match="format must be one of docx, markdown"):
        export([], "pdf", speakers(tiny_index))


# --- /export on a real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def open_server(tiny_index: Searcher) -> Iterator[str]:
    demo = ui.serve(tiny_index, host="127.0.0.1", port=free_port(), block=False, delay=0)
    try:
        yield str(demo.local_url).rstrip("/")
    finally:
        demo.close()


def test_export_endpoint_asks_and_returns_a_docx(open_server: str, tiny_index: Searcher) -> None:
    r = httpx.post(f"{open_server}/export", json={"questions": QUESTIONS, "format": "docx"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment; filename=") and ".docx" in r.headers[
        "content-disposition"]
    text = docx_text(r.content)
    for ex in conversation(tiny_index)[:2]:
        assert ex.answer is not None
        assert all(hit.citation in text for hit in ex.answer.citations)
    md = httpx.post(f"{open_server}/export", json={"questions": QUESTIONS[:1], "format": "markdown"}, timeout=60)
    assert md.status_code == 200 and md.text.startswith("# 讲话稿问答")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"questions": []}, "questions must be a list of 1 to 20 strings"),
        ({"questions": "问"}, "questions must be a list"),
        ({"questions": ["问"] * 21}, "1 to 20"),
        ({"questions": ["计划生育"], "format": "pdf"}, "format must be one of"),
    ],
)
def test_export_endpoint_refuses_bad_input_in_one_line(open_server: str, body: Any, message: str) -> None:
    r = httpx.post(f"{open_server}/export", json=body, timeout=60)
    assert r.status_code == 400 and message in r.text and r.text.count("\n") == 1


def test_export_of_an_unknown_page_is_404(open_server: str) -> None:
    r = httpx.get(f"{open_server}/export", params={"session": "nobody", "format": "docx"})
    assert r.status_code == 404 and "no such conversation" in r.text


def test_export_is_behind_sign_in(tiny_index: Searcher) -> None:
    demo = ui.serve(tiny_index, host="127.0.0.1", port=free_port(), block=False, delay=0,
                    auth=[("ana", "pw-ana")], api_key="k")
    url = str(demo.local_url).rstrip("/")
    try:
        body = {"questions": QUESTIONS[:1], "format": "markdown"}
        assert httpx.post(f"{url}/export", json=body, timeout=60).status_code == 401
        assert httpx.get(f"{url}/export", params={"session": "x"}).status_code == 401
        keyed = httpx.post(f"{url}/export", json=body, headers={"Authorization": "Bearer k"}, timeout=60)
        assert keyed.status_code == 200
        with httpx.Client() as session:
            assert session.post(f"{url}/login", data={"username": "ana", "password": "pw-ana"}).status_code == 200
            assert session.post(f"{url}/export", json=body, timeout=60).status_code == 200
    finally:
        demo.close()
