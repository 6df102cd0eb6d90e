"""Milvus Lite at 10k-100k synthetic passages: publish rate and search latency per index type.

    python bench/bench_milvus.py [--sizes 10000 100000] [--index HNSW FLAT] [--queries 200]

Passages are bench/synth.py's (2-4 real sentences of the shipped corpus each, so jieba and BM25
see real Chinese); their vectors are random unit vectors near a random "sentence" vector, which
is all a search's cost depends on (no encoder runs). Each size is published into a fresh
``.db`` in a temp folder with `publish_milvus`, then searched through `MilvusStore`, one query
at a time: dense (k=10), dense with a speech filter, keyword (k=10). Prints one line per
(size, index type): publish seconds and passages/s (insert + flush + index + load + checks),
then p50/p95 milliseconds per search.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth

from speechrag import read_corpus
from speechrag.stores.base import Filter
from speechrag.stores.milvus import open_milvus, publish_milvus, release_lite

ROOT = Path(__file__).resolve().parents[1]
DIM = 384


def _base(seed: int) -> synth.Base:
    report = read_corpus(ROOT / "corpus")
    sentences, home, first, count = synth.sentence_table(report.passages)
    rng = np.random.default_rng(seed)
    sv = rng.standard_normal((len(sentences), DIM)).astype(np.float32)
    sv /= np.linalg.norm(sv, axis=1, keepdims=True)
    queries = synth.make_queries(sentences, [], 200, seed)
    return synth.Base(tuple(report.passages), tuple(sentences), home, first, count, sv, tuple(queries),
                      np.zeros((0, DIM), np.float32))


def _ms(times: list[float]) -> str:
    a = np.array(times) * 1000
    return f"{np.percentile(a, 50):7.1f} {np.percentile(a, 95):7.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--index", nargs="+", default=["HNSW", "FLAT"])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    base = _base(args.seed)
    report = read_corpus(ROOT / "corpus")
    speech = report.speeches[0].id
    print(f"{'passages':>9} {'index':>8} {'publish s':>10} {'pass/s':>8} | dense p50/p95 ms | "
          "filtered p50/p95 | keyword p50/p95")
    for n in args.sizes:
        passages, vectors = synth.make_passages(base, n, args.seed)
        rng = np.random.default_rng(args.seed + 9)
        picks = rng.integers(n, size=args.queries)
        qv = vectors[picks] + rng.standard_normal((args.queries, DIM)).astype(np.float32) * 0.02
        qv /= np.linalg.norm(qv, axis=1, keepdims=True)
        texts = list(base.queries[: args.queries])
        manifest = {"encoder": {"name": "synthetic", "fingerprint": "synthetic", "dim": DIM},
                    "corpus_fingerprint": f"synth-{n}-{args.seed}"}
        for kind in args.index:
            with tempfile.TemporaryDirectory() as tmp:
                uri = str(Path(tmp) / "bench.db")
                t = time.perf_counter()
                publish_milvus(uri, passages, report.speeches, vectors, manifest, index_type=kind)
                publish = time.perf_counter() - t
                store = open_milvus(uri)
                dense, filtered, keyword = [], [], []
                where = Filter(speeches=frozenset({speech}))
                for i in range(args.queries):
                    t = time.perf_counter()
                    store.search_dense(qv[i], 10)
                    dense.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    store.search_dense(qv[i], 10, where)
                    filtered.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    store.search_keyword(texts[i % len(texts)], 10)
                    keyword.append(time.perf_counter() - t)
                store.close()
                release_lite(uri)
            print(f"{n:>9} {kind:>8} {publish:>10.1f} {n / publish:>8.0f} | {_ms(dense)} | {_ms(filtered)} | "
                  f"{_ms(keyword)}", flush=True)


if __name__ == "__main__":
    main()
