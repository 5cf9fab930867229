// The run page: live charts of one run, the nudge form, the nudge history,
// checkpoints and branches, all kept current by the run's event stream.

import { api, decodeValue, openStream } from "./api.js";
import { ChartGroup, StepChart, PALETTE } from "./charts.js";
import { BranchTable, CheckpointTable } from "./checkpoints.js";
import { badge, el, formatStep, formatTime, formatValue, timeCell } from "./format.js";
import {
  Line, abandonedTails, chartIdFor, chartTitleFor, compareChartIds, compareKeys, headlineLossKey,
} from "./lines.js";
import { NudgeForm, NudgeHistory, nudgeMarkers } from "./nudges.js";

// A key's first view holds about two points per pixel column of the chart
// area; the server answers min/max buckets past that, and a zoom fetches the
// visible steps again at full detail.
const MIN_VIEW_POINTS = 400;
const MAX_VIEW_POINTS = 8_000;
const OVERVIEW_REFRESH_MS = 5_000; // re-read a downsampled line once live points pile up
const MAX_TAIL_BRANCHES = 8; // older abandoned tails are left off the charts

const GROUP_COLORS = {
  lr: ["#dc2626", ...PALETTE],
  momentum: ["#9333ea", ...PALETTE],
};

function stat(label, testid) {
  const value = el("div", { class: "stat-value", "data-testid": testid }, "–");
  return { value, root: el("div", { class: "stat" }, el("div", { class: "stat-label" }, label), value) };
}

function card(title, ...children) {
  return el("section", { class: "card" }, el("h2", {}, title), ...children);
}

export class RunPage {
  constructor(container, runId, { setLive }) {
    this.runId = runId;
    this.setLive = setLive;
    this.run = null;
    this.branches = [];
    this.lines = new Map(); // key -> Line on the current line
    this.tails = new Map(); // key -> [{branch, line}]
    this.charts = new Map(); // chart id -> StepChart
    this.views = new Map(); // key -> {total, downsampled, length} of its last view
    this.details = new Map(); // chart id -> {range, lines: Map<key, Line>} while zoomed
    this.zoomSeq = new Map(); // chart id -> number of its latest zoom
    this.queue = null; // events held back while lines (re)load
    this.loading = false;
    this.reloadAgain = false;
    this.closed = false;

    this.history = new NudgeHistory(runId);
    this.history.onChange = () => this.refreshMarkers();
    this.checkpoints = new CheckpointTable();
    this.branchTable = new BranchTable();
    this.form = new NudgeForm(runId, { current: () => this.currentValues() });
    this.build(container);
  }

  build(container) {
    this.title = el("h1", { id: "run-title" }, `Run #${this.runId}`);
    this.statusSlot = el("span", { id: "run-status" });
    this.meta = el("p", { class: "run-meta", id: "run-meta" });
    this.stats = {
      step: stat("Step", "stat-step"),
      loss: stat("Loss", "stat-loss"),
      lr: stat("α", "stat-lr"),
      momentum: stat("Momentum", "stat-momentum"),
    };
    this.chartGrid = el("div", { id: "charts", class: "chart-grid" });
    this.chartsEmpty = el("p", { class: "empty card" },
      "No metrics yet. Charts appear as soon as the job logs its first points.");
    this.branchCard = card("Branches", el("p", { class: "hint" },
      "Resume, undo and fork start a new branch. Charts draw the current line solid and abandoned tails faded."),
      this.branchTable.root);
    this.statusNote = el("p", { class: "hint warn", id: "nudge-run-note", hidden: true });

    this.root = el("div", { class: "page run-page", "data-testid": "run-page" },
      el("nav", { class: "crumbs" }, el("a", { href: "#/" }, "Runs"), " / ", `Run #${this.runId}`),
      el("header", { class: "run-header" },
        el("div", { class: "run-title" }, this.title, this.statusSlot), this.meta),
      el("div", { class: "stats" }, Object.values(this.stats).map((item) => item.root)),
      el("div", { class: "run-layout" },
        el("div", { class: "charts-col" }, this.chartsEmpty, this.chartGrid),
        el("aside", { class: "side-col" },
          card("Nudge the running job", this.statusNote, this.form.root))),
      card("Nudge history", this.history.root),
      el("div", { class: "two-col" },
        card("Checkpoints", this.checkpoints.root), this.branchCard));
    container.replaceChildren(this.root);
  }

