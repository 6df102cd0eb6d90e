"""The page's event functions over an `IndexService`, and the API endpoints beside them.

Each `make_*` returns the function one event (or `/ask`, `/documents`, `/read_speech`,
`/add_documents`, `/remove_document`) calls; the rest are the pure steps they share: the scope
of a question (`PageScope`), the documents table, the filter menus, the reading view of a citation.
Nothing here builds a component tree (`speechrag.ui.layout` does); what is returned for a
component is a value or a `gr.*` update. Corpus text reaches the page only through
`speechrag.render`, which escapes it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import gradio as gr

from speechrag.answering import Answer
from speechrag.errors import (
    ConfigError,
    DocumentError,
    IndexLockedError,
    OptionError,
    QueryError,
    SpeechragError,
    one_line,
)
from speechrag.options import QueryOptions
from speechrag.passage import Speech
from speechrag.render import (
    READING_EMPTY,
    escape_markdown,
    examples_html,
    markdown_chunks,
    reading_html,
    sources_html,
    staged_html,
)
from speechrag.searcher import MAX_QUERY_CHARS
from speechrag.serving import IndexService
from speechrag.ui.conversation import Chat, Conversation, Conversations, Turn, cite_href
from speechrag.ui.examples import ExampleCache
from speechrag.uploads import Uploader
from speechrag.userdata import UserData

logger = logging.getLogger(__name__)

MAX_K = 20  # the slider's top; answer() itself accepts up to retrieval.MAX_K
DEFAULT_K = 5
STREAM_DELAY = 0.05  # seconds between streamed sentences, so the answer reads as it arrives
SHOWN_QUESTION_CHARS = 200

MODE_LABELS = {"hybrid": "混合 Hybrid", "dense": "语义 Dense", "keyword": "关键词 Keyword"}


# --- what the page offers -----------------------------------------------------------------


def speech_choices(speeches: Sequence[Speech]) -> list[tuple[str, str]]:
    """(title, id) of every speech in the index, in corpus order."""
    return [(s.title, s.id) for s in speeches]


# --- the handlers -------------------------------------------------------------------------


YEAR_OPEN = (0, 9999)  # the ends of a year range left open


@dataclass(frozen=True)
class PageScope:
    """What the next question is limited to, as the settings panel says it."""

    mode: str = "hybrid"
    speeches: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    years: tuple[int, int] | None = None

    @classmethod
    def of(cls, mode: str, speeches: Sequence[str] | None, speakers: Sequence[str] | None,
           places: Sequence[str] | None, year_from: object, year_to: object) -> PageScope:
        """From the settings' values (a year left open is None or "")."""
        first, last = _year(year_from), _year(year_to)
        years = None if first is None and last is None else (
            YEAR_OPEN[0] if first is None else first, YEAR_OPEN[1] if last is None else last)
        return cls(mode, tuple(speeches or ()), tuple(speakers or ()), tuple(places or ()), years)

    def options(self, k: object = 5) -> QueryOptions:
        """The request's options: this scope and ``k`` passages (the slider's value), checked
        as every door checks them (`OptionError` naming the option)."""
        return QueryOptions.parse(k=_whole(k), mode=self.mode, speeches=self.speeches or None,
                                  speaker=self.speakers or None, place=self.places or None, years=self.years)

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
        raise OptionError("years", f"years must be a year or a range of years such as 2016-2018, "
                                   f"not {value!r}") from None


MAX_OUTBOX = 100  # the questions a page resends with each send (see `outbox_items`)


def outbox_items(outbox: object) -> list[tuple[str, str]]:
    """The page's outbox: a JSON list of [id, question], the last questions it sent, resent in
    full with each send so that no send is lost when two cross (the ids make a resent question
    one question). Anything else in it is ignored: it comes from the browser."""
    try:
        items = json.loads(outbox) if isinstance(outbox, str) and outbox else []
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [(i[0], i[1]) for i in items[-MAX_OUTBOX:]
            if isinstance(i, list) and len(i) == 2 and isinstance(i[0], str) and isinstance(i[1], str)
            and i[1].strip()]


INTERNAL_ERROR = "内部错误，请稍后再试。(internal error)"
View = tuple[Chat, list[Answer | None], Any, Any]  # chat, answers, sources panel, Stop


def view(conv: Conversation, panel: Any = None) -> View:
    """What the chat's events return: the whole chat, one Answer or None per reply, the sources
    panel (``None``: left as it is) and Stop, shown while anything waits or is answered."""
    return (conv.messages(), conv.answers(), gr.skip() if panel is None else panel,
            gr.Button(visible=conv.busy))


