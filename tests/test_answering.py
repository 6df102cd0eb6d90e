"""answer(): cited sentences as data, abstention, follow-ups; the real encoder in the slow tier."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import speechrag
from speechrag import QueryError, Searcher, build_index, load_index
from speechrag.answering import NOT_FOUND, Answer
from speechrag.answering.followups import resolve, resolve_history, user_turns
from speechrag.api import answer
from speechrag.render import markdown
from speechrag.text import has_han, normalise

_MARK = re.compile(r"\[(\d+)\]")


def _check_citations(a: Answer) -> None:
    """Every [n] names a citation, and each cited sentence is in the text, quoted verbatim."""
    numbers = {int(n) for n in _MARK.findall(a.text)}
    assert numbers == set(range(1, len(a.citations) + 1))
    assert a.text == (f"{a.notice}\n" if a.notice else "") + "".join(s.plain for s in a.sentences)
    for s in a.sentences:
        hit = a.citations[s.citation - 1]
        assert hit.passage.text[s.span[0] : s.span[1]] == s.text
        assert s.span[0] in {a0 for a0, _ in hit.cited} and s.span[1] in {b0 for _, b0 in hit.cited}
    for hit in a.citations:
        assert hit.cited
        for sentence in hit.cited_sentences:
            assert sentence in hit.passage.text
            assert sentence in a.text


# --- with the hash encoder ----------------------------------------------------------------


def test_answer_quotes_and_cites_passages(tiny_index: Searcher) -> None:
    a = answer("去年全县有多少计生家庭参加了保险？理赔金额多少？", index=tiny_index, threshold=-1e9)
    assert a.found
    _check_citations(a)
    assert "八十六万元" in a.text
    assert a.citations[0].citation == a.citations[0].passage.citation


def test_answer_round_trips_through_json(tiny_index: Searcher) -> None:
    a = answer("社区图书馆开放时间", index=tiny_index, threshold=-1e9)
    d = json.loads(json.dumps(a.to_dict(), ensure_ascii=False))
    assert Answer.from_dict(d) == a
    assert d["citations"][0]["cited_sentences"]
    assert d["evidence"]["score"] == a.evidence.score  # type: ignore[union-attr]


def test_abstention_lists_nearest_passages(tiny_index: Searcher) -> None:
    a = answer("农村饮水安全", index=tiny_index, threshold=float("inf"))
    assert not a.found
    assert a.text.startswith(NOT_FOUND)
    assert "可能相关" in a.text
    assert 1 <= len(a.citations) <= 3
    assert {int(n) for n in _MARK.findall(a.text)} == set(range(1, len(a.citations) + 1))


@pytest.mark.parametrize("bad", ["", "   ", "问" * 2001])
def test_bad_questions_raise_query_error(tiny_index: Searcher, bad: str) -> None:
    with pytest.raises(QueryError):
        answer(bad, index=tiny_index)


def test_bad_k_and_mode_raise_query_error(tiny_index: Searcher) -> None:
    with pytest.raises(QueryError, match="k must be"):
        answer("保险", k=0, index=tiny_index)
    with pytest.raises(QueryError, match="mode must be one of"):
        answer("保险", mode="semantic", index=tiny_index)
    with pytest.raises(QueryError, match="unknown speech id"):
        answer("保险", speeches="nope", index=tiny_index)


def test_speech_filter_applies_to_answers(tiny_index: Searcher) -> None:
    culture = next(p.speech_id for p in tiny_index.store.all_passages if "图书馆" in p.text)
    a = answer("今年要建成多少个", speeches=[culture], index=tiny_index, threshold=-1e9)
    assert {h.passage.speech_id for h in a.citations} == {culture}


# --- untrusted corpus text ----------------------------------------------------------------

HOSTILE = "今年要为计生家庭办理保险<script>alert(1)</script>，详见[链接](javascript:alert(1))和**加粗**。"


@pytest.fixture(scope="module")
def hostile_index(
    tmp_path_factory: pytest.TempPathFactory,
    write_corpus: Callable[[Path, Mapping[str, str]], Path],
) -> Searcher:
    corpus = write_corpus(tmp_path_factory.mktemp("hostile"), {"x.md": f"# 讲话\n\n{HOSTILE}\n"})
    path = tmp_path_factory.mktemp("hostile-index") / "embeddings"
    build_index(corpus, path, model="hash")
    return load_index(path)


def test_answer_text_is_plain_and_rendering_escapes_it(hostile_index: Searcher) -> None:
    for threshold in (-1e9, float("inf")):  # both the answer and the "possibly related" list
        a = answer("计生家庭保险", index=hostile_index, threshold=threshold)
        # A Python caller gets the speech's own characters: no markup escapes to undo.
        assert "<script>alert(1)</script>" in a.text and "\\" not in a.text
        shown = markdown(a)
        assert "<script>" not in shown
        assert "](javascript" not in shown
        assert "**加粗**" not in shown


def test_history_must_be_a_list_of_turns(tiny_index: Searcher) -> None:
    with pytest.raises(QueryError, match="history must be a list"):
        answer("保险", history="农村饮水安全怎么保障？", index=tiny_index)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="history must be a list"):
        answer("保险", history=42, index=tiny_index)  # type: ignore[arg-type]


def test_bad_rrf_k_is_a_query_error(tiny_index: Searcher) -> None:
    with pytest.raises(QueryError, match="rrf_k"):
        answer("保险", rrf_k=-1, index=tiny_index)


# --- follow-ups ---------------------------------------------------------------------------


def test_user_turns_accepts_strings_messages_and_pairs() -> None:
    history = [
        "第一问",
        {"role": "assistant", "content": "回答"},
        {"role": "user", "content": "第二问"},
        ("第三问", "回答"),
        ["第四问", None],
    ]
    assert user_turns(history) == ["第一问", "第二问", "第三问", "第四问"]


def test_vague_follow_up_takes_the_previous_topic(tiny_index: Searcher) -> None:
    q = resolve(tiny_index, "具体有哪些措施？", "农村饮水安全怎么保障？")
    assert "饮水" in q and "措施" in q
    a = answer("具体有哪些措施？", history=["农村饮水安全怎么保障？"], index=tiny_index, threshold=-1e9)
    assert "饮水" in a.query
    assert any("饮水" in h.passage.text or "水" in h.passage.text for h in a.citations)


def test_self_contained_question_is_left_alone(tiny_index: Searcher) -> None:
    q = "社区图书馆每天免费开放多长时间？"
    assert resolve(tiny_index, q, "农村饮水安全怎么保障？") == q
    why = "为什么要建立长效运行机制呢？"  # ends like an ellipsis, but asks its own question
    assert resolve(tiny_index, why, "农村饮水安全怎么保障？") == why
    assert answer(q, history=["农村饮水安全怎么保障？"], index=tiny_index).query == q


@pytest.mark.parametrize(
    "question",
    ["那他们的工资由谁来发？", "它每天开放多长时间？", "How often is it checked?", "那今年还要新建多少处？"],
)
def test_follow_up_pointing_back_keeps_the_previous_topic(tiny_index: Searcher, question: str) -> None:
    q = resolve(tiny_index, question, "农村饮水安全工程的管护员怎么安排？")
    assert q.startswith("农村饮水安全工程的管护员怎么安排") and q.endswith(question)


@pytest.mark.parametrize("question", ["其他地方的图书馆开放多久？", "应该由哪个部门负责社区图书馆？"])
def test_words_that_only_look_like_pronouns_do_not_make_a_follow_up(tiny_index: Searcher, question: str) -> None:
    assert resolve(tiny_index, question, "农村饮水安全怎么保障？") == question


def test_follow_ups_chain_through_history(tiny_index: Searcher) -> None:
    history = ["农村饮水安全工程今年要新建多少处？", "具体有哪些措施？"]
    q = resolve_history(tiny_index, "还有呢？", history)
    assert "饮水" in q


# --- the real encoder over the shipped corpus ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("商丘今年人口出生率要控制在多少以内？", "13.8%"),
        ("仙桃去年全市出生人口性别比是多少？", "123.58"),
        ("计划生育基本国策是哪一年制定的？", "1982年"),
        ("是谁宣读了考核验收结果？", "白超"),
    ],
)
def test_figure_and_name_questions_lead_with_the_fact(
    shipped_index: Searcher, question: str, fact: str
) -> None:
    a = answer(question, index=shipped_index)
    assert a.found
    _check_citations(a)
    assert fact in a.sentences[0].text


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    ["北京冬奥会的吉祥物叫什么名字？", "糖尿病人平时饮食要注意什么？", "What is the capital of France?"],
)
def test_unrelated_questions_abstain(shipped_index: Searcher, question: str) -> None:
    a = answer(question, index=shipped_index)
    assert not a.found
    assert a.text.startswith(NOT_FOUND)
    assert a.citations  # still offers the nearest passages


@pytest.mark.slow
def test_english_question_is_answered_from_chinese_text(shipped_index: Searcher) -> None:
    a = answer("What does the 1135 regional development strategy of Tianshui consist of?",
               index=shipped_index)
    assert a.found
    assert "全球华人寻根祭祖圣地" in a.text


@pytest.mark.slow
def test_follow_up_swaps_the_place(shipped_index: Searcher) -> None:
    history = [{"role": "user", "content": "仙桃去年出生人口性别比是多少？"},
               {"role": "assistant", "content": "……123.58……"}]
    a = answer("那商丘呢？", history=history, index=shipped_index)
    assert "商丘" in a.query and "仙桃" not in a.query
    assert a.found
    assert "118左右" in a.text
    alone = answer("商丘实行计划生育以来少生了多少人？", history=history, index=shipped_index)
    assert alone.query == "商丘实行计划生育以来少生了多少人？"
    assert "230万" in alone.text


# --- content words, details asked, scope, partial answers -----------------------------------

from speechrag.answering import PARTIAL, AnswerSentence  # noqa: E402
from speechrag.answering.details import (  # noqa: E402
    AMOUNT,
    DURATION,
    FREQUENCY,
    NAME,
    WHEN,
    WHO,
    asked_detail,
    gives,
    missing_detail,
)
from speechrag.answering.evidence import has_content_words  # noqa: E402
from speechrag.answering.followups import content_terms  # noqa: E402
from speechrag.answering.scope import Scope, scope_of  # noqa: E402
from speechrag.answering.sentences import figure_kind, is_prose, select_sentences  # noqa: E402
from speechrag.render import plain, sources_html  # noqa: E402

NO_CONTENT = ["?", "test", "hello", "a", "123", "😀", "？？？", "Tell me a joke", "hi there", "谢谢", "ok", "你好"]


@pytest.mark.parametrize("question", NO_CONTENT)
def test_inputs_without_content_words_are_never_answered(tiny_index: Searcher, question: str) -> None:
    assert not has_content_words(content_terms(tiny_index, question))
    a = answer(question, index=tiny_index, threshold=-1e9)  # whatever the score
    assert not a.found and a.status == "not_found" and not a.sentences
    assert a.evidence is not None and not a.evidence.content


@pytest.mark.parametrize("question", ["社区图书馆开放时间", "How many wells?", "理赔金额", "水质 达标"])
def test_questions_with_content_words_are_judged_by_the_score(tiny_index: Searcher, question: str) -> None:
    assert has_content_words(content_terms(tiny_index, question))


def test_details_asked_and_given() -> None:
    assert asked_detail("这个奖多久评一次？") is FREQUENCY
    assert asked_detail("是谁宣读了考核验收结果？") is WHO
    assert asked_detail("商丘的人口自然增长率目标是多少？") is AMOUNT
    assert asked_detail("How often is it awarded?") is FREQUENCY
    assert asked_detail("为什么国家要调整生育政策？") is None
    assert asked_detail("那“三基地”分别是哪几个？") is None  # which ones, not how many
    assert gives(AMOUNT, "人口出生率控制在13.8%以内") and not gives(AMOUNT, "将制定出台《麦积山文艺奖》")
    assert gives(FREQUENCY, "每两年评选一次") and not gives(FREQUENCY, "将制定出台《麦积山文艺奖》")
    # A title, not a title's characters across two words (干部|长期, 城市|长远).
    assert gives(WHO, "由市委组织部长宣读考核结果") and gives(WHO, "办公室主任作了报告")
    assert not gives(WHO, "广大乡村干部长期工作在一线") and not gives(WHO, "着眼城市长远发展，完成主任务")
    # a name without a title: a speaker introducing themself, or a person next to their office
    assert gives(WHO, "大家好，我是本次的项目汇报人，连志林") and gives(WHO, "省长许昆林作政府工作报告")
    assert not gives(WHO, "大家好，今天向各位汇报项目进展")


def test_a_blank_or_a_lone_unit_is_no_figure() -> None:
    """A template's blank (xxx万元) and 万元 alone answer no how-much question."""
    q = "全平台销售总额具体是多少万元？"
    assert not gives(AMOUNT, "一年接待工作，全平台销售总额达xxx万元，总接待人数为xxxx人", q)
    assert gives(AMOUNT, "全平台销售总额达1500万元", q) and gives(AMOUNT, "销售总额达一千五百万元", q)


