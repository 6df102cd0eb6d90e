"""retrieve(): modes, fusion, twin collapse, speech filter, bad input, the default index."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import speechrag
from speechrag import QueryError, Searcher, build_index, load_index
from speechrag.api import Searchers, retrieve
from speechrag.options import MODES
from speechrag.searcher import Hit, rrf
from speechrag.text import normalise

# --- results ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_ranks_distinct_passages(tiny_index: Searcher, mode: str) -> None:
    hits = retrieve("计生家庭参加保险理赔", 3, mode=mode, index=tiny_index)
    assert 1 <= len(hits) <= 3
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert len({h.passage.id for h in hits}) == len(hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert "保险" in hits[0].passage.text


def test_keyword_mode_finds_exact_words(tiny_index: Searcher) -> None:
    hits = retrieve("公益电影放映", 2, mode="keyword", index=tiny_index)
    assert "公益电影放映五百场" in hits[0].passage.text


def test_keyword_mode_returns_nothing_for_unknown_words(tiny_index: Searcher) -> None:
    assert retrieve("zzqx", 5, mode="keyword", index=tiny_index) == []


def test_hybrid_fuses_both_rankings(tiny_index: Searcher) -> None:
    dense = [h.passage.id for h in retrieve("水质达标率", 10, mode="dense", index=tiny_index)]
    keyword = [h.passage.id for h in retrieve("水质达标率", 10, mode="keyword", index=tiny_index)]
    hybrid = retrieve("水质达标率", 10, mode="hybrid", index=tiny_index)
    # The top hybrid hit is at the top of at least one list; fusion keeps every dense row.
    assert hybrid[0].passage.id in (dense[0], keyword[0])
    assert {h.passage.id for h in hybrid} >= set(keyword)


def test_rrf_scores_and_constant() -> None:
    rows, scores = rrf([np.array([1, 2, 3]), np.array([3, 2, 1])], 60)
    assert dict(zip(rows.tolist(), scores.tolist(), strict=True)) == pytest.approx(
        {1: 1 / 61 + 1 / 63, 2: 2 / 62, 3: 1 / 63 + 1 / 61}
    )
    # Row 7 leads one list; row 9 is third in both. 1/(c+1) vs 2/(c+3): a small constant
    # trusts a single list's top, a large one rewards agreement.
    lists = [np.array([7, 8, 9]), np.array([5, 6, 9])]
    assert rrf(lists, 0.5)[0][0] in (7, 5)
    assert rrf(lists, 60)[0][0] == 9


def test_speech_filter_keeps_only_that_speech(tiny_index: Searcher) -> None:
    water = next(p.speech_id for p in tiny_index.store.all_passages if "饮水" in p.text)
    for mode in MODES:
        hits = retrieve("保险理赔和供水工程", 5, mode=mode, speeches=water, index=tiny_index)
        assert hits and {h.passage.speech_id for h in hits} == {water}
    assert retrieve("保险理赔", 5, speeches=[water], index=tiny_index)


def test_hit_round_trips_through_json(tiny_index: Searcher) -> None:
    hit = retrieve("图书馆免费开放", 1, index=tiny_index)[0]
    d = json.loads(json.dumps(hit.to_dict(), ensure_ascii=False))
    assert Hit.from_dict(d) == hit
    assert d["citation"] == hit.passage.citation


# --- near-twins ---------------------------------------------------------------------------

TWIN = "全县要把计生家庭意外伤害保险参保率纳入乡镇年度考核，确保应保尽保、理赔及时。"


@pytest.fixture(scope="module")
def twin_index(
    tmp_path_factory: pytest.TempPathFactory,
    write_corpus: Callable[[Path, Mapping[str, str]], Path],
) -> Searcher:
    corpus = write_corpus(
        tmp_path_factory.mktemp("twins"),
        {
            "a.md": f"# 甲县讲话\n\n同志们：\n\n{TWIN}\n\n今年要完成农村公路改造二百公里。\n",
            "b.md": f"# 乙县讲话\n\n同志们：\n\n{TWIN}\n\n今年要建成社区图书馆八个。\n",
        },
    )
    path = tmp_path_factory.mktemp("twin-index") / "embeddings"
    build_index(corpus, path, model="hash")
    return load_index(path)


@pytest.mark.parametrize("mode", MODES)
def test_near_twins_collapse_into_one_hit(twin_index: Searcher, mode: str) -> None:
    copies = [p for p in twin_index.store.all_passages if p.text == TWIN]
    assert len(copies) == 2 and copies[0].duplicates  # ingestion linked them
    hits = retrieve("计生家庭意外伤害保险参保率", 3, mode=mode, index=twin_index)
    texts = [h.passage.text for h in hits]
    assert texts.count(TWIN) == 1
    top = hits[texts.index(TWIN)]
    other = next(p for p in copies if p.id != top.passage.id)
    assert top.also_in == (other.id,)
    assert top.also_in_citations == (other.citation,)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": ""}, "empty"),
        ({"query": " \n\t　"}, "empty"),
        ({"query": "问" * 2001}, "2001 characters"),
        ({"query": "保险", "k": 0}, "k must be"),
        ({"query": "保险", "k": 51}, "k must be"),
        ({"query": "保险", "k": True}, "k must be"),
        ({"query": "保险", "mode": "fuzzy"}, "mode must be one of hybrid, dense, keyword, not 'fuzzy'"),
        ({"query": "保险", "speeches": ["no-such-speech"]}, "unknown speech id 'no-such-speech'"),
        ({"query": "保险", "speeches": []}, "speeches is empty"),
    ],
)
def test_bad_input_raises_one_line_query_error(
    tiny_index: Searcher, kwargs: dict[str, object], message: str
) -> None:
    query = kwargs.pop("query")
    with pytest.raises(QueryError, match=message) as info:
        retrieve(query, index=tiny_index, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_query_length_limit_is_configurable(tiny_index: Searcher) -> None:
    assert retrieve("保" * 2001, 1, index=tiny_index, max_query_chars=3000)
    with pytest.raises(QueryError, match="over the 10-character limit"):
        retrieve("计划生育保险工作会议讲话", 1, index=tiny_index, max_query_chars=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=80), mode=st.sampled_from(MODES), k=st.integers(1, 50))
def test_any_text_gives_hits_or_a_query_error(tiny_index: Searcher, query: str, mode: str, k: int) -> None:
    try:
        hits = retrieve(query, k, mode=mode, index=tiny_index)
    except QueryError:
        # refused only when nothing printable is left, or the text is broken (lone surrogates)
        assert not normalise(query) or any("\ud800" <= ch <= "\udfff" for ch in query)
        return
    assert len(hits) <= k
    assert len({h.passage.id for h in hits}) == len(hits)


# --- the default index --------------------------------------------------------------------


def test_default_index_comes_from_env_and_is_loaded_once(
    tiny_index_copy: Path, monkeypatch: pytest.MonkeyPatch, fixture_corpus: Path
) -> None:
    import speechrag.api as searcher_module

    monkeypatch.setattr(searcher_module, "_default", None)  # a fresh process-wide default
    monkeypatch.setenv("SPEECHRAG_INDEX", str(tiny_index_copy))
    assert retrieve("保险理赔", 1)[0].passage.text
    registry = searcher_module.default_searchers()
    first = registry.get()
    assert first.store.root.resolve() == tiny_index_copy.resolve()
    monkeypatch.setenv("SPEECHRAG_INDEX", "/nonexistent")  # read once, at the entry point
    assert registry.get() is first  # reused, not reloaded
    # A rebuild publishes a new generation: the next call picks it up.
    build_index(fixture_corpus, tiny_index_copy, model="hash", force=True)
    second = registry.get()
    assert second is not first
    assert second.generation != first.generation


def test_old_generations_are_released(tiny_index_copy: Path, fixture_corpus: Path) -> None:
    """After many publishes, only the served generation (and at most one that a query still
    holds) stays in memory: nothing derived from a generation is kept in module globals."""
    import gc
    import weakref

    from speechrag import Settings, answer

    registry = Searchers(Settings(index=tiny_index_copy))
    stores = []
    for _ in range(12):
        build_index(fixture_corpus, tiny_index_copy, model="hash", force=True)
        searcher = registry.get()
        retrieve("保险理赔", 2, index=searcher)
        answer("去年理赔金额多少？", index=searcher, threshold=-1e9)
        stores.append(weakref.ref(searcher.store))
        del searcher
    gc.collect()
    alive = [s for s in stores if s() is not None]
    assert len(alive) == 1 and alive[0] is stores[-1]
    from speechrag.stores.local import LocalStore

    ours = [o for o in gc.get_objects() if isinstance(o, LocalStore) and o.root == tiny_index_copy]
    assert len(ours) == 1


def test_index_may_be_given_as_a_path(tiny_index: Searcher) -> None:
    hits = retrieve("送戏下乡", 1, index=str(tiny_index.store.root))
    assert "送戏下乡" in hits[0].passage.text


@pytest.mark.slow
def test_rss_stays_flat_over_twenty_publishes() -> None:
    """20 publishes of a 20,000-passage index, queried after each: one generation stays alive,
    and RSS stops growing after the first reloads (before the Searcher owned its state it grew by
    a generation per publish). Measured in a fresh process: in this one, earlier tests' freed
    memory hides what a generation costs."""
    import re
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "bench" / "reload_memory.py"
    proc = subprocess.run([sys.executable, str(bench), "--passages", "20000", "--publishes", "20"],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    print(proc.stdout)
    m = re.search(r"publishes: ([\d.]+) / ([\d.]+) / ([\d.]+) / ([\d.]+) MB; live generations at the end: (\d+)",
                  proc.stdout)
    assert m, proc.stdout
    r0, r1, r10, r20, live = (float(x) for x in m.groups())
    assert live == 1
    assert r20 - r10 < r1 - r0  # the second ten publishes add less than one load of a generation


@pytest.mark.slow
def test_a_query_naming_a_place_ranks_that_places_passages_first(shipped_index: Searcher) -> None:
    # Unscoped, 天水's passages on rewards rank below 安康's and 商丘's; retrieve() puts the
    # place the query names first, as answers are scoped and as `speechrag eval` scores R@k.
    q = "天水的计划生育奖励"
    unscoped = shipped_index.rank(q, shipped_index.encode_query(q), 5).hits
    assert shipped_index.place_of(unscoped[0].passage) != "天水"
    hits = speechrag.retrieve(q, k=5, index=shipped_index)
    assert len(hits) == 5 and [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert {shipped_index.place_of(h.passage) for h in hits} == {"天水"}
    # A filter the caller gives is the scope: the name in the query does not override it.
    scoped = speechrag.retrieve(q, k=5, place="安康", index=shipped_index)
    assert {shipped_index.place_of(h.passage) for h in scoped} == {"安康"}
    # With k beyond the named place's passages, the best of the others follow them.
    wide = speechrag.retrieve(q, k=50, index=shipped_index)
    places = [shipped_index.place_of(h.passage) for h in wide]
    first_other = places.index(next(p for p in places if p != "天水"))
    assert all(p != "天水" for p in places[first_other:])


def test_load_index_warms_what_the_first_answers_would_build(tiny_index: Searcher) -> None:
    from speechrag import crosslingual, places

    cold = load_index(tiny_index.location, warm=False)
    assert cold.warmed(0) and cold._warming is None  # nothing started
    assert cold.store._lowered is None and cold._encoder is None  # type: ignore[attr-defined]

    idx = load_index(tiny_index.location)
    assert idx.start_warm_up() is idx._warming  # one thread per Searcher
    assert idx.warmed(60)
    # This generation's structures ...
    assert idx._encoder is not None and idx._calibration is not None and idx._speech_by_id is not None
    assert idx.store._lowered is not None and idx.store._by_id is not None  # type: ignore[attr-defined]
    # ... and the process-wide ones the first answers paid for.
    assert idx.store.keyword.tokenizer._cut is not None  # type: ignore[attr-defined]
    assert places._gazetteer.cache_info().currsize == 1
    assert crosslingual._dictionary.cache_info().currsize == 1
    assert "cn2an" in sys.modules and "pypinyin" in sys.modules
    # Answers are the same whether or not the warm-up ran.
    q = "计划生育工作的重点是什么？"
    assert idx.answer(q).to_dict() == cold.answer(q).to_dict()


def test_warm_up_holds_its_python_half_until_told(tiny_index: Searcher) -> None:
    import threading
    import time

    listening = threading.Event()  # what `speechrag serve` sets once it listens
    idx = load_index(tiny_index.location, warm=False)
    thread = idx.start_warm_up(after=listening)
    deadline = time.monotonic() + 60
    while idx._calibration is None and time.monotonic() < deadline:  # the native half
        time.sleep(0.01)
    assert idx._encoder is not None and idx._calibration is not None
    assert not idx.warmed(0.05) and thread.is_alive()
    assert idx.store._lowered is None  # type: ignore[attr-defined]
    listening.set()
    assert idx.warmed(60) and idx.store._lowered is not None  # type: ignore[attr-defined]
