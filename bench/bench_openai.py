"""Time to first streamed chunk through /v1/chat/completions, against the page's own /ask and a
direct answer(), all on one real `speechrag serve` server.

    python bench/bench_openai.py [--index embeddings] [--questions 30] [--json out.json]

`ui.serve` (what `speechrag serve` runs: the Gradio page with /v1 mounted beside it, one shared
IndexService) listens on a free loopback port in this process; each question is asked directly
(`IndexService.ask`, the lock included), through /v1 with ``stream: true``, and through the
page's /ask over Gradio's REST protocol (POST /gradio_api/call/ask, then its event stream to
``event: complete``), interleaved so a busy machine slows all alike. Every question is asked
once before timing, so all paths meet the same warm caches. Printed per path: p50, p90 and
mean. The API computes the whole answer before its first chunk (so a bad question still gets
a 4xx, not a broken stream): the first chunk's time is answer() plus the HTTP and thread
overhead, which is the figure to read.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402

from speechrag.evaluate import DEFAULT_QUESTIONS, load_questions  # noqa: E402
from speechrag.serving import IndexService  # noqa: E402
from speechrag.ui import serve  # noqa: E402


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


def ask_time(client: httpx.Client, url: str, question: str) -> float:
    """Seconds to the page's /ask result: Gradio's REST call, then its event stream's
    ``complete`` event (the answer arrives whole, in that one event)."""
    t0 = time.perf_counter()
    r = client.post(f"{url}/gradio_api/call/ask", json={"data": [question, "hybrid", 5, None, None]})
    r.raise_for_status()
    with client.stream("GET", f"{url}/gradio_api/call/ask/{r.json()['event_id']}") as events:
        for line in events.iter_lines():
            if line.startswith("event: error"):
                raise RuntimeError(f"/ask failed for {question!r}")
            if line.startswith("event: complete"):
                return time.perf_counter() - t0
    raise RuntimeError("/ask stream ended without its result")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=str(ROOT / "embeddings"))
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    service = IndexService(args.index)
    searcher = service.searcher
    questions = [q.question for q in load_questions(ROOT / DEFAULT_QUESTIONS)][: args.questions]
    demo = serve(service, port=free_port(), block=False)
    url = str(demo.local_url).rstrip("/")

    rows: dict[str, list[float]] = {name: [] for name in (
        "answer() direct", "/v1 first chunk (role)", "/v1 first content chunk", "/v1 whole stream ([DONE])",
        "/ask result (Gradio REST)")}
    try:
        with httpx.Client(timeout=120) as client:
            for q in questions:  # warm-up: encoder loaded, sentence vectors cached
                service.ask(q)
                stream_times(client, url, q)
                ask_time(client, url, q)
            for q in questions:
                t = time.perf_counter()
                service.ask(q)
                rows["answer() direct"].append(time.perf_counter() - t)
                for name, value in zip(list(rows)[1:4], stream_times(client, url, q), strict=True):
                    rows[name].append(value)
                rows["/ask result (Gradio REST)"].append(ask_time(client, url, q))
    finally:
        demo.close()

    print(f"{len(questions)} questions, index {searcher.location} ({searcher.store.size} passages), "
          f"encoder {searcher.encoder_name}, served by ui.serve")
    print(f"{'path':<28} {'p50 ms':>8} {'p90 ms':>8} {'mean ms':>8}")
    overhead = [f - d for f, d in zip(rows["/v1 first chunk (role)"], rows["answer() direct"], strict=True)]
    for name, values in [*rows.items(), ("/v1 first chunk - answer()", overhead)]:
        print(f"{name:<28} {1000 * statistics.median(values):8.1f} {1000 * percentile(values, 0.9):8.1f} "
              f"{1000 * statistics.fmean(values):8.1f}")
    if args.json:
        out: dict[str, Any] = {name: {"p50": statistics.median(v), "p90": percentile(v, 0.9)}
                               for name, v in rows.items()}
        out["questions"] = len(questions)
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
