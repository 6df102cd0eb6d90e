"""The web chat (Gradio): questions in, cited answers streamed out, sources beside them.

Answers are rendered by `speechrag.render`: everything shown on the page that comes from the
corpus or the user is escaped there (markdown for the chat bubbles, HTML for the sources
panel); the Chatbot's sanitiser is a second line of defence, never the first (`gr.HTML` has
none). The server serves only Gradio's own assets: `GuardMiddleware` refuses every route that
reads a file or fetches a URL.

`serve` also serves, on the same host and port, the OpenAI-compatible API at ``/v1``
(`speechrag.openai_api`) and, when asked, the MCP tools at ``/mcp`` (`speechrag.mcp_server`).
The page, ``/v1`` and ``/mcp`` share one `IndexService`: one lock, one hot-reloading Searcher.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.events import api as gr_api
from gradio.helpers import Examples

from speechrag.answering import Answer
from speechrag.config import LOOPBACK, check_exposure
from speechrag.errors import ConfigError, QueryError, SpeechragError, one_line
from speechrag.formats import MB, SUFFIXES
from speechrag.passage import Passage, Speech
from speechrag.render import (
    READING_EMPTY,
    chips_html,
    escape_markdown,
    markdown_chunks,
    reading_html,
    sources_html,
    staged_html,
    upload_html,
)
from speechrag.searcher import MAX_QUERY_CHARS, MODES, Searcher
from speechrag.serving import IndexService, Limits, Slots
from speechrag.text import strip_enumerator
from speechrag.uploads import Uploader, UploadLimits

logger = logging.getLogger(__name__)

MAX_K = 20  # the slider's top; answer() itself accepts up to retrieval.MAX_K
DEFAULT_K = 5
QUEUE_MAX_SIZE = 64
ANALYTICS_EVENTS = 500
CONCURRENCY_LIMIT = 4
STREAM_DELAY = 0.05  # seconds between streamed sentences, so the answer reads as it arrives
SHOWN_QUESTION_CHARS = 200
EXAMPLE_SCAN = 5000  # passages read for example questions: the first speeches suffice

MODE_LABELS = {"hybrid": "混合 Hybrid", "dense": "语义 Dense", "keyword": "关键词 Keyword"}

# Routes that read files from disk or fetch URLs for the browser. This app shows no files,
# takes no uploads and needs no proxy, so they are refused whatever GRADIO_ALLOWED_PATHS says.
BLOCKED_ROUTES = re.compile(
    r"^/+(gradio_api/+)?(file[=/]|proxy=|upload|custom_component/|stream/|run-history|runs"
    r"|vibe|undo-vibe|process_recording|dev/|monitoring)"
)


THEME = gr.themes.Default(
    # System fonts only: nothing is fetched from a font CDN.
    font=["Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "ui-sans-serif", "sans-serif"],
    font_mono=["Noto Sans Mono CJK SC", "ui-monospace", "monospace"],
).set(
    # The default orange (#f97316) and grey hints (#bbbbc2) read at 1.8-2.8:1 on white (axe-core
    # "color-contrast"); orange-700 and grey-600 reach 5:1 and more, WCAG AA's 4.5:1.
    color_accent="#c2410c",
    color_accent_soft="#ffedd5",
    button_primary_background_fill="#c2410c",
    button_primary_background_fill_hover="#9a3412",
    button_primary_text_color="#ffffff",
    button_cancel_background_fill="#b91c1c",  # Stop and Remove: red-700, 6.5:1 under white text
    button_cancel_background_fill_hover="#991b1b",
    button_cancel_text_color="#ffffff",
    body_text_color_subdued="#4b5563",
    input_placeholder_color="#6b7280",
    block_info_text_color="#4b5563",
    block_label_text_color="#374151",
)

CSS = """
#sources .src-card { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 8px 12px; margin-bottom: 10px; background: var(--background-fill-secondary); }
#sources h2 { margin: 0 0 8px 0; font-size: 1rem; }
#sources .src-head { font-weight: 600; margin-bottom: 4px; }
#sources .src-n { color: var(--color-accent); margin-right: 6px; }
#sources .src-text { line-height: 1.75; margin: 4px 0; white-space: pre-wrap; }
#sources mark { background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 2px; }
#sources .src-also, #sources .src-empty { color: var(--body-text-color-subdued); font-size: 0.9em; }
#sources .src-card[data-cite] { cursor: pointer; }
#sources .src-card[data-cite]:hover, #sources .src-card[data-cite]:focus { border-color: var(--color-accent); }
#chat a[href^="#cite-"] { text-decoration: none; font-weight: 600; }
#scope .chips { display: flex; flex-wrap: wrap; gap: 6px; }
#scope .chip { border: 1px solid var(--border-color-primary); border-radius: 999px; padding: 1px 10px;
  font-size: 0.85em; background: var(--background-fill-secondary); }
#scope .chip-k { color: var(--body-text-color-subdued); }
#counter { text-align: right; font-size: 0.85em; }
/* The chips take the row, the counter (empty until the box nears the limit) what it needs: on a
   phone they would otherwise get half the width each (gr.HTML ignores scale). */
#scope { flex: 4 1 0 !important; }
#counter { flex: 1 1 0 !important; min-width: 80px !important; }
#counter .over { color: #b91c1c; font-weight: 600; }
#upload-result { min-height: 4em; }  /* room for the build's progress bar */
#reading .rv { max-width: 46em; margin: 0 auto; line-height: 1.9; }
#reading .rv-title { margin-bottom: 4px; }
#reading .rv-meta, #reading .rv-source { color: var(--body-text-color-subdued); font-size: 0.9em; }
#reading .rv-section { margin: 1.2em 0 0.4em; font-size: 1.05rem; }
#reading .rv-p { margin: 0.5em 0; white-space: pre-wrap; scroll-margin-top: 30vh; }
#reading .rv-n { color: var(--body-text-color-subdued); font-size: 0.8em; margin-right: 8px; }
#reading .rv-target { background: var(--background-fill-secondary); border-left: 3px solid var(--color-accent);
  padding-left: 8px; }
