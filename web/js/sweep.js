// caviar's pages: the sweeps list (#/sweeps) and one sweep (#/sweeps/7): its
// trials ranked by objective, each hyperparameter against the objective on its
// own scale, the coarse-to-fine rounds, and the strategy's next suggestion.
// Sweeps have no event stream yet, so both pages poll every few seconds.

import { ApiError, writeToken } from "./api.js";
import { PALETTE } from "./charts.js";
import { badge, el, formatValue, headRow, timeCell } from "./format.js";

/* global uPlot */

const POLL_MS = 2000;

async function getJson(method, path) {
  const headers = { Accept: "application/json" };
  const token = method === "GET" ? null : writeToken.get();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers });
  } catch (error) {
    throw new ApiError(0, `server unreachable (${error.message})`);
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, payload?.detail || response.statusText);
  return payload;
}

/** How a dimension is drawn: α and 1 − β on log axes, the rest linear. */
function axisOf(name, dimension) {
  if (dimension && "log_uniform" in dimension) return { label: name, log: true, x: (v) => v };
  if (dimension && "one_minus_log_uniform" in dimension) {
    return { label: `1 − ${name}`, log: true, x: (v) => 1 - v };
  }
  if (dimension && "int" in dimension && dimension.log) return { label: name, log: true, x: (v) => v };
  return { label: name, log: false, x: (v) => v };
}

function numericDimensions(sweep) {
  const space = sweep.config.space;
  return Object.keys(space).filter((name) =>
    sweep.trials.some((trial) => typeof trial.params[name] === "number") &&
    !(space[name] && "choice" in space[name] && space[name].choice.length < 2) &&
    typeof space[name] === "object");
}

class ScatterPlot {
  /** One hyperparameter (x) against the objective (y), a series per round. */
  constructor(container, { name, axis, objective, rounds }) {
    this.axis = axis;
    this.rounds = rounds;
    const width = Math.max(260, Math.min(440, container.clientWidth || 400));
    const series = [{}];
    for (let round = 0; round < rounds; round++) {
      series.push({
        label: rounds > 1 ? `round ${round}` : "trials",
        stroke: PALETTE[round % PALETTE.length],
        fill: PALETTE[round % PALETTE.length],
        paths: () => null,
        points: { show: true, size: 8, fill: PALETTE[round % PALETTE.length] },
      });
    }
    const options = {
      width,
      height: 220,
      legend: { show: rounds > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, distr: axis.log ? 3 : 1 }, y: { auto: true } },
      axes: [
        { label: axis.label, values: (u, splits) => splits.map((v) => (v === null || v === undefined ? "" : formatValue(v))) },
        { label: objective, values: (u, splits) => splits.map((v) => (v === null || v === undefined ? "" : formatValue(v))), size: 60 },
      ],
      series,
    };
    this.plot = new uPlot(options, this.columns([]), container);
    this.name = name;
  }

  columns(points) {
    const sorted = points.slice().sort((a, b) => a.x - b.x);
    const xs = sorted.map((point) => point.x);
    const columns = [xs];
    for (let round = 0; round < this.rounds; round++) {
      columns.push(sorted.map((point) => (point.round === round ? point.y : null)));
    }
    return columns;
  }

  update(points) {
    this.plot.setData(this.columns(points));
  }

  destroy() {
    this.plot.destroy();
  }
}

export class SweepPage {
  constructor(container, sweepId, { setLive }) {
    this.sweepId = sweepId;
    this.setLive = setLive;
    this.closed = false;
    this.plots = new Map();
    this.title = el("h1", {}, `Sweep ${sweepId}`);
    this.summary = el("p", { class: "muted", id: "sweep-summary" });
    this.error = el("p", { class: "banner error", id: "sweep-error", hidden: true });
    this.suggestion = el("div", { class: "card sweep-suggestion", id: "sweep-suggestion" },
      el("h2", {}, "Next suggestion"), el("p", { class: "muted" }, "Loading…"));
    this.rounds = el("div", { class: "card sweep-rounds", id: "sweep-rounds", hidden: true });
    this.charts = el("div", { class: "sweep-charts", id: "sweep-charts" });
    this.body = el("tbody");
    this.head = el("thead");
    this.table = el("div", { class: "card table-card" }, el("div", { class: "table-wrap" },
      el("table", { class: "table sweep-trials", id: "sweep-trials", "data-testid": "sweep-trials" },
        this.head, this.body)));
    this.root = el("div", { class: "page sweep-page" },
      el("header", { class: "page-header" }, this.title, this.summary,
        el("a", { href: "#/sweeps" }, "All sweeps")),
      this.error,
      el("div", { class: "sweep-top" }, this.suggestion, this.rounds),
      el("section", { class: "card" }, el("h2", {}, "Each setting against the objective"),
        el("p", { class: "muted" }, "α and 1 − β on log axes, the scale they are sampled on; colors are coarse-to-fine rounds."),
        this.charts),
      this.table);
    container.replaceChildren(this.root);
  }

