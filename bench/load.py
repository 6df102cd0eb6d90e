"""Load driver: concurrent gradio_client sessions against the chat server's `/ask` endpoint.

    python bench/load.py                         # serve ./embeddings, 20 sessions for 60 s
    python bench/load.py --duration 600          # the 10-minute run
    python bench/load.py --url http://127.0.0.1:7860/ --pid 1234   # an already running server

Without ``--url`` it starts the server itself (`speechrag.ui.serve` over ``--index`` in a child
process, on a free loopback port) and so can follow the server's RSS. Phases:

1. warm-up: every question once, so lazy loads and the answer caches are filled;
2. load: ``--clients`` sessions, each asking the corpus questions in turn, until
   ``--duration`` seconds or ``--max-requests`` per session (whichever first);
3. overload: a burst of ``--burst`` simultaneous requests, more than the queue's max_size plus
   the concurrency limit, to count queue-full rejections and time how fast they come back;
4. a last request, to show the server still answers after the burst.

Prints p50/p95/p99 latency, errors, queue-full rejections (and time to rejection), and the
server's RSS after warm-up and at the end; ``--json PATH`` also writes every figure.
Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FALLBACK_QUESTIONS = ["计划生育工作的重点是什么？", "商丘今年人口出生率要控制在多少以内？", "如何加强基层基础工作？"]

# httpx's default 5 s would turn a slow queue join on a busy machine into a client-side error.
HTTPX = {"timeout": 120.0}

SERVER = r"""
import sys
from speechrag import load_index
from speechrag.ui import serve
serve(load_index(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), block=True, delay=0)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load {url}: only loopback addresses (127.0.0.1, localhost, ::1)")


def load_questions(path: Path) -> list[str]:
    if not path.is_file():
        return FALLBACK_QUESTIONS
    return [json.loads(line)["question"] for line in path.read_text("utf-8").splitlines() if line.strip()]


def rss(pid: int | None) -> int | None:
    if pid is None:
        return None
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def rss_by_tenth(samples: list[tuple[float, int]], elapsed: float) -> list[int]:
    """The last RSS sample in each tenth of the run."""
    out: list[int] = []
    for tenth in range(1, 11):
        upto = [r for t, r in samples if t <= elapsed * tenth / 10]
        if upto:
            out.append(upto[-1])
    return out


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    a = np.asarray(values) * 1e3
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def is_queue_full(exc: BaseException) -> bool:
    return type(exc).__name__ == "QueueError" or "Queue is full" in str(exc)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rejections: list[float] = field(default_factory=list)  # seconds from submit to rejection
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ask(self, client: Any, question: str) -> None:
        t = time.perf_counter()
        try:
            result = client.predict(question, api_name="/ask")
            if not isinstance(result, dict) or not isinstance(result.get("text"), str):
                raise ValueError(f"malformed result {str(result)[:100]}")
        except Exception as exc:
            with self.lock:
                if is_queue_full(exc):
                    self.rejections.append(time.perf_counter() - t)
                else:
                    self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        with self.lock:
            self.latencies.append(time.perf_counter() - t)