#reading mark { background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 2px; }
/* A phone (one column): the two columns would stack, the sources under the examples, far from
   the answers. Their parts become one list instead, the sources right under the question box,
   then the examples, then the settings. */
@media (max-width: 640px) {
  #chat-main, #chat-side { display: contents !important; }
  #chat-row > * { flex: 1 1 100% !important; min-width: 0 !important; }
  #examples { order: 1; }
  #settings { order: 2; }
}
/* Targets of at least 24 px (WCAG 2.5.8) and a visible focus ring on the slider. */
#copy, #settings button, #chat button { min-height: 24px; min-width: 24px; }
#sign-out { white-space: nowrap; align-self: flex-start; }
input[type=range]:focus-visible { outline: 2px solid #c2410c; outline-offset: 3px; }
"""

# Runs once in the page: a click (or Enter) on an answer's [n] link or on a source card opens
# the cited passage in the reading view, through the hidden #open-btn (its event reads
# window.speechragTarget); and "Copy with sources" copies the plain text kept in the panel.
PAGE_JS = """
() => {
  document.documentElement.lang = "zh-CN";
  // Gradio names each radio apart (no arrow keys between them), gives its accordions no
  // aria-expanded, labels a chat message with its markdown source (escapes, link syntax) and
  // its drop zone with words other than those shown (axe: label-content-name-mismatch): mend
  // them, once per frame whenever Gradio redraws them.
  const mend = () => {
    document.querySelectorAll("#mode input[type=radio]").forEach((r) => { r.name = "speechrag-mode"; });
    document.querySelectorAll("button.label-wrap").forEach((b) =>
      b.setAttribute("aria-expanded", b.classList.contains("open") ? "true" : "false"));
    document.querySelectorAll('#chat [aria-label$="message"], #chat [aria-label*="message: "]').forEach((m) => {
      const who = m.getAttribute("aria-label").split(": ")[0];
      const label = `${who}: ${m.innerText.trim()}`;
      if (m.getAttribute("aria-label") !== label) m.setAttribute("aria-label", label);
    });
    document.querySelectorAll("#upload button.upload-container").forEach((z) => {
      const label = `${z.innerText.replace(/\\s+/g, " ").trim()}（拖入或选择讲话稿文件）`;
      if (z.getAttribute("aria-label") !== label) z.setAttribute("aria-label", label);
    });
  };
  let queued = false;
  const soon = () => { if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; mend(); }); } };
  mend();
  new MutationObserver(soon).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["class"]});
  const open = (key) => {
    window.speechragTarget = key;
    document.querySelector("#open-btn")?.click();
  };
  const target = (e) => {
    const link = e.target.closest && e.target.closest('a[href^="#cite-"]');
    if (link) return link.getAttribute("href").slice("#cite-".length);
    const card = e.target.closest && e.target.closest("[data-cite]");
    return card ? card.dataset.cite : null;
  };
  document.addEventListener("click", (e) => {
    const key = target(e);
    if (key) { e.preventDefault(); e.stopPropagation(); open(key); }
  }, true);
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" && e.key !== " ") return;
    const card = e.target.closest && e.target.closest("[data-cite]");
    if (card) { e.preventDefault(); open(card.dataset.cite); }
  }, true);
  window.speechragCopy = () => {
    const text = document.querySelector("#sources .src-plain")?.textContent || "";
    if (!text) return;
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text); return; }
    const area = document.createElement("textarea");  // plain http: the old way
    area.value = text; document.body.appendChild(area); area.select();
    document.execCommand("copy"); area.remove();
  };
}
"""

# After the reading view changes: bring the cited paragraph (else the top) into view.
SCROLL_JS = """
() => setTimeout(() => {
  const el = document.querySelector("#reading .rv-target") || document.querySelector("#reading");
  el?.scrollIntoView({block: el.classList.contains("rv-target") ? "center" : "start"});
}, 150)
"""


UPLOAD_ROUTES = re.compile(r"^/+(gradio_api/+)?upload(_progress)?/*$")


class GuardMiddleware:
    """ASGI middleware answering 403 to every file-serving route (see `BLOCKED_ROUTES`); with
    ``allow_upload`` (``serve --allow-upload``), Gradio's upload route is let through, and
    only it: uploaded files are still never served back."""

    def __init__(self, app: Any, allow_upload: bool = False) -> None:
        self.app = app
        self.allow_upload = allow_upload

    def blocked(self, path: str) -> bool:
        return bool(BLOCKED_ROUTES.match(path)) and not (self.allow_upload and UPLOAD_ROUTES.match(path))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.blocked(scope.get("path", "")):
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": b"Forbidden"})
            return
        await self.app(scope, receive, send)


# --- what the page offers -----------------------------------------------------------------


def speech_choices(speeches: Sequence[Speech]) -> list[tuple[str, str]]:
    """(title, id) of every speech in the index, in corpus order."""
    return [(s.title, s.id) for s in speeches]


_PLAIN_CLAUSE = re.compile(r"^[\u4e00-\u9fff、“”]{4,24}$")


def example_questions(passages: Sequence[Passage], n: int = 4) -> list[str]:
    """Questions made from the section headings, taking speeches in turn so they differ.

    A heading is an instruction ("突出重点，狠抓落实，扎实做好…工作"); its last clause asked
    with 如何 is a question the speech answers. Only headings of plain Chinese are used.
    """
    by_speech: dict[str, list[str]] = {}
    taken: set[str] = set()
    for p in passages:
        clause = strip_enumerator(p.section.split(" › ")[0]).split("，")[-1]
        clause = clause.removeprefix("就是要").strip()
        q = f"如何{clause}？"
        if _PLAIN_CLAUSE.match(clause) and q not in taken:
            taken.add(q)
            by_speech.setdefault(p.speech_id, []).append(q)
    out: list[str] = []
    queues = list(by_speech.values())
    while len(out) < n and any(queues):
        for qs in queues:
            if qs and len(out) < n:
                out.append(qs.pop(0))
    return out


# --- the handlers -------------------------------------------------------------------------


Chat = list[dict[str, str]]
PENDING = "检索中… · Searching…"
YEAR_OPEN = (0, 9999)  # the ends of a year range left open
STOPPED = "（已停止 · stopped）"


@dataclass(frozen=True)
class Scope:
    """What the next question is limited to, as the settings panel says it."""

    mode: str = "hybrid"
    speeches: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    years: tuple[int, int] | None = None

    @classmethod
    def of(cls, mode: str, speeches: Sequence[str] | None, speakers: Sequence[str] | None,
           places: Sequence[str] | None, year_from: object, year_to: object) -> Scope:
        """From the settings' values (a year left open is None or "")."""
        first, last = _year(year_from), _year(year_to)
        years = None if first is None and last is None else (
            YEAR_OPEN[0] if first is None else first, YEAR_OPEN[1] if last is None else last)
        return cls(mode, tuple(speeches or ()), tuple(speakers or ()), tuple(places or ()), years)

    def options(self) -> dict[str, Any]:
        """`answer()`'s keyword arguments for this scope."""
        return {"mode": self.mode, "speeches": list(self.speeches) or None, "speaker": list(self.speakers) or None,
                "place": list(self.places) or None, "years": self.years}

    def chips(self, titles: dict[str, str]) -> list[tuple[str, str]]:
        """(label, value) chips for `render.chips_html`; ``titles`` maps speech ids to titles."""
        out = [("方式 · Mode ", MODE_LABELS.get(self.mode, self.mode))]
        out += [("讲话 · Speech ", titles.get(s, s)) for s in self.speeches]
        out += [("讲话人 · Speaker ", s) for s in self.speakers]
        out += [("地点 · Place ", p) for p in self.places]
        if self.years:
            a, b = sorted(self.years)
            shown = f"{a}" if a == b else f"{'' if a == YEAR_OPEN[0] else a}–{'' if b == YEAR_OPEN[1] else b}"
            out.append(("年份 · Years ", shown))
        if len(out) == 1:
            out.append(("范围 · Scope ", "全部讲话 · all speeches"))
        return out


