"""Ingestion rules, one group per rule, on small fixtures written here; then the shipped corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cn2an
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from speechrag import CorpusError, Passage, build_index, load_corpus, read_corpus
from speechrag.addfiles import add_documents
from speechrag.cli import cli
from speechrag.corpus import MAX_PASSAGE_CHARS, TWIN_JACCARD, link_twins, source_path, split_long
from speechrag.formats.plain import decode
from speechrag.text import ends_sentence, figure_values, normalise

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "corpus" / "speeches-jisheng.md"

SPEECH = """# 在全市工作会议上的讲话

同志们：

今天召开全市工作会议，主要任务是总结去年工作，部署今年任务。

## 一、充分认识做好工作的重要意义

第一，要提高认识。做好工作关系全局，必须高度重视。
"""


def write(tmp_path: Path, name: str, text: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def texts(passages: list[Passage]) -> list[str]:
    return [p.text for p in passages]


# --- 1. encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        SPEECH.encode("utf-8"),
        b"\xef\xbb\xbf" + SPEECH.encode("utf-8"),
        SPEECH.encode("utf-16"),  # with BOM, native order
        b"\xfe\xff" + SPEECH.encode("utf-16-be"),
        SPEECH.encode("gb18030"),
        SPEECH.encode("gbk"),
    ],
    ids=["utf8", "utf8-bom", "utf16", "utf16-be-bom", "gb18030", "gbk"],
)
def test_every_supported_encoding_reads_the_same(tmp_path: Path, raw: bytes) -> None:
    expected = texts(load_corpus(write(tmp_path, "a/ref.md", SPEECH)))
    got = texts(load_corpus(write(tmp_path, "b/s.md", raw)))
    assert got == expected
    assert all("\ufffd" not in t and "\ufeff" not in t for t in got)


def test_undecodable_file_names_the_file(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.txt", b"speech \xff\xff text")
    with pytest.raises(CorpusError, match=r"bad\.txt.*UTF-8") as exc:
        load_corpus(bad)
    assert "\n" not in str(exc.value)


def test_file_names_in_any_encoding_are_read_with_printable_ids(tmp_path: Path) -> None:
    """A GBK name from a Windows zip, and bytes that are no encoding at all, reach Python as
    surrogate escapes: the files are read, their ids print and encode, an index builds over
    them, and `add_documents` stores them under UTF-8 names."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("讲话.txt".encode("gbk"), b"\xff\xfe-notes.txt"):
        with open(os.fsencode(folder) + b"/" + name, "wb") as fh:
            fh.write(SPEECH.encode("utf-8"))
    report = read_corpus(folder)
    sources = sorted({s.source for s in report.speeches})
    assert sources == ["\\xff\\xfe-notes.txt", "讲话.txt"]
    for source in sources:
        source.encode("utf-8")  # printable: no surrogate left
        assert source_path(folder, source) is not None
    summary = build_index(folder, tmp_path / "index", model="hash")
    assert summary.speeches == 2
    added = add_documents([folder], tmp_path / "other")
    assert sorted(Path(a.dest).name for a in added) == sorted(sources)
    assert all(a.status == "added" for a in added)


@pytest.mark.parametrize("content", [b"", b"  \n\n \t\n"], ids=["zero-bytes", "whitespace"])
def test_empty_file_is_skipped_with_its_reason(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(CorpusError, match=r"empty\.md: empty file"):
        load_corpus(write(tmp_path, "empty.md", content))  # nothing else to read: an error


def test_binary_file_is_skipped_with_its_reason(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    write(tmp_path, "good.md", SPEECH)
    write(tmp_path, "image.md", png)
    report = read_corpus(tmp_path)
    skipped = [(s.source, s.reason) for s in report.skipped]
    assert skipped == [("image.md", "binary file, not text (a PNG image named .md)")]


def test_one_bad_file_never_stops_the_others(tmp_path: Path) -> None:
    write(tmp_path, "good.md", SPEECH)
    write(tmp_path, "zz-bad.md", b"\xff\xff\xff\xff")
    report = read_corpus(tmp_path)
    assert {p.source for p in report.passages} == {"good.md"}
    assert [s.source for s in report.skipped] == ["zz-bad.md"] and "UTF-8" in report.skipped[0].reason
    with pytest.raises(CorpusError, match=r"zz-bad\.md: .*UTF-8.*--strict"):
        read_corpus(tmp_path, strict=True)


@pytest.mark.parametrize(
    "raw",
    [b"abc\xff", "计划生育".encode() + b"\xe4\xb8" + "工作".encode()],
    ids=["invalid-everywhere", "damaged-utf8"],
)
def test_decode_refuses_rather_than_substitutes(raw: bytes) -> None:
    with pytest.raises(CorpusError, match=r"cut\.md: .*UTF-8"):
        decode(raw, "cut.md")


def test_decode_accepts_gbk_without_replacement_characters() -> None:
    assert decode("计划生育工作".encode("gbk"), "g.md") == "计划生育工作"


# --- 2. normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("本国情 不会 根本改变", "本国情不会根本改变"),
        ("根本改变， 计划生育 基本国策", "根本改变，计划生育基本国策"),
        ("GDP grew 6.5 % in 2023", "GDP grew 6.5% in 2023"),  # a figure is one token (text.normalise)
        ("贫困人口40 余万人", "贫困人口40余万人"),  # an approximate figure is one token too (40 余 -> 40余)
        ("Cafe\u0301 文化", "Café 文化"),  # NFC
        ("计划\u200b生育\u202e工作\x07", "计划生育工作"),  # zero-width, bidi override, bell
        ("\u3000\u3000首行缩进", "首行缩进"),
    ],
)
def test_normalise(raw: str, clean: str) -> None:
    assert normalise(raw) == clean