def test_a_rate_asked_is_answered_by_a_per_cent() -> None:
    q = "宜春市2022年城镇登记失业率是多少？"
    assert not gives(AMOUNT, "登记失业率数据来自市人社局；电信数据来自移动、电信和联通三家。", q)
    assert gives(AMOUNT, "城镇登记失业率为3.2%。", q) and gives(AMOUNT, "人口出生率控制在13.8‰以内", "出生率为多少？")


def test_an_institutions_name_asked_is_answered_by_one() -> None:
    q = "李富涛所在公司的全称是什么？"
    assert not gives(NAME, "最后，我代表全体新员工，再次感谢公司给予我们的帮助。", q)
    assert not gives(NAME, "直到最后离别时的《再见》。", q)
    assert gives(NAME, "我来自杭州海康威视数字技术股份有限公司。", q)
    assert gives(NAME, "欢迎来到成都工业职业技术学院。", "这所学校的全称是什么？")


@pytest.mark.parametrize(
    ("question", "sentence", "given"),
    [
        # the unit the question names must come with the figure
        ("天水市文联有多少名会员？", "程凯同志安排部署了全市20xx年文联工作。", False),
        ("今年的经费预算是多少万元？", "落实“三个一”领导机制，经费投入不能减少。", False),
        ("奖励扶助资金总额多少？", "惠及计生家庭10.8万户。", False),
        ("奖励扶助资金总额多少？", "发放计划生育奖励扶助资金1500万元。", True),
        ("实行计划生育以来少生了多少人？", "全市累计少生育230万人。", True),
        # money leaves out 元 only at a clause's end
        ("奖金有多少钱？", "360万天水儿女正在加快建设小康社会。", False),
        ("奖金有多少钱？", "发放奖励资金共计1500万。", True),
        ("受益的有多少户？", "惠及计生家庭10.8万户。", True),
        # a bare large number: the noun came first and the unit was left out
        ("商丘每年出生多少人？", "商丘每年新出生人口近10万，尽管处于低生育水平。", True),
        # no unit named: any figure, but a date is not one
        ("出生率目标是多少？", "人口出生率控制在13.8‰以内。", True),
        ("出生率目标是多少？", "20xx年5月18日召开了会议。", False),
        # 一 before a measure word is an article or the end of a word; a quoted number is a name
        ("性别比是多少？", "出生人口性别比长期偏高，是一个重要的社会问题。", False),
        ("有多少个协会？", "各级协会都要按照党委和政府的统一部署开展活动。", False),
        ("有多少个协会？", "文联下设一十二个协会。", True),
        ("战略有多少项？", "为“1135”区域发展战略实施呐喊助威。", False),
        # a share asked is answered by a per cent, though the question names money (经费)
        ("研发经费支出相当于生产总值的比例达到多少？", "研发经费支出相当于生产总值的比例达到4.5%左右。", True),
        ("研发经费支出相当于生产总值的比例达到多少？", "全社会研发经费支出1000亿元。", False),
        ("研发经费支出相当于生产总值的比例达到多少？", "研发投入强度达到百分之四点五。", True),
        ("已有多少比例的小国盈利了？", "现在已有七成的小国盈利了。", True),
        # an approximate figure keeps its unit
        ("有多少人出身于秘书系统？", "将近两千多名员工出身于秘书系统。", True),
        ("贫困人口还有多少人？", "贫困人口40 余万人。", True),
        ("贫困人口还有多少人？", "贫困人口大幅减少。", False),
        # a rate asked is not answered by a total
        ("奖励扶助金每户每年发多少钱？", "为10.8万户计生家庭发放奖励扶助资金1500万元。", False),
        ("奖励扶助金每户每年发多少钱？", "奖励扶助金每人每年不低于960元。", True),
        ("人均补助多少元？", "人均补助800元。", True),
    ],
)
def test_an_amount_comes_with_the_unit_asked(question: str, sentence: str, given: bool) -> None:
    assert asked_detail(question) is AMOUNT
    assert gives(AMOUNT, sentence, question) is given


