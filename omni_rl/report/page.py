"""The report's HTML: a header, the curves (inline SVG) and the rollout browser (one step at a time,
filters by environment and reward), with a small inline stylesheet and script. Everything that comes
from the run (model output, prompts, verifier details) is HTML-escaped."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from omni_rl.report.data import PromptGroup
from omni_rl.report.media import MediaWriter

MAX_TEXT = 2000  # characters of a prompt or response shown
MAX_DETAIL = 600  # characters of one verifier's details shown


@dataclass
class StepView:
    step: int
    groups: list[PromptGroup]  # the ones shown
    total_prompts: int


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def _json(value: Any, limit: int) -> str:
    return _clip(json.dumps(value, ensure_ascii=False, default=str, sort_keys=True), limit)


def media_html(group: PromptGroup, media: MediaWriter) -> str:
    out = []
    for entry in group.media:
        if not isinstance(entry, dict):
            continue
        kind = str(entry.get("type", ""))
        path = entry.get("path") if isinstance(entry.get("path"), str) else None
        written = media.add(kind, path)
        if written.href is None:
            out.append(f'<div class="media-missing">{escape(kind)}: {escape(written.error or "")}</div>')
            continue
        href = escape(written.href)
        if kind == "image":
            out.append(f'<a href="{href}"><img src="{href}" alt="prompt image" loading="lazy"></a>')
        elif kind == "audio":
            out.append(f'<audio controls preload="none" src="{href}"></audio>')
        else:
            out.append(f'<video controls muted loop playsinline preload="none" src="{href}"></video>')
    if not out:
        out.append('<div class="media-missing">no media</div>')
    return "".join(out)


def verifier_html(row: dict[str, Any]) -> str:
    scores = row.get("scores") if isinstance(row.get("scores"), dict) else {}
    details = row.get("details") if isinstance(row.get("details"), dict) else {}
    parts = []
    for key in sorted(set(scores) | set(details)):
        info = details.get(key) if isinstance(details.get(key), dict) else {}
        extracted = info.get("extracted")
        head = f"<b>{escape(str(key))}</b> {escape(_num(scores.get(key)))}"
        if extracted is not None:
            head += f" · extracted <code>{escape(_clip(str(extracted), 80))}</code>"
        if info:
            parts.append(
                f"<details><summary>{head}</summary><code>{escape(_json(info, MAX_DETAIL))}</code></details>"
            )
        else:
            parts.append(f"<div>{head}</div>")
    if row.get("error"):
        parts.append(f'<div class="error">{escape(_clip(str(row["error"]), MAX_DETAIL))}</div>')
    return "".join(parts) or "–"


def response_row(row: dict[str, Any]) -> str:
    reward = row.get("reward")
    reward_attr = f"{reward}" if isinstance(reward, int | float) and not isinstance(reward, bool) else ""
    correct = row.get("correct") is True
    adv = row.get("advantage")
    adv_class = (
        "pos"
        if isinstance(adv, float | int) and adv > 0
        else "neg"
        if isinstance(adv, float | int) and adv < 0
        else ""
    )
    return (
        f'<tr class="resp" data-reward="{escape(reward_attr)}" data-correct="{int(correct)}">'
        f'<td class="idx">{escape(str(row.get("sample_index", "")))}</td>'
        f'<td><pre class="text">{escape(_clip(row["response"], MAX_TEXT))}</pre></td>'
        f'<td class="num {"ok" if correct else ""}">{escape(_num(reward))}{" ✓" if correct else ""}</td>'
        f'<td class="num {adv_class}">{escape(_num(adv))}</td>'
        f"<td>{verifier_html(row)}</td></tr>"
    )


def prompt_html(group: PromptGroup, media: MediaWriter, max_responses: int) -> str:
    rows = group.rows[:max_responses]
    more = len(group.rows) - len(rows)
    rewards = [r["reward"] for r in group.rows if isinstance(r.get("reward"), int | float)]
    mean = sum(rewards) / len(rewards) if rewards else math.nan
    target = (
        "" if group.target is None else _clip(json.dumps(group.target, ensure_ascii=False, default=str), 200)
    )
    return (
        f'<article class="prompt" data-env="{escape(group.env)}">'
        f'<div class="media">{media_html(group, media)}</div><div class="body">'
        f'<div class="prompt-head"><span class="env">{escape(group.env)}</span> '
        f'<span class="pid">{escape(group.prompt_id)}</span> · target <code>{escape(target)}</code> · '
        f"mean reward {escape(_num(mean))} over {len(group.rows)}</div>"
        f'<pre class="text prompt-text">{escape(_clip(group.prompt, MAX_TEXT))}</pre>'
        '<table class="responses"><thead><tr><th>#</th><th>response</th><th>reward</th>'
        "<th>advantage</th><th>verifier</th></tr></thead><tbody>"
        + "".join(response_row(r) for r in rows)
        + "</tbody></table>"
        + (
            f'<div class="note">{more} more responses not shown (--responses-per-prompt)</div>'
            if more
            else ""
        )
        + "</div></article>"
    )


def step_html(view: StepView, media: MediaWriter, max_responses: int, current: bool) -> str:
    shown = len(view.groups)
    note = f"{shown} of {view.total_prompts} prompts" + (
        " (--prompts-per-step)" if shown < view.total_prompts else ""
    )
    return (
        f'<section class="step" data-step="{view.step}"{"" if current else " hidden"}>'
        f"<h3>Step {view.step} <small>{escape(note)}</small></h3>"
        + "".join(prompt_html(g, media, max_responses) for g in view.groups)
        + "</section>"
    )


def page(
    *,
    title: str,
    summary: Sequence[tuple[str, str]],
    charts: Sequence[str],
    steps: Sequence[StepView],
    envs: Sequence[str],
    media: MediaWriter,
    max_responses: int,
    notes: Sequence[str],
) -> str:
    step_options = "".join(f'<option value="{v.step}">{v.step}</option>' for v in steps)
    env_options = "".join(f'<option value="{escape(e)}">{escape(e)}</option>' for e in envs)
    sections = "".join(step_html(v, media, max_responses, i == len(steps) - 1) for i, v in enumerate(steps))
    facts = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in summary)
    rollouts = (
        '<div class="controls">'
        '<label>Step <button type="button" id="prev" title="previous step (←)">‹</button>'
        f'<select id="step-select">{step_options}</select>'
        '<button type="button" id="next" title="next step (→)">›</button></label>'
        f'<label>Environment <select id="env-filter"><option value="">all</option>{env_options}</select></label>'
        '<label>Reward <select id="reward-filter"><option value="all">all</option>'
        '<option value="pos">&gt; 0</option><option value="zero">= 0</option>'
        '<option value="correct">correct</option><option value="wrong">not correct</option></select></label>'
        '<label>min <input type="number" id="reward-min" step="0.1" size="4"></label>'
        '<span id="shown-count"></span></div>' + sections
        if steps
        else "<p>No rollout dumps in this run (logging.rollouts_every=0?).</p>"
    )
    notes_html = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><dl>{facts}</dl></header>"
        f'<section id="curves"><h2>Curves</h2><div class="charts">{"".join(charts) or "<p>No metrics.</p>"}</div>'
        "</section>"
        f'<section id="rollouts"><h2>Rollouts</h2>{rollouts}</section>'
        + (f"<footer><h2>Notes</h2><ul>{notes_html}</ul></footer>" if notes else "")
        + f"<script>{SCRIPT}</script></body></html>\n"
    )


STYLE = """
body{font:13px/1.4 system-ui,sans-serif;margin:0 18px 30px;color:#222;background:#fafafa}
h1{font-size:20px;margin:14px 0 6px}h2{font-size:16px;margin:18px 0 8px}h3{font-size:14px;margin:12px 0 6px}
h3 small{font-weight:normal;color:#666}
dl{display:flex;flex-wrap:wrap;gap:4px 18px;margin:0}dl div{display:flex;gap:6px}dt{color:#666}dd{margin:0;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:8px}
svg.chart{background:#fff;border:1px solid #ddd;border-radius:4px}
.chart-title{font-weight:600;font-size:12px}.chart-note{font-weight:normal;fill:#777;font-size:10px}
.plot-area{fill:none;stroke:#ccc}.grid{stroke:#eee}.axis{stroke:#999}.tick{font-size:10px;fill:#555}
.legend{font-size:10px;fill:#333}.legend-box{fill:#fff;fill-opacity:.8}
.controls{display:flex;flex-wrap:wrap;gap:14px;align-items:center;padding:8px;background:#fff;border:1px solid #ddd;
border-radius:4px;position:sticky;top:0;z-index:1}
.controls button{padding:0 8px}#shown-count{color:#666}
article.prompt{display:flex;gap:12px;background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px;margin:8px 0}
.media{flex:0 0 260px;display:flex;flex-direction:column;gap:6px}
.media img{max-width:256px;image-rendering:pixelated;min-width:128px;border:1px solid #ccc}
.media video{width:256px;background:#000}.media audio{width:256px}
.media-missing,.note{color:#888;font-style:italic}.body{flex:1;min-width:0}
.prompt-head{margin-bottom:4px}.env{background:#e8eefc;padding:1px 6px;border-radius:3px}.pid{color:#666}
pre.text{white-space:pre-wrap;word-break:break-word;margin:0;font:12px/1.35 ui-monospace,monospace}
.prompt-text{background:#f4f4f4;padding:4px 6px;border-radius:3px;margin-bottom:6px}
table.responses{border-collapse:collapse;width:100%}
.responses th,.responses td{border-top:1px solid #eee;padding:2px 6px;text-align:left;vertical-align:top}
.responses th{color:#666;font-weight:normal}.responses td:nth-child(2){width:45%}
.responses summary{white-space:nowrap}.num{text-align:right;white-space:nowrap}
.ok{color:#1a7f37;font-weight:600}.pos{color:#1a7f37}.neg{color:#b42318}.idx{color:#999}
.error{color:#b42318}details summary{cursor:pointer}details>code{display:block;white-space:pre-wrap;word-break:break-all}
[hidden]{display:none!important}
"""

SCRIPT = """
(function () {
  var steps = Array.prototype.slice.call(document.querySelectorAll('section.step'));
  var select = document.getElementById('step-select');
  if (!select || !steps.length) { return; }
  var envFilter = document.getElementById('env-filter');
  var rewardFilter = document.getElementById('reward-filter');
  var rewardMin = document.getElementById('reward-min');
  var count = document.getElementById('shown-count');
  function keep(row, env) {
    if (env && row.closest('article').dataset.env !== env) { return false; }
    var r = parseFloat(row.dataset.reward), correct = row.dataset.correct === '1';
    var mode = rewardFilter.value;
    if (mode === 'pos' && !(r > 0)) { return false; }
    if (mode === 'zero' && r !== 0) { return false; }
    if (mode === 'correct' && !correct) { return false; }
    if (mode === 'wrong' && correct) { return false; }
    var min = parseFloat(rewardMin.value);
    return isNaN(min) || r >= min;
  }
  function apply() {
    var section = steps[select.selectedIndex], shown = 0, total = 0;
    section.querySelectorAll('article.prompt').forEach(function (card) {
      var any = false;
      card.querySelectorAll('tr.resp').forEach(function (row) {
        var ok = keep(row, envFilter.value);
        row.hidden = !ok; total += 1;
        if (ok) { any = true; shown += 1; }
      });
      card.hidden = !any;
    });
    count.textContent = shown + ' of ' + total + ' responses shown';
  }
  function remember() {  // the view in the address (#step=..&env=..&reward=..&min=..), to share or reload
    var q = new URLSearchParams({step: select.value, env: envFilter.value, reward: rewardFilter.value,
      min: rewardMin.value});
    history.replaceState(null, '', '#' + q.toString());
  }
  function show(index) {
    index = Math.max(0, Math.min(steps.length - 1, index));
    steps.forEach(function (section, i) { section.hidden = i !== index; });
    select.selectedIndex = index;
    steps[index].querySelectorAll('video').forEach(function (v) { v.preload = 'metadata'; });
    apply();
  }
  function go(index) { show(index); remember(); }
  select.addEventListener('change', function () { go(select.selectedIndex); });
  document.getElementById('prev').addEventListener('click', function () { go(select.selectedIndex - 1); });
  document.getElementById('next').addEventListener('click', function () { go(select.selectedIndex + 1); });
  [envFilter, rewardFilter].forEach(function (el) { el.addEventListener('change', function () { apply(); remember(); }); });
  rewardMin.addEventListener('input', function () { apply(); remember(); });
  document.addEventListener('keydown', function (e) {
    if (e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT') { return; }
    if (e.key === 'ArrowLeft') { go(select.selectedIndex - 1); }
    if (e.key === 'ArrowRight') { go(select.selectedIndex + 1); }
  });
  var wanted = new URLSearchParams(location.hash.slice(1));
  function pick(el, value) {  // only a value the page offers
    if (value !== null && Array.prototype.some.call(el.options, function (o) { return o.value === value; })) {
      el.value = value;
    }
  }
  pick(envFilter, wanted.get('env'));
  pick(rewardFilter, wanted.get('reward'));
  if (wanted.get('min')) { rewardMin.value = wanted.get('min'); }
  var start = steps.map(function (s) { return s.dataset.step; }).indexOf(wanted.get('step'));
  show(start >= 0 ? start : steps.length - 1);
})();
"""
