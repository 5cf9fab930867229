// Bounded views of metric lines: a run's current line, or the line that ends
// in one branch, over a step range, never more than a chart can show. A
// million-point metric thus costs the page a few thousand points, and a zoom
// asks for the visible steps again at full detail.

import { api } from "./api.js";
import { gapValue } from "./lines.js";

/**
 * The segments of the line that ends in `branchId`, oldest first:
 * [{branch, from, to}] with `to` exclusive (null: open). A parent outside
 * `branches` (the run a fork came from) ends the walk.
 */
export function branchSegments(branches, branchId) {
  const byId = new Map(branches.map((branch) => [branch.id, branch]));
  const segments = [];
  let to = null;
  let branch = byId.get(branchId);
  while (branch) {
    segments.unshift({ branch: branch.id, from: branch.start_step, to });
    to = branch.start_step;
    branch = branch.parent === null ? null : byId.get(branch.parent);
  }
  return segments;
}

/** The branch whose points the current line shows at `step`, from the branch list. */
export function branchAt(branches, step) {
  const current = branches.find((branch) => branch.current);
  if (!current) return null;
  const segment = branchSegments(branches, current.id)
    .find((part) => step >= part.from && (part.to === null || step < part.to));
  return segment ? segment.branch : null;
}

function emptyView() {
  return { steps: [], values: [], times: [], total: 0, downsampled: false };
}

function appendSeries(view, series, minStep, maxStep) {
  for (let i = 0; i < series.steps.length; i++) {
    const step = series.steps[i];
    // A server without step ranges answers the whole line; keep the range.
    if ((minStep !== null && step < minStep) || (maxStep !== null && step > maxStep)) continue;
    view.steps.push(step);
    view.values.push(gapValue(series.values[i]));
    view.times.push(series.times ? series.times[i] : null);
  }
  view.total += series.total ?? series.steps.length;
  view.downsampled = view.downsampled || !!series.downsampled;
}

/**
 * Read `key` of a run as a view of at most `maxPoints` points.
 *
 * Without `branch`, along the run's current line (the server joins it);
 * with `branch` and the run's `branches`, along the line ending in that
 * branch, one request per segment in [minStep, maxStep]. Resolves to
 * {steps, values (null for gaps), times, total, downsampled}.
 */
export async function readView(runId, key, { branch = null, branches = [], minStep = null, maxStep = null,
  maxPoints = 2_000 } = {}) {
  const view = emptyView();
  if (branch === null) {
    appendSeries(view, await api.readSeries(runId, key, { maxPoints, minStep, maxStep }), minStep, maxStep);
    return view;
  }
  const parts = branchSegments(branches, branch)
    .map((segment) => ({
      branch: segment.branch,
      min: Math.max(segment.from, minStep ?? 0),
      max: segment.to === null ? maxStep : Math.min(segment.to - 1, maxStep ?? Infinity),
    }))
    .filter((part) => part.max === null || part.min <= part.max);
  const found = await Promise.all(parts.map((part) => api.readSeries(runId, key,
    { branch: part.branch, minStep: part.min, maxStep: part.max, maxPoints })));
  found.forEach((series, index) => appendSeries(view, series, parts[index].min, parts[index].max));
  return view;
}

/** First index i with sorted[i] >= value. */
export function lowerBound(sorted, value) {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (sorted[mid] < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * The steps behind an x range, from a view's (sorted) x values and their
 * steps: one point beyond each end, so a zoomed line reaches the edges.
 */
export function stepRange(xs, steps, range) {
  if (!xs.length) return null;
  const first = Math.max(0, lowerBound(xs, range.min) - 1);
  const last = Math.min(xs.length - 1, lowerBound(xs, range.max));
  let min = Infinity;
  let max = -Infinity;
  for (let i = first; i <= last; i++) {
    min = Math.min(min, steps[i]);
    max = Math.max(max, steps[i]);
  }
  return min <= max ? { min, max } : null;
}

/** The x of `step` on a view (linear between its points), or null outside it. */
export function xAtStep(steps, xs, step) {
  if (!steps.length || step < steps[0] || step > steps[steps.length - 1]) return null;
  const i = lowerBound(steps, step);
  if (steps[i] === step) return xs[i];
  const [s0, s1, x0, x1] = [steps[i - 1], steps[i], xs[i - 1], xs[i]];
  return x0 + ((x1 - x0) * (step - s0)) / (s1 - s0);
}
