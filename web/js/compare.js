// The compare view: one metric of several runs overlaid, with α and momentum
// as step lines below it on the same x range, and each run's nudges as
// markers in its color. The URL holds the whole selection, so it can be shared:
//   #/compare?runs=3,5:12&metric=train/loss&align=step&y=log&smooth=0.6
// (`5:12` is run 5's line ending in branch 12 instead of its current line.)

import { api, openStream } from "./api.js";
import { ChartGroup, PALETTE, StepChart } from "./charts.js";
import {
  badge, el, formatStep, formatTime, formatValue, paramLabel,
} from "./format.js";
import { chartIdFor, compareKeys, headlineLossKey } from "./lines.js";
import { nudgeMarkers } from "./nudges.js";
import { smoothEma } from "./trends.js";
import { readView, stepRange, xAtStep } from "./views.js";

const REFRESH_MS = 1_500; // at most one refetch of a run this often while it logs
const ALIGNS = ["step", "time", "elapsed"];
const ALIGN_LABELS = { step: "Step", time: "Wall clock", elapsed: "Since start" };

/** The selection a compare URL holds; unknown or missing parts get defaults. */
export function parseCompareQuery(hash) {
  const query = new URLSearchParams((hash || "").split("?")[1] || "");
  const seen = new Set();
  const runs = [];
  for (const part of (query.get("runs") || "").split(",")) {
    const match = /^\s*(\d+)(?::(\d+))?\s*$/.exec(part);
    if (!match || seen.has(Number(match[1])) || Number(match[1]) < 1) continue;
    seen.add(Number(match[1]));
    runs.push({ id: Number(match[1]), branch: match[2] ? Number(match[2]) : null });
  }
  const smooth = Number(query.get("smooth"));
  return {
    runs,
    metric: query.get("metric") || null,
    align: ALIGNS.includes(query.get("align")) ? query.get("align") : "step",
    y: query.get("y") === "log" ? "log" : "linear",
    smooth: Number.isFinite(smooth) ? Math.min(0.99, Math.max(0, smooth)) : 0,
  };
}

/** The URL of a selection; readable: slashes, commas and colons stay as they are. */
export function compareHash(state) {
  const keep = (text) => encodeURIComponent(text).replace(/%2F/g, "/").replace(/%3A/g, ":").replace(/%2C/g, ",");
  const runs = state.runs.map((run) => (run.branch ? `${run.id}:${run.branch}` : `${run.id}`)).join(",");
  const parts = [`runs=${runs}`];
  if (state.metric) parts.push(`metric=${keep(state.metric)}`);
  parts.push(`align=${state.align}`, `y=${state.y}`, `smooth=${state.smooth}`);
  return `#/compare?${parts.join("&")}`;
}

/** Run ids of a compare URL, in order (kept for links built elsewhere). */
export function compareRunIds(hash) {
  return parseCompareQuery(hash).runs.map((run) => run.id);
}

/** The key a run logs α (or momentum) under: the exact name first. */
function paramKey(keys, chartId) {
  if (keys.includes(chartId)) return chartId;
  return keys.filter((key) => chartIdFor(key) === chartId).sort(compareKeys)[0] || null;
}

/** x values of a view under an alignment, sorted, with their steps and values. */
function alignView(view, align, origin) {
  if (align === "step") return { xs: view.steps, steps: view.steps, values: view.values };
  const rows = [];
  for (let i = 0; i < view.steps.length; i++) {
    const time = view.times[i];
    if (time === null || time === undefined) continue;
    rows.push([align === "time" ? time : time - origin, view.steps[i], view.values[i]]);
  }
  rows.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  // uPlot needs strictly growing x: points logged in the same instant keep the first.
  const kept = rows.filter((row, i) => i === 0 || row[0] > rows[i - 1][0]);
  return { xs: kept.map((row) => row[0]), steps: kept.map((row) => row[1]), values: kept.map((row) => row[2]) };
}

