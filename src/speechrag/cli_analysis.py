"""The `speechrag` commands over a collection as a whole: concordance, trend, targets, compare
(`speechrag.analysis`), and the feedback the web chat collected. Registered on the group by
`speechrag.cli`."""

from __future__ import annotations

from pathlib import Path

import click

from speechrag.clitools import (
    FILTER_OPTIONS,
    F,
    echo_json,
    filters,
    friendly_errors,
    index_option,
    settings,
    snippet,
    verbose_option,
)

# --- collection analysis (speechrag.analysis) ---------------------------------------------------


def _scope_options(fn: F) -> F:
    """The filters the analysis commands take (as `search` and `ask` do)."""
    for option in reversed([*FILTER_OPTIONS, index_option, verbose_option]):
        fn = option(fn)
    return fn


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to the widest cell in terminal columns (a Chinese character takes two)."""
    from speechrag.text import display_width

    widths = [max(display_width(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(c + " " * (w - display_width(c)) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [headers, *rows])


def _one_output(**chosen: object) -> None:
    given = [name for name, value in chosen.items() if value]
    if len(given) > 1:
        raise click.ClickException(f"choose one of {', '.join('--' + n for n in given)}")


@click.command("concordance")
@click.argument("phrase")
@_scope_options
@click.option("--context", default=20, show_default=True, type=click.IntRange(0, 500),
              help="Characters shown either side of each occurrence.")
@click.option("--regex", is_flag=True, help="Read PHRASE as a regular expression.")
@click.option("--sort", type=click.Choice(["date", "speech", "left", "right"]), default="date", show_default=True,
              help="date (oldest first), speech (reading order), left or right context.")
@click.option("--csv", "csv_path", default=None, type=click.Path(path_type=Path), help="Write the rows as CSV.")
@click.option("--xlsx", "xlsx_path", default=None, type=click.Path(path_type=Path), help="Write the rows as XLSX.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly_errors
def concordance_cmd(phrase: str, speeches: tuple[str, ...], speakers: tuple[str, ...], places: tuple[str, ...],
                    years: str | None, index: str | Path | None, context: int, regex: bool, sort: str,
                    csv_path: Path | None, xlsx_path: Path | None, as_json: bool) -> None:
    """Every occurrence of PHRASE in the speeches (exact text, full- and half-width digits
    alike), with its context and citation."""
    from speechrag.analysis import concordance
    from speechrag.analysis.export import write_csv, write_xlsx
    from speechrag.text import display_width

    _one_output(csv=csv_path, xlsx=xlsx_path, json=as_json)
    found = concordance(phrase, context=context, regex=regex, sort=sort, index=index or settings().index,
                        **filters(speeches, speakers, places, years))
    rows = [o.to_dict() for o in found]
    if as_json:
        echo_json(found.to_dict())
        return
    if csv_path or xlsx_path:
        out = write_csv(rows, csv_path) if csv_path else write_xlsx(rows, xlsx_path)  # type: ignore[arg-type]
        click.echo(f"wrote {len(rows)} occurrences of {found.phrase} to {out}")
        return
    click.echo(f"{len(found)} occurrences of {found.phrase} in {found.speeches} speeches "
               f"({found.characters:,} characters)")
    width = max((display_width(o.left) for o in found), default=0)
    for o in found:
        pad = " " * (width - display_width(o.left))
        click.echo(f"{pad}{o.left} [{o.match}] {o.right}    {o.citation}")


@click.command("trend")
@click.argument("phrases", nargs=-1, required=True)
@_scope_options
@click.option("--by", type=click.Choice(["year", "speaker", "place", "speech"]), default="year", show_default=True,
              help="Group speeches by this.")
@click.option("--per", default=10_000, show_default=True, type=click.IntRange(1),
              help="Rates per this many characters.")
@click.option("--regex", is_flag=True, help="Read each phrase as a regular expression.")
@click.option("--png", "png_path", default=None, type=click.Path(path_type=Path),
              help="Also draw the rates as a line chart (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly_errors
def trend_cmd(phrases: tuple[str, ...], speeches: tuple[str, ...], speakers: tuple[str, ...],
              places: tuple[str, ...], years: str | None, index: str | Path | None, by: str, per: int, regex: bool,
              png_path: Path | None, as_json: bool) -> None:
    """How often each of PHRASES occurs per year (speaker, place, speech), per 10,000
    characters, and where each is first and last said in a dated speech."""
    from speechrag.analysis import trend
    from speechrag.analysis.trend import plot

    result = trend(list(phrases), by=by, per=per, regex=regex, index=index or settings().index,
                   **filters(speeches, speakers, places, years))
    if png_path is not None:
        plot(result, str(png_path))
    if as_json:
        echo_json(result.to_dict())
        return
    headers = [by, "speeches", "characters", *(f"{p} (per {per:,})" for p in result.phrases)]
    rows = [[r.group, str(r.speeches), f"{r.characters:,}",
             *(f"{n} ({rate:.2f})" for n, rate in zip(r.counts, r.rates, strict=True))] for r in result.rows]
    click.echo(_table(headers, rows))
    for m in result.mentions:
        if m.first is None or m.last is None:
            click.echo(f"{m.phrase}: {m.total} in all; in no dated speech")
        else:
            click.echo(f"{m.phrase}: {m.total} in all; first {m.first.citation}; last {m.last.citation}")
    if png_path is not None:
        click.echo(f"wrote {png_path}")


@click.command("targets")
@click.argument("indicator")
@_scope_options
@click.option("--csv", "csv_path", default=None, type=click.Path(path_type=Path), help="Write the rows as CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly_errors
def targets_cmd(indicator: str, speeches: tuple[str, ...], speakers: tuple[str, ...], places: tuple[str, ...],
                years: str | None, index: str | Path | None, csv_path: Path | None, as_json: bool) -> None:
    """The target each dated report sets for INDICATOR (国内生产总值, 居民消费价格, 城镇新增就业)
    for its year, with the figure read and the sentence cited."""
    from speechrag.analysis import targets
    from speechrag.analysis.export import write_csv

    _one_output(csv=csv_path, json=as_json)
    found = targets(indicator, index=index or settings().index, **filters(speeches, speakers, places, years))
    if as_json:
        echo_json([t.to_dict() for t in found])
        return
    if csv_path is not None:
        records = [{**{k: v for k, v in t.to_dict().items() if k != "figure"},
                    **{f"figure_{k}": v for k, v in t.figure.to_dict().items()}} for t in found]
        click.echo(f"wrote {len(records)} targets to {write_csv(records, csv_path)}")
        return
    if not found:
        click.echo(f"No dated speech sets a target for {indicator}.")
        return
    rows = [[str(t.year), t.figure.text, str(t.figure.low) if not t.figure.is_range
             else f"{t.figure.low}–{t.figure.high}", t.figure.unit, t.figure.qualifier, t.place or "", t.citation]
            for t in found]
    click.echo(_table(["year", "as written", "value", "unit", "qualifier", "place", "citation"], rows))


@click.command("compare")
@click.argument("question")
@_scope_options
@click.option("--by", type=click.Choice(["speech", "place", "year", "speaker"]), default="speech", show_default=True,
              help="Answer the question for each of these on its own.")
@click.option("--sentences", "max_sentences", default=2, show_default=True, type=click.IntRange(1, 10),
              help="Sentences per group.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly_errors
def compare_cmd(question: str, speeches: tuple[str, ...], speakers: tuple[str, ...], places: tuple[str, ...],
                years: str | None, index: str | Path | None, by: str, max_sentences: int, as_json: bool) -> None:
    """QUESTION answered side by side: for each speech (place, year, speaker) on its own, its
    best cited sentences, or that it does not address the topic."""
    from speechrag.analysis import compare

    result = compare(question, by=by, max_sentences=max_sentences, index=index or settings().index,
                     **filters(speeches, speakers, places, years))
    if as_json:
        echo_json(result.to_dict())
        return
    for g in result.groups:
        click.echo(f"== {g.group}")
        click.echo(g.text)
        click.echo("")


@click.command("feedback")
@click.option("--csv", "csv_path", default=None, type=click.Path(path_type=Path, dir_okay=False),
              help="Write every column to this CSV file instead of printing a table.")
@click.option("--data-dir", default=None, type=click.Path(path_type=Path, file_okay=False),
              help="The server's data folder (default: $SPEECHRAG_DATA_DIR, else ~/.local/share/speechrag).")
@verbose_option
@friendly_errors
def feedback_cmd(csv_path: Path | None, data_dir: Path | None) -> None:
    """List the 👍/👎 given to answers in the web chat, with their comments, oldest first."""
    import csv

    from speechrag.userdata import FILE_NAME, Feedback, UserData

    folder = data_dir or settings().data_dir
    if not (folder / FILE_NAME).exists():
        raise click.ClickException(f"no feedback yet: {folder / FILE_NAME} does not exist (pass --data-dir, or "
                                   "set $SPEECHRAG_DATA_DIR to the folder `speechrag serve` used)")
    rows = UserData.in_dir(folder).feedback()
    if csv_path is not None:
        try:
            with csv_path.open("w", encoding="utf-8-sig", newline="") as f:  # the BOM: Excel reads it as UTF-8
                writer = csv.writer(f)
                writer.writerow(Feedback.COLUMNS)
                writer.writerows(r.row() for r in rows)
        except OSError as exc:
            raise click.ClickException(f"cannot write {csv_path} ({exc.strerror}); give another --csv path") from exc
        click.echo(f"wrote {len(rows)} rows to {csv_path}")
        return
    def line(text: str, width: int) -> str:  # one line a row, whatever the answer's line breaks
        return snippet(" ".join(text.split()), width)

    for r in rows:
        mark = "👍" if r.rating > 0 else "👎"
        click.echo(f"{r.id:>4}  {r.created}  {mark}  {r.user or '-'}  {line(r.question, 40)}  "
                   f"→ {line(r.answer, 50)}  [{r.status}, {len(r.citations)} sources, {r.generation}]")
        if r.comment:
            click.echo(f"      “{line(r.comment, 100)}”")
    click.echo(f"{len(rows)} ratings: {sum(r.rating > 0 for r in rows)} 👍, {sum(r.rating < 0 for r in rows)} 👎")


COMMANDS = (concordance_cmd, trend_cmd, targets_cmd, compare_cmd, feedback_cmd)