def make_enqueue(conversations: Conversations) -> Callable[..., View]:
    """The send handler: the outbox's new questions join this page's conversation, each with the
    settings as they are now (a question waiting keeps the scope it was asked in)."""

    def enqueue(outbox: str, k: float, mode: str, speeches: list[str], speakers: list[str], places: list[str],
                year_from: object, year_to: object, request: gr.Request) -> View:
        conv = conversations.get(request.session_hash)
        conv.user = getattr(request, "username", None)
        items = []
        for qid, question in outbox_items(outbox):
            turn = Turn(question, {})
            try:
                turn.options = PageScope.of(mode, speeches, speakers, places, year_from, year_to).options(k).as_kwargs()
            except (SpeechragError, TypeError, ValueError) as exc:
                turn.state, turn.text = "error", "⚠️ " + escape_markdown(one_line(exc))
            items.append((qid, turn))
        conv.add(items)
        return view(conv)

    return enqueue


def make_respond(service: IndexService, conversations: Conversations,
                 delay: float = STREAM_DELAY) -> Callable[..., Iterator[View]]:
    """The answering handler: unless another event is answering this page's questions already,
    answer every waiting question in order, each streamed sentence by sentence. Each update is
    the whole chat (`view`); a reply's sources go to the panel as it starts."""

    def respond(request: gr.Request) -> Iterator[View]:
        conv = conversations.get(request.session_hash)
        token = conv.claim()
        if token is None:  # the event answering now takes the new question too
            yield (gr.skip(),) * 4
            return
        try:
            while (job := conv.next_turn(token)) is not None:
                key, turn, history = job
                yield view(conv)
                try:
                    ans = service.ask(turn.question, history, **turn.options)
                except Exception as exc:
                    if not isinstance(exc, SpeechragError):
                        logger.exception("answer() failed")
                    message = one_line(exc) if isinstance(exc, SpeechragError) else INTERNAL_ERROR
                    # The sources panel keeps the last answer's cards: an error has none of its own.
                    if conv.update(token, turn, text="⚠️ " + escape_markdown(message), state="error"):
                        yield view(conv)
                    continue
                turn.generation = service.searcher.generation  # the one that answered, for feedback
                panel = sources_html(ans, key=str(key))
                chunks = markdown_chunks(ans, href=cite_href(key)) or [""]
                for i in range(len(chunks)):
                    done = i == len(chunks) - 1
                    if not conv.update(token, turn, text="".join(chunks[: i + 1]), answer=ans if done else None,
                                       state="done" if done else None):
                        return  # stopped: Stop has shown that
                    yield view(conv, panel)
                    if not done:
                        time.sleep(delay)
            yield view(conv)  # Stop hidden
        finally:
            conv.release(token)

    return respond


MAX_COMMENT_CHARS = 2000
FEEDBACK_THANKS = "已记录反馈，谢谢 · Thanks for the feedback"