@pytest.mark.parametrize(
    "sentence",
    [
        "全年粮食产量达到一千三百四十四亿斤。",
        "城镇登记失业率控制在百分之四点五以内。",
        "研发投入增长百分之十五。",
        "国内生产总值增长７.５％。",  # as normalise leaves it: 7.5%
        "居民收入增长3 ％。",
        "预期目标是增长6%－6.5%。",
        "预期目标是增长6.5%-7%。",
        "预期目标是增长6%—6.5%。",
        "预期目标是增长6%至6.5%。",
        "全市共有文艺家协会十二个。",
    ],
)
def test_figures_as_written_answer_an_amount(sentence: str) -> None:
    assert gives(AMOUNT, normalise(sentence), "目标是多少？")
    assert figure_kind(normalise(sentence)) == 1.0


@pytest.mark.parametrize(
    "sentence",
    [
        "二〇一〇年召开了全市工作会议。",  # dates, however written, are no amount
        "2016—2020年是全面建成小康社会决胜阶段。",
        "2016-2020年是全面建成小康社会决胜阶段。",
        "要千方百计扩大就业，这是一个重要的民生问题。",  # numerals in words and articles
        "万一出现问题，要及时处置。",
        "各级协会要按照统一部署开展活动。",
    ],
)
def test_dates_and_numerals_in_words_are_no_amount(sentence: str) -> None:
    assert not gives(AMOUNT, normalise(sentence), "目标是多少？")


