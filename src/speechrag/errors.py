"""The few named errors speechrag raises; the CLI and UI show each as one line."""

from __future__ import annotations


class SpeechragError(Exception):
    """Base class of every error speechrag raises on purpose."""


class CorpusError(SpeechragError):
    """A corpus path or file cannot be read: missing, empty, binary or undecodable."""


class DocumentError(CorpusError):
    """One corpus file is skipped; the message is the one-line reason (no text layer, encrypted, ...)."""


class OcrDeferred(DocumentError):
    """A PDF has pages to read by OCR, left for the corpus read's own process (formats.ocr.OcrReader(defer=True))."""


class EncoderError(SpeechragError):
    """An encoder cannot be loaded: unknown name, or weights not available offline."""


class IndexLoadError(SpeechragError):
    """An index directory is missing or unusable; the message says which command fixes it."""


class IndexCorruptError(IndexLoadError):
    """An index file is missing, truncated, emptied, altered or has junk appended."""


class EncoderMismatchError(IndexLoadError):
    """The index was built with a different encoder from the one asked for."""


class IndexLockedError(SpeechragError):
    """Another build holds the index lock."""


class QueryError(SpeechragError):
    """A query or its options are out of range: empty, too long, bad k, unknown speech."""


class OptionError(QueryError):
    """One request option has a bad value; ``field`` names it (``k``, ``mode``, ``place``...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BuildError(SpeechragError):
    """A build cannot run as asked: vectors that do not fit, an index folder that cannot be written."""


class ConfigError(SpeechragError):
    """An environment variable or option has a value speechrag cannot use."""


def one_line(exc: BaseException) -> str:
    """An error as the one line the CLI and the UI show: its first line, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
