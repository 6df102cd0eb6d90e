"""The chat of one open page, kept on the server: every question sent, in order, and what
became of it (waiting, answering, answered, failed, stopped).

Why the server holds it: the page sends questions faster than they are answered, and three
events write the chat at once (a send, the answer streaming, Stop). Were each to build the
chat from the value the browser last had, one would overwrite another's bubble; here each
takes the lock, changes the `Conversation`, and renders all of it (`messages`), so every
update the browser gets is the whole, current chat. Questions arrive with an id the page gave
them (`add`), so a send the browser delivers twice is one question, and none is lost when two
deliveries cross.

Only one event answers at a time per page (`claim`); it answers the waiting questions in
order until none is left. Stop (`stop`) ends the current question and the waiting ones and
takes the claim away: the answering event, which may still be inside `answer()`, then writes
nothing more, and the next question is answered at once under a new claim.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from speechrag.answering import Answer
from speechrag.export import NOT_ANSWERED, Exchange
from speechrag.render import escape_markdown, markdown_chunks
from speechrag.ui.library import Library, new_id, title_of

Chat = list[dict[str, str]]

WAITING = "排队中… · Waiting…"
PENDING = "检索中… · Searching…"
STOPPED = "（已停止 · stopped）"
SHOWN_QUESTION_CHARS = 200
SAVED_STATES = ("done", "error", "stopped")
NOT_RESTORED = "⚠️ 未能回答 · not answered"
NOTES = {"stopped": STOPPED, "waiting": "（未回答 · waiting）", "answering": "（回答中 · being answered）"}
MAX_TURNS = 500  # a page that sends more is misbehaving: refused, with the reason in the chat
MAX_PAGES = 10_000  # pages whose chats are held at once; the oldest is dropped first


@dataclass
class Turn:
    """One question and its reply. ``state``: waiting, answering, done (an Answer), error
    (``text`` is the one-line message) or stopped."""

    question: str
    options: dict[str, Any]
    state: str = "waiting"
    text: str = ""  # the reply's markdown as shown so far
    answer: Answer | None = None
    generation: str = ""  # the index generation that answered


def cite_href(key: int) -> Callable[[int], str]:
    """The in-page anchor of source n of the chat's answer number ``key`` (the page's script
    turns a click on it into the reading view)."""
    return lambda n: f"#cite-{key}-{n}"


def shown_question(question: object) -> str:
    """The user's bubble: the question cut to a readable length, escaped."""
    shown = question.strip() if isinstance(question, str) else ""
    # Echo broken text safely: a lone surrogate would make the JSON event stream fail.
    shown = shown.encode("utf-8", "replace").decode("utf-8")
    if len(shown) > SHOWN_QUESTION_CHARS:
        shown = shown[:SHOWN_QUESTION_CHARS] + "…"
    return escape_markdown(shown) or "（空）"


