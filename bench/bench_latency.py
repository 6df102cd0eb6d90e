"""Latency of retrieve() and answer(), cold and warm, and answers/s through the chat server.

    python bench/bench_latency.py                          # everything, over ./embeddings
    python bench/bench_latency.py --skip-server            # cold and warm only (~1 min)
    python bench/bench_latency.py --compare main=/work/main/src --json out.json   # two versions' servers

What it measures, and why each figure cannot flatter:

- **cold**: each question asked for the first time in a process that has never answered
  anything. The questions are the gold set and the held-out set (``eval/questions.jsonl`` +
  ``eval/heldout.jsonl``, follow-ups with their history), each asked once. `retrieve()` and
  `answer()` run in *separate* fresh processes, so neither fills a cache the other reads (the
  sentence vectors of quoted passages, document frequencies); a process may only load the
  encoder, jieba's and CC-CEDICT's dictionaries and the index before the clock starts, by calls
  that touch no per-question cache. The first question's time, which includes nothing else,
  is part of p95 and max. "Never asked" is not enough on a small corpus: the sentence vectors
  an answer needs are cached per passage, and after a few dozen questions over 78 passages
  most are cached, so a fresh process's later questions are warm in all but name. So the
  **isolated** figures ask each question on a Searcher of its own (same loaded store and
  encoder, every per-question cache empty): the cost of a question about passages nobody has
  asked about yet, whatever the corpus size. Both are printed; isolated is the one that cannot
  flatter. Both processes run ``--rounds`` times, in alternating order, and their
  times are pooled, so a machine busier during one of them skews both alike; the ratios of
  `answer()` p50/p95 to `retrieve()` p50 are the figures to read (goal <= 1.5 and <= 3).
- **warm**: the same questions asked a second time in the same processes (caches full), plus
  the bare query embedding timed question by question next to `retrieve()` (goal: retrieve
  p50 <= 1.3 x embedding p50).
- **server**: the real chat server (`speechrag.ui.serve` in a child process, as ``speechrag
  serve`` runs it) driven through Gradio's queue by 1, 4 and 20 concurrent sessions, each
  asking the next question as soon as its last is answered, for ``--duration`` seconds per
  level after one warm-up pass over the questions: answers/s and p50/p95/p99 latency per
  level. The sessions run in this process on the same cores as the server, so by default they
  are bench/load.py's `SseSession`: the queue join and event stream gradio_client and the page
  use, read with httpx at ~3 ms of CPU per answer. `gradio_client` (``--client gradio``) costs
  ~70 ms per answer, more than the server's own ~47 ms, and with 20 of its sessions on 2 cores
  the figures are mostly the client's.
  With ``--compare NAME=SRC`` another server runs ``SRC``'s speechrag (e.g. ``main``'s
  ``src``) over the same index and the levels alternate between the servers, round by round,
  so all see the same machine. CPU time per answer (server, and clients) is printed too: it
  does not depend on what else the machine runs, and says where a ceiling comes from.

Milliseconds depend on the machine and its load; compare versions and phases within one run.
``--json PATH`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUESTION_FILES = (ROOT / "eval" / "questions.jsonl", ROOT / "eval" / "heldout.jsonl")
LEVELS = (1, 4, 20)


def percentiles(ms: list[float], *qs: int) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    out = {f"p{q}": float(np.percentile(a, q)) for q in qs}
    out["max"] = float(a.max())
    out["n"] = len(ms)
    return out


def read_questions(files: tuple[Path, ...]) -> list[dict[str, Any]]:
    """Every question of ``files`` once (a duplicate text would be asked warm)."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out: list[dict[str, Any]] = []
    for f in files:
        for line in f.read_text("utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                key = (d["question"], tuple(d.get("history", ())))
                if key not in seen:
                    seen.add(key)
                    out.append({"question": d["question"], "history": list(d.get("history", ()))})
    return out


# --- one fresh process: cold, then warm --------------------------------------------------------


def worker(kind: str, index: str, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs in a fresh process: ``kind`` ("retrieve" or "answer") on every question cold, then
    warm; milliseconds per question."""
    from speechrag import Searcher, answer, load_index, retrieve
    from speechrag.crosslingual import dictionary

    t = time.perf_counter()
    searcher = load_index(index)
    # Load what every process loads once, through calls that fill no per-question cache: the
    # encoder (a query vector is never cached), jieba's dictionary, CC-CEDICT, the calibration.
    searcher.encoder.encode_queries(["预热"])
    searcher.tokenize("预热")
    dictionary()
    _ = searcher.calibration, searcher.place_aliases
    start_ms = (time.perf_counter() - t) * 1e3

    def ask(q: dict[str, Any], on: Searcher) -> float:
        t = time.perf_counter()
        if kind == "answer":
            answer(q["question"], history=q["history"], index=on)
        else:
            retrieve(q["question"], 5, index=on)
        return (time.perf_counter() - t) * 1e3

    def empty(q: dict[str, Any]) -> float:
        # A Searcher of its own over the same loaded store: the encoder and the index are
        # shared, every per-question cache (sentence vectors, document frequencies) is empty.
        own = Searcher(searcher.store)
        _ = own.calibration, own.place_aliases, own.encoder
        return ask(q, own)

    isolated = [empty(q) for q in questions]
    cold = [ask(q, searcher) for q in questions]
    warm = [ask(q, searcher) for q in questions]
    out: dict[str, Any] = {"kind": kind, "start_ms": start_ms, "isolated_ms": isolated, "cold_ms": cold,
                           "warm_ms": warm, "passages": searcher.store.size, "encoder": searcher.encoder_name}
    if kind == "retrieve":
        # Warm: the bare query embedding next to retrieve() question by question, so a busy
        # machine slows both alike.
        embed, hybrid = [], []
        for q in questions:
            t = time.perf_counter()
            searcher.encoder.encode_queries([q["question"]])
            embed.append((time.perf_counter() - t) * 1e3)
            hybrid.append(ask(q, searcher))
        out["embed_ms"], out["paired_retrieve_ms"] = embed, hybrid
    return out


def fresh_process(kind: str, index: Path, questions: list[dict[str, Any]]) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, "--index", str(index)],
                          input=json.dumps(questions, ensure_ascii=False), capture_output=True, text=True,
                          env=env, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed ({proc.returncode}): {proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def in_process(index: Path, questions: list[dict[str, Any]], rounds: int, log: Any) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"retrieve": [], "answer": []}
    for r in range(rounds):
        order = ("retrieve", "answer") if r % 2 == 0 else ("answer", "retrieve")
        for kind in order:
            runs[kind].append(fresh_process(kind, index, questions))
        log(f"round {r + 1}/{rounds}: retrieve cold p50 {np.median(runs['retrieve'][-1]['cold_ms']):.1f} ms, "
            f"answer cold p50 {np.median(runs['answer'][-1]['cold_ms']):.1f} ms")

    def pooled(kind: str, key: str) -> list[float]:
        return [x for run in runs[kind] for x in run[key]]

    fig: dict[str, Any] = {"questions": len(questions), "rounds": rounds, "passages": runs["answer"][0]["passages"],
                           "encoder": runs["answer"][0]["encoder"]}
    for phase in ("isolated", "cold", "warm"):
        ret = percentiles(pooled("retrieve", f"{phase}_ms"), 50, 95)
        ans = percentiles(pooled("answer", f"{phase}_ms"), 50, 95)
        fig[phase] = {"retrieve_ms": ret, "answer_ms": ans,
                      "answer_p50_over_retrieve_p50": ans["p50"] / ret["p50"],
                      "answer_p95_over_retrieve_p50": ans["p95"] / ret["p50"]}
    embed = percentiles(pooled("retrieve", "embed_ms"), 50, 95)
    paired = percentiles(pooled("retrieve", "paired_retrieve_ms"), 50, 95)
    fig["warm"]["embed_ms"] = embed
    fig["warm"]["retrieve_p50_over_embed_p50"] = paired["p50"] / embed["p50"]
    fig["process_start_ms"] = {k: [run["start_ms"] for run in v] for k, v in runs.items()}
    return fig


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` (None: this one) so far."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


# --- through the server --------------------------------------------------------------------------


def through_server(index: Path, questions: list[str], versions: dict[str, Path | None], levels: tuple[int, ...],
                   duration: float, rounds: int, log: Any, client: str = "sse") -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    from gradio_client import Client
    from load import HTTPX, Server, SseSession, Tally, closed_loop
    from load import percentiles as load_percentiles

    servers: dict[str, Any] = {}
    try:
        for name, src in versions.items():
            log(f"starting server {name} ({src or 'installed speechrag'}) ...")
            servers[name] = Server(index, src=src)
        def clients(name: str, n: int) -> list[Any]:
            # Fresh sessions for every run: a gradio_client Client left idle longer than its
            # read timeout loses its message stream, and its next question then never returns.
            if client == "sse":
                return [SseSession(servers[name].url) for _ in range(n)]
            return [Client(servers[name].url, verbose=False, httpx_kwargs=HTTPX) for _ in range(n)]

        for name in servers:
            warm, (session,) = Tally(), clients(name, 1)
            for q in questions:  # one pass: lazy loads done, answer caches filled
                warm.ask(session, q)
            if warm.errors:
                raise SystemExit(f"server {name} failed while warming up: {warm.errors[:3]}")
        tallies = {(name, n): Tally() for name in servers for n in levels}
        seconds = dict.fromkeys(tallies, 0.0)
        server_cpu = dict.fromkeys(tallies, 0.0)
        client_cpu = dict.fromkeys(tallies, 0.0)
        for r in range(rounds):
            for n in levels:
                # Alternate which version goes first, so neither always runs right after the other.
                for name in (list(servers) if r % 2 == 0 else list(servers)[::-1]):
                    tally = tallies[name, n]
                    before = len(tally.latencies)
                    sessions = clients(name, n)
                    cpu0 = cpu_seconds(servers[name].pid), cpu_seconds(None)
                    elapsed, hung = closed_loop(sessions, questions, tally, duration, 100_000)
                    if hung:
                        raise SystemExit(f"server {name}: {hung} sessions hung at {n} clients")
                    seconds[name, n] += elapsed
                    server_cpu[name, n] += cpu_seconds(servers[name].pid) - cpu0[0]
                    client_cpu[name, n] += cpu_seconds(None) - cpu0[1]
                    log(f"round {r + 1}/{rounds}, {name}, {n:>2} clients: "
                        f"{(len(tally.latencies) - before) / elapsed:.1f} answers/s")
        out: dict[str, Any] = {}
        for (name, n), tally in tallies.items():
            lat = load_percentiles(tally.latencies)
            out.setdefault(name, {})[str(n)] = {
                "answers": len(tally.latencies), "seconds": seconds[name, n],
                "answers_per_s": len(tally.latencies) / seconds[name, n],
                "latency_ms": lat, "errors": len(tally.errors), "error_samples": tally.errors[:3],
                "queue_full": len(tally.rejections),
                # CPU time per answer, whatever else the machine runs: the server's (answering
                # plus Gradio's queue and HTTP), and the clients' in this process.
                "server_cpu_ms_per_answer": 1e3 * server_cpu[name, n] / max(1, len(tally.latencies)),
                "client_cpu_ms_per_answer": 1e3 * client_cpu[name, n] / max(1, len(tally.latencies)),
                "server_cores_busy": server_cpu[name, n] / seconds[name, n],
            }
        return out
    finally:
        for name, server in servers.items():
            server.close()
            if "Traceback" in (err := server.stderr()):
                log(f"server {name} logged errors; the last:\n{err[-1500:]}")


# --- output ----------------------------------------------------------------------------------------


def print_in_process(fig: dict[str, Any]) -> None:
    print(f"\n{fig['questions']} questions (gold + held-out), each asked once per fresh process, "
          f"{fig['rounds']} rounds; {fig['passages']} passages, encoder {fig['encoder']}")
    print(f"{'':24}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'p50/ret p50':>13}{'p95/ret p50':>13}")
    for phase in ("isolated", "cold", "warm"):
        f = fig[phase]
        r, a = f["retrieve_ms"], f["answer_ms"]
        print(f"{phase + ' retrieve()':24}{r['p50']:9.1f}{r['p95']:9.1f}{r['max']:9.1f}")
        print(f"{phase + ' answer()':24}{a['p50']:9.1f}{a['p95']:9.1f}{a['max']:9.1f}"
              f"{f['answer_p50_over_retrieve_p50']:13.2f}{f['answer_p95_over_retrieve_p50']:13.2f}")
    e = fig["warm"]["embed_ms"]
    print(f"{'warm query embedding':24}{e['p50']:9.1f}{e['p95']:9.1f}{e['max']:9.1f}")
    print("isolated: every question on a Searcher with empty caches; cold: every question once in a fresh "
          "process (its caches fill as it goes); warm: asked again")
    print("goals: cold answer p50 <= 1.5 and p95 <= 3 x retrieve p50 (read them on isolated too); "
          f"warm retrieve p50 <= 1.3 x embedding p50 (now {fig['warm']['retrieve_p50_over_embed_p50']:.2f})")


def print_server(fig: dict[str, Any]) -> None:
    print(f"\n{'server':8}{'clients':>8}{'answers/s':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'server CPU ms/ans':>19}{'client CPU ms/ans':>19}{'server cores':>14}")
    for name, levels in fig.items():
        for n, f in levels.items():
            lat = f["latency_ms"]
            print(f"{name:8}{n:>8}{f['answers_per_s']:11.1f}{lat['p50']:9.0f}{lat['p95']:9.0f}{lat['p99']:9.0f}"
                  f"{f['errors'] + f['queue_full']:8d}{f['server_cpu_ms_per_answer']:19.1f}"
                  f"{f['client_cpu_ms_per_answer']:19.1f}{f['server_cores_busy']:14.2f}")
    (a, fa), *others = fig.items()
    for b, fb in others:
        print(f"throughput {a} / {b}: " + ", ".join(
            f"{n} clients {fa[n]['answers_per_s'] / fb[n]['answers_per_s']:.2f}x" for n in fa))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=ROOT / "embeddings", help="index folder (default: %(default)s)")
    ap.add_argument("--questions", type=Path, nargs="+", default=list(QUESTION_FILES),
                    help="question files, JSON lines with 'question' and optional 'history'")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N questions (0: all)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="pairs of fresh processes, and rounds of server levels (default: %(default)s)")
    ap.add_argument("--skip-cold", action="store_true", help="skip the cold and warm phases")
    ap.add_argument("--skip-server", action="store_true", help="skip the server phase")
    ap.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="concurrent clients (default: 1 4 20)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per level and round (default: %(default)s)")
    ap.add_argument("--compare", nargs="+", default=[], metavar="[NAME=]SRC",
                    help="also serve these src folders' speechrag (e.g. main=/work/main/src), each as its own server")
    ap.add_argument("--client", choices=("sse", "gradio"), default="sse",
                    help="server sessions: sse speaks Gradio's queue protocol with httpx (light, so the "
                         "figures are the server's); gradio uses gradio_client (default: %(default)s)")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    ap.add_argument("--worker", choices=("retrieve", "answer"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:  # a fresh process started by fresh_process(): questions on stdin
        print(json.dumps(worker(args.worker, str(args.index), json.loads(sys.stdin.read()))))
        return 0
    if args.rounds < 1 or args.duration <= 0 or not all(1 <= n <= 200 for n in args.levels):
        ap.error("need --rounds >= 1, --duration > 0 and 1 <= each level <= 200")
    questions = read_questions(tuple(args.questions))
    if args.limit > 0:
        questions = questions[: args.limit]

    def log(s: str) -> None:
        print(s, flush=True)

    figures: dict[str, Any] = {"index": str(args.index)}
    if not args.skip_cold:
        figures["in_process"] = in_process(args.index, questions, args.rounds, log)
        print_in_process(figures["in_process"])
    if not args.skip_server:
        versions: dict[str, Path | None] = {"this": None}
        for i, spec in enumerate(args.compare):
            name, _, src = spec.rpartition("=")
            versions[name or f"other{i + 1}"] = Path(src).resolve()
        figures["server"] = through_server(args.index, [q["question"] for q in questions], versions,
                                           tuple(args.levels), args.duration, args.rounds, log, args.client)
        figures["server_client"] = args.client
        figures["server_versions"] = {k: str(v) if v else "installed" for k, v in versions.items()}
        print_server(figures["server"])
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    errors = sum(f["errors"] for levels in figures.get("server", {}).values() for f in levels.values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
