"""A request's options (k, mode, the speech filters, rrf_k): named, typed and checked here once.

Every front door (the CLI, the page, ``/v1``, the MCP tools, the LangChain and LlamaIndex
retrievers, the Python API) builds a `QueryOptions` from its own input, so a bad value is the
same `OptionError` everywhere: its ``field`` names the option and its message says what is
allowed, in the same words. What can be checked only against an index (a speech id, a place or
a speaker no speech has) is checked by `QueryOptions.where`, with the same error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypedDict

from speechrag.errors import OptionError
from speechrag.passage import Speech
from speechrag.stores.base import Filter
from speechrag.text import place_key

MODES = ("hybrid", "dense", "keyword")
# RRF constant: on eval/questions.jsonl hybrid R@5 and MRR@10 are flat from 2 to 100 (0-1 win
# one question more at R@1, i.e. noise), so we keep the conventional 60, the least sensitive
# to a single list's top ranks. Re-check with `speechrag eval --mode hybrid --rrf-k N`.
RRF_K = 60
MAX_K = 50
_SHOWN = 20  # known names listed in an error about an unknown one

Names = str | Iterable[str] | None
Years = tuple[int, int] | Sequence[int] | int | str | None


class Options(TypedDict, total=False):
    """`QueryOptions` but k, as keyword arguments of `speechrag.retrieve`/`speechrag.answer`."""

    mode: str
    speeches: Names
    speaker: Names
    place: Names
    years: Years
    rrf_k: float


def _k(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise OptionError("k", f"k must be a whole number from 1 to {MAX_K}, not {value!r}")
    return value


def _mode(value: object) -> str:
    if value not in MODES:
        raise OptionError("mode", f"mode must be one of {', '.join(MODES)}, not {value!r}")
    return str(value)


def _rrf_k(value: object) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or value < 0):
        raise OptionError("rrf_k", f"rrf_k must be a number >= 0, not {value!r}")
    return float(value)


def _names(value: object, field: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        names: set[Any] = {value}
    elif isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        names = set(value)
    else:
        raise OptionError(field, f"{field} must be a string or a list of strings, not {value!r}")
    if not all(isinstance(v, str) for v in names):
        raise OptionError(field, f"{field} must be a string or a list of strings, not {value!r}")
    if not names:
        raise OptionError(field, f"{field} is empty: pass at least one, or none for all")
    return frozenset(names)


def _year(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _years(value: object) -> tuple[int, int] | None:
    """A year, a (first, last) pair, or ``"2016-2018"`` -> an inclusive span."""
    if value is None:
        return None
    if isinstance(value, str):
        first, _, last = value.strip().partition("-")
        pair: list[int | None] = [_year(first), _year(last or first)]
    elif isinstance(value, Sequence) and 1 <= len(value) <= 2:
        pair = [_year(v) for v in value] * (2 if len(value) == 1 else 1)
    else:
        pair = [_year(value)] * 2
    a, b = pair
    if a is None or b is None:
        raise OptionError("years", f"years must be a year or a range of years such as 2016-2018 or "
                                   f"[2016, 2018], not {value!r}")
    if a > b:
        raise OptionError("years", f"years {a}-{b} run backwards: give the first year first ({b}-{a})")
    return a, b


def _listed(names: Iterable[str]) -> str:
    shown = sorted(names)
    return ", ".join(shown[:_SHOWN]) + (" …" if len(shown) > _SHOWN else "") if shown else "none"


@dataclass(frozen=True)
class QueryOptions:
    """The options of one `retrieve()` or `answer()` call, checked when made (`OptionError`).

    ``speeches``/``speaker``/``place`` take a name or a list of names; ``years`` a year, a
    (first, last) pair or ``"2016-2018"``. They are kept normalised: frozensets and a span.
    """

    k: int = 5
    mode: str = "hybrid"
    speeches: frozenset[str] | None = None
    speaker: frozenset[str] | None = None
    place: frozenset[str] | None = None
    years: tuple[int, int] | None = None
    rrf_k: float = RRF_K

    def __post_init__(self) -> None:
        checked = {
            "k": _k(self.k),
            "mode": _mode(self.mode),
            "speeches": _names(self.speeches, "speeches"),
            "speaker": _names(self.speaker, "speaker"),
            "place": _names(self.place, "place"),
            "years": _years(self.years),
            "rrf_k": _rrf_k(self.rrf_k),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None = None, **given: Any) -> QueryOptions:
        """Options from a door's input (a mapping and/or keywords; None values mean the
        default); a name that is not an option is an OptionError naming it."""
        values = {**(raw or {}), **given}
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise OptionError(unknown[0], f"{unknown[0]} is not an option: use {', '.join(cls.names())}")
        return cls(**{name: value for name, value in values.items() if value is not None})

    def where(self, known: Sequence[Speech]) -> Filter | None:
        """The search filter (None: no condition), checked against the speeches ``known``:
        a speech id, speaker or place that no speech has is an OptionError naming the field."""
        if self.speeches is not None:
            ids = {s.id for s in known}
            unknown = sorted(self.speeches - ids)
            if unknown:
                raise OptionError("speeches", f"unknown speech id {unknown[0]!r} in speeches: "
                                              f"known ids are {_listed(ids)}")
        if self.speaker is not None:
            speakers = {s.speaker for s in known if s.speaker}
            unknown = sorted(self.speaker - speakers)
            if unknown:
                raise OptionError("speaker", f"no speech has speaker {unknown[0]!r}; speakers: {_listed(speakers)}")
        if self.place is not None:
            places = {s.place for s in known if s.place}
            keys = {place_key(p) for p in places}
            unknown = sorted(p for p in self.place if place_key(p) not in keys)
            if unknown:
                raise OptionError("place", f"no speech has place {unknown[0]!r}; places: {_listed(places)}")
        where = Filter(self.speeches, self.speaker, self.place, self.years)
        return None if where.empty else where

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keywords of `retrieve()`/`answer()`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


__all__ = ["MAX_K", "MODES", "RRF_K", "OptionError", "QueryOptions"]
