// What a curve is doing: exponential smoothing, least-squares slopes, and the
// verdict on a nudge from the slope of the loss before and after it.

/**
 * Exponential moving average with bias correction (as Adam corrects its
 * moments): s_t = w·s_{t-1} + (1 − w)·v_t, shown as s_t / (1 − w^n) after n
 * finite values, so the curve starts at the data rather than at zero.
 * A gap (null or non-finite) stays a gap and leaves the average untouched.
 */
export function smoothEma(values, weight) {
  if (!(weight > 0)) return values.slice();
  const w = Math.min(weight, 0.999);
  const out = new Array(values.length);
  let average = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === undefined) {
      out[i] = undefined;
      continue;
    }
    if (value === null || !Number.isFinite(value)) {
      out[i] = null;
      continue;
    }
    average = w * average + (1 - w) * value;
    count += 1;
    out[i] = average / (1 - w ** count);
  }
  return out;
}

/** Least-squares slope of values over steps (per step); null with < 3 finite points. */
export function slope(steps, values) {
  let n = 0;
  let sumX = 0;
  let sumY = 0;
  for (let i = 0; i < steps.length; i++) {
    if (values[i] === null || !Number.isFinite(values[i])) continue;
    n += 1;
    sumX += steps[i];
    sumY += values[i];
  }
  if (n < 3) return null;
  const meanX = sumX / n;
  const meanY = sumY / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < steps.length; i++) {
    if (values[i] === null || !Number.isFinite(values[i])) continue;
    sxy += (steps[i] - meanX) * (values[i] - meanY);
    sxx += (steps[i] - meanX) ** 2;
  }
  return sxx > 0 ? sxy / sxx : null;
}

/** Keys where a larger value is better; their effect is read the other way round. */
export function higherIsBetter(key) {
  return /acc|f1|auc|precision|recall|score|iou|bleu/i.test(key || "");
}

/** Defaults of the review page, stated on it. */
export const EFFECT_THRESHOLD = 0.02; // of the loss level, per window
export const MIN_WINDOW_POINTS = 3;

/**
 * The effect of a nudge applied at `step` on one metric line (sorted steps,
 * values with null gaps), over `window` steps on each side.
 *
 * effect = (slope_after − slope_before) × window / |smoothed level before|:
 * how much faster the metric moves per window after the nudge, as a
 * fraction of its level; negative means a loss falls faster. The verdict is
 * "helped" when the metric improves by more than `threshold` (2 %), "hurt"
 * when it worsens by more, or when the curve turns non-finite after the
 * nudge, "neutral" otherwise, and "waiting" / "n/a" without enough points.
 */
export function nudgeEffect(steps, values, step, { window = 50, smoothing = 0.6, key = "loss",
  threshold = EFFECT_THRESHOLD, running = false } = {}) {
  const before = { steps: [], values: [] };
  const after = { steps: [], values: [] };
  let diverged = false;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    if (s >= step - window && s < step) {
      before.steps.push(s);
      before.values.push(values[i]);
    } else if (s >= step && s < step + window) {
      after.steps.push(s);
      after.values.push(values[i]);
      if (values[i] === null) diverged = true;
    }
  }
  const finite = (part) => part.values.filter((v) => v !== null && Number.isFinite(v)).length;
  const smoothedBefore = smoothEma(before.values, smoothing);
  const smoothedAfter = smoothEma(after.values, smoothing);
  const lastFinite = (column) => {
    for (let i = column.length - 1; i >= 0; i--) if (column[i] !== null && column[i] !== undefined) return column[i];
    return null;
  };
  const result = {
    pointsBefore: finite(before), pointsAfter: finite(after),
    levelBefore: lastFinite(smoothedBefore), levelAfter: lastFinite(smoothedAfter),
    slopeBefore: slope(before.steps, before.values), slopeAfter: slope(after.steps, after.values),
    effect: null, verdict: "n/a",
  };
  const lastStep = steps.length ? steps[steps.length - 1] : -Infinity;
  if (diverged && result.pointsBefore >= MIN_WINDOW_POINTS) {
    result.verdict = "hurt";
    result.effect = Infinity;
    return result;
  }
  if (result.slopeBefore === null || result.slopeAfter === null || !result.levelBefore) {
    result.verdict = running && lastStep < step + window - 1 ? "waiting" : "n/a";
    return result;
  }
  const sign = higherIsBetter(key) ? -1 : 1;
  result.effect = sign * (result.slopeAfter - result.slopeBefore) * window / Math.abs(result.levelBefore);
  if (running && lastStep < step + window - 1) result.verdict = "waiting";
  else if (result.effect <= -threshold) result.verdict = "helped";
  else if (result.effect >= threshold) result.verdict = "hurt";
  else result.verdict = "neutral";
  return result;
}
