"""Real speech documents through ingestion: every format of tests/fixtures/documents read into
speeches with their metadata, hostile files skipped with their reasons, header lines and site
chrome never passages, metadata filters, `speechrag add` and `--strict`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import speechrag
from speechrag import CorpusError, build_index, load_index, read_corpus
from speechrag.addfiles import add_documents
from speechrag.cli import cli
from speechrag.formats.ocr import missing

DOCS = Path(__file__).parent / "fixtures" / "documents"

# id: (title, date, speaker, occasion, place, format, paragraphs); a title as the document
# writes it, never with a place added (places tell apart only several speeches of one file)
EXPECTED = {
    "old-speech": ("张明同志在全县教育工作会议上的讲话", "2015-09-08", "张明", "在全县教育工作会议上", "", "doc", 6),
    "page-gbk": ("在全区安全生产工作会议上的讲话", "2020-01-06", "孙丽", "在全区安全生产工作会议上", "海淀区",
                 "html", 4),
    "page": ("仙桃市委书记刘强在全市优化营商环境大会上的讲话", "2019-03-05", "刘强", "在全市优化营商环境大会上",
             "仙桃市", "html", 5),
    "report-gbk-crlf": ("政府工作报告", "2018-01-09", "刘宏", "在洛阳市第十五届人民代表大会第三次会议上",
                        "洛阳市", "txt", 5),
    "report-nested-tables": ("政府工作报告", "2017-02-11", "李建国",
                             "在青山区第十八届人民代表大会第一次会议上", "青山区", "docx", 9),
    "speech-headings": ("在全市农村饮水安全工作会议上的讲话", "2018-03-20", "王晓东",
                        "在全市农村饮水安全工作会议上", "商丘市", "docx", 10),
    "speech": ("在全省文化惠民工程推进会上的讲话", "2019-06-12", "赵文华", "在全省文化惠民工程推进会上",
               "河南省", "pdf", 15),
}
SKIPPED = {
    "binary.txt": "binary file, not text",
    "bomb.docx": "docx expands to over 200 MB (zip bomb?)",
    "broken.pdf": "damaged PDF (PSEOF: Unexpected EOF)",
    "cyclic.pdf": "damaged PDF (cyclic structure)",
    "empty.docx": "no text in this docx file",
    "encrypted.pdf": "encrypted PDF",
    "fake.pdf": "binary file, not text (an executable (ELF) named .pdf)",
    "pages-10000.pdf": "PDF has 10,000 pages, over the 2,000-page limit",
    # grey blocks where text would be: OCR (the ocr extra) finds no text in them
    "scanned.pdf": f"no text layer (scanned?): {missing()}" if missing()
    else "no text layer (scanned?), and OCR read no text on its 1 page(s)",
}


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    return read_corpus(DOCS)


def test_every_format_gives_a_speech_with_its_metadata(report) -> None:  # type: ignore[no-untyped-def]
    got = {s.id: (s.title, s.date, s.speaker, s.occasion, s.place, s.format, s.paragraphs) for s in report.speeches}
    assert got == EXPECTED


def test_unreadable_files_are_skipped_with_their_reasons(report) -> None:  # type: ignore[no-untyped-def]
    assert {s.source: s.reason for s in report.skipped} == SKIPPED
    assert report.files == len(EXPECTED) + len(SKIPPED)


def test_header_lines_and_site_chrome_are_never_passages(report) -> None:  # type: ignore[no-untyped-def]
    texts = [p.text for p in report.passages]
    for fragment in ("——2017年2月11日", "人民政府区长", "来源：", "发布时间", "点击数", "上一篇", "下一篇", "推荐阅读",
                     "版权所有", "字号", "扫一扫", "同志们：", "各位代表：", "同志们、朋友们"):
        assert not any(t.startswith(fragment) or t == fragment for t in texts), fragment
    first = {p.speech_id: p for p in reversed(report.passages)}
    assert first["report-nested-tables"].text.startswith("现在，我代表区人民政府，向大会报告工作")
    assert first["page"].text.startswith("今天召开全市优化营商环境大会")


def test_a_repeated_salutation_never_splits_a_speech(report) -> None:  # type: ignore[no-untyped-def]
    # speech-headings.docx says 同志们、朋友们！ between its parts: still one speech, all sections.
    sections = {p.section for p in report.passages if p.speech_id == "speech-headings"}
    assert sections == {"", "一、充分认识农村饮水安全工作的重要性", "二、突出抓好工程建设和运行管护",
                        "三、加强组织领导，确保各项任务落到实处"}


def test_citations_say_when(report) -> None:  # type: ignore[no-untyped-def]
    p = next(p for p in report.passages if p.speech_id == "report-nested-tables" and p.paragraph == 2)
    assert p.citation == "2017-02-11 · 政府工作报告 · 一、2016年工作回顾 · 第2段"


def test_metadata_filters(tmp_path: Path) -> None:
    build_index(DOCS, tmp_path / "e", model="hash")
    searcher = load_index(tmp_path / "e")
    by = {s.id: s for s in searcher.speeches}
    hits = speechrag.retrieve("工作", 10, speaker="李建国", index=searcher)
    assert hits and {h.passage.speech_id for h in hits} == {"report-nested-tables"}
    # A place matches with or without its suffix.
    in_place = speechrag.retrieve("工作", 10, place="商丘", index=searcher)
    assert {h.passage.speech_id for h in in_place} == {"speech-headings"}
    in_years = {h.passage.speech_id for h in speechrag.retrieve("工作", 50, years=(2018, 2019), index=searcher)}
    assert in_years and all(by[s].year in (2018, 2019) for s in in_years)
    assert {by[s].year for s in in_years} == {2018, 2019}


def test_cli_lists_skipped_files_and_strict_refuses(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["build", "--corpus", str(DOCS), "--index", str(tmp_path / "e"),
                                      "--model", "hash"])
    assert result.exit_code == 0, result.output
    for name, reason in SKIPPED.items():
        assert f"skipped {name}: {reason}" in result.output
    again = CliRunner().invoke(cli, ["build", "--index", str(tmp_path / "e")])
    assert again.exit_code == 0 and "up to date" in again.output and "skipped bomb.docx" in again.output
    strict = CliRunner().invoke(cli, ["build", "--index", str(tmp_path / "e"), "--strict"])
    assert strict.exit_code == 1 and strict.output.startswith("Error: binary.txt: binary file, not text")
    assert strict.output.count("\n") == 1
    shown = CliRunner().invoke(cli, ["corpus", str(DOCS)])
    assert "2017-02-11" in shown.output and "李建国" in shown.output and "skipped scanned.pdf" in shown.output


def test_add_documents_never_overwrites_and_rebuilds(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    added = add_documents([DOCS / "speech.pdf", DOCS / "report-gbk-crlf.txt"], corpus)
    assert [a.status for a in added] == ["added", "added"]
    assert [a.status for a in add_documents([DOCS / "speech.pdf"], corpus)] == ["unchanged"]
    other = tmp_path / "elsewhere" / "speech.pdf"
    other.parent.mkdir()
    shutil.copyfile(DOCS / "page.html", other)  # a different file with the same name
    (renamed,) = add_documents([other], corpus)
    assert renamed.status == "renamed" and Path(renamed.dest).name == "speech-2.pdf"
    assert (corpus / "speech.pdf").read_bytes() == (DOCS / "speech.pdf").read_bytes()
    result = CliRunner().invoke(cli, ["add", str(DOCS / "old-speech.doc"), "--corpus", str(corpus),
                                      "--index", str(tmp_path / "e")], env={"SPEECHRAG_MODEL": "hash"})
    assert result.exit_code == 0, result.output
    assert f"added {DOCS / 'old-speech.doc'}" in result.output and "built" in result.output
    assert {s.format for s in load_index(tmp_path / "e").speeches} == {"pdf", "txt", "html", "doc"}


def test_symlinked_folders_are_read_once(tmp_path: Path) -> None:
    root = tmp_path / "c"
    (root / "a").mkdir(parents=True)
    shutil.copyfile(DOCS / "report-gbk-crlf.txt", root / "a" / "r.txt")
    os.symlink(root, root / "a" / "loop")  # a loop
    os.symlink(root / "a", root / "again")  # the same folder twice
    report = read_corpus(root)
    assert [s.source for s in report.speeches] == ["a/r.txt"]


def test_a_folder_of_nothing_readable_is_an_error(tmp_path: Path) -> None:
    shutil.copyfile(DOCS / "scanned.pdf", tmp_path / "scan.pdf")
    with pytest.raises(CorpusError, match=r"no speech could be read .*scan\.pdf: no text layer \(scanned\?\)"):
        read_corpus(tmp_path)
