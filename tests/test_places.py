"""speechrag.places: the gazetteer's names, the lookups scope uses, and the place a speech is
given for (header and body), on generated strings; then the development set's places."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechrag import places
from speechrag.header import parse_header
from speechrag.places import (
    Division,
    body_place,
    canonical,
    find_divisions,
    foreign_place,
    gazetteer,
    header_place,
    level,
    lookup,
    mentions_place,
    named_places,
    same_place,
)

ROOT = Path(__file__).resolve().parents[1]


def division(name: str) -> Division:
    (d,) = [d for d in gazetteer().divisions if d.name == name]
    return d


def provinces() -> list[Division]:
    return [d for d in gazetteer().divisions if d.level == "province"]


def prefecture_cities() -> list[Division]:
    """Prefecture-level cities whose short name is no common word and names nothing else."""
    g = gazetteer()
    return [d for d in g.divisions if d.kind == "地级市" and d.short and d.short not in g.common_shorts
            and len(lookup(d.short)) == 1]


# --- the gazetteer ---------------------------------------------------------------------------


def test_the_divisions_form_one_tree_of_three_levels() -> None:
    g = gazetteer()
    assert len(g.divisions) == len(g.by_code) > 3000  # codes are unique
    assert len(provinces()) == 34  # 23 省, 5 自治区, 4 直辖市, 2 特别行政区
    for d in g.divisions:
        parent = g.by_code.get(d.parent)
        assert (parent is None) == (d.level == "province"), d
        assert parent is None or parent.level != "county"
        assert d.code[: 2] == (g.ancestors(d)[-1].code[:2] if parent else d.code[:2])


@pytest.mark.parametrize(
    ("name", "kind", "level", "parent", "short"),
    [
        ("商丘市", "地级市", "prefecture", "河南省", "商丘"),
        ("仙桃市", "县级市", "county", "湖北省", "仙桃"),  # a county-level city right under its province
        ("广西壮族自治区", "自治区", "province", "", "广西"),
        ("寻甸回族彝族自治县", "自治县", "county", "昆明市", "寻甸"),
        ("黔南布依族苗族自治州", "自治州", "prefecture", "贵州省", "黔南"),
        ("东乡族自治县", "自治县", "county", "临夏回族自治州", "东乡"),
        ("碑林区", "市辖区", "county", "西安市", "碑林"),  # a 市辖区, not a 林区
        ("神农架林区", "林区", "county", "湖北省", "神农架"),
        ("和县", "县", "county", "马鞍山市", ""),  # one character is no short name
        ("香港特别行政区", "特别行政区", "province", "", "香港"),
        ("台湾省", "省", "province", "", "台湾"),
    ],
)
def test_division_kind_level_parent_and_short_name(name: str, kind: str, level: str, parent: str, short: str) -> None:
    d = division(name)
    assert (d.kind, d.level, d.short) == (kind, level, short)
    assert (gazetteer().by_code[d.parent].name if d.parent else "") == parent


def test_suffix_follows_the_kind() -> None:
    assert [division(n).suffix for n in ("商丘市", "广西壮族自治区", "碑林区", "大兴安岭地区", "六枝特区")] == [
        "市", "自治区", "区", "地区", "特区"]  # fmt: skip


# --- finding names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("2025年北京市政府工作报告", [("北京市", True)]),  # never 年北京市
        ("河南省商丘市人民政府市长", [("河南省", True), ("商丘市", True)]),
        ("向寻甸县雷锋希望小学的各位领导", [("寻甸县", True)]),  # an autonomous county's suffix form
        ("黔南州和广西的合作", [("黔南州", True), ("广西", False), ("合作", False)]),
        ("马鞍山市和县", [("马鞍山市", True), ("和县", True)]),
        ("市和县两级", []),  # 和县 only after its own city
        ("阳泉市城区", [("阳泉市", True), ("城区", True)]),
        ("在全市城区管理工作会议上", []),
        ("保加利亚代表处", []),
    ],
)
def test_find_divisions(text: str, found: list[tuple[str, bool]]) -> None:
    mentions = find_divisions(text)
    assert [(m.text, m.full) for m in mentions] == found
    assert all(text[m.start : m.end] == m.text for m in mentions)


@pytest.mark.parametrize(("word", "common"), [("和平", True), ("平安", True), ("新建", True), ("惠民", True),
                                              ("安康", True), ("来宾", True), ("仙桃", False), ("商丘", False),
                                              ("广西", False)])  # fmt: skip
def test_a_short_name_is_common_when_it_is_an_everyday_word(word: str, common: bool) -> None:
    (m,) = find_divisions(f"他说{word}。")
    assert m.common is common


@pytest.mark.parametrize(
    ("name", "full"),
    [("广西", "广西壮族自治区"), ("宁夏", "宁夏回族自治区"), ("内蒙古", "内蒙古自治区"), ("新疆", "新疆维吾尔自治区"),
     ("上海", "上海市"), ("商丘", "商丘市"), ("香港", "香港特别行政区"), ("台湾", "台湾省"),
     ("寻甸县", "寻甸回族彝族自治县"), ("河南", "河南省"), ("朝阳", "朝阳市"), ("和平", ""), ("保加利亚", "")],
)  # fmt: skip
def test_canonical(name: str, full: str) -> None:
    assert canonical(name) == full


def test_lookup_and_level() -> None:
    assert {d.name for d in lookup("朝阳区")} == {"朝阳区"} and len(lookup("朝阳区")) == 2  # Beijing, Changchun
    assert lookup("保加利亚") == ()
    assert [level(n) for n in ("宁夏", "商丘", "睢阳区", "朝阳", "保加利亚")] == [
        "province", "prefecture", "county", None, None]  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("商丘", "商丘市", True), ("宁夏", "宁夏回族自治区", True), ("寻甸县", "寻甸回族彝族自治县", True),
     ("保加利亚", "保加利亚", True), ("商丘", "天水", False), ("商丘", "", False), ("商丘县", "商丘市", False)],
)  # fmt: skip
def test_same_place(a: str, b: str, same: bool) -> None:
    assert same_place(a, b) is same
    assert same_place(b, a) is same


def test_mentions_and_named_places() -> None:
    assert mentions_place("2025年广西政府工作报告", "广西壮族自治区")
    assert not mentions_place("2025年广西政府工作报告", "宁夏回族自治区")
    assert mentions_place("在保加利亚代表处", "保加利亚")
    assert named_places("上海和北京的目标") == ("上海", "北京")
    assert named_places("如何维护世界和平？") == ()  # a common word is no place a question names
    assert named_places("和平区的GDP") == ("和平区",)


@settings(max_examples=60, deadline=None)
@given(d=st.sampled_from(sorted(d.name for d in provinces())), year=st.integers(1949, 2049))
def test_a_year_glued_before_a_province_never_joins_its_name(d: str, year: int) -> None:
    for text in (f"{year}年{d}政府工作报告", f"——{year}年1月20日在{d}第十四届人民代表大会第三次会议上"):
        assert [m.text for m in find_divisions(text)][:1] == [d]
        assert header_place([text]) == d


NAMES = sorted(gazetteer().forms)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(NAMES), st.text(alphabet="的在和年全市县区人民政府会议上，。", max_size=4)),
                max_size=12))
def test_mentions_are_ordered_disjoint_and_name_their_divisions(parts: list[str]) -> None:
    text = "".join(parts)
    mentions = find_divisions(text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(mentions))
    g = gazetteer()
    for m in mentions:
        assert text[m.start : m.end] == m.text and m.divisions
        assert all(m.text in (d.name, d.short, d.short + d.kind[-1:]) for d in m.divisions)
        assert m.common == (not m.full and m.text in g.common_shorts)


# --- the header's place ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "place"),
    [
        (["河南省商丘市人民政府市长"], "商丘市"),  # the innermost of adjacent names
        (["中共商丘市委书记"], "商丘市"),
        (["自治区主席", "在广西壮族自治区第十四届人民代表大会第三次会议上", "2025年广西政府工作报告"],
         "广西壮族自治区"),
        (["", "", "2025年宁夏政府工作报告"], "宁夏"),  # a short name before 政府
        (["----2025年1月15日龚正市长在上海市第十六届人民代表大会第三次会议的政府工作报告"], "上海市"),
        (["万载县2015年国民经济和社会发展统计公报"], "万载县"),
        (["和平区2020年政府工作报告"], "和平区"),  # a common word's stem, written in full where it counts
        (["视察天津时的谈话"], "天津"),
        (["寻甸县人民政府县长"], "寻甸县"),
        (["在全市经济工作会议上", "本区人民政府"], ""),
        (["在高新区管委会工作会议上", "在超市食品安全会议上", "城乡一体化工作"], ""),
        (["成都工业职业技术学院2016年新年致辞"], ""),  # inside an institution's name
        (["和平政府"], ""),  # a common word
        (["桃源湾区人民政府区长"], ""),  # no such division
        (["从渡江到占领上海", "会见香港特别行政区基本法起草委员会委员时的讲话"], ""),  # topics
        (["在武昌、深圳、珠海、上海等地的谈话要点"], ""),
        (["国务院总理", "在第十四届全国人民代表大会第二次会议上", "2019年北京市政府工作报告"], ""),  # national
        (["在保加利亚代表处工作汇报会上"], ""),
    ],
)
def test_header_place(texts: list[str], place: str) -> None:
    assert header_place(texts) == place


@pytest.mark.parametrize("province", [p.name for p in provinces()])
def test_every_province_is_found_in_its_congress_and_by_its_short_name(province: str) -> None:
    d = division(province)
    assert header_place([f"在{province}第十四届人民代表大会第三次会议上"]) == province
    assert header_place([f"2025年{d.short}政府工作报告"]) == d.short
    assert header_place([f"{d.short}工业职业技术学院2016年新年致辞"]) == ""


# --- the body's place ----------------------------------------------------------------------------

LOCAL = "一年来，全市上下团结奋斗，我市各项工作取得新成绩，本市人民生活持续改善。"
NATIONAL = "全国各族人民团结奋斗，我国经济持续增长。" * 6


@settings(max_examples=40, deadline=None)
@given(city=st.sampled_from(prefecture_cities()), other=st.sampled_from(prefecture_cities()),
       named=st.integers(2, 5), suffixed=st.booleans())
def test_a_local_speech_is_given_for_the_city_it_names_most(city: Division, other: Division, named: int,
                                                            suffixed: bool) -> None:
    name = city.name if suffixed else city.short
    body = [LOCAL, *[f"{name}的工作要再上新台阶。" for _ in range(named)], f"学习{other.short}的经验。"]
    assert body_place(body) == city.short
    once = [LOCAL, f"{name}的工作要再上新台阶。", f"学习{other.short}的经验。"]
    assert body_place(once) == (city.short if city == other else "")  # named once, or no more than another
    assert body_place([p.replace("全市", "全体").replace("我市", "我们").replace("本市", "广大") for p in body]) == ""


def test_a_place_must_be_named_twice_and_twice_as_often_as_any_other() -> None:
    assert body_place([LOCAL, "商丘的工作。"]) == ""
    assert body_place([LOCAL, "商丘的工作。" * 3, "天水的经验。" * 2]) == ""
    assert body_place([LOCAL, "商丘的工作。" * 4, "天水的经验。" * 2]) == "商丘"
    two = "全市上下团结奋斗，我市各项工作取得新成绩。"  # two self-references: not yet a local speech
    assert body_place([two, "商丘的工作。" * 4]) == ""


def test_the_speakers_level_decides_which_divisions_count() -> None:
    county = "全县上下团结奋斗，我县各项工作取得新成绩，本县人民生活持续改善。"
    body = [county, "商丘市要求我们。" * 5, "睢县的工作很好。", "睢县要继续努力。"]
    assert body_place(body) == ""  # 睢县 has a one-character stem: named alone it counts for nothing
    body = [county, "商丘市要求我们。" * 5, "宁陵县的工作很好。", "宁陵县要继续努力。"]
    assert body_place(body) == "宁陵"  # 商丘市 is named more, but the speech speaks as a county


def test_a_common_word_counts_only_once_the_division_is_named_in_full() -> None:
    district = "全区上下团结奋斗，我区各项工作取得新成绩，本区人民生活持续改善。"
    assert body_place([district, "建设平安社区，维护和平稳定。" * 3]) == ""
    assert body_place([district, "和平的发展。" * 3]) == ""
    assert body_place([district, "和平区的发展。", "和平的发展。"]) == "和平"
    assert body_place([LOCAL, "为安康全面建设小康社会。", "要落实《安康市实施意见》。"]) == "安康"
    assert body_place([LOCAL, "为安康全面建设小康社会。" * 3]) == ""


def test_a_national_speech_has_no_place() -> None:
    assert body_place([NATIONAL, "北京、上海、汶川的重建。", "汶川的重建。" * 3]) == ""
    assert body_place([NATIONAL, "向寻甸县雷锋希望小学的各位领导致以感谢。"]) == ""  # national first


@pytest.mark.parametrize(
    ("opening", "place"),
    [
        ("首先，请允许我代表全体志愿者，向寻甸县雷锋希望小学的各位领导、老师致以最诚挚的感谢。", "寻甸"),
        ("2011年7月13日，由大连市人民政府和交易中心联合主办的交易会在大连举行。", "大连"),
        ("在深圳的时候，我们去了广州，又到了杭州。", ""),  # named in passing
        ("我们来到井冈山，重温入党誓词。", ""),  # a training site, no host
    ],
)
def test_a_host_or_organiser_in_the_opening(opening: str, place: str) -> None:
    body = ["尊敬的各位领导、老师，亲爱的同学们：", "大家好！", opening, "谢谢大家！"]
    assert body_place(body) == place
    assert body_place(body[:1] + ["正文。"] * places.OPENING_PARAGRAPHS + body[1:]) == ""  # too late to be a host


# --- the development set ----------------------------------------------------------------------


def _realdev() -> Path | None:
    """``../shared/realdev`` beside the repository (CI), or beside its worktrees folder."""
    return next((p / "shared" / "realdev" for p in ROOT.parents[:2] if (p / "shared" / "realdev").is_dir()), None)


def test_development_set_places() -> None:
    folder = _realdev()
    if folder is None:
        pytest.skip("../shared/realdev (the real development documents) is not beside the repository")
    import speechrag

    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))["files"]
    report = speechrag.read_corpus(folder / "docs")
    by_file: dict[str, list[str]] = {}
    for s in report.speeches:
        by_file.setdefault(s.source, []).append(s.place)
    wrong = []
    for rel, want in expected.items():
        got = by_file.get(rel, [])
        gold = want["place"]
        if not gold or not lookup(gold):  # no place, or a country (保加利亚): no speech may have a division
            ok = not any(got) or all(p == gold for p in got)
        else:
            ok = bool(got) and same_place(got[0], gold)
        if not ok:
            wrong.append((rel, got[:3], gold))
    assert wrong == []


def test_a_speech_given_abroad_has_the_country_its_occasion_names() -> None:
    assert foreign_place("在保加利亚代表处工作汇报会上") == "保加利亚"
    assert foreign_place("在美国哈佛大学的演讲会上") == "美国"
    assert foreign_place("在全国科学大会上") == ""
    assert foreign_place("") == ""
    abroad = parse_header(["在保加利亚代表处工作汇报会上的讲话", "2014年6月6日", "1、要优先做到账实相符。"])
    assert abroad.place == "保加利亚"
    # a country only mentioned in a title is the topic, not where the speech was given
    assert parse_header(["关于中美关系的几点看法", "一、我们的立场。"]).place == ""