# --- 3. boilerplate -------------------------------------------------------------------------


def test_boilerplate_lines_are_dropped_and_counted(tmp_path: Path) -> None:
    page = (
        "以下是小编为大家收集的优秀范文，欢迎大家分享阅读。\n\n"
        + SPEECH
        + "\n下面是本站小编给大家整理的讲话稿，仅供参考。\n\n共2页，当前第2页12\n"
    )
    report = read_corpus(write(tmp_path, "page.md", page))
    assert report.boilerplate_dropped == 3
    assert report.boilerplate_by_rule == {"editor-note": 2, "pager": 1}
    assert not any("小编" in t or "当前第" in t for t in texts(list(report.passages)))


def test_a_paragraph_that_mentions_a_boilerplate_word_is_kept(tmp_path: Path) -> None:
    para = "网站小编和记者要深入基层，把群众的呼声如实反映上来，欢迎大家分享阅读经验。"
    report = read_corpus(write(tmp_path, "s.md", SPEECH + "\n" + para + "\n"))
    assert para in texts(list(report.passages))
    assert report.boilerplate_dropped == 0


# --- 4. page-break repair -------------------------------------------------------------------


def test_paragraph_cut_by_a_page_break_becomes_one(tmp_path: Path) -> None:
    cut = SPEECH + "\n文艺工作要发挥组织力量强、\n\n共2页，当前第1页12\n\n社会联系广、文艺人才多的优势，作出新贡献。\n"
    report = read_corpus(write(tmp_path, "s.md", cut))
    assert "文艺工作要发挥组织力量强、社会联系广、文艺人才多的优势，作出新贡献。" in texts(
        list(report.passages)
    )
    assert report.paragraphs_repaired == 1


def test_no_join_into_a_new_enumerated_paragraph_or_across_a_heading(tmp_path: Path) -> None:
    text = SPEECH + "\n这一段在这里被截断\n\n第二，要抓落实。\n\n结尾没有标点\n\n## 二、下一部分\n\n新的内容。\n"
    got = texts(load_corpus(write(tmp_path, "s.md", text)))
    assert "这一段在这里被截断" in got and "第二，要抓落实。" in got
    assert "结尾没有标点" in got and "新的内容。" in got


def test_hard_wrapped_txt_lines_are_joined(tmp_path: Path) -> None:
    wrapped = "同志们：\n\n今天我们召开会议，主要是总结\n去年的工作，部署今年的任务。\n"
    assert texts(load_corpus(write(tmp_path, "w.txt", wrapped))) == [
        "今天我们召开会议，主要是总结去年的工作，部署今年的任务。"
    ]


@pytest.mark.parametrize(
    ("text", "ends"),
    [("完成任务。", True), ("他说：“好。”", True), ("组织力量强、", False), ("需要必要政策和", False)],
)
def test_ends_sentence(text: str, ends: bool) -> None:
    assert ends_sentence(text) is ends


# --- 5. speeches ----------------------------------------------------------------------------


