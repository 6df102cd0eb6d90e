"""Time to first streamed chunk through /v1/chat/completions against a direct answer() call.

    python bench/bench_openai.py [--index embeddings] [--questions 30] [--json out.json]

A uvicorn server on a free loopback port (a thread of this process) serves the OpenAI routes
over the index; each question is asked directly (answer()) and through the API with
``stream: true``, interleaved so a busy machine slows both alike. Every question is asked
once before timing, so both paths meet the same warm caches. Printed per path: p50 and p90
of answer() alone; of the first SSE chunk (the role) and the first content chunk; and of the
whole stream to ``data: [DONE]``. The API computes the whole answer before its first chunk
(so a bad question still gets a 4xx, not a broken stream): the first chunk's time is
answer() plus the HTTP and thread overhead, which is the figure to read.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from speechrag.answer import answer  # noqa: E402
from speechrag.evaluate import DEFAULT_QUESTIONS, load_questions  # noqa: E402
from speechrag.openai_api import mount_openai  # noqa: E402
from speechrag.retrieval import get_index  # noqa: E402
from speechrag.serving import IndexService  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream_times(client: httpx.Client, url: str, question: str) -> tuple[float, float, float]:
    """Seconds to the first SSE chunk, to the first content chunk, and to [DONE]."""
    body = {"model": "speechrag", "messages": [{"role": "user", "content": question}], "stream": True}
    t0 = time.perf_counter()
    first = content = 0.0
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            now = time.perf_counter() - t0
            first = first or now
            if line == "data: [DONE]":
                return first, content, now
            delta = json.loads(line[6:])["choices"][0]["delta"] if not content else {}
            if delta.get("content"):
                content = now
    raise RuntimeError("stream ended without [DONE]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=str(ROOT / "embeddings"))
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    index = get_index(args.index)
    questions = [q.question for q in load_questions(ROOT / DEFAULT_QUESTIONS)][: args.questions]
    app = FastAPI()
    mount_openai(app, IndexService(index).ask)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.config.port}"

    direct: list[float] = []
    first: list[float] = []
    content: list[float] = []
    done: list[float] = []
    with httpx.Client(timeout=120) as client:
        for q in questions:  # warm-up: encoder loaded, sentence vectors cached
            answer(q, index=index)
            stream_times(client, url, q)
        for q in questions:
            t = time.perf_counter()
            answer(q, index=index)
            direct.append(time.perf_counter() - t)
            f, c, d = stream_times(client, url, q)
            first.append(f)
            content.append(c)
            done.append(d)
    server.should_exit = True
    thread.join(10)

    rows: dict[str, list[float]] = {
        "answer() direct": direct,
        "API first chunk (role)": first,
        "API first content chunk": content,
        "API whole stream ([DONE])": done,
    }
    print(f"{len(questions)} questions, index {index.root} ({len(index.passages)} passages), "
          f"encoder {index.encoder_name}")
    print(f"{'path':<28} {'p50 ms':>8} {'p90 ms':>8} {'mean ms':>8}")
    for name, values in rows.items():
        print(f"{name:<28} {1000 * statistics.median(values):8.1f} {1000 * percentile(values, 0.9):8.1f} "
              f"{1000 * statistics.fmean(values):8.1f}")
    overhead = [f - d for f, d in zip(first, direct, strict=True)]
    print(f"{'first chunk - answer()':<28} {1000 * statistics.median(overhead):8.1f} "
          f"{1000 * percentile(overhead, 0.9):8.1f} {1000 * statistics.fmean(overhead):8.1f}")
    if args.json:
        out: dict[str, Any] = {name: {"p50": statistics.median(v), "p90": percentile(v, 0.9)}
                               for name, v in rows.items()}
        out["questions"] = len(questions)
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
