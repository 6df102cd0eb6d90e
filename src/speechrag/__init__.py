"""speechrag: ask questions of a collection of speeches and get answers that cite their sources.

The public API is the handful of names below; everything else is an implementation detail.
"""

from __future__ import annotations

import logging

from speechrag.answer import Answer, answer
from speechrag.corpus import load_corpus, read_corpus
from speechrag.encoders import Encoder, get_encoder
from speechrag.errors import (
    CorpusError,
    EncoderError,
    EncoderMismatchError,
    IndexCorruptError,
    IndexLoadError,
    IndexLockedError,
    QueryError,
    SpeechragError,
)
from speechrag.index import BuildSummary, Index, build_index, load_index
from speechrag.passage import CorpusReport, Passage, Speech
from speechrag.retrieval import Hit, retrieve

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Answer",
    "BuildSummary",
    "CorpusError",
    "CorpusReport",
    "Encoder",
    "EncoderError",
    "EncoderMismatchError",
    "Hit",
    "Index",
    "IndexCorruptError",
    "IndexLoadError",
    "IndexLockedError",
    "Passage",
    "QueryError",
    "Speech",
    "SpeechragError",
    "__version__",
    "answer",
    "build_index",
    "get_encoder",
    "load_corpus",
    "load_index",
    "read_corpus",
    "retrieve",
]