function segmented(name, options, current, onPick) {
  return el("div", { class: "segmented", role: "group", "aria-label": name, id: `compare-${name}` },
    options.map(([value, label]) => el("button", {
      type: "button", class: value === current ? "active" : null, id: `${name}-${value}`,
      "aria-pressed": String(value === current), dataset: { value },
      onclick: () => onPick(value),
    }, label)));
}

export class ComparePage {
  constructor(container, hash, { setLive }) {
    this.state = parseCompareQuery(hash);
    this.setLive = setLive;
    this.allRuns = new Map(); // id -> RunOut, for the picker
    this.entries = new Map(); // id -> loaded data of a chosen run
    this.timers = new Map();
    this.filter = "";
    this.closed = false;
    this.zoomSeq = 0;
    this.pinned = null;

    this.group = new ChartGroup({ onZoom: (range) => this.onZoom(range) });
    const onMarker = (marker, node, kind) => this.onMarker(marker, node, kind);
    this.metricChart = new StepChart("Metric", { id: "compare-chart-metric", height: 320, group: this.group,
      onMarker, emptyText: "Pick runs on the left to overlay their curves." });
    this.metricChart.root.dataset.chart = "metric";
    this.lrChart = new StepChart("Learning rate α", { id: "compare-chart-lr", height: 140, stepped: true,
      group: this.group, onMarker, emptyText: "No α logged." });
    this.lrChart.root.dataset.chart = "lr";
    this.momentumChart = new StepChart("Momentum", { id: "compare-chart-momentum", height: 140, stepped: true,
      yRange: [0, 1], group: this.group, onMarker, emptyText: "No momentum logged." });
    this.momentumChart.root.dataset.chart = "momentum";
    this.charts = [this.metricChart, this.lrChart, this.momentumChart];

    this.controls = el("div", { class: "compare-controls card", id: "compare-controls" });
    this.picker = el("div", { class: "run-picker", id: "compare-picker", "data-testid": "run-picker" });
    this.pickerFilter = el("input", { type: "search", class: "picker-filter", placeholder: "Filter runs",
      "aria-label": "filter runs", oninput: (event) => { this.filter = event.target.value; this.renderPicker(); } });
    this.tip = el("div", { class: "nudge-tip", id: "nudge-tip", "data-testid": "nudge-tip", hidden: true,
      role: "tooltip" });
    this.summary = el("p", { class: "muted compare-summary", id: "compare-summary" });

    this.root = el("div", { class: "page compare-page", "data-testid": "compare-page" },
      el("nav", { class: "crumbs" }, el("a", { href: "#/" }, "Runs"), " / Compare"),
      el("header", { class: "page-header" }, el("h1", {}, "Compare runs"), this.summary),
      this.controls,
      el("div", { class: "compare-layout" },
        el("aside", { class: "card picker-card" }, el("h2", {}, "Runs"), this.pickerFilter, this.picker),
        el("div", { class: "compare-charts" }, ...this.charts.map((chart) => chart.root),
          el("p", { class: "hint" },
            "Drag across a chart to zoom all three (finer points are fetched for the visible steps); " +
            "double-click to zoom out. Dashed verticals are applied nudges: hover or click one for details."))),
      this.tip);
    this.onDocumentClick = (event) => {
      if (this.pinned && !this.tip.contains(event.target)) this.hideTip(true);
    };
    document.addEventListener("click", this.onDocumentClick);
    container.replaceChildren(this.root);
    this.renderControls();
  }

  async start() {
    document.title = "Compare · panda";
    this.closeStream = openStream("api/stream", { run: (run) => this.onRunEvent(run) },
      { onState: this.setLive, onReopen: () => this.reloadAll() });
    await this.reloadAll();
  }

  async reloadAll() {
    try {
      const runs = await api.listRuns();
      if (this.closed) return;
      for (const run of runs) this.allRuns.set(run.id, run);
    } catch (error) {
      this.picker.replaceChildren(el("p", { class: "form-error" }, `Could not list runs: ${error.detail || error.message}`));
    }
    this.renderPicker();
    await Promise.all(this.state.runs.map((choice) => this.loadRun(choice)));
    await this.loadViews();
  }

