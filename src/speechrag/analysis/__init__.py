"""The collection as a research instrument: concordance, trends, targets over the years and
side-by-side answers, all read from a loaded index (`collection.load_collection`)."""

from __future__ import annotations

from speechrag.analysis.collection import Collection, Paragraph, load_collection
from speechrag.analysis.compare import Comparison, GroupAnswer, Quote, compare
from speechrag.analysis.concordance import Concordance, Occurrence, concordance
from speechrag.analysis.targets import Figure, Target, parse_figure, targets
from speechrag.analysis.trend import Mention, Trend, TrendRow, trend

__all__ = [
    "Collection",
    "Comparison",
    "Concordance",
    "Figure",
    "GroupAnswer",
    "Mention",
    "Occurrence",
    "Paragraph",
    "Quote",
    "Target",
    "Trend",
    "TrendRow",
    "compare",
    "concordance",
    "load_collection",
    "parse_figure",
    "targets",
    "trend",
]
