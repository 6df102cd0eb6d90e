"""Keyword index: jieba tokens, bm25s scoring, save/load, user dictionary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from speechrag.lexical import KeywordIndex, Tokenizer

tokenize = Tokenizer()

TEXTS = [
    "计划生育家庭意外伤害保险是保障独生子女家庭的一项惠民措施。",
    "今年要新建集中供水工程四十处，解决十五万农村人口的饮水不安全问题。",
    "社区图书馆免费开放时间延长到每天十小时。",
    "要落实水费收缴制度，组建专业管护队伍。",
]


def test_tokenize_search_mode_drops_punctuation_and_stopwords() -> None:
    tokens = tokenize("同志们：我们要做好计划生育工作，确保“保费”按时收缴！")
    assert {"计划", "生育", "计划生育", "保费", "收缴"} <= set(tokens)
    assert not {"：", "，", "“", "”", "！", "的", "我们", "同志们", "要"} & set(tokens)
    assert tokenize("的，了。和！") == []
    assert tokenize("Water SAFETY") == ["water", "safety"]


def test_search_ranks_matching_passage_first_and_omits_non_matches() -> None:
    kw = KeywordIndex.build(TEXTS)
    rows, scores = kw.search("农村饮水", 10)
    assert rows[0] == 1
    assert (scores > 0).all() and list(scores) == sorted(scores, reverse=True)
    assert 0 not in rows and 2 not in rows
    assert rows.dtype == np.int64


def test_search_with_no_usable_tokens_returns_nothing() -> None:
    kw = KeywordIndex.build(TEXTS)
    for query in ["", "的了", "！？", "火星探测"]:
        rows, scores = kw.search(query, 5)
        assert len(rows) == len(scores) == 0, query
    assert len(kw.search("保险", 0)[0]) == 0
    assert len(kw.search("保险", 1000)[0]) == 1


def test_save_load_round_trip(tmp_path: Path) -> None:
    kw = KeywordIndex.build(TEXTS)
    kw.save(tmp_path / "kw")
    again = KeywordIndex.load(tmp_path / "kw")
    assert again.size == len(TEXTS)
    for q in ["水费", "图书馆开放", "独生子女保险"]:
        a, b = kw.search(q, 3), again.search(q, 3)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1])


def test_tokenless_passage_keeps_its_row() -> None:
    kw = KeywordIndex.build(["！！！", "图书馆"])
    assert kw.size == 2
    assert list(kw.search("图书馆", 5)[0]) == [1]


def test_userdict_is_used_and_travels_with_the_index(tmp_path: Path) -> None:
    word = "计生保险"
    assert word not in Tokenizer()("落实计生保险政策")
    userdict = tmp_path / "userdict.txt"
    userdict.write_text(f"{word} 100 n\n", encoding="utf-8")
    assert word in Tokenizer(userdict)("落实计生保险政策")
    assert Tokenizer(userdict).fingerprint != Tokenizer().fingerprint

    kw = KeywordIndex.build(["落实计生保险政策", "其他内容"], userdict)
    kw.save(tmp_path / "kw")
    userdict.unlink()  # the saved index must not depend on the corpus copy
    again = KeywordIndex.load(tmp_path / "kw")
    assert word in again.tokenize("计生保险")
    assert list(again.search("计生保险", 2)[0]) == [0]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_tokenize_never_keeps_empty_or_punctuation_only_tokens(text: str) -> None:
    for token in tokenize(text):
        assert token and token == token.strip()
        assert any(c.isalnum() for c in token)


def test_parallel_build_matches_serial_build(tmp_path: Path) -> None:
    # Several chunks so the pool really splits the work, and a user dictionary so the workers
    # must cut as the parent does; rows, vocabulary and scores must not depend on the split.
    from speechrag import lexical

    userdict = tmp_path / "userdict.txt"
    userdict.write_text("计生保险 100 n\n", encoding="utf-8")
    texts = [f"{t}第{i}条" for i in range(lexical._CHUNK * 2 + 7) for t in TEXTS[i % 4 : i % 4 + 1]]
    texts[5] = "！！！"  # token-less rows keep their place in any chunk
    texts[lexical._CHUNK + 3] = "落实计生保险政策"
    serial = KeywordIndex.build(texts, userdict, workers=1)
    parallel = KeywordIndex.build(texts, userdict, workers=2)
    assert parallel.size == serial.size == len(texts)
    for query in ["计生保险", "集中供水工程", "图书馆 第3条", "第4009条"]:
        s_rows, s_scores = serial.search(query, 20)
        p_rows, p_scores = parallel.search(query, 20)
        assert list(p_rows) == list(s_rows) and len(s_rows) > 0
        np.testing.assert_allclose(p_scores, s_scores, rtol=1e-6)
    assert parallel.search("计生保险", 3)[0][0] == lexical._CHUNK + 3
