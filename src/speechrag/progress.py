"""The callback the library's long steps report through: ``progress(done, total)``, and the
one place a command line shows it (`Reporter`).

Reading a corpus, OCR, embedding and building take one; the library draws nothing itself.
A `Reporter` shows them three ways: bars on a terminal; on a log or a pipe (a build started by a
script, a service or CI), one line per stage at least every LOG_EVERY seconds with done/total,
rate and time left; and JSON lines for programs (``speechrag build --json-progress``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Literal

Progress = Callable[[int, int], None]

LOG_EVERY = 30.0  # seconds between two log lines of a stage (a log is not a terminal: no bars)
JSON_EVERY = 1.0  # seconds between two JSON lines of a stage (programs poll; they need no more)
EVENT_AFTER = 5.0  # a milestone of a command shorter than this is left to its summary line

Style = Literal["bars", "log", "json"]


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


@dataclass
class _Stage:
    name: str
    unit: str
    started: float = field(default_factory=lambda: time.monotonic())
    shown: float = 0.0  # when this stage last printed (log or JSON)
    start_done: int = 0  # done when first reported: a rate counts only this run's work

    def figures(self, done: int, total: int) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        rate = (done - self.start_done) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        return {"phase": self.name, "unit": self.unit, "done": done, "total": total,
                "rate": round(rate, 2), "elapsed_seconds": round(elapsed, 1),
                "eta_seconds": None if eta is None else round(eta, 1)}


class Reporter:
    """Progress callbacks for a command's stages, shown in one style (see the module docstring):
    ``bars`` on a terminal, else ``log``, unless ``json`` is asked for. `event` reports a
    milestone (the index answers; it is complete)."""

    def __init__(self, style: Style | None = None, out: IO[str] | None = None) -> None:
        self.out = out or sys.stderr
        self.style: Style = style or ("bars" if self.out.isatty() else "log")
        self.bars: dict[str, Any] = {}
        self.stages: dict[str, _Stage] = {}
        self.started = self.last_line = time.monotonic()

    def stage(self, name: str, unit: str) -> Progress:
        def progress(done: int, total: int) -> None:
            if total == 0:
                return
            if self.style == "bars":
                self._bar(name, unit, done, total)
                return
            stage = self.stages.get(name)
            if stage is None:
                stage = self.stages[name] = _Stage(name, unit, start_done=done)
            now = time.monotonic()
            if self.style == "json":
                # The first report, the last, and one a JSON_EVERY in between.
                if stage.shown and done < total and now - stage.shown < JSON_EVERY:
                    return
            # A log: a line once LOG_EVERY has passed without one (whatever the stage), and a
            # stage's end once it has shown a line, so a build of seconds leaves its log alone.
            elif not (now - self.last_line >= LOG_EVERY or (done >= total and stage.shown)):
                return
            stage.shown = self.last_line = now
            self._line(stage.figures(done, total))

        return progress

    def event(self, name: str, message: str | None, **figures: Any) -> None:
        """A milestone: an object in JSON; ``message`` in the log or above the bars once the
        command has run EVENT_AFTER seconds (a shorter one says it in its last line)."""
        if self.style == "json":
            self._write(json.dumps({"event": name, **figures}, ensure_ascii=False))
        elif message is not None and time.monotonic() - self.started >= EVENT_AFTER:
            self.last_line = time.monotonic()
            self._write(message)

    def _line(self, f: dict[str, Any]) -> None:
        if self.style == "json":
            self._write(json.dumps(f, ensure_ascii=False))
            return
        share = f" ({100 * f['done'] / f['total']:.0f}%)" if f["total"] else ""
        left = "" if f["eta_seconds"] is None or f["done"] >= f["total"] else f", {_duration(f['eta_seconds'])} left"
        self._write(f"{f['phase']}: {f['done']:,}/{f['total']:,} {f['unit']}s{share}, "
                    f"{f['rate']:,.1f} {f['unit']}s/s, {_duration(f['elapsed_seconds'])} so far{left}")

    def _write(self, line: str) -> None:
        if self.bars:
            from tqdm import tqdm

            tqdm.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def _bar(self, name: str, unit: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(name)
        if bar is None:
            bar = self.bars[name] = tqdm(total=total, unit=unit, desc=name, file=self.out)
        if total != bar.total:  # pages to OCR are counted file by file
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


__all__ = ["LOG_EVERY", "Progress", "Reporter"]
