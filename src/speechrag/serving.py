"""What the API servers (`openai_api`, `mcp_server`) share: the two callables they serve, an
adapter making them from an index, the bearer-token check, and an `Answer` as plain text.

The servers never call `answer()` or `retrieve()` themselves: they are handed

- ``ask(question, history, **options) -> Answer`` (options: ``k``, ``mode``, ``speeches``, and
  whatever a served model adds, e.g. ``index``), and
- ``search(query, k, **options) -> list[Hit]`` (options: ``mode``, ``speeches``),

so the host (``speechrag serve``, a test, another app) decides which index answers and how
calls are serialised. `IndexService` makes both from one index.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from speechrag.answer import NOT_FOUND, Answer, answer, unescape_markdown
from speechrag.retrieval import Hit, retrieve

if TYPE_CHECKING:
    from speechrag.index import Index

log = logging.getLogger(__name__)

SOURCES_HEADING = "来源："
RELATED_HEADING = "可能相关的段落（仅供参考）："
SNIPPET_CHARS = 60


class AskFn(Protocol):
    """Answers one question; ``history`` holds the earlier user questions, oldest first."""

    def __call__(self, question: str, history: Sequence[str], **options: Any) -> Answer: ...


class SearchFn(Protocol):
    """The ``k`` best passages for ``query``, best first."""

    def __call__(self, query: str, k: int, **options: Any) -> list[Hit]: ...


class IndexService:
    """`AskFn` (``.ask``) and `SearchFn` (``.search``) over one index, sharing one lock.

    ``index`` is an Index, its folder, or None for ``$SPEECHRAG_INDEX`` / the default folder;
    given a folder (or None), a generation published by a rebuild is picked up on the next
    call, as `get_index` does. Calls are serialised: the encoder is shared and its thread
    safety is not promised (the UI's ``Asker`` holds the same kind of lock), so a server
    offering both tools, or the chat API beside them, must use one service, not two. An
    ``index`` option overrides the default, so one server can serve several corpora as
    several models.
    """

    def __init__(self, index: Index | str | os.PathLike[str] | None = None) -> None:
        self.index = index
        self._lock = threading.Lock()

    def ask(self, question: str, history: Sequence[str], **options: Any) -> Answer:
        options.setdefault("index", self.index)
        with self._lock:
            return answer(question, history=list(history), **options)

    def search(self, query: str, k: int, **options: Any) -> list[Hit]:
        options.setdefault("index", self.index)
        with self._lock:
            return retrieve(query, k, **options)


# --- plain text ---------------------------------------------------------------------------


def plain_answer(ans: Answer) -> str:
    """The answer's sentences as plain text, each followed by its ``[n]`` marker.

    The single place that reads ``Answer.text``: today it is markdown with escapes
    (``3500\\~4500``); once `Answer` carries plain text and its sentences, only this changes.
    """
    return unescape_markdown(ans.text).strip()


_PIECE = re.compile(r".*?\[\d+\]\s*|.+$", re.S)


def answer_pieces(ans: Answer) -> list[str]:
    """`render_answer`'s text cut into pieces to stream: one sentence (with its marker) each,
    then the sources; joined, the pieces are exactly that text."""
    text = render_answer(ans)
    if not ans.found:
        return text.splitlines(keepends=True)
    body = plain_answer(ans)  # render_answer's text starts with it
    return [p for p in (*_PIECE.findall(body), text[len(body) :]) if p]


def snippet(text: str, chars: int = SNIPPET_CHARS) -> str:
    return text[:chars] + ("…" if len(text) > chars else "")


def render_answer(ans: Answer) -> str:
    """The cited plain answer then its sources (``[1] citation`` a line); for a question the
    speeches do not address, the not-found sentence then the possibly related passages."""
    if not ans.found:
        lines = [NOT_FOUND]
        if ans.citations:
            lines += ["", RELATED_HEADING]
            lines += [f"[{n}] {h.citation}：{snippet(h.passage.text)}" for n, h in enumerate(ans.citations, 1)]
        return "\n".join(lines)
    sources = [f"[{n}] {h.citation}" for n, h in enumerate(ans.citations, 1)]
    return "\n".join([plain_answer(ans), "", SOURCES_HEADING, *sources])


def citation_dict(n: int, hit: Hit) -> dict[str, Any]:
    """One source as structured data: what a client needs to show or link it."""
    p = hit.passage
    return {
        "n": n,
        "citation": hit.citation,
        "passage_id": p.id,
        "speech_id": p.speech_id,
        "speech_title": p.speech_title,
        "section": p.section,
        "paragraph": p.paragraph,
        "source": p.source,
        "text": p.text,
        "score": hit.score,
        "rank": hit.rank,
        "quoted": list(hit.cited_sentences),
        "also_in": list(hit.also_in),
        "also_in_citations": list(hit.also_in_citations),
    }


# --- bearer tokens ------------------------------------------------------------------------


def bearer_ok(authorization: str | None, api_key: str | None) -> bool:
    """True when no key is required, or ``Authorization: Bearer <api_key>`` was sent."""
    if api_key is None:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    # compare_digest: the time taken must not tell how much of the key was right
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