  // -- the selection, kept in the URL ------------------------------------------

  setState(changes) {
    Object.assign(this.state, changes);
    history.replaceState(null, "", compareHash(this.state));
    this.renderControls();
  }

  colorOf(runId) {
    const index = this.state.runs.findIndex((choice) => choice.id === runId);
    return PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
  }

  async toggleRun(runId, on) {
    const runs = this.state.runs.filter((choice) => choice.id !== runId);
    if (on) runs.push({ id: runId, branch: null });
    else this.entries.delete(runId);
    this.setState({ runs });
    this.renderPicker();
    if (on) {
      await this.loadRun({ id: runId, branch: null });
      await this.loadViews([runId]);
    } else {
      this.render();
    }
  }

  async chooseBranch(runId, branch) {
    const choice = this.state.runs.find((item) => item.id === runId);
    if (!choice) return;
    choice.branch = branch;
    this.setState({ runs: this.state.runs });
    await this.loadViews([runId]);
  }

  async chooseMetric(metric) {
    this.setState({ metric });
    this.resetZoom();
    await this.loadViews();
  }

  chooseAlign(align) {
    this.setState({ align });
    this.resetZoom();
    for (const chart of this.charts) chart.setXKind(align);
    this.render();
  }

  chooseY(y) {
    this.setState({ y });
    this.render();
  }

  chooseSmooth(smooth, commit) {
    this.state.smooth = smooth;
    this.smoothValue.textContent = smooth ? smooth.toFixed(2) : "off";
    if (commit) this.setState({ smooth });
    this.render();
  }

  resetZoom() {
    this.zoomSeq += 1;
    for (const entry of this.entries.values()) entry.detail = null;
    for (const chart of this.charts) chart.applyRange(null);
  }

  // -- loading -----------------------------------------------------------------

  /** A run's description, keys, nudges and branches; its views come after. */
  async loadRun(choice) {
    try {
      const [run, keys, nudges, branches] = await Promise.all([
        api.getRun(choice.id), api.listMetricKeys(choice.id), api.listNudges(choice.id),
        api.listBranches(choice.id)]);
      if (this.closed) return;
      this.allRuns.set(run.id, run);
      const known = this.entries.get(choice.id);
      this.entries.set(choice.id, { id: choice.id, run, keys, nudges, branches,
        views: known ? known.views : {}, detail: known ? known.detail : null });
    } catch (error) {
      if (this.closed) return;
      this.entries.set(choice.id, { id: choice.id, run: { id: choice.id, name: `run ${choice.id}` },
        keys: [], nudges: [], branches: [], views: {}, detail: null, error: error.detail || error.message });
    }
  }

  /** Every key the chosen runs logged, for the metric picker. */
  get unionKeys() {
    const keys = new Set();
    for (const entry of this.entries.values()) for (const key of entry.keys) keys.add(key);
    return [...keys].sort(compareKeys);
  }

  /** The metric, α and momentum views of the given runs (all by default), then a redraw. */
  async loadViews(runIds = null) {
    const keys = this.unionKeys;
    if (!this.state.metric || (keys.length && !keys.includes(this.state.metric))) {
      const metric = headlineLossKey(keys) || keys[0] || null;
      if (metric !== this.state.metric) this.setState({ metric });
    }
    this.renderControls();
    const ids = runIds || this.state.runs.map((choice) => choice.id);
    await Promise.all(ids.map((id) => this.loadEntryViews(id)));
    if (this.closed) return;
    this.render();
    if (this.group.range) this.onZoom(this.group.range);
  }

  viewKeys(entry) {
    const metric = this.state.metric;
    return {
      metric: metric && entry.keys.includes(metric) ? metric : null,
      lr: paramKey(entry.keys, "lr"),
      momentum: paramKey(entry.keys, "momentum"),
    };
  }

