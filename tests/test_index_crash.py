"""A damaged or half-written index never loads silently, never crashes, and heals on rebuild.

- Corruption matrix: every index file x {truncate to half, empty, flip a byte (start, middle,
  end), append junk, delete}, each loaded in a subprocess (a segfault would show as a signal
  exit) and each required to raise IndexCorruptError with a message naming the fix.
- Kill points: a build SIGKILLs itself before/after each durable step (file write, fsync,
  rename, CURRENT swap, cleanup); the index must still load (the old generation until the swap)
  and the next build must succeed and leave no leftovers.
- Timed kills: the real `speechrag build` command is SIGKILLed from outside at spread-out times.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import EXTRA_SPEECH, FIXTURE_SPEECHES
from speechrag import IndexCorruptError, Searcher, build_index, load_index, read_corpus
from speechrag.storage import CURRENT, GEN_RE

KEYWORD_FILES = [
    "keyword/data.csc.index.npy",
    "keyword/indices.csc.index.npy",
    "keyword/indptr.csc.index.npy",
    "keyword/params.index.json",
    "keyword/vocab.index.json",
]
INDEX_FILES = [CURRENT, "manifest.json", "passages.jsonl", "speeches.jsonl", "dense.faiss", *KEYWORD_FILES,
               "sentences/keys.npy", "sentences/vectors.npy"]
DAMAGES = ["truncate", "empty", "flip-start", "flip-middle", "flip-end", "append", "delete"]

DAMAGE_AND_LOAD = r"""
import json, shutil, sys
from pathlib import Path
from speechrag import load_index, SpeechragError

src, work, rel = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
for damage in sys.argv[4].split(","):
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work)
    gen = (work / "CURRENT").read_text().strip()
    path = work / rel if rel == "CURRENT" else work / gen / rel
    data = path.read_bytes()
    pos = {"flip-start": 0, "flip-middle": len(data) // 2, "flip-end": len(data) - 1}.get(damage)
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif pos is not None:
        path.write_bytes(data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :])
    elif damage == "append":
        path.write_bytes(data + b"\x00junk\xff")
    elif damage == "delete":
        path.unlink()
    try:
        idx = load_index(work)
        outcome = {"damage": damage, "error": None, "passages": idx.store.size}
    except SpeechragError as exc:
        outcome = {"damage": damage, "error": type(exc).__name__, "message": str(exc)}
    except BaseException as exc:
        outcome = {"damage": damage, "error": "RAW " + type(exc).__name__, "message": str(exc)[:200]}
    print(json.dumps(outcome, ensure_ascii=False), flush=True)
"""


def test_matrix_covers_every_index_file(tiny_index: Searcher) -> None:
    listed = ["manifest.json", *tiny_index.manifest["files"]]
    assert sorted(listed) == sorted(f for f in INDEX_FILES if f != CURRENT)


@pytest.mark.parametrize("rel", INDEX_FILES)
def test_corruption_matrix(rel: str, tiny_index: Searcher, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", DAMAGE_AND_LOAD, str(tiny_index.store.root), str(tmp_path / "w"), rel,
         ",".join(DAMAGES)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"loader died (exit {proc.returncode}): {proc.stderr[-2000:]}"
    outcomes = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["damage"] for o in outcomes] == DAMAGES
    for o in outcomes:
        assert o["error"] == "IndexCorruptError", f"{rel} / {o['damage']}: {o}"
        assert "speechrag build" in o["message"] and "\n" not in o["message"]


@pytest.mark.parametrize("damage", ["flip-middle", "delete"])
@pytest.mark.parametrize("rel", [CURRENT, "manifest.json", "dense.faiss"])
def test_build_heals_a_damaged_index(rel: str, damage: str, tiny_index_copy: Path, fixture_corpus: Path) -> None:
    gen = (tiny_index_copy / CURRENT).read_text().strip()
    path = tiny_index_copy / rel if rel == CURRENT else tiny_index_copy / gen / rel
    if damage == "delete":
        path.unlink()
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1 :])
    with pytest.raises(IndexCorruptError):
        load_index(tiny_index_copy)
    s = build_index(fixture_corpus, tiny_index_copy, model="hash")
    assert not s.up_to_date and s.embedded == 0  # the cache survives index damage
    assert load_index(tiny_index_copy).generation == s.generation
    assert_clean(tiny_index_copy, s.generation)


# --- kills ---------------------------------------------------------------------------------------

SELF_KILL = r"""
import os, shutil, signal, sys
import speechrag.encoders as enc
import speechrag.index as ix
import speechrag.storage as st