def _year(value: object) -> int | None:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise QueryError(f"a year must be a whole number, not {value!r}") from None


def _shown_question(question: object) -> str:
    """The user's bubble: the question cut to a readable length, escaped."""
    shown = question.strip() if isinstance(question, str) else ""
    # Echo broken text safely: a lone surrogate would make the JSON event stream fail.
    shown = shown.encode("utf-8", "replace").decode("utf-8")
    if len(shown) > SHOWN_QUESTION_CHARS:
        shown = shown[:SHOWN_QUESTION_CHARS] + "…"
    return escape_markdown(shown) or "（空）"


def cite_href(key: int) -> Callable[[int], str]:
    """The in-page anchor of source n of the chat's answer number ``key`` (the page's script
    turns a click on it into the reading view)."""
    return lambda n: f"#cite-{key}-{n}"


def make_respond(service: IndexService, delay: float = STREAM_DELAY) -> Callable[..., Iterator[tuple[Any, ...]]]:
    """The chat handler: yields (chat, turns, answers, sources panel, question box, send, stop)
    as the answer streams; `gr.skip()` leaves a part as it is. The box is cleared once, at the
    start, so a question typed while this one is answered survives (the page sends it next).
    ``answers`` holds one Answer (or None, for an error) per reply, so each keeps its sources."""

    def respond(question: str, chat: Chat, turns: list[str], answers: list[Answer | None], k: float,
                mode: str, speeches: list[str], speakers: list[str], places: list[str],
                year_from: object, year_to: object) -> Iterator[tuple[Any, ...]]:
        if question == "":  # nothing waiting (the page sends " " for an empty box)
            yield (gr.skip(),) * 7
            return
        chat = [*(chat or []), {"role": "user", "content": _shown_question(question)}]
        turns, answers = list(turns or []), list(answers or [])
        busy, idle = gr.Button(interactive=False), gr.Button(interactive=True)
        yield ([*chat, {"role": "assistant", "content": PENDING}], gr.skip(), gr.skip(), gr.skip(), "",
               busy, gr.Button(visible=True))
        try:
            scope = Scope.of(mode, speeches, speakers, places, year_from, year_to)
            ans = service.ask(question, turns, k=int(k), **scope.options())
        except Exception as exc:
            if not isinstance(exc, SpeechragError):
                logger.exception("answer() failed")
            message = one_line(exc) if isinstance(exc, SpeechragError) else "内部错误，请稍后再试。(internal error)"
            chat.append({"role": "assistant", "content": "⚠️ " + escape_markdown(message)})
            # The sources panel keeps the last answer's cards: an error has none of its own.
            yield chat, turns, [*answers, None], gr.skip(), gr.skip(), idle, gr.Button(visible=False)
            return
        key = len(answers)
        panel = sources_html(ans, key=str(key))
        text = ""
        for chunk in markdown_chunks(ans, href=cite_href(key)):
            text += chunk
            # A new list per update: Gradio diffs successive values, so none may be mutated.
            yield ([*chat, {"role": "assistant", "content": text}], gr.skip(), gr.skip(), panel, gr.skip(),
                   busy, gr.skip())
            time.sleep(delay)
        yield ([*chat, {"role": "assistant", "content": text}], [*turns, ans.question], [*answers, ans], panel,
               gr.skip(), idle, gr.Button(visible=False))

    return respond


def stopped(chat: Chat) -> tuple[Chat, Any, Any]:
    """After Stop: the pending reply says so; Send is back, Stop hidden."""
    chat = list(chat or [])
    if chat and chat[-1]["role"] == "assistant" and chat[-1]["content"] == PENDING:
        chat[-1] = {"role": "assistant", "content": STOPPED}
    return chat, gr.Button(interactive=True), gr.Button(visible=False)


