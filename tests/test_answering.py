"""answer(): cited sentences as data, abstention, follow-ups; the real encoder in the slow tier."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from speechrag import QueryError, Searcher, build_index, load_index
from speechrag.answering import NOT_FOUND, Answer, answer
from speechrag.answering.followups import resolve, resolve_history, user_turns
from speechrag.render import markdown

_MARK = re.compile(r"\[(\d+)\]")


def _check_citations(a: Answer) -> None:
    """Every [n] names a citation, and each cited sentence is in the text, quoted verbatim."""
    numbers = {int(n) for n in _MARK.findall(a.text)}
    assert numbers == set(range(1, len(a.citations) + 1))
    assert a.text == "".join(f"{s.text}[{s.citation}]" for s in a.sentences)
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
    with pytest.raises(QueryError, match="unknown mode"):
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
