// A run's metric lines in the browser: the current line of each key, the
// abandoned tails of old branches, and the rules that group keys into charts.

/** Non-finite values become null, which uPlot draws as a gap. */
export function gapValue(value) {
  if (value === null || value === undefined) return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

/** One metric key along one line: sorted steps and their (gapped) values. */
export class Line {
  constructor(steps = [], values = []) {
    this.steps = [];
    this.values = [];
    this.append(steps, values);
  }

  get length() {
    return this.steps.length;
  }

  get lastStep() {
    return this.steps.length ? this.steps[this.steps.length - 1] : null;
  }

  /** Add points; a step already present keeps its first value, as the store does. */
  append(steps, values) {
    const count = Math.min(steps.length, values.length);
    let inOrder = true;
    let last = this.lastStep;
    for (let i = 0; i < count; i++) {
      if (last !== null && steps[i] <= last) {
        inOrder = false;
        break;
      }
      last = steps[i];
    }
    if (inOrder) {
      for (let i = 0; i < count; i++) {
        this.steps.push(Number(steps[i]));
        this.values.push(gapValue(values[i]));
      }
      return;
    }
    this.mergeOutOfOrder(steps, values, count);
  }

  mergeOutOfOrder(steps, values, count) {
    const byStep = new Map();
    for (let i = 0; i < this.steps.length; i++) byStep.set(this.steps[i], this.values[i]);
    for (let i = 0; i < count; i++) {
      const step = Number(steps[i]);
      if (!byStep.has(step)) byStep.set(step, gapValue(values[i]));
    }
    this.steps = [...byStep.keys()].sort((a, b) => a - b);
    this.values = this.steps.map((step) => byStep.get(step));
  }

  /** A copy holding only the points with step >= `fromStep`. */
  from(fromStep) {
    const line = new Line();
    for (let i = 0; i < this.steps.length; i++) {
      if (this.steps[i] >= fromStep) {
        line.steps.push(this.steps[i]);
        line.values.push(this.values[i]);
      }
    }
    return line;
  }
}

/**
 * Which part of each non-current branch is an abandoned tail.
 *
 * A branch on the current line is abandoned from its on-line child's start
 * step on; a branch off the line is abandoned from its own start step.
 * Returns [{branch, fromStep}] for every branch with a possible tail.
 */
export function abandonedTails(branches) {
  const byId = new Map(branches.map((branch) => [branch.id, branch]));
  const current = branches.find((branch) => branch.current);
  if (!current) return [];

  const childOnLine = new Map();
  let walker = current;
  while (walker && walker.parent !== null && byId.has(walker.parent)) {
    childOnLine.set(walker.parent, walker);
    walker = byId.get(walker.parent);
  }
  return branches
    .filter((branch) => branch.id !== current.id)
    .map((branch) => {
      const child = childOnLine.get(branch.id);
      return { branch: branch.id, fromStep: child ? child.start_step : branch.start_step };
    });
}

/** Chart groups, in page order. A key joins the first group whose test matches. */
export const CHART_GROUPS = [
  { id: "loss", title: "Loss", test: (key) => /loss/i.test(key) },
  { id: "acc", title: "Accuracy", test: (key) => /acc/i.test(key) },
  { id: "lr", title: "Learning rate α", test: (key) => /(^|[/_.])lr($|[/_.])|learning.?rate/i.test(key) },
  { id: "momentum", title: "Momentum", test: (key) => /momentum|beta1/i.test(key) },
];

/** The chart id a key belongs to; keys matching no group get a chart each. */
export function chartIdFor(key) {
  const group = CHART_GROUPS.find((candidate) => candidate.test(key));
  return group ? group.id : `key:${key}`;
}

export function chartTitleFor(chartId) {
  const group = CHART_GROUPS.find((candidate) => candidate.id === chartId);
  return group ? group.title : chartId.slice("key:".length);
}

/** Sort chart ids: the known groups first in their order, then other keys by name. */
export function compareChartIds(a, b) {
  const rank = (id) => {
    const index = CHART_GROUPS.findIndex((group) => group.id === id);
    return index === -1 ? CHART_GROUPS.length : index;
  };
  return rank(a) - rank(b) || a.localeCompare(b);
}

/** Training keys before validation and test keys, then by name. */
export function compareKeys(a, b) {
  const rank = (key) => (/val|test|eval/i.test(key) ? 1 : 0);
  return rank(a) - rank(b) || a.localeCompare(b);
}

/** The loss a person reads first: "loss" itself, else the first loss-like key. */
export function headlineLossKey(keys) {
  if (keys.includes("loss")) return "loss";
  return keys.filter((key) => /loss/i.test(key)).sort(compareKeys)[0] || null;
}
