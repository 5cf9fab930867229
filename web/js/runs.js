// The runs list: every run with its status and latest numbers, live.

import { api, decodeValue, openStream } from "./api.js";
import { badge, el, formatStep, formatTime, formatValue, headRow, timeCell } from "./format.js";
import { headlineLossKey } from "./lines.js";

function lastValue(run, key) {
  return key && run.last_values && key in run.last_values ? decodeValue(run.last_values[key]) : null;
}

export class RunsPage {
  constructor(container, { setLive }) {
    this.setLive = setLive;
    this.runs = new Map();
    this.selected = new Set(); // run ids ticked for the compare view
    this.closed = false;
    this.body = el("tbody");
    this.empty = el("div", { class: "empty card", id: "runs-empty" },
      el("p", {}, el("strong", {}, "No runs yet.")),
      el("p", {}, "Start one with ", el("code", {}, "panda demo"), ", or call ",
        el("code", {}, "panda.init()"), " in your training script; it shows up here at once."));
    this.table = el("div", { class: "card table-card" }, el("div", { class: "table-wrap" },
      el("table", { id: "runs-table", class: "table runs", "data-testid": "runs-table" },
        headRow(["", "#", "Name", "Status", "Last step", "Last loss", "α", "Created", "Updated"]),
        this.body)));
    this.compareButton = el("button", { type: "button", id: "compare-button", class: "button",
      onclick: () => { location.hash = `#/compare?runs=${[...this.selected].join(",")}`; } }, "Compare");
    this.root = el("div", { class: "page runs-page" },
      el("header", { class: "page-header" }, el("h1", {}, "Runs"),
        el("p", { class: "muted" },
          "Click a run to watch its curves and nudge it; tick two or more to compare them."),
        this.compareButton),
      this.empty, this.table);
    container.replaceChildren(this.root);
    this.render();
  }

  async start() {
    this.closeStream = openStream("api/stream", { run: (run) => this.upsert(run) },
      { onState: this.setLive, onReopen: () => this.reload() });
    await this.reload();
  }

  async reload() {
    try {
      const runs = await api.listRuns();
      if (this.closed) return;
      for (const run of runs) this.upsert(run, false);
      this.render();
    } catch (error) {
      this.root.querySelector("#runs-error")?.remove();
      const text = `Could not load runs: ${error.detail || error.message}`;
      this.root.append(el("p", { class: "banner error", id: "runs-error" }, text));
    }
  }

  upsert(run, render = true) {
    const known = this.runs.get(run.id);
    // An event may beat a slower list request; keep the newer state.
    if (known && known.updated_at > run.updated_at) return;
    this.runs.set(run.id, run);
    if (render) this.render();
  }

  row(run) {
    const lossKey = headlineLossKey(Object.keys(run.last_values || {}));
    const open = () => { location.hash = `#/runs/${run.id}`; };
    return el("tr", { id: `run-${run.id}`, class: "clickable", tabindex: "0",
      dataset: { runId: run.id, status: run.status },
      onclick: open, onkeydown: (event) => { if (event.key === "Enter") open(); } },
      el("td", { class: "pick", onclick: (event) => event.stopPropagation() },
        el("input", { type: "checkbox", class: "run-pick", "aria-label": `compare run ${run.id}`,
          checked: this.selected.has(run.id), onchange: (event) => this.pick(run.id, event.target.checked) })),
      el("td", { class: "num muted" }, `#${run.id}`),
      el("td", { class: "name" }, el("a", { href: `#/runs/${run.id}` }, run.name || `run ${run.id}`)),
      el("td", {}, badge(run.status)),
      el("td", { class: "num", "data-testid": "run-last-step" }, formatStep(run.last_step)),
      el("td", { class: "num", "data-testid": "run-last-loss", title: lossKey || "" },
        lossKey ? formatValue(lastValue(run, lossKey)) : "–"),
      el("td", { class: "num" }, formatValue(lastValue(run, "lr"))),
      el("td", { title: formatTime(run.created_at) }, formatTime(run.created_at)),
      el("td", {}, timeCell(run.updated_at)));
  }

  pick(runId, on) {
    if (on) this.selected.add(runId);
    else this.selected.delete(runId);
    this.updateCompareButton();
  }

  updateCompareButton() {
    const count = this.selected.size;
    this.compareButton.disabled = count < 2;
    this.compareButton.textContent = count ? `Compare ${count} runs` : "Compare";
  }

  render() {
    this.updateCompareButton();
    const runs = [...this.runs.values()].sort((a, b) => b.id - a.id);
    this.empty.hidden = runs.length > 0;
    this.table.hidden = runs.length === 0;
    this.body.replaceChildren(...runs.map((run) => this.row(run)));
  }

  close() {
    this.closed = true;
    if (this.closeStream) this.closeStream();
  }
}
