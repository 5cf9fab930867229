// The nudge form (α and momentum of the running job) and the nudge history.

import { api, writeToken } from "./api.js";
import {
  badge, el, formatStep, formatTime, formatValue, headRow, paramLabel, timeCell,
} from "./format.js";

/**
 * Check one typed value the way the server will. Returns {value} or {error};
 * an empty field returns {} (that parameter is left alone).
 */
export function parseNudgeValue(param, text) {
  const trimmed = (text || "").trim();
  if (trimmed === "") return {};
  const value = Number(trimmed);
  const label = paramLabel(param);
  if (Number.isNaN(value)) return { error: `${label} must be a number, got "${trimmed}"` };
  if (!Number.isFinite(value)) return { error: `${label} must be finite, got ${trimmed}` };
  if (param === "lr" && !(value > 0)) return { error: `α must be > 0, got ${trimmed}` };
  if (param === "momentum" && !(value >= 0 && value < 1)) {
    return { error: `momentum must be in [0, 1), got ${trimmed}` };
  }
  return { value };
}

/** The form that asks the server for a nudge. `current()` gives {lr, momentum}. */
export class NudgeForm {
  constructor(runId, { current }) {
    this.runId = runId;
    this.current = current;

    this.lrInput = el("input", {
      id: "nudge-lr", name: "lr", type: "text", inputmode: "decimal",
      autocomplete: "off", spellcheck: "false", "aria-describedby": "nudge-error",
    });
    this.momentumInput = el("input", {
      id: "nudge-momentum", name: "momentum", type: "text", inputmode: "decimal",
      autocomplete: "off", spellcheck: "false",
    });
    this.noteInput = el("input", {
      id: "nudge-note", name: "note", type: "text", maxlength: "2000",
      placeholder: "why, e.g. loss plateau", autocomplete: "off",
    });
    this.submit = el("button", { id: "nudge-submit", type: "submit", class: "button primary" }, "Send nudge");
    this.error = el("p", { id: "nudge-error", class: "form-error", role: "alert", "data-testid": "nudge-error" });
    this.tokenInput = el("input", {
      id: "nudge-token", name: "token", type: "password", autocomplete: "off",
      placeholder: "the server's PANDA_TOKEN",
    });
    this.tokenField = el("div", { class: "field", hidden: true },
      el("label", { for: "nudge-token" }, "Write token ",
        el("span", { class: "muted" }, "(kept in this browser)")),
      this.tokenInput);
    this.message = el("p", { id: "nudge-message", class: "form-message", role: "status" });

    const scaleButtons = [0.1, 0.5, 2].map((factor) =>
      el("button", {
        type: "button", class: "button chip", title: `fill in ${factor} × the current α`,
        "data-factor": factor, onclick: () => this.scaleLr(factor),
      }, `×${factor}`));

    this.root = el("form", { id: "nudge-form", class: "nudge-form", novalidate: true,
      onsubmit: (event) => { event.preventDefault(); this.send(); } },
      el("div", { class: "field" },
        el("label", { for: "nudge-lr" }, "Learning rate α"),
        el("div", { class: "field-row" }, this.lrInput, ...scaleButtons)),
      el("div", { class: "field" },
        el("label", { for: "nudge-momentum" }, "Momentum ", el("span", { class: "muted" }, "(β1 for Adam)")),
        this.momentumInput),
      el("div", { class: "field" },
        el("label", { for: "nudge-note" }, "Note ", el("span", { class: "muted" }, "(optional)")),
        this.noteInput),
      this.tokenField,
      el("div", { class: "form-actions" }, this.submit),
      this.error, this.message,
      el("p", { class: "hint" },
        "Applied at the next step boundary, right after a checkpoint, so it can be undone."));
    this.refreshPlaceholders();
  }

  refreshPlaceholders() {
    const { lr, momentum } = this.current();
    this.lrInput.placeholder = lr === undefined ? "e.g. 0.01" : `now ${formatValue(lr)}`;
    this.momentumInput.placeholder = momentum === undefined ? "e.g. 0.9" : `now ${formatValue(momentum)}`;
  }

