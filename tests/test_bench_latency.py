"""Smoke test of the latency benchmark (bench/bench_latency.py) at a tiny size, so it cannot rot.

Runs the real thing end to end over the hash-encoded tiny index: the cold and warm phases in
fresh processes, and a real chat server driven by light SSE sessions at two levels. Starting
processes and a server takes most of a minute, so it is in the slow tier. No timing is asserted:
the figures are the benchmark's output, not a test's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from speechrag import Searcher

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_latency_runs_end_to_end(tiny_index: Searcher, tmp_path: Path) -> None:
    out = tmp_path / "latency.json"
    cmd = [sys.executable, str(ROOT / "bench" / "bench_latency.py"), "--index", str(tiny_index.store.root),
           "--limit", "8", "--rounds", "1", "--levels", "1", "3", "--duration", "2", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    print(proc.stdout)
    figures = json.loads(out.read_text("utf-8"))

    cold_warm = figures["in_process"]
    assert cold_warm["questions"] == 8 and cold_warm["encoder"] == "hash"
    for phase in ("isolated", "cold", "warm"):
        for kind in ("retrieve_ms", "answer_ms"):
            assert cold_warm[phase][kind]["n"] == 8  # each question once per phase and process
            assert 0 < cold_warm[phase][kind]["p50"] <= cold_warm[phase][kind]["max"]
        assert cold_warm[phase]["answer_p50_over_retrieve_p50"] > 0

    server = figures["server"]["this"]
    assert set(server) == {"1", "3"}
    for level in server.values():
        assert level["answers"] > 0 and level["errors"] == 0 and level["queue_full"] == 0
        assert level["latency_ms"]["p50"] <= level["latency_ms"]["p99"]
        assert level["server_cpu_ms_per_answer"] > 0
    for header in ("isolated answer()", "cold answer()", "warm retrieve()", "answers/s"):
        assert header in proc.stdout


@pytest.mark.slow
def test_sse_session_gets_the_answer_gradio_client_gets(tiny_index: Searcher) -> None:
    # The light client the throughput figures come from must ask what gradio_client asks and
    # read the same answer back; otherwise its answers/s would measure something else.
    from gradio_client import Client

    sys.path.insert(0, str(ROOT / "bench"))
    from load import HTTPX, Server, SseSession

    server = Server(tiny_index.store.root)
    try:
        light = SseSession(server.url)
        reference = Client(server.url, verbose=False, httpx_kwargs=HTTPX)
        for question in ("计划生育工作的重点是什么？", "How is the insurance paid?", "？？？"):
            got, want = light.predict(question), reference.predict(question, api_name="/ask")
            assert isinstance(got, dict) and got["text"]
            assert got == want, question
        light.close()
    finally:
        server.close()
