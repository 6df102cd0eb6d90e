"""What every `speechrag` command shares: one-line errors, JSON output, -v, --index, the speech
filters and the settings the group read (see `speechrag.cli`)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from speechrag.config import Settings, index_location
from speechrag.errors import SpeechragError, one_line

F = TypeVar("F", bound=Callable[..., Any])



def friendly_errors(fn: F) -> F:
    """Turn library errors into `Error: <one line>` and exit status 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpeechragError as exc:
            raise click.ClickException(one_line(exc)) from exc

    return wrapper  # type: ignore[return-value]


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _set_verbosity(ctx: click.Context, _param: click.Parameter, value: int) -> int:
    """-v / -vv before or after the command name: the more, the more is logged."""
    if value:
        root = ctx.find_root()
        total = root.meta.get("speechrag.verbose", 0) + value
        root.meta["speechrag.verbose"] = total
        logging.getLogger().setLevel(logging.WARNING - 10 * min(total, 2))
    return value


def verbose_option(fn: F) -> F:
    return click.option("-v", "--verbose", count=True, expose_value=False, is_eager=True,
                        callback=_set_verbosity, help="Log more (-v info, -vv debug).")(fn)


def settings() -> Settings:
    """The settings read from the environment by the group (see `cli`)."""
    obj = click.get_current_context().find_object(Settings)
    return obj if obj is not None else Settings()


_INDEX_HELP = ("Index: a folder, or Milvus: x.db (Milvus Lite) or http(s)://host:port (a server, token in "
               "$SPEECHRAG_MILVUS_TOKEN) (default: $SPEECHRAG_INDEX or embeddings).")


def _index_value(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | Path | None:
    return index_location(value) if value else None


def index_option(fn: F) -> F:
    """``--index``: a folder or a Milvus location (kept as text: a URI is not a path)."""
    return click.option("--index", default=None, metavar="PATH|URI", callback=_index_value, help=_INDEX_HELP)(fn)

def snippet(text: str, width: int = 110) -> str:
    return text if len(text) <= width else text[:width] + "…"


# The speech filters every retrieval and analysis command takes (checked by `QueryOptions`).
FILTER_OPTIONS = [
    click.option("--speech", "speeches", multiple=True, metavar="ID",
                 help="Only this speech id (repeatable); ids are listed by `speechrag corpus`."),
    click.option("--speaker", "speakers", multiple=True, metavar="NAME", help="Only speeches by NAME (repeatable)."),
    click.option("--place", "places", multiple=True, metavar="PLACE", help="Only speeches about PLACE (repeatable)."),
    click.option("--years", default=None, metavar="YYYY[-YYYY]", help="Only speeches given in these years."),
]


def filters(speeches: tuple[str, ...], speakers: tuple[str, ...], places: tuple[str, ...],
             years: str | None) -> dict[str, Any]:
    """The speech filters as given, for the analysis commands (checked there, by `QueryOptions`)."""
    return {"speeches": speeches or None, "speaker": speakers or None, "place": places or None, "years": years}
