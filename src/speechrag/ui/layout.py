"""The page: its two tabs built as Gradio Blocks, their events wired to `speechrag.ui.handlers`,
and the theme, CSS and scripts that go with them.

`build_demo(service)` is the whole page; `_chat_tab`/`_docs_tab` build the components (held in
`ChatTab`/`DocsTab`), `_wire_chat`/`_wire_reading`/`_wire_upload` connect their events. The
page's own script (`PAGE_JS`) bridges a click on an `[n]` or a source card to the server, and
mends what Gradio's components leave out for accessibility.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.events import api as gr_api

from speechrag.answering import Answer
from speechrag.formats import MB, SUFFIXES
from speechrag.passage import Speech
from speechrag.render import READING_EMPTY, chips_html, sources_html, upload_html
from speechrag.searcher import MODES
from speechrag.serving import IndexService
from speechrag.ui.analysis_tab import analysis_tab
from speechrag.ui.conversation import Chat, Conversations
from speechrag.ui.examples import ExampleCache
from speechrag.ui.handlers import (
    DEFAULT_K,
    DOC_HEADERS,
    MAX_K,
    MODE_LABELS,
    SORTS,
    STREAM_DELAY,
    PageScope,
    answer_of,
    document_rows,
    documents_table,
    filter_choices,
    input_state,
    make_add_documents,
    make_ask,
    make_clear,
    make_comment,
    make_documents,
    make_enqueue,
    make_page_lists,
    make_rate,
    make_read,
    make_reader,
    make_remove_document,
    make_respond,
    make_stop,
    menu_choices,
    open_citation,
    source_files,
    stage,
)
from speechrag.ui.look import RETURN_JS, SCROLL_JS
from speechrag.ui.saved import make_delete, make_open, make_persist, make_rename, make_restore
from speechrag.uploads import Uploader
from speechrag.userdata import UserData

QUEUE_MAX_SIZE = 64
ANALYTICS_EVENTS = 500
# Answers at once, per concurrency id ("answer": the chat and /ask together). They really run
# at once now (IndexService has no lock); see serving.RequestLimits.max_concurrency for why 4.
CONCURRENCY_LIMIT = 4
# How often an open page asks whether a rebuild was published (a file read; two RPCs at most
# for Milvus), to show the new generation's documents, menus and examples.
REFRESH_SECONDS = 10.0

# --- the page -----------------------------------------------------------------------------


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
    examples: gr.HTML  # `render.examples_html`, filled on load (`handlers.make_page_lists`)
    example_btn: gr.Button  # the page's script clicks it once an example joined the outbox
    library: tuple[gr.Dropdown, gr.Button, gr.Textbox, gr.Button, gr.Button]  # `_conversations_panel`
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
        """What limits the next question, in `PageScope.of`'s order."""
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
        feedback_options=None,  # 👍/👎 are switched on by build_demo when feedback is stored
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


# (label, format, the answer shown in the sources panel only, elem_id): downloads from /export
EXPORTS = (
    ("导出对话 · Word", "docx", False, "export-docx"),
    ("导出对话 · Markdown", "markdown", False, "export-md"),
    ("导出此答案 · Word", "docx", True, "export-one"),
)


def _chat_tab(speeches: Sequence[Speech]) -> ChatTab:
    titles = {s.id: s.title for s in speeches}
    with gr.Row(equal_height=False, elem_id="chat-row"):
        with gr.Column(scale=3, elem_id="chat-main"):
            chatbot, question, send, stop = _conversation()
            with gr.Row():
                chips = gr.HTML(chips_html(PageScope().chips(titles)), js_on_load=None, elem_id="scope", padding=False)
                counter = gr.HTML("", js_on_load=None, elem_id="counter", padding=False)
            with gr.Row(elem_id="export-row"):
                copy = gr.Button("复制答案和来源 · Copy with sources", size="sm", elem_id="copy")
                for label, fmt, one, elem in EXPORTS:
                    gr.Button(label, size="sm", elem_id=elem).click(
                        None, js=f"() => window.speechragExport('{fmt}', {'true' if one else 'false'})")
            examples = gr.HTML("", js_on_load=None, elem_id="examples", padding=False)
            example_btn = gr.Button(visible="hidden", elem_id="example-btn")
        with gr.Column(scale=2, elem_id="chat-side"):
            library = _conversations_panel()
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
    return ChatTab(chatbot, question, send, stop, chips, counter, copy, examples, example_btn, library, sources, mode,
                   k, chosen, speakers, places, year_from, year_to, clear_filters, clear)