class SseSession:
    """One chat session speaking Gradio's queue protocol itself: join the queue, then read the
    session's event stream to the answer's ``process_completed``. These are the requests
    gradio_client sends (and the page's JavaScript), at a fraction of its CPU: gradio_client
    spends ~70 ms of CPU per answer on its own threads and futures, more than the server's
    ~47 ms, so on a 2-core machine 20 of its sessions measure the client as much as the server.
    Has gradio_client's ``predict(question, api_name=...)``, so `Tally.ask` drives either."""

    def __init__(self, url: str, *, api_name: str = "ask") -> None:
        import httpx

        config = httpx.get(url + "config", timeout=30).json()
        self.fn_index = next(d for d in config["dependencies"] if d.get("api_name") == api_name)["id"]
        self.http = httpx.Client(base_url=url, **HTTPX)
        self.session_hash = os.urandom(8).hex()

    def predict(self, question: str, api_name: str = "/ask") -> Any:
        body = {"data": [question, "hybrid", 5, None, None], "fn_index": self.fn_index,
                "session_hash": self.session_hash, "event_data": None}
        joined = self.http.post("gradio_api/queue/join", json=body)
        if joined.status_code == 503:
            raise RuntimeError(f"Queue is full: {joined.text[:200]}")
        joined.raise_for_status()
        event_id = joined.json()["event_id"]
        with self.http.stream("GET", "gradio_api/queue/data", params={"session_hash": self.session_hash}) as events:
            events.raise_for_status()
            for line in events.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "unexpected_error":
                    raise RuntimeError(f"server error: {str(msg.get('message'))[:200]}")
                if msg.get("msg") == "process_completed" and msg.get("event_id") == event_id:
                    if not msg.get("success"):
                        raise RuntimeError(f"answer failed: {str(msg.get('output'))[:200]}")
                    return msg["output"]["data"][0]
        raise RuntimeError("the event stream closed before the answer")

    def close(self) -> None:
        self.http.close()


