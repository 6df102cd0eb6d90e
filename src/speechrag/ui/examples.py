"""The example questions a page offers: made from the served index's own section headings,
and kept only when that index answers them `found` (an example that abstains tells a newcomer
the tool does not work); made once per generation (`ExampleCache`)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

from speechrag.api import answer
from speechrag.errors import SpeechragError
from speechrag.passage import Passage
from speechrag.searcher import Searcher
from speechrag.text import strip_enumerator

_PLAIN_CLAUSE = re.compile(r"^[\u4e00-\u9fff、“”]{4,24}$")


def example_questions(passages: Sequence[Passage], n: int = 4) -> list[str]:
    """Questions made from the section headings, taking speeches in turn so they differ.

    A heading is an instruction ("突出重点，狠抓落实，扎实做好…工作"); its last clause asked
    with 如何 is a question the speech answers. Only headings of plain Chinese are used.
    """
    by_speech: dict[str, list[str]] = {}
    taken: set[str] = set()
    for p in passages:
        clause = strip_enumerator(p.section.split(" › ")[0]).split("，")[-1]
        clause = clause.removeprefix("就是要").strip()
        q = f"如何{clause}？"
        if _PLAIN_CLAUSE.match(clause) and q not in taken:
            taken.add(q)
            by_speech.setdefault(p.speech_id, []).append(q)
    out: list[str] = []
    queues = list(by_speech.values())
    while len(out) < n and any(queues):
        for qs in queues:
            if qs and len(out) < n:
                out.append(qs.pop(0))
    return out


EXAMPLE_SCAN = 5000  # passages read for example questions: the first speeches suffice
EXAMPLES_SHOWN = 4
EXAMPLE_CANDIDATES = 12  # questions tried per generation; each costs one answer() (~0.1-0.5 s)


def checked_examples(searcher: Searcher, n: int = EXAMPLES_SHOWN, candidates: int = EXAMPLE_CANDIDATES) -> list[str]:
    """Up to ``n`` example questions made from this index's own headings that it answers
    `found`: a heading turned into a question is not always answered (its words may be spread
    over passages the threshold rejects), and an example that abstains tells a newcomer the
    tool does not work. An index without such headings gets none."""
    passages = searcher.store.passages(range(min(searcher.store.size, EXAMPLE_SCAN)))
    shown: list[str] = []
    for question in example_questions(passages, n=candidates):
        try:
            found = answer(question, index=searcher).status == "found"
        except SpeechragError:
            found = False
        if found:
            shown.append(question)
            if len(shown) == n:
                break
    return shown


class ExampleCache:
    """The checked examples of the generation being served, made once per generation (the
    first page load after a rebuild makes them; the others wait for that one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: tuple[tuple[str, str], list[str]] | None = None

    def get(self, searcher: Searcher) -> list[str]:
        key = (str(searcher.location), searcher.generation)
        with self._lock:
            if self._made is None or self._made[0] != key:
                self._made = (key, checked_examples(searcher))
            return list(self._made[1])
