"""Trends: how often phrases occur per year, speaker, place or speech, per 10,000 characters,
and each phrase's first and last dated occurrence.

Counts are `concordance`'s (the same matching, the same collection); the denominator is the
characters of the group's paragraphs, so a long report and a short talk compare by rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from speechrag.analysis.collection import Collection, Index, Years, check_int, load_collection
from speechrag.analysis.concordance import Occurrence, Phrase, compile_phrase, find_spans, occurrence
from speechrag.errors import QueryError
from speechrag.passage import Speech

GROUPINGS = ("year", "speaker", "place", "speech")
MAX_PHRASES = 10
UNKNOWN = {"year": "undated", "speaker": "unknown", "place": "unknown"}


@dataclass(frozen=True)
class TrendRow:
    """One group: its label, how many speeches and characters it has, and per phrase (in the
    order asked) the occurrences and the rate per ``Trend.per`` characters."""

    group: str
    speeches: int
    characters: int
    counts: tuple[int, ...]
    rates: tuple[float, ...]


@dataclass(frozen=True)
class Mention:
    """A phrase's total and its first and last occurrence in a dated speech (None: it occurs
    in no dated speech)."""

    phrase: str
    total: int
    first: Occurrence | None
    last: Occurrence | None


@dataclass(frozen=True)
class Trend:
    phrases: tuple[str, ...]
    by: str
    per: int
    rows: tuple[TrendRow, ...]
    mentions: tuple[Mention, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "phrases": list(self.phrases), "by": self.by, "per": self.per,
            "rows": [{"group": r.group, "speeches": r.speeches, "characters": r.characters,
                      "counts": dict(zip(self.phrases, r.counts, strict=True)),
                      "rates": dict(zip(self.phrases, r.rates, strict=True))} for r in self.rows],
            "mentions": [{"phrase": m.phrase, "total": m.total,
                          "first": m.first.to_dict() if m.first else None,
                          "last": m.last.to_dict() if m.last else None} for m in self.mentions],
        }


def group_of(speech: Speech, by: str) -> str:
    if by == "year":
        return str(speech.year) if speech.year else UNKNOWN["year"]
    if by == "speaker":
        return speech.speaker or UNKNOWN["speaker"]
    if by == "place":
        return speech.place or UNKNOWN["place"]
    return f"{speech.title} ({speech.id})"


def _phrases(phrases: object) -> list[str]:
    listed = [phrases] if isinstance(phrases, str) else list(phrases) if isinstance(phrases, Iterable) else None
    if listed is None or not listed or not all(isinstance(p, str) for p in listed):
        raise QueryError(f"phrases must be a phrase or a list of phrases. Currently, phrases is {phrases!r}")
    if len(listed) > MAX_PHRASES:
        raise QueryError(f"at most {MAX_PHRASES} phrases at once. Currently, there are {len(listed)}")
    return listed


def trend(
    phrases: str | Sequence[str],
    *,
    by: str = "year",
    per: int = 10_000,
    speeches: str | Iterable[str] | None = None,
    speaker: str | Iterable[str] | None = None,
    place: str | Iterable[str] | None = None,
    years: Years = None,
    regex: bool = False,
    index: Index = None,
) -> Trend:
    """Per group (``by``: year, speaker, place or speech) the occurrences of each phrase, the
    group's characters and the rate per ``per`` characters; and each phrase's first and last
    dated occurrence with its citation. Years ascend (undated last); other groups come in the
    index's order. Filters as `speechrag.retrieve`; QueryError for bad input."""
    if by not in GROUPINGS:
        raise QueryError(f"by must be one of {', '.join(GROUPINGS)}. Currently, by is {by!r}")
    per = check_int("per", per, 1, 10**9)
    compiled = [compile_phrase(p, regex=regex) for p in _phrases(phrases)]
    collection = load_collection(index, speeches=speeches, speaker=speaker, place=place, years=years)
    return count(collection, compiled, by=by, per=per)


def count(collection: Collection, phrases: Sequence[Phrase], *, by: str = "year", per: int = 10_000) -> Trend:
    """`trend` over a collection already loaded."""
    groups: dict[str, list[int]] = {}  # group -> [speeches, characters]
    speech_group: dict[str, str] = {}
    for speech in collection.speeches:
        speech_group[speech.id] = g = group_of(speech, by)
        groups.setdefault(g, [0, 0])[0] += 1
    for para in collection.paragraphs:
        groups[speech_group[para.speech.id]][1] += len(para.text)
    order = list(groups)
    if by == "year":
        order.sort(key=lambda g: (not g.isdigit(), g))
    counts = {g: [0] * len(phrases) for g in order}
    mentions = []
    for i, phrase in enumerate(phrases):
        total, first, last = 0, None, None
        for para, a, b in find_spans(collection, phrase):
            total += 1
            counts[speech_group[para.speech.id]][i] += 1
            date = para.speech.date
            if date and (first is None or date < first[0].speech.date):
                first = (para, a, b)
            if date and (last is None or date >= last[0].speech.date):
                last = (para, a, b)
        mentions.append(Mention(phrase.text, total,
                                occurrence(*first, 20) if first else None, occurrence(*last, 20) if last else None))
    rows = tuple(
        TrendRow(g, groups[g][0], groups[g][1], tuple(counts[g]),
                 tuple(n * per / groups[g][1] if groups[g][1] else 0.0 for n in counts[g]))
        for g in order
    )
    return Trend(tuple(p.text for p in phrases), by, per, rows, tuple(mentions))


def plot(result: Trend, path: str) -> None:
    """Draw ``result`` as a line chart (one line per phrase, rate per group) into a PNG at
    ``path``. Needs matplotlib (the analysis extra)."""
    try:
        import matplotlib
    except ImportError:
        from speechrag.errors import ConfigError

        raise ConfigError("drawing a chart needs matplotlib: pip install 'speechrag[analysis]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Chinese labels need a CJK font; Noto CJK is what Debian's fonts-noto-cjk installs.
    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC",
                                       "WenQuanYi Zen Hei", "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    labels = [r.group for r in result.rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(labels) + 3), 4.0))
    try:
        for i, phrase in enumerate(result.phrases):
            ax.plot(labels, [r.rates[i] for r in result.rows], marker="o", label=phrase)
        ax.set_xlabel(result.by)
        ax.set_ylabel(f"occurrences per {result.per:,} characters")
        ax.legend()
        if len(labels) > 6:
            plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
