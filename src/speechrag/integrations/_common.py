"""What both retriever adapters share: the search call and its options. A hit's metadata is
`speechrag.serving.hit_fields` (JSON-friendly values only, so vector stores and tracers keep
them), the servers' own form of a source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from speechrag.api import Index, retrieve
from speechrag.errors import OptionError
from speechrag.options import QueryOptions
from speechrag.searcher import Hit

# retrieve()'s own keywords besides a request's options (`QueryOptions`).
EXTRA = ("max_query_chars",)


def option_names() -> tuple[str, ...]:
    """Every option an adapter takes, as a field, in ``filters`` or per call."""
    return (*QueryOptions.names(), *EXTRA)


def check_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """``filters`` as a dict, or an OptionError naming an option `retrieve()` does not take."""
    out = dict(filters or {})
    unknown = sorted(set(out) - set(option_names()))
    if unknown:
        raise OptionError(unknown[0], f"{unknown[0]} is not an option: use {', '.join(option_names())}")
    return out


def checked(values: Mapping[str, Any]) -> tuple[QueryOptions, dict[str, Any]]:
    """The request options among ``values`` (checked: `OptionError`) and retrieve()'s extras."""
    values = check_filters(values)
    extras = {name: values.pop(name) for name in EXTRA if name in values}
    return QueryOptions.parse(values), extras


def search(query: str, values: Mapping[str, Any], index: Index | None) -> list[Hit]:
    options, extras = checked(values)
    return retrieve(query, index=index, **options.as_kwargs(), **extras)