def input_state(question: str) -> tuple[Any, str]:
    """Send enabled only for a question that fits; a counter once the box nears the limit
    (a pasted text is never cut silently: the server would refuse it, the counter says why)."""
    n = len((question or "").strip())
    counter = ""
    if n > MAX_QUERY_CHARS * 0.9:
        over = "，太长了 · too long" if n > MAX_QUERY_CHARS else ""
        counter = f'<span class="{"over" if over else ""}">{n:,} / {MAX_QUERY_CHARS:,} 字{over}</span>'
    return gr.Button(interactive=0 < n <= MAX_QUERY_CHARS), counter


def answer_of(answers: list[Answer | None], chat: Chat, message: int) -> tuple[int, Answer | None]:
    """The answer behind chat message number ``message`` (its key, and the Answer or None)."""
    replies = [i for i, m in enumerate(chat[: message + 1]) if m.get("role") == "assistant"]
    key = len(replies) - 1
    return key, answers[key] if 0 <= key < len(answers) else None


READING_GONE = '<div class="rv-empty">找不到这篇讲话（索引已更新）。Speech not found (the index changed).</div>'


def make_reader(service: IndexService) -> Callable[..., str]:
    """The reading view of one speech, optionally with one passage marked and highlighted."""

    def read(speech_id: str, target: str = "", spans: Sequence[tuple[int, int]] = ()) -> str:
        speech, passages = service.read(speech_id)
        if speech is None:
            return READING_GONE
        return reading_html(speech, passages, target=target, spans=spans)

    return read


def open_citation(read: Callable[..., str], key: str, answers: list[Answer | None]) -> str:
    """The reading view for ``key`` = "answer-n" (source n of that answer), its quoted
    sentences highlighted."""
    a, _, n = (key or "").partition("-")
    ans = answers[int(a)] if a.isdigit() and int(a) < len(answers or []) else None
    if ans is None or not n.isdigit() or not 1 <= int(n) <= len(ans.citations):
        return READING_EMPTY
    hit = ans.citations[int(n) - 1]
    return read(hit.passage.speech_id, hit.passage.id, hit.cited if ans.found else ())


# key: (label, Speech field, descending)
SORTS = {
    "date-desc": ("日期，新的在前 · Date, newest first", "date", True),
    "date": ("日期，早的在前 · Date, oldest first", "date", False),
    "title": ("标题 · Title", "title", False),
    "speaker": ("讲话人 · Speaker", "speaker", False),
    "place": ("地点 · Place", "place", False),
    "paragraphs": ("段落数，多的在前 · Paragraphs, most first", "paragraphs", True),
    "source": ("来源文件 · Source file", "source", False),
}
DOC_HEADERS = ["标题 · Title", "日期 · Date", "讲话人 · Speaker", "地点 · Place", "段落 · Paragraphs",
               "格式 · Format", "来源文件 · Source", "编号 · ID"]


def documents_table(speeches: Sequence[Speech], query: str = "", sort: str = "date-desc") -> Any:
    """The documents table's new value and label (how many of how many are shown)."""
    rows = document_rows(speeches, query, sort)
    shown = f"{len(rows)} / {len(speeches)}" if len(rows) != len(speeches) else f"{len(speeches)}"
    return gr.Dataframe(rows, label=f"{shown} 篇讲话 · speeches（点一行阅读全文 · click a row to read it）")


def document_rows(speeches: Sequence[Speech], query: str = "", sort: str = "date-desc") -> list[list[Any]]:
    """The documents table: the speeches whose fields contain every word of ``query``, sorted.
    Speeches without the sort field (no date, no speaker) go last either way."""
    words = (query or "").lower().split()

    def text(s: Speech) -> str:
        return " ".join((s.title, s.date, s.speaker, s.place, s.occasion, s.format, s.source, s.id)).lower()

    shown = [s for s in speeches if all(w in text(s) for w in words)]
    _, name, descending = SORTS.get(sort, SORTS["date-desc"])
    present = sorted((s for s in shown if getattr(s, name)), key=attrgetter(name), reverse=descending)
    shown = present + [s for s in shown if not getattr(s, name)]
    return [[s.title, s.date, s.speaker, s.place, s.paragraphs, s.format, s.source, s.id] for s in shown]


def _whole(k: object) -> int:
    """k as sent by a client (JSON may carry 5, 5.0 or "5"), or a QueryError."""
    try:
        value = float(k)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise QueryError(f"k must be a whole number, not {k!r}") from None
    if not value.is_integer():
        raise QueryError(f"k must be a whole number, not {k!r}")
    return int(value)


def _texts(value: object, name: str) -> list[str] | None:
    """An optional list of strings from a client, or a QueryError naming the argument."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise QueryError(f"{name} must be a list of strings, not {type(value).__name__}")
    return list(value)


def make_ask(service: IndexService) -> Callable[..., dict[str, Any]]:
    """The `/ask` API endpoint."""

    def ask(
        question: str,
        mode: str = "hybrid",
        k: int = DEFAULT_K,
        speeches: list[str] | None = None,
        history: list[str] | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the speeches.

        Returns {text, found, question, query, mode, citations: [...], evidence}; each sentence
        of text ends with [n], and citations[n-1] gives its speech, section and paragraph.
        """
        # Five inputs, as before: Gradio's REST protocol requires every input of an endpoint,
        # so a new one would break callers that send these five (the page has the filters).
        try:
            speech_ids, turns = _texts(speeches, "speeches"), _texts(history, "history")
            return service.ask(question, turns, mode=mode, k=_whole(k), speeches=speech_ids or None).to_dict()
        except SpeechragError as exc:
            raise gr.Error(one_line(exc), print_exception=False) from exc

    return ask


def make_documents(service: IndexService) -> Callable[[], list[dict[str, Any]]]:
    """The `/documents` API endpoint."""

    def documents() -> list[dict[str, Any]]:
        """Every speech of the index: id, title, date, speaker, place, occasion, format, source,
        paragraphs, characters, in corpus order."""
        return [s.to_dict() for s in service.speeches()]

    return documents


