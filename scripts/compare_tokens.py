"""Cut texts with jieba (Python, the old cutter) and with speechrag's jieba-rs Cutter; list every
text whose tokens differ, in default and search mode.

    python scripts/compare_tokens.py                      # the corpora the tests have + eval questions
    python scripts/compare_tokens.py my/corpus --userdict my/corpus/userdict.txt

Texts: the passages and titles speechrag reads from each folder, every line of its text files,
and the questions (and histories) of eval/*.jsonl. Exit status 1 when any text differs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path

from speechrag.corpus import read_corpus
from speechrag.jiebacut import Cutter

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [ROOT / "corpus", *sorted((ROOT / "tests" / "fixtures").iterdir()), ROOT.parent / "shared" / "corpus"]


def texts_of(folder: Path) -> list[str]:
    report = read_corpus(folder)
    out = [p.text for p in report.passages] + [s.title for s in report.speeches]
    for f in sorted(folder.rglob("*")):
        if f.suffix in {".md", ".txt", ".html"} and f.is_file():
            for encoding in ("utf-8", "gb18030"):
                try:
                    out += f.read_text(encoding).splitlines()
                    break
                except UnicodeDecodeError:
                    continue
    return out


def questions() -> list[str]:
    out = []
    for f in sorted((ROOT / "eval").glob("*.jsonl")):
        for line in f.read_text("utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                out += [item.get("question", ""), *item.get("history", [])]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", type=Path)
    ap.add_argument("--userdict", type=Path, default=None)
    args = ap.parse_args()
    import jieba

    jieba.setLogLevel(logging.WARNING)
    old = jieba.Tokenizer()
    if args.userdict:
        old.load_userdict(str(args.userdict))
    new = Cutter(args.userdict)

    groups = {str(f): texts_of(f) for f in (args.folders or DEFAULT) if f.is_dir()}
    if not args.folders:
        groups["eval/*.jsonl questions"] = questions()
    seen: set[str] = set()
    differ = reordered = 0
    for name, texts in groups.items():
        unique = [t for t in dict.fromkeys(texts) if t not in seen]
        seen.update(unique)
        diffs = 0
        tokens = 0
        for text in unique:
            for mode in ("cut", "cut_for_search"):
                a, b = list(getattr(old, mode)(text)), getattr(new, mode)(text)
                tokens += len(a)
                if a == b:
                    continue
                # The same words in another order: a tie between two equally probable cuts
                # (一一 一 / 一 一一), broken by rounding. BM25 reads a bag of words: no effect.
                same_words = Counter(a) == Counter(b)
                reordered += same_words
                diffs += not same_words
                print(f"  {mode}{' (order only)' if same_words else ''}: {text[:60]!r}\n"
                      f"    jieba    {a}\n    jieba-rs {b}")
        differ += diffs
        print(f"{name}: {len(unique)} texts ({sum(map(len, unique))} characters, {tokens} tokens "
              f"in both modes), {diffs} differ")
    print(f"total: {len(seen)} distinct texts, {differ} differ, {reordered} in order only")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
