"""How the page looks and what runs in the browser: the theme (system fonts only), the CSS, and
the scripts the page loads (`PAGE_JS`) or events run (`SCROLL_JS`, `RETURN_JS`)."""

from __future__ import annotations

import gradio as gr

from speechrag.ui.handlers import MAX_OUTBOX

THEME = gr.themes.Default(
    # System fonts only: nothing is fetched from a font CDN.
    font=["Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "ui-sans-serif", "sans-serif"],
    font_mono=["Noto Sans Mono CJK SC", "ui-monospace", "monospace"],
).set(
    # The default orange (#f97316) and grey hints (#bbbbc2) read at 1.8-2.8:1 on white (axe-core
    # "color-contrast"); orange-700 and grey-600 reach 5:1 and more, WCAG AA's 4.5:1.
    color_accent="#c2410c",
    color_accent_soft="#ffedd5",
    button_primary_background_fill="#c2410c",
    button_primary_background_fill_hover="#9a3412",
    button_primary_text_color="#ffffff",
    button_cancel_background_fill="#b91c1c",  # Stop and Remove: red-700, 6.5:1 under white text
    button_cancel_background_fill_hover="#991b1b",
    button_cancel_text_color="#ffffff",
    body_text_color_subdued="#4b5563",
    input_placeholder_color="#6b7280",
    block_info_text_color="#4b5563",
    block_label_text_color="#374151",
)

CSS = """
#sources .src-card { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 8px 12px; margin-bottom: 10px; background: var(--background-fill-secondary); }
#sources h2 { margin: 0 0 8px 0; font-size: 1rem; }
#sources .src-head { font-weight: 600; margin-bottom: 4px; }
#sources .src-n { color: var(--color-accent); margin-right: 6px; }
#sources .src-text { line-height: 1.75; margin: 4px 0; white-space: pre-wrap; }
#sources mark { background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 2px; }
#sources .src-also, #sources .src-empty { color: var(--body-text-color-subdued); font-size: 0.9em; }
#sources .src-card[data-cite] { cursor: pointer; }
#sources .src-card[data-cite]:hover, #sources .src-card[data-cite]:focus { border-color: var(--color-accent); }
#chat a[href^="#cite-"] { text-decoration: none; font-weight: 600; }
#scope .chips { display: flex; flex-wrap: wrap; gap: 6px; }
#scope .chip { border: 1px solid var(--border-color-primary); border-radius: 999px; padding: 1px 10px;
  font-size: 0.85em; background: var(--background-fill-secondary); }
#scope .chip-k { color: var(--body-text-color-subdued); }
#counter { text-align: right; font-size: 0.85em; }
#examples .ex-h { font-size: 0.95rem; margin: 8px 0 4px; }
#examples .ex-list { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 6px; }
#examples .ex-q { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 4px 10px;
  background: var(--background-fill-secondary); color: var(--body-text-color); cursor: pointer; min-height: 24px;
  text-align: left; font: inherit; }
#examples .ex-q:hover, #examples .ex-q:focus-visible { border-color: var(--color-accent); }
/* The chips take the row, the counter (empty until the box nears the limit) what it needs: on a
   phone they would otherwise get half the width each (gr.HTML ignores scale). */
#scope { flex: 4 1 0 !important; }
#counter { flex: 1 1 0 !important; min-width: 80px !important; }
#counter .over { color: #b91c1c; font-weight: 600; }
#upload-result { min-height: 4em; }  /* room for the build's progress bar */
#reading .rv { max-width: 46em; margin: 0 auto; line-height: 1.9; }
/* The reading view's bar stays at the top of the window while the speech scrolls under it.
   Gradio's container has overflow: hidden, which makes it the bar's scroll box (one that never
   scrolls), so sticky never sticks; clip cuts off the same overflow without being one. */
.gradio-container { overflow: clip !important; }
#reading .rv-bar { position: sticky; top: 0; z-index: 5; display: flex; align-items: center; gap: 12px;
  padding: 6px 0; background: var(--background-fill-primary); border-bottom: 1px solid var(--border-color-primary); }
#reading .rv-back { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 2px 10px;
  min-height: 24px; background: var(--background-fill-secondary); color: var(--body-text-color); cursor: pointer;
  white-space: nowrap; font: inherit; }
#reading .rv-back:focus-visible, #reading .rv-target:focus-visible { outline: 2px solid #c2410c; outline-offset: 2px; }
#reading .rv-bar-title { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#reading .rv-title { margin-bottom: 4px; }
#reading .rv-meta, #reading .rv-source { color: var(--body-text-color-subdued); font-size: 0.9em; }
#reading .rv-section { margin: 1.2em 0 0.4em; font-size: 1.05rem; }
#reading .rv-p { margin: 0.5em 0; white-space: pre-wrap; scroll-margin-top: 30vh; }
#reading .rv-n { color: var(--body-text-color-subdued); font-size: 0.8em; margin-right: 8px; }
#reading .rv-target { background: var(--background-fill-secondary); border-left: 3px solid var(--color-accent);
  padding-left: 8px; }
#reading mark { background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 2px; }
/* A phone (one column): the two columns would stack, the sources under the examples, far from
   the answers. Their parts become one list instead, the sources right under the question box,
   then the examples, then the settings. */
@media (max-width: 640px) {
  #chat-main, #chat-side { display: contents !important; }
  #chat-row > * { flex: 1 1 100% !important; min-width: 0 !important; }
  #examples { order: 1; }
  #settings { order: 2; }
  #conversations { order: 3; }
  /* the three tabs' names fit a phone's width, so none hides behind Gradio's overflow menu */
  #tabs .tab-container button { padding: 0 4px !important; font-size: 12px !important; }
}
/* Targets of at least 24 px (WCAG 2.5.8) and a visible focus ring on the slider. */
#copy, #settings button, #chat button, #export-row button { min-height: 24px; min-width: 24px; }
#sign-out { white-space: nowrap; align-self: flex-start; }
input[type=range]:focus-visible { outline: 2px solid #c2410c; outline-offset: 3px; }
"""

# Runs once in the page: a click (or Enter) on an answer's [n] link or on a source card opens
# the cited passage in the reading view, through the hidden #open-btn (its event reads
# window.speechragTarget); and "Copy with sources" copies the plain text kept in the panel.
PAGE_JS = """
() => {
  const MAX_OUTBOX = __MAX_OUTBOX__;
  // Patches for what Gradio 6's components leave out. Each depends on Gradio's markup (class
  // names, aria-label wording), so each has a browser test that fails when an upgrade breaks it.
  // (<html lang="zh-CN"> is written by the server: `server.localise_html`.)
  // Run once per frame whenever Gradio redraws (it re-renders these elements and drops our edits).
  const mend = () => {
    // Gradio names each radio apart, so each is its own group and arrow keys cannot move between
    // the three modes (test_keyboard_only_...: ArrowRight picks Dense).
    document.querySelectorAll("#mode input[type=radio]").forEach((r) => { r.name = "speechrag-mode"; });
    // Accordion headers carry no aria-expanded: a screen reader cannot tell Settings is open
    // (test_keyboard_only_...: aria-expanded is "true").
    document.querySelectorAll("button.label-wrap").forEach((b) =>
      b.setAttribute("aria-expanded", b.classList.contains("open") ? "true" : "false"));
    // A chat message is labelled with its markdown source: a screen reader hears the escapes
    // (123\\.58) and the link syntax of [n] (test_citation_opens_...: the label is the text shown).
    document.querySelectorAll('#chat [aria-label$="message"], #chat [aria-label*="message: "]').forEach((m) => {
      const who = m.getAttribute("aria-label").split(": ")[0];
      const label = `${who}: ${m.innerText.trim()}`;
      if (m.getAttribute("aria-label") !== label) m.setAttribute("aria-label", label);
    });
    // The drop zone's label does not contain the words it shows, so voice control cannot name
    // it (axe label-content-name-mismatch, enabled in the upload test's audit).
    document.querySelectorAll("#upload button.upload-container").forEach((z) => {
      const label = `${z.innerText.replace(/\\s+/g, " ").trim()}（拖入或选择讲话稿文件）`;
      if (z.getAttribute("aria-label") !== label) z.setAttribute("aria-label", label);
    });
  };
  let queued = false;
  const soon = () => { if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; mend(); }); } };
  mend();
  new MutationObserver(soon).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["class"]});
  // The outbox (see TAKE_JS); a click on an example question sends it as if typed.
  window.speechragTake = (q) => {
    const box = (window.speechragOutbox = window.speechragOutbox || []);
    window.speechragSent = (window.speechragSent || 0) + 1;
    box.push([`${Date.now().toString(36)}-${window.speechragSent}-${Math.random().toString(36).slice(2, 8)}`, q]);
    box.splice(0, Math.max(0, box.length - MAX_OUTBOX));
  };
  // The question box is read the moment Enter goes down (or Send is clicked), not when the send
  // event's script runs: Gradio fires `submit` after awaiting a render tick, and under load a
  // second question typed by then replaced the first in the box, which was lost (CI: 1 time in 10
  // at 0 ms apart). Emptied at once, so the event's own read (TAKE_JS) finds nothing to take twice.
  window.speechragTakeBox = () => {
    const area = document.querySelector("#question textarea");
    const text = area ? area.value : "";
    if (!text.trim()) return;
    window.speechragTake(text);
    area.value = ""; area.dispatchEvent(new Event("input", {bubbles: true}));
  };
  document.addEventListener("keydown", (e) => {
    // Not while an input method composes (Enter there picks the characters) nor Shift+Enter.
    if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.keyCode === 229) return;
    if (e.target.closest && e.target.closest("#question textarea")) window.speechragTakeBox();
  }, true);
  document.addEventListener("click", (e) => {
    const send = e.target.closest && e.target.closest("#send");
    if (send && !send.disabled) window.speechragTakeBox();
  }, true);
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#reading .rv-back")) document.querySelector("#back")?.click();
  });
  document.addEventListener("click", (e) => {
    const example = e.target.closest && e.target.closest("[data-ask]");
    if (!example) return;
    window.speechragTake(example.dataset.ask);
    document.querySelector("#example-btn")?.click();
  });
  const open = (key) => {
    window.speechragTarget = key;
    window.speechragFrom = key;  // where the focus goes back to (RETURN_JS)
    document.querySelector("#open-btn")?.click();
  };
  const target = (e) => {
    const link = e.target.closest && e.target.closest('a[href^="#cite-"]');
    if (link) return link.getAttribute("href").slice("#cite-".length);
    const card = e.target.closest && e.target.closest("[data-cite]");
    return card ? card.dataset.cite : null;
  };
  document.addEventListener("click", (e) => {
    const key = target(e);
    if (key) { e.preventDefault(); e.stopPropagation(); open(key); }
  }, true);
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" && e.key !== " ") return;
    const card = e.target.closest && e.target.closest("[data-cite]");
    if (card) { e.preventDefault(); open(card.dataset.cite); }
  }, true);
  // Export: /export (relative, so it works under a proxy's prefix) names this page's
  // conversation by its session; "this answer" is the one whose sources the panel shows.
  window.speechragExport = (fmt, one) => {
    const session = window.__gradio_session_hash__;
    if (!session) return;
    let url = `export?session=${encodeURIComponent(session)}&format=${fmt}`;
    if (one) {
      const card = document.querySelector("#sources [data-cite]");
      if (!card) return;
      url += `&answer=${card.dataset.cite.split("-")[0]}`;
    }
    const a = document.createElement("a");
    a.href = url; a.download = ""; document.body.appendChild(a); a.click(); a.remove();
  };
  window.speechragCopy = () => {
    const text = document.querySelector("#sources .src-plain")?.textContent || "";
    if (!text) return;
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text); return; }
    const area = document.createElement("textarea");  // plain http: the old way
    area.value = text; document.body.appendChild(area); area.select();
    document.execCommand("copy"); area.remove();
  };
}
""".replace("__MAX_OUTBOX__", str(MAX_OUTBOX))

# After the reading view changes: bring the cited paragraph (else the top) into view, and move
# the focus there, so a keyboard or screen reader user lands on what was cited.
SCROLL_JS = """
() => setTimeout(() => {
  const el = document.querySelector("#reading .rv-target") || document.querySelector("#reading");
  el?.scrollIntoView({block: el.classList.contains("rv-target") ? "center" : "start"});
  if (el?.classList.contains("rv-target")) el.focus({preventScroll: true});
}, 150)
"""

# Back in the chat: the focus returns to the [n] (or the source card) the reading began from.
RETURN_JS = """
() => setTimeout(() => {
  const key = window.speechragFrom;
  if (!key) return;
  const el = document.querySelector(`#chat a[href="#cite-${key}"]`)
    || document.querySelector(`#sources [data-cite="${key}"]`);
  el?.scrollIntoView({block: "center"});
  el?.focus({preventScroll: true});
}, 150)
"""
