"""Keyword index: jieba tokens (jieba-rs, checked against jieba), bm25s scoring, save/load,
user dictionary."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import EXTRA_SPEECH, FIXTURE_SPEECHES, ROOT, SHIPPED_CORPUS
from speechrag.corpus import read_corpus
from speechrag.jiebacut import Cutter
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


# --- jieba-rs cuts as jieba did -----------------------------------------------------------------

# Runs jieba-rs 0.11 keeps whole and jieba splits (COVID-19, 3.5K, a_b, 1.2.3), Latin letters next to
# Han ones, dictionary words with Latin letters (T恤, 卡拉OK), whitespace and line breaks.
TRICKY = [
    "COVID-19疫情防控", "GDP增长3.5%以上", "e-mail地址", "3.5K的", "1.2.3版本", "x_y_z", "C++语言",
    "AT&T公司", "T恤-衫", "卡拉OK厅", "two-child policy", "South-eastern Gansu", "v1.0.2", "a--b",
    "100%%", "\r\n同志们：\t今天", "2020年12月31日", "ＧＤＰ增长５％", "Tianshui's role",
]


@lru_cache(maxsize=2)  # jieba takes a second to load its dictionary
def _pair(userdict: Path | None = None) -> tuple[Any, Cutter]:
    return _old_jieba(userdict), Cutter(userdict)


def _old_jieba(userdict: Path | None) -> Any:
    jieba = pytest.importorskip("jieba")
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    if userdict is not None:
        tokenizer.load_userdict(str(userdict))
    return tokenizer


def _differences(texts: list[str], userdict: Path | None = None) -> list[tuple[str, str, list[str], list[str]]]:
    """Texts whose tokens differ as a bag of words, which is all BM25 and place detection read.
    The order alone may differ where two cuts are equally probable: ``一一一`` before ``aa中第COVIDe-mail``
    is ``一一`` ``一`` in jieba and ``一`` ``一一`` in jieba-rs (the same two words, so the same sum of
    log frequencies up to rounding, which each library does in its own order)."""
    old, new = _pair(userdict)
    out = []
    for text in texts:
        for mode in ("cut", "cut_for_search"):
            a, b = list(getattr(old, mode)(text)), getattr(new, mode)(text)
            if Counter(a) != Counter(b):
                out.append((mode, text, a, b))
    return out


def test_a_tie_between_equal_cuts_may_only_reorder() -> None:
    old, new = _pair(None)
    text = "一一一aa中第COVIDe-mail"
    a, b = list(old.cut(text)), new.cut(text)
    assert Counter(a) == Counter(b) and _differences([text]) == []


def _test_texts() -> Iterator[str]:
    """The shipped corpus (passages, titles, raw lines), the speeches the tests write, and the eval
    questions with their histories, as queries."""
    report = read_corpus(SHIPPED_CORPUS)
    yield from (p.text for p in report.passages)
    yield from (s.title for s in report.speeches)
    for f in sorted(SHIPPED_CORPUS.rglob("*.md")):
        yield from f.read_text("utf-8").splitlines()
    for speech in (*FIXTURE_SPEECHES.values(), *EXTRA_SPEECH.values()):
        yield from speech.splitlines()
    for f in sorted((ROOT / "eval").glob("*.jsonl")):
        for line in f.read_text("utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                yield item.get("question", "")
                yield from item.get("history", [])
    yield from TRICKY


def test_jieba_rs_cuts_every_test_text_as_jieba_did() -> None:
    texts = list(dict.fromkeys(_test_texts()))
    assert len(texts) > 400
    assert _differences(texts) == []


def test_a_user_dictionary_cuts_as_with_jieba(tmp_path: Path) -> None:
    # Words without a frequency (jieba suggests one), an entry for a word jieba knows (its old
    # count stays in jieba's total), a word given twice, frequency 0 (jieba's deletion), tags,
    # a word with a space, and a BOM.
    userdict = tmp_path / "userdict.txt"
    userdict.write_text(
        "\ufeff计生保险 100 n\n出生人口性别比\n两非 nz\n惠民措施\n保险 3\n计划生育 0\n"
        "计生保险 200\n\n综合治理 5 v\nnew deal 7\n", encoding="utf-8")
    texts = list(dict.fromkeys(_test_texts()))
    texts += ["落实计生保险政策，打击两非行为", "计划生育家庭意外伤害保险", "new deal政策"]
    assert _differences(texts, userdict) == []
    tokens = Tokenizer(userdict)("计生保险和出生人口性别比")
    assert "计生保险" in tokens and "出生人口性别比" in tokens


# Letters, digits, the symbols jieba keeps inside a block, spaces, Han characters that form words
# with their neighbours, and dictionary words mixing Latin and Han.
_MIXED = st.lists(st.sampled_from([*"中国人民计划生育的第一二ab1XK9-._+%#& ,。\r\n", "T恤", "卡拉OK", "3.5",
                                   "COVID", "2020", "e-mail"]), max_size=14).map("".join)


@settings(max_examples=300, deadline=None)
@given(_MIXED)
def test_jieba_rs_cuts_mixed_text_as_jieba_did(text: str) -> None:
    assert _differences([text]) == []


@pytest.mark.slow
def test_jieba_rs_cuts_the_fixture_documents_as_jieba_did() -> None:
    texts: list[str] = []
    for folder in (ROOT / "tests" / "fixtures").iterdir():
        report = read_corpus(folder)
        texts += [p.text for p in report.passages] + [s.title for s in report.speeches]
    for f in (ROOT / "tests" / "fixtures").rglob("*"):
        if f.suffix in {".md", ".txt", ".html"}:
            for encoding in ("utf-8", "gb18030"):
                try:
                    texts += f.read_text(encoding).splitlines()
                    break
                except UnicodeDecodeError:
                    continue
    assert len(texts) > 50
    assert _differences(list(dict.fromkeys(texts))) == []


def test_fingerprint_differs_from_the_jieba_era_one() -> None:
    # An index whose keywords jieba cut carries the old fingerprint (jieba's version, then the
    # stop words): it must read as stale so its keyword part is rebuilt.
    import hashlib
    from importlib import metadata

    from speechrag.lexical import STOPWORDS

    old = hashlib.sha256(f"jieba-{metadata.version('jieba')}\0".encode())
    old.update("\n".join(sorted(STOPWORDS)).encode())
    assert Tokenizer().fingerprint != old.hexdigest()[:16]


def test_a_user_dictionary_that_is_not_utf8_is_a_corpus_error(tmp_path: Path) -> None:
    from speechrag.errors import CorpusError

    userdict = tmp_path / "userdict.txt"
    userdict.write_bytes("计生保险 100 n\n".encode("gbk"))
    with pytest.raises(CorpusError, match="line 1 is not UTF-8"):
        Tokenizer(userdict)("计生保险")


# --- the numpy BM25 index is bm25s's, to the byte -----------------------------------------------


def _saved(bm25: Any, directory: Path) -> dict[str, bytes]:
    bm25.save(str(directory), show_progress=False)
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _same_as_bm25s(
    vocab: dict[str, int], chunks: list[tuple[np.ndarray, np.ndarray]], tmp_path: Path
) -> dict[str, bytes]:
    """Build the index from ``chunks`` (per chunk: int32 token ids, tokens per passage) both with
    bm25s and with `_bm25_from_ids`; assert every saved file is byte-identical."""
    from array import array

    import bm25s

    from speechrag.lexical import _bm25_from_ids

    docs: list[array[int]] = []  # what KeywordIndex.build handed bm25s before
    for ids, lengths in chunks:
        start = 0
        for n in lengths.tolist():
            docs.append(array("i", ids[start : start + n].tobytes()))
            start += n
    reference = bm25s.BM25()
    reference.index((docs, vocab), show_progress=False, create_empty_token=False)
    fast = _bm25_from_ids(vocab, list(chunks))
    for key in ("data", "indices", "indptr"):
        assert fast.scores[key].dtype == reference.scores[key].dtype, key
    assert type(fast.scores["num_docs"]) is int and fast.scores["num_docs"] == len(docs)
    expected = _saved(reference, tmp_path / "bm25s")
    got = _saved(fast, tmp_path / "fast")
    assert set(got) == set(expected)
    for name in expected:
        assert got[name] == expected[name], name
    # get_scores, as search calls it, on the fast object as built and on it reloaded.
    again = bm25s.BM25.load(str(tmp_path / "fast"), load_corpus=False, mmap=False)
    for ids in list(vocab.values())[:: max(1, len(vocab) // 20)]:
        want = reference.get_scores([ids])
        np.testing.assert_array_equal(fast.get_scores([ids]), want)
        np.testing.assert_array_equal(again.get_scores([ids]), want)
    return got


def _chunks_of(texts: list[str], workers: int = 1) -> tuple[dict[str, int], list[tuple[np.ndarray, np.ndarray]]]:
    from speechrag.lexical import _token_ids

    return _token_ids(texts, Tokenizer(), workers)


def test_keyword_index_of_the_shipped_corpus_is_bm25s_s(tmp_path: Path) -> None:
    texts = [p.text for p in read_corpus(SHIPPED_CORPUS).passages]
    assert len(texts) > 50
    vocab, chunks = _chunks_of(texts)
    files = _same_as_bm25s(vocab, chunks, tmp_path)
    # ... and is the committed index's keyword part: the shipped build did not change.
    shipped = ROOT / "embeddings" / (ROOT / "embeddings" / "CURRENT").read_text().strip() / "keyword"
    for name, data in files.items():
        assert (shipped / name).read_bytes() == data, name


def test_keyword_index_of_synthetic_texts_is_bm25s_s(tmp_path: Path) -> None:
    # A few thousand passages over several chunks: token-less rows (the empty token), words
    # repeated within a passage, long and one-word passages, a vocabulary of rare and common words.
    from speechrag import lexical

    rng = np.random.default_rng(7)
    words = [*"水电路桥粮棉油", "计划生育", "保险", "图书馆", "农村饮水", "收缴", "COVID-19", "GDP", "3.5%"]
    words += [f"词{i}号" for i in range(300)]
    texts = []
    for i in range(lexical._CHUNK * 2 + 321):
        n = int(rng.integers(0, 60)) if i % 50 else 0
        picked = rng.choice(len(words), size=n, p=None)
        text = "，".join(words[j] * int(rng.integers(1, 4)) for j in picked)
        texts.append(text or "！！！")
    texts[3] = "保险" * 40
    vocab, chunks = _chunks_of(texts, workers=2)
    assert lexical._EMPTY in vocab and len(chunks) == 3
    _same_as_bm25s(vocab, chunks, tmp_path / "many")
    vocab, chunks = _chunks_of(["计划生育家庭意外伤害保险，保险"])
    _same_as_bm25s(vocab, chunks, tmp_path / "one")
    vocab, chunks = _chunks_of(["！！！"])
    _same_as_bm25s(vocab, chunks, tmp_path / "empty")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning:bm25s")  # bm25s: 0/0 when no passage has a token
@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 12), max_size=30), min_size=1, max_size=40), st.integers(1, 4),
       st.sampled_from([1, 2, 7, 1 << 20]))
def test_bm25_from_ids_is_bm25s_on_any_ids(docs: list[list[int]], parts: int, block: int) -> None:
    # Straight from ids: empty passages (length 0, which bm25s takes too), vocabulary ids no
    # passage holds (idf 0, empty columns), any split into chunks, scoring blocks that end
    # inside a column or on its edge.
    import itertools
    import tempfile

    from speechrag import lexical

    vocab = {f"t{i}": i for i in range(13)}
    bounds = np.linspace(0, len(docs), parts + 1).astype(int)
    chunks = []
    for lo, hi in itertools.pairwise(bounds.tolist()):
        part = docs[lo:hi]
        ids = np.array([t for d in part for t in d], dtype=np.int32)
        chunks.append((ids, np.array([len(d) for d in part], dtype=np.int32)))
    saved = lexical._SCORE_BLOCK
    lexical._SCORE_BLOCK = block
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _same_as_bm25s(vocab, chunks, Path(tmp))
    finally:
        lexical._SCORE_BLOCK = saved
