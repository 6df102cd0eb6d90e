"""Build-time sentence vectors: what is stored, how it is found, and that a first answer on an
index that has them embeds nothing but its question."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import speechrag
from conftest import CountingEncoder
from speechrag import Searcher, answer, build_index, load_index
from speechrag.answering.sentences import is_prose
from speechrag.evaluate import DEFAULT_QUESTIONS, load_questions
from speechrag.sentencevectors import SentenceVectors, quotable
from speechrag.text import sentence_spans

ROOT = Path(__file__).resolve().parents[1]


def test_quotable_is_every_sentence_answers_split_off_once() -> None:
    texts = ["一是抓落实。二是抓督查！“三是”", "一是抓落实。另起一句？", "短"]
    assert quotable(texts) == ["一是抓落实。", "二是抓督查！", "“三是”", "另起一句？"]
    # The same split as answering's (`select_sentences`), so every candidate can be found.
    for text in texts:
        for a, b in sentence_spans(text, min_chars=2):
            assert text[a:b] in quotable(texts)


def test_lookup_finds_stored_sentences_and_reports_the_rest(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sentences = [f"第{i}句话。" for i in range(500)]
    vecs = rng.normal(size=(500, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    SentenceVectors.from_sentences(sentences, vecs).save(tmp_path / "s")
    stored = SentenceVectors.load(tmp_path / "s")
    assert isinstance(stored.vectors, np.memmap) and stored.vectors.dtype == np.float16
    ask = ["第499句话。", "没有这句。", "第0句话。", "第499句话。"]
    got, found = stored.lookup(ask)
    assert found.tolist() == [True, False, True, True]
    assert got.dtype == np.float32 and not got[1].any()
    # float16 keeps each cosine within 1e-3 of the float32 one.
    np.testing.assert_allclose(got[[0, 2, 3]] @ vecs[[499, 0, 499]].T, vecs[[499, 0, 499]] @ vecs[[499, 0, 499]].T,
                               atol=1e-3)
    empty = SentenceVectors.from_sentences([], np.zeros((0, 16), np.float32))
    assert empty.lookup(["任何一句。"])[1].tolist() == [False]
    with pytest.raises(ValueError, match="keys"):
        SentenceVectors(np.zeros(2, np.uint64), np.zeros((3, 4), np.float16))


def test_a_built_index_stores_every_sentence_answers_can_quote(tiny_index: Searcher, fixture_corpus: Path,
                                                                tmp_path: Path) -> None:
    store = tiny_index.store
    texts = [p.text for p in store.passages(range(store.size))]
    _, found = store.sentence_vectors(quotable(texts))
    assert found.all() and len(found) >= store.size
    # The stored vector is the encoder's passage-side vector of that sentence.
    enc = tiny_index.encoder
    sample = quotable(texts)[::3]
    got, _ = store.sentence_vectors(sample)
    np.testing.assert_allclose(got, enc.encode_passages(sample), atol=2e-3)
    # Precomputed passage vectors: no sentence vectors, and answers still work by embedding.
    vecs = enc.encode_passages(texts)
    given = build_index(fixture_corpus, tmp_path / "given", model=enc, vectors=vecs)
    assert given.sentences == 0 and not (tmp_path / "given" / given.generation / "sentences").exists()
    counting = CountingEncoder(enc)
    searcher = Searcher(load_index(tmp_path / "given").store, encoder=counting)
    got = searcher.sentence_vectors(["计生家庭参加了保险。", texts[0]])
    assert counting.passage_texts == ["计生家庭参加了保险。", texts[0]]  # embedded now, as before
    np.testing.assert_allclose(got, enc.encode_passages(["计生家庭参加了保险。", texts[0]]), atol=1e-6)
    # retrieve() reranks by sentence only with stored vectors: here it embeds no sentence and
    # keeps the fused order.
    counting.passage_texts.clear()
    q = "计生家庭参加保险理赔"
    hits = speechrag.retrieve(q, k=5, index=searcher)
    assert counting.passage_texts == []
    assert [h.passage.id for h in hits] == [h.passage.id for h in searcher.rank(q, searcher.encode_query(q), 5).hits]


def test_an_index_without_them_is_stale_and_a_plain_build_adds_them(fixture_corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "ix"
    vecs = load_index_vectors(fixture_corpus, tmp_path)
    build_index(fixture_corpus, index, model="hash", vectors=vecs)
    again = build_index(fixture_corpus, index, model="hash")
    assert not again.up_to_date and again.sentences > 0 and again.embedded == again.passages
    assert build_index(fixture_corpus, index, model="hash").up_to_date


def load_index_vectors(corpus: Path, tmp_path: Path) -> np.ndarray:
    s = build_index(corpus, tmp_path / "scratch", model="hash")
    store = load_index(tmp_path / "scratch").store
    assert s.passages == store.size
    return np.stack([store.dense.reconstruct(i) for i in range(store.size)])  # type: ignore[attr-defined]


def test_first_answers_on_the_shipped_index_embed_only_their_questions(shipped_index: Searcher) -> None:
    """Every gold question answered in a fresh Searcher: not one passage-side text embedded,
    and the sentences quoted are those that embedding them at question time would choose."""
    counting = CountingEncoder(shipped_index.encoder)
    fresh = Searcher(shipped_index.store, encoder=counting)
    questions = [q.question for q in load_questions(ROOT / DEFAULT_QUESTIONS)]
    with_stored = [answer(q, index=fresh) for q in questions]
    assert counting.passage_texts == []
    # Comparing with sentences embedded at question time costs ~1 s a question: a sample.
    questions, with_stored = questions[::8], with_stored[::8]
    # The same Searcher code with the stored vectors hidden: every sentence embedded now.
    class NoSentences:
        def __init__(self, store: object) -> None:
            self._store = store

        def __getattr__(self, name: str) -> object:
            return getattr(self._store, name)

        def sentence_vectors(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
            return np.zeros((len(sentences), counting.dim), np.float32), np.zeros(len(sentences), bool)

    embedding = CountingEncoder(shipped_index.encoder)
    slow = Searcher(NoSentences(shipped_index.store), encoder=embedding)  # type: ignore[arg-type]
    with_embedded = [answer(q, index=slow) for q in questions]
    assert embedding.passage_texts and all(is_prose(t) or len(t) < 40 for t in embedding.passage_texts)
    same = sum(a.text == b.text for a, b in zip(with_stored, with_embedded, strict=True))
    # float16 storage may reorder two near-equal sentences once in a while, not more.
    assert same >= len(questions) - 1, f"{len(questions) - same} of {len(questions)} answers changed"
