"""The front door: `retrieve`, `answer` and `load_index`, over a Searcher or an index path.

The layers below take a `Searcher` (searcher.py: one loaded generation; answering/: the cited
answer); this module turns what a caller gives (a path, None for $SPEECHRAG_INDEX, loose
options) into one, through the process-wide registry `default_searchers()`. `LiveIndex` is the
one hot reloader: `Searchers` keeps one per location, and `serving.IndexService` (the page,
``/v1`` and ``/mcp``) one of its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Unpack

from speechrag import answering
from speechrag.answering.ranking import retrieve as retrieve_in
from speechrag.answering.sentences import MAX_SENTENCES
from speechrag.config import DEFAULT_INDEX, Settings, index_location
from speechrag.encoders import Encoder
from speechrag.errors import QueryError
from speechrag.options import Options, QueryOptions
from speechrag.searcher import MAX_QUERY_CHARS, Hit, Searcher, check_query
from speechrag.stores import location_key, open_store

log = logging.getLogger(__name__)

Index = Searcher | str | os.PathLike[str]


class LoadedIndex(Searcher):
    """The Searcher `load_index` returns, with the front door's two calls as methods:
    ``idx.retrieve(q)`` is ``retrieve(q, index=idx)``, ``idx.answer(q)`` is ``answer(q, index=idx)``.
    They live here, above `answering`, so searcher.py never imports what is built on it."""

    def retrieve(self, query: str, k: int = 5, *, max_query_chars: int = MAX_QUERY_CHARS,
                 **options: Unpack[Options]) -> list[Hit]:
        return retrieve(query, k, index=self, max_query_chars=max_query_chars, **options)

    def answer(self, question: str, *, k: int = 5, history: Iterable[Any] | None = None,
               max_sentences: int = MAX_SENTENCES, threshold: float | None = None,
               **options: Unpack[Options]) -> answering.Answer:
        return answer(question, k=k, history=history, index=self, max_sentences=max_sentences,
                      threshold=threshold, **options)


def load_index(path: str | Path = DEFAULT_INDEX, model: str | Encoder | None = None, *,
               search_threads: int = 1, token: str | None = None, device: str | None = None,
               warm: bool = True) -> LoadedIndex:
    """Open and verify the index at ``path`` as a Searcher: a folder, or a Milvus location
    (``x.db`` for Milvus Lite, ``http(s)://host:port`` for a server, ``token`` its credentials).

    ``model`` (a name or an Encoder) asserts which encoder queries will use; a different one
    raises EncoderMismatchError. Damage raises IndexCorruptError; a missing or unusable index
    IndexLoadError. Every message names the command that fixes it. ``device`` is where queries
    are embedded (``cuda``, ``cpu``...; None: the encoder's default), whatever embedded the index.

    ``warm`` (the default) starts `Searcher.start_warm_up` in a background thread: the encoder,
    the tokenizer's dictionary, the gazetteer and the rest that the first answers of a process
    each paid 1-2 s of CPU for are loaded while the caller goes on (``idx.warmed()`` waits for
    it). A question asked before it ends is answered as ever, only not faster.
    """
    idx = LoadedIndex(open_store(path, token=token, search_threads=search_threads), model, device=device)
    if warm:
        idx.start_warm_up()
    return idx


class LiveIndex:
    """The live generation of one index location as a Searcher, reloaded when a rebuild
    publishes a new one.

    Whether one was published is asked on every `current()`: a file read for a folder, two
    RPCs at most once a second for Milvus (`MilvusStore.is_current`). Only the reload is
    serialised: one thread loads the new generation while any other that found it stale
    waits for it. A replaced Searcher is only dropped: calls running on it finish with it, and
    then nothing refers to it, so its generation is freed.
    """

    def __init__(self, location: str, *, search_threads: int = 1, token: str | None = None,
                 searcher: Searcher | None = None, device: str | None = None) -> None:
        self.location = location
        self.search_threads = search_threads
        self.device = device
        self._token = token
        self._searcher = searcher
        self._lock = threading.Lock()

    @property
    def loaded(self) -> Searcher | None:
        """The Searcher last loaded (None before the first `current()`), without asking."""
        return self._searcher

    def current(self) -> Searcher:
        searcher = self._searcher
        if searcher is not None and searcher.is_current():
            return searcher
        with self._lock:
            # Another thread may have loaded it while this one waited: load once, not once each.
            if self._searcher is not searcher and self._searcher is not None and self._searcher.is_current():
                return self._searcher
            if searcher is None:
                log.info("loading index %s", self.location)
            else:
                log.info("index %s: new generation published, reloading", self.location)
            self._searcher = load_index(index_location(self.location), search_threads=self.search_threads,
                                        token=self._token, device=self.device)
            return self._searcher


class Searchers:
    """Searchers by location, loaded once and replaced when a new generation is published."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._lock = threading.Lock()
        self._live: dict[str, LiveIndex] = {}

    def get(self, location: str | os.PathLike[str] | None = None) -> Searcher:
        path = index_location(os.fspath(location)) if location is not None else self.settings.index
        key = location_key(path)
        with self._lock:
            live = self._live.get(key)
            if live is None:
                live = self._live[key] = LiveIndex(os.fspath(path), search_threads=self.settings.faiss_threads,
                                                   token=self.settings.milvus_token, device=self.settings.device)
        return live.current()

    def clear(self) -> None:
        with self._lock:
            self._live.clear()


_default: Searchers | None = None
_default_lock = threading.Lock()


def default_searchers() -> Searchers:
    """The registry behind `retrieve()` / `answer()` with no ``index``; it reads the
    environment (`Settings.from_env`) once, when first used."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Searchers()
        return _default


def get_searcher(index: Index | None = None) -> Searcher:
    """``index`` as given if it is a Searcher; else the default registry's for that path (None:
    $SPEECHRAG_INDEX or ``embeddings``)."""
    if isinstance(index, Searcher):
        return index
    if index is not None and not isinstance(index, str | os.PathLike):
        raise QueryError(f"index must be a Searcher or an index path, not {type(index).__name__}")
    return default_searchers().get(index)


def retrieve(
    query: str,
    k: int = 5,
    *,
    index: Index | None = None,
    max_query_chars: int = MAX_QUERY_CHARS,
    **options: Unpack[Options],
) -> list[Hit]:
    """The k best passages for ``query``, best first.

    ``options`` are `QueryOptions`' (k aside): ``mode`` is ``"dense"`` (vectors), ``"keyword"``
    (BM25) or ``"hybrid"`` (Reciprocal Rank Fusion of both with constant ``rrf_k``).
    ``speeches`` keeps only those speech ids; ``speaker``/``place`` only speeches with that
    metadata, ``years`` a year or an inclusive (first, last) range. Without those filters, a
    query that names a place, speaker, year or speech ranks those speeches' passages first,
    then the best of the others (as answers are scoped); in hybrid mode the top 10 are then
    fused with their best sentence's rank (`speechrag.answering.sentences.rerank`). ``index``
    is a Searcher, an index path, or None for $SPEECHRAG_INDEX / ``embeddings`` (loaded once per
    process, reloaded when a rebuild is published). Raises QueryError (an OptionError naming
    the option) for bad input.
    """
    # Check the query and the options before loading anything: bad input costs nothing.
    check_query(query, max_query_chars)
    checked = QueryOptions.parse(options, k=k)
    return retrieve_in(get_searcher(index), query, checked, max_query_chars=max_query_chars)


def answer(
    question: str,
    *,
    k: int = 5,
    history: Iterable[Any] | None = None,
    index: Index | None = None,
    max_sentences: int = MAX_SENTENCES,
    threshold: float | None = None,
    **options: Unpack[Options],
) -> answering.Answer:
    """Answer ``question`` from the speeches with cited sentences, or say they do not cover it.

    ``history`` holds earlier turns (strings, ``{"role", "content"}`` messages or
    ``(user, assistant)`` pairs); an elliptical question is completed from the last one.
    ``speeches``/``speaker``/``place``/``years`` filter as in `retrieve()`. ``threshold``
    overrides the index's calibrated abstention threshold. Raises QueryError for bad input.
    """
    check_query(question)
    checked = QueryOptions.parse(options, k=k)
    return answering.answer(get_searcher(index), question, checked, history=history,
                            max_sentences=max_sentences, threshold=threshold)


__all__ = ["LiveIndex", "LoadedIndex", "Searchers", "answer", "default_searchers", "get_searcher", "load_index",
           "retrieve"]
