"""The page's "语料分析 · Analysis" tab: a concordance and a trend table for phrases, over the
live index (`speechrag.analysis`). Tables are Gradio Dataframes of plain strings: corpus text is
never HTML here, so nothing needs escaping."""

from __future__ import annotations

from typing import Any

import gradio as gr

from speechrag.analysis import concordance, trend
from speechrag.errors import SpeechragError, one_line
from speechrag.serving import IndexService

CONCORDANCE_HEADERS = ["日期 · Date", "讲话 · Speech", "左 · Left", "词 · Match", "右 · Right", "出处 · Citation"]
MAX_ROWS = 500  # rows shown; the label gives the full count


def phrases_of(text: str) -> list[str]:
    """Phrases typed in one box, separated by spaces, commas or 、."""
    return [p for p in text.replace("，", " ").replace(",", " ").replace("、", " ").split() if p]


def analyse(service: IndexService, text: str, by: str, context: int) -> tuple[list[list[str]], str,
                                                                              list[list[str]], list[str], str]:
    """The concordance of the first phrase (rows, label) and the trend of all (rows, headers),
    and a one-line message (an error's, or "")."""
    phrases = phrases_of(text)
    if not phrases:
        return [], "输入词语 · Enter a phrase", [], ["—"], ""
    try:
        index = service.current()
        found = concordance(phrases[0], context=int(context), sort="date", index=index)
        counted = trend(phrases, by=by, index=index)
    except SpeechragError as exc:
        return [], "", [], ["—"], one_line(exc)
    rows = [[o.date, o.title, o.left, o.match, o.right, o.citation] for o in found.occurrences[:MAX_ROWS]]
    shown = f"（显示前 {MAX_ROWS} 条 · first {MAX_ROWS} shown）" if len(found) > MAX_ROWS else ""
    label = f"{found.phrase}：{len(found)} 处 · occurrences in {found.speeches} speeches{shown}"
    headers = [by, "讲话数 · speeches", "字数 · characters",
               *(f"{p}（每{counted.per:,}字 · per {counted.per:,}）" for p in counted.phrases)]
    table = [[r.group, str(r.speeches), f"{r.characters:,}",
              *(f"{n} ({rate:.2f})" for n, rate in zip(r.counts, r.rates, strict=True))] for r in counted.rows]
    firsts = "；".join(
        f"{m.phrase}: {m.total}" + (f"，首见 first {m.first.citation}，末见 last {m.last.citation}"
                                    if m.first and m.last else "")
        for m in counted.mentions)
    return rows, label, table, headers, firsts


def analysis_tab(service: IndexService) -> None:
    """The tab's parts and events (built inside a ``gr.Tab``)."""
    with gr.Row():
        phrase = gr.Textbox(label="词语 · Phrases", placeholder="新常态 高质量发展（空格分隔 · separated by spaces）",
                            scale=3, elem_id="analysis-phrase")
        by = gr.Dropdown([("年份 · year", "year"), ("地点 · place", "place"), ("讲话人 · speaker", "speaker"),
                          ("讲话 · speech", "speech")], value="year", label="分组 · Group by", scale=1,
                         elem_id="analysis-by")
        context = gr.Slider(0, 60, value=20, step=1, label="上下文字数 · Context", scale=1, elem_id="analysis-context")
    run = gr.Button("分析 · Analyse", variant="primary", elem_id="analysis-run")
    # plain text (a Textbox, not Markdown): it holds citations, which are corpus text
    note = gr.Textbox("", label="首见与末见 · First and last", interactive=False, elem_id="analysis-note")
    counted = gr.Dataframe([], headers=["—"], interactive=False, wrap=True, datatype="str",
                           label="频次 · Trend", elem_id="analysis-trend")
    lines = gr.Dataframe([], headers=CONCORDANCE_HEADERS, interactive=False, wrap=True, datatype="str",
                         max_height=420, label="索引 · Concordance", elem_id="analysis-concordance")

    def show_analysis(text: str, group: str, chars: float) -> tuple[Any, Any, str]:
        rows, label, table, headers, message = analyse(service, text, group, int(chars))
        return (gr.Dataframe(rows, headers=CONCORDANCE_HEADERS, label=label or "索引 · Concordance"),
                gr.Dataframe(table, headers=headers), message)

    for event in (run.click, phrase.submit):
        event(show_analysis, inputs=[phrase, by, context], outputs=[lines, counted, note], api_visibility="private")
