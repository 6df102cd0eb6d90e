"""Adding documents from the browser: names that cannot leave the corpus folder, type by content,
the size and docx caps, one build at a time, and ``/add_documents`` through gradio_client."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file

from live_server import free_port
from speechrag import Searcher, build_index, load_index, render, ui
from speechrag.errors import ConfigError, IndexLockedError, QueryError
from speechrag.formats import MB
from speechrag.serving import IndexService
from speechrag.uploads import Uploader, UploadLimits, check_file, safe_name

DOCS = Path(__file__).parent / "fixtures" / "documents"
SPEECH_DOCX = DOCS / "speech-headings.docx"
DOCX_Q = "全市还有多少农村人口饮用高氟水、苦咸水？"  # only speech-headings.docx answers it


@pytest.mark.parametrize(
    ("given", "suffix", "stored"),
    [
        ("../../x.docx", ".docx", "x.docx"),
        ("/etc/passwd", ".txt", "passwd.txt"),
        ("..\\..\\windows\\evil.pdf", ".pdf", "evil.pdf"),
        ("a\x00b.docx", ".docx", "ab.docx"),
        ("..", ".txt", "document.txt"),
        (".bashrc", ".txt", "bashrc.txt"),
        ("", ".md", "document.md"),
        ("讲话<script>.docx", ".docx", "讲话script.docx"),
        ("userdict.txt", ".txt", "upload-userdict.txt"),
        ("report.pdf", ".docx", "report.docx"),  # the type found wins over the name
    ],
)
def test_safe_name_stays_in_the_folder(given: str, suffix: str, stored: str) -> None:
    assert safe_name(given, suffix) == stored


def test_safe_name_bounds_a_very_long_name() -> None:
    name = safe_name("长" * 5000 + ".docx", ".docx")
    assert name == "长" * 80 + ".docx" and len(name.encode()) < 255
    assert "/" not in safe_name("a/" * 300 + "b.pdf", ".pdf")


def test_check_file_types_by_content(tmp_path: Path) -> None:
    limits = UploadLimits()
    assert check_file(SPEECH_DOCX, "speech.pdf", limits) == "speech.docx"
    with pytest.raises(Exception, match=r"executable \(ELF\) named \.pdf"):
        check_file(DOCS / "fake.pdf", "fake.pdf", limits)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (MB + 1))
    with pytest.raises(Exception, match="over the 1 MB upload limit"):
        check_file(big, "big.txt", UploadLimits(max_bytes=MB))


@pytest.fixture
def corpus_and_index(fixture_corpus: Path, tiny_index: Searcher, tmp_path: Path) -> tuple[Path, Path]:
    corpus = tmp_path / "corpus"
    shutil.copytree(fixture_corpus, corpus)
    index = tmp_path / "embeddings"
    build_index(corpus, index, model="hash")
    return corpus, index


def uploader_for(corpus: Path, index: Path, **limits: Any) -> Uploader:
    return Uploader(IndexService(load_index(index)), corpus, limits=UploadLimits(**limits))


def test_hostile_uploads_are_refused_with_their_reason(corpus_and_index: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = corpus_and_index
    before = sorted(p.name for p in corpus.iterdir())
    uploader = uploader_for(corpus, index)
    files = [(DOCS / "fake.pdf", "fake.pdf"), (DOCS / "bomb.docx", "bomb.docx"),
             (DOCS / "empty.docx", "empty.docx"), (SPEECH_DOCX, "../../../../tmp/escape.docx")]
    report = uploader.add(files)
    reasons = dict(report.skipped)
    assert "executable (ELF)" in reasons["fake.pdf"]
    assert "zip bomb" in reasons["bomb.docx"]
    assert set(reasons) == {"fake.pdf", "bomb.docx", "empty.docx"}
    # The traversal name is stored inside the folder, under its last part only.
    assert report.added == (("../../../../tmp/escape.docx", "escape.docx"),)
    assert sorted(p.name for p in corpus.iterdir()) == sorted([*before, "escape.docx"])
    assert not (tmp_path.parent / "escape.docx").exists() and not Path("/tmp/escape.docx").exists()
    assert len(report.speeches) == 1 and "index rebuilt" in report.build and str(index) not in report.build
    # The new speech is in the live index, and answers what only it says.
    ans = uploader.service.ask(DOCX_Q, k=3)
    assert ans.citations[0].passage.speech_id == report.speeches[0]
    html = render.upload_html(report.to_dict())
    assert "escape.docx" in html and "zip bomb" in html


def test_a_drop_is_staged_in_our_own_list_and_the_drop_zone_emptied() -> None:
    # The drop zone is emptied (Gradio's list would link each file to a refused route); the
    # files wait for Add, a name dropped again replacing its namesake; the names are escaped.
    zone, waiting, shown = ui.stage(["/c/1/a.docx", "/c/2/<b>.md"], None)
    assert zone is None and waiting == ["/c/1/a.docx", "/c/2/<b>.md"]
    assert "&lt;b&gt;.md" in shown and "<b>" not in shown and "Ready to add 2" in shown
    zone, waiting, shown = ui.stage(["/c/3/a.docx"], waiting)
    assert waiting == ["/c/3/a.docx", "/c/2/<b>.md"] and "Ready to add 2" in shown
    assert ui.stage(None, None) == (None, [], "")


def test_the_same_file_again_is_not_added_twice(corpus_and_index: tuple[Path, Path]) -> None:
    uploader = uploader_for(*corpus_and_index)
    assert uploader.add([(SPEECH_DOCX, "a.docx")]).added
    again = uploader.add([(SPEECH_DOCX, "a.docx")])
    assert again.added == () and again.skipped == (("a.docx", "the same file is already in the corpus"),)
    assert again.build == ""  # nothing new: no rebuild


def test_many_files_at_once_are_refused(corpus_and_index: tuple[Path, Path]) -> None:
    uploader = uploader_for(*corpus_and_index, max_files=3)
    with pytest.raises(QueryError, match="at most 3"):
        uploader.add([(SPEECH_DOCX, f"{i}.docx") for i in range(4)])


def test_an_upload_during_a_build_is_refused_and_nothing_is_lost(corpus_and_index: tuple[Path, Path],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index = corpus_and_index
    uploader = uploader_for(corpus, index)
    started, release = threading.Event(), threading.Event()
    import speechrag.index

    real_build = speechrag.index.build_index

    def slow_build(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(30)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(speechrag.index, "build_index", slow_build)
    first = threading.Thread(target=lambda: uploader.add([(SPEECH_DOCX, "first.docx")]))
    first.start()
    assert started.wait(30)
    with pytest.raises(IndexLockedError, match="a rebuild is running: nothing was added"):
        uploader.add([(DOCS / "report-nested-tables.docx", "second.docx")])
    release.set()
    first.join(60)
    names = {p.name for p in corpus.iterdir()}
    assert "first.docx" in names and "second.docx" not in names  # refused whole, never half-stored
    assert any(s.source == "first.docx" for s in uploader.service.speeches())


def test_uploads_need_a_corpus_folder(tiny_index: Searcher, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="corpus folder"):
        Uploader(IndexService(tiny_index), tmp_path / "missing")


# --- through the server ----------------------------------------------------------------------


@pytest.fixture
def upload_server(corpus_and_index: tuple[Path, Path]) -> Iterator[tuple[str, Path]]:
    corpus, index = corpus_and_index
    demo = ui.serve(load_index(index), host="127.0.0.1", port=free_port(), block=False, delay=0,
                    upload_to=corpus, upload_limits=UploadLimits(max_bytes=MB))
    try:
        yield str(demo.local_url), corpus
    finally:
        demo.close()


def test_add_documents_then_ask_through_gradio_client(upload_server: tuple[str, Path]) -> None:
    url, _ = upload_server
    client = Client(url, verbose=False)
    summary = client.predict([handle_file(str(SPEECH_DOCX)), handle_file(str(DOCS / "fake.pdf"))],
                             api_name="/add_documents")
    assert [a["stored_as"] for a in summary["added"]] == ["speech-headings.docx"]
    assert summary["skipped"][0]["name"] == "fake.pdf" and "ELF" in summary["skipped"][0]["reason"]
    assert len(summary["speeches"]) == 1
    result = client.predict(DOCX_Q, api_name="/ask")
    assert result["citations"][0]["passage"]["speech_id"] == summary["speeches"][0]
    docs = client.predict(api_name="/documents")
    assert summary["speeches"][0] in {d["id"] for d in docs}


def test_oversize_upload_is_stopped_by_the_upload_route(upload_server: tuple[str, Path], tmp_path: Path) -> None:
    url, corpus = upload_server
    big = tmp_path / "big.txt"
    big.write_bytes("讲话".encode() * MB)  # 6 MB, over the server's 1 MB
    with big.open("rb") as fh:
        r = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.txt", fh)}, timeout=60)
    assert r.status_code == 413
    assert "big.txt" not in {p.name for p in corpus.iterdir()}


def test_upload_route_stays_closed_without_allow_upload(tiny_index: Searcher) -> None:
    demo = ui.serve(tiny_index, host="127.0.0.1", port=free_port(), block=False, delay=0)
    try:
        r = httpx.post(f"{demo.local_url}gradio_api/upload", files={"files": ("a.txt", b"x")}, timeout=30)
        assert r.status_code == 403
        named = Client(str(demo.local_url), verbose=False).view_api(print_info=False, return_format="dict")
        assert "/add_documents" not in named["named_endpoints"]
    finally:
        demo.close()


# --- removing a document ----------------------------------------------------------------------


def test_remove_moves_the_file_aside_and_rebuilds(corpus_and_index: tuple[Path, Path]) -> None:
    corpus, index = corpus_and_index
    uploader = uploader_for(corpus, index)
    source = uploader.service.speeches()[0].source
    report = uploader.remove(source)
    assert report.speeches and source not in {s.source for s in uploader.service.speeches()}
    kept = corpus / report.removed[0][1]
    assert kept.is_file() and kept.parent.name == ".removed" and not (corpus / source).exists()
    # Kept aside, never read again by a build.
    assert source not in {s.source for s in load_index(index).speeches}
    assert "已删除" in render.upload_html(report.to_dict())


@pytest.mark.parametrize("source", ["../embeddings/manifest.json", "/etc/passwd", "missing.md", ""])
def test_remove_takes_only_a_listed_file_inside_the_corpus(corpus_and_index: tuple[Path, Path], source: str) -> None:
    uploader = uploader_for(*corpus_and_index)
    with pytest.raises(QueryError, match="no document"):
        uploader.remove(source)


def test_the_last_document_is_not_removed(tmp_path: Path, write_corpus: Any) -> None:
    from conftest import FIXTURE_SPEECHES

    name, text = next(iter(FIXTURE_SPEECHES.items()))
    corpus = write_corpus(tmp_path / "corpus", {name: text})
    build_index(corpus, tmp_path / "e", model="hash")
    with pytest.raises(QueryError, match="last document"):
        uploader_for(corpus, tmp_path / "e").remove(name)
    assert (corpus / name).exists()


def test_remove_document_through_gradio_client(upload_server: tuple[str, Path]) -> None:
    url, _ = upload_server
    client = Client(url, verbose=False)
    client.predict([handle_file(str(SPEECH_DOCX))], api_name="/add_documents")
    assert client.predict("speech-headings.docx", api_name="/remove_document")["speeches"]  # added since start
    source = client.predict(api_name="/documents")[0]["source"]
    summary = client.predict(source, api_name="/remove_document")
    assert summary["removed"][0]["source"] == source and summary["speeches"]
    assert source not in {d["source"] for d in client.predict(api_name="/documents")}
    with pytest.raises(Exception, match="no document"):
        client.predict("../../etc/passwd", api_name="/remove_document")