@dataclass
class Conversation:
    """One page's chat (see the module's docstring); every method takes the lock. The event
    answering holds ``holder``, a token from `claim`; Stop and Clear take it away."""

    turns: list[Turn] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # ids of the questions ever added (Clear keeps them)
    holder: int | None = None
    claims: int = 0
    user: str | None = None  # who signed in, when sign-in is on: only they may export it
    cid: str = field(default_factory=new_id)  # its id in the user's saved conversations
    title: str = ""
    library: Library | None = None  # where it is saved (set when the page loads)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, items: Sequence[tuple[str, Turn]]) -> int:
        """Add each (id, turn) whose id was not seen before, in the order given; how many were new."""
        added = 0
        with self.lock:
            for qid, turn in items:
                if qid in self.seen:
                    continue
                self.seen.add(qid)
                if len(self.turns) >= MAX_TURNS:
                    turn.state, turn.text = "error", f"⚠️ 对话太长（最多 {MAX_TURNS} 问），请先清空对话。"
                self.turns.append(turn)
                added += 1
        return added

    def claim(self) -> int | None:
        """A token to answer with, or None when another event is answering already."""
        with self.lock:
            if self.holder is not None:
                return None
            self.claims += 1
            self.holder = self.claims
            return self.holder

    def release(self, token: int) -> None:
        with self.lock:
            if self.holder == token:
                self.holder = None

    def next_turn(self, token: int) -> tuple[int, Turn, list[str]] | None:
        """The first waiting question (its index, the turn, the questions answered before it,
        for follow-ups), now answering; None when none waits or the claim was taken away. The
        claim ends here when nothing waits, under the lock `add` takes too: a question added at
        that moment finds either this event still answering (which then takes it) or none (and
        its own event claims)."""
        with self.lock:
            if token != self.holder:
                return None
            for i, turn in enumerate(self.turns):
                if turn.state == "waiting":
                    turn.state = "answering"
                    history = [t.answer.question for t in self.turns[:i] if t.state == "done" and t.answer]
                    return i, turn, history
            self.holder = None
            return None

    def answered(self, reply: int) -> Turn | None:
        """Reply number ``reply`` if it is a finished answer (what feedback may rate)."""
        with self.lock:
            turn = self.turns[reply] if 0 <= reply < len(self.turns) else None
            return turn if turn is not None and turn.state == "done" and turn.answer is not None else None

    def update(self, token: int, turn: Turn, *, text: str, state: str | None = None,
               answer: Answer | None = None) -> bool:
        """Write a reply's progress; False (and nothing written) once the claim was taken away."""
        with self.lock:
            if token != self.holder or turn.state != "answering":
                return False
            turn.text = text
            if answer is not None:
                turn.answer = answer
            if state is not None:
                turn.state = state
            return True

    def stop(self) -> bool:
        """Stop the question being answered and those waiting; True if there was one."""
        with self.lock:
            stopped = False
            for turn in self.turns:
                if turn.state in ("waiting", "answering"):
                    turn.state, turn.text, turn.answer = "stopped", STOPPED, None
                    stopped = True
            self.holder = None
            return stopped

    def clear(self) -> None:
        with self.lock:
            self.turns.clear()
            self.holder = None

    @property
    def busy(self) -> bool:
        with self.lock:
            return any(t.state in ("waiting", "answering") for t in self.turns)

    def answers(self) -> list[Answer | None]:
        """One Answer (or None) per reply, in order: the page's `answers` state."""
        with self.lock:
            return [t.answer if t.state == "done" else None for t in self.turns]

    def history(self) -> list[str]:
        with self.lock:
            return [t.answer.question for t in self.turns if t.state == "done" and t.answer is not None]

    def last_answer(self) -> tuple[int, Answer] | None:
        """The last finished answer and its reply number (for the sources panel)."""
        with self.lock:
            for i in range(len(self.turns) - 1, -1, -1):
                turn = self.turns[i]
                if turn.state == "done" and turn.answer is not None:
                    return i, turn.answer
            return None

    def snapshot(self) -> list[dict[str, Any]]:
        """The finished turns, as saved (`speechrag.ui.library`)."""
        with self.lock:
            return [{"question": t.question, "state": t.state, "generation": t.generation,
                     "answer": t.answer.to_dict() if t.state == "done" and t.answer is not None else None}
                    for t in self.turns if t.state in SAVED_STATES]

    def restore(self, cid: str, title: str, data: object) -> None:
        """Become saved conversation ``cid``. The data may have come back from the browser: each
        turn is checked, and every reply is rendered anew from its Answer (escaped by
        `render`), never taken as stored."""
        turns: list[Turn] = []
        for item in data if isinstance(data, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                continue
            turn = Turn(item["question"], {}, state="error", text=NOT_RESTORED,
                        generation=str(item.get("generation") or ""))
            if item.get("state") == "stopped":
                turn.state, turn.text = "stopped", STOPPED
            elif item.get("state") == "done" and isinstance(item.get("answer"), dict):
                try:
                    turn.answer = Answer.from_dict(item["answer"])
                except (KeyError, TypeError, ValueError):
                    turn.answer = None
                if turn.answer is not None:
                    turn.state = "done"
                    turn.text = "".join(markdown_chunks(turn.answer, href=cite_href(len(turns))))
            turns.append(turn)
        with self.lock:
            self.turns = turns[:MAX_TURNS]
            self.holder = None
            self.cid, self.title = cid, title

    def save(self) -> bool:
        """Save it in its library (nothing to save: nothing done)."""
        data = self.snapshot()
        if self.library is None or not data:
            return False
        if not self.title:
            self.title = title_of(data[0]["question"])
        self.library.save(self.cid, self.title, data)
        return True

    def start_new(self) -> None:
        """An empty conversation with a new id (the one before stays saved)."""
        with self.lock:
            self.turns = []
            self.holder = None
            self.cid, self.title = new_id(), ""

    def exchanges(self, only: int | None = None) -> list[Exchange]:
        """The conversation to export (``only``: that reply alone; [] if there is none)."""
        with self.lock:
            turns = self.turns if only is None else self.turns[only: only + 1] if only >= 0 else []
            return [Exchange(t.question, t.answer if t.state == "done" else None, NOTES.get(t.state, NOT_ANSWERED))
                    for t in turns]

    def messages(self) -> Chat:
        """The chat as the Chatbot shows it: a question and its reply per turn (a new list)."""
        with self.lock:
            out: Chat = []
            for turn in self.turns:
                out.append({"role": "user", "content": shown_question(turn.question)})
                reply = {"waiting": WAITING, "answering": turn.text or PENDING}.get(turn.state, turn.text)
                out.append({"role": "assistant", "content": reply})
            return out


class Conversations:
    """The open pages' conversations, by Gradio session; a page's is dropped when it closes."""

    def __init__(self, max_pages: int = MAX_PAGES) -> None:
        self._by_session: dict[str, Conversation] = {}
        self._lock = threading.Lock()
        self.max_pages = max_pages

    def get(self, session: str | None) -> Conversation:
        key = session or ""
        with self._lock:
            conv = self._by_session.get(key)
            if conv is None:
                while len(self._by_session) >= self.max_pages:  # dicts keep insertion order
                    self._by_session.pop(next(iter(self._by_session)))
                conv = self._by_session[key] = Conversation()
            return conv

    def find(self, session: str) -> Conversation | None:
        """The page's conversation, if it has one (never makes one)."""
        with self._lock:
            return self._by_session.get(session)

    def drop(self, session: str | None) -> None:
        with self._lock:
            conv = self._by_session.pop(session or "", None)
        if conv is not None:
            conv.stop()

    def __len__(self) -> int:
        return len(self._by_session)