  choiceOf(runId) {
    return this.state.runs.find((choice) => choice.id === runId) || { id: runId, branch: null };
  }

  async readViews(entry, range = null) {
    const choice = this.choiceOf(entry.id);
    const wanted = this.viewKeys(entry);
    const views = {};
    await Promise.all(Object.entries(wanted).map(async ([slot, key]) => {
      if (!key) return;
      const chart = slot === "metric" ? this.metricChart : this.lrChart;
      views[slot] = await readView(entry.id, key, {
        branch: choice.branch, branches: entry.branches, maxPoints: chart.viewPoints,
        minStep: range ? range.min : null, maxStep: range ? range.max : null });
      views[slot].key = key;
    }));
    return views;
  }

  async loadEntryViews(runId) {
    const entry = this.entries.get(runId);
    if (!entry || entry.error) return;
    try {
      const views = await this.readViews(entry);
      if (this.closed) return;
      entry.views = views;
      // Since start counts from the run's first logged time on the line.
      const firsts = Object.values(views).map((view) => view.times.find((t) => t !== null)).filter((t) => t);
      entry.origin = firsts.length ? Math.min(...firsts) : null;
    } catch (error) {
      entry.error = error.detail || error.message;
    }
  }

  /** A zoom (or its reset) of the charts: fetch each run's visible steps at full detail. */
  async onZoom(range) {
    const seq = ++this.zoomSeq;
    if (range === null) {
      for (const entry of this.entries.values()) entry.detail = null;
      this.render();
      return;
    }
    const jobs = [...this.entries.values()].filter((entry) => !entry.error).map(async (entry) => {
      const base = this.aligned(entry, "metric", false) || this.aligned(entry, "lr", false);
      const steps = base && stepRange(base.xs, base.steps, range);
      if (!steps) return [entry, null];
      return [entry, { range, steps, views: await this.readViews(entry, steps) }];
    });
    const found = await Promise.all(jobs);
    if (this.closed || seq !== this.zoomSeq) return; // a newer zoom or reset won
    for (const [entry, detail] of found) entry.detail = detail;
    this.render();
  }

  onRunEvent(run) {
    this.allRuns.set(run.id, run);
    if (!this.state.runs.some((choice) => choice.id === run.id)) {
      this.renderPicker();
      return;
    }
    const entry = this.entries.get(run.id);
    if (entry) entry.run = run;
    if (this.timers.has(run.id)) return;
    this.timers.set(run.id, setTimeout(async () => {
      this.timers.delete(run.id);
      if (this.closed) return;
      await this.loadRun(this.choiceOf(run.id));
      await this.loadViews([run.id]);
    }, REFRESH_MS));
  }

  // -- drawing -----------------------------------------------------------------

  /** A run's view in `slot` under the current alignment (detail while zoomed). */
  aligned(entry, slot, detail = true) {
    const view = (detail && entry.detail?.views?.[slot]) || entry.views[slot];
    if (!view) return null;
    return alignView(view, this.state.align, entry.origin ?? 0);
  }

  chosenEntries() {
    return this.state.runs.map((choice) => this.entries.get(choice.id)).filter(Boolean);
  }