def _docs_tab(speeches: Sequence[Speech]) -> DocsTab:
    with gr.Row():
        query = gr.Textbox(label="筛选 · Filter", placeholder="标题、讲话人、地点、日期、文件名…", scale=3,
                           elem_id="doc-filter")
        sort = gr.Dropdown([(label, key) for key, (label, _, _) in SORTS.items()], value="date-desc",
                           label="排序 · Sort by", scale=2, elem_id="doc-sort")
    table = gr.Dataframe(document_rows(speeches), headers=DOC_HEADERS, interactive=False, wrap=True,
                         elem_id="documents", max_height=360, datatype="str",
                         label=f"{len(speeches)} 篇讲话 · speeches（点一行阅读全文 · click a row to read it）")
    # Clicked by the reading view's own bar (render.reading_html), which stays in sight.
    back = gr.Button("← 返回对话 · Back to chat", size="sm", elem_id="back", visible="hidden")
    reading = gr.HTML(READING_EMPTY, js_on_load=None, elem_id="reading")
    return DocsTab(query, sort, table, back, reading)


PRIVATE: dict[str, Any] = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}

# Runs in the browser at once, before any round trip: a question in the box joins the page's
# outbox (the last questions sent, each with an id) and the box is emptied, so a second Enter
# finds it empty and sends nothing. The outbox is a variable of the page, not a component:
# two sends that cross would each read a component's value before the other's write reached
# it, and one question would be lost (seen 1 time in 10 at 0 ms apart).
# The page's script has usually taken the box already, as Enter went down or Send was clicked
# (`look.PAGE_JS`, speechragTakeBox); this read is for a submit that came some other way. The
# box is read as the page shows it: Gradio's copy of its value follows the textarea a moment later.
TAKE_JS = """(q) => {
  if (window.speechragTakeBox) { window.speechragTakeBox(); return ""; }
  const box = document.querySelector("#question textarea");
  const text = box ? box.value : q;
  if (!text || !text.trim()) return "";
  window.speechragTake(text);
  if (box) { box.value = ""; box.dispatchEvent(new Event("input", {bubbles: true})); }
  return "";
}"""
# The send event then takes the whole outbox (so a send whose event was overtaken by the next
# is carried by it; the server adds the new ids in order, `handlers.outbox_items`).
OUTBOX_JS = "(outbox, ...settings) => [JSON.stringify(window.speechragOutbox || []), ...settings]"


def _wire_chat(chat: ChatTab, outbox: gr.Textbox, answers: gr.State, conversations: Conversations,
               respond: Callable[..., Any], titles: dict[str, str]) -> tuple[list[Any], list[Any]]:
    """Wire the chat; (the answering chains, the other events that change the conversation)."""
    shown = [chat.chatbot, answers, chat.sources, chat.stop]  # `handlers.view`
    answer_event: dict[str, Any] = {
        "fn": respond,
        "outputs": shown,
        "api_visibility": "private",
        "concurrency_id": "answer",
        "show_progress": "hidden",
        # A send while this page's questions are answered adds to them; its own event then
        # finds them answered (or takes what is left). Never dropped, as "once" would.
        "trigger_mode": "always_last",
    }
    take: dict[str, Any] = {"fn": None, "inputs": [chat.question], "outputs": [chat.question], "js": TAKE_JS,
                            **PRIVATE, "trigger_mode": "multiple"}
    enqueue: dict[str, Any] = {"fn": make_enqueue(conversations), "inputs": [outbox, chat.k, *chat.settings],
                               "js": OUTBOX_JS, "outputs": shown, **PRIVATE, "trigger_mode": "multiple"}
    after: dict[str, Any] = {"fn": input_state, "inputs": [chat.question], "outputs": [chat.send, chat.counter],
                             **PRIVATE}
    send = gr.on([chat.question.submit, chat.send.click], **take)
    send.then(**after)
    # An example is asked at once: the page's script puts it in the outbox, then clicks here.
    events = [send.then(**enqueue).then(**answer_event), chat.example_btn.click(**enqueue).then(**answer_event)]
    changes = [chat.stop.click(make_stop(conversations), outputs=shown, cancels=events, **PRIVATE)]
    chat.question.change(input_state, inputs=[chat.question], outputs=[chat.send, chat.counter],
                         trigger_mode="always_last", **PRIVATE)

    def show_scope(*values: Any) -> str:
        return chips_html(PageScope.of(*values).chips(titles))

    gr.on([c.change for c in chat.settings], show_scope, inputs=chat.settings, outputs=[chat.chips], **PRIVATE)
    chat.clear_filters.click(lambda: ("hybrid", [], [], [], "", ""), outputs=chat.settings, **PRIVATE)

    clear = make_clear(conversations)
    changes.append(chat.clear.click(clear, outputs=shown, cancels=events, **PRIVATE))
    # The chat's own bin icon clears the messages; forget the answers and sources with them.
    changes.append(chat.chatbot.clear(clear, outputs=shown, cancels=events, **PRIVATE))

    def show_sources(history: Chat, kept: list[Answer | None], evt: gr.SelectData) -> Any:
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        key, ans = answer_of(kept, history, int(index))
        return sources_html(ans, key=str(key)) if ans is not None else gr.skip()

    chat.chatbot.select(show_sources, inputs=[chat.chatbot, answers], outputs=[chat.sources], **PRIVATE)
    chat.copy.click(None, js="() => window.speechragCopy && window.speechragCopy()")
    return events, changes


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
    docs.back.click(lambda: gr.Tabs(selected="chat"), outputs=[tabs], **PRIVATE).then(None, js=RETURN_JS)