@pytest.mark.parametrize(
    ("question", "detail"),
    [
        ("这个奖多久评一次？", "frequency"),
        ("全运会多长时间举办一届？", "frequency"),
        ("培训班培训了多少人、为期多久？", "duration"),
        ("骨干培训一共学习了多长时间？", "duration"),
        ("社区图书馆每天开放多长时间？", "duration"),
        ("支教活动持续几天？", "duration"),
    ],
)
def test_how_long_is_not_how_often(question: str, detail: str) -> None:
    d = asked_detail(question)
    assert d is not None and d.name == detail


@pytest.mark.parametrize(
    ("sentence", "given"),
    [
        ("团校骨干培训共两个学期。", True),
        ("60余人进行了为期一个月的培训。", True),
        ("社区图书馆免费开放时间延长到每天十小时。", True),
        ("支教活动为期5天。", True),
        ("培训于2019年在井冈山举行。", False),  # a date is not how long
        ("培训于3月举行。", False),
        ("培训取得了很好的效果。", False),
    ],
)
def test_a_duration_is_a_number_of_years_months_days_or_hours(sentence: str, given: bool) -> None:
    assert gives(DURATION, sentence) is given


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("天水市文联有多少名会员？", "多少人"),
        ("这个奖的奖金有多少钱？", "多少钱"),
        ("研发经费支出相当于生产总值的比例达到多少？", "比例"),
        ("惠及多少户？", "多少户"),
        ("增长目标是多少？", "具体数字"),
        ("这个奖多久评一次？", "多久一次"),
    ],
)
def test_a_partial_answer_says_which_count_is_missing(question: str, missing: str) -> None:
    # A quoted sentence may hold another figure (会员增加了20%): 没有说具体数字 over it reads as false.
    detail = asked_detail(question)
    assert detail is not None and missing_detail(detail, question) == missing


