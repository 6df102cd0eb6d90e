"""speechrag.dates: dates as speeches and file names write them, and the year a passage speaks about."""

from __future__ import annotations

import pytest

from speechrag.dates import about_year, date_in_filename, parse_date, years_named


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2019.1.2", "2019-01-02"),
        ("2017/12/12", "2017-12-12"),
        ("（２０１９年７月１５日）", "2019-07-15"),
        ("2011年09月26来源：", "2011-09-26"),  # a CMS that drops the 日
        ("一九七五年九月二十七日、十月四日", "1975-09-27"),
        ("2019年6月1200元", "2019-06"),  # 12 is no day when a digit follows
        ("《2018年度总结》", "2018"),
    ],
)
def test_parse_date(text: str, iso: str) -> None:
    assert parse_date(text) == iso


@pytest.mark.parametrize(
    ("name", "iso"),
    [
        ("huawei_ren_20130114_small_countries_award.pdf", "2013-01-14"),
        ("2019年政府工作报告.txt", "2019"),
        ("report_2019_final.docx", "2019"),
        ("2013-01-14 讲话.doc", "2013-01-14"),
        ("scan_00012345678.pdf", ""),  # a long number holds no year
        ("讲话稿.docx", ""),
    ],
)
def test_date_in_filename(name: str, iso: str) -> None:
    assert date_in_filename(name) == iso


@pytest.mark.parametrize(
    ("section", "text", "speech_year", "year"),
    [
        ("一、2013年工作回顾", "过去一年，经济增长7.7%。", 2014, 2013),
        ("一、2013年工作回顾 › （一）经济", "全年新增就业1310万人。", 2014, 2013),  # the outer heading decides
        ("二、2014年工作总体部署", "今年经济增长预期目标是7.5%左右。", 2014, 2014),
        ("一、去年工作回顾", "我们保持了经济平稳增长。", 2006, 2005),
        ("一、过去五年工作回顾", "五年来经济实力大幅提升。", 2018, 0),
        ("一、过去五年工作回顾", "2017年，国内生产总值增长6.9%。", 2018, 2017),
        ("", "去年，全市生产总值增长8%。", 2016, 2015),
        ("", "现在，我代表市人民政府向大会报告工作。", 2016, 2016),
        ("一、１９９６年国内工作的回顾", "全年增长9.7%。", 1997, 1996),
        ("", "今年要抓好三件事。", None, 0),
    ],
)
def test_about_year(section: str, text: str, speech_year: int | None, year: int) -> None:
    assert about_year(section, text, speech_year) == year


def test_a_documents_own_year_is_what_its_undated_passages_are_about() -> None:
    # a 2022 statistical bulletin published in April 2023
    assert about_year("一、综合", "全年地区生产总值3473亿元。", 2023, 2022) == 2022
    assert about_year("", "比去年增长5.3%。", 2023, 2022) == 2022
    assert about_year("", "去年，全市新增就业4万人。", 2023, 2022) == 2022  # 去年 counts from the date


def test_years_named() -> None:
    assert years_named("2013年和二〇一四年，以及80年代、2015年度以来") == [2013, 2014]
