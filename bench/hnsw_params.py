"""HNSW recall@10 against exact search for a few build/search parameters, on bench/synth vectors.

    python bench/hnsw_params.py --size 1000000 --base DIR [--m 32] [--ef-construction 200]

``--base`` is the prepared folder `bench/scale.py --base DIR` writes (sentence and query vectors).
Prints one line: build seconds, then recall@10 and batched ms/query at efSearch 96/200/400/800.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    base = synth.Base.load(args.base)
    ids, _ = synth.layout(base, args.size, args.seed)
    x = synth.vectors(base, ids, args.seed)
    q = np.ascontiguousarray(base.query_vectors, dtype=np.float32)
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    _, truth = flat.search(q, 10)

    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], args.m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.ef_construction
    hnsw.add(x)
    out = [f"{args.size} M={args.m} efConstruction={args.ef_construction} build {time.perf_counter() - t:.0f}s"]
    for ef in (96, 200, 400, 800):
        hnsw.hnsw.efSearch = ef
        t = time.perf_counter()
        _, found = hnsw.search(q, 10)
        ms = (time.perf_counter() - t) * 1000 / len(q)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.tolist(), truth.tolist(), strict=True)])
        out.append(f"ef{ef}={recall:.3f} ({ms:.2f} ms)")
    print("  ".join(out))


if __name__ == "__main__":
    main()