  render() {
    if (this.closed) return;
    const entries = this.chosenEntries();
    const metric = this.state.metric;
    const smooth = this.state.smooth;
    const metricLines = [];
    const lrLines = [];
    const momentumLines = [];
    for (const entry of entries) {
      if (entry.error) continue;
      const color = this.colorOf(entry.id);
      const name = `#${entry.id} ${entry.run.name || ""}`.trim();
      const main = this.aligned(entry, "metric");
      if (main) {
        if (smooth > 0) {
          metricLines.push({ label: `${name} raw`, color, steps: main.xs, values: main.values, raw: true });
          metricLines.push({ label: name, color, steps: main.xs, values: smoothEma(main.values, smooth) });
        } else {
          metricLines.push({ label: name, color, steps: main.xs, values: main.values });
        }
      }
      const lr = this.aligned(entry, "lr");
      if (lr) lrLines.push({ label: name, color, steps: lr.xs, values: lr.values });
      const momentum = this.aligned(entry, "momentum");
      if (momentum) momentumLines.push({ label: name, color, steps: momentum.xs, values: momentum.values });
    }
    this.metricChart.setTitle(metric ? `${metric}${smooth > 0 ? ` · smoothed ${smooth}` : ""}` : "Metric");
    this.metricChart.setLog(this.state.y === "log");
    for (const chart of this.charts) chart.setXKind(this.state.align);
    // One x range for the three charts, so that a step sits at the same place on each.
    let min = Infinity;
    let max = -Infinity;
    for (const line of [...metricLines, ...lrLines, ...momentumLines]) {
      if (!line.steps.length) continue;
      min = Math.min(min, line.steps[0]);
      max = Math.max(max, line.steps[line.steps.length - 1]);
    }
    for (const chart of this.charts) chart.setXExtent(min < max ? { min, max } : null);
    this.metricChart.setLines(metricLines);
    this.lrChart.setLines(lrLines);
    this.momentumChart.setLines(momentumLines);
    this.lrChart.root.hidden = lrLines.length === 0 && entries.length > 0;
    this.momentumChart.root.hidden = momentumLines.length === 0 && entries.length > 0;
    const markers = entries.flatMap((entry) => this.markersOf(entry));
    this.metricChart.setMarkers(markers);
    // The small charts keep the lines without labels, which would cover their step lines.
    const unlabelled = markers.map((marker) => ({ ...marker, short: null }));
    this.lrChart.setMarkers(unlabelled);
    this.momentumChart.setMarkers(unlabelled);
    const totals = entries.map((entry) => entry.views.metric?.total || 0);
    this.metricChart.root.dataset.total = String(totals.reduce((a, b) => a + b, 0));
    for (const chart of this.charts) chart.root.dataset.detail = entries.some((e) => e.detail) ? "zoomed" : "overview";
    this.summary.textContent = entries.length
      ? `${entries.length} run${entries.length === 1 ? "" : "s"} · ${metric || "no metric"} by ` +
        `${ALIGN_LABELS[this.state.align].toLowerCase()}`
      : "";
    this.renderPicker();
  }

