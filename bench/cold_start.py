"""Cold start: `python app.py` on the shipped corpus, to the page served and to the first answer.

    python bench/cold_start.py [--runs 5] [--question 计生家庭保险理赔金额是多少？] [--json out.json]
                               [--checkout OTHER]   # also time OTHER/app.py, run for run, alternating

Each run starts a fresh `python app.py` on a free port and polls from a separate process: the
page is "served" when ``GET /`` answers 200, and the first answer is the first
``POST /v1/chat/completions`` that returns one (it is sent as soon as the page is served, so
everything the server defers until after listening is counted against it). The index is up to
date, as after the README's run command: the build check is part of every run. Figures are
medians over the runs; the OS page cache is warm after the first, as it is for a user who
restarts the server.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


def _ask(url: str, question: str) -> str:
    body = json.dumps({"model": "speechrag", "messages": [{"role": "user", "content": question}]}).encode()
    req = urllib.request.Request(f"{url}/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return str(json.loads(r.read())["choices"][0]["message"]["content"])


def one_run(question: str, checkout: Path = ROOT) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The checkout's own sources first, ahead of any installed speechrag.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(checkout / "src")}
    started = time.perf_counter()
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 -- closed in finally; a file, not a pipe nobody drains
    proc = subprocess.Popen([sys.executable, str(checkout / "app.py"), "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        while _get(url) != 200:
            if proc.poll() is not None:
                log.seek(0)
                err = log.read()[-2000:]
                raise SystemExit(f"app.py exited {proc.returncode}: {err}")
            if time.perf_counter() - started > 120:
                raise SystemExit("app.py did not serve the page within 120 s")
            time.sleep(0.02)
        page = time.perf_counter() - started
        answer = _ask(url, question)
        first = time.perf_counter() - started
        if "[1]" not in answer:
            raise SystemExit(f"the first answer cites nothing: {answer[:200]!r}")
        asked = time.perf_counter()
        _ask(url, question + "？")
        second = time.perf_counter() - asked
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    return {"page_s": page, "first_answer_s": first, "next_answer_s": second}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--question", default="计生家庭意外伤害保险的理赔金额是多少？")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--checkout", type=Path, default=None,
                    help="another checkout (e.g. a git worktree of an older commit) to time in the same run")
    args = ap.parse_args()
    checkouts = [ROOT, *([args.checkout.resolve()] if args.checkout else [])]
    runs: dict[Path, list[dict[str, float]]] = {c: [] for c in checkouts}
    for _ in range(args.runs):
        for c in checkouts:  # alternating, so a busy spell slows both alike
            runs[c].append(one_run(args.question, c))
    out = {}
    for c, rs in runs.items():
        figures = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        out[str(c)] = {"runs": rs, "median": figures}
        print(f"{c}/app.py, {args.runs} runs (median): page served {figures['page_s']:.2f}s, "
              f"first answer {figures['first_answer_s']:.2f}s after start; a second answer "
              f"{figures['next_answer_s'] * 1000:.0f} ms")
        for i, r in enumerate(rs, 1):
            print(f"    run {i}: page {r['page_s']:.2f}s, first answer {r['first_answer_s']:.2f}s, "
                  f"next {r['next_answer_s'] * 1000:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
