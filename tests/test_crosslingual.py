"""crosslingual: place names in pinyin, English phrases to the Chinese terms the speeches use."""

from __future__ import annotations

import numpy as np
import pytest

import speechrag
from conftest import CountingEncoder
from speechrag import Searcher
from speechrag.crosslingual import dictionary, named_places, pinyin, place_aliases, translate, units
from speechrag.searcher import TERMS_WEIGHT

LEXICON = {
    "birth rate": ((0, "出生率"),),
    "birth": ((0, "出生"), (0, "诞生")),
    "rate": ((0, "比率"), (1, "速度")),
    "baby": ((0, "婴儿"),),
    "last year": ((0, "去年"),),
    "reward": ((0, "奖励"), (1, "报酬")),
    "population": ((0, "人口"), (0, "户口"), (4, "总体")),
}


def test_pinyin_drops_tones_and_the_administrative_suffix() -> None:
    assert pinyin("仙桃") == "xiantao"
    assert pinyin("商丘市") == "shangqiu"


def test_place_aliases_skip_short_and_shared_pinyin() -> None:
    aliases = place_aliases(["仙桃", "商丘市", "商丘", "安", "一"])
    assert aliases["xiantao"] == "仙桃"
    assert aliases["shangqiu"] == "商丘"  # two spellings of one place: the shorter name
    assert "an" not in aliases and "yi" not in aliases


def test_named_places_reads_pinyin_whole_or_split_and_next_to_chinese() -> None:
    aliases = {"xiantao": "仙桃", "shangqiu": "商丘"}
    assert named_places("What was the sex ratio in Xiantao last year?", aliases) == ["仙桃"]
    assert named_places("Xian Tao and SHANGQIU", aliases) == ["仙桃", "商丘"]
    assert named_places("Xiantao的出生率", aliases) == ["仙桃"]
    assert named_places("What is the capital of France?", aliases) == []
    # A possessive is the place: Xiantao's read as ``xiantaos`` named no place, so the question
    # went unscoped and another city's figure answered it.
    assert named_places("What was Xiantao's birth rate? And Shangqiu\u2019s?", aliases) == ["仙桃", "商丘"]


def test_translate_takes_the_longest_phrase_and_inflected_forms() -> None:
    def frequency(term: str) -> int:
        return 0 if term == "诞生" else 5

    terms = translate("What was the birth rate of babies last year?", frequency, {}, LEXICON)
    assert terms == ("出生率", "婴儿", "去年")  # not 出生 and 比率: the phrase wins
    assert translate("birth", frequency, {}, LEXICON) == ("出生",)  # 诞生 is not in the speeches


def test_translate_prefers_main_meanings_and_the_speeches_own_word() -> None:
    df = {"人口": 40, "户口": 2, "总体": 9}
    assert translate("population", lambda t: df.get(t, 0), {}, LEXICON) == ("人口", "户口")


def test_translate_puts_named_places_first_and_leaves_chinese_alone() -> None:
    terms = translate("How much reward did Xiantao pay?", lambda t: 1, {"xiantao": "仙桃"}, LEXICON)
    assert terms == ("仙桃", "奖励", "报酬")
    assert translate("仙桃的出生率", lambda t: 1, {"xiantao": "仙桃"}, LEXICON) == ()
    assert translate("What is it?", lambda t: 1, {}, LEXICON) == ()  # stop words only


def test_units_keep_phrases_the_speeches_have_no_word_for() -> None:
    got = units("How do I reset my router?", lambda t: 0 if t == "路由器" else 3, {},
                {"reset": ((0, "重置"),), "router": ((0, "路由器"),)})
    assert got == (("reset", ("重置",)), ("router", ()))


def test_cc_cedict_ships_offline_and_maps_the_corpus_words() -> None:
    lexicon = dictionary()
    assert (0, "出生率") in lexicon["birthrate"]
    assert (0, "性别比") in lexicon["sex ratio"]
    assert (0, "奖励") in lexicon["reward"]


def test_searcher_translates_with_the_terms_its_speeches_hold(tiny_index: Searcher) -> None:
    terms = tiny_index.translate("How much insurance compensation was paid?")
    assert terms and all(tiny_index.document_frequency(t) > 0 for t in terms)
    assert tiny_index.translate("计生保险") == ()
    assert tiny_index.keyword_query("计生保险") == "计生保险"


def test_english_search_vector_adds_the_terms_to_the_question_as_asked(tiny_index: Searcher) -> None:
    q = "How much insurance compensation was paid?"
    search, plain = tiny_index.query_vectors(q)
    assert np.array_equal(plain, tiny_index.encode_query(q, translated=False))
    terms = tiny_index.encoder.encode_queries([" ".join(tiny_index.translate(q))])[0]
    want = plain + TERMS_WEIGHT * terms
    assert np.allclose(search, want / np.linalg.norm(want), atol=1e-6)
    assert np.isclose(np.linalg.norm(search), 1.0, atol=1e-5)
    assert not np.allclose(search, plain)
    chinese, same = tiny_index.query_vectors("计生保险理赔")
    assert chinese is same


def test_an_english_answer_embeds_the_question_once_and_its_terms_once(tiny_index: Searcher) -> None:
    # The abstention judge scores the question as asked; it reuses the vector the search was
    # built from rather than embedding the question again (the tail of answer latency).
    counting = CountingEncoder(tiny_index.encoder)
    searcher = Searcher(tiny_index.store, counting)
    q = "How much insurance compensation was paid?"
    speechrag.answer(q, index=searcher)
    assert counting.query_texts == [q, " ".join(searcher.translate(q))]
    counting.query_texts.clear()
    speechrag.answer("计生家庭参加保险理赔怎么办？", index=searcher)
    assert counting.query_texts == ["计生家庭参加保险理赔怎么办？"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "place", "fact"),
    [
        ("What was the sex ratio at birth in Xiantao last year?", "仙桃", "123.58"),
        ("What birth rate target did Shangqiu set for this year?", "商丘", "13.8%"),
    ],
)
def test_english_question_about_a_city_reaches_its_passage(
    shipped_index: Searcher, question: str, place: str, fact: str
) -> None:
    hits = speechrag.retrieve(question, k=5, index=shipped_index)
    assert fact in hits[0].passage.text
    assert shipped_index.place_of(hits[0].passage) == place
    a = speechrag.answer(question, index=shipped_index)
    assert a.found
    assert fact in a.sentences[0].text
    assert shipped_index.place_of(a.citations[a.sentences[0].citation - 1].passage) == place
