// The compare view: several runs' curves overlaid, one color per run, with
// each run's applied nudges as markers in its color. #/compare?runs=3,5

import { api, openStream } from "./api.js";
import { PALETTE, StepChart } from "./charts.js";
import { badge, el, formatStep } from "./format.js";
import { Line, chartIdFor, chartTitleFor, compareChartIds, compareKeys } from "./lines.js";
import { nudgeMarkers } from "./nudges.js";

const MAX_POINTS = 4_000; // per key and run; the server downsamples past it
const REFRESH_MS = 3_000; // at most one refetch of a run this often while it logs

/** Run ids from "#/compare?runs=3,5", in the order given, without repeats. */
export function compareRunIds(hash) {
  const query = new URLSearchParams(hash.split("?")[1] || "");
  const ids = (query.get("runs") || "").split(",").map(Number).filter((id) => Number.isInteger(id) && id > 0);
  return [...new Set(ids)];
}

export class ComparePage {
  constructor(container, runIds, { setLive }) {
    this.runIds = runIds;
    this.setLive = setLive;
    this.runs = new Map(); // id -> {run, lines: Map<key, Line>, nudges, color}
    this.charts = new Map();
    this.timers = new Map();
    this.closed = false;

    this.legend = el("div", { class: "compare-legend", id: "compare-runs" });
    this.chartGrid = el("div", { id: "charts", class: "chart-grid wide" });
    this.root = el("div", { class: "page compare-page", "data-testid": "compare-page" },
      el("nav", { class: "crumbs" }, el("a", { href: "#/" }, "Runs"), " / Compare"),
      el("header", { class: "page-header" }, el("h1", {}, "Compare runs"),
        el("p", { class: "muted" },
          "Current lines by step; dashed lines are validation metrics, dashed verticals applied nudges.")),
      this.legend, this.chartGrid);
    container.replaceChildren(this.root);
  }

  async start() {
    document.title = "Compare · panda";
    if (this.runIds.length === 0) {
      this.legend.replaceChildren(
        el("p", { class: "empty" }, "No runs chosen. Tick runs in the list, then press Compare."));
      return;
    }
    // One stream for all runs: a run event says which run logged, and that run is refetched.
    this.closeStream = openStream("api/stream", { run: (run) => this.onRun(run) },
      { onState: this.setLive, onReopen: () => this.runIds.forEach((id) => this.load(id)) });
    await Promise.all(this.runIds.map((id) => this.load(id)));
  }

  async load(runId) {
    try {
      const [run, keys, nudges] = await Promise.all([
        api.getRun(runId), api.listMetricKeys(runId), api.listNudges(runId)]);
      const series = await Promise.all(keys.map((key) => api.readSeries(runId, key, { maxPoints: MAX_POINTS })));
      if (this.closed) return;
      const color = PALETTE[this.runIds.indexOf(runId) % PALETTE.length];
      const lines = new Map(series.map((found, i) => [keys[i], new Line(found.steps, found.values)]));
      this.runs.set(runId, { run, lines, nudges, color });
    } catch (error) {
      if (this.closed) return;
      const run = { id: runId, name: `run ${runId}`, status: "missing" };
      this.runs.set(runId, {
        run, lines: new Map(), nudges: [], color: "#9ca3af", error: error.detail || error.message });
    }
    this.render();
  }

  onRun(run) {
    if (!this.runIds.includes(run.id) || this.timers.has(run.id)) return;
    this.timers.set(run.id, setTimeout(() => {
      this.timers.delete(run.id);
      if (!this.closed) this.load(run.id);
    }, REFRESH_MS));
  }

  render() {
    const entries = this.runIds.map((id) => this.runs.get(id)).filter(Boolean);
    this.legend.replaceChildren(...entries.map(({ run, color, error }) =>
      el("a", { class: "compare-run", href: `#/runs/${run.id}`, dataset: { runId: run.id }, title: error || "" },
        el("span", { class: "swatch", style: `background:${color}` }),
        el("strong", {}, run.name || `run ${run.id}`), el("span", { class: "muted" }, ` #${run.id}`),
        error ? el("span", { class: "badge badge-failed" }, "not found") : badge(run.status),
        run.last_step === undefined
          ? null : el("span", { class: "muted num" }, `step ${formatStep(run.last_step)}`))));

    const chartIds = new Set();
    for (const { lines } of entries) for (const key of lines.keys()) chartIds.add(chartIdFor(key));
    for (const chartId of [...chartIds].sort(compareChartIds)) this.updateChart(chartId, entries);
  }

  updateChart(chartId, entries) {
    let chart = this.charts.get(chartId);
    if (!chart) {
      chart = new StepChart(chartTitleFor(chartId), { logToggle: chartId === "loss" || chartId === "lr",
        stepped: chartId === "lr" || chartId === "momentum", height: 260,
        yRange: chartId === "momentum" ? [0, 1] : null });
      chart.root.dataset.chart = chartId;
      this.charts.set(chartId, chart);
      const order = [...this.charts.keys()].sort(compareChartIds);
      const next = order[order.indexOf(chartId) + 1];
      this.chartGrid.insertBefore(chart.root, next ? this.charts.get(next).root : null);
    }
    const lines = [];
    const markers = [];
    for (const { run, lines: runLines, nudges, color } of entries) {
      const keys = [...runLines.keys()].filter((key) => chartIdFor(key) === chartId).sort(compareKeys);
      for (const key of keys) {
        const line = runLines.get(key);
        lines.push({ label: `#${run.id} ${key}`, color, steps: line.steps, values: line.values,
          dash: /val|test|eval/i.test(key) ? [6, 3] : undefined });
      }
      const undos = nudges.filter((nudge) => nudge.action === "undo" && nudge.status === "applied");
      const undoneBy = new Map(undos.map((undo) => [undo.undoes, undo]));
      for (const marker of nudgeMarkers(nudges, undoneBy)) {
        const short = `#${run.id} ${marker.short}`;
        markers.push({ ...marker, color, short, title: `run #${run.id}: ${marker.title}` });
      }
    }
    chart.setLines(lines);
    chart.setMarkers(markers);
  }

  close() {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    if (this.closeStream) this.closeStream();
    for (const chart of this.charts.values()) chart.destroy();
  }
}