def test_a_date_in_chinese_numerals_answers_when() -> None:
    assert gives(WHEN, "二〇一〇年召开了全市工作会议。") and not gives(WHEN, "召开了全市工作会议。")
    assert figure_kind("二〇一〇年召开了会议。") == 1.0 and figure_kind("召开了会议。") == 0.0
    assert figure_kind("落实“三个一”机制，抓好三个方面。") == 0.5  # a numeral with a measure word is half a figure


def test_lines_without_a_sentence_are_not_prose() -> None:
    assert not is_prose("政府工作报告——20XX年X月X日在区人大会议上 区长XXX")
    assert not is_prose("专栏1 主要经济指标")
    assert is_prose("今年要新建集中供水工程四十处。")


def test_scope_decides_whose_figure_answers(tiny_index: Searcher) -> None:
    water = next(s.id for s in tiny_index.speeches if "饮水" in s.title)
    culture = next(s.id for s in tiny_index.speeches if "文化" in s.title)
    q = "今年要新建多少处供水工程？"
    qvec = tiny_index.encode_query(q)
    hits = tiny_index.rank(q, qvec, 20).hits
    picked = select_sentences(tiny_index, q, qvec, hits, scope=Scope(("某县",), (), frozenset({water})),
                              detail=AMOUNT)
    assert picked.status == "found" and picked.chosen[0].in_scope
    assert "四十处" in picked.chosen[0].text
    # Asked of another speech, the figure is offered as another speech's, not as the answer.
    other = select_sentences(tiny_index, q, qvec, hits, scope=Scope(("某区",), (), frozenset({culture})),
                             detail=AMOUNT)
    assert other.status == "partial" and other.elsewhere
    assert [c.in_scope for c in other.chosen] == [False]
    unscoped = scope_of(tiny_index, q)
    assert not unscoped and unscoped.holds("anything")


def test_detail_the_speeches_leave_out_is_a_partial_answer(tiny_index: Searcher) -> None:
    q = "图书馆的管理员叫什么名字？"
    qvec = tiny_index.encode_query(q)
    hits = tiny_index.rank(q, qvec, 5).hits
    picked = select_sentences(tiny_index, q, qvec, hits, detail=asked_detail(q))
    assert picked.status == "partial" and picked.missing == "名称"
    assert 1 <= len(picked.chosen) <= 2
    a = answer(q, index=tiny_index, threshold=-1e9)
    assert a.status == PARTIAL and not a.found
    assert a.notice.startswith("讲话提到了") and "但没有说名称" in a.notice
    assert "图书馆" in a.notice  # what the speeches do say, in the question's words
    assert a.text.startswith(a.notice)
    assert Answer.from_dict(json.loads(json.dumps(a.to_dict(), ensure_ascii=False))) == a
    assert markdown(a).startswith("*讲话提到了")
    assert plain(a).startswith(a.notice) and "来源：" in plain(a)
    assert "<mark>" in sources_html(a)


def test_a_figure_question_answers_with_one_sentence_when_it_suffices(tiny_index: Searcher) -> None:
    a = answer("今年要新建多少处集中供水工程？", index=tiny_index, threshold=-1e9)
    assert a.found and "四十处" in a.sentences[0].text
    assert len(a.sentences) == 1


