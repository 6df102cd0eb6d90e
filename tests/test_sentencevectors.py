"""Build-time sentence vectors: what is stored, how it is found, and that a first answer on an
index that has them embeds nothing but its question."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import speechrag
from conftest import CountingEncoder
from speechrag import Searcher, answer, build_index, load_index
from speechrag.evaluate import DEFAULT_QUESTIONS, load_questions
from speechrag.sentencevectors import SentenceVectors, quotable
from speechrag.text import is_prose, sentence_spans

ROOT = Path(__file__).resolve().parents[1]


def test_quotable_is_every_sentence_answers_split_off_once() -> None:
    texts = ["一是抓落实。二是抓督查！“三是”", "一是抓落实。另起一句？", "短", "这一段只有一句话。", "没有句号的标题"]
    quoted = quotable(texts)
    assert list(quoted) == ["一是抓落实。", "二是抓督查！", "“三是”", "另起一句？", "这一段只有一句话。"]
    # A passage's only sentence takes its vector (row 3); a title is never quoted, so not stored.
    assert quoted["这一段只有一句话。"] == 3 and [quoted[s] for s in list(quoted)[:4]] == [None] * 4
    # The same split as answering's (`select_sentences`), so every candidate can be found.
    for text in texts:
        if is_prose(text):
            for a, b in sentence_spans(text, min_chars=2):
                assert text[a:b] in quoted
    # A sentence that is one passage's only one and another's part: the passage's vector.
    assert quotable(["一是抓落实。另起一句？", "一是抓落实。"])["一是抓落实。"] == 1


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
    # The fixture's passages are one sentence each: a speech of longer paragraphs beside them.
    corpus = tmp_path / "corpus"
    shutil.copytree(fixture_corpus, corpus)
    (corpus / "在全市安全生产工作会议上的讲话.txt").write_text(
        "在全市安全生产工作会议上的讲话\n\n今年全市安全生产形势总体平稳。事故总量下降百分之十二，较大事故下降两起。\n\n"
        "下一步要抓好三件事。一是压实责任！二是排查隐患；三是强化执法。\n", encoding="utf-8")
    build_index(corpus, tmp_path / "both", model=tiny_index.encoder)
    store = load_index(tmp_path / "both").store
    texts = [p.text for p in store.passages(range(store.size))]
    quoted = quotable(texts)
    _, found = store.sentence_vectors(list(quoted))
    assert found.all() and len(found) >= store.size
    # The stored vector is the encoder's passage-side vector of that sentence, or, for a
    # passage's only sentence, the passage's own (embedded once, for both).
    enc = tiny_index.encoder
    sample = [s for s, row in quoted.items() if row is None][::3]
    alone = {s: row for s, row in quoted.items() if row is not None}
    assert sample and alone
    got, _ = store.sentence_vectors(sample)
    np.testing.assert_allclose(got, enc.encode_passages(sample), atol=2e-3)
    got, _ = store.sentence_vectors(list(alone))
    np.testing.assert_allclose(got, enc.encode_passages([texts[row] for row in alone.values()]), atol=2e-3)
    # Precomputed passage vectors: no sentence vectors, and answers still work by embedding.
    texts = [p.text for p in tiny_index.store.passages(range(tiny_index.store.size))]
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
    # Only they were missing: added to the live generation, the corpus not read again.
    assert not again.up_to_date and again.complete and again.sentences > 0 and again.embedded == 0
    assert "read" not in again.phases and load_index(index).store.manifest["sentences"] is not None
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
