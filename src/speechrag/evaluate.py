"""Score retrieval and answers against the gold set in ``eval/questions.jsonl``.

Each gold question lists distinctive substrings of the passages that answer it (ids are content
hashes and change when a paragraph is edited; a quoted phrase does not). A hit is relevant when
its passage contains one of them. ``fact`` substrings must appear in the answer's text; a
question with no gold passages is one the speeches cannot answer, and the right answer to it
is an abstention.

``expect`` says which answer state is right: "found" (the default with gold passages),
"not_found" (the default without), or "partial": the speeches address the topic (its gold
passages are the nearest ones) but not the detail asked, or give it only for another place.
``place`` names the place the question is about: an answer found for it must not start with a
sentence from another place's speech.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from speechrag.answering import STATUSES
from speechrag.answering.followups import resolve_history
from speechrag.answering.ranking import rank_question
from speechrag.api import answer, get_searcher
from speechrag.calibration import Calibration
from speechrag.errors import SpeechragError
from speechrag.options import MODES, RRF_K, QueryOptions
from speechrag.searcher import Searcher

log = logging.getLogger(__name__)

DEFAULT_QUESTIONS = Path("eval") / "questions.jsonl"
DEPTH = 10  # MRR@10 needs the top 10

_SPACE = re.compile(r"\s+")


def _plain(text: str) -> str:
    return _SPACE.sub("", text)


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    kind: str
    gold: tuple[str, ...]
    fact: tuple[str, ...]
    history: tuple[str, ...] = ()
    expect: str = ""  # "found" | "partial" | "not_found"; "" derives it from gold
    place: str = ""

    @property
    def answerable(self) -> bool:
        """The speeches address it (fully or in part): the abstention labels."""
        return bool(self.gold)

    @property
    def expected(self) -> str:
        return self.expect or ("found" if self.gold else "not_found")

    @property
    def wants_fact(self) -> bool:
        """Scored for retrieval and for holding the fact: the speeches answer it in full."""
        return self.expected == "found"

    def relevant(self, text: str) -> bool:
        plain = _plain(text)
        return any(_plain(g) in plain for g in self.gold)

    def holds_fact(self, answer_text: str) -> bool:
        plain = _plain(answer_text)
        return any(_plain(f) in plain for f in self.fact)


def load_questions(path: str | os.PathLike[str] = DEFAULT_QUESTIONS) -> list[GoldQuestion]:
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SpeechragError(f"cannot read gold questions {p}: {exc.strerror}; give --questions PATH") from exc
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(
                GoldQuestion(
                    id=str(d.get("id", f"line{n}")),
                    question=str(d["question"]),
                    kind=str(d.get("kind", "")),
                    gold=tuple(str(g) for g in d.get("gold", ())),
                    fact=tuple(str(f) for f in d.get("fact", ())),
                    history=tuple(str(h) for h in d.get("history", ())),
                    expect=str(d.get("expect", "")),
                    place=str(d.get("place", "")),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SpeechragError(f"{p} line {n} is not a gold question ({exc}); fix that line") from exc
        if out[-1].expect not in ("", *STATUSES) or (out[-1].expect in ("found", "partial") and not out[-1].gold):
            raise SpeechragError(f"{p} line {n}: expect must be found, partial or not_found, and found or "
                                 "partial needs gold passages; fix that line")
    if not out:
        raise SpeechragError(f"{p} holds no questions; add one JSON object per line")
    return out


@dataclass(frozen=True)
class Outcome:
    """One question under one mode: where the first relevant passage ranked, what was said."""

    question: GoldQuestion
    first_relevant: int | None  # 1-based rank within the top DEPTH, None if absent
    found: bool
    holds_fact: bool
    evidence: dict[str, Any] | None
    status: str = ""  # "" : derived from found
    first_place: str = ""  # the place of the speech the answer's first sentence is from

    @property
    def state(self) -> str:
        return self.status or ("found" if self.found else "not_found")

    @property
    def wrong_place(self) -> bool:
        """Found for a place, with a first sentence from another place's speech."""
        q = self.question
        return bool(q.place and self.state == "found" and self.first_place and self.first_place != q.place)


