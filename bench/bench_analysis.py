"""Collection analysis at scale: concordance counts and trends by year, timed, and checked
against a plain Python scan.

Corpora: the shipped index as committed, then generated collections of 10k, 100k and 1M
passages made of the shipped corpus's own sentences (2-4 a passage), 100 passages a speech,
speeches dated 2000-2023, every tenth paragraph split into two parts (so phrases cross a cut).
For each phrase (2 to 4 characters) it times:

- ``count``: every occurrence found (`concordance.find_spans`), the count only;
- ``concordance``: the full `Concordance` (an `Occurrence` with context and citation each);
- ``trend``: `trend.count` by year (occurrences, characters and rates per year, first/last);

median (p50) of the runs after a first one, which also pays for joining the text once. Each
result is asserted equal to a plain scan (``str.count`` over each paragraph's joined parts,
per year). Prints a table; nothing here is a unit test.

    python bench/bench_analysis.py [--sizes 10000,100000,1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from speechrag.analysis.collection import Collection, load_collection  # noqa: E402
from speechrag.analysis.concordance import compile_phrase, find_spans, search  # noqa: E402
from speechrag.analysis.trend import count  # noqa: E402
from speechrag.index import load_index  # noqa: E402
from speechrag.passage import Passage, Speech  # noqa: E402
from speechrag.text import split_sentences  # noqa: E402

PHRASES = ("文艺", "农村", "计划生育", "人口和计")
PER_SPEECH = 100


def generated(sentences: list[str], n: int, seed: int = 26) -> Collection:
    rng = random.Random(seed)
    speeches, passages = [], []
    for s in range((n + PER_SPEECH - 1) // PER_SPEECH):
        speech = Speech(f"g{s}", f"报告{s}", "gen.md", 1, date=f"{2000 + s % 24}-01-15")
        rows: list[Passage] = []
        para = 0
        while len(rows) < PER_SPEECH and s * PER_SPEECH + len(rows) < n:
            para += 1
            text = "".join(rng.choice(sentences) for _ in range(rng.randint(2, 4)))
            parts = [text[: len(text) // 2], text[len(text) // 2:]] if para % 10 == 0 else [text]
            for k, part in enumerate(parts, start=1):
                rows.append(Passage(f"{s}-{para}-{k}", speech.id, speech.title, "", para, part, "gen.md", para,
                                    part=k if len(parts) > 1 else 0, speech_date=speech.date))
        speeches.append(speech)
        passages.append(rows)
    return Collection.of(speeches, passages)


def plain_scan(collection: Collection, phrase: str) -> tuple[int, dict[str, int]]:
    """The reference: glue each paragraph's parts, str.count, add up per year."""
    paragraphs: dict[tuple[str, int, int], list[str]] = {}
    year: dict[str, str] = {s.id: str(s.year) if s.year else "undated" for s in collection.speeches}
    serial = 0
    for para in collection.paragraphs:
        for p in para.parts:
            if p.part <= 1:
                serial += 1
            paragraphs.setdefault((p.speech_id, p.paragraph, serial), []).append(p.text)
    per_year: Counter[str] = Counter()
    for (speech_id, _, _), texts in paragraphs.items():
        per_year[year[speech_id]] += "".join(texts).count(phrase)
    return sum(per_year.values()), {y: n for y, n in per_year.items()}


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of ``runs`` calls after a first (untimed) one, and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def bench(name: str, collection: Collection, runs: int, rows: list[list[str]]) -> None:
    t = time.perf_counter()
    _ = collection.joined
    join_s = time.perf_counter() - t
    for text in PHRASES:
        phrase = compile_phrase(text)
        expected, per_year = plain_scan(collection, text)
        count_s, n = timed(lambda: sum(1 for _ in find_spans(collection, phrase)), runs)  # noqa: B023
        conc_s, conc = timed(lambda: search(collection, phrase), max(1, runs // 2))  # noqa: B023
        trend_s, tr = timed(lambda: count(collection, [phrase], by="year"), max(1, runs // 2))  # noqa: B023
        assert n == expected == len(conc), (name, text, n, expected, len(conc))
        got = {r.group: r.counts[0] for r in tr.rows}
        assert got == {y: per_year.get(y, 0) for y in got} and sum(got.values()) == expected, (name, text)
        rows.append([name, str(len(collection.paragraphs)), text, str(expected), f"{join_s * 1000:.1f}",
                     f"{count_s * 1000:.1f}", f"{conc_s * 1000:.1f}", f"{trend_s * 1000:.1f}"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows: list[list[str]] = []
    searcher = load_index(ROOT / "embeddings")
    shipped = load_collection(searcher)
    bench(f"shipped ({sum(len(p.parts) for p in shipped.paragraphs)} passages)", shipped, args.runs, rows)
    sentences = [s for p in shipped.paragraphs for s in split_sentences(p.text) if len(s) >= 8]
    for n in (int(x) for x in args.sizes.split(",") if x):
        t = time.perf_counter()
        collection = generated(sentences, n)
        made = time.perf_counter() - t
        print(f"generated {n:,} passages ({len(collection.paragraphs):,} paragraphs, "
              f"{collection.characters:,} characters) in {made:.1f} s", file=sys.stderr)
        bench(f"generated {n:,}", collection, args.runs if n <= 100_000 else 2, rows)
        del collection
    headers = ["corpus", "paragraphs", "phrase", "occurrences", "join ms", "count p50 ms", "concordance p50 ms",
               "trend/year p50 ms"]
    widths = [max(len(str(r[i])) + sum(1 for c in r[i] if ord(c) > 0x2E80) for r in [headers, *rows])
              for i in range(len(headers))]
    for r in [headers, *rows]:
        print("  ".join(c + " " * (w - len(c) - sum(1 for ch in c if ord(ch) > 0x2E80))
                        for c, w in zip(r, widths, strict=True)))
    print("all results equal a plain Python scan (str.count over each paragraph's joined parts, per year)")


if __name__ == "__main__":
    main()