def test_a_fresh_salutation_after_a_closed_speech_starts_a_new_speech(tmp_path: Path) -> None:
    page = (
        "## 讲话稿篇一\n\n同志们：\n\n仙桃的工作很好，全市、我市、本市要为仙桃继续努力。\n\n祝大家新年快乐！\n\n"
        "同志们：\n\n商丘是农业大市，全市、我市、本市要为商丘做好工作。\n\n"
        "## 讲话稿篇二\n\n各位理事、同志们：\n\n安康市的工作也很好，全市、我市、本市要为安康努力。\n"
    )
    report = read_corpus(write(tmp_path, "p.md", page))
    assert [s.paragraphs for s in report.speeches] == [2, 1, 1]
    assert [s.title for s in report.speeches] == ["篇一（仙桃）", "篇一（商丘）", "篇二（安康）"]
    assert "同志们：" not in texts(list(report.passages))
    assert len({p.speech_id for p in report.passages}) == 3


def test_a_speech_that_starts_mid_sentence_is_kept_and_marked(tmp_path: Path) -> None:
    page = "## 讲话稿篇一\n\n完整的开头。\n\n## 讲话稿篇二\n\n黄牛”的“三牛”精神，做出新的贡献！\n"
    report = read_corpus(write(tmp_path, "p.md", page))
    assert [s.truncated for s in report.speeches] == [False, True]
    assert report.speeches[1].title == "篇二（节选）"
    assert report.passages[-1].text == "黄牛”的“三牛”精神，做出新的贡献！"


def test_a_file_without_titles_is_one_speech_named_after_the_file(tmp_path: Path) -> None:
    report = read_corpus(write(tmp_path, "会议讲话.txt", "同志们：\n\n今天开会。\n"))
    assert [(s.id, s.title) for s in report.speeches] == [("会议讲话", "会议讲话")]


# --- 6. sections ----------------------------------------------------------------------------


def test_three_heading_styles_set_sections_and_are_never_passages(tmp_path: Path) -> None:
    page = (
        "# 在全市会议上的讲话\n\n同志们：\n\n开场白。\n\n"
        "## 一、认清形势\n\n(一)要正确认识基本国策。基本国策是立国之本。\n\n"
        "一个三，就是要深化三点认识\n\n一是要认识到责任重大。\n\n"
        "(二)要抓好落实\n\n落实是关键。\n\n"
        "### 三、加强领导\n\n要强化组织领导。\n"
    )
    passages = load_corpus(write(tmp_path, "h.md", page))
    sections = {p.text: p.section for p in passages}
    assert sections == {
        "开场白。": "",
        "(一)要正确认识基本国策。基本国策是立国之本。": "一、认清形势",
        "一是要认识到责任重大。": "一个三，就是要深化三点认识",
        "落实是关键。": "一个三，就是要深化三点认识 › (二)要抓好落实",
        "要强化组织领导。": "三、加强领导",
    }
    assert [p.paragraph for p in passages] == [1, 2, 3, 4, 5]


# --- 7. near-duplicates ---------------------------------------------------------------------


def test_near_identical_paragraphs_across_speeches_list_each_other(tmp_path: Path) -> None:
    twin = "春节将至，借此机会，提前给大家拜个年，恭祝同志们在新的一年里身体健康、家庭幸福、事业有成、一切顺{}！"
    other = "今年要继续按照属地管理的原则，加强流动人口服务管理，确保各项指标全面完成。"
    page = f"## 讲话篇一\n\n{twin.format('利')}\n\n{other}\n\n## 讲话篇二\n\n{twin.format('意')}\n"
    report = read_corpus(write(tmp_path, "t.md", page))
    a, b, c = report.passages
    assert a.duplicates == (c.id,) and c.duplicates == (a.id,)
    assert b.duplicates == ()
    assert report.twin_pairs == 1
    assert 0.5 < TWIN_JACCARD < 1


def _passage(n: int, text: str) -> Passage:
    return Passage(f"p{n}", f"s{n}", f"{2000 + n}年政府工作报告", "", 1, text, "r.txt", n)


# A yearly report's paragraph: the years after it repeat it with other figures.
REVIEW = ("过去一年，国内生产总值达到{gdp}万亿元，增长{rate}。城镇新增就业{jobs}万人，"
          "居民消费价格上涨2%。粮食产量再创新高，进出口总额稳定增长，国际收支基本平衡。"
          "我们坚持稳中求进工作总基调，统筹推进各项工作，经济社会发展主要目标任务顺利完成。")


