"""How a command shows progress: bars on a terminal, a log line at least every LOG_EVERY seconds
elsewhere, JSON lines for programs; and the build's two milestones (answerable, complete)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from speechrag import progress as progress_mod
from speechrag.progress import LOG_EVERY, Reporter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(progress_mod.time, "monotonic", c)
    return c


def test_a_log_gets_a_line_every_interval_with_rate_and_time_left(clock: Clock) -> None:
    out = io.StringIO()
    r = Reporter(out=out)
    assert r.style == "log"  # not a terminal
    step = r.stage("embedding", "passage")
    step(0, 1000)
    clock.now += 5
    step(100, 1000)
    assert out.getvalue() == ""  # a short stage leaves the log alone
    clock.now += LOG_EVERY
    step(400, 1000)
    line = out.getvalue().strip()
    assert line.startswith("embedding: 400/1,000 passages (40%)"), line
    # 400 passages in 35 s: 11.4 a second, 600 left: 52 s.
    assert "11.4 passages/s" in line and "0m52s left" in line, line
    clock.now += 1
    step(1000, 1000)  # the end of a stage that has shown a line is shown
    assert out.getvalue().count("\n") == 2 and "1,000/1,000" in out.getvalue()
    # The interval counts across stages: a new stage after a long one speaks after LOG_EVERY.
    other = r.stage("sentences", "sentence")
    other(0, 50)
    clock.now += LOG_EVERY
    other(10, 50)
    assert out.getvalue().count("\n") == 3 and "sentences: 10/50" in out.getvalue()


def test_json_progress_is_one_object_a_line_with_events(clock: Clock) -> None:
    out = io.StringIO()
    r = Reporter("json", out=out)
    step = r.stage("reading", "file")
    step(0, 3)
    step(1, 3)  # within JSON_EVERY of the first: not shown
    clock.now += 2
    step(2, 3)
    step(3, 3)
    r.event("answerable", "ignored in JSON", seconds=1.5, generation="gen-x")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [row.get("done") for row in rows] == [0, 2, 3, None]
    assert rows[1]["phase"] == "reading" and rows[1]["total"] == 3 and rows[1]["eta_seconds"] == 1.0
    assert rows[-1] == {"event": "answerable", "seconds": 1.5, "generation": "gen-x"}


def test_an_event_speaks_in_a_log_only_after_a_while(clock: Clock) -> None:
    out = io.StringIO()
    r = Reporter(out=out)
    r.event("answerable", "answers from now on")
    assert out.getvalue() == ""  # a build of seconds says it in its summary line
    clock.now += 10
    r.event("answerable", "answers from now on")
    r.event("complete", None)  # for programs only
    assert out.getvalue() == "answers from now on\n"


def test_build_json_progress_and_no_wait(fixture_corpus: Path, tmp_path: Path) -> None:
    """The real command in a process of its own: progress objects on stderr, the summary on
    stdout; --no-wait-sentences returns an index that answers, the next build completes it."""
    index = tmp_path / "ix"
    cmd = [sys.executable, "-m", "speechrag.cli", "build", "--corpus", str(fixture_corpus), "--index", str(index),
           "--model", "hash", "--json-progress", "--no-wait-sentences"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    phases = {row["phase"] for row in rows if "phase" in row}
    assert {"reading", "embedding"} <= phases and "sentences" not in phases, rows
    events = [row for row in rows if "event" in row]
    assert [e["event"] for e in events] == ["answerable"] and events[0]["complete"] is False
    assert "sentence vectors not added yet" in proc.stdout
    from speechrag import load_index

    assert load_index(index).retrieve("计生家庭保险", k=1)
    proc = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=120)  # waits for them
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert [row["event"] for row in rows if "event" in row] == ["complete"]
    assert load_index(index).store.manifest["sentences"] is not None