def make_read(service: IndexService) -> Callable[[str], dict[str, Any]]:
    """The `/read_speech` API endpoint."""

    def read_speech(speech_id: str) -> dict[str, Any]:
        """One speech and its passages in reading order: {speech, passages: [{id, section,
        paragraph, part, text}]}."""
        speech, passages = service.read(str(speech_id))
        if speech is None:
            raise gr.Error(f"unknown speech id {speech_id!r}: see /documents for the ids", print_exception=False)
        keep = ("id", "section", "paragraph", "part", "text")
        return {"speech": speech.to_dict(), "passages": [{f: getattr(p, f) for f in keep} for p in passages]}

    return read_speech


# --- the page -----------------------------------------------------------------------------


def _choices(values: Sequence[str]) -> list[str]:
    return sorted({v for v in values if v})


@dataclass(frozen=True)
class ChatTab:
    """The chat tab's components."""

    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    stop: gr.Button
    chips: gr.HTML
    counter: gr.HTML
    copy: gr.Button
    examples: Examples | None
    sources: gr.HTML
    mode: gr.Radio
    k: gr.Slider
    speeches: gr.Dropdown
    speakers: gr.Dropdown
    places: gr.Dropdown
    year_from: gr.Dropdown
    year_to: gr.Dropdown
    clear_filters: gr.Button
    clear: gr.Button

    @property
    def settings(self) -> list[Any]:
        """What limits the next question, in `Scope.of`'s order."""
        return [self.mode, self.speeches, self.speakers, self.places, self.year_from, self.year_to]


@dataclass(frozen=True)
class DocsTab:
    """The documents tab's components."""

    filter: gr.Textbox
    sort: gr.Dropdown
    table: gr.Dataframe
    back: gr.Button
    reading: gr.HTML


def _conversation() -> tuple[gr.Chatbot, gr.Textbox, gr.Button, gr.Button]:
    chatbot = gr.Chatbot(
        label="对话 · Chat",
        elem_id="chat",
        height=460,
        sanitize_html=True,
        render_markdown=True,
        latex_delimiters=[],
        allow_tags=False,
        feedback_options=None,
        buttons=[],  # "Copy with sources" below copies plain text; Gradio's would copy the escapes
        placeholder="在下方输入问题，或点一个示例问题。<br>Ask below, or pick an example.",
    )
    with gr.Row():
        # No max_length: the browser would cut a pasted text silently; the counter warns.
        # A hint short enough for a phone's box (390 px wide: a longer one wraps and is cut off);
        # Enter sends on a desktop, the Send button beside it everywhere.
        question = gr.Textbox(placeholder="输入问题 · Ask a question",
                              label="问题 · Question", show_label=False, lines=1, max_lines=4, scale=5,
                              elem_id="question", autofocus=True)
        send = gr.Button("发送 Send", variant="primary", scale=1, min_width=90, interactive=False,
                         elem_id="send")
        stop = gr.Button("停止 Stop", variant="stop", scale=1, min_width=90, visible=False, elem_id="stop")
    return chatbot, question, send, stop


def _examples(searcher: Searcher, question: gr.Textbox) -> Examples | None:
    examples = example_questions(searcher.store.passages(range(min(searcher.store.size, EXAMPLE_SCAN))))
    if not examples:
        return None
    shown: Examples = gr.Examples(examples=[[q] for q in examples], inputs=[question], cache_examples=False,
                                  elem_id="examples",
                                  label="示例问题 · Examples（点一下即提问 · click to ask）")
    return shown


def _chat_tab(searcher: Searcher, speeches: Sequence[Speech]) -> ChatTab:
    titles = {s.id: s.title for s in speeches}
    with gr.Row(equal_height=False, elem_id="chat-row"):
        with gr.Column(scale=3, elem_id="chat-main"):
            chatbot, question, send, stop = _conversation()
            with gr.Row():
                chips = gr.HTML(chips_html(Scope().chips(titles)), js_on_load=None, elem_id="scope", padding=False)
                counter = gr.HTML("", js_on_load=None, elem_id="counter", padding=False)
            copy = gr.Button("复制答案和来源 · Copy with sources", size="sm", elem_id="copy")
            examples = _examples(searcher, question)
        with gr.Column(scale=2, elem_id="chat-side"):
            sources = gr.HTML(sources_html(None), js_on_load=None, elem_id="sources", max_height=520)
            with gr.Accordion("检索设置 · Settings", open=True, elem_id="settings"):
                mode = gr.Radio([(MODE_LABELS[m], m) for m in ("hybrid", "dense", "keyword") if m in MODES],
                                value="hybrid", label="检索方式 · Search mode", elem_id="mode")
                k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="段落数 · Passages")
                menus = menu_choices(speeches)
                chosen = gr.Dropdown(menus[0], value=[], multiselect=True,
                                     label="限定讲话 · Speeches", info="不选即搜索全部 · none selected = all")
                speakers = gr.Dropdown(menus[1], value=[], multiselect=True, label="讲话人 · Speaker")
                places = gr.Dropdown(menus[2], value=[], multiselect=True, label="地点 · Place")
                with gr.Row():
                    year_from = gr.Dropdown(menus[3], value="", label="起始年份 · From year")
                    year_to = gr.Dropdown(menus[3], value="", label="截止年份 · To year")
                clear_filters = gr.Button("清除筛选 · Clear filters", size="sm")
                clear = gr.Button("清空对话（筛选保留）· Clear chat (filters stay)", variant="secondary")
    return ChatTab(chatbot, question, send, stop, chips, counter, copy, examples, sources, mode, k, chosen,
                   speakers, places, year_from, year_to, clear_filters, clear)


def _docs_tab(speeches: Sequence[Speech]) -> DocsTab:
    with gr.Row():
        query = gr.Textbox(label="筛选 · Filter", placeholder="标题、讲话人、地点、日期、文件名…", scale=3,
                           elem_id="doc-filter")
        sort = gr.Dropdown([(label, key) for key, (label, _, _) in SORTS.items()], value="date-desc",
                           label="排序 · Sort by", scale=2, elem_id="doc-sort")
    table = gr.Dataframe(document_rows(speeches), headers=DOC_HEADERS, interactive=False, wrap=True,
                         elem_id="documents", max_height=360, datatype="str",
                         label=f"{len(speeches)} 篇讲话 · speeches（点一行阅读全文 · click a row to read it）")
    back = gr.Button("← 返回对话 · Back to chat", size="sm", elem_id="back")
    reading = gr.HTML(READING_EMPTY, js_on_load=None, elem_id="reading")
    return DocsTab(query, sort, table, back, reading)


