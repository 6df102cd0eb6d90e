"""RSS of the library alone under repeated answer() calls, to tell its memory from the server's.

    python bench/answer_memory.py [--calls 3000]

Warms up on every eval question, then prints the RSS in MB after each tenth of the calls.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import psutil

import speechrag

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3000)
    args = ap.parse_args()
    lines = (ROOT / "eval" / "questions.jsonl").read_text("utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    proc = psutil.Process()
    for q in questions:
        speechrag.answer(q)
    gc.collect()
    start = proc.memory_info().rss
    marks = []
    t = time.perf_counter()
    for n in range(1, args.calls + 1):
        speechrag.answer(questions[n % len(questions)])
        if n % max(1, args.calls // 10) == 0:
            marks.append(proc.memory_info().rss / 2**20)
    print(f"{args.calls} answer() calls in {time.perf_counter() - t:.0f} s; RSS {start / 2**20:.1f} MB after "
          f"warm-up, by tenth: {' '.join(f'{m:.1f}' for m in marks)}")


if __name__ == "__main__":
    main()