def run_question(searcher: Searcher, q: GoldQuestion, mode: str, *, rrf_k: float = RRF_K,
                 **answer_options: Any) -> Outcome:
    first = None
    if q.wants_fact:
        query = resolve_history(searcher, q.question, q.history)
        # Ranked as retrieve() ranks: the speeches the question names first.
        qvec = searcher.encode_query(query)
        hits = rank_question(searcher, query, qvec, DEPTH, mode=mode, where=None, rrf_k=rrf_k)[1]
        for h in hits:
            if q.relevant(h.passage.text):
                first = h.rank
                break
    a = answer(q.question, history=q.history, mode=mode, index=searcher, rrf_k=rrf_k, **answer_options)
    held = q.wants_fact and a.found and q.holds_fact(a.text)
    first_place = ""
    if a.sentences:
        first_place = searcher.place_of(a.citations[a.sentences[0].citation - 1].passage)
    return Outcome(q, first, a.found, held, a.evidence.to_dict() if a.evidence else None, a.status, first_place)


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    answerable = [o for o in outcomes if o.question.wants_fact]
    unanswerable = [o for o in outcomes if not o.question.answerable]
    n = len(answerable) or 1

    def recall(at: int) -> float:
        return sum(o.first_relevant is not None and o.first_relevant <= at for o in answerable) / n

    mrr = sum(1.0 / o.first_relevant for o in answerable if o.first_relevant) / n
    abstained = [o for o in outcomes if o.state == "not_found"]
    right = [o for o in abstained if not o.question.answerable]
    partial = [o for o in outcomes if o.question.expected == "partial"]
    said_partial = [o for o in outcomes if o.state == "partial"]
    return {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "partial": len(partial),
        "unanswerable": len(unanswerable),
        "R@1": recall(1),
        "R@5": recall(5),
        "MRR@10": mrr,
        "fact": sum(o.holds_fact for o in answerable) / n,
        "abstain_precision": len(right) / len(abstained) if abstained else 1.0,
        "abstain_recall": len(right) / len(unanswerable) if unanswerable else 1.0,
        "partial_precision": (sum(o.question.expected == "partial" for o in said_partial) / len(said_partial)
                              if said_partial else 1.0),
        "partial_recall": sum(o.state == "partial" for o in partial) / len(partial) if partial else 1.0,
        "status": sum(o.state == o.question.expected for o in outcomes) / (len(outcomes) or 1),
        "wrong_place": sum(o.wrong_place for o in outcomes),
        "nocontent_answered": sum(o.question.kind == "nocontent" and o.state != "not_found" for o in outcomes),
    }


KIND_COLUMNS = ("questions", "R@1", "R@5", "MRR@10", "fact", "status")