PRIVATE: dict[str, Any] = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}

# Runs in the browser at once, before any round trip: the question moves from the box to the
# hidden #pending box, so the box is free for the next one. A question already waiting there
# (sent while another is answered, not yet taken) keeps the new one in the box: nothing is lost.
TAKE_JS = "(q, waiting) => waiting ? [q, waiting] : ['', q === '' ? ' ' : q]"


def _wire_chat(chat: ChatTab, pending: gr.Textbox, turns: gr.State, answers: gr.State, respond: Callable[..., Any],
               titles: dict[str, str]) -> None:
    answer_event: dict[str, Any] = {
        "fn": respond,
        "inputs": [pending, chat.chatbot, turns, answers, chat.k, *chat.settings],
        "outputs": [chat.chatbot, turns, answers, chat.sources, pending, chat.send, chat.stop],
        "api_visibility": "private",
        "concurrency_id": "answer",
        "show_progress": "hidden",
        # A question sent while another is answered waits for it, then is read afresh.
        "trigger_mode": "always_last",
    }
    take: dict[str, Any] = {"fn": None, "inputs": [chat.question, pending], "outputs": [chat.question, pending],
                            "js": TAKE_JS, **PRIVATE}
    after: dict[str, Any] = {"fn": input_state, "inputs": [chat.question], "outputs": [chat.send, chat.counter],
                             **PRIVATE}
    events = [gr.on([chat.question.submit, chat.send.click], **take).then(**answer_event)]
    if chat.examples is not None:  # a click fills the box, then asks
        events.append(chat.examples.load_input_event.then(**take).then(**answer_event))
    for event in events:
        event.then(**after)
    chat.stop.click(stopped, inputs=[chat.chatbot], outputs=[chat.chatbot, chat.send, chat.stop],
                    cancels=events, **PRIVATE)
    chat.question.change(input_state, inputs=[chat.question], outputs=[chat.send, chat.counter],
                         trigger_mode="always_last", **PRIVATE)

    def show_scope(*values: Any) -> str:
        return chips_html(Scope.of(*values).chips(titles))

    gr.on([c.change for c in chat.settings], show_scope, inputs=chat.settings, outputs=[chat.chips], **PRIVATE)
    chat.clear_filters.click(lambda: ("hybrid", [], [], [], "", ""), outputs=chat.settings, **PRIVATE)

    def reset() -> tuple[Chat, list[str], list[Answer | None], str, str]:
        return [], [], [], sources_html(None), ""

    reset_outputs = [chat.chatbot, turns, answers, chat.sources, chat.question]
    chat.clear.click(reset, outputs=reset_outputs, **PRIVATE)
    # The chat's own bin icon clears the messages; forget the turns and sources with them.
    chat.chatbot.clear(reset, outputs=reset_outputs, **PRIVATE)

    def show_sources(history: Chat, kept: list[Answer | None], evt: gr.SelectData) -> Any:
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        key, ans = answer_of(kept, history, int(index))
        return sources_html(ans, key=str(key)) if ans is not None else gr.skip()

    chat.chatbot.select(show_sources, inputs=[chat.chatbot, answers], outputs=[chat.sources], **PRIVATE)
    chat.copy.click(None, js="() => window.speechragCopy && window.speechragCopy()")


def _wire_reading(service: IndexService, tabs: gr.Tabs, docs: DocsTab, answers: gr.State) -> None:
    read = make_reader(service)
    # The bridge from the page's script (a click on [n] or a source card) to the server.
    open_key = gr.Textbox(visible="hidden", elem_id="open-key")
    open_btn = gr.Button(visible="hidden", elem_id="open-btn")

    def cited(key: str, kept: list[Answer | None]) -> tuple[str, Any]:
        return open_citation(read, key, kept), gr.Tabs(selected="docs")

    open_btn.click(cited, inputs=[open_key, answers], outputs=[docs.reading, tabs],
                   js="(k, a) => [window.speechragTarget || '', a]", **PRIVATE).then(None, js=SCROLL_JS)

    def opened(evt: gr.SelectData) -> str:
        row = evt.row_value or []
        return read(str(row[-1])) if row else READING_EMPTY

    docs.table.select(opened, outputs=[docs.reading], **PRIVATE).then(None, js=SCROLL_JS)
    gr.on([docs.filter.change, docs.sort.change], lambda q, by: documents_table(service.speeches(), q, by),
          inputs=[docs.filter, docs.sort], outputs=[docs.table], **PRIVATE)
    docs.back.click(lambda: gr.Tabs(selected="chat"), outputs=[tabs], **PRIVATE)


def make_add_documents(uploader: Uploader) -> Callable[..., dict[str, Any]]:
    """The `/add_documents` endpoint (and the page's Add button)."""

    def add_documents(files: list[str] | None, progress: gr.Progress = gr.Progress()) -> dict[str, Any]:  # noqa: B008 (Gradio's idiom)
        """Add speech documents to the corpus and rebuild the index: {added: [{name, stored_as}],
        skipped: [{name, reason}], speeches: [new speech ids], build, seconds}."""
        paths = [str(f) for f in (files or [])]
        if not paths:
            raise gr.Error("no files: choose one or more documents first", print_exception=False)

        def step(done: int, total: int) -> None:
            progress((done, total), desc="嵌入新段落 · embedding new passages", unit="passages")

        try:
            return uploader.add([(p, Path(p).name) for p in paths], progress=step).to_dict()
        except SpeechragError as exc:
            raise gr.Error(one_line(exc), print_exception=False) from exc

    return add_documents


