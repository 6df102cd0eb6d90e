"""speechrag.structure: where speeches start and end in one document, and which lines are
header, signature, cue or text. Documents are written here (text, and a PDF made with
reportlab), in the shapes real collections have."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from speechrag import read_corpus
from speechrag.formats import read_document
from speechrag.structure import Counts, speeches_of

BODY = "今天我们召开全市工作会议，主要任务是总结去年工作，部署今年任务。"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def piece(title: str, date: str, byline: str = "邓小平", body: str = BODY, note: str = "") -> list[str]:
    lines = [title, f"（{date}）"] if date else [title]
    return [*lines, *([byline] if byline else []), body, f"第二段。{body}", *([note] if note else [])]


def test_a_volume_with_contents_is_split_at_the_pieces_it_lists(tmp_path: Path) -> None:
    """A collected-works volume: its title, a stray paragraph, 目录 listing the pieces and the
    notes, then each piece under its title, date line and byline; the notes are no speech."""
    titles = ["军队要整顿", "全党讲大局，把国民经济搞上去", "关于发展工业的几点意见", "在全国科学大会开幕式上的讲话"]
    lines = ["《文选第二卷》", BODY, "目录", *[f"· {t}" for t in titles], "· 注释"]
    lines += piece(titles[0], "一九七五年一月二十五日",
                   note="（这是邓小平同志在总参谋部机关团以上干部会议上的讲话。一九七五年一月五日任总参谋长。）")
    lines += piece(titles[1], "一九七五年三月五日")
    lines += piece(titles[2], "一九七五年八月十八日", byline="")
    lines += piece(titles[3], "", byline="")  # later pieces have no date line
    lines += ["注释", "〔1〕林彪，当时任中共中央副主席。——第1页", "〔2〕三要三不要。——第2页"]
    doc = read_document(write(tmp_path, "volume.txt", "\n\n".join(lines)))
    counts = Counts()
    speeches = speeches_of(doc, counts, filename="volume.txt")
    assert [s.heading for s in speeches] == titles
    first = speeches[0]
    assert (first.header.date, first.header.speaker) == ("1975-01-25", "邓小平")
    assert first.trailer.occasion == "在总参谋部机关团以上干部会议上"
    texts = [t for s in speeches for _, t, *_ in s.paragraphs]
    assert not any("林彪" in t or t.startswith(("（这是", "《文选")) for t in texts)  # notes, note, volume title
    assert sum(t == BODY for t in texts) == 4  # each piece's first paragraph, not the stray copy
    assert counts.front_matter > 0


def test_titles_over_date_lines_split_a_file_without_contents(tmp_path: Path) -> None:
    lines = [*piece("论十大关系", "一九五六年四月二十五日"), *piece("关于正确处理人民内部矛盾的问题",
        "一九五七年二月二十七日")]
    report = read_corpus(write(tmp_path, "two.txt", "\n\n".join(lines)))
    assert [(s.title, s.date) for s in report.speeches] == [
        ("论十大关系", "1956-04-25"), ("关于正确处理人民内部矛盾的问题", "1957-02-27")]


def test_one_dated_title_inside_a_speech_splits_nothing(tmp_path: Path) -> None:
    lines = ["在全市工作会议上的讲话", "同志们：", BODY, "一、去年的工作", "（2016年3月1日）", BODY]
    assert len(read_corpus(write(tmp_path, "one.txt", "\n\n".join(lines))).speeches) == 1


def _deck(path: Path, sections: int) -> None:
    """A slide deck exported to PDF: an outline page (报告提纲, in large type) before each section,
    and the section's own slides."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    numerals = "一二三四五六"
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for n in range(sections):
        c.setFont("STSong-Light", 24)
        c.drawString(72, 770, "报告提纲")
        c.setFont("STSong-Light", 14)
        for k in range(sections):
            c.drawString(90, 720 - 24 * k, f"{numerals[k]}、第{k + 1}部分")
        c.showPage()
        for slide in range(2):
            c.setFont("STSong-Light", 24)
            c.drawString(72, 770, f"{numerals[n]}、第{n + 1}部分（{slide + 1}）")
            c.setFont("STSong-Light", 12)  # the body's size is the commonest: large type is a heading
            for k in range(4):
                c.drawString(72, 720 - 30 * k, f"第{n + 1}部分第{slide + 1}页第{k + 1}点：{BODY}")
            c.showPage()
    c.save()
    path.write_bytes(buf.getvalue())