def test_speech_labels_are_data_and_rendered() -> None:
    s = AnswerSentence("人口出生率控制在13.8%以内。", 1, (0, 16), speech="篇五·商丘")
    assert s.plain == "人口出生率控制在13.8%以内。（篇五·商丘）[1]"
    assert "（篇五·商丘）" not in s.text
    assert AnswerSentence.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="status"):
        Answer("x", (), False, status="maybe")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "history", "place"),
    [
        ("仙桃今年人口出生率要控制在多少以内？", [], "仙桃"),
        ("安康今年人口出生率要控制在多少以内？", [], "安康"),
        ("那仙桃呢？", ["商丘今年人口出生率要控制在多少以内？"], "仙桃"),
    ],
)
def test_another_places_figure_never_answers(shipped_index: Searcher, question: str, history: list[str],
                                             place: str) -> None:
    a = answer(question, history=history, index=shipped_index)
    assert not a.found and a.status == PARTIAL
    assert a.notice.startswith(f"关于{place}，讲话没有说")
    assert all(s.speech.endswith("商丘") for s in a.sentences)  # offered, labelled as 商丘's
    assert "（篇五·商丘）" in plain(a)


@pytest.mark.slow
def test_an_english_possessive_names_the_place(shipped_index: Searcher) -> None:
    # Ankang's was read as no place: 商丘's 13.8 % target answered, unlabelled.
    a = answer("What is Ankang's birth rate target?", index=shipped_index)
    for s in a.sentences:
        place = shipped_index.place_of(a.citations[s.citation - 1].passage)
        assert place == "安康" or s.speech, s


@pytest.mark.slow
def test_follow_up_asking_what_the_speech_leaves_out_is_partial(shipped_index: Searcher) -> None:
    first = answer("天水要设立什么文艺奖？", index=shipped_index)
    assert first.found and "麦积山文艺奖" in first.sentences[0].text
    a = answer("这个奖多久评一次？", history=["天水要设立什么文艺奖？"], index=shipped_index)
    assert a.status == PARTIAL and "但没有说多久一次" in a.notice
    assert "麦积山文艺奖" in a.text
    # How much the prize is: no speech says. 360万天水儿女 is people, not money, and a sentence
    # holding some other figure is not nearer for holding one.
    money = answer("这个奖的奖金有多少钱？", history=["天水要设立什么文艺奖？"], index=shipped_index)
    assert money.status == PARTIAL and "但没有说多少钱" in money.notice
    assert "360万" not in money.text


@pytest.mark.slow
def test_place_follow_up_quotes_only_that_place(shipped_index: Searcher) -> None:
    a = answer("那商丘呢？", history=["仙桃去年出生人口性别比是多少？"], index=shipped_index)
    assert a.found and "118左右" in a.sentences[0].text
    assert all(shipped_index.place_of(a.citations[s.citation - 1].passage) == "商丘" for s in a.sentences)


# --- scope by pinyin and by year ---------------------------------------------------------------

from types import SimpleNamespace  # noqa: E402

from speechrag.answering.scope import named_years, without_names  # noqa: E402
from speechrag.passage import Speech  # noqa: E402


def _dated_speeches() -> Any:
    """A stand-in for a Searcher with four dated speeches about two places."""
    speeches = (
        Speech("x16", "甲", "x16.md", 1, place="仙桃", date="2016-03-01"),
        Speech("x17", "乙", "x17.md", 1, place="仙桃", date="2017-02-11"),
        Speech("s17", "丙", "s17.md", 1, place="商丘市", date="2017"),
        Speech("n", "丁", "n.md", 1),
    )
    return SimpleNamespace(speeches=speeches, places=("商丘市", "仙桃"),
                           place_aliases={"xiantao": "仙桃", "shangqiu": "商丘市"},
                           document_frequency=lambda term: int(term == "1982年"))


def test_english_question_naming_a_city_in_pinyin_is_scoped_like_chinese() -> None:
    s = _dated_speeches()
    english = scope_of(s, "What was the sex ratio in Xiantao last year?")
    assert english == scope_of(s, "仙桃去年出生人口性别比是多少？")
    assert english.speech_ids == {"x16", "x17"} and english.places == ("仙桃",)
    assert without_names(s, "What was the sex ratio in Xiantao?", english).split() == [
        "What", "was", "the", "sex", "ratio", "in", "?"]


def test_years_named_in_chinese_and_english() -> None:
    assert named_years("2016年仙桃的出生率是多少？") == (2016,)
    assert named_years("2016 年的目标") == (2016,)
    assert named_years("奖励2000元") == ()  # an amount, not a year
    assert named_years("What did Shangqiu plan in 2017?") == (2017,)
    assert named_years("How many births, 2000 or more?") == ()