def menu_choices(speeches: Sequence[Speech]) -> tuple[list[Any], list[str], list[str], list[str]]:
    """The chat's filter menus for these speeches: speeches, speakers, places, years ("" = open)."""
    years = ["", *(str(y) for y in sorted({s.year for s in speeches if s.year}))]
    return (speech_choices(speeches), _choices([s.speaker for s in speeches]),
            _choices([s.place for s in speeches]), years)


def filter_choices(speeches: Sequence[Speech]) -> list[Any]:
    """Updates of the five filter menus (years twice), for after an upload."""
    chosen, speakers, places, years = menu_choices(speeches)
    return [gr.Dropdown(choices=c) for c in (chosen, speakers, places, years, years)]


def make_remove_document(uploader: Uploader) -> Callable[..., Any]:
    """The `/remove_document` endpoint (and the page's Remove button, after its confirmation)."""

    def remove_document(source: str, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008 (Gradio's idiom)
        """Take one source file (as /documents lists it) out of the corpus and rebuild:
        {removed: [{source, kept_as}], speeches: [removed speech ids], build, seconds}."""
        if not source:  # the page's confirmation was declined
            return gr.skip()

        def step(done: int, total: int) -> None:
            progress((done, total), desc="重建索引 · rebuilding", unit="passages")

        try:
            return uploader.remove(str(source), progress=step).to_dict()
        except SpeechragError as exc:
            raise gr.Error(one_line(exc), print_exception=False) from exc

    return remove_document


def source_files(speeches: Sequence[Speech]) -> list[str]:
    return sorted({s.source for s in speeches})


# The page asks before removing; a declined confirmation sends "" (nothing happens).
CONFIRM_JS = """(source) => source && confirm(
  `从语料中删除「${source}」并重建索引？文件中的全部讲话都会移除（文件移入语料的 .removed 文件夹）。\n` +
  `Remove "${source}" and every speech in it from the corpus and rebuild? (The file is moved to .removed.)`)
  ? source : ""
"""


def stage(dropped: list[str] | None, staged: list[str] | None) -> tuple[None, list[str], str]:
    """After a drop: the files join those waiting for Add (a file dropped again replaces its
    namesake), the drop zone is emptied and the list is shown as our own summary. Gradio's
    file list links each file to its file route, which this server refuses (403): a dead link,
    so the zone never keeps a file."""
    by_name = {Path(f).name: str(f) for f in [*(staged or []), *(dropped or [])]}
    waiting = list(by_name.values())
    return None, waiting, staged_html(list(by_name))


def _wire_upload(uploader: Uploader, docs: DocsTab, chat: ChatTab) -> None:
    with gr.Accordion("添加或删除讲话稿 · Add or remove documents", open=False, elem_id="add-docs"):
        limits = uploader.limits
        drop = gr.File(file_count="multiple", type="filepath", elem_id="upload",
                       label=f"拖入或选择文件 · Drop or choose files（{' '.join(SUFFIXES)}；每个不超过 "
                             f"{limits.max_bytes // MB} MB，一次最多 {limits.max_files} 个）")
        # The files waiting for Add, and the input of /add_documents (gradio_client sends its
        # files here). Never rendered (visible=False), so its file links never reach the page.
        files = gr.File(file_count="multiple", type="filepath", visible=False, label="files")
        with gr.Row():
            add = gr.Button("添加并更新索引 · Add and rebuild", variant="primary", scale=3, elem_id="add")
            unstage = gr.Button("清空待添加 · Clear the list", scale=1, elem_id="unstage")
        with gr.Row():
            # Custom values pass: the menu was filled at start, /remove_document may name a file
            # uploaded since; Uploader.remove checks every name against the live index itself.
            doomed = gr.Dropdown(source_files(uploader.service.speeches()), value=None, scale=3,
                                 allow_custom_value=True, label="删除文件 · Remove a file", elem_id="remove-file")
            remove = gr.Button("删除并更新索引 · Remove and rebuild", variant="stop", scale=1, elem_id="remove")
        report = gr.JSON(visible="hidden")
        summary = gr.HTML("", js_on_load=None, elem_id="upload-result")
    drop.upload(stage, inputs=[drop, files], outputs=[drop, files, summary], **PRIVATE)
    unstage.click(lambda: (None, ""), outputs=[files, summary], **PRIVATE)

    # One build at a time: the Uploader refuses a second while one runs; one slot queues here too.
    def refresh(r: dict[str, Any] | None, q: str, by: str) -> tuple[Any, ...]:
        if not r:  # a removal whose confirmation was declined
            return (gr.skip(),) * 9
        speeches = uploader.service.speeches()
        return (upload_html(r), documents_table(speeches, q, by), None,
                gr.Dropdown(choices=source_files(speeches), value=None), *filter_choices(speeches))

    after = {"fn": refresh, "inputs": [report, docs.filter, docs.sort],
             "outputs": [summary, docs.table, files, doomed, *chat.settings[1:]], **PRIVATE}
    # The build's progress bar shows over the summary (the report itself is hidden).
    build: dict[str, Any] = {"outputs": [report], "concurrency_id": "build", "concurrency_limit": 1,
                             "show_progress_on": [summary]}
    add.click(make_add_documents(uploader), inputs=[files], api_name="add_documents", **build).success(**after)
    remove.click(make_remove_document(uploader), inputs=[doomed], api_name="remove_document", js=CONFIRM_JS,
                 **build).success(**after)


# Gradio's own sign-out route: it drops this browser's session token (all_session=false: the
# user's other browsers stay signed in) and redirects to the page, i.e. to the sign-in form.
# Relative, so it stays right under a proxy's path prefix.
SIGN_OUT = "logout?all_session=false"


def build_demo(service: IndexService, *, delay: float = STREAM_DELAY, uploader: Uploader | None = None,
               signed_in: bool = False) -> gr.Blocks:
    """The page over `service`: the chat tab and the documents tab (with ``uploader``, a
    place to add documents too); `delay` paces the sentence-by-sentence streaming. With
    ``signed_in`` (the page is behind sign-in), the header has a sign-out button."""
    speeches = service.speeches()
    demo = gr.Blocks(title="讲话稿问答 · Speech Q&A", analytics_enabled=False)
    with demo:
        with gr.Row(equal_height=False, elem_id="header"):
            gr.Markdown(
                "# 讲话稿问答 · Speech Q&A\n"
                "答案全部摘自讲话原文；点答案里的 [n] 或来源卡片，在「文档」中阅读原文。"
                "Every answer sentence is quoted from a speech; click an [n] or a source card to read it in context.",
                elem_id="intro",
            )
            if signed_in:
                gr.Button("退出登录 · Sign out", link=SIGN_OUT, size="sm", scale=0, min_width=120,
                          elem_id="sign-out")
        turns, answers = gr.State([]), gr.State([])
        pending = gr.Textbox(visible="hidden", elem_id="pending")
        with gr.Tabs(selected="chat", elem_id="tabs") as tabs:
            with gr.Tab("对话 · Chat", id="chat"):
                chat = _chat_tab(service.searcher, speeches)
            with gr.Tab("文档 · Documents", id="docs"):
                docs = _docs_tab(speeches)
                if uploader is not None:
                    _wire_upload(uploader, docs, chat)
        _wire_chat(chat, pending, turns, answers, make_respond(service, delay), {s.id: s.title for s in speeches})
        _wire_reading(service, tabs, docs, answers)
        gr_api(make_ask(service), api_name="ask", concurrency_id="answer")
        gr_api(make_documents(service), api_name="documents")
        gr_api(make_read(service), api_name="read_speech")
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=CONCURRENCY_LIMIT)
    # Gradio's queue keeps per-event monitoring data (~2.3 KB each) for its last 10,000 events
    # ($GRADIO_ANALYTICS_MAX_EVENTS), even with analytics off: the 10-minute soak's server RSS
    # climbed by that until the cap. A smaller cap set by the operator still wins.
    queue = demo._queue
    queue.ANALYTICS_MAX_EVENTS = min(queue.ANALYTICS_MAX_EVENTS, ANALYTICS_EVENTS)
    return demo


def api_app_kwargs(service: IndexService, *, host: str, port: int, api_key: str | None = None,
                   mcp: bool = False, limits: Limits | None = None) -> dict[str, Any]:
    """The ``app_kwargs`` that put ``/v1`` (and with ``mcp``, ``/mcp``) on the page's own
    FastAPI app: routes passed at construction come before Gradio's, and a lifespan passed
    there runs inside Gradio's. Both share ``service`` and one set of answering slots, and
    require ``api_key`` (when set) as a bearer token."""
    from starlette.routing import Mount

    from speechrag.openai_api import openai_router

    limits = limits or Limits(max_concurrency=CONCURRENCY_LIMIT)
    slots = Slots(limits)
    routes: list[Any] = [Mount("/v1", openai_router(service.ask, api_key=api_key, limits=limits, slots=slots))]
    kwargs: dict[str, Any] = {"routes": routes}
    if mcp:
        try:
            from speechrag.mcp_server import mcp_endpoint
        except ImportError as exc:
            raise ConfigError("the MCP tools need the mcp package: pip install 'speechrag[mcp]'") from exc
        # The SDK refuses Host headers other than loopback's (DNS rebinding); a server that
        # listens on a named address must accept that name too.
        extra_hosts = [] if host in LOOPBACK else [f"{host}:{port}"]
        endpoint = mcp_endpoint(service.search, service.ask, api_key=api_key, slots=slots,
                                allowed_hosts=extra_hosts, allowed_origins=[f"http://{h}" for h in extra_hosts])
        routes.append(endpoint.route)
        kwargs["lifespan"] = endpoint.lifespan
    return kwargs


def serve(
    searcher: Searcher | IndexService,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    block: bool = True,
    delay: float = STREAM_DELAY,
    api_key: str | None = None,
    mcp: bool = False,
    auth: Sequence[tuple[str, str]] = (),
    open_access: bool = False,
    upload_to: str | os.PathLike[str] | None = None,
    upload_limits: UploadLimits | None = None,
) -> gr.Blocks:
    """Serve the chat on host:port (no share link), the OpenAI-compatible API at ``/v1`` and,
    with ``mcp``, the MCP tools at ``/mcp``; ``api_key``, when set, is required by ``/v1`` and
    ``/mcp`` as ``Authorization: Bearer <key>``. ``auth`` (user, password) pairs put the page
    and its API (``/ask``, ``/gradio_api/*``) behind Gradio's sign-in; off loopback they are
    required unless ``open_access`` (see `check_exposure`). ``upload_to`` (a corpus folder; off
    by default) lets the page and ``/add_documents`` add documents there and rebuild the index
    (`speechrag.uploads`). With `block=False`, return once listening (then `demo.local_url` is
    the address and `demo.close()` stops it)."""
    from starlette.middleware import Middleware

    check_exposure(host, auth=auth, open_access=open_access, api_key=api_key)
    service = searcher if isinstance(searcher, IndexService) else IndexService(searcher)
    uploader = None if upload_to is None else Uploader(service, Path(upload_to), limits=upload_limits)
    demo = build_demo(service, delay=delay, uploader=uploader, signed_in=bool(auth))
    if host not in LOOPBACK and not api_key:
        logger.warning("serving /v1%s on %s without an API key: anyone who can reach it may use it",
                       " and /mcp" if mcp else "", host)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=True,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        quiet=True,  # Gradio's banner suggests share=True, which this app never uses
        auth=list(auth) or None,
        auth_message="讲话稿问答 · Speech Q&A：请登录 · Please sign in",
        footer_links=["api"],
        theme=THEME,
        css=CSS,
        js=PAGE_JS,
        # Gradio's upload route stops reading a body past this, before it is stored.
        max_file_size=uploader.limits.max_bytes if uploader else None,
        app_kwargs={"middleware": [Middleware(GuardMiddleware, allow_upload=uploader is not None)],
                    **api_app_kwargs(service, host=host, port=port, api_key=api_key, mcp=mcp)},
    )
    logger.info("serving on %s", demo.local_url)
    if block:
        demo.block_thread()
    return demo