class Server:
    """The chat server in a child process on a free loopback port. ``src`` (a checkout's
    ``src`` folder) serves that tree's speechrag instead of the installed one, to compare two
    versions on the same machine in one run."""

    def __init__(self, index: Path, timeout: float = 180, src: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
        # The server's stderr goes to a file, not a pipe: nobody reads a pipe while the load
        # runs, and once 64 KB of logged tracebacks fill it the server blocks on its next write.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server; never closed early)
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(index), str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}: {self.stderr()[-2000:]}")
            try:
                if httpx.get(self.url + "config", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.close()
        raise SystemExit(f"server did not start within {timeout:.0f}s")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        """What the server has written to stderr so far."""
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


def closed_loop(sessions: list[Any], questions: list[str], tally: Tally, duration: float,
                max_requests: int) -> tuple[float, int]:
    """Each session asks the next question as soon as its last is answered, until ``duration``
    seconds or ``max_requests`` each; (seconds elapsed, sessions still hung at the end)."""
    started = time.perf_counter()

    def session(n: int) -> None:
        for i in range(max_requests):
            if time.perf_counter() - started > duration:
                return
            tally.ask(sessions[n], questions[(n * 7 + i) % len(questions)])

    workers = [threading.Thread(target=session, args=(n,), daemon=True) for n in range(len(sessions))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=duration + 300)  # one request may be in flight when time is up
    return time.perf_counter() - started, sum(w.is_alive() for w in workers)


def run(url: str, pid: int | None, questions: list[str], clients: int, duration: float,
        max_requests: int, burst: int, log: Any = print) -> dict[str, Any]:
    from gradio_client import Client

    check_loopback(url)
    sessions = [Client(url, verbose=False, httpx_kwargs=HTTPX) for _ in range(clients)]
    report: dict[str, Any] = {"url": url, "clients": clients, "duration_limit_s": duration,
                              "max_requests_per_client": max_requests, "questions": len(questions)}

    # 1. warm-up: every question once, spread over the sessions.
    warm = Tally()
    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda i: warm.ask(sessions[i % clients], questions[i]), range(len(questions))))
    report["warmup"] = {"requests": len(questions), "errors": warm.errors, "seconds": time.perf_counter() - t}
    rss_start = rss(pid)
    log(f"warm-up: {len(questions)} questions in {report['warmup']['seconds']:.1f}s, "
        f"{len(warm.errors)} errors; server RSS {fmt_mb(rss_start)}")

    # 2. load: each session asks the questions in turn, bounded in count and in time.
    load = Tally()
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    started = time.perf_counter()

    def sample() -> None:
        while not stop.wait(1.0):
            if (r := rss(pid)) is not None:
                samples.append((time.perf_counter() - started, r))

    monitor = threading.Thread(target=sample, daemon=True)
    monitor.start()
    elapsed, hung = closed_loop(sessions, questions, load, duration, max_requests)
    stop.set()
    monitor.join(timeout=5)
    rss_end = rss(pid)
    report["load"] = {
        "seconds": elapsed,
        "requests": len(load.latencies),
        "throughput_per_s": len(load.latencies) / elapsed if elapsed else 0.0,
        "latency_ms": percentiles(load.latencies),
        "errors": len(load.errors),
        "error_samples": load.errors[:5],
        "queue_full": len(load.rejections),
        "hung_sessions": hung,
        "rss_start": rss_start,
        "rss_end": rss_end,
        "rss_peak": max((r for _, r in samples), default=rss_end),
        "rss_growth": (rss_end / rss_start - 1) if rss_start and rss_end else None,
        # The trend, to tell a leak (still climbing at the end) from caches filling up (flat).
        "rss_by_tenth": rss_by_tenth(samples, elapsed),
    }
    lo = report["load"]
    lat = lo["latency_ms"]
    log(f"load: {clients} sessions, {lo['requests']} requests in {elapsed:.1f}s "
        f"({lo['throughput_per_s']:.1f}/s); latency p50 {fmt_ms(lat['p50'])} p95 {fmt_ms(lat['p95'])} "
        f"p99 {fmt_ms(lat['p99'])} max {fmt_ms(lat['max'])}; errors {lo['errors']}; "
        f"queue-full {lo['queue_full']}")
    if rss_start and rss_end:
        log(f"server RSS: {fmt_mb(rss_start)} after warm-up -> {fmt_mb(rss_end)} at the end "
            f"({100 * lo['rss_growth']:+.1f}%), peak {fmt_mb(lo['rss_peak'])}")
        log("server RSS by tenth of the run (MB): " + " ".join(f"{r / 2**20:.0f}" for r in lo["rss_by_tenth"]))

    # 3. overload: more simultaneous requests than the queue holds.
    if burst:
        over = Tally()
        per = 40  # gradio_client's default worker count per Client
        burst_clients = [Client(url, verbose=False, max_workers=per, httpx_kwargs=HTTPX)
                         for _ in range(-(-burst // per))]
        jobs: list[tuple[float, Any]] = []
        ended: dict[int, float] = {}
        barrier = time.perf_counter()
        for i in range(burst):
            t0 = time.perf_counter()
            job = burst_clients[i // per].submit(questions[i % len(questions)], api_name="/ask")
            # When the job ended, not when we got round to looking at it.
            job.add_done_callback(lambda _f, i=i: ended.setdefault(i, time.perf_counter()))
            jobs.append((t0, job))
        # Probe once the queue is full (the first queue-full rejection has come back), with raw
        # joins from several threads until five come back 503 or the burst is over. Five probes
        # in a row were not enough: on a fast machine the queue frees a slot every few
        # milliseconds, and each probe took the freed slot and got 200.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            job.done() and job.exception() is not None and is_queue_full(job.exception()) for _, job in jobs
        ):
            time.sleep(0.01)
        probes = probe_rejections(url, questions, until=lambda: all(job.done() for _, job in jobs))
        for i, (t0, job) in enumerate(jobs):
            try:
                result = job.result(timeout=600)
                if not isinstance(result, dict):
                    raise ValueError("malformed result")
                over.latencies.append(ended.get(i, time.perf_counter()) - t0)
            except Exception as exc:
                if is_queue_full(exc):
                    over.rejections.append(ended.get(i, time.perf_counter()) - t0)
                else:
                    over.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        report["overload"] = {
            "burst": burst,
            "submit_seconds": time.perf_counter() - barrier,
            "accepted": len(over.latencies),
            "rejected": len(over.rejections),
            "errors": len(over.errors),
            "error_samples": over.errors[:5],
            "reject_ms": percentiles(over.rejections),
            "accepted_ms": percentiles(over.latencies),
            "probe_status": [code for code, _ in probes],
            "probes_refused": sum(code == 503 for code, _ in probes),
            "probe_reject_ms": percentiles([sec for code, sec in probes if code == 503]),
        }
        ov = report["overload"]
        log(f"overload: burst of {burst}: {ov['accepted']} answered, {ov['rejected']} rejected as queue-full "
            f"(time to rejection p50 {fmt_ms(ov['reject_ms']['p50'])}, max {fmt_ms(ov['reject_ms']['max'])}; "
            f"answered p50 {fmt_ms(ov['accepted_ms']['p50'])}), {ov['errors']} other errors")
        log(f"overload: raw POSTs during the burst: {len(ov['probe_status'])} sent, {ov['probes_refused']} "
            f"refused with HTTP 503, other statuses {sorted(set(ov['probe_status']) - {503})}, "
            f"time to 503 p50 {fmt_ms(ov['probe_reject_ms']['p50'])}, max {fmt_ms(ov['probe_reject_ms']['max'])}")

    # 4. still serving.
    after = Tally()
    after.ask(sessions[0], questions[0])
    report["after"] = {"ok": not after.errors and not after.rejections, "errors": after.errors}
    log(f"after the burst: {'answers' if report['after']['ok'] else 'FAILS: ' + str(after.errors)}")
    return report


def probe_rejections(url: str, questions: list[str], until: Any, want: int = 5,
                     most: int = 400, threads: int = 8) -> list[tuple[int, float]]:
    """(HTTP status, seconds) of raw queue joins sent while the burst fills the queue, until
    ``want`` were refused with 503, ``until()`` is true or ``most`` were sent: the server's own
    time to say 503, without gradio_client's thread pool.

    The joins come from several threads at once. One thread back to back was not enough once
    answers ran concurrently: the queue drained as fast as one client could join, and every
    join took a freed slot and got 200. An accepted join is one more queued event, so joins
    faster than the server answers fill the queue whatever the machine's speed."""
    import threading

    import httpx

    config = httpx.get(url + "config", timeout=30).json()
    dep = next(d for d in config["dependencies"] if d.get("api_name") == "ask")
    out: list[tuple[int, float]] = []
    lock = threading.Lock()

    def enough() -> bool:
        with lock:
            return len(out) >= most or sum(code == 503 for code, _ in out) >= want

    def join_until_enough(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            http.get("config")  # open the connection first, so the timing is the request alone
            i = k
            while not enough() and not until():
                body = {"data": [questions[i % len(questions)], "hybrid", 5, None, None],
                        "fn_index": dep["id"], "session_hash": os.urandom(8).hex(), "event_data": None}
                t = time.perf_counter()
                r = http.post("gradio_api/queue/join", json=body)
                with lock:
                    out.append((r.status_code, time.perf_counter() - t))
                i += threads

    workers = [threading.Thread(target=join_until_enough, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return out


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"


def fmt_mb(v: int | None) -> str:
    return "-" if v is None else f"{v / 2**20:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="an already running server (loopback only); default: start one")
    ap.add_argument("--pid", type=int, help="that server's process id, to follow its RSS")
    ap.add_argument("--index", type=Path, default=ROOT / "embeddings", help="index to serve (default: %(default)s)")
    ap.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    ap.add_argument("--limit-questions", type=int, default=0,
                    help="use only the first N questions (shorter warm-up); 0: all")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load (default: %(default)s)")
    ap.add_argument("--max-requests", type=int, default=100_000, help="per session (default: %(default)s)")
    ap.add_argument("--burst", type=int, default=160,
                    help="simultaneous requests in the overload phase; 0 skips it (default: %(default)s)")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= 200 or args.duration <= 0 or not 0 <= args.burst <= 1000:
        ap.error("need 1 <= --clients <= 200, --duration > 0 and 0 <= --burst <= 1000")
    questions = load_questions(args.questions)
    if args.limit_questions > 0:
        questions = questions[: args.limit_questions]
    server = None
    if args.url:
        url, pid = args.url.rstrip("/") + "/", args.pid
    else:
        print(f"starting the server over {args.index} ...", flush=True)
        server = Server(args.index)
        url, pid = server.url, server.pid
    try:
        report = run(url, pid, questions, args.clients, args.duration, args.max_requests, args.burst,
                     log=lambda s: print(s, flush=True))
    finally:
        if server is not None:
            server.close()
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    ok = report["load"]["errors"] == 0 and report["after"]["ok"] and not report["load"]["hung_sessions"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
