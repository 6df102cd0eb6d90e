"""The collection as a research instrument: concordance, trends, targets over the years and
side-by-side answers, all read from a loaded index (`collection.load_collection`)."""

from __future__ import annotations

from speechrag.analysis.collection import Collection, Paragraph, load_collection
from speechrag.analysis.concordance import Concordance, Occurrence, concordance
from speechrag.analysis.targets import Figure, Target, parse_figure, targets
from speechrag.analysis.trend import Mention, Trend, TrendRow, trend

__all__ = [
    "Collection",
    "Concordance",
    "Figure",
    "Mention",
    "Occurrence",
    "Paragraph",
    "Target",
    "Trend",
    "TrendRow",
    "concordance",
    "load_collection",
    "parse_figure",
    "targets",
    "trend",
]
