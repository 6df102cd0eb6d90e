"""The web chat (Gradio): questions in, cited answers streamed out, sources beside them.

Answers are rendered by `speechrag.render`: everything shown on the page that comes from the
corpus or the user is escaped there (markdown for the chat bubbles, HTML for the sources
panel); the Chatbot's sanitiser is a second line of defence, never the first (`gr.HTML` has
none). The server serves only Gradio's own assets: `GuardMiddleware` refuses every route that
reads a file or fetches a URL.

- `handlers.py`: the event functions over an `IndexService` (answering, the reading view, the
  documents table, uploads) and the API endpoints (`/ask`, `/documents`, `/read_speech`,
  `/add_documents`, `/remove_document`).
- `conversation.py`: one open page's chat, kept on the server (`Conversation`): the questions
  in the order sent, each waiting, answering, answered, failed or stopped.
- `library.py`: saved conversations, in the browser (without sign-in) or per user in the
  server's SQLite file (`speechrag.userdata`).
- `layout.py`: the page as Gradio Blocks (`build_demo`), its events wired to the handlers, and
  its theme, CSS and scripts.
- `server.py`: `serve`, the page with ``/v1`` (and ``/mcp``) on one address, behind
  `GuardMiddleware`.
- `gradio_import.py`: ``import gradio`` without its import-time ``.pyi`` stub writer (a third
  of the import, and of the server's start).
"""

from __future__ import annotations

from speechrag.ui import gradio_import

gradio_import.load()  # before any module below imports gradio

from speechrag.ui.conversation import (  # noqa: E402
    PENDING,
    SHOWN_QUESTION_CHARS,
    STOPPED,
    WAITING,
    Conversation,
    Conversations,
    cite_href,
)
from speechrag.ui.examples import example_questions  # noqa: E402
from speechrag.ui.handlers import (  # noqa: E402
    DEFAULT_K,
    MAX_K,
    MODE_LABELS,
    STREAM_DELAY,
    YEAR_OPEN,
    PageScope,
    answer_of,
    document_rows,
    documents_table,
    input_state,
    make_add_documents,
    make_ask,
    make_clear,
    make_documents,
    make_enqueue,
    make_read,
    make_reader,
    make_remove_document,
    make_respond,
    make_stop,
    open_citation,
    outbox_items,
    speech_choices,
    stage,
)
from speechrag.ui.layout import CONCURRENCY_LIMIT, QUEUE_MAX_SIZE, SIGN_OUT, build_demo  # noqa: E402
from speechrag.ui.look import CSS, PAGE_JS, THEME  # noqa: E402
from speechrag.ui.server import BLOCKED_ROUTES, GuardMiddleware, api_app_kwargs, serve  # noqa: E402

__all__ = [
    "BLOCKED_ROUTES",
    "CONCURRENCY_LIMIT",
    "CSS",
    "DEFAULT_K",
    "MAX_K",
    "MODE_LABELS",
    "PAGE_JS",
    "PENDING",
    "QUEUE_MAX_SIZE",
    "SHOWN_QUESTION_CHARS",
    "SIGN_OUT",
    "STOPPED",
    "STREAM_DELAY",
    "THEME",
    "WAITING",
    "YEAR_OPEN",
    "Conversation",
    "Conversations",
    "GuardMiddleware",
    "PageScope",
    "answer_of",
    "api_app_kwargs",
    "build_demo",
    "cite_href",
    "document_rows",
    "documents_table",
    "example_questions",
    "input_state",
    "make_add_documents",
    "make_ask",
    "make_clear",
    "make_documents",
    "make_enqueue",
    "make_read",
    "make_reader",
    "make_remove_document",
    "make_respond",
    "make_stop",
    "open_citation",
    "outbox_items",
    "serve",
    "speech_choices",
    "stage",
]