# The page asks before removing; a declined confirmation sends "" (nothing happens).
CONFIRM_JS = """(source) => source && confirm(
  `从语料中删除「${source}」并重建索引？文件中的全部讲话都会移除（文件移入语料的 .removed 文件夹）。\n` +
  `Remove "${source}" and every speech in it from the corpus and rebuild? (The file is moved to .removed.)`)
  ? source : ""
"""


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


def _conversations_panel() -> tuple[gr.Dropdown, gr.Button, gr.Textbox, gr.Button, gr.Button]:
    with gr.Accordion("对话记录 · Conversations", open=False, elem_id="conversations"):
        menu = gr.Dropdown([], value=None, label="打开保存的对话 · Open a saved conversation", elem_id="conv-list")
        new = gr.Button("新对话 · New conversation", size="sm", elem_id="conv-new")
        with gr.Row():
            title = gr.Textbox(label="新名称 · New name", lines=1, max_lines=1, scale=3, elem_id="conv-title")
            rename = gr.Button("重命名 · Rename", size="sm", scale=1, elem_id="conv-rename")
        delete = gr.Button("删除所选对话 · Delete the chosen one", size="sm", variant="stop", elem_id="conv-delete")
    return menu, new, title, rename, delete


# The page asks before deleting; a declined confirmation sends "" (nothing happens).
DELETE_JS = "(cid) => cid && confirm('删除这个对话？ · Delete this conversation?') ? cid : ''"


def _wire_library(conversations: Conversations, storage: Any,
                  panel: tuple[gr.Dropdown, gr.Button, gr.Textbox, gr.Button, gr.Button],
                  shown: list[Any], events: list[Any], changes: list[Any]) -> None:
    """Saved conversations: saved after every change (`saved.make_persist`); ``events``
    (the answering chains) are what a change of conversation stops, ``changes`` (Stop, Clear)
    are saved too."""
    menu, new, title, rename, delete = panel
    saved = [menu, storage]
    persist: dict[str, Any] = {"fn": make_persist(conversations), "outputs": saved, **PRIVATE}
    for event in [*events, *changes]:
        event.then(**persist)
    lib = {**PRIVATE, "cancels": events}
    menu.input(make_open(conversations), inputs=[menu], outputs=[*shown, *saved], **lib)
    new.click(make_clear(conversations), outputs=shown, **lib).then(**persist)
    rename.click(make_rename(conversations), inputs=[menu, title], outputs=[*saved, title], **PRIVATE)
    delete.click(make_delete(conversations), inputs=[menu], outputs=[*shown, *saved], js=DELETE_JS, **lib)