def by_kind(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    kinds: dict[str, list[Outcome]] = {}
    for o in outcomes:
        kinds.setdefault(o.question.kind or "-", []).append(o)
    out = {}
    for kind, group in sorted(kinds.items()):
        s = summarise(group)
        out[kind] = {key: s[key] for key in (*KIND_COLUMNS, "answerable")}
    return out


def leave_one_out(outcomes: Sequence[Outcome], base: Calibration | None = None) -> dict[str, Any]:
    """The answer-state error each question would get from abstention weights fitted without
    it: its leave-one-out abstain/answer decision (see `calibrate`), and, where that decision
    is right, whether found and partial were told apart (a fixed rule, nothing fitted).
    Questions without content words are left out of the fit: a rule decides them."""
    fitted = [o for o in outcomes if o.evidence is not None and o.evidence.get("content", True)]
    if not fitted:
        return {"questions": 0, "abstain_errors": 0, "partial_errors": 0, "error": 0.0}
    fit = calibrate([{"evidence": o.evidence} for o in fitted], [o.question.answerable for o in fitted],
                    base=base, keep_decisions=True)
    wrong = fit["loo_wrong"]
    partial_errors = sum(
        not bad and o.question.answerable and o.state != "not_found"
        and (o.state == "partial") != (o.question.expected == "partial")
        for o, bad in zip(fitted, wrong, strict=True)
    )
    errors = fit["loo_errors"] + partial_errors
    return {"questions": len(fitted), "abstain_errors": fit["loo_errors"], "partial_errors": partial_errors,
            "error": errors / len(fitted)}


def evaluate(
    questions: Sequence[GoldQuestion],
    modes: Iterable[str] = MODES,
    *,
    index: Searcher | str | os.PathLike[str] | None = None,
    rrf_k: float = RRF_K,
    progress: Callable[[int, int], None] | None = None,
    **answer_options: Any,
) -> dict[str, Any]:
    """Figures per mode: R@1, R@5, MRR@10, answer-holds-the-fact, abstention precision/recall,
    plus the same by question kind and each question's outcome."""
    idx = get_searcher(index)
    modes = [QueryOptions(mode=m).mode for m in modes]
    total = len(modes) * len(questions)
    report: dict[str, Any] = {"rrf_k": rrf_k, **answer_options, "modes": {}}
    done = 0
    for mode in modes:
        outcomes = []
        for q in questions:
            outcomes.append(run_question(idx, q, mode, rrf_k=rrf_k, **answer_options))
            done += 1
            if progress:
                progress(done, total)
        report["modes"][mode] = {
            **summarise(outcomes),
            "loo": leave_one_out(outcomes, idx.calibration),
            "by_kind": by_kind(outcomes),
            "outcomes": [
                {
                    "id": o.question.id,
                    "kind": o.question.kind,
                    "first_relevant": o.first_relevant,
                    "found": o.found,
                    "status": o.state,
                    "expected": o.question.expected,
                    "first_place": o.first_place,
                    "holds_fact": o.holds_fact,
                    "evidence": o.evidence,
                }
                for o in outcomes
            ],
        }
    return report


COLUMNS = ("R@1", "R@5", "MRR@10", "fact", "abstain_precision", "abstain_recall", "status")
HEADERS = ("mode", "R@1", "R@5", "MRR@10", "holds fact", "abstain P", "abstain R", "state", "LOO err")


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_table(report: dict[str, Any]) -> str:
    """The headline figures per mode, then the first mode's figures by question kind ("state":
    the share given the right answer state, found / partial / not found; "LOO err": that
    state's leave-one-out error, see `leave_one_out`)."""
    rows: list[Sequence[str]] = [HEADERS]
    for mode, s in report["modes"].items():
        loo = s.get("loo", {}).get("error")
        rows.append((mode, *(f"{s[c]:.3f}" for c in COLUMNS), "-" if loo is None else f"{loo:.3f}"))
    lines = _table(rows)
    first_mode, first = next(iter(report["modes"].items()))
    lines.append(
        f"{first['answerable']} answerable + {first['partial']} partly answered + {first['unanswerable']} "
        f"unanswerable questions; RRF k={report['rrf_k']}; {first_mode}: {first['wrong_place']} found answers "
        f"starting with another place's sentence, {first['nocontent_answered']} inputs without content answered"
    )
    kinds = first.get("by_kind", {})
    if kinds:
        lines.append("")
        lines.append(f"{first_mode} by kind:")
        krows: list[Sequence[str]] = [("kind", "n", "R@1", "R@5", "MRR@10", "holds fact", "state")]
        for kind, k in kinds.items():
            scored = k.get("answerable", 0) > 0
            krows.append((kind, str(k["questions"]),
                          *((f"{k[c]:.3f}" if scored else "-") for c in ("R@1", "R@5", "MRR@10", "fact")),
                          f"{k['status']:.3f}"))
        lines += _table(krows)
    return "\n".join(lines)


# --- abstention calibration ------------------------------------------------------------------

CENTRES = tuple(round(0.85 + 0.0025 * i, 4) for i in range(29))  # 0.85 .. 0.92
COVERAGE_WEIGHTS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
AGREEMENT_WEIGHTS = (0.0, 0.5, 1.0, 2.0)


def _fit(sim: Any, cov: Any, agr: Any, cross: Any, labels: Any,
         base: Calibration) -> tuple[int, float, Calibration]:
    import numpy as np

    best: tuple[int, float, Calibration] | None = None
    for c in CENTRES:
        for wc in COVERAGE_WEIGHTS:
            for wa in AGREEMENT_WEIGHTS:
                cal = replace(base, centre=c, w_coverage=wc, w_agreement=wa)
                s = cal.score(sim, cov, agr, cross)
                errors = int(np.sum((s >= cal.threshold) != labels))
                margin = float(np.min(np.abs(s - cal.threshold)))
                if best is None or (errors, -margin) < (best[0], -best[1]):
                    best = (errors, margin, cal)
    assert best is not None
    return best


def calibrate(outcomes: Sequence[dict[str, Any]], labels: Sequence[bool], *, encoder: str = "",
              base: Calibration | None = None, keep_decisions: bool = False) -> dict[str, Any]:
    """Fit the abstention score's centre and weights to gold labels (answerable or not), for
    the encoder with fingerprint ``encoder``.

    A grid search for the fewest wrong decisions, ties broken by the widest margin, scored by
    the same `Calibration.score` that `answer()` uses. Also reports the leave-one-out error
    count: each question judged by weights fitted without it, an honest estimate on a set this
    small. Questions without content words are decided by a rule, not by the score, and are
    left out. ``keep_decisions`` adds ``loo_wrong``, each question's leave-one-out verdict.
    """
    import numpy as np

    keep = [i for i, o in enumerate(outcomes) if o["evidence"] is not None and o["evidence"].get("content", True)]
    outcomes = [outcomes[i] for i in keep]
    labels = [labels[i] for i in keep]

    base = replace(base or Calibration(), encoder=encoder)
    ev = [o["evidence"] for o in outcomes]
    sim = np.array([e["similarity"] for e in ev])
    cov = np.array([e["coverage"] for e in ev])
    agr = np.array([float(e["agreement"]) for e in ev])
    cross = np.array([float(e["cross_lingual"]) for e in ev])
    y = np.array(labels, dtype=bool)
    errors, margin, fit = _fit(sim, cov, agr, cross, y, base)
    wrong: list[bool] = []
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        _, _, cal = _fit(sim[rest], cov[rest], agr[rest], cross[rest], y[rest], base)
        wrong.append(bool((cal.score(sim[i], cov[i], agr[i], cross[i]) >= cal.threshold) != y[i]))
    out = {"calibration": fit.to_dict(), "centre": fit.centre, "w_coverage": fit.w_coverage,
           "w_agreement": fit.w_agreement, "errors": errors, "margin": round(margin, 4),
           "loo_errors": sum(wrong), "questions": len(y)}
    if keep_decisions:
        out["loo_wrong"] = wrong
    return out