  async start() {
    await this.refresh();
    this.timer = setInterval(() => this.refresh(), POLL_MS);
  }

  async refresh() {
    try {
      const sweep = await getJson("GET", `api/sweeps/${this.sweepId}`);
      if (this.closed) return;
      this.error.hidden = true;
      this.render(sweep);
      if (!this.suggestedFor || this.suggestedFor !== this.finishedCount(sweep)) {
        this.suggestedFor = this.finishedCount(sweep);
        this.renderSuggestion(await getJson("GET", `api/sweeps/${this.sweepId}/suggest?n=1`));
      }
    } catch (error) {
      if (this.closed) return;
      this.error.hidden = false;
      this.error.textContent = `Could not load sweep ${this.sweepId}: ${error.detail || error.message}`;
    }
  }

  finishedCount(sweep) {
    return sweep.trials.filter((trial) => trial.status !== "pending" && trial.status !== "running").length + 1;
  }

  render(sweep) {
    const settings = sweep.config.sweep;
    document.title = `panda · ${sweep.name}`;
    this.title.replaceChildren(`${sweep.name} `, badge(sweep.status));
    const done = sweep.trials.filter((trial) => trial.status === "finished").length;
    this.summary.textContent = `${settings.strategy.replace(/_/g, "-")} · ${done} of ${settings.trials} trials finished · ` +
      `${settings.direction} ${settings.objective} (${settings.summary}) · best ${formatValue(sweep.best_objective)}`;
    this.renderTable(sweep);
    this.renderCharts(sweep);
    this.renderRounds(sweep);
  }

  renderTable(sweep) {
    const names = Object.keys(sweep.config.space);
    const objective = sweep.config.sweep.objective;
    this.head.replaceWith(this.head = headRow(["Rank", "Trial", "Status", "Round", ...names, objective, "Run", ""]));
    this.body.replaceChildren(...sweep.trials.map((trial) => el("tr", {
      id: `trial-${trial.number}`, dataset: { rank: trial.rank ?? "", status: trial.status } },
      el("td", { class: "num" }, trial.rank ?? "–"),
      el("td", { class: "num muted" }, `#${trial.number}`),
      el("td", { title: trial.note || "" }, badge(trial.status)),
      el("td", { class: "num" }, trial.round),
      names.map((name) => el("td", { class: "num" }, formatValue(trial.params[name]))),
      el("td", { class: "num", "data-testid": "trial-objective" }, formatValue(trial.objective)),
      el("td", {}, trial.run ? el("a", { href: `#/runs/${trial.run}` }, `run ${trial.run}`) : "–"),
      el("td", {}, trial.status === "running" || trial.status === "pending"
        ? el("button", { type: "button", class: "button small", disabled: trial.stop_requested,
          onclick: (event) => this.stop(trial.number, event.target) },
        trial.stop_requested ? "Stopping…" : "Stop")
        : ""))));
  }

  async stop(number, button) {
    button.disabled = true;
    try {
      await getJson("POST", `api/sweeps/${this.sweepId}/trials/${number}/stop`);
      await this.refresh();
    } catch (error) {
      this.error.hidden = false;
      this.error.textContent = `Could not stop trial ${number}: ${error.detail || error.message}`;
    }
  }

  renderCharts(sweep) {
    const space = sweep.config.space;
    const rounds = Math.max(1, ...sweep.trials.map((trial) => trial.round + 1));
    const finished = sweep.trials.filter((trial) => trial.objective !== null);
    for (const name of numericDimensions(sweep)) {
      const axis = axisOf(name, space[name]);
      let entry = this.plots.get(name);
      if (entry && entry.rounds !== rounds) {
        entry.destroy();
        entry.box.remove();
        entry = null;
      }
      if (!entry) {
        const box = el("div", { class: "sweep-chart", dataset: { param: name } },
          el("div", { class: "sweep-chart-title" },
            `${sweep.config.sweep.objective} against ${axis.label}${axis.log ? " (log scale)" : ""}`));
        this.charts.append(box);
        entry = new ScatterPlot(box, { name, axis, objective: sweep.config.sweep.objective, rounds });
        entry.box = box;
        this.plots.set(name, entry);
      }
      entry.update(finished
        .filter((trial) => typeof trial.params[name] === "number")
        .map((trial) => ({ x: axis.x(trial.params[name]), y: trial.objective, round: trial.round }))
        .filter((point) => !axis.log || point.x > 0));
    }
  }

