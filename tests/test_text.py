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
