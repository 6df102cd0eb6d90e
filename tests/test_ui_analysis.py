"""The page's analysis tab (ui/analysis_tab.py): its tables, charts and downloads are the
library's results, under the chat's filters; a row opens the reading view at its passage."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from speechrag import Searcher, build_index, load_index
from speechrag.analysis import compare, concordance, targets, trend
from speechrag.serving import IndexService
from speechrag.ui import analysis_tab as tab
from speechrag.ui.analysis_tab import CONCORDANCE_HEADERS, analyse, phrases_of
from speechrag.ui.server import GuardMiddleware

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def committed() -> Searcher:
    return load_index(ROOT / "embeddings")


def report(year: int, place: str, target: str) -> str:
    return f"""# 政府工作报告

——{year}年1月15日在{place}第十五届人民代表大会第三次会议上

各位代表：

一、{year - 1}年工作回顾

{year - 1}年，全市地区生产总值增长９％，经济发展进入新常态。

二、{year}年工作总体要求和主要目标

今年经济社会发展的主要预期目标是：地区生产总值增长{target}，居民消费价格涨幅３%左右。
"""


HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory,
            write_corpus: Callable[[Path, Mapping[str, str]], Path]) -> Searcher:
    corpus = write_corpus(tmp_path_factory.mktemp("ui-reports"), {
        "2014.md": report(2014, "洛阳市", "８.５%左右"), "2015.md": report(2015, "洛阳市", "８%－８.５%"),
        "2016.md": report(2016, "商丘市", "百分之七点五左右"),
        "hostile.md": f"# 讲话\n\n各位代表：\n\n{HOSTILE}，这是一段讲话的正文，说的是新常态。\n"})
    path = tmp_path_factory.mktemp("ui-reports-index") / "embeddings"
    build_index(corpus, path, model="hash")
    return load_index(path)


def read_csv(path: str) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def read_xlsx(path: str) -> list[list[object]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


def test_phrases_are_split_at_spaces_and_commas() -> None:
    assert phrases_of(" 新常态，高质量发展、 小康,改革 ") == ["新常态", "高质量发展", "小康", "改革"]


def test_tables_are_the_concordance_and_the_trend(committed: Searcher) -> None:
    rows, label, table, headers, firsts = analyse(IndexService(committed), "计划生育 文艺", "place", 5)
    found = concordance("计划生育", context=5, sort="date", index=committed)
    assert label.startswith(f"计划生育：{len(found)} 处")
    assert rows == [[o.date, o.title, o.left, o.match, o.right, o.citation, f"{o.speech_id}:{o.passage_id}"]
                    for o in found.occurrences]
    assert len(rows[0]) == len(CONCORDANCE_HEADERS)
    counted = trend(["计划生育", "文艺"], by="place", index=committed)
    assert [r[0] for r in table] == [r.group for r in counted.rows]
    assert headers[0] == "place" and len(headers) == 5
    assert firsts == "计划生育: 157；文艺: 87"  # the shipped speeches are undated


def test_the_chart_is_the_trend_one_series_per_phrase(committed: Searcher) -> None:
    counted = trend(["计划生育", "文艺"], by="place", index=committed)
    frame = tab.trend_frame(counted)
    assert list(frame[tab.TREND_SERIES].unique()) == ["计划生育", "文艺"]
    for r in counted.rows:
        got = frame[frame[tab.TREND_X] == r.group]
        assert list(got["count"]) == list(r.counts)
        assert list(got[tab.TREND_Y]) == [round(x, 4) for x in r.rates]


def test_years_draw_lines_and_other_groups_bars(reports: Searcher, committed: Searcher) -> None:
    assert tab.uses_line(trend("新常态", by="year", index=reports))  # 2014, 2015, 2016, undated
    assert not tab.uses_line(trend("新常态", by="place", index=reports))
    assert not tab.uses_line(trend("计划生育", by="year", index=committed))  # undated: one group, one point


def test_filters_are_the_chats_and_narrow_every_view(reports: Searcher) -> None:
    service = IndexService(reports)
    filters = tab.filters_of([], [], ["商丘市"], "", "")
    assert filters == {"speeches": None, "speaker": None, "place": frozenset({"商丘市"}), "years": None}
    assert tab.filters_of(None, None, None, "2015", "")["years"] == (2015, 9999)
    result = tab.run_phrases(service, "新常态", "year", 10, **filters)
    assert result.found == concordance("新常态", context=10, index=reports, place=["商丘市"])
    assert {o.place for o in result.found or ()} == {"商丘市"}
    assert result.counted == trend(["新常态"], by="year", index=reports, place=["商丘市"])
    found, message = tab.run_targets(service, "国内生产总值", **tab.filters_of([], [], [], "2015", ""))
    assert message == "" and found == targets("国内生产总值", index=reports, years=(2015, 9999))
    assert [t.year for t in found] == [2015, 2016]


def test_targets_table_line_and_downloads(reports: Searcher) -> None:
    found, _ = tab.run_targets(IndexService(reports), "国内生产总值")
    assert [t.year for t in found] == [2014, 2015, 2016]
    rows = tab.target_rows(found)
    assert rows[0][:3] == ["2014", "8.5%左右", "左右"] and rows[0][3] == found[0].citation
    assert rows[0][4] == found[0].sentence and len(rows[0]) == len(tab.TARGET_HEADERS)
    frame = tab.target_frame(found)  # the low and high ends, equal but for a range
    assert list(frame["year"]) == ["2014", "2014", "2015", "2015", "2016", "2016"]
    assert list(frame["value"]) == [8.5, 8.5, 8.0, 8.5, 7.5, 7.5]
    csv_path, xlsx_path = tab.export("targets", tab.target_records(found), tab.TARGET_COLUMNS)
    table = read_csv(csv_path)
    assert table[0] == tab.TARGET_COLUMNS and [r[0] for r in table[1:]] == ["2014", "2015", "2016"]
    assert [r[8] for r in table[1:]] == [t.sentence for t in found]
    sheet = read_xlsx(xlsx_path)
    assert sheet[0] == tab.TARGET_COLUMNS and [r[2] for r in sheet[1:]] == [t.figure.text for t in found]
    assert tab.run_targets(IndexService(reports), " ")[1] == "输入指标 · Enter an indicator"


def test_concordance_and_trend_downloads_hold_every_row(committed: Searcher) -> None:
    result = tab.run_phrases(IndexService(committed), "计划生育 文艺", "place", 8)
    assert result.found is not None and result.counted is not None
    csv_path, xlsx_path = tab.export("concordance", tab.concordance_records(result.found), tab.CONCORDANCE_COLUMNS)
    table = read_csv(csv_path)
    assert table[0] == tab.CONCORDANCE_COLUMNS and len(table) == len(result.found) + 1 == 158
    first = result.found.occurrences[0]
    assert table[1][:3] == [first.date, first.title, first.speaker] and table[1][7:10] == [first.left, first.match,
                                                                                           first.right]
    sheet = read_xlsx(xlsx_path)
    assert len(sheet) == 158 and sheet[1][8] == "计划生育"
    records, columns = tab.trend_records(result.counted)
    csv_path, xlsx_path = tab.export("trend", records, columns)
    table = read_csv(csv_path)
    assert table[0] == ["place", "speeches", "characters", "计划生育 count", "计划生育 per 10000", "文艺 count",
                        "文艺 per 10000"]
    assert [r[0] for r in table[1:]] == [r.group for r in result.counted.rows]
    assert [int(r[3]) for r in table[1:]] == [r.counts[0] for r in result.counted.rows]
    assert [r[5] for r in read_xlsx(xlsx_path)[1:]] == [r.counts[1] for r in result.counted.rows]


def test_side_by_side_quotes_each_group_or_says_it_is_absent(committed: Searcher) -> None:
    question = "天水要设立什么文艺奖？"
    result, message = tab.run_compare(IndexService(committed), question, "place")
    assert message == "" and result == compare(question, by="place", index=committed)
    rows = tab.compare_rows(result)
    assert [r[0] for r in rows if r[2] == "未涉及 · not addressed"] == [g.group for g in result.groups if g.absent]
    quoted = [r for r in rows if r[3]]
    assert quoted and [(r[2], r[3]) for r in quoted] == [(q.text, q.citation) for g in result.groups
                                                         for q in g.quotes]
    assert quoted[0][0] == "天水" and "麦积山文艺奖" in quoted[0][2]
    csv_path, xlsx_path = tab.export("compare", tab.compare_records(result), tab.COMPARE_COLUMNS)
    table = read_csv(csv_path)
    assert table[0] == tab.COMPARE_COLUMNS
    assert ["仙桃", "not_found", "", "未涉及 · not addressed", "", "", ""] in table
    assert read_xlsx(xlsx_path)[1][3] == quoted[0][2]
    assert tab.run_compare(IndexService(committed), "", "place") == (None, "输入问题 · Enter a question")


def test_a_row_opens_its_passage_with_the_match_marked(committed: Searcher) -> None:
    service = IndexService(committed)
    found = concordance("计划生育奖励", context=6, index=committed)
    row = tab.concordance_rows(found)[0]
    page = tab.open_row(service, row, row[3])
    occurrence = found.occurrences[0]
    assert 'class="rv-p rv-target"' in page
    target = page.split('rv-target"', 1)[1].split("</p>", 1)[0]
    assert "<mark>计划生育奖励</mark>" in target
    assert page.count("rv-target") == 1 and occurrence.title in page
    assert tab.open_row(service, ["仙桃", "未涉及", "未涉及 · not addressed", "", ""]) == tab.READING_EMPTY
    assert "找不到" in tab.open_row(service, ["x", "gone:abc"])


def test_corpus_text_stays_text(reports: Searcher) -> None:
    """Table cells are the corpus's plain strings (a Dataframe of datatype str shows them as
    text); the reading view escapes them, the match's mark included."""
    service = IndexService(reports)
    result = tab.run_phrases(service, "<img", "year", 40)
    assert result.found is not None
    row = tab.concordance_rows(result.found)[0]
    assert row[3] == "<img" and row[4].startswith(' src=x onerror="alert(1)">')
    page = tab.open_row(service, row, row[3])
    assert "<img" not in page and "<mark>&lt;img</mark> src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_only_the_tabs_own_downloads_pass_the_guard(committed: Searcher, tmp_path: Path) -> None:
    guard = GuardMiddleware(None)
    csv_path, xlsx_path = tab.export("trend", [{"a": 1}], ["a"])
    assert not guard.blocked(f"/gradio_api/file={csv_path}") and not guard.blocked(f"/gradio_api/file={xlsx_path}")
    other = tmp_path / "trend.csv"
    other.write_text("a\n1\n")
    beside = tab.export_root() / "trend.csv"  # in the folder itself, not in an export's own folder
    for path in (str(other), "/etc/passwd", f"{Path(csv_path).parent}/../../x/trend.csv", str(beside),
                 f"{Path(csv_path).parent}/evil.html", f"{Path(csv_path).parent}/missing.csv"):
        assert guard.blocked(f"/gradio_api/file={path}"), path
    assert guard.blocked("/gradio_api/upload") and guard.blocked("/file=/etc/passwd")


