"""What both retriever adapters share: the search call and its options. A hit's metadata is
`speechrag.serving.hit_fields` (JSON-friendly values only, so vector stores and tracers keep
them), the servers' own form of a source."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any

from speechrag.searcher import Hit, Searcher, retrieve

# retrieve()'s own parameters that the adapters set from their fields.
_FIELDS = ("query", "k", "mode", "speeches", "speaker", "place", "years", "index")

def filter_names() -> frozenset[str]:
    """The keyword options `retrieve()` accepts besides the adapters' fields: whatever this
    version offers (today ``rrf_k`` and ``max_query_chars``)."""
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
    speeches: str | Sequence[str] | None,
    speaker: str | Sequence[str] | None,
    place: str | Sequence[str] | None,
    years: tuple[int, int] | int | None,
    index: Searcher | str | os.PathLike[str] | None,
    filters: Mapping[str, Any],
) -> list[Hit]:
    return retrieve(query, k, mode=mode, speeches=speeches, speaker=speaker, place=place, years=years,
                    index=index, **filters)