def test_paragraphs_that_differ_only_in_a_figure_are_not_twins() -> None:
    year = REVIEW.format(gdp=126, rate="5.2%", jobs=1244)
    linked, pairs = link_twins([_passage(1, year), _passage(2, year.replace("5.2%", "5.0%")),
                                _passage(3, year), _passage(4, year.replace("1244", "一千二百四十四"))])
    assert [p.duplicates for p in linked] == [("p3", "p4"), (), ("p1", "p4"), ("p1", "p3")]
    assert pairs == 3


_FIGURES = st.one_of(
    st.integers(0, 10**6).map(str),
    st.decimals(0, 100, places=1, allow_nan=False).map(lambda d: f"{d}%"),
    st.integers(1, 10**6).map(lambda n: cn2an.an2cn(n)),
    st.integers(1, 99).map(lambda n: f"百分之{cn2an.an2cn(n)}"),
)


@given(gdp=_FIGURES, rate=_FIGURES, jobs=_FIGURES, changed=st.sampled_from(["gdp", "rate", "jobs"]), new=_FIGURES)
def test_a_copy_with_one_figure_changed_is_never_a_twin_and_an_exact_copy_always_is(
    gdp: str, rate: str, jobs: str, changed: str, new: str
) -> None:
    figures = {"gdp": gdp, "rate": rate, "jobs": jobs}
    text = REVIEW.format(**figures)
    other = REVIEW.format(**{**figures, changed: new})
    linked, _ = link_twins([_passage(1, text), _passage(2, other), _passage(3, text)])
    assert linked[0].duplicates[-1:] == ("p3",) and linked[2].duplicates[:1] == ("p1",)
    same = figure_values(normalise(new)) == figure_values(normalise(figures[changed]))
    assert ("p2" in linked[0].duplicates) is same  # linked only when the figure is the same number


# --- 8. long paragraphs ---------------------------------------------------------------------


def test_a_50000_character_paragraph_is_split_at_sentences(tmp_path: Path) -> None:
    sentence = "要坚持以人民为中心的发展思想，把群众满意作为检验工作的标准。"
    body = sentence * (50_000 // len(sentence) + 1)
    passages = load_corpus(write(tmp_path, "long.md", f"同志们：\n\n{body}\n\n结束。\n"))
    parts = [p for p in passages if p.paragraph == 1]
    assert len(parts) > 50_000 // MAX_PASSAGE_CHARS
    assert [p.part for p in parts] == list(range(1, len(parts) + 1))
    assert all(len(p.text) <= MAX_PASSAGE_CHARS and p.text.endswith("。") for p in parts)
    assert "".join(p.text for p in parts) == body
    assert passages[-1].paragraph == 2 and passages[-1].part == 0
    assert len({p.id for p in passages}) == len(passages)


def test_a_600_character_paragraph_stays_whole() -> None:
    text = ("计划生育工作关系千家万户的切身利益。" * 40)[:600]
    assert split_long(text) == [text]


def test_a_sentence_longer_than_the_limit_is_cut_after_a_comma() -> None:
    text = "，".join(["没有句号的长句子"] * 200)
    parts = split_long(text, limit=100)
    assert "".join(parts) == text
    assert all(len(p) <= 100 for p in parts)
    assert all(p.endswith("，") for p in parts[:-1])


# --- passages: ids, JSON --------------------------------------------------------------------


def test_ids_are_stable_while_the_text_is_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path, "s.md", SPEECH + "\n第二段。\n")
    before = load_corpus(path)
    assert [p.id for p in load_corpus(path)] == [p.id for p in before]
    path.write_text(SPEECH.replace("部署今年任务", "部署明年任务") + "\n第二段。\n", encoding="utf-8")
    after = load_corpus(path)
    changed = [a.id != b.id for a, b in zip(before, after, strict=True)]
    assert changed == [t != u for t, u in zip(texts(before), texts(after), strict=True)]
    assert sum(changed) == 1


def test_folders_are_read_recursively_with_sources_relative_to_the_root(tmp_path: Path) -> None:
    write(tmp_path, "2024/a.md", SPEECH)
    write(tmp_path, "2025/b.txt", "同志们：\n\n今年的工作。\n")
    write(tmp_path, "notes.pdf", b"%PDF-1.4 \x00\x01")
    report = read_corpus(tmp_path)
    assert sorted({p.source for p in report.passages}) == ["2024/a.md", "2025/b.txt"]
    assert report.files == 3 and [s.source for s in report.skipped] == ["notes.pdf"]  # a damaged PDF
    assert {s.id for s in report.speeches} == {"2024-a", "2025-b"}
    first = next(p for p in report.passages if p.source == "2024/a.md")
    assert first.line == 5


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="corpus path not found"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match=r"no speech documents \(\.docx, \.doc, \.pdf"):
        load_corpus(tmp_path)


