"""Memory over repeated publishes: RSS of one process that rebuilds a 20,000-passage index and
queries it after each publish, and how many index generations are still alive at the end.

    python bench/reload_memory.py [--passages 20000] [--publishes 20]

Each publish is a forced `build_index` of the same passages and vectors (hash encoder, so no
model time), followed by `retrieve()` and `answer()` through the process-wide default searcher,
as a long-running server does. Before the reshaping (commit f30e76e, the same loop adapted to
its API) this printed 61 / 144 / 820 / 1,572 MB above an empty process after 0 / 1 / 10 / 20
publishes, with 21 live Index objects.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from speechrag import CorpusReport, Passage, Speech, answer, build_index, get_encoder, read_corpus, retrieve  # noqa: E402
from speechrag.stores.local import LocalStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=20_000)
    ap.add_argument("--publishes", type=int, default=20)
    args = ap.parse_args()
    base = read_corpus(ROOT / "corpus").passages
    passages = tuple(
        Passage(id=f"p{i}", speech_id="s", speech_title="篇", section="", paragraph=i + 1,
                text=f"{base[i % len(base)].text}（{i}）", source="s.md", line=i + 1)
        for i in range(args.passages)
    )
    report = CorpusReport(passages, (Speech("s", "篇", "s.md", 1),))
    vectors = np.random.default_rng(0).normal(size=(len(passages), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    encoder = get_encoder("hash:384")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "index"
        build_index(report, root, model=encoder, vectors=vectors)
        proc = psutil.Process()
        gc.collect()
        empty = proc.memory_info().rss
        samples = []
        for i in range(args.publishes + 1):
            if i:
                build_index(report, root, model=encoder, vectors=vectors, force=True)
            retrieve("计划生育", 5, index=str(root))
            answer("计划生育工作怎么做？", index=str(root))
            gc.collect()
            samples.append((proc.memory_info().rss - empty) / 1e6)
        live = sum(isinstance(o, LocalStore) for o in gc.get_objects())
    marks = [0, 1, args.publishes // 2, args.publishes]
    shown = " / ".join(f"{samples[m]:.0f}" for m in marks)
    print(f"RSS above an empty process after {' / '.join(map(str, marks))} publishes: {shown} MB; "
          f"live generations at the end: {live}")


if __name__ == "__main__":
    main()
