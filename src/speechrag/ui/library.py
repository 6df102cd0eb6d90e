"""A user's saved conversations: the list to reopen, rename and delete, and the one a reload
restores.

Two homes, one interface (`Library`): without sign-in, the browser keeps them (`BrowserLibrary`,
held here for the page and mirrored into a Gradio BrowserState, i.e. the browser's local
storage, after every change); with sign-in, the server keeps them per user in the SQLite file
(`UserLibrary` over `speechrag.userdata`), so a user finds them from any browser and no other
user sees them. A conversation is saved as its finished turns (`Conversation.snapshot`):
question, state, the reply as shown and the Answer as data, so its sources come back with it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from speechrag.userdata import UserData

MAX_BROWSER_CONVERSATIONS = 30  # local storage holds ~5 MB a site; an answer with sources is ~5-10 KB
MAX_TITLE_CHARS = 60


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def title_of(question: str) -> str:
    """A new conversation's title: its first question, cut."""
    text = " ".join(question.split())
    return text if len(text) <= MAX_TITLE_CHARS else text[:MAX_TITLE_CHARS] + "…"


class Library(Protocol):
    def list(self) -> list[tuple[str, str, str]]: ...  # (id, title, updated), latest first
    def get(self, cid: str) -> tuple[str, Any] | None: ...  # (title, data)
    def save(self, cid: str, title: str, data: Any) -> None: ...
    def rename(self, cid: str, title: str) -> bool: ...
    def delete(self, cid: str) -> bool: ...


class UserLibrary:
    """A signed-in user's conversations, in the server's SQLite file."""

    def __init__(self, userdata: UserData, user: str) -> None:
        self.userdata, self.user = userdata, user

    def list(self) -> list[tuple[str, str, str]]:
        return self.userdata.conversations(self.user)

    def get(self, cid: str) -> tuple[str, Any] | None:
        return self.userdata.conversation(self.user, cid)

    def save(self, cid: str, title: str, data: Any) -> None:
        self.userdata.save_conversation(self.user, cid, title, data)

    def rename(self, cid: str, title: str) -> bool:
        return self.userdata.rename_conversation(self.user, cid, title)

    def delete(self, cid: str) -> bool:
        return self.userdata.delete_conversation(self.user, cid)


class BrowserLibrary:
    """The conversations the browser keeps: a dict while the page is open, `value()` for its
    local storage. What comes back from the browser is checked, not trusted."""

    def __init__(self, saved: object = None) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        raw = saved.get("conversations") if isinstance(saved, dict) else None
        for item in raw if isinstance(raw, list) else []:
            if (isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("title"), str)
                    and isinstance(item.get("updated"), str) and isinstance(item.get("data"), list)):
                self.items[item["id"]] = {k: item[k] for k in ("id", "title", "updated", "data")}

    def value(self) -> dict[str, Any]:
        latest = sorted(self.items.values(), key=lambda i: i["updated"], reverse=True)
        return {"conversations": latest[:MAX_BROWSER_CONVERSATIONS]}

    def list(self) -> list[tuple[str, str, str]]:
        return [(i["id"], i["title"], i["updated"]) for i in self.value()["conversations"]]

    def get(self, cid: str) -> tuple[str, Any] | None:
        item = self.items.get(cid)
        return None if item is None else (item["title"], item["data"])

    def save(self, cid: str, title: str, data: Any) -> None:
        old = self.items.get(cid)
        self.items[cid] = {"id": cid, "title": old["title"] if old else title,
                           "updated": datetime.now(UTC).isoformat(), "data": data}

    def rename(self, cid: str, title: str) -> bool:
        if cid not in self.items:
            return False
        self.items[cid]["title"] = title
        return True

    def delete(self, cid: str) -> bool:
        return self.items.pop(cid, None) is not None
