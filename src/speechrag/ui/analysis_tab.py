"""The page's "语料分析 · Analysis" tab: the four views of `speechrag.analysis` over the live index,
under the same filters as the chat (speeches, speakers, places, years).

- 词语 · Phrases: the concordance of the first phrase (an aligned table, the match in its own
  column; a click on a row opens the reading view at that paragraph) and the trend of all of them
  by year, speaker, place or speech, drawn with Gradio's own plots (a LinePlot over years, a
  BarPlot otherwise; one series per phrase) and tabled.
- 目标 · Targets: one indicator's target per dated report (a table and a line over the years).
- 对照 · Side by side: one question answered per speech, place, year or speaker; a group that
  does not address it says 未涉及.

Every table is offered as CSV and XLSX (`speechrag.analysis.export`), written into a fresh
folder under `export_root()`, the one folder whose files `ui.server.GuardMiddleware` lets the
file route serve. Tables are Gradio Dataframes of plain strings and the plots take plain data:
corpus text is never HTML here (the reading view escapes it in `render.reading_html`).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from speechrag.analysis import Comparison, Concordance, Target, Trend, compare, concordance, targets, trend
from speechrag.analysis.export import write_csv, write_xlsx
from speechrag.errors import ConfigError, SpeechragError, one_line
from speechrag.render import READING_EMPTY, reading_html
from speechrag.serving import IndexService
from speechrag.ui.handlers import READING_GONE, PageScope, filter_choices, menu_choices

logger = logging.getLogger(__name__)

CONCORDANCE_HEADERS = ["日期 · Date", "讲话 · Speech", "左 · Left", "词 · Match", "右 · Right", "出处 · Citation",
                       "编号 · ID"]
TARGET_HEADERS = ["年份 · Year", "数字 · Figure", "限定 · Qualifier", "出处 · Citation", "句子 · Sentence", "编号 · ID"]
COMPARE_HEADERS = ["分组 · Group", "状态 · Status", "句子 · Sentence", "出处 · Citation", "编号 · ID"]
MAX_ROWS = 500  # rows shown; the label gives the full count and the downloads hold them all
GROUPINGS = [("年份 · year", "year"), ("地点 · place", "place"), ("讲话人 · speaker", "speaker"),
             ("讲话 · speech", "speech")]
GROUP_LABELS = {key: label for label, key in GROUPINGS}
COMPARE_BY = [("讲话 · speech", "speech"), ("地点 · place", "place"), ("年份 · year", "year"),
              ("讲话人 · speaker", "speaker")]
INDICATORS = ["国内生产总值", "居民消费价格", "城镇新增就业", "城镇调查失业率", "城镇登记失业率"]
STATUS = {"found": "有 · found", "partial": "部分 · partial", "not_found": "未涉及 · absent"}
EXPORT_SECONDS = 3600  # an export folder older than this is removed when the next is written

# --- downloads ------------------------------------------------------------------------------

EXPORT_NAME = re.compile(r"^(concordance|trend|targets|compare)\.(csv|xlsx)$")


def export_root() -> Path:
    """Where the tab's downloads are written: a folder in Gradio's own cache, so Gradio serves
    the files where they are (no copy), and the one folder the guard lets the file route read."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve() / "speechrag-exports"


def is_export(path: str) -> bool:
    """Whether ``path`` (as the file route names it) is a download this tab wrote:
    ``<export_root>/<folder>/<table>.csv|xlsx``, nothing above or beside."""
    try:
        resolved = Path(path).resolve(strict=True)
        relative = resolved.relative_to(export_root())
    except (OSError, ValueError):
        return False
    return Path(path).is_absolute() and len(relative.parts) == 2 and bool(EXPORT_NAME.match(relative.parts[1]))