  scaleLr(factor) {
    const base = Number(this.lrInput.value.trim() || this.current().lr);
    if (Number.isFinite(base) && base > 0) this.lrInput.value = String(Number((base * factor).toPrecision(6)));
    this.lrInput.focus();
  }

  showError(text) {
    this.error.textContent = text;
    this.message.textContent = "";
  }

  /** Validate both fields, then POST one nudge per filled field. */
  async send() {
    const note = this.noteInput.value.trim() || null;
    const wanted = [["lr", this.lrInput], ["momentum", this.momentumInput]]
      .map(([param, input]) => ({ param, input, ...parseNudgeValue(param, input.value) }));
    const invalid = wanted.find((item) => item.error);
    if (invalid) {
      invalid.input.focus();
      return this.showError(invalid.error);
    }
    const requests = wanted.filter((item) => item.value !== undefined);
    if (requests.length === 0) return this.showError("Enter a new α or momentum.");

    if (this.tokenInput.value.trim()) {
      writeToken.set(this.tokenInput.value.trim());
      this.tokenInput.value = "";
    }
    this.submit.disabled = true;
    this.showError("");
    const sent = [];
    try {
      for (const { param, value, input } of requests) {
        const nudge = await api.createNudge(this.runId, { param, value, note });
        sent.push(`#${nudge.id} ${paramLabel(param)} → ${formatValue(value)}`);
        input.value = "";
      }
      this.noteInput.value = "";
      this.message.textContent = `Queued ${sent.join(", ")}; it applies at the next step boundary.`;
    } catch (error) {
      if (error.status === 401) {
        writeToken.set(null); // it was missing or wrong
        this.tokenField.hidden = false;
        this.tokenInput.focus();
      }
      this.showError(error.detail || error.message);
    } finally {
      this.submit.disabled = false;
    }
  }
}

function changeCell(nudge, byId) {
  if (nudge.action === "undo") {
    const target = byId.get(nudge.undoes);
    const what = target
      ? `${paramLabel(target.param)} ${formatValue(target.value)} → ${formatValue(target.old_value)}`
      : "";
    return el("td", {},
      el("span", { class: "undo-tag" }, `undo #${nudge.undoes}`), " ", el("span", { class: "muted" }, what));
  }
  // The old value is known once the job applied the nudge.
  return el("td", { class: "change" },
    el("span", { class: "param" }, paramLabel(nudge.param)), " ",
    nudge.old_value === null ? null : el("span", { class: "num" }, formatValue(nudge.old_value)), " → ",
    el("strong", { class: "num" }, formatValue(nudge.value)),
    nudge.factor !== null && nudge.factor !== undefined
      ? el("span", { class: "muted factor" }, ` (×${formatValue(nudge.factor)})`) : null);
}

/** The history table; `undoneBy` maps a nudge id to the undo that takes it back. */
export class NudgeHistory {
  constructor(runId) {
    this.runId = runId;
    this.nudges = new Map();
    this.onChange = () => {};
    this.body = el("tbody");
    this.error = el("p", { id: "nudge-history-error", class: "form-error", role: "alert" });
    this.empty = el("p", { class: "empty" },
      "No nudges yet. Use the form to change α or momentum of the running job.");
    this.root = el("div", { class: "table-wrap" },
      el("table", { id: "nudge-history", class: "table", "data-testid": "nudge-history" },
        headRow(["#", "Change", "Status", "Requested", "Applied at step", "Note", "Checkpoint", ""]),
        this.body),
      this.empty, this.error);
  }

  /** Replace the history, keeping an event's newer state over a slower fetch. */
  setAll(nudges) {
    const fresh = new Map(nudges.map((nudge) => [nudge.id, nudge]));
    for (const [id, known] of this.nudges) {
      const fetched = fresh.get(id);
      if (!fetched || (fetched.status === "pending" && known.status !== "pending")) fresh.set(id, known);
    }
    this.nudges = fresh;
    this.render();
  }

  upsert(nudge) {
    this.nudges.set(nudge.id, nudge);
    this.render();
  }

  list() {
    return [...this.nudges.values()].sort((a, b) => a.id - b.id);
  }

  undoneBy() {
    const map = new Map();
    for (const nudge of this.nudges.values()) {
      if (nudge.action === "undo" && ["pending", "applied"].includes(nudge.status)) map.set(nudge.undoes, nudge);
    }
    return map;
  }