def test_a_year_scopes_to_the_speeches_about_it() -> None:
    s = _dated_speeches()
    assert scope_of(s, "2017年的目标是什么？").speech_ids == {"x17", "s17"}
    both = scope_of(s, "仙桃2017年的目标是什么？")
    assert both.speech_ids == {"x17"} and both.topic_years == (2017,) and both.label == "仙桃2017年"
    assert scope_of(s, "What did Xiantao aim for in 2016?").speech_ids == {"x16"}
    # A year only a text names (1982年 in a sentence) scopes nothing, and is not missing either.
    assert not scope_of(s, "计划生育基本国策是1982年制定的吗？")
    assert scope_of(s, "仙桃1982年的情况").speech_ids == {"x16", "x17"}
    assert not scope_of(s, "仙桃1982年的情况").missing


def test_a_documents_year_scopes_to_the_speeches_given_then() -> None:
    s = _dated_speeches()
    named = scope_of(s, "2017年政府工作报告提出的目标是什么？")
    assert named.speech_ids == {"x17", "s17"} and named.years == (2017,) and not named.topic_years
    assert scope_of(s, "商丘2017年的讲话说了什么？").speech_ids == {"s17"}


def test_a_year_or_place_no_document_has_is_missing() -> None:
    s = _dated_speeches()
    assert scope_of(s, "2021年的地区生产总值是多少？").missing == ("2021年",)
    assert scope_of(s, "商丘2016年的目标是什么？").missing == ("商丘市2016年",)
    assert scope_of(s, "上海市今年的目标是什么？").missing == ("上海市",)
    assert not scope_of(s, "仙桃2016年的目标是什么？").missing


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("上海今年的目标是什么？", ("上海",)),  # opens the question: its scope
        ("广州的政府工作报告提出了什么？", ("广州",)),  # owns the report
        ("北京冬奥会的吉祥物叫什么名字？", ()),  # an event named after its host city
        ("井冈山干部学院在哪里？", ()),  # an institution's name
        ("成都工业职业技术学院在2016年制定了多少项制度？", ()),  # however long the name
        ("汪广平说了什么？", ()),  # 广平 inside a person's name is no place
    ],
)
def test_a_place_is_scope_only_where_the_question_uses_it_as_one(
    question: str, missing: tuple[str, ...]
) -> None:
    assert scope_of(_dated_speeches(), question).missing == missing


def test_follow_up_swaps_the_year(tiny_index: Searcher) -> None:
    assert resolve(tiny_index, "那2017年呢？", "2016年的参保率是多少？") == "2017年的参保率是多少？"


def test_names_are_not_topic_words() -> None:
    scope = Scope(("商丘",), ("张三",), frozenset({"s"}))
    assert scope.topic_terms(["商丘市", "张三", "GDP", "出生率"]) == ["GDP", "出生率"]
    assert Scope().topic_terms(["商丘", "GDP"]) == ["商丘", "GDP"]
    assert Scope().topic_terms(["去年", "今年", "GDP", "2016"]) == ["GDP", "2016"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    ["商丘去年的GDP是多少？", "仙桃去年的GDP是多少？", "What will the weather be like in Tianshui tomorrow?"],
)
def test_a_place_or_year_named_is_no_evidence_that_its_speech_answers(shipped_index: Searcher, question: str) -> None:
    # The place is in passage after passage of its own speech, and 去年 in many; the topic is in
    # none. Counted as covered words, the name lifted the coverage to 0.2-0.25, and 去年 in
    # 仙桃's passages to 0.4: its 去年 sex-ratio figure answered the GDP question.
    a = answer(question, index=shipped_index)
    assert a.evidence is not None and a.evidence.coverage == 0.0
    if has_han(question):
        assert not a.found  # (the English one is still answered: e5's similarity carries it)
    # A question made of a name alone is about it.
    assert answer("仙桃", index=shipped_index).evidence.coverage == 1.0  # type: ignore[union-attr]


def test_english_coverage_counts_phrases_through_their_chinese_terms(tiny_index: Searcher) -> None:
    from speechrag.answering.evidence import unit_coverage

    insurance = ("insurance", ("保险",))
    assert unit_coverage(tiny_index, (insurance,), "计划生育保险") == 1.0
    # A phrase the speeches have no word for weighs as a missing word: the question is half off-topic.
    half = unit_coverage(tiny_index, (insurance, ("router", ())), "计划生育保险")
    assert 0.0 < half < 0.5
    assert unit_coverage(tiny_index, (insurance,), "饮水安全") == 0.0


# --- passages ranked by their best sentence too ------------------------------------------------

from speechrag.answering.ranking import RERANK_DEPTH, rank_question  # noqa: E402
from speechrag.answering.sentences import _sentence_slots, rerank, score_sentences  # noqa: E402