def test_a_slide_deck_repeating_its_outline_is_one_document(tmp_path: Path) -> None:
    _deck(tmp_path / "deck.pdf", sections=3)
    report = read_corpus(tmp_path / "deck.pdf")
    assert [s.title for s in report.speeches] == ["报告提纲"]
    text = "".join(p.text for p in report.passages)
    assert all(f"第{n}部分第{m}页第{k}点" in text for n in (1, 2, 3) for m in (1, 2) for k in (1, 2, 3, 4))


@pytest.mark.parametrize("cue", ["【视频播放】", "【demo展示】", "（播放PPT）", "Page1 开始", "第3页"])
def test_cue_lines_are_no_passages(tmp_path: Path, cue: str) -> None:
    report = read_corpus(write(tmp_path, "pitch.txt", f"各位评委老师，下午好。\n\n{cue}\n\n{BODY}\n"))
    assert not any(cue in p.text for p in report.passages)
    assert any(p.text == BODY for p in report.passages)


def test_a_signature_closing_the_text_is_metadata(tmp_path: Path) -> None:
    """Name and date only at the end (a year-end summary), right-aligned with spaces."""
    text = "\n".join(["《2018年度总结》", BODY, "天道酬勤。", "　　　　张晓旭", "      2019.1.2"])
    report = read_corpus(write(tmp_path, "summary.txt", text))
    speech = report.speeches[0]
    assert (speech.speaker, speech.date) == ("张晓旭", "2019-01-02")  # not the title's 2018
    assert [p.text for p in report.passages][-1].endswith("天道酬勤。")


def test_a_byline_and_an_issuer_at_the_end(tmp_path: Path) -> None:
    text = "\n".join(["年终总结", BODY, "最后祝大家新年快乐~~~~", "By  yinguoqing", "2017/12/12"])
    speech = read_corpus(write(tmp_path, "a.txt", text)).speeches[0]
    assert (speech.speaker, speech.date) == ("yinguoqing", "2017-12-12")
    report = read_corpus(write(tmp_path, "b.txt", "\n".join(["万载县2015年统计公报", BODY, "（万载县统计局）"])))
    assert not any("统计局" in p.text for p in report.passages)


def test_a_labelled_speaker_line_inside_the_text(tmp_path: Path) -> None:
    text = "\n".join(["看北大毕业致辞的感受", "有人说，理想是廉价的。", "致辞：饶毅（教师代表、科学家）",
        "## 做自己尊重的人", BODY])
    report = read_corpus(write(tmp_path, "blog.md", text))
    assert report.speeches[0].speaker == "饶毅"
    assert not any(p.text.startswith("致辞") for p in report.passages)


def test_indented_lines_of_a_text_file_start_paragraphs(tmp_path: Path) -> None:
    """A line set in with a tab begins a paragraph even when the one above has no full stop."""
    text = "\t大家好，我是本次的项目汇报人，连志林\n\t宋朝诗人曾有诗，花笙谐音花声。\n\t本次汇报分为四个部分\n"
    report = read_corpus(write(tmp_path, "pitch.txt", text))
    assert next(p.text for p in report.passages) == "大家好，我是本次的项目汇报人，连志林"
    assert report.speeches[0].speaker == "连志林"


def test_hard_wrapped_lines_that_are_not_set_in_still_join(tmp_path: Path) -> None:
    text = "在全市工作会议上的讲话\n\n　　今天我们召开全市工作会议，主要任务是\n总结去年工作，部署今年任务。\n"
    assert [p.text for p in read_corpus(write(tmp_path, "wrap.txt", text)).passages] == [BODY]


def test_an_editors_note_is_a_passage_after_the_body_under_its_label(tmp_path: Path) -> None:
    """The note's facts (a prize, a city) are stated nowhere else: it is searchable and cited as
    导读, after the speech's own paragraphs, whose numbers it leaves alone."""
    note = "这次表彰会有一项特殊的表彰——“从零起飞奖”，奖品为战斗机模型。"
    lines = ["在小国表彰会上的讲话", "2013年1月14日", f"【导 读】{note}", BODY, f"第二段。{BODY}"]
    report = read_corpus(write(tmp_path, "award.txt", "\n\n".join(lines)))
    assert [(p.section, p.paragraph, p.text) for p in report.passages] == [
        ("", 1, BODY), ("", 2, f"第二段。{BODY}"), ("导读", 3, note)]
    assert report.speeches[0].date == "2013-01-14"