  /** Open the stream first and hold its events, so nothing falls between load and live. */
  async start() {
    this.queue = [];
    const handle = (kind) => (data) => this.onEvent(kind, data);
    this.closeStream = openStream(`api/runs/${this.runId}/stream`,
      { points: handle("points"), nudge: handle("nudge"), run: handle("run"),
        checkpoint: handle("checkpoint"), branch: handle("branch") },
      { onState: this.setLive, onReopen: () => this.reloadAll() });
    await this.reloadAll();
  }

  async reloadAll() {
    try {
      const [nudges, checkpoints] = await Promise.all([
        api.listNudges(this.runId), api.listCheckpoints(this.runId)]);
      if (this.closed) return;
      this.history.setAll(nudges);
      this.checkpoints.setAll(checkpoints);
      await this.reloadLines();
    } catch (error) {
      this.showLoadError(error);
    }
  }

  showLoadError(error) {
    if (this.closed) return;
    if (error.status === 404 && this.closeStream) this.closeStream();
    this.root.querySelector("#load-error")?.remove();
    const text = error.status === 404
      ? `Run #${this.runId} does not exist.`
      : `Could not load run #${this.runId}: ${error.detail || error.message}`;
    this.root.prepend(el("p", { class: "banner error", id: "load-error" }, text));
  }

  /** Fetch the run, its branches and every key's current line and tails again. */
  async reloadLines() {
    if (this.queue && this.loading) {
      this.reloadAgain = true;
      return;
    }
    this.loading = true;
    this.queue = this.queue || [];
    try {
      do {
        this.reloadAgain = false;
        await this.fetchLines();
      } while (this.reloadAgain && !this.closed);
      this.root.querySelector("#load-error")?.remove();
    } catch (error) {
      this.showLoadError(error);
    } finally {
      this.loading = false;
      const held = this.queue || [];
      this.queue = null;
      for (const [kind, data] of held) this.onEvent(kind, data);
    }
  }

  /** Points per key view: two per pixel column of the chart area. */
  get viewPoints() {
    const width = this.chartGrid.clientWidth || this.root.clientWidth || 1000;
    return Math.max(MIN_VIEW_POINTS, Math.min(MAX_VIEW_POINTS, Math.round(width * 2)));
  }

  async fetchLines() {
    const [run, branches, keys] = await Promise.all([
      api.getRun(this.runId), api.listBranches(this.runId), api.listMetricKeys(this.runId)]);
    const maxPoints = this.viewPoints;
    const series = await Promise.all(keys.map((key) => api.readSeries(this.runId, key, { maxPoints })));
    const tails = branches.length > 1 ? await this.fetchTails(keys, branches, maxPoints) : new Map();
    if (this.closed) return;

    this.setRun(run);
    this.branches = branches;
    this.lines = new Map(series.map((found, i) => [keys[i], new Line(found.steps, found.values)]));
    this.views = new Map(series.map((found, i) => [keys[i],
      { total: found.total, downsampled: found.downsampled, length: found.steps.length }]));
    // A zoomed chart keeps its detail; the new line may have moved under it, so read it again.
    for (const [chartId, detail] of this.details) this.onZoom(chartId, detail.range);
    this.tails = tails;
    this.branchTable.setAll(branches);
    this.branchCard.hidden = branches.length < 2;
    for (const chartId of new Set([...this.charts.keys(), ...keys.map(chartIdFor)])) this.updateChart(chartId);
    this.refreshStats();
  }

  /** Every key's abandoned tails: key -> [{branch, line}], newest branches last. */
  async fetchTails(keys, branches, maxPoints) {
    let perKey;
    try {
      perKey = await Promise.all(keys.map((key) => api.readTails(this.runId, key, { maxPoints })));
    } catch (error) {
      if (error.status !== 404 && error.status !== 405) throw error;
      perKey = await this.fetchTailsByBranch(keys, branches, maxPoints);
    }
    const tails = new Map();
    perKey.forEach((found, index) => {
      const kept = found.slice(-MAX_TAIL_BRANCHES)
        .map((series) => ({ branch: series.branch, line: new Line(series.steps, series.values) }))
        .filter((tail) => tail.line.length > 0);
      if (kept.length) tails.set(keys[index], kept);
    });
    return tails;
  }

  /** The same from each branch's own points, for a server without the tails route. */
  fetchTailsByBranch(keys, branches, maxPoints) {
    const specs = abandonedTails(branches);
    return Promise.all(keys.map((key) => Promise.all(specs.map((spec) =>
      api.readSeries(this.runId, key, { branch: spec.branch, maxPoints }).then((found) => {
        const line = new Line(found.steps, found.values).from(spec.fromStep);
        return { branch: spec.branch, steps: line.steps, values: line.values };
      })))));
  }

