// Tables of a run's checkpoints and branches.

import { el, formatBytes, formatStep, formatTime, headRow, timeCell } from "./format.js";

export class CheckpointTable {
  constructor() {
    this.checkpoints = new Map();
    this.body = el("tbody");
    this.empty = el("p", { class: "empty" }, "No checkpoints yet. One is written before every nudge.");
    this.root = el("div", { class: "table-wrap" },
      el("table", { id: "checkpoints", class: "table", "data-testid": "checkpoints" },
        headRow(["#", "Step", "Branch", "Reason", "Size", "Written", "File"]),
        this.body),
      this.empty);
  }

  setAll(checkpoints) {
    this.checkpoints = new Map(checkpoints.map((checkpoint) => [checkpoint.id, checkpoint]));
    this.render();
  }

  upsert(checkpoint) {
    this.checkpoints.set(checkpoint.id, checkpoint);
    this.render();
  }

  render() {
    const rows = [...this.checkpoints.values()].sort((a, b) => b.id - a.id);
    this.empty.hidden = rows.length > 0;
    this.body.parentElement.hidden = rows.length === 0;
    this.body.replaceChildren(...rows.map((checkpoint) =>
      el("tr", { id: `checkpoint-${checkpoint.id}`, class: checkpoint.deleted ? "deleted" : null,
        dataset: { checkpointId: checkpoint.id, step: checkpoint.step } },
        el("td", { class: "num muted" }, `#${checkpoint.id}`),
        el("td", { class: "num" }, formatStep(checkpoint.step)),
        el("td", { class: "num" }, checkpoint.branch),
        el("td", {}, el("span", { class: `tag tag-${checkpoint.reason}` }, checkpoint.reason),
          checkpoint.deleted ? el("span", { class: "tag" }, "deleted") : null),
        el("td", { class: "num" }, formatBytes(checkpoint.size_bytes)),
        el("td", {}, timeCell(checkpoint.created_at)),
        el("td", { class: "path", title: `${checkpoint.path}\nsha256 ${checkpoint.sha256}` }, checkpoint.path))));
  }
}

export class BranchTable {
  constructor() {
    this.body = el("tbody");
    this.root = el("div", { class: "table-wrap" },
      el("table", { id: "branches", class: "table", "data-testid": "branches" },
        headRow(["Branch", "From", "Starts at step", "Reason", "Created", ""]),
        this.body));
  }

  setAll(branches) {
    const rows = branches.slice().sort((a, b) => a.id - b.id);
    this.body.replaceChildren(...rows.map((branch) =>
      el("tr", { id: `branch-${branch.id}`, class: branch.current ? "current" : "abandoned",
        dataset: { branchId: branch.id, current: branch.current } },
        el("td", { class: "num" }, branch.id),
        el("td", { class: "num muted" }, branch.parent === null ? "–" : branch.parent),
        el("td", { class: "num" }, formatStep(branch.start_step)),
        el("td", {}, el("span", { class: "tag" }, branch.reason)),
        el("td", { title: formatTime(branch.created_at) }, timeCell(branch.created_at)),
        el("td", {}, branch.current
          ? el("span", { class: "badge badge-running" }, "current line")
          : el("span", { class: "muted" }, "faded on charts")))));
  }
}