  /** Applied nudges of a run as markers at their x under the current alignment. */
  markersOf(entry) {
    const undos = entry.nudges.filter((nudge) => nudge.action === "undo" && nudge.status === "applied");
    const undoneBy = new Map(undos.map((undo) => [undo.undoes, undo]));
    const byId = new Map(entry.nudges.map((nudge) => [nudge.id, nudge]));
    const base = this.aligned(entry, "metric", false) || this.aligned(entry, "lr", false);
    const color = this.colorOf(entry.id);
    return nudgeMarkers(entry.nudges, undoneBy).map((marker) => {
      const nudge = byId.get(marker.id);
      let x = base ? xAtStep(base.steps, base.xs, marker.step) : null;
      if (x === null && this.state.align === "step") x = marker.step;
      if (x === null && nudge.applied_at) {
        const seconds = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(nudge.applied_at)
          ? nudge.applied_at : `${nudge.applied_at}Z`) / 1000;
        x = this.state.align === "time" ? seconds : seconds - (entry.origin ?? seconds);
      }
      return { ...marker, x, color, run: entry.id, title: null,
        short: `#${entry.id} ${marker.short}`, nudge, undone: undoneBy.get(marker.id) };
    }).filter((marker) => marker.x !== null);
  }

  // -- nudge details -----------------------------------------------------------

  onMarker(marker, node, kind) {
    if (kind === "click") {
      this.pinned = this.pinned && this.pinned.id === marker.id && this.pinned.run === marker.run ? null : marker;
      if (this.pinned) this.showTip(marker, node);
      else this.hideTip(true);
    } else if (kind === "enter" && !this.pinned) {
      this.showTip(marker, node);
    } else if (kind === "leave" && !this.pinned) {
      this.hideTip();
    }
  }

  showTip(marker, node) {
    const nudge = marker.nudge;
    const entry = this.entries.get(marker.run);
    const byId = new Map(entry.nudges.map((item) => [item.id, item]));
    let change;
    if (nudge.action === "undo") {
      const target = byId.get(nudge.undoes);
      change = target
        ? [`undo #${nudge.undoes}: `, paramLabel(target.param), " ", formatValue(target.value), " → ",
          el("strong", {}, formatValue(target.old_value))]
        : [`undo #${nudge.undoes}`];
    } else {
      change = [paramLabel(nudge.param), " ", el("span", { class: "num" }, formatValue(nudge.old_value)),
        " → ", el("strong", { class: "num" }, formatValue(nudge.value))];
    }
    const row = (label, ...value) => el("div", { class: "tip-row" }, el("span", { class: "muted" }, label), el("span", {}, ...value));
    this.tip.replaceChildren(...[
      el("div", { class: "tip-head" },
        el("span", { class: "swatch", style: `background:${marker.color}` }),
        el("strong", {}, entry.run.name || `run ${entry.id}`), el("span", { class: "muted" }, ` #${entry.id} · nudge #${nudge.id}`)),
      el("div", { class: "tip-change", "data-testid": "tip-change" }, ...change),
      row("step", el("span", { class: "num" }, formatStep(nudge.applied_step))),
      row("applied", formatTime(nudge.applied_at)),
      row("requested", formatTime(nudge.requested_at)),
      nudge.factor !== null && nudge.factor !== undefined ? row("scale", `×${formatValue(nudge.factor)}`) : null,
      nudge.checkpoint !== null ? row("checkpoint", `#${nudge.checkpoint}`) : null,
      row("note", nudge.note ? el("em", {}, nudge.note) : el("span", { class: "muted" }, "none")),
      marker.undone ? el("div", { class: "tip-undone" }, `undone by #${marker.undone.id}`) : null,
      el("div", { class: "tip-links" },
        el("a", { href: `#/runs/${entry.id}` }, "open run"), " · ",
        el("a", { href: `#/nudges?run=${entry.id}` }, "review its nudges")),
    ].filter(Boolean));
    this.tip.dataset.nudgeId = String(nudge.id);
    this.tip.dataset.run = String(entry.id);
    this.tip.dataset.pinned = String(!!this.pinned);
    this.tip.hidden = false;
    const box = node.getBoundingClientRect();
    const width = this.tip.offsetWidth;
    const left = Math.min(window.innerWidth - width - 12, box.left + box.width + 8);
    this.tip.style.left = `${Math.max(8, left < box.left ? box.left - width - 8 : left) + window.scrollX}px`;
    this.tip.style.top = `${box.top + window.scrollY + 24}px`;
  }

  hideTip(unpin = false) {
    if (unpin) this.pinned = null;
    this.tip.hidden = true;
  }

  // -- controls and picker -----------------------------------------------------

  renderControls() {
    const keys = this.unionKeys;
    const metricSelect = el("select", { id: "compare-metric", "aria-label": "metric",
      onchange: (event) => this.chooseMetric(event.target.value) },
    (keys.length ? keys : [this.state.metric || ""]).map((key) =>
      el("option", { value: key, selected: key === this.state.metric }, key || "—")));
    const slider = el("input", { type: "range", id: "compare-smooth", min: "0", max: "0.99", step: "0.01",
      value: String(this.state.smooth), "aria-label": "smoothing",
      oninput: (event) => this.chooseSmooth(Number(event.target.value), false),
      onchange: (event) => this.chooseSmooth(Number(event.target.value), true) });
    this.smoothValue = el("span", { class: "num smooth-value", id: "compare-smooth-value" },
      this.state.smooth ? this.state.smooth.toFixed(2) : "off");
    this.controls.replaceChildren(
      el("label", { class: "control" }, el("span", { class: "control-label" }, "Metric"), metricSelect),
      el("div", { class: "control" }, el("span", { class: "control-label" }, "Align by"),
        segmented("align", ALIGNS.map((align) => [align, ALIGN_LABELS[align]]), this.state.align,
          (align) => this.chooseAlign(align))),
      el("div", { class: "control" }, el("span", { class: "control-label" }, "y axis"),
        segmented("y", [["linear", "Linear"], ["log", "Log"]], this.state.y, (y) => this.chooseY(y))),
      el("label", { class: "control smooth-control", title: "exponential moving average, bias-corrected; " +
        "the raw curve stays faint behind" },
      el("span", { class: "control-label" }, "Smoothing"), slider, this.smoothValue),
      el("button", { type: "button", class: "button small copy-link", id: "compare-copy",
        title: "this view's address, with every choice on it",
        onclick: (event) => this.copyLink(event.target) }, "Copy link"));
  }

  async copyLink(button) {
    try {
      await navigator.clipboard.writeText(location.href);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy the address bar";
    }
    setTimeout(() => { button.textContent = "Copy link"; }, 1500);
  }

  renderPicker() {
    const chosen = new Set(this.state.runs.map((choice) => choice.id));
    const needle = this.filter.trim().toLowerCase();
    const runs = [...this.allRuns.values()]
      .filter((run) => chosen.has(run.id) || !needle ||
        `${run.name} #${run.id}`.toLowerCase().includes(needle))
      .sort((a, b) => Number(chosen.has(b.id)) - Number(chosen.has(a.id)) || b.id - a.id);
    if (runs.length === 0) {
      this.picker.replaceChildren(el("p", { class: "empty" }, needle ? "No run matches." : "No runs yet."));
      return;
    }
    this.picker.replaceChildren(...runs.map((run) => this.pickerRow(run, chosen.has(run.id))));
  }

  pickerRow(run, on) {
    const entry = this.entries.get(run.id);
    const choice = this.choiceOf(run.id);
    const box = el("input", { type: "checkbox", class: "run-toggle", checked: on, "aria-label": `compare run ${run.id}`,
      dataset: { runId: run.id }, onchange: (event) => this.toggleRun(run.id, event.target.checked) });
    let branchSelect = null;
    if (on && entry && entry.branches.length > 1) {
      branchSelect = el("select", { class: "branch-pick", "aria-label": `line of run ${run.id}`,
        dataset: { runId: run.id },
        onchange: (event) => this.chooseBranch(run.id, event.target.value ? Number(event.target.value) : null) },
      el("option", { value: "", selected: choice.branch === null }, "current line"),
      entry.branches.map((branch) => el("option", { value: branch.id, selected: choice.branch === branch.id },
        `branch ${branch.id} · ${branch.reason} at ${formatStep(branch.start_step)}`)));
    }
    return el("div", { class: `picker-row${on ? " on" : ""}`, dataset: { runId: run.id, selected: on } },
      el("label", { class: "picker-main" }, box,
        el("span", { class: "swatch", style: on ? `background:${this.colorOf(run.id)}` : "background:#e5e7eb" }),
        el("span", { class: "picker-name" }, run.name || `run ${run.id}`),
        el("span", { class: "muted num" }, `#${run.id}`)),
      el("div", { class: "picker-meta" }, entry?.error ? el("span", { class: "badge badge-failed" }, "not found")
        : badge(run.status),
      run.last_step === null || run.last_step === undefined
        ? null : el("span", { class: "muted num" }, `step ${formatStep(run.last_step)}`),
      on ? el("a", { href: `#/runs/${run.id}`, class: "picker-open" }, "open") : null),
      branchSelect);
  }

  close() {
    this.closed = true;
    this.group.close();
    document.removeEventListener("click", this.onDocumentClick);
    for (const timer of this.timers.values()) clearTimeout(timer);
    if (this.closeStream) this.closeStream();
    for (const chart of this.charts) chart.destroy();
    this.tip.remove();
  }
}