  async act(action, nudge) {
    this.error.textContent = "";
    try {
      const result = action === "cancel"
        ? await api.cancelNudge(this.runId, nudge.id)
        : await api.undoNudge(this.runId, nudge.id);
      this.upsert(result);
    } catch (error) {
      const hint = error.status === 401 ? " Enter the token in the nudge form above." : "";
      this.error.textContent = `${action} #${nudge.id}: ${error.detail || error.message}${hint}`;
    }
  }

  actionsCell(nudge, undoneBy) {
    const cell = el("td", { class: "actions" });
    if (nudge.status === "pending") {
      cell.append(el("button", { type: "button", class: "button small nudge-cancel", "data-testid": "nudge-cancel",
        onclick: () => this.act("cancel", nudge) }, "Cancel"));
    } else if (nudge.status === "applied" && nudge.action === "set" && nudge.checkpoint !== null) {
      const undo = undoneBy.get(nudge.id);
      if (undo) {
        cell.append(el("span", { class: "muted" }, `undo #${undo.id} ${undo.status}`));
      } else {
        cell.append(el("button", { type: "button", class: "button small nudge-undo", "data-testid": "nudge-undo",
          title: `go back to checkpoint #${nudge.checkpoint} (step ${formatStep(nudge.applied_step)})` +
            ` and restore ${paramLabel(nudge.param)} ${formatValue(nudge.old_value)}`,
          onclick: () => this.act("undo", nudge) }, "Undo"));
      }
    }
    return cell;
  }

  render() {
    const nudges = this.list();
    const undoneBy = this.undoneBy();
    this.empty.hidden = nudges.length > 0;
    this.body.parentElement.hidden = nudges.length === 0;
    this.body.replaceChildren(...nudges.slice().reverse().map((nudge) =>
      el("tr", { id: `nudge-${nudge.id}`, class: undoneBy.get(nudge.id)?.status === "applied" ? "undone" : null,
        dataset: { nudgeId: nudge.id, status: nudge.status, action: nudge.action } },
        el("td", { class: "num muted" }, `#${nudge.id}`),
        changeCell(nudge, this.nudges),
        el("td", {}, badge(nudge.status, nudge.reason),
          nudge.reason ? el("div", { class: "reason" }, nudge.reason) : null),
        el("td", {}, timeCell(nudge.requested_at)),
        el("td", { class: "num" }, formatStep(nudge.applied_step)),
        el("td", { class: "note" }, nudge.note || ""),
        el("td", { class: "num" }, nudge.checkpoint === null ? "–" : `#${nudge.checkpoint}`),
        this.actionsCell(nudge, undoneBy))));
    this.onChange();
  }
}

/** Vertical chart markers for applied nudges; undone ones are faded. */
export function nudgeMarkers(nudges, undoneBy) {
  const byId = new Map(nudges.map((nudge) => [nudge.id, nudge]));
  return nudges
    .filter((nudge) => nudge.status === "applied" && nudge.applied_step !== null)
    .map((nudge) => {
      const undone = undoneBy.get(nudge.id)?.status === "applied";
      if (nudge.action === "undo") {
        const target = byId.get(nudge.undoes);
        const label = target
          ? `undo #${nudge.undoes}: ${paramLabel(target.param)} → ${formatValue(target.old_value)}`
          : `undo #${nudge.undoes}`;
        return { id: nudge.id, step: nudge.applied_step, color: "#6b7280", short: "undo",
          title: `${label} at step ${formatStep(nudge.applied_step)}`, faded: false };
      }
      const change = `${paramLabel(nudge.param)} ${formatValue(nudge.old_value)} → ${formatValue(nudge.value)}`;
      return {
        id: nudge.id, step: nudge.applied_step, faded: undone,
        color: nudge.param === "momentum" ? "#9333ea" : "#dc2626",
        short: `${paramLabel(nudge.param)}→${formatValue(nudge.value)}`,
        title: `nudge #${nudge.id}: ${change} at step ${formatStep(nudge.applied_step)}` +
          `${nudge.applied_at ? ` (${formatTime(nudge.applied_at)})` : ""}${undone ? " — undone" : ""}`,
      };
    });
}
