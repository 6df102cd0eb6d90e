"""The callback the library's long steps report through: ``progress(done, total)``.

Reading a corpus, OCR, embedding and building take one; bars are drawn only by the CLI.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]

__all__ = ["Progress"]