  get currentBranch() {
    const current = this.branches.find((branch) => branch.current);
    return current ? current.id : this.run?.branch ?? null;
  }

  onEvent(kind, data) {
    if (this.closed) return;
    if (data.run !== undefined && kind !== "run" && Number(data.run) !== this.runId) return;
    if (kind === "run" && Number(data.id) !== this.runId) return;
    if (this.queue && kind !== "nudge" && kind !== "checkpoint") {
      this.queue.push([kind, data]);
      return;
    }

    if (kind === "points") this.onPoints(data);
    else if (kind === "nudge") this.onNudge(data);
    else if (kind === "checkpoint") this.checkpoints.upsert(data);
    else if (kind === "branch") this.reloadLines();
    else if (kind === "run") this.onRun(data);
  }

  onPoints(data) {
    const current = this.currentBranch;
    if (data.branch !== undefined && data.branch !== null && current !== null && data.branch !== current) {
      // A branch this page has not seen means the line moved (undo, resume);
      // late points of a known old branch change no current line.
      if (!this.branches.some((branch) => branch.id === data.branch)) this.reloadLines();
      return;
    }
    let line = this.lines.get(data.key);
    if (!line) {
      line = new Line();
      this.lines.set(data.key, line);
    }
    line.append(data.steps, data.values);
    const chartId = chartIdFor(data.key);
    this.details.get(chartId)?.lines.get(data.key)?.append(data.steps, data.values);
    const view = this.views.get(data.key);
    if (view) view.total += data.steps.length;
    if (view && view.downsampled && line.length > view.length + this.viewPoints) this.refreshOverviewSoon();
    this.updateChart(chartId);
    this.refreshStats();
  }

  /** A downsampled line that grew by a view's worth of live points is read again as a view. */
  refreshOverviewSoon() {
    if (this.overviewTimer) return;
    this.overviewTimer = setTimeout(() => {
      this.overviewTimer = null;
      if (!this.closed) this.reloadLines();
    }, OVERVIEW_REFRESH_MS);
  }

  /**
   * A person zoomed chart `chartId` to an x (step) range, or reset it (null):
   * read its keys again over the visible steps, as a view of the same size.
   */
  async onZoom(chartId, range) {
    const seq = (this.zoomSeq.get(chartId) || 0) + 1;
    this.zoomSeq.set(chartId, seq);
    const chart = this.charts.get(chartId);
    if (!chart) return;
    if (range === null) {
      this.details.delete(chartId);
      chart.root.dataset.detail = "overview";
      this.updateChart(chartId);
      return;
    }
    const keys = [...this.lines.keys()].filter((key) => chartIdFor(key) === chartId);
    const minStep = Math.max(0, Math.floor(range.min));
    const maxStep = Math.max(minStep, Math.ceil(range.max));
    try {
      const found = await Promise.all(keys.map((key) =>
        api.readSeries(this.runId, key, { minStep, maxStep, maxPoints: chart.viewPoints })));
      if (this.closed || this.zoomSeq.get(chartId) !== seq) return; // a newer zoom or a reset won
      const lines = new Map(found.map((series, i) => [keys[i], new Line(series.steps, series.values)]));
      this.details.set(chartId, { range, lines });
      chart.root.dataset.detail = "zoomed";
      chart.root.dataset.detailRange = `${minStep},${maxStep}`;
      this.updateChart(chartId);
    } catch (error) {
      chart.root.dataset.detail = "error";
    }
  }

  onNudge(nudge) {
    this.history.upsert(nudge);
    if (nudge.action === "undo" && nudge.status === "applied") this.reloadLines();
  }

  onRun(run) {
    const branchMoved = this.run && run.branch !== null && run.branch !== this.run.branch;
    this.setRun(run);
    this.refreshStats();
    if (branchMoved) this.reloadLines();
  }

  setRun(run) {
    this.run = run;
    this.title.replaceChildren(
      run.name || `Run #${run.id}`, " ", el("span", { class: "muted run-id" }, `#${run.id}`));
    document.title = `${run.name || `Run #${run.id}`} · panda`;
    this.statusSlot.replaceChildren(badge(run.status));
    this.statusSlot.dataset.status = run.status;
    const parts = [`created ${formatTime(run.created_at)}`];
    if (run.branch !== null) parts.push(` · branch ${run.branch}`);
    if (run.heartbeat_at) parts.push(" · last heartbeat ", timeCell(run.heartbeat_at));
    if (run.finished_at) parts.push(` · ended ${formatTime(run.finished_at)}`);
    if (run.parent_run !== null && run.parent_run !== undefined) {
      parts.push(" · forked from ", el("a", { href: `#/runs/${run.parent_run}` }, `run #${run.parent_run}`),
        ` at step ${formatStep(run.parent_step)}`);
    }
    this.meta.replaceChildren(...parts);
    const running = run.status === "running";
    this.statusNote.hidden = running;
    this.statusNote.textContent = running ? ""
      : run.status === "ready"
        ? `This fork is ready: nudges wait until \`panda resume ${run.id}\` trains it.`
        : `This run is ${run.status}; the server only takes nudges for a running job.`;
  }

