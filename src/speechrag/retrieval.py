"""Turn a query into ranked passages: dense (FAISS), keyword (bm25s), or both fused by RRF.

A paragraph that appears nearly verbatim in two speeches comes back once, as one `Hit` whose
`also_in` lists the other copies, so five hits are five different texts.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from speechrag.corpus import normalise
from speechrag.errors import QueryError
from speechrag.passage import Passage

if TYPE_CHECKING:
    from speechrag.index import Index

log = logging.getLogger(__name__)

MODES = ("dense", "keyword", "hybrid")
# RRF constant: on eval/questions.jsonl hybrid R@5 and MRR@10 are flat from 2 to 100 (0-1 win
# one question more at R@1, i.e. noise), so we keep the conventional 60, the least sensitive
# to a single list's top ranks. Re-check with `speechrag eval --mode hybrid --rrf-k N`.
RRF_K = 60
MAX_QUERY_CHARS = 2000
MAX_K = 50
# Below this size a flat dense search over every row costs microseconds, and the full score
# distribution is what answer.py's abstention needs.
_FULL_SCAN = 5000


@dataclass(frozen=True)
class Hit:
    """One retrieved passage. ``also_in`` holds the ids of its collapsed near-twins.

    ``cited`` is filled by `answer()`: the character spans of ``passage.text`` that the answer
    quotes, so a UI can highlight them.
    """

    passage: Passage
    score: float
    rank: int
    also_in: tuple[str, ...] = ()
    also_in_citations: tuple[str, ...] = ()
    cited: tuple[tuple[int, int], ...] = field(default=())

    @property
    def citation(self) -> str:
        return self.passage.citation

    @property
    def cited_sentences(self) -> tuple[str, ...]:
        return tuple(self.passage.text[a:b] for a, b in self.cited)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passage": self.passage.to_dict(),
            "citation": self.citation,
            "score": self.score,
            "rank": self.rank,
            "also_in": list(self.also_in),
            "also_in_citations": list(self.also_in_citations),
            "cited": [list(span) for span in self.cited],
            "cited_sentences": list(self.cited_sentences),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hit:
        return cls(
            passage=Passage.from_dict(d["passage"]),
            score=float(d["score"]),
            rank=int(d["rank"]),
            also_in=tuple(str(x) for x in d.get("also_in", ())),
            also_in_citations=tuple(str(x) for x in d.get("also_in_citations", ())),
            cited=tuple((int(a), int(b)) for a, b in d.get("cited", ())),
        )


@dataclass(frozen=True)
class Ranking:
    """Everything one search learned; answer.py reads both rankings to judge the evidence.

    ``dense_rows``/``dense_scores`` cover every allowed row, best first; ``keyword_rows`` only
    the rows sharing at least one term with the query.
    """

    hits: tuple[Hit, ...]
    dense_rows: np.ndarray
    dense_scores: np.ndarray
    keyword_rows: np.ndarray
    keyword_scores: np.ndarray


# --- validation ---------------------------------------------------------------------------


_SURROGATE = re.compile("[\ud800-\udfff]")


def is_broken_text(text: str) -> bool:
    """True if ``text`` holds unpaired surrogates: it cannot be encoded as UTF-8, so the encoder
    and every JSON layer would fail on it."""
    return _SURROGATE.search(text) is not None


def check_query(query: object, max_chars: int = MAX_QUERY_CHARS) -> str:
    """The query stripped, or a QueryError saying what is wrong with it."""
    if not isinstance(query, str):
        raise QueryError(f"query must be text, not {type(query).__name__}")
    if len(query) > 4 * max_chars:  # refuse a huge query before spending any work on it
        raise QueryError(f"query is {len(query)} characters, over the {max_chars}-character limit: shorten it")
    if is_broken_text(query):
        raise QueryError("query contains unpaired surrogate characters (broken text): retype it")
    text = normalise(query)  # the same NFC / control-character clean-up the passages had
    if not text:
        raise QueryError("query is empty: type a question")
    if len(text) > max_chars:
        raise QueryError(f"query is {len(text)} characters, over the {max_chars}-character limit: shorten it")
    return text


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise QueryError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    return k


def check_mode(mode: object) -> str:
    if mode not in MODES:
        raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    return str(mode)


def speech_filter(index: Index, speeches: str | Iterable[str] | None) -> frozenset[str] | None:
    """The set of speech ids to keep (None: all), checked against the index."""
    if speeches is None:
        return None
    wanted = {speeches} if isinstance(speeches, str) else set(speeches)
    known = {p.speech_id for p in index.passages}
    unknown = sorted(wanted - known)
    if unknown:
        raise QueryError(
            f"unknown speech id {unknown[0]!r}: known ids are {', '.join(sorted(known))}"
        )
    if not wanted:
        raise QueryError("speeches is empty: pass speech ids, or None for all speeches")
    return frozenset(wanted)


# --- the default index --------------------------------------------------------------------

_LOCK = threading.Lock()
_LOADED: dict[Path, Index] = {}


def default_index_path() -> Path:
    env = os.environ.get("SPEECHRAG_INDEX")
    if env:
        return Path(env)
    from speechrag.index import DEFAULT_INDEX_DIR

    return Path(DEFAULT_INDEX_DIR)


def get_index(index: Index | str | os.PathLike[str] | None = None) -> Index:
    """An Index as given, or the one at a path (default: $SPEECHRAG_INDEX or the default dir),
    loaded once per process and reused."""
    if index is not None and not isinstance(index, str | os.PathLike):
        return index
    from speechrag.index import load_index

    path = Path(index) if index is not None else default_index_path()
    key = path.resolve()
    with _LOCK:
        loaded = _LOADED.get(key)
        # is_current() is one small file read: a rebuild published since is picked up.
        if loaded is None or not loaded.is_current():
            log.info("loading index %s", path)
            loaded = load_index(path)
            _LOADED[key] = loaded
        return loaded


# --- search -------------------------------------------------------------------------------


def rank(
    index: Index,
    query: str,
    qvec: np.ndarray | None,
    k: int,
    *,
    mode: str = "hybrid",
    speeches: frozenset[str] | None = None,
    rrf_k: float = RRF_K,
    both: bool = False,
) -> Ranking:
    """Search without validation (callers check first); ``qvec`` may be None in keyword mode.

    ``both`` runs the dense and the keyword search whatever the mode, for answer.py's evidence.
    """
    passages = index.passages
    n = len(passages)
    allowed = None
    if speeches is not None:
        allowed = np.fromiter((p.speech_id in speeches for p in passages), bool, count=n)

    d_rows, d_scores = np.empty(0, np.int64), np.empty(0, np.float32)
    if mode != "keyword" or both:
        if qvec is None:
            qvec = index.encode_query(query)
        depth = n if (n <= _FULL_SCAN or allowed is not None) else max(200, 10 * k)
        d_rows, d_scores = index.search_dense(qvec, depth)
        if allowed is not None:
            mask = allowed[d_rows]
            d_rows, d_scores = d_rows[mask], d_scores[mask]

    k_rows, k_scores = np.empty(0, np.int64), np.empty(0, np.float32)
    if mode != "dense" or both:
        kw_depth = n if allowed is not None else min(n, max(100, 10 * k))
        k_rows, k_scores = index.search_keyword(query, kw_depth)
        k_rows, k_scores = np.asarray(k_rows, np.int64), np.asarray(k_scores, np.float32)
        matched = k_scores > 0
        k_rows, k_scores = k_rows[matched], k_scores[matched]
        if allowed is not None:
            mask = allowed[k_rows]
            k_rows, k_scores = k_rows[mask], k_scores[mask]

    if mode == "dense":
        order, fused = d_rows, d_scores
    elif mode == "keyword":
        order, fused = k_rows, k_scores
    else:
        order, fused = rrf([d_rows, k_rows], rrf_k)
    hits = collapse(passages, order, fused, k)
    return Ranking(hits, d_rows, d_scores, k_rows, k_scores)


def rrf(rankings: Sequence[np.ndarray], c: float) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal Rank Fusion: each list gives a row 1/(c + rank); ties keep the first list's order."""
    total: dict[int, float] = {}
    for rows in rankings:
        for r, row in enumerate(rows.tolist(), start=1):
            total[row] = total.get(row, 0.0) + 1.0 / (c + r)
    ordered = sorted(total.items(), key=lambda kv: -kv[1])
    return (
        np.fromiter((row for row, _ in ordered), np.int64, count=len(ordered)),
        np.fromiter((s for _, s in ordered), np.float64, count=len(ordered)),
    )