def _prune(root: Path) -> None:
    cutoff = time.time() - EXPORT_SECONDS
    for folder in root.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def export(name: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> tuple[str, str | None]:
    """``rows`` written as ``name``.csv and ``name``.xlsx into a new folder of their own under
    `export_root()` (older folders pruned); their paths. The XLSX is None without openpyxl (the
    analysis extra): the page then offers the CSV alone."""
    root = export_root()
    root.mkdir(parents=True, exist_ok=True)
    _prune(root)
    folder = Path(tempfile.mkdtemp(dir=root))
    csv_path = write_csv(rows, folder / f"{name}.csv", columns)
    try:
        xlsx_path: str | None = str(write_xlsx(rows, folder / f"{name}.xlsx", columns, sheet=name))
    except ConfigError as exc:
        logger.warning("no XLSX download: %s", one_line(exc))
        xlsx_path = None
    return str(csv_path), xlsx_path


def _downloads(paths: tuple[str, str | None] | None) -> tuple[Any, Any]:
    """The two buttons' updates: shown with their files, or hidden."""
    csv_path, xlsx_path = paths or (None, None)
    return (gr.DownloadButton(value=csv_path, visible=csv_path is not None),
            gr.DownloadButton(value=xlsx_path, visible=xlsx_path is not None))


# --- filters --------------------------------------------------------------------------------


def filters_of(speeches: Sequence[str] | None, speakers: Sequence[str] | None, places: Sequence[str] | None,
               year_from: object, year_to: object) -> dict[str, Any]:
    """The analysis functions' filter arguments from the filter menus, read as the chat reads
    its own (`handlers.PageScope`), checked as every door checks them."""
    options = PageScope.of("hybrid", speeches, speakers, places, year_from, year_to).options()
    return {"speeches": options.speeches, "speaker": options.speaker, "place": options.place, "years": options.years}


def key_of(speech_id: str, passage_id: str) -> str:
    """A row's last column: what the reading view needs to open the passage."""
    return f"{speech_id}:{passage_id}"


# --- phrases: concordance and trend -----------------------------------------------------------


def phrases_of(text: str) -> list[str]:
    """Phrases typed in one box, separated by spaces, commas or 、."""
    return [p for p in text.replace("，", " ").replace(",", " ").replace("、", " ").split() if p]


@dataclass(frozen=True)
class Phrases:
    """What the phrases view shows: the library's results, or a one-line ``message``."""

    found: Concordance | None = None
    counted: Trend | None = None
    message: str = ""


def run_phrases(service: IndexService, text: str, by: str, context: int, **filters: Any) -> Phrases:
    phrases = phrases_of(text)
    if not phrases:
        return Phrases(message="输入词语 · Enter a phrase")
    try:
        index = service.current()
        found = concordance(phrases[0], context=int(context), sort="date", index=index, **filters)
        counted = trend(phrases, by=by, index=index, **filters)
    except SpeechragError as exc:
        return Phrases(message=one_line(exc))
    return Phrases(found, counted)


def concordance_rows(found: Concordance) -> list[list[str]]:
    return [[o.date, o.title, o.left, o.match, o.right, o.citation, key_of(o.speech_id, o.passage_id)]
            for o in found.occurrences[:MAX_ROWS]]


def concordance_label(found: Concordance) -> str:
    shown = f"（显示前 {MAX_ROWS} 条 · first {MAX_ROWS} shown）" if len(found) > MAX_ROWS else ""
    return (f"{found.phrase}：{len(found)} 处 · occurrences in {found.speeches} speeches{shown}"
            "（点一行阅读原文 · click a row to read it）")


CONCORDANCE_COLUMNS = ["date", "title", "speaker", "place", "section", "paragraph", "citation", "left", "match",
                       "right", "speech_id", "passage_id", "offset"]


def concordance_records(found: Concordance) -> list[dict[str, Any]]:
    return [o.to_dict() for o in found.occurrences]


def trend_table(counted: Trend) -> tuple[list[str], list[list[str]]]:
    headers = [counted.by, "讲话数 · speeches", "字数 · characters",
               *(f"{p}（每{counted.per:,}字 · per {counted.per:,}）" for p in counted.phrases)]
    rows = [[r.group, str(r.speeches), f"{r.characters:,}",
             *(f"{n} ({rate:.2f})" for n, rate in zip(r.counts, r.rates, strict=True))] for r in counted.rows]
    return headers, rows


def trend_records(counted: Trend) -> tuple[list[dict[str, Any]], list[str]]:
    columns = [counted.by, "speeches", "characters"]
    for p in counted.phrases:
        columns += [f"{p} count", f"{p} per {counted.per}"]
    rows = []
    for r in counted.rows:
        row: dict[str, Any] = {counted.by: r.group, "speeches": r.speeches, "characters": r.characters}
        for p, n, rate in zip(counted.phrases, r.counts, r.rates, strict=True):
            row[f"{p} count"], row[f"{p} per {counted.per}"] = n, round(rate, 4)
        rows.append(row)
    return rows, columns


TREND_X, TREND_Y, TREND_SERIES = "group", "rate", "phrase"


def trend_frame(counted: Trend) -> pd.DataFrame:
    """One row per group and phrase: the chart's data (x group, y rate, one series a phrase)."""
    return pd.DataFrame(
        [{TREND_X: r.group, TREND_SERIES: p, TREND_Y: round(rate, 4), "count": n}
         for r in counted.rows for p, n, rate in zip(counted.phrases, r.counts, r.rates, strict=True)],
        columns=[TREND_X, TREND_SERIES, TREND_Y, "count"])


def uses_line(counted: Trend) -> bool:
    """Years are drawn as lines (one per phrase), other groups as bars; so are fewer than two
    years, since Gradio's line draws nothing for one point (an undated corpus is one group)."""
    return counted.by == "year" and len(counted.rows) >= 2


def mentions_text(counted: Trend) -> str:
    return "；".join(
        f"{m.phrase}: {m.total}" + (f"，首见 first {m.first.citation}，末见 last {m.last.citation}"
                                    if m.first and m.last else "")
        for m in counted.mentions)


def analyse(service: IndexService, text: str, by: str, context: int,
            **filters: Any) -> tuple[list[list[str]], str, list[list[str]], list[str], str]:
    """The concordance of the first phrase (rows, label) and the trend of all (rows, headers),
    and a line of first and last mentions, or of the error."""
    result = run_phrases(service, text, by, context, **filters)
    if result.found is None or result.counted is None:
        label = result.message if not result.message or result.message.startswith("输入") else ""
        return [], label, [], ["—"], "" if label else result.message
    headers, table = trend_table(result.counted)
    return (concordance_rows(result.found), concordance_label(result.found), table, headers,
            mentions_text(result.counted))


# --- targets ---------------------------------------------------------------------------------


def run_targets(service: IndexService, indicator: str, **filters: Any) -> tuple[tuple[Target, ...], str]:
    if not indicator.strip():
        return (), "输入指标 · Enter an indicator"
    try:
        return targets(indicator.strip(), index=service.current(), **filters), ""
    except SpeechragError as exc:
        return (), one_line(exc)


def target_rows(found: Sequence[Target]) -> list[list[str]]:
    return [[str(t.year), t.figure.text, t.figure.qualifier, t.citation, t.sentence, key_of(t.speech_id, t.passage_id)]
            for t in found]


TARGET_COLUMNS = ["year", "indicator", "figure", "low", "high", "unit", "qualifier", "citation", "sentence", "title",
                  "date", "place", "speech_id", "passage_id"]


def target_records(found: Sequence[Target]) -> list[dict[str, Any]]:
    return [{"year": t.year, "indicator": t.indicator, "figure": t.figure.text, "low": float(t.figure.low),
             "high": float(t.figure.high), "unit": t.figure.unit, "qualifier": t.figure.qualifier,
             "citation": t.citation, "sentence": t.sentence, "title": t.title, "date": t.date, "place": t.place,
             "speech_id": t.speech_id, "passage_id": t.passage_id} for t in found]


def target_frame(found: Sequence[Target]) -> pd.DataFrame:
    """The line over the years: two series, a target's low and high ends (the same value for a
    figure that is no range), so every year has a point on both lines."""
    rows = [{"year": str(t.year), "value": float(value), "series": series}
            for t in found for series, value in (("下限 · low", t.figure.low), ("上限 · high", t.figure.high))]
    return pd.DataFrame(rows, columns=["year", "value", "series"])


# --- side by side ----------------------------------------------------------------------------


def run_compare(service: IndexService, question: str, by: str, **filters: Any) -> tuple[Comparison | None, str]:
    if not question.strip():
        return None, "输入问题 · Enter a question"
    try:
        return compare(question, by=by, index=service.current(), **filters), ""
    except SpeechragError as exc:
        return None, one_line(exc)


def compare_rows(result: Comparison) -> list[list[str]]:
    """One row per quoted sentence; a group that does not address the question one row of 未涉及."""
    rows = []
    for g in result.groups:
        status = STATUS.get(g.status, g.status)
        if g.absent:
            rows.append([g.group, status, g.text, "", ""])
            continue
        if g.notice:
            rows.append([g.group, status, g.notice, "", ""])
        rows += [[g.group, status, q.text, q.citation, key_of(q.speech_id, q.passage_id)] for q in g.quotes]
    return rows


COMPARE_COLUMNS = ["group", "status", "notice", "sentence", "citation", "speech_id", "passage_id"]


def compare_records(result: Comparison) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for g in result.groups:
        base = {"group": g.group, "status": g.status, "notice": g.notice}
        if not g.quotes:
            rows.append({**base, "sentence": g.text if g.absent else ""})
        rows += [{**base, "sentence": q.text, "citation": q.citation, "speech_id": q.speech_id,
                  "passage_id": q.passage_id} for q in g.quotes]
    return rows


# --- opening a row in the reading view ---------------------------------------------------------


def open_row(service: IndexService, row: Sequence[Any], match: str = "") -> str:
    """The reading view for a table row whose last column is `key_of` (speech, passage), that
    passage marked and ``match`` highlighted wherever it stands in it; the empty view for a row
    without a key (a side-by-side group that says 未涉及)."""
    speech_id, _, passage_id = str(row[-1] if row else "").rpartition(":")
    if not speech_id or not passage_id:
        return READING_EMPTY
    speech, passages = service.read(speech_id)
    if speech is None:
        return READING_GONE
    text = next((p.text for p in passages if p.id == passage_id), "")
    spans: list[tuple[int, int]] = []
    start = text.find(match) if match else -1
    while start >= 0:
        spans.append((start, start + len(match)))
        start = text.find(match, start + len(match))
    return reading_html(speech, passages, target=passage_id, spans=spans)


# --- the tab ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    speeches: gr.Dropdown
    speakers: gr.Dropdown
    places: gr.Dropdown
    year_from: gr.Dropdown
    year_to: gr.Dropdown

    @property
    def all(self) -> list[Any]:
        return [self.speeches, self.speakers, self.places, self.year_from, self.year_to]


def _filters(service: IndexService) -> Filters:
    menus = menu_choices(service.speeches())
    with gr.Accordion("筛选（与对话相同）· Filters (as in the chat)", open=False, elem_id="analysis-filters") as panel:
        with gr.Row():
            chosen = gr.Dropdown(menus[0], value=[], multiselect=True, label="限定讲话 · Speeches",
                                 info="不选即全部 · none selected = all", elem_id="analysis-speeches")
            speakers = gr.Dropdown(menus[1], value=[], multiselect=True, label="讲话人 · Speaker",
                                   elem_id="analysis-speakers")
            places = gr.Dropdown(menus[2], value=[], multiselect=True, label="地点 · Place", elem_id="analysis-places")
            year_from = gr.Dropdown(menus[3], value="", label="起始年份 · From year", elem_id="analysis-year-from")
            year_to = gr.Dropdown(menus[3], value="", label="截止年份 · To year", elem_id="analysis-year-to")
        clear = gr.Button("清除筛选 · Clear filters", size="sm", elem_id="analysis-clear-filters")
    filters = Filters(chosen, speakers, places, year_from, year_to)
    # The menus as the live index has them each time the panel opens (an upload may have added
    # speeches since the page was built), and cleared in one click, as the chat's are.
    panel.expand(lambda: filter_choices(service.speeches()), outputs=filters.all, queue=False, **PRIVATE)
    clear.click(lambda: ([], [], [], "", ""), outputs=filters.all, queue=False, **PRIVATE)
    return filters


def _download_pair(name: str) -> tuple[gr.DownloadButton, gr.DownloadButton]:
    with gr.Row():
        csv_button = gr.DownloadButton(f"下载 CSV · {name}.csv", visible=False, size="sm",
                                       elem_id=f"analysis-{name}-csv")
        xlsx_button = gr.DownloadButton(f"下载 XLSX · {name}.xlsx", visible=False, size="sm",
                                        elem_id=f"analysis-{name}-xlsx")
    return csv_button, xlsx_button


PRIVATE: dict[str, Any] = {"api_visibility": "private"}


def analysis_tab(service: IndexService, tabs: gr.Tabs | None = None, reading: gr.HTML | None = None,
                 scroll_js: str | None = None) -> None:
    """The tab's parts and events (built inside a ``gr.Tab``). With ``tabs`` and ``reading``
    (the page's tabs and the documents tab's reading view), a click on a concordance, target or
    side-by-side row opens that passage there, as a click in the documents table does."""
    filters = _filters(service)
    with gr.Tabs(elem_id="analysis-views"):
        with gr.Tab("词语 · Phrases", id="analysis-phrases"):
            with gr.Row():
                phrase = gr.Textbox(label="词语 · Phrases",
                                    placeholder="新常态 高质量发展（空格分隔 · separated by spaces）",
                                    scale=3, elem_id="analysis-phrase")
                by = gr.Dropdown(GROUPINGS, value="year", label="分组 · Group by", scale=1, elem_id="analysis-by")
                context = gr.Slider(0, 60, value=20, step=1, label="上下文字数 · Context", scale=1,
                                    elem_id="analysis-context")
            run = gr.Button("分析 · Analyse", variant="primary", elem_id="analysis-run")
            # plain text (a Textbox, not Markdown): it holds citations, which are corpus text
            note = gr.Textbox("", label="首见与末见 · First and last", interactive=False, elem_id="analysis-note")
            per_year = gr.LinePlot(None, x=TREND_X, y=TREND_Y, color=TREND_SERIES, label="趋势 · Trend",
                                   x_title="年份 · year", y_title="每万字 · per 10,000 characters",
                                   elem_id="analysis-line")
            per_group = gr.BarPlot(None, x=TREND_X, y=TREND_Y, color=TREND_SERIES, label="趋势 · Trend",
                                   y_title="每万字 · per 10,000 characters", visible=False, elem_id="analysis-bars")
            counted = gr.Dataframe([], headers=["—"], interactive=False, wrap=True, datatype="str",
                                   label="频次 · Trend", elem_id="analysis-trend")
            trend_csv, trend_xlsx = _download_pair("trend")
            lines = gr.Dataframe([], headers=CONCORDANCE_HEADERS, interactive=False, wrap=True, datatype="str",
                                 max_height=420, label="索引 · Concordance", elem_id="analysis-concordance",
                                 column_widths=["9%", "10%", "22%", "9%", "22%", "18%", "10%"])
            conc_csv, conc_xlsx = _download_pair("concordance")
        with gr.Tab("目标 · Targets", id="analysis-targets-tab"):
            with gr.Row():
                indicator = gr.Dropdown(INDICATORS, value=INDICATORS[0], allow_custom_value=True, scale=3,
                                        label="指标 · Indicator", elem_id="analysis-indicator")
                run_t = gr.Button("查找目标 · Find targets", variant="primary", scale=1, elem_id="analysis-run-targets")
            t_note = gr.Textbox("", label="说明 · Note", interactive=False, elem_id="analysis-targets-note")
            t_plot = gr.LinePlot(None, x="year", y="value", color="series", label="历年目标 · Targets by year",
                                 x_title="年份 · year", elem_id="analysis-targets-line")
            t_table = gr.Dataframe([], headers=TARGET_HEADERS, interactive=False, wrap=True, datatype="str",
                                   label="目标 · Targets", elem_id="analysis-targets")
            t_csv, t_xlsx = _download_pair("targets")
        with gr.Tab("对照 · Side by side", id="analysis-compare-tab"):
            with gr.Row():
                question = gr.Textbox(label="问题 · Question", placeholder="天水要设立什么文艺奖？", scale=3,
                                      elem_id="analysis-question")
                compare_by = gr.Dropdown(COMPARE_BY, value="speech", label="按 · By", scale=1,
                                         elem_id="analysis-compare-by")
            run_c = gr.Button("对照 · Compare", variant="primary", elem_id="analysis-run-compare")
            c_note = gr.Textbox("", label="说明 · Note", interactive=False, elem_id="analysis-compare-note")
            c_table = gr.Dataframe([], headers=COMPARE_HEADERS, interactive=False, wrap=True, datatype="str",
                                   label="对照 · Side by side", elem_id="analysis-compare")
            c_csv, c_xlsx = _download_pair("compare")

    def show_analysis(text: str, group: str, chars: float, *menus: Any) -> tuple[Any, ...]:
        result = run_phrases(service, text, group, int(chars), **filters_of(*menus))
        if result.found is None or result.counted is None:
            return (gr.Dataframe([], headers=CONCORDANCE_HEADERS, label="索引 · Concordance"),
                    gr.Dataframe([], headers=["—"]), result.message, gr.LinePlot(None), gr.BarPlot(None),
                    *_downloads(None), *_downloads(None))
        found, counted_ = result.found, result.counted
        headers, table = trend_table(counted_)
        frame = trend_frame(counted_)
        records, columns = trend_records(counted_)
        line = uses_line(counted_)
        return (gr.Dataframe(concordance_rows(found), headers=CONCORDANCE_HEADERS, label=concordance_label(found)),
                gr.Dataframe(table, headers=headers), mentions_text(counted_),
                gr.LinePlot(frame if line else None, visible=line),
                gr.BarPlot(None if line else frame, x_title=GROUP_LABELS.get(group, group), visible=not line),
                *_downloads(export("concordance", concordance_records(found), CONCORDANCE_COLUMNS)),
                *_downloads(export("trend", records, columns)))

    phrase_outputs = [lines, counted, note, per_year, per_group, conc_csv, conc_xlsx, trend_csv, trend_xlsx]
    gr.on([run.click, phrase.submit], show_analysis, inputs=[phrase, by, context, *filters.all],
          outputs=phrase_outputs, **PRIVATE)

    def show_targets(name: str, *menus: Any) -> tuple[Any, ...]:
        found, message = run_targets(service, name or "", **filters_of(*menus))
        if not found:
            message = message or f"没有注明日期的讲话为「{name}」设定目标 · No dated speech sets a target for it"
            return gr.Dataframe([]), None, message, *_downloads(None)
        unit = found[0].figure.unit
        return (gr.Dataframe(target_rows(found)), gr.LinePlot(target_frame(found), y_title=f"{name}（{unit}）"),
                "", *_downloads(export("targets", target_records(found), TARGET_COLUMNS)))

    run_t.click(show_targets, inputs=[indicator, *filters.all], outputs=[t_table, t_plot, t_note, t_csv, t_xlsx],
                **PRIVATE)

    def show_compare(text: str, group: str, *menus: Any) -> tuple[Any, ...]:
        result, message = run_compare(service, text or "", group, **filters_of(*menus))
        if result is None:
            return gr.Dataframe([]), message, *_downloads(None)
        return (gr.Dataframe(compare_rows(result)), "",
                *_downloads(export("compare", compare_records(result), COMPARE_COLUMNS)))

    gr.on([run_c.click, question.submit], show_compare, inputs=[question, compare_by, *filters.all],
          outputs=[c_table, c_note, c_csv, c_xlsx], concurrency_id="answer", **PRIVATE)

    if tabs is None or reading is None:
        return
    def opened(evt: gr.SelectData) -> tuple[Any, Any]:
        row = list(evt.row_value or [])
        if ":" not in str(row[-1] if row else ""):  # a group that says 未涉及: nothing to open
            return gr.skip(), gr.skip()
        match = str(row[3]) if len(row) == len(CONCORDANCE_HEADERS) else ""
        return open_row(service, row, match), gr.Tabs(selected="docs")

    for table in (lines, t_table, c_table):
        event = table.select(opened, outputs=[reading, tabs], queue=False, show_progress="hidden", **PRIVATE)
        if scroll_js:
            event.then(None, js=scroll_js)