def test_rerank_lifts_the_passage_whose_sentence_answers(tiny_index: Searcher) -> None:
    q = "公益电影放映多少场？"
    qvec = tiny_index.encode_query(q)
    hits = tiny_index.rank(q, qvec, 5).hits
    assert len(hits) >= 4
    answering = next(i for i, h in enumerate(hits) if "公益电影放映五百场" in h.passage.text)
    # Put it last: its sentence (every term of the question and a figure) brings it back up.
    worst_first = (*hits[:answering], *hits[answering + 1 :], hits[answering])
    got = rerank(tiny_index, q, qvec, worst_first)
    assert sorted(h.passage.id for h in got) == sorted(h.passage.id for h in hits)
    assert [h.rank for h in got] == list(range(1, len(got) + 1))
    assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
    assert next(h.rank for h in got if h.passage.id == hits[answering].passage.id) <= 2
    # The speeches a question names stay first, whatever their sentences score.
    other = hits[answering].passage.speech_id
    scope = Scope(("某地",), (), frozenset({h.passage.speech_id for h in hits} - {other}))
    scoped = rerank(tiny_index, q, qvec, worst_first, scope)
    inside = [scope.holds(h.passage.speech_id) for h in scoped]
    assert inside == sorted(inside, reverse=True) and not inside[-1]


@pytest.mark.slow
def test_retrieve_ranks_the_paragraph_holding_the_asked_sentence_first(shipped_index: Searcher) -> None:
    # 计划生育工作始于上个世纪70年代 is one sentence of a 700-character review of 40 years, which
    # ranked second behind a paragraph about the policy in general before sentence reranking.
    q = "计划生育工作是从什么年代开始的？"
    qvec = shipped_index.encode_query(q)
    assert "始于上个世纪70年代" not in shipped_index.rank(q, qvec, 5).hits[0].passage.text
    hits = speechrag.retrieve(q, k=3, index=shipped_index)
    assert "始于上个世纪70年代" in hits[0].passage.text
    # retrieve(k) is the top k of the list eval's R@1 and MRR@10 are measured on.
    listed = rank_question(shipped_index, q, qvec, RERANK_DEPTH, mode="hybrid", where=None, rrf_k=60)[1]
    assert [h.passage.id for h in hits] == [h.passage.id for h in listed[:3]]
    # Dense and keyword modes stay their own search's ranking.
    dense = speechrag.retrieve(q, k=5, mode="dense", index=shipped_index)
    assert [h.passage.id for h in dense] == [h.passage.id for h in shipped_index.rank(q, qvec, 5, mode="dense").hits]
    a = answer(q, index=shipped_index)
    assert a.found and a.sentences[0].citation == 1 and "70年代" in a.sentences[0].text


def test_a_place_named_is_scope_not_a_word_to_match(tiny_index: Searcher) -> None:
    # Counted as a word, 商丘 made 结合商丘实际，我讲以下三个方面的问题。 outscore the sentence
    # that says what 两非 means, in 商丘讲话里的“两非”具体指什么？
    water = next(s.id for s in tiny_index.speeches if "饮水" in s.title)
    q = "某县今年要新建多少处供水工程？"
    qvec = tiny_index.encode_query(q)
    hits = tiny_index.rank(q, qvec, 5).hits
    scope = Scope(("某县",), (), frozenset({water}))
    cands, texts = _sentence_slots(hits)
    scored, terms = score_sentences(tiny_index, q, hits, scope, cands, texts, tiny_index.sentence_vectors(texts) @ qvec)
    assert "某县" not in terms and "供水" in terms
    assert not any("某县" in c.terms for c in scored)
    # A question of a name alone is about it.
    assert score_sentences(tiny_index, "某县", hits, scope, cands, texts, np.zeros(len(texts)))[1] == ["某县"]


@pytest.mark.slow
def test_a_sentence_score_a_hair_better_does_not_override_the_retrievers(shipped_index: Searcher) -> None:
    # The best sentences of the first two passages score 1.2624 and 1.2627: a tie, so the
    # passage that says second children need no approval stays first.
    q = "现在生第二个孩子还要去审批吗？"
    assert "不实行审批" in speechrag.retrieve(q, k=1, index=shipped_index)[0].passage.text


@pytest.mark.parametrize(
    ("named", "plain", "filters"),
    [
        ("仙桃今年人口出生率要控制在多少以内？", "今年人口出生率要控制在多少以内？", {"place": "仙桃"}),
        ("安康今年人口出生率要控制在多少以内？", "今年人口出生率要控制在多少以内？", {"place": "安康"}),
    ],
)
def test_a_filter_answers_as_the_same_scope_named(shipped_index: Searcher, named: str, plain: str,
                                                   filters: dict[str, str]) -> None:
    """A place chosen in the filters gets the partial rule of the place named in the question:
    关于仙桃，讲话没有说…；another speech's sentence, labelled, never as 仙桃's own."""
    by_name, by_filter = answer(named, index=shipped_index), answer(plain, index=shipped_index, **filters)
    assert by_filter.status == by_name.status == "partial"
    assert by_filter.notice == by_name.notice and by_filter.notice.startswith(f"关于{filters['place']}")
    assert [s.text for s in by_filter.sentences] == [s.text for s in by_name.sentences]
