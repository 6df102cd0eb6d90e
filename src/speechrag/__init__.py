"""speechrag: ask questions of a collection of speeches and get answers that cite their sources.

The public API is the handful of names below; everything else is an implementation detail.
"""

from __future__ import annotations

import logging

from speechrag.analysis import Comparison, Concordance, Occurrence, Target, Trend, compare, concordance, targets, trend
from speechrag.answering import Answer, AnswerSentence
from speechrag.api import answer, load_index, retrieve
from speechrag.config import Settings
from speechrag.corpus import load_corpus, read_corpus
from speechrag.encoders import Encoder, get_encoder
from speechrag.errors import (
    BuildError,
    ConfigError,
    CorpusError,
    EncoderError,
    EncoderMismatchError,
    IndexCorruptError,
    IndexLoadError,
    IndexLockedError,
    OptionError,
    QueryError,
    SpeechragError,
)
from speechrag.index import BuildSummary, build_index, complete_index
from speechrag.options import QueryOptions
from speechrag.passage import CorpusReport, Passage, Speech
from speechrag.searcher import Hit, Searcher
from speechrag.stores import Filter, Store

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Answer",
    "AnswerSentence",
    "BuildError",
    "BuildSummary",
    "Comparison",
    "Concordance",
    "ConfigError",
    "CorpusError",
    "CorpusReport",
    "Encoder",
    "EncoderError",
    "EncoderMismatchError",
    "Filter",
    "Hit",
    "IndexCorruptError",
    "IndexLoadError",
    "IndexLockedError",
    "Occurrence",
    "OptionError",
    "Passage",
    "QueryError",
    "QueryOptions",
    "Searcher",
    "Settings",
    "Speech",
    "SpeechragError",
    "Store",
    "Target",
    "Trend",
    "__version__",
    "answer",
    "build_index",
    "compare",
    "complete_index",
    "concordance",
    "get_encoder",
    "load_corpus",
    "load_index",
    "read_corpus",
    "retrieve",
    "targets",
    "trend",
]