def collapse(passages: Sequence[Passage], rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[Hit, ...]:
    """The first k distinct texts: a near-twin of a passage already taken is folded into it."""
    by_id = _ids(passages)
    hits: list[Hit] = []
    seen: set[str] = set()
    for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
        p = passages[row]
        if p.id in seen:
            continue
        twins = tuple(d for d in p.duplicates if d in by_id)
        seen.add(p.id)
        seen.update(twins)
        hits.append(
            Hit(
                passage=p,
                score=float(score),
                rank=len(hits) + 1,
                also_in=twins,
                also_in_citations=tuple(passages[by_id[d]].citation for d in twins),
            )
        )
        if len(hits) == k:
            break
    return tuple(hits)


_ID_CACHE: dict[int, tuple[Sequence[Passage], dict[str, int]]] = {}


def _ids(passages: Sequence[Passage]) -> dict[str, int]:
    cached = _ID_CACHE.get(id(passages))
    if cached is None or cached[0] is not passages:
        cached = (passages, {p.id: i for i, p in enumerate(passages)})
        _ID_CACHE[id(passages)] = cached
    return cached[1]


def retrieve(
    query: str,
    k: int = 5,
    *,
    mode: str = "hybrid",
    speeches: str | Iterable[str] | None = None,
    index: Index | str | os.PathLike[str] | None = None,
    rrf_k: float = RRF_K,
    max_query_chars: int = MAX_QUERY_CHARS,
) -> list[Hit]:
    """The k best passages for ``query``, best first.

    ``mode`` is ``"dense"`` (FAISS), ``"keyword"`` (bm25s) or ``"hybrid"`` (Reciprocal Rank
    Fusion of both with constant ``rrf_k``). ``speeches`` keeps only those speech ids.
    ``index`` is an Index, an index directory, or None for $SPEECHRAG_INDEX / the default
    directory (loaded once per process). Raises QueryError for bad input.
    """
    text = check_query(query, max_query_chars)
    k = check_k(k)
    mode = check_mode(mode)
    idx = get_index(index)
    wanted = speech_filter(idx, speeches)
    qvec = None if mode == "keyword" else idx.encode_query(text)
    return list(rank(idx, text, qvec, k, mode=mode, speeches=wanted, rrf_k=rrf_k).hits)