passage_strategy = st.builds(
    Passage,
    id=st.text(),
    speech_id=st.text(),
    speech_title=st.text(),
    section=st.text(),
    paragraph=st.integers(min_value=1, max_value=10**6),
    text=st.text(),
    source=st.text(),
    line=st.integers(min_value=1, max_value=10**7),
    duplicates=st.lists(st.text(), max_size=4).map(tuple),
    part=st.integers(min_value=0, max_value=1000),
)


@given(passage_strategy)
def test_passage_json_round_trip(passage: Passage) -> None:
    wire = json.dumps(passage.to_dict(), ensure_ascii=False)
    assert Passage.from_dict(json.loads(wire)) == passage


# --- CLI --------------------------------------------------------------------------------------


def test_cli_corpus_table() -> None:
    result = CliRunner().invoke(cli, ["corpus", str(SHIPPED)])
    assert result.exit_code == 0, result.output
    assert "篇五（商丘）" in result.output and "商丘" in result.output
    assert "boilerplate lines dropped: 5" in result.output


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing", "corpus path not found"),
        (lambda d: write(d, "empty.md", b""), "empty.md: empty file"),
        (lambda d: write(d, "bin.md", b"\x00\x01\x02" * 100), "binary"),
    ],
)
def test_cli_bad_input_is_one_line_and_non_zero(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["corpus", str(make(tmp_path))])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


# --- the shipped corpus -------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    return read_corpus(SHIPPED)


def test_shipped_corpus_has_six_meaningful_speeches(shipped) -> None:  # type: ignore[no-untyped-def]
    assert [s.title for s in shipped.speeches] == [
        "篇一（天水）",
        "篇二（节选）",
        "篇三（仙桃）",
        "篇四（安康）",
        "篇五（仙桃）",
        "篇五（商丘）",
    ]
    assert [s.truncated for s in shipped.speeches] == [False, True, False, False, False, False]


def test_shipped_corpus_has_no_boilerplate_or_fragments(shipped) -> None:  # type: ignore[no-untyped-def]
    body = texts(list(shipped.passages))
    assert shipped.boilerplate_dropped == 5
    assert not any("小编" in t or "当前第" in t for t in body)
    # every paragraph of a complete speech ends a sentence: no page-break fragment is left
    complete = [p for p in shipped.passages if p.speech_title != "篇二（节选）"]
    assert all(ends_sentence(p.text) for p in complete)
    assert any("要发挥组织力量强、社会联系广、文艺人才多的优势" in t for t in body)
    assert any("本国情不会根本改变" in t for t in body)
    assert not any(t in {"同志们：", "各位理事、同志们：", "；"} for t in body)


def test_shipped_corpus_links_the_repeated_speech(shipped) -> None:  # type: ignore[no-untyped-def]
    by_speech: dict[str, list[Passage]] = {}
    for p in shipped.passages:
        by_speech.setdefault(p.speech_title, []).append(p)
    three, five = by_speech["篇三（仙桃）"], by_speech["篇五（仙桃）"]
    assert len(three) == len(five) == 16
    for a, b in zip(three, five, strict=True):
        assert b.id in a.duplicates and a.id in b.duplicates
    assert not any(p.duplicates for t in ("篇一（天水）", "篇四（安康）", "篇五（商丘）") for p in by_speech[t])
    assert shipped.twin_pairs == 16


def test_shipped_corpus_citation(shipped) -> None:  # type: ignore[no-untyped-def]
    p = next(p for p in shipped.passages if "人口出生率控制在13.8%以内" in p.text)
    assert p.citation == "篇五（商丘） · 二、突出人口和计划生育工作的重点 · 第7段"
    assert p.source == "speeches-jisheng.md" and p.line == 243


def test_a_jieba_user_dictionary_in_the_corpus_folder_is_not_a_speech(tmp_path: Path) -> None:
    write(tmp_path, "s.md", SPEECH)
    write(tmp_path, "userdict.txt", "计生保险 10 n\n")
    assert {p.source for p in load_corpus(tmp_path)} == {"s.md"}


def test_a_city_name_used_once_as_an_ordinary_word_is_no_place(tmp_path: Path) -> None:
    page = "## 讲话篇一\n\n今年要新建供水工程，商丘市要带头。\n\n## 讲话篇二\n\n今年要新建供水工程四十处。\n"
    assert [s.place for s in read_corpus(write(tmp_path, "p.md", page)).speeches] == ["", ""]
