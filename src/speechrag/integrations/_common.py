"""What both retriever adapters share: the search call and a hit's metadata."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from speechrag.retrieval import Hit, retrieve

if TYPE_CHECKING:
    from speechrag.index import Index

# retrieve()'s own parameters that the adapters set from their fields.
_FIELDS = ("query", "k", "mode", "speeches", "index")


def filter_names() -> frozenset[str]:
    """The keyword options `retrieve()` accepts besides the adapters' fields: whatever this
    version offers (today ``rrf_k`` and ``max_query_chars``; metadata filters such as a
    speaker or years become valid here as soon as `retrieve()` takes them)."""
    params = inspect.signature(retrieve).parameters
    return frozenset(name for name, p in params.items() if name not in _FIELDS and p.kind is p.KEYWORD_ONLY)


def check_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """``filters`` as a dict, or a ValueError naming an option `retrieve()` does not take."""
    out = dict(filters or {})
    unknown = sorted(set(out) - filter_names())
    if unknown:
        raise ValueError(f"retrieve() takes no option {unknown[0]!r}: use one of {', '.join(sorted(filter_names()))}")
    return out


def search(
    query: str,
    k: int,
    *,
    mode: str,
    speeches: Sequence[str] | None,
    index: Index | str | os.PathLike[str] | None,
    filters: Mapping[str, Any],
) -> list[Hit]:
    return retrieve(query, k, mode=mode, speeches=list(speeches) if speeches is not None else None,
                    index=index, **filters)


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """A hit's metadata: JSON-friendly values only, so vector stores and tracers keep them."""
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
