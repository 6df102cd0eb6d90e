"""Warm latency of retrieve() against the bare query embedding it cannot avoid, and of answer().

    python bench/bench_latency.py [--index embeddings] [--queries 220] [--json out.json]

The goal is retrieve() p50 <= 1.3 x the encoder's p50: hybrid search, fusion and twin collapse
should cost under 30% on top of embedding the query. Both are timed query by query, interleaved,
so a busy machine slows both alike; the ratio is the figure to read, not the milliseconds.
Queries are the gold questions plus slices of the corpus's own passages, all distinct.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from speechrag.answering import answer  # noqa: E402
from speechrag.evaluate import DEFAULT_QUESTIONS, load_questions  # noqa: E402
from speechrag.passage import Passage  # noqa: E402
from speechrag.searcher import get_searcher, retrieve  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def queries(index_passages: Sequence[Passage], n: int) -> list[str]:
    out = [q.question for q in load_questions(ROOT / DEFAULT_QUESTIONS)]
    for p in index_passages:
        text = p.text.replace("\n", "")
        mid = len(text) // 2
        out += [text[8:36], text[mid : mid + 26], text[-30:]]
    unique = [q for q in dict.fromkeys(out) if q.strip()]
    return unique[:n]


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=str(ROOT / "embeddings"), help="index directory")
    ap.add_argument("--queries", type=int, default=220, help="how many queries (>= 200)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    index = get_searcher(args.index)
    encoder = index.encoder
    qs = queries(index.store.all_passages, args.queries)
    if len(qs) < 200:
        sys.exit(f"only {len(qs)} distinct queries; the benchmark needs at least 200")
    for q in qs[:20]:  # warm: model loaded, jieba dictionary read, caches filled
        encoder.encode_queries([q])
        retrieve(q, 5, index=args.index)

    embed: list[float] = []
    modes: dict[str, list[float]] = {"hybrid": [], "dense": [], "keyword": []}
    for q in qs:
        embed.append(timed(partial(encoder.encode_queries, [q])))
        for mode, times in modes.items():
            times.append(timed(partial(retrieve, q, 5, mode=mode, index=args.index)))

    first = [timed(partial(answer, q, index=args.index)) for q in qs[:100]]
    # Warm answer() interleaved with retrieve() on the same question, so a busy shared machine
    # slows both alike: their p50 ratio is the figure to read (goal <= 1.5).
    warm: list[float] = []
    paired: list[float] = []
    for q in qs[:100]:
        paired.append(timed(partial(retrieve, q, 5, index=args.index)))
        warm.append(timed(partial(answer, q, index=args.index)))

    figures: dict[str, float] = {
        "queries": len(qs),
        "passages": len(index.store.all_passages),
        "embed_p50_ms": statistics.median(embed),
        "embed_p95_ms": percentile(embed, 0.95),
        **{f"retrieve_{m}_p50_ms": statistics.median(t) for m, t in modes.items()},
        **{f"retrieve_{m}_p95_ms": percentile(t, 0.95) for m, t in modes.items()},
        "answer_first_p50_ms": statistics.median(first),
        "answer_warm_p50_ms": statistics.median(warm),
        "answer_retrieve_ratio_p50": statistics.median(warm) / statistics.median(paired),
    }
    figures["ratio_p50"] = figures["retrieve_hybrid_p50_ms"] / figures["embed_p50_ms"]
    figures["ratio_p95"] = figures["retrieve_hybrid_p95_ms"] / figures["embed_p95_ms"]
    per_query = [r / e for r, e in zip(modes["hybrid"], embed, strict=True)]
    figures["ratio_per_query_p50"] = statistics.median(per_query)

    print(f"{len(qs)} queries, {len(index.store.all_passages)} passages, encoder {index.encoder_name}")
    print(f"{'':28}{'p50 ms':>9}{'p95 ms':>9}")
    print(f"{'query embedding':28}{figures['embed_p50_ms']:9.2f}{figures['embed_p95_ms']:9.2f}")
    for m in modes:
        print(f"{'retrieve() ' + m:28}{figures[f'retrieve_{m}_p50_ms']:9.2f}"
              f"{figures[f'retrieve_{m}_p95_ms']:9.2f}")
    print(f"retrieve(hybrid) / embedding: p50 {figures['ratio_p50']:.3f}, "
          f"p95 {figures['ratio_p95']:.3f}, per-query median {figures['ratio_per_query_p50']:.3f} "
          f"(goal p50 <= 1.3)")
    print(f"answer() p50: {figures['answer_first_p50_ms']:.1f} ms first time a passage is quoted, "
          f"{figures['answer_warm_p50_ms']:.1f} ms warm (100 questions)")
    print(f"answer() / retrieve() warm, interleaved: p50 {figures['answer_retrieve_ratio_p50']:.2f} (goal <= 1.5)")
    if args.json:
        data = {"encoder": index.encoder_name, **figures}
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
