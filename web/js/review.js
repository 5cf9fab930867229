// The nudge review page: every applied nudge across runs with what it did to
// the loss: the smoothed level and the slope over a window before and after
// the step it took effect, a verdict and a sparkline around it.
//   #/nudges?run=3&metric=loss&window=50&threshold=2&sort=effect
// Each nudge reads only [S − 2·window, S + 2·window) of its metric.

import { api, openStream } from "./api.js";
import {
  el, formatSigned, formatStep, formatTime, formatValue, headRow, paramLabel,
} from "./format.js";
import { headlineLossKey } from "./lines.js";
import { EFFECT_THRESHOLD, higherIsBetter, nudgeEffect, smoothEma } from "./trends.js";
import { branchAt, readView } from "./views.js";

const SMOOTHING = 0.6; // EMA weight for the levels and the sparkline
const CONCURRENCY = 4; // window requests in flight at once
const REFRESH_MS = 5_000;
const SORTS = { time: "Newest first", effect: "Most helpful first", harm: "Most harmful first" };
const VERDICT_ORDER = { helped: 0, neutral: 1, hurt: 2, waiting: 3, "n/a": 4 };

/** The review's settings from its URL. */
export function parseReviewQuery(hash) {
  const query = new URLSearchParams((hash || "").split("?")[1] || "");
  const run = Number(query.get("run"));
  const window = Math.round(Number(query.get("window")));
  const threshold = Number(query.get("threshold"));
  return {
    run: Number.isInteger(run) && run > 0 ? run : null,
    metric: query.get("metric") || null,
    window: window >= 3 && window <= 1_000_000 ? window : 50,
    threshold: threshold > 0 && threshold < 100 ? threshold : EFFECT_THRESHOLD * 100,
    sort: query.get("sort") in SORTS ? query.get("sort") : "time",
  };
}

export function reviewHash(state) {
  const parts = [];
  if (state.run) parts.push(`run=${state.run}`);
  if (state.metric) parts.push(`metric=${encodeURIComponent(state.metric).replace(/%2F/g, "/")}`);
  parts.push(`window=${state.window}`, `threshold=${state.threshold}`, `sort=${state.sort}`);
  return `#/nudges?${parts.join("&")}`;
}

