"""The front door (api.py): the package's public calls are its own, and the layers below it
never reach back up to it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import speechrag
from speechrag import api

SRC = Path(speechrag.__file__).parent


def test_the_package_top_is_the_front_door() -> None:
    assert speechrag.retrieve is api.retrieve and speechrag.answer is api.answer
    assert speechrag.load_index is api.load_index


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_searcher_and_answering_take_no_path() -> None:
    # searcher.py sits below answering/ and api.py; answering/ below api.py and index.py.
    assert not {m for m in _imports(SRC / "searcher.py") if m.startswith(("speechrag.answering", "speechrag.api",
                                                                             "speechrag.index"))}
    for path in (SRC / "answering").glob("*.py"):
        assert not {m for m in _imports(path) if m in ("speechrag.api", "speechrag.index")}, path


def test_no_two_classes_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(str(path.relative_to(SRC)))
    # Each framework's adapter is its SpeechragRetriever, in a module named for the framework.
    shared = {name: files for name, files in where.items() if len(files) > 1 and name != "SpeechragRetriever"}
    assert shared == {}


def test_a_loaded_index_answers_and_retrieves_as_the_package_does(tiny_index: speechrag.Searcher) -> None:
    """``load_index(p).retrieve(q)`` / ``.answer(q)``: the calls scripts written against earlier
    versions make, the same results as the front door's functions."""
    idx = speechrag.load_index(tiny_index.store.root)
    question = "2016年的参保率是多少？"
    assert [h.passage.id for h in idx.retrieve(question, k=3)] == [
        h.passage.id for h in speechrag.retrieve(question, k=3, index=idx)]
    assert idx.answer(question).text == speechrag.answer(question, index=idx).text
