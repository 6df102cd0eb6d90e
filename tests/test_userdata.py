"""The server's SQLite file (speechrag.userdata): its schema versions, concurrent writers,
feedback stored and listed by `speechrag feedback`."""

from __future__ import annotations

import csv
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from speechrag.cli import cli
from speechrag.errors import ConfigError
from speechrag.userdata import BUSY_TIMEOUT_MS, FILE_NAME, MIGRATIONS, UserData

ROW = {"question": "去年全县共有多少户计生家庭参加了保险？", "answer": "去年全县共有一万二千户计生家庭参加了保险[1]",
       "status": "found", "citations": ["[1] 在全县计划生育保险工作会议上的讲话 · 一、… · 第2段"],
       "generation": "gen-1"}


def test_a_new_file_gets_the_latest_schema_and_a_busy_timeout(tmp_path: Path) -> None:
    data = UserData.in_dir(tmp_path / "data")
    assert data.feedback() == []
    assert (tmp_path / "data" / FILE_NAME).is_file()
    with data.connect() as conn:
        assert UserData.version(conn) == len(MIGRATIONS)
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_older_file_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as conn:  # as a version-0 file was left
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (0)")
    UserData(path).add_feedback(rating=1, **ROW)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(ConfigError, match="newer than this speechrag"):
        UserData(path).feedback()


def test_feedback_round_trips_and_a_comment_is_only_its_users(tmp_path: Path) -> None:
    data = UserData.in_dir(tmp_path)
    first = data.add_feedback(rating=1, user="ana", **ROW)
    second = data.add_feedback(rating=-1, user=None, **ROW)
    assert data.set_comment(first, "引用准确", user="ana")
    assert not data.set_comment(first, "not mine", user="bo") and not data.set_comment(99, "x", user="ana")
    assert data.set_comment(second, "数字不对", user=None)
    rows = data.feedback()
    assert [(r.id, r.rating, r.user, r.comment) for r in rows] == [(first, 1, "ana", "引用准确"),
                                                                  (second, -1, None, "数字不对")]
    assert rows[0].citations == tuple(ROW["citations"]) and rows[0].generation == "gen-1"
    with pytest.raises(ValueError, match="rating must be 1 or -1"):
        data.add_feedback(rating=0, **ROW)


def test_writers_on_many_threads_all_land(tmp_path: Path) -> None:
    data = UserData.in_dir(tmp_path)

    def write() -> None:
        for _ in range(10):
            data.add_feedback(rating=1, **ROW)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(data.feedback()) == 80


def test_feedback_command_lists_and_writes_csv(tmp_path: Path) -> None:
    data = UserData.in_dir(tmp_path)
    row = data.add_feedback(rating=-1, user="ana", **ROW)
    data.set_comment(row, "数字不对", user="ana")
    result = CliRunner().invoke(cli, ["feedback", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "👎" in result.output and "去年全县共有多少户" in result.output and "数字不对" in result.output
    assert "1 ratings: 0 👍, 1 👎" in result.output
    out = tmp_path / "fb.csv"
    result = CliRunner().invoke(cli, ["feedback", "--data-dir", str(tmp_path), "--csv", str(out)])
    assert result.exit_code == 0 and "wrote 1 rows" in result.output
    with out.open(encoding="utf-8-sig", newline="") as f:
        header, line = list(csv.reader(f))
    assert header[:4] == ["id", "created", "user", "rating"]
    assert line[3] == "-1" and line[4] == "数字不对" and line[8] == ROW["citations"][0]


def test_feedback_command_without_a_file_says_where_it_looked(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["feedback", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no feedback yet" in result.output and result.output.count("\n") == 1


def test_conversations_are_per_user_and_latest_first(tmp_path: Path) -> None:
    data = UserData.in_dir(tmp_path)
    data.save_conversation("ana", "c1", "第一个", [{"question": "q1"}])
    data.save_conversation("ana", "c2", "第二个", [{"question": "q2"}])
    data.save_conversation("bo", "c1", "bo's", [])
    assert [c[0] for c in data.conversations("ana")] == ["c2", "c1"]
    data.save_conversation("ana", "c1", "ignored: a save keeps the title", [{"question": "q1b"}])
    assert [c[:2] for c in data.conversations("ana")] == [("c1", "第一个"), ("c2", "第二个")]
    assert data.conversation("ana", "c1") == ("第一个", [{"question": "q1b"}])
    assert data.conversation("bo", "c2") is None and not data.rename_conversation("bo", "c2", "x")
    assert data.rename_conversation("ana", "c2", "改名") and data.conversation("ana", "c2")[0] == "改名"  # type: ignore[index]
    assert not data.delete_conversation("bo", "c2") and data.delete_conversation("ana", "c2")
    assert [c[0] for c in data.conversations("ana")] == ["c1"] and len(data.conversations("bo")) == 1


def test_the_browser_key_is_kept_and_private(tmp_path: Path) -> None:
    data = UserData.in_dir(tmp_path)
    key = data.browser_secret()
    assert len(key) >= 32 and data.browser_secret() == key
    assert (tmp_path / "browser.key").stat().st_mode & 0o077 == 0