  /** The values the job trains with now: the last logged point, else the run summary. */
  currentValues() {
    const last = (key) => {
      const line = this.lines.get(key);
      if (line && line.length) return line.values[line.length - 1] ?? undefined;
      const value = this.run?.last_values?.[key];
      return value === undefined ? undefined : decodeValue(value);
    };
    return { lr: last("lr"), momentum: last("momentum") };
  }

  refreshStats() {
    if (!this.run) return;
    const lastSteps = [...this.lines.values()].map((line) => line.lastStep).filter((step) => step !== null);
    const step = lastSteps.length ? Math.max(...lastSteps) : this.run.last_step;
    this.stats.step.value.textContent = formatStep(step);
    const lossKey = headlineLossKey([...this.lines.keys(), ...Object.keys(this.run.last_values || {})]);
    const lossLine = lossKey && this.lines.get(lossKey);
    const loss = lossLine && lossLine.length ? lossLine.values[lossLine.length - 1] : this.run.last_values?.[lossKey];
    this.stats.loss.value.textContent = lossKey ? formatValue(loss === null ? NaN : loss) : "–";
    const { lr, momentum } = this.currentValues();
    this.stats.lr.value.textContent = formatValue(lr);
    this.stats.momentum.value.textContent = formatValue(momentum);
    this.form.refreshPlaceholders();
  }

  chartFor(chartId) {
    let chart = this.charts.get(chartId);
    if (chart) return chart;
    const logToggle = chartId === "loss" || chartId === "lr";
    // α and momentum hold their value until the next change: draw them as steps.
    const stepped = chartId === "lr" || chartId === "momentum";
    chart = new StepChart(chartTitleFor(chartId), {
      id: `chart-${chartId.replace(/[^\w-]/g, "_")}`, logToggle, stepped,
      yRange: chartId === "momentum" ? [0, 1] : null,
      group: new ChartGroup({ onZoom: (range) => this.onZoom(chartId, range) }) });
    chart.root.dataset.chart = chartId;
    chart.root.dataset.detail = "overview";
    this.charts.set(chartId, chart);
    const order = [...this.charts.keys()].sort(compareChartIds);
    const next = order[order.indexOf(chartId) + 1];
    this.chartGrid.insertBefore(chart.root, next ? this.charts.get(next).root : null);
    this.chartsEmpty.hidden = true;
    chart.setMarkers(this.markers || []);
    return chart;
  }

  updateChart(chartId) {
    const keys = [...this.lines.keys()].filter((key) => chartIdFor(key) === chartId).sort(compareKeys);
    if (keys.length === 0 && !this.charts.has(chartId)) return;
    const colors = GROUP_COLORS[chartId] || PALETTE;
    const detail = this.details.get(chartId);
    const lines = [];
    let total = 0;
    let downsampled = false;
    keys.forEach((key, index) => {
      const color = colors[index % colors.length];
      const line = detail?.lines.get(key) || this.lines.get(key);
      const view = this.views.get(key);
      total += view ? view.total : line.length;
      downsampled = downsampled || !!view?.downsampled;
      lines.push({ label: key, color, steps: line.steps, values: line.values });
      for (const tail of this.tails.get(key) || []) {
        const { steps, values } = tail.line;
        lines.push({ label: `${key} · branch ${tail.branch}`, color, steps, values, faded: true });
      }
    });
    const chart = this.chartFor(chartId);
    chart.root.dataset.total = String(total);
    chart.root.dataset.downsampled = String(downsampled);
    chart.setLines(lines);
  }

  refreshMarkers() {
    this.markers = nudgeMarkers(this.history.list(), this.history.undoneBy());
    for (const chart of this.charts.values()) chart.setMarkers(this.markers);
  }

  close() {
    this.closed = true;
    clearTimeout(this.overviewTimer);
    if (this.closeStream) this.closeStream();
    for (const chart of this.charts.values()) chart.destroy();
  }
}