  renderRounds(sweep) {
    if (!sweep.rounds.length) {
      this.rounds.hidden = true;
      return;
    }
    this.rounds.hidden = false;
    const names = Object.keys(sweep.config.space);
    this.rounds.replaceChildren(el("h2", {}, "Coarse-to-fine rounds"),
      el("table", { class: "table", id: "sweep-rounds-table" }, headRow(["Round", ...names]),
        el("tbody", {}, sweep.rounds.map((round) => el("tr", {},
          el("td", { class: "num" }, round.index),
          names.map((name) => el("td", { class: "num" }, describeRange(round.space[name]))))))));
  }

  renderSuggestion(found) {
    const items = found.suggestions;
    const children = [el("h2", {}, "Next suggestion")];
    if (!items.length) {
      children.push(el("p", { class: "muted" }, "Nothing to suggest now: the budget is spent, or a round waits for its trials."));
    } else {
      const item = items[0];
      children.push(el("dl", { class: "sweep-params", "data-testid": "suggestion-params" },
        Object.entries(item.params).flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, formatValue(value))])));
      children.push(el("p", { class: "muted", "data-testid": "suggestion-ei" }, item.expected_improvement === null
        ? `${found.strategy.replace(/_/g, "-")} pick (round ${item.round}); expected improvement comes with the Bayesian strategy.`
        : `Expected improvement ${formatValue(item.expected_improvement)} over the best so far.`));
    }
    this.suggestion.replaceChildren(...children);
  }

  close() {
    this.closed = true;
    clearInterval(this.timer);
    for (const entry of this.plots.values()) entry.destroy();
  }
}

function describeRange(dimension) {
  if (dimension === null || typeof dimension !== "object") return formatValue(dimension);
  const [kind, bounds] = Object.entries(dimension).find(([key]) => key !== "log") || [];
  if (Array.isArray(bounds) && kind !== "choice") return `${formatValue(bounds[0])} – ${formatValue(bounds[1])}`;
  return Array.isArray(bounds) ? bounds.map(formatValue).join(", ") : "–";
}

export class SweepsPage {
  constructor(container, { setLive }) {
    this.setLive = setLive;
    this.closed = false;
    this.body = el("tbody");
    this.empty = el("div", { class: "empty card", id: "sweeps-empty", hidden: true },
      el("p", {}, el("strong", {}, "No sweeps yet.")),
      el("p", {}, "Start one with ", el("code", {}, "panda sweep examples/digits-sweep.toml"), "."));
    this.root = el("div", { class: "page sweeps-page" },
      el("header", { class: "page-header" }, el("h1", {}, "Sweeps"),
        el("p", { class: "muted" }, "Many runs with sampled settings; open one to see its trials ranked.")),
      this.empty,
      el("div", { class: "card table-card" }, el("div", { class: "table-wrap" },
        el("table", { class: "table", id: "sweeps-table" },
          headRow(["#", "Name", "Status", "Strategy", "Trials", "Best", "Updated"]), this.body))));
    container.replaceChildren(this.root);
  }

  async start() {
    await this.refresh();
    this.timer = setInterval(() => this.refresh(), POLL_MS * 2);
  }

  async refresh() {
    let sweeps;
    try {
      sweeps = await getJson("GET", "api/sweeps");
    } catch {
      return;
    }
    if (this.closed) return;
    this.empty.hidden = sweeps.length > 0;
    this.body.replaceChildren(...sweeps.map((sweep) => {
      const open = () => { location.hash = `#/sweeps/${sweep.id}`; };
      const total = Object.values(sweep.trial_counts).reduce((a, b) => a + b, 0);
      return el("tr", { id: `sweep-${sweep.id}`, class: "clickable", onclick: open },
        el("td", { class: "num muted" }, `#${sweep.id}`),
        el("td", {}, el("a", { href: `#/sweeps/${sweep.id}` }, sweep.name)),
        el("td", {}, badge(sweep.status)),
        el("td", {}, sweep.config.sweep.strategy.replace(/_/g, "-")),
        el("td", { class: "num" }, `${sweep.trial_counts.finished || 0} / ${total}`),
        el("td", { class: "num" }, formatValue(sweep.best_objective)),
        el("td", {}, timeCell(sweep.updated_at)));
    }));
  }

  close() {
    this.closed = true;
    clearInterval(this.timer);
  }
}
