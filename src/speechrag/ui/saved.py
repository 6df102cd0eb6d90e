"""The saved-conversation events of the page (`speechrag.ui.library` keeps them): restore on
load, persist after each change, open, rename and delete from the list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from speechrag.render import sources_html
from speechrag.ui.conversation import Conversation, Conversations
from speechrag.ui.handlers import view
from speechrag.ui.library import BrowserLibrary, UserLibrary, title_of
from speechrag.userdata import UserData


def conversation_menu(conv: Conversation) -> Any:
    """The saved-conversations menu: "title · date" per conversation, the latest first."""
    items = conv.library.list() if conv.library is not None else []
    choices = [(f"{title} · {updated[:16].replace('T', ' ')}", cid) for cid, title, updated in items]
    return gr.Dropdown(choices=choices, value=conv.cid if any(cid == conv.cid for cid, _, _ in items) else None)


def stored(conv: Conversation) -> Any:
    """The browser's copy (its local storage) when the browser is where they are kept."""
    return conv.library.value() if isinstance(conv.library, BrowserLibrary) else gr.skip()


def _panel(conv: Conversation) -> str:
    last = conv.last_answer()
    return sources_html(None) if last is None else sources_html(last[1], key=str(last[0]))


def make_restore(conversations: Conversations, userdata: UserData | None) -> Callable[..., tuple[Any, ...]]:
    """On page load: the page's saved conversations (the server's, per user, with sign-in and a
    data folder; else the browser's), and the latest of them back in the chat with its sources."""

    def restore(saved: object, request: gr.Request) -> tuple[Any, ...]:
        conv = conversations.get(request.session_hash)
        user = getattr(request, "username", None)
        conv.user = user
        conv.library = UserLibrary(userdata, user) if user and userdata is not None else BrowserLibrary(saved)
        items = conv.library.list()
        if items and not conv.turns:
            cid, _, _ = items[0]
            got = conv.library.get(cid)
            if got is not None:
                conv.restore(cid, got[0], got[1])
        return (*view(conv, _panel(conv)), conversation_menu(conv))

    return restore


def make_persist(conversations: Conversations) -> Callable[..., tuple[Any, Any]]:
    """After a change: the conversation saved, the menu and the browser's copy brought up to date."""

    def persist(request: gr.Request) -> tuple[Any, Any]:
        conv = conversations.get(request.session_hash)
        conv.save()
        return conversation_menu(conv), stored(conv)

    return persist


def make_open(conversations: Conversations) -> Callable[..., tuple[Any, ...]]:
    """Reopen a saved conversation (the one open now is saved first)."""

    def open_saved(cid: str, request: gr.Request) -> tuple[Any, ...]:
        conv = conversations.get(request.session_hash)
        got = conv.library.get(str(cid)) if conv.library is not None and cid else None
        if got is None or cid == conv.cid:
            return (gr.skip(),) * 6
        conv.stop()
        conv.save()
        conv.restore(str(cid), got[0], got[1])
        conv.save()  # now the latest: a reload reopens it
        return (*view(conv, _panel(conv)), conversation_menu(conv), stored(conv))

    return open_saved


def make_rename(conversations: Conversations) -> Callable[..., tuple[Any, Any, Any]]:
    def rename(cid: str, title: str, request: gr.Request) -> tuple[Any, Any, Any]:
        conv = conversations.get(request.session_hash)
        title = title_of(title or "")
        if conv.library is None or not cid or not title:
            return gr.skip(), gr.skip(), gr.skip()
        if cid == conv.cid:
            conv.title = title
        conv.library.rename(str(cid), title)
        return conversation_menu(conv), stored(conv), ""

    return rename


def make_delete(conversations: Conversations) -> Callable[..., tuple[Any, ...]]:
    """Delete a saved conversation; deleting the one open empties the chat."""

    def delete(cid: str, request: gr.Request) -> tuple[Any, ...]:
        conv = conversations.get(request.session_hash)
        if conv.library is None or not cid:
            return (gr.skip(),) * 6
        conv.library.delete(str(cid))
        if cid != conv.cid:
            return (*(gr.skip(),) * 4, conversation_menu(conv), stored(conv))
        conv.stop()
        conv.start_new()
        return (*view(conv, sources_html(None)), conversation_menu(conv), stored(conv))

    return delete