def _wire_feedback(chat: ChatTab, conversations: Conversations, userdata: UserData) -> None:
    """👍/👎 under each answer (the Chatbot's own buttons), then an optional comment."""
    chat.chatbot.feedback_options = ("Like", "Dislike")
    row = gr.State(None)  # the feedback row the comment goes to
    with gr.Row(visible=False, elem_id="feedback-comment") as box:
        text = gr.Textbox(label="补充说明（可选）· Comment (optional)", lines=1, max_lines=4, scale=4,
                          elem_id="feedback-text")
        send = gr.Button("提交说明 · Send comment", size="sm", scale=1, elem_id="feedback-send")
    chat.chatbot.like(make_rate(conversations, userdata), outputs=[row, box, text], **PRIVATE)
    gr.on([send.click, text.submit], make_comment(userdata), inputs=[row, text], outputs=[box, text], **PRIVATE)


def build_demo(service: IndexService, *, delay: float = STREAM_DELAY, uploader: Uploader | None = None,
               signed_in: bool = False, conversations: Conversations | None = None,
               userdata: UserData | None = None) -> gr.Blocks:
    """The page over `service`: the chat tab and the documents tab (with ``uploader``, a
    place to add documents too); `delay` paces the sentence-by-sentence streaming. With
    ``signed_in`` (the page is behind sign-in), the header has a sign-out button."""
    speeches = service.speeches()
    examples = ExampleCache()
    # Checked now, in the background, so the first page finds them made (`checked_examples`).
    threading.Thread(target=examples.get, args=(service.searcher,), name="speechrag-examples", daemon=True).start()
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
        answers = gr.State([])
        shown = gr.State("")  # the generation whose lists this page shows
        outbox = gr.Textbox(visible="hidden", elem_id="outbox")  # carries the page's outbox (OUTBOX_JS)
        conversations = conversations if conversations is not None else Conversations()
        with gr.Tabs(selected="chat", elem_id="tabs") as tabs:
            with gr.Tab("对话 · Chat", id="chat"):
                chat = _chat_tab(speeches)
                if userdata is not None:
                    _wire_feedback(chat, conversations, userdata)
            with gr.Tab("文档 · Documents", id="docs"):
                docs = _docs_tab(speeches)
                if uploader is not None:
                    _wire_upload(uploader, docs, chat)
            with gr.Tab("语料分析 · Analysis", id="analysis"):
                analysis_tab(service, tabs, docs.reading, SCROLL_JS)  # rows open in the reading view
        events, changes = _wire_chat(chat, outbox, answers, conversations,
                                     make_respond(service, conversations, delay), {s.id: s.title for s in speeches})
        shown_chat = [chat.chatbot, answers, chat.sources, chat.stop]
        # The browser's copy of its conversations (used when the server does not keep them).
        storage = gr.BrowserState(None, storage_key="speechrag-conversations",
                                  secret=userdata.browser_secret() if userdata is not None else None)
        _wire_library(conversations, storage, chat.library, shown_chat, events, changes)
        demo.load(make_restore(conversations, userdata), inputs=[storage], outputs=[*shown_chat, chat.library[0]],
                  **PRIVATE)
        _wire_reading(service, tabs, docs, answers)
        lists = {"fn": make_page_lists(service, examples), "inputs": [shown, docs.filter, docs.sort],
                 "outputs": [shown, chat.examples, docs.table, *chat.settings[1:]], **PRIVATE}
        demo.load(**lists)
        gr.Timer(REFRESH_SECONDS).tick(**lists)
        gr_api(make_ask(service), api_name="ask", concurrency_id="answer")
        gr_api(make_documents(service), api_name="documents")
        gr_api(make_read(service), api_name="read_speech")

    def closed(request: gr.Request) -> None:  # the page was closed: its chat goes with it
        conversations.drop(request.session_hash)

    demo.unload(closed)
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=CONCURRENCY_LIMIT)
    # Gradio's queue keeps per-event monitoring data (~2.3 KB each) for its last 10,000 events
    # ($GRADIO_ANALYTICS_MAX_EVENTS), even with analytics off: the 10-minute soak's server RSS
    # climbed by that until the cap. A smaller cap set by the operator still wins.
    queue = demo._queue
    queue.ANALYTICS_MAX_EVENTS = min(queue.ANALYTICS_MAX_EVENTS, ANALYTICS_EVENTS)
    return demo
