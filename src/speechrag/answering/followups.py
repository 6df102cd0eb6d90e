"""Follow-up questions: complete an elliptical question (``那商丘呢？``) from the turn before.

Also the question's content words (what it is about, not what kind of answer it wants), which
the evidence and the sentence selection weigh.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from speechrag.answering.scope import named_years, scope_of
from speechrag.errors import QueryError
from speechrag.searcher import check_query
from speechrag.text import has_han

if TYPE_CHECKING:
    from speechrag.searcher import Searcher

# Words that say what kind of answer is wanted, not what it is about: they must not count as
# content (for coverage) nor make a follow-up look self-contained.
_QUESTION_WORDS_TEXT = """
    什么 哪些 哪个 哪里 哪儿 哪位 哪一年 哪年 哪 谁 多少 几 几个 怎么 怎样 怎么样 怎么办 如何 为什么 为何
    是否 是不是 有没有 吗 呢 吧 请问 请 介绍 介绍一下 一下 说说 讲讲 谈谈 具体 详细 主要 有关 关于
    措施 办法 做法 举措 内容 情况 方面 要求 问题 意义 原因 作用 目标 工作 还有 其他 其它 另外 那么
    那 那个 这 这个 这项 这些 它 它们 其 该 此 上述 呢 啊 要 有 是 都 需要 应该 应当 能 会 可以
    what which who whom whose when where why how many much does do did is are was were the a an
    of in on for to and or about with by from this that there their it its any some please tell me
"""
QUESTION_WORDS = frozenset(_QUESTION_WORDS_TEXT.split())

_ELLIPSIS_HEAD = re.compile(r"^(那么|那|还有|另外|再|and\s+|what about\s+|how about\s+)", re.IGNORECASE)
_ELLIPSIS_TAIL = re.compile(r"(呢|的呢|怎么样|如何|情况)$")
_PRONOUN_HEAD = re.compile(r"^(这个|这项|这些|这一|这|该|它们|它|其(?![他它中余实次])|上述|此|那些|那个)")
_TRAILING = "？?。.！!，,；; \t"
# A question word in the remainder means it asks something itself (为什么要调整政策呢？).
_ASKS = re.compile(r"什么|哪|谁|多少|几|怎|如何|为何|吗|是否|\b(what|which|who|how|why|when)\b", re.I)

# A word pointing back at the turn before (那他们所在单位的领导要担责吗？, How often is it given?),
# but not inside 其他, 其中, 尤其, 应该 and the like.
_BACK_REFERENCE = re.compile(
    r"他们|她们|它们|(?<![其吉])[他她它](?!们)|(?<![尤极与])其(?![他它中余实次])|(?<![应活])该|"
    r"这个|这些|这项|这一|上述|那些|那个|\b(it|its|they|them|their|these|those)\b",
    re.IGNORECASE,
)
FOLLOW_UP_CHARS = 24  # longer than this, a question with a back-reference is taken as its own

MAX_TURNS = 8  # follow-ups reach back one question; a few more cover chains of them


def content_terms(searcher: Searcher, text: str) -> list[str]:
    """The question's content words, cut the way the keyword index cuts passages."""
    seen: dict[str, None] = {}
    for t in searcher.tokenize(text):
        if t not in QUESTION_WORDS and (len(t) > 1 or t.isdigit() or not has_han(t)):
            seen.setdefault(t, None)
    return list(seen)


def user_turns(history: Iterable[Any] | None) -> list[str]:
    """The user's last few valid questions from a history given as strings, ``{"role",
    "content"}`` messages (Gradio's and OpenAI's format) or ``(user, assistant)`` pairs.

    History is context, not the question: a turn that would be refused as a query (too long,
    broken text) is skipped rather than failing the question asked now. A history that is not a
    list of turns (a bare string, a number) is a QueryError.
    """
    if history is None:
        return []
    if isinstance(history, str | bytes | Mapping) or not isinstance(history, Iterable):
        raise QueryError(f"history must be a list of earlier questions, not {type(history).__name__}")
    out: list[str] = []
    for turn in history:
        if isinstance(turn, str):
            text: Any = turn
        elif isinstance(turn, Mapping):
            if turn.get("role", "user") != "user":
                continue
            text = turn.get("content", "")
        elif isinstance(turn, Sequence) and turn:
            text = turn[0]
        else:
            continue
        if isinstance(text, str):
            try:
                out.append(check_query(text))
            except QueryError:
                continue
    return out[-MAX_TURNS:]


def resolve(searcher: Searcher, question: str, previous: str | None) -> str:
    """``question`` completed from ``previous`` if it is elliptical; unchanged otherwise."""
    if not previous:
        return question
    core = question.strip().rstrip(_TRAILING)
    head = _ELLIPSIS_HEAD.match(core)
    tail = _ELLIPSIS_TAIL.search(core)
    terms = content_terms(searcher, core)
    if head or tail:
        rest = core[head.end() if head else 0 : tail.start() if tail else len(core)].strip(" ，,")
        if rest and len(rest) <= 10 and not _ASKS.search(rest):
            # `那商丘呢？` after a question about 仙桃: ask the same about 商丘.
            # `那2017年呢？` after a question about 2016年: ask the same about 2017.
            asked, before = named_years(rest), named_years(previous)
            if asked and before:
                return previous.replace(str(before[0]), str(asked[0]))
            for place in searcher.places:
                if place in previous and place not in rest:
                    return previous.replace(place, rest)
            return f"{rest} {previous}"
    if not terms or (_PRONOUN_HEAD.match(core) and len(core) <= 15):
        # `具体有哪些措施？` carries no topic of its own: the previous turn supplies it.
        return f"{previous.rstrip(_TRAILING)}，{question.strip()}"
    if (head or _refers_back(core)) and len(core) <= FOLLOW_UP_CHARS and not scope_of(searcher, core):
        # `那他们所在单位的领导要担责吗？` asks something new about the same people and place: it
        # keeps the previous turn's topic and scope. A question naming its own place or speaker
        # (`And what does Ankang plan …?`) is left alone: it has set its own scope.
        return f"{previous.rstrip(_TRAILING)}，{question.strip()}"
    return question


def _refers_back(text: str) -> bool:
    return _BACK_REFERENCE.search(text) is not None


def resolve_history(searcher: Searcher, question: str, history: Iterable[Any] | None) -> str:
    previous: str | None = None
    for turn in user_turns(history):
        previous = resolve(searcher, turn, previous)
    return resolve(searcher, question, previous)