# target: a step number, or "label#k" for the k-th call of that step.
corpus, index, target, when = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
steps = []

def counted(label, fn):
    def wrapper(*args, **kwargs):
        steps.append(label)
        hit = target == str(len(steps)) or target == f"{label}#{steps.count(label)}"
        if hit and when == "before":
            print(label, flush=True); os.kill(os.getpid(), signal.SIGKILL)
        result = fn(*args, **kwargs)
        if hit and when == "after":
            print(label, flush=True); os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapper

class Proxy:
    def __init__(self, module, names):
        self._m = module
        for name in names:
            setattr(self, name, counted(f"{module.__name__}.{name}", getattr(module, name)))
    def __getattr__(self, name):
        return getattr(self._m, name)

for name in ("write_durably", "fsync_path", "publish", "cleanup"):
    setattr(st, name, counted(name, getattr(st, name)))
st.os = Proxy(os, ["rename", "replace"])
st.shutil = Proxy(shutil, ["rmtree"])
enc.HashEncoder.encode_passages = counted("encode_passages", enc.HashEncoder.encode_passages)
ix.build_index(corpus, index, model="hash")
print("completed", len(steps), flush=True)
"""


def assert_clean(index: Path, generation: str) -> None:
    names = sorted(p.name for p in index.iterdir())
    assert names == [".lock", CURRENT, "cache", generation, "settings.json"], names
    assert all(p.suffix == ".npz" for p in (index / "cache").iterdir())


@pytest.fixture(scope="module")
def kill_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, int]:
    """An index of the three fixture speeches, and a corpus with a fourth speech added."""
    base = tmp_path_factory.mktemp("kill")
    v1 = base / "v1"
    v1.mkdir()
    for name, text in FIXTURE_SPEECHES.items():
        (v1 / name).write_text(text, encoding="utf-8")
    v2 = base / "v2"
    shutil.copytree(v1, v2)
    for name, text in EXTRA_SPEECH.items():
        (v2 / name).write_text(text, encoding="utf-8")
    index = base / "embeddings"
    old = build_index(v1, index, model="hash").generation
    return v2, index, old, len(read_corpus(v2).passages)


def kill_trial(
    kill_setup: tuple[Path, Path, str, int], work: Path, target: int | str, when: str
) -> tuple[str, bool]:
    """Run a build killed at ``target``; check the index loads and heals. Returns the step
    killed at and whether the new generation had been published."""
    corpus, index, old, new_count = kill_setup
    shutil.copytree(index, work)
    proc = subprocess.run(
        [sys.executable, "-c", SELF_KILL, str(corpus), str(work), str(target), when],
        capture_output=True, text=True, timeout=120,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode == 0:
        assert last.startswith("completed"), proc.stdout
        return last, True
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    idx = load_index(work)
    swapped = idx.generation != old
    assert len(idx.store.all_passages) == (new_count if swapped else new_count - 2)
    published = (work / CURRENT).read_text().strip()
    assert idx.generation == published
    # Killed between the build's two publishes: the passages are live (it answers), without
    # their sentence vectors; the next build adds those and embeds no passage again.
    between = swapped and idx.store.manifest.get("sentences") is None
    assert idx.retrieve("计生家庭保险", k=1)
    s = build_index(corpus, work, model="hash")
    assert s.up_to_date == (swapped and not between)
    assert s.complete and (s.embedded == 0 or not swapped)
    assert len(load_index(work).store.all_passages) == new_count
    assert_clean(work, s.generation)
    return last, swapped


# The embedding step, the generation rename, either side of the CURRENT swap (the second
# os.replace: the first one publishes the embedding cache), and between the passages' publish
# and the sentence vectors'.
QUICK_KILLS = [("encode_passages#1", "before", False), ("os.rename#1", "after", False),
               ("os.replace#2", "before", False), ("os.replace#2", "after", True), ("publish#1", "after", True)]


def test_kill_at_key_steps(kill_setup: tuple[Path, Path, str, int], tmp_path: Path) -> None:
    for trial, (target, when, published) in enumerate(QUICK_KILLS):
        killed_at, swapped = kill_trial(kill_setup, tmp_path / f"t{trial}", target, when)
        assert (killed_at, swapped) == (target.split("#")[0], published)


def step_labels(kill_setup: tuple[Path, Path, str, int], tmp_path: Path) -> list[str]:
    """The label of every durable step of an uninterrupted build, in order."""
    script = SELF_KILL.replace("ix.build_index(corpus, index, model=\"hash\")",
                               "ix.build_index(corpus, index, model='hash')\nprint('LABELS', json.dumps(steps))")
    script = "import json\n" + script
    work = tmp_path / "labels"
    shutil.copytree(kill_setup[1], work)
    proc = subprocess.run([sys.executable, "-c", script, str(kill_setup[0]), str(work), str(10**6), "before"],
                          capture_output=True, text=True, timeout=120)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("LABELS "))
    labels: list[str] = json.loads(line[len("LABELS "):])
    assert "publish" in labels and "encode_passages" in labels
    return labels


@pytest.mark.slow
def test_kill_at_every_step(kill_setup: tuple[Path, Path, str, int], tmp_path: Path) -> None:
    n = len(step_labels(kill_setup, tmp_path))
    trials = 0
    for target in range(1, n + 1):
        for when in ("before", "after"):
            kill_trial(kill_setup, tmp_path / f"t{trials}", target, when)
            trials += 1
    print(f"self-kill trials: {trials} over {n} steps")
    assert trials == 2 * n


def timed_kills(kill_setup: tuple[Path, Path, str, int], tmp_path: Path, trials: int) -> int:
    corpus, index, old, new_count = kill_setup
    cmd = [sys.executable, "-m", "speechrag.cli", "build", "--corpus", str(corpus), "--model", "hash"]
    probe = tmp_path / "probe"
    shutil.copytree(index, probe)
    t = time.perf_counter()
    subprocess.run([*cmd, "--index", str(probe)], check=True, capture_output=True, timeout=120)
    duration = time.perf_counter() - t
    killed = 0
    rng = random.Random(20261129)  # random kill points, the same ones on every run
    for i in range(trials):
        work = tmp_path / f"timed{i}"
        shutil.copytree(index, work)
        proc = subprocess.Popen([*cmd, "--index", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * rng.uniform(0.1, 0.9))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
        idx = load_index(work)
        assert len(idx.store.all_passages) == (new_count - 2 if idx.generation == old else new_count)
        s = build_index(corpus, work, model="hash")
        assert_clean(work, s.generation)
        assert not any(GEN_RE.fullmatch(p.name) and p.name != s.generation for p in work.iterdir())
    return killed


def test_timed_kills_of_the_cli(kill_setup: tuple[Path, Path, str, int], tmp_path: Path) -> None:
    assert timed_kills(kill_setup, tmp_path, 2) >= 1


@pytest.mark.slow
def test_many_timed_kills_of_the_cli(kill_setup: tuple[Path, Path, str, int], tmp_path: Path) -> None:
    killed = timed_kills(kill_setup, tmp_path, 50)
    print(f"timed kills: {killed} of 50 runs killed at random points")
    assert killed >= 25  # the rest finished first: load on a shared machine varies the build time