def make_rate(conversations: Conversations, userdata: UserData) -> Callable[..., tuple[Any, Any, Any]]:
    """👍/👎 on an answer (the Chatbot's like event): stored at once with the question, the
    answer's text and citations and the generation that answered; then the comment box shows."""

    def rate(evt: gr.LikeData, request: gr.Request) -> tuple[Any, Any, Any]:
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        turn = conversations.get(request.session_hash).answered(int(index) // 2)  # a question and a reply a turn
        if turn is None or turn.answer is None or not isinstance(evt.liked, bool):
            return gr.skip(), gr.skip(), gr.skip()
        ans = turn.answer
        row = userdata.add_feedback(
            rating=1 if evt.liked else -1, question=turn.question, answer=ans.text, status=ans.status,
            citations=[f"[{n}] {hit.citation}" for n, hit in enumerate(ans.citations, start=1)],
            generation=turn.generation, user=getattr(request, "username", None))
        gr.Info(FEEDBACK_THANKS)
        return row, gr.Row(visible=True), gr.Textbox(value="")

    return rate


def make_comment(userdata: UserData) -> Callable[..., tuple[Any, Any]]:
    """The optional comment on the rating just given."""

    def comment(row: int | None, text: str, request: gr.Request) -> tuple[Any, Any]:
        text = (text or "").strip()[:MAX_COMMENT_CHARS]
        if row and text and userdata.set_comment(int(row), text, user=getattr(request, "username", None)):
            gr.Info("已记录说明 · Comment saved")
        return gr.Row(visible=False), gr.Textbox(value="")

    return comment


def make_stop(conversations: Conversations) -> Callable[..., View]:
    """Stop: the question being answered and those waiting end as stopped; the panel goes back
    to the last finished answer."""

    def stop(request: gr.Request) -> View:
        conv = conversations.get(request.session_hash)
        conv.stop()
        last = conv.last_answer()
        return view(conv, sources_html(None) if last is None else sources_html(last[1], key=str(last[0])))

    return stop


def make_clear(conversations: Conversations) -> Callable[..., View]:
    """Clear the chat (the filters stay): nothing waits, nothing is answered any more; the
    conversation so far stays in the saved list and an empty one begins."""

    def clear(request: gr.Request) -> View:
        conv = conversations.get(request.session_hash)
        conv.stop()
        conv.save()
        conv.start_new()
        return view(conv, sources_html(None))

    return clear


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


def _whole(k: object) -> object:
    """k as sent by a client (JSON may carry 5, 5.0 or "5") as an int where it is one; any
    other value is left for `QueryOptions` to refuse."""
    try:
        value = float(k)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return k
    return int(value) if value.is_integer() else k


def _texts(value: object, name: str) -> list[str] | None:
    """An optional list of strings from a client, or an OptionError naming the argument."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise OptionError(name, f"{name} must be a string or a list of strings, not {value!r}")
    return list(value)


# What each kind of error means, in Chinese, ahead of the library's own one-line message
# (shared with the CLI and the API, and in English there): the page speaks Chinese throughout.
ERROR_LEADS: tuple[tuple[type[SpeechragError], str], ...] = (
    (IndexLockedError, "正在重建索引，请稍后再试"),
    (DocumentError, "文件无法读取"),
    (QueryError, "请求有误"),
    (ConfigError, "服务器设置有误"),
    (SpeechragError, "出错了"),
)


def page_error(exc: SpeechragError) -> gr.Error:
    """The toast the page shows for ``exc``: a Chinese lead, then the one-line reason."""
    lead = next(zh for kind, zh in ERROR_LEADS if isinstance(exc, kind))
    return gr.Error(f"{lead}：{one_line(exc)}", print_exception=False)


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
            options = QueryOptions.parse(k=_whole(k), mode=mode, speeches=speech_ids or None)
            return service.ask(question, turns, **options.as_kwargs()).to_dict()
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


# --- adding and removing documents --------------------------------------------------------


def make_add_documents(uploader: Uploader) -> Callable[..., dict[str, Any]]:
    """The `/add_documents` endpoint (and the page's Add button)."""

    def add_documents(files: list[str] | None, progress: gr.Progress = gr.Progress()) -> dict[str, Any]:  # noqa: B008 (Gradio's idiom)
        """Add speech documents to the corpus and rebuild the index: {added: [{name, stored_as}],
        skipped: [{name, reason}], speeches: [new speech ids], build, seconds}."""
        paths = [str(f) for f in (files or [])]
        if not paths:
            raise gr.Error("没有文件：请先选择讲话稿文件 · no files: choose one or more documents first",
                           print_exception=False)

        def step(phase: str, done: int, total: int) -> None:
            desc, unit = BUILD_PHASES[phase]
            progress((done, total), desc=desc, unit=unit)

        try:
            return uploader.add([(p, Path(p).name) for p in paths], progress=step).to_dict()
        except SpeechragError as exc:
            raise page_error(exc) from exc

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


def make_page_lists(service: IndexService, examples: ExampleCache) -> Callable[..., tuple[Any, ...]]:
    """On a page's load, and on its timer: what the page lists (the generation it shows, the
    examples, the documents table, the filter menus) read from the index being served; nothing
    changes when the page already shows that generation."""

    def page_lists(shown: str, query: str, sort: str) -> tuple[Any, ...]:
        searcher = service.live()
        if shown == searcher.generation:
            return (gr.skip(),) * 8
        speeches = searcher.speeches
        return (searcher.generation, examples_html(examples.get(searcher)), documents_table(speeches, query, sort),
                *filter_choices(speeches))

    return page_lists


# The phases of a rebuild as the page names them (`uploads.PhaseProgress`); the documents answer
# once "embedding" ends, the sentences make their answers fast.
BUILD_PHASES = {"reading": ("读取文件 · reading files", "files"),
                "embedding": ("嵌入新段落 · embedding new passages", "passages"),
                "sentences": ("嵌入句子（已可问答）· embedding sentences (answerable now)", "sentences")}


def make_remove_document(uploader: Uploader) -> Callable[..., Any]:
    """The `/remove_document` endpoint (and the page's Remove button, after its confirmation)."""

    def remove_document(source: str, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008 (Gradio's idiom)
        """Take one source file (as /documents lists it) out of the corpus and rebuild:
        {removed: [{source, kept_as}], speeches: [removed speech ids], build, seconds}."""
        if not source:  # the page's confirmation was declined
            return gr.skip()

        def step(phase: str, done: int, total: int) -> None:
            desc, unit = BUILD_PHASES[phase]
            progress((done, total), desc=f"重建索引 · rebuilding: {desc}", unit=unit)

        try:
            return uploader.remove(str(source), progress=step).to_dict()
        except SpeechragError as exc:
            raise page_error(exc) from exc

    return remove_document


def source_files(speeches: Sequence[Speech]) -> list[str]:
    return sorted({s.source for s in speeches})


def stage(dropped: list[str] | None, staged: list[str] | None) -> tuple[None, list[str], str]:
    """After a drop: the files join those waiting for Add (a file dropped again replaces its
    namesake), the drop zone is emptied and the list is shown as our own summary. Gradio's
    file list links each file to its file route, which this server refuses (403): a dead link,
    so the zone never keeps a file."""
    by_name = {Path(f).name: str(f) for f in [*(staged or []), *(dropped or [])]}
    waiting = list(by_name.values())
    return None, waiting, staged_html(list(by_name))


def _choices(values: Sequence[str]) -> list[str]:
    return sorted({v for v in values if v})