def test_empty_and_bad_input_are_messages(committed: Searcher) -> None:
    service = IndexService(committed)
    assert analyse(service, "  ", "year", 20)[1] == "输入词语 · Enter a phrase"
    message = analyse(service, "x" * 300, "year", 20)[4]
    assert "at most 200" in message


def test_the_page_has_the_tab(committed: Searcher) -> None:
    import gradio as gr

    from speechrag.ui import build_demo

    demo = build_demo(IndexService(committed))
    blocks = list(demo.blocks.values())
    ids = {getattr(block, "elem_id", None) for block in blocks}
    assert {"analysis-phrase", "analysis-run", "analysis-trend", "analysis-concordance", "analysis-line",
            "analysis-bars", "analysis-targets", "analysis-targets-line", "analysis-compare", "analysis-speeches",
            "analysis-year-from", "analysis-clear-filters", "analysis-concordance-csv",
            "analysis-concordance-xlsx"} <= ids
    kinds = {getattr(b, "elem_id", None): type(b) for b in blocks}
    assert kinds["analysis-line"] is gr.LinePlot and kinds["analysis-bars"] is gr.BarPlot
    assert kinds["analysis-trend-csv"] is gr.DownloadButton


def test_without_openpyxl_the_csv_is_still_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    from speechrag.errors import ConfigError

    def no_openpyxl(*args: object, **kwargs: object) -> Path:
        raise ConfigError("writing XLSX needs openpyxl: pip install 'speechrag[analysis]'")

    monkeypatch.setattr(tab, "write_xlsx", no_openpyxl)
    csv_path, xlsx_path = tab.export("trend", [{"a": 1}], ["a"])
    assert xlsx_path is None and read_csv(csv_path) == [["a"], ["1"]]
    shown, hidden = tab._downloads((csv_path, xlsx_path))
    assert shown.visible is True and shown.value["path"] == csv_path
    assert hidden.visible is False
