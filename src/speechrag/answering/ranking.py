"""The passages a question gets, best first: the speeches it names first (`scope`), then each
passage by its rank and its best sentence's (`sentences.rerank`).

`retrieve()` and `speechrag eval` rank through here, so the R@k eval reports is what
`retrieve()` returns. `answer()` scopes the same way but chooses its sentences from the fused
order (see DEVELOPERS.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from speechrag.answering.scope import Scope, rank_in_scope
from speechrag.answering.sentences import rerank
from speechrag.options import QueryOptions
from speechrag.searcher import MAX_QUERY_CHARS, Hit, Searcher, check_query

if TYPE_CHECKING:
    from speechrag.stores.base import Filter

# Sentence reranking looks this deep whatever k is, so retrieve(k=3) is the top 3 of the same
# list eval's R@1 and MRR@10 are measured on.
RERANK_DEPTH = 10


def rank_question(searcher: Searcher, query: str, qvec: Any, k: int, *, mode: str,
                  where: Filter | None, rrf_k: float) -> tuple[Scope, tuple[Hit, ...]]:
    """The question's scope and its best ``k`` hits (see the module docstring). In dense or
    keyword mode the ranking is that search's alone: no sentence reranking."""
    depth = max(k, RERANK_DEPTH) if mode == "hybrid" else k
    ranking = searcher.rank(query, qvec, depth, mode=mode, where=where, rrf_k=rrf_k)
    scope, hits = rank_in_scope(searcher, query, qvec, ranking, depth, mode=mode, where=where, rrf_k=rrf_k)
    if mode != "hybrid":
        return scope, hits[:k]
    return scope, rerank(searcher, query, qvec, hits[:depth], scope)[:k]


def retrieve(searcher: Searcher, query: str, options: QueryOptions | None = None, *,
             max_query_chars: int = MAX_QUERY_CHARS) -> list[Hit]:
    """The ``options.k`` best passages for ``query`` in ``searcher``'s index, best first (the
    public form, which takes an index path too, is `speechrag.api.retrieve`)."""
    text = check_query(query, max_query_chars)
    options = options or QueryOptions()
    where = options.where(searcher.speeches)
    qvec = None if options.mode == "keyword" else searcher.encode_query(text)
    # The speeches a query names first, then (hybrid) each passage by its best sentence too:
    # the ranking `speechrag eval` scores.
    return list(rank_question(searcher, text, qvec, options.k, mode=options.mode, where=where,
                              rrf_k=options.rrf_k)[1])
