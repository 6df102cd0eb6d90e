"""The page's analysis tab (ui/analysis_tab.py): its tables are the library's results."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechrag import Searcher, load_index
from speechrag.analysis import concordance, trend
from speechrag.serving import IndexService
from speechrag.ui.analysis_tab import CONCORDANCE_HEADERS, analyse, phrases_of

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def committed() -> Searcher:
    return load_index(ROOT / "embeddings")


def test_phrases_are_split_at_spaces_and_commas() -> None:
    assert phrases_of(" 新常态，高质量发展、 小康,改革 ") == ["新常态", "高质量发展", "小康", "改革"]


def test_tables_are_the_concordance_and_the_trend(committed: Searcher) -> None:
    rows, label, table, headers, firsts = analyse(IndexService(committed), "计划生育 文艺", "place", 5)
    found = concordance("计划生育", context=5, sort="date", index=committed)
    assert label.startswith(f"计划生育：{len(found)} 处")
    assert rows == [[o.date, o.title, o.left, o.match, o.right, o.citation] for o in found.occurrences]
    assert len(rows[0]) == len(CONCORDANCE_HEADERS)
    counted = trend(["计划生育", "文艺"], by="place", index=committed)
    assert [r[0] for r in table] == [r.group for r in counted.rows]
    assert headers[0] == "place" and len(headers) == 5
    assert firsts == "计划生育: 157；文艺: 87"  # the shipped speeches are undated


def test_empty_and_bad_input_are_messages(committed: Searcher) -> None:
    service = IndexService(committed)
    assert analyse(service, "  ", "year", 20)[1] == "输入词语 · Enter a phrase"
    message = analyse(service, "x" * 300, "year", 20)[4]
    assert "at most 200" in message


def test_the_page_has_the_tab(committed: Searcher) -> None:
    from speechrag.ui import build_demo

    demo = build_demo(IndexService(committed))
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"analysis-phrase", "analysis-run", "analysis-trend", "analysis-concordance"} <= ids
