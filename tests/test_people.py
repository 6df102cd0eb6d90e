"""speechrag.people: names next to offices, labelled speakers and self-introductions, and what
must never be taken for a name."""

from __future__ import annotations

import pytest

from speechrag.people import labelled_speaker, people_in, person_name, self_introduction, speaker_label


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("省长许明林作政府工作报告", [("许明林", "省长")]),
        ("自治区人民政府主席王丽华在自治区第十四届人民代表大会上的讲话", [("王丽华", "自治区人民政府主席")]),
        ("1月15日龚明市长在市第十六届人民代表大会上", [("龚明", "市长")]),
        ("国家发展改革委投资司韩志明处长的讲话", [("韩志明", "处长")]),
        ("代省长罗东明", [("罗东明", "代省长")]),
        ("汪廣平校長 (中)", [("汪廣平", "校長")]),  # traditional characters
        ("国务院总理", []),  # an institution before an office is no name
        ("市长们都来了", []),
        ("全市干部", []),
    ],
)
def test_people_next_to_an_office(text: str, expected: list[tuple[str, str]]) -> None:
    assert people_in(text) == expected


@pytest.mark.parametrize(
    ("text", "name"),
    [("张三", "张三"), ("欧阳明月", "欧阳明月"), ("李 四", "李四"), ("目录", ""), ("同志们", ""), ("文化部", ""),
     ("党员", ""), ("王者荣耀一", ""), ("abc", "")],
)
def test_person_name(text: str, name: str) -> None:
    assert person_name(text) == name


@pytest.mark.parametrize(
    ("paragraph", "name"),
    [
        ("尊敬的各位领导，大家晚上好！我是来自客服中心旗舰店的刘晓红，非常荣幸在这里汇报。", "刘晓红"),
        ("我是海外拓展组的李富国，首先很荣幸能够作为代表发言。", "李富国"),
        ("我是来自计算机学院的志愿者李福明，很荣幸。", "李福明"),
        ("大家好，我是本次的项目汇报人，连志强", "连志强"),
        ("我是汇报人下面我将从四个方面介绍。", ""),
        ("我是一名普通的党员，我要发挥作用。", ""),
        ("尊敬的各位听众，大家好！我是今天的演讲者，今天我将介绍吸烟检测系统。", ""),
    ],
)
def test_self_introduction(paragraph: str, name: str) -> None:
    assert self_introduction(paragraph) == name


def test_labelled_speakers() -> None:
    assert labelled_speaker("致辞：饶明（教师代表、科学家）") == "饶明"
    assert labelled_speaker("主讲人：张三") == "张三"
    assert labelled_speaker("By  yinguoqing") == "yinguoqing"
    assert labelled_speaker("来源：人民日报") == ""
    assert speaker_label("崔明付：尊敬的各位来宾，大家下午好。") == "崔明付"
    assert speaker_label("同志们：今天开会。") == ""
