"""The shared text rules: sentences, enumerators, normalisation."""

from __future__ import annotations

import pytest

from speechrag.text import (
    ends_sentence,
    has_han,
    heading_level,
    is_broken_text,
    sentence_spans,
    split_sentences,
    strip_enumerator,
)


def test_sentence_spans_keep_enumerations_and_quotes() -> None:
    text = "中央强调：第一，国策不会变；第二，责任不会变。他说“要抓落实。”最后一句"
    spans = [text[a:b] for a, b in sentence_spans(text)]
    assert spans == ["中央强调：第一，国策不会变；第二，责任不会变。", "他说“要抓落实。”", "最后一句"]


def test_split_sentences_cuts_at_semicolons_and_loses_nothing() -> None:
    text = "第一，甲；第二，乙。他说：“好！”。。最后"
    parts = split_sentences(text)
    assert parts == ["第一，甲；", "第二，乙。", "他说：“好！”", "。。", "最后"]
    assert "".join(parts) == text


def test_answers_skip_one_character_sentences() -> None:
    assert sentence_spans("。好。完整的一句话。", min_chars=2) == [(1, 3), (3, 10)]  # a lone "。" is dropped


@pytest.mark.parametrize(
    ("heading", "level", "rest"),
    [
        ("一、充分认识重要意义", 1, "充分认识重要意义"),
        ("一个三，就是要突出重点", 1, "就是要突出重点"),
        ("（二）加强组织领导", 2, "加强组织领导"),
        ("第三，落实责任", 2, "落实责任"),
        ("3. 完善制度", 3, "完善制度"),
        ("充分认识重要意义", 0, "充分认识重要意义"),
    ],
)
def test_enumerators(heading: str, level: int, rest: str) -> None:
    assert heading_level(heading) == level
    assert strip_enumerator(heading) == rest


def test_small_predicates() -> None:
    assert ends_sentence("做好工作。”") and ends_sentence("如下：") and not ends_sentence("做好")
    assert has_han("abc中") and not has_han("abc 123")
    assert is_broken_text("a\ud800b") and not is_broken_text("正常")


# --- normalisation and figures --------------------------------------------------------------

import cn2an  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from speechrag.text import figure_values, has_figure, normalise, written_figures  # noqa: E402


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("增长７.５％", "增长7.5%"),  # full-width digits and per cent
        ("增长７．５％", "增长7.5%"),  # a full-width point between digits is a decimal point
        ("ＧＤＰ增长", "GDP增长"),
        ("增长 3 ％，", "增长 3%，"),  # no space inside a figure (PDF text)
        ("2019 年 1 月", "2019年 1月"),
        ("再增加200 万人口", "再增加200万人口"),
        ("１．完善制度", "1．完善制度"),  # an enumerator's full stop stays
        ("（一）好：是，对；吗？是！", "（一）好：是，对；吗？是！"),  # Chinese punctuation stays
        ("贫困人口40 余万人", "贫困人口40余万人"),  # an approximate figure too
        ("伴随着40 多年计划生育", "伴随着40多年计划生育"),
    ],
)
def test_normalise_writes_figures_in_one_form(raw: str, clean: str) -> None:
    assert normalise(raw) == clean


_FIGURE_TEXT = st.text(
    alphabet="0123456789０１２３４５６７８９.．%％ 　\t增长万个年月日号一二三十百千亿点ＡaＢ（），：", max_size=40
)


@given(_FIGURE_TEXT)
def test_normalise_is_idempotent(raw: str) -> None:
    once = normalise(raw)
    assert normalise(once) == once
    assert not any("\uff10" <= ch <= "\uff19" or ch == "％" for ch in once)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("百分之十五", "15%"),
        ("百分之7.5", "7.5%"),
        ("千分之三", "3‰"),
        ("一千三百四十四亿斤", "1344亿斤"),
        ("1,344亿斤", "134400000000斤"),
        ("二〇一〇年", "2010年"),
        ("七点五", "7.5"),
        ("两千", "2000"),
    ],
)
def test_a_figure_has_one_value_however_written(a: str, b: str) -> None:
    assert figure_values(normalise(a)) == figure_values(normalise(b)) != ()


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("6%－6.5%", ("6%", "6.5%")),  # a range is both its ends
        ("6.5%-7%", ("6.5%", "7%")),
        ("6%—6.5%", ("6%", "6.5%")),
        ("6%至6.5%", ("6%", "6.5%")),
        ("一年来", ("1",)),
        ("五年来", ("5",)),
        ("2013年增长7.5%，2014年增长7.4%", ("2013", "2014", "7.4%", "7.5%")),
        ("十四五规划", ("十四五",)),  # numerals that are no number are kept as written
        ("四万万同胞", ("400000000",)),  # a unit twice: the older way to write a hundred million
        ("一万万人", figure_values("10000万人")),
        ("坚持改革开放", ()),
    ],
)
def test_figure_values(text: str, values: tuple[str, ...]) -> None:
    assert figure_values(text) == values


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12))
def test_chinese_numerals_have_the_value_of_their_digits(n: int, m: int) -> None:
    written = cn2an.an2cn(n)
    assert figure_values(f"增长{written}元") == figure_values(f"增长{n}元") == (str(n),)
    assert (figure_values(f"增长{cn2an.an2cn(m)}元") == figure_values(f"增长{written}元")) is (n == m)


@pytest.mark.parametrize(
    ("text", "figure"),
    [
        ("增长百分之十五", "百分之十五"),
        ("粮食产量一千三百四十四亿斤", "一千三百四十四亿"),
        ("二〇一〇年", "二〇一〇"),
        ("增长七点五", "七点五"),
        ("三十个", "三十"),
        ("千分之三", "千分之三"),
    ],
)
def test_amounts_written_in_chinese_numerals_are_figures(text: str, figure: str) -> None:
    assert [text[a:b] for a, b in written_figures(text)] == [figure]
    assert has_figure(text)


@pytest.mark.parametrize(
    "text",
    ["一个重要问题", "统一部署", "千方百计", "万一出现", "“十四五”时期", "百姓", "三农", "千万不要", "十分重要",
     "一二三"],
)
def test_numerals_in_words_are_not_figures(text: str) -> None:
    assert written_figures(text) == [] and not has_figure(text)


def test_digits_are_figures() -> None:
    assert has_figure("增长7.5%") and has_figure("6%－6.5%") and has_figure(normalise("７.５％"))
