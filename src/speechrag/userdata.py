"""What the server keeps about its users, in one SQLite file in the app's data directory
(`config.Settings.data_dir`): feedback on answers, and signed-in users' conversations.

Standard library `sqlite3`, a connection per call (the page's events run on many threads;
a connection is cheap, and none is shared between threads), WAL so a reader never waits for
a writer, and a busy timeout so two writers queue instead of failing. The schema carries its
version (`schema_version`); `MIGRATIONS[i]` takes a file from version i to i + 1, each in one
transaction, so an older file is brought up to date when it is opened and a newer one is
refused with a message saying so.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from speechrag.errors import ConfigError

FILE_NAME = "speechrag.db"
BUSY_TIMEOUT_MS = 5000

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: feedback on answers
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        created TEXT NOT NULL,          -- UTC, ISO 8601
        user TEXT,                      -- who signed in (NULL without sign-in)
        rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
        comment TEXT NOT NULL DEFAULT '',
        question TEXT NOT NULL,
        answer TEXT NOT NULL,           -- the answer's text, [n] markers included
        status TEXT NOT NULL,           -- found | partial | not_found
        citations TEXT NOT NULL,        -- JSON: ["[1] date · title · section · paragraph", ...]
        generation TEXT NOT NULL        -- the index generation that answered
    );
    """,
    # 1 -> 2: signed-in users' conversations (a user sees theirs from any browser)
    """
    CREATE TABLE conversations (
        user TEXT NOT NULL,
        id TEXT NOT NULL,
        title TEXT NOT NULL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        data TEXT NOT NULL,             -- JSON: the turns (`speechrag.ui.library`)
        PRIMARY KEY (user, id)
    );
    CREATE INDEX conversations_by_update ON conversations (user, updated);
    """,
)


@dataclass(frozen=True)
class Feedback:
    """One row of the feedback table."""

    id: int
    created: str
    user: str | None
    rating: int
    comment: str
    question: str
    answer: str
    status: str
    citations: tuple[str, ...]
    generation: str

    COLUMNS = ("id", "created", "user", "rating", "comment", "question", "answer", "status", "citations",
               "generation")

    def row(self) -> list[Any]:
        """The row as the CSV export writes it (citations one per line)."""
        return [self.id, self.created, self.user or "", self.rating, self.comment, self.question, self.answer,
                self.status, "\n".join(self.citations), self.generation]


class UserData:
    """The SQLite file at ``path`` (made, with its folder, on first use)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def in_dir(cls, data_dir: str | os.PathLike[str]) -> UserData:
        return cls(Path(data_dir) / FILE_NAME)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed on success), the schema up to date."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._migrate()
                    self._ready = True
        conn = self._open()
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the data file {self.path}: {exc}; set $SPEECHRAG_DATA_DIR "
                              "to a writable folder") from None
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _migrate(self) -> None:
        conn = self._open()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            with conn:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = conn.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    conn.execute("INSERT INTO schema_version (version) VALUES (0)")
            version = self.version(conn)
            if version > len(MIGRATIONS):
                raise ConfigError(f"{self.path} is at schema version {version}, newer than this speechrag "
                                  f"({len(MIGRATIONS)}): upgrade speechrag, or point $SPEECHRAG_DATA_DIR elsewhere")
            for step in range(version, len(MIGRATIONS)):
                with conn:  # one transaction per step: a failed step leaves the version before it
                    conn.executescript("BEGIN;" + MIGRATIONS[step] +
                                       f"UPDATE schema_version SET version = {step + 1}; COMMIT;")
        finally:
            conn.close()

    def browser_secret(self) -> str:
        """The key the page's browser copy of conversations is encrypted with (Gradio's
        BrowserState), kept beside the file: a restarted server still reads what browsers hold."""
        path = self.path.with_name("browser.key")
        try:
            secret = path.read_text(encoding="ascii").strip()
            if secret:
                return secret
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        secret = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secret)
        return secret

    @staticmethod
    def version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])

    # --- feedback --------------------------------------------------------------------------

    def add_feedback(self, *, rating: int, question: str, answer: str, status: str, citations: Sequence[str],
                     generation: str, user: str | None = None, comment: str = "") -> int:
        """Store one rating (+1 or -1) of an answer; its row id."""
        if rating not in (-1, 1):
            raise ValueError(f"rating must be 1 or -1, not {rating!r}")
        with self.connect() as conn:
            cur = conn.execute(
                "INSERT INTO feedback (created, user, rating, comment, question, answer, status, citations, "
                "generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_now(), user, rating, comment, question, answer, status,
                 json.dumps(list(citations), ensure_ascii=False), generation))
            return int(cur.lastrowid or 0)

    def set_comment(self, feedback_id: int, comment: str, *, user: str | None = None) -> bool:
        """Attach a comment to a rating given by the same user; False if there is no such row."""
        with self.connect() as conn:
            cur = conn.execute("UPDATE feedback SET comment = ? WHERE id = ? AND user IS ?",
                               (comment, feedback_id, user))
            return cur.rowcount == 1

    def feedback(self) -> list[Feedback]:
        """Every rating, oldest first."""
        with self.connect() as conn:
            rows = conn.execute(f"SELECT {', '.join(Feedback.COLUMNS)} FROM feedback ORDER BY id").fetchall()
        return [Feedback(id=r[0], created=r[1], user=r[2], rating=r[3], comment=r[4], question=r[5], answer=r[6],
                         status=r[7], citations=tuple(json.loads(r[8])), generation=r[9]) for r in rows]


    # --- conversations -----------------------------------------------------------------------

    def conversations(self, user: str) -> list[tuple[str, str, str]]:
        """(id, title, updated) of the user's conversations, the latest first."""
        with self.connect() as conn:
            rows = conn.execute("SELECT id, title, updated FROM conversations WHERE user = ? "
                                "ORDER BY updated DESC, rowid DESC", (user,)).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def conversation(self, user: str, cid: str) -> tuple[str, Any] | None:
        """(title, data) of one of the user's conversations, or None."""
        with self.connect() as conn:
            row = conn.execute("SELECT title, data FROM conversations WHERE user = ? AND id = ?",
                               (user, cid)).fetchone()
        return None if row is None else (str(row[0]), json.loads(row[1]))

    def save_conversation(self, user: str, cid: str, title: str, data: Any) -> None:
        now = datetime.now(UTC).isoformat()  # to the microsecond: the list is ordered by it
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO conversations (user, id, title, created, updated, data) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user, id) DO UPDATE SET data = excluded.data, updated = excluded.updated",
                (user, cid, title, now, now, json.dumps(data, ensure_ascii=False)))

    def rename_conversation(self, user: str, cid: str, title: str) -> bool:
        with self.connect() as conn:
            return conn.execute("UPDATE conversations SET title = ? WHERE user = ? AND id = ?",
                                (title, user, cid)).rowcount == 1

    def delete_conversation(self, user: str, cid: str) -> bool:
        with self.connect() as conn:
            return conn.execute("DELETE FROM conversations WHERE user = ? AND id = ?", (user, cid)).rowcount == 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