/** A small SVG of the metric around a nudge: raw faint, smoothed solid, windows shaded. */
export function sparkline(view, step, window, verdict, { width = 180, height = 44 } = {}) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("class", `sparkline verdict-${verdict}`);
  svg.setAttribute("data-testid", "sparkline");
  const node = (tag, attrs) => {
    const child = document.createElementNS(ns, tag);
    for (const [name, value] of Object.entries(attrs)) child.setAttribute(name, String(value));
    svg.append(child);
    return child;
  };
  const lo = step - 2 * window;
  const hi = step + 2 * window;
  const finite = view.values.filter((v) => v !== null && Number.isFinite(v));
  if (finite.length < 2) return svg;
  let min = Math.min(...finite);
  let max = Math.max(...finite);
  if (max === min) [min, max] = [min - 1, max + 1];
  const pad = 3;
  const px = (s) => ((s - lo) / (hi - lo)) * width;
  const py = (v) => pad + (1 - (v - min) / (max - min)) * (height - 2 * pad);
  node("rect", { x: px(step - window), y: 0, width: px(step) - px(step - window), height, class: "window-before" });
  node("rect", { x: px(step), y: 0, width: px(step + window) - px(step), height, class: "window-after" });
  const path = (values) => {
    let d = "";
    let pen = false;
    values.forEach((v, i) => {
      if (v === null || v === undefined || !Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${px(view.steps[i]).toFixed(1)},${py(v).toFixed(1)}`;
      pen = true;
    });
    return d;
  };
  node("path", { d: path(view.values), class: "raw" });
  node("path", { d: path(smoothEma(view.values, SMOOTHING)), class: "smooth" });
  node("line", { x1: px(step), x2: px(step), y1: 0, y2: height, class: "nudge-line" });
  return svg;
}

/** Run `jobs` (functions returning promises) with at most `limit` in flight. */
async function pool(jobs, limit) {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}

function changeText(nudge, byId) {
  if (nudge.action === "undo") {
    const target = byId.get(nudge.undoes);
    return target
      ? [el("span", { class: "undo-tag" }, `undo #${nudge.undoes}`), " ", paramLabel(target.param), " → ",
        el("strong", { class: "num" }, formatValue(target.old_value))]
      : [el("span", { class: "undo-tag" }, `undo #${nudge.undoes}`)];
  }
  return [el("span", { class: "param" }, paramLabel(nudge.param)), " ",
    el("span", { class: "num" }, formatValue(nudge.old_value)), " → ",
    el("strong", { class: "num" }, formatValue(nudge.value))];
}

export class NudgeReviewPage {
  constructor(container, hash, { setLive }) {
    this.state = parseReviewQuery(hash);
    this.setLive = setLive;
    this.runs = new Map(); // id -> RunOut
    this.rows = new Map(); // "run:nudge" -> {run, nudge, key, view, effect}
    this.timers = new Map();
    this.closed = false;
    this.generation = 0;

    this.controls = el("div", { class: "compare-controls card", id: "review-controls" });
    this.rules = el("p", { class: "hint review-rules", id: "review-rules" });
    this.summary = el("div", { class: "review-summary", id: "review-summary" });
    this.body = el("tbody");
    this.empty = el("p", { class: "empty", id: "review-empty", hidden: true });
    this.status = el("p", { class: "muted", id: "review-status", role: "status" });
    this.root = el("div", { class: "page review-page", "data-testid": "review-page" },
      el("nav", { class: "crumbs" }, el("a", { href: "#/" }, "Runs"), " / Nudges"),
      el("header", { class: "page-header" }, el("h1", {}, "Nudge review"),
        el("p", { class: "muted" }, "What each applied nudge did to the loss.")),
      this.controls, this.rules, this.summary,
      el("section", { class: "card table-card" }, el("div", { class: "table-wrap" },
        el("table", { id: "nudge-review", class: "table review", "data-testid": "nudge-review" },
          headRow(["Run", "Nudge", "At step", "Metric", "Level before → after", "Slope before", "Slope after",
            "Effect", "Verdict", "Around the nudge"]),
          this.body)), this.empty),
      this.status);
    container.replaceChildren(this.root);
    this.renderControls();
  }

  async start() {
    document.title = "Nudges · panda";
    this.closeStream = openStream("api/stream", { run: (run) => this.onRunEvent(run) },
      { onState: this.setLive, onReopen: () => this.reload() });
    await this.reload();
  }

  setState(changes) {
    Object.assign(this.state, changes);
    history.replaceState(null, "", reviewHash(this.state));
    this.renderControls();
  }

  renderControls() {
    const runs = [...this.runs.values()].sort((a, b) => b.id - a.id);
    const runSelect = el("select", { id: "review-run", "aria-label": "run",
      onchange: (event) => { this.setState({ run: Number(event.target.value) || null }); this.reload(); } },
    el("option", { value: "" }, "all runs"),
    runs.map((run) => el("option", { value: run.id, selected: run.id === this.state.run },
      `#${run.id} ${run.name || ""}`)));
    if (this.state.run && !this.runs.has(this.state.run)) {
      runSelect.append(el("option", { value: this.state.run, selected: true }, `#${this.state.run}`));
    }
    const metricInput = el("input", { id: "review-metric", type: "text", list: "review-metric-keys",
      value: this.state.metric || "", placeholder: "each run's main loss", "aria-label": "metric",
      onchange: (event) => { this.setState({ metric: event.target.value.trim() || null }); this.recompute(true); } });
    const keys = new Set();
    for (const row of this.rows.values()) for (const key of row.keys || []) keys.add(key);
    const keyList = el("datalist", { id: "review-metric-keys" }, [...keys].sort().map((key) => el("option", { value: key })));
    const windowInput = el("input", { id: "review-window", type: "number", min: "3", step: "1",
      value: String(this.state.window), "aria-label": "window in steps",
      onchange: (event) => {
        const value = Math.round(Number(event.target.value));
        if (value >= 3) { this.setState({ window: value }); this.recompute(true); }
      } });
    const thresholdInput = el("input", { id: "review-threshold", type: "number", min: "0.1", step: "0.5",
      value: String(this.state.threshold), "aria-label": "threshold in percent",
      onchange: (event) => {
        const value = Number(event.target.value);
        if (value > 0) { this.setState({ threshold: value }); this.recompute(false); }
      } });
    const sortSelect = el("select", { id: "review-sort", "aria-label": "sort",
      onchange: (event) => { this.setState({ sort: event.target.value }); this.renderRows(); } },
    Object.entries(SORTS).map(([value, label]) => el("option", { value, selected: value === this.state.sort }, label)));
    this.controls.replaceChildren(
      el("label", { class: "control" }, el("span", { class: "control-label" }, "Run"), runSelect),
      el("label", { class: "control" }, el("span", { class: "control-label" }, "Metric"), metricInput, keyList),
      el("label", { class: "control" }, el("span", { class: "control-label" }, "Window"), windowInput,
        el("span", { class: "muted" }, "steps")),
      el("label", { class: "control" }, el("span", { class: "control-label" }, "Threshold"), thresholdInput,
        el("span", { class: "muted" }, "%")),
      el("label", { class: "control" }, el("span", { class: "control-label" }, "Sort"), sortSelect),
      el("button", { type: "button", class: "button small", id: "review-refresh", onclick: () => this.reload() },
        "Refresh"));
    const w = this.state.window;
    const t = this.state.threshold;
    this.rules.replaceChildren(
      el("strong", {}, "How the verdict is made. "),
      `Slopes are least-squares fits of the metric per step over the ${formatStep(w)} steps before the nudge's ` +
      `step and the ${formatStep(w)} steps from it on; levels are its exponential moving average (weight ` +
      `${SMOOTHING}, bias-corrected) at the end of each window. Effect = (slope after − slope before) × ${w} ` +
      `/ |level before|: the change in how far the metric moves per window, as a share of its level. `,
      el("span", { class: "verdict-word helped" }, "helped"), ` when the loss falls faster by at least ${t} % ` +
      "(for accuracy-like metrics, rises faster); ",
      el("span", { class: "verdict-word hurt" }, "hurt"), ` when it worsens by at least ${t} % or turns NaN/∞; `,
      el("span", { class: "verdict-word neutral" }, "neutral"), " in between; ",
      el("span", { class: "verdict-word waiting" }, "waiting"), " while a running job has not filled the window after it.");
  }

  /** Runs, their applied nudges, and the metric window of each. */
  async reload() {
    const generation = ++this.generation;
    if (this.rows.size === 0) this.status.textContent = "Loading nudges…";
    try {
      const runs = await api.listRuns();
      if (this.closed || generation !== this.generation) return;
      this.runs = new Map(runs.map((run) => [run.id, run]));
      const chosen = runs.filter((run) => !this.state.run || run.id === this.state.run);
      const perRun = await Promise.all(chosen.map((run) => this.loadRun(run)));
      if (this.closed || generation !== this.generation) return;
      const rows = new Map(perRun.flat().map((row) => [`${row.run.id}:${row.nudge.id}`, row]));
      // Keep what is known until the windows are read again: no flicker on a refresh.
      for (const [id, row] of rows) {
        const known = this.rows.get(id);
        if (known) Object.assign(row, { key: known.key, view: known.view, effect: known.effect, onLine: known.onLine });
      }
      this.rows = rows;
      this.renderControls();
      await this.recompute(true, generation);
    } catch (error) {
      if (this.closed) return;
      this.status.textContent = `Could not load nudges: ${error.detail || error.message}`;
    }
  }

  async loadRun(run) {
    const nudges = await api.listNudges(run.id);
    const applied = nudges.filter((nudge) => nudge.status === "applied" && nudge.applied_step !== null);
    if (applied.length === 0) return [];
    const [keys, branches, checkpoints] = await Promise.all([
      api.listMetricKeys(run.id), api.listBranches(run.id), api.listCheckpoints(run.id)]);
    const byId = new Map(nudges.map((nudge) => [nudge.id, nudge]));
    const checkpointBranch = new Map(checkpoints.map((checkpoint) => [checkpoint.id, checkpoint.branch]));
    return applied.map((nudge) => ({
      run, nudge, byId, keys, branches,
      // A set nudge took effect on the branch its checkpoint was taken on; an undo starts its own.
      branch: nudge.action === "undo" ? nudge.branch : checkpointBranch.get(nudge.checkpoint) ?? null,
      view: null, effect: null,
    }));
  }

  metricFor(row) {
    if (this.state.metric) return row.keys.includes(this.state.metric) ? this.state.metric : null;
    return headlineLossKey(row.keys);
  }

  /** Fetch the windows again (`refetch`) or only judge them again, then draw. */
  async recompute(refetch, generation = this.generation) {
    const rows = [...this.rows.values()];
    this.renderRows();
    if (refetch) {
      let done = 0;
      const jobs = rows.map((row) => async () => {
        await this.fetchWindow(row);
        done += 1;
        if (this.closed || generation !== this.generation) return;
        this.judge(row);
        this.updateRow(row);
        this.status.textContent = done < rows.length ? `Reading windows… ${done} of ${rows.length}` : "";
      });
      await pool(jobs, CONCURRENCY);
    } else {
      rows.forEach((row) => this.judge(row));
    }
    if (this.closed || generation !== this.generation) return;
    this.status.textContent = "";
    this.renderRows();
  }

  async fetchWindow(row) {
    row.key = this.metricFor(row);
    row.error = null;
    if (!row.key) {
      row.view = null;
      return;
    }
    const step = row.nudge.applied_step;
    const w = this.state.window;
    // The current line when it holds this nudge's branch at its step; else the nudge's own branch line.
    const onLine = row.branch === null || branchAt(row.branches, step) === row.branch;
    try {
      row.view = await readView(row.run.id, row.key, {
        branch: onLine ? null : row.branch, branches: row.branches,
        minStep: Math.max(0, step - 2 * w), maxStep: step + 2 * w - 1, maxPoints: Math.min(2_000, 8 * w) });
      row.onLine = onLine;
    } catch (error) {
      row.view = null;
      row.error = error.detail || error.message;
    }
  }

  judge(row) {
    if (!row.view) {
      row.effect = { verdict: "n/a", effect: null };
      return;
    }
    row.effect = nudgeEffect(row.view.steps, row.view.values, row.nudge.applied_step, {
      window: this.state.window, smoothing: SMOOTHING, key: row.key,
      threshold: this.state.threshold / 100, running: row.run.status === "running" && row.onLine });
  }

  sortedRows() {
    const rows = [...this.rows.values()];
    const time = (row) => Date.parse(row.nudge.applied_at || row.nudge.requested_at) || 0;
    const effect = (row) => {
      const value = row.effect?.effect;
      return value === null || value === undefined || Number.isNaN(value) ? null : value;
    };
    if (this.state.sort === "time") return rows.sort((a, b) => time(b) - time(a) || b.nudge.id - a.nudge.id);
    const direction = this.state.sort === "effect" ? 1 : -1;
    return rows.sort((a, b) => {
      const [ea, eb] = [effect(a), effect(b)];
      if (ea === null || eb === null) return (ea === null) - (eb === null) || time(b) - time(a);
      return direction * (ea - eb) || time(b) - time(a);
    });
  }

  renderRows() {
    const rows = this.sortedRows();
    this.empty.hidden = rows.length > 0;
    this.body.parentElement.hidden = rows.length === 0;
    this.empty.textContent = this.state.run
      ? `Run #${this.state.run} has no applied nudges yet.`
      : "No applied nudges yet. Nudge a running job from its run page; its effect shows here.";
    this.body.replaceChildren(...rows.map((row) => {
      row.tr = this.rowElement(row);
      return row.tr;
    }));
    this.renderSummary();
  }

  updateRow(row) {
    if (!row.tr || !row.tr.isConnected) return;
    const fresh = this.rowElement(row);
    row.tr.replaceWith(fresh);
    row.tr = fresh;
  }

  rowElement(row) {
    const { run, nudge, effect } = row;
    const verdict = effect ? effect.verdict : "loading";
    const better = higherIsBetter(row.key) ? "rises" : "falls";
    const slopeCell = (testid, value) => el("td", { class: "num", "data-testid": testid },
      value === null || value === undefined ? "–" : el("span", {}, formatSigned(value),
        el("span", { class: "muted unit" }, "/step")));
    const effectText = !effect || effect.effect === null ? "–"
      : effect.effect === Infinity ? "diverged" : `${formatSigned(Number((effect.effect * 100).toPrecision(3)))} %`;
    return el("tr", { id: `review-${run.id}-${nudge.id}`, class: `verdict-row ${verdict}`,
      dataset: { runId: run.id, nudgeId: nudge.id, verdict, step: nudge.applied_step } },
    el("td", { class: "name" }, el("a", { href: `#/runs/${run.id}` }, run.name || `run ${run.id}`),
      el("div", { class: "muted num" }, `#${run.id}`)),
    el("td", { class: "change" }, el("span", { class: "muted num" }, `#${nudge.id} `), ...changeText(nudge, row.byId),
      nudge.note ? el("div", { class: "note" }, nudge.note) : null,
      row.onLine === false ? el("div", { class: "muted small" }, `on branch ${row.branch} (off the current line)`) : null),
    el("td", { class: "num" }, formatStep(nudge.applied_step), el("div", { class: "muted small" }, formatTime(nudge.applied_at))),
    el("td", { class: "metric-key" }, row.key || el("span", { class: "muted" }, "not logged")),
    el("td", { class: "num", "data-testid": "level" }, effect && effect.levelBefore !== undefined
      ? `${formatValue(effect.levelBefore)} → ${formatValue(effect.levelAfter)}` : "–"),
    slopeCell("slope-before", effect?.slopeBefore),
    slopeCell("slope-after", effect?.slopeAfter),
    el("td", { class: "num", "data-testid": "effect", title: `negative: the metric ${better} faster after the nudge` },
      effectText),
    el("td", { "data-testid": "verdict" }, verdict === "loading"
      ? el("span", { class: "muted" }, row.error || "…")
      : el("span", { class: `verdict ${verdict === "n/a" ? "na" : verdict}`,
        title: effect.verdict === "n/a" ? (row.error || "too few points in a window") :
          `${effect.pointsBefore} points before, ${effect.pointsAfter} after` }, verdict)),
    el("td", { class: "spark" }, row.view ? sparkline(row.view, nudge.applied_step, this.state.window, verdict) : null));
  }

  renderSummary() {
    const counts = {};
    for (const row of this.rows.values()) {
      const verdict = row.effect ? row.effect.verdict : "loading";
      counts[verdict] = (counts[verdict] || 0) + 1;
    }
    const total = this.rows.size;
    const parts = Object.keys(VERDICT_ORDER).filter((v) => counts[v])
      .map((v) => el("span", { class: `verdict ${v === "n/a" ? "na" : v}`, dataset: { verdict: v } }, `${counts[v]} ${v}`));
    this.summary.replaceChildren(...[
      el("strong", {}, `${total} applied nudge${total === 1 ? "" : "s"}`),
      this.state.run ? el("span", { class: "muted" }, `on run #${this.state.run}`) : null,
      ...parts].filter(Boolean));
  }

  onRunEvent(run) {
    this.runs.set(run.id, run);
    // A running job may have applied a nudge or filled a window: read again, at most every few seconds.
    if (run.status !== "running" || (this.state.run && this.state.run !== run.id)) return;
    if (this.timers.has("reload")) return;
    this.timers.set("reload", setTimeout(() => {
      this.timers.delete("reload");
      if (!this.closed) this.reload();
    }, REFRESH_MS));
  }

  close() {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    if (this.closeStream) this.closeStream();
  }
}
