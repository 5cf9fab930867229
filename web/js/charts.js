// Step-indexed line charts on top of uPlot, reusable by every view: a chart
// takes named lines (steps and values) plus vertical markers, and redraws
// at most once per animation frame however fast points arrive.

import { el, formatValue, formatStep } from "./format.js";

/* global uPlot */

export const PALETTE = [
  "#2563eb", "#ea580c", "#16a34a", "#9333ea",
  "#db2777", "#0891b2", "#ca8a04", "#4b5563",
];

/** `color` with an alpha channel, for faded tails. */
export function fade(color, alpha = 0.35) {
  const hex = color.replace("#", "");
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/**
 * Align several sorted step arrays on their union, as uPlot wants.
 * A step a line lacks becomes `undefined` (uPlot bridges it); a gap value
 * (null) stays null (uPlot breaks the line there).
 */
export function alignLines(lines) {
  if (lines.length === 0) return [[]];
  const first = lines[0].steps;
  const same = lines.every((line) => line.steps === first ||
    (line.steps.length === first.length && line.steps.every((step, i) => step === first[i])));
  if (same) return [first.slice(), ...lines.map((line) => line.values.slice())];

  // A k-way merge of the sorted step arrays: linear in the points.
  const stepsOf = lines.map((line) => line.steps);
  const valuesOf = lines.map((line) => line.values);
  const columns = lines.map(() => []);
  const next = new Array(lines.length).fill(0);
  const xs = [];
  for (;;) {
    let step = Infinity;
    for (let k = 0; k < stepsOf.length; k++) {
      const candidate = stepsOf[k][next[k]];
      if (candidate < step) step = candidate;
    }
    if (step === Infinity) break;
    xs.push(step);
    for (let k = 0; k < stepsOf.length; k++) {
      columns[k].push(stepsOf[k][next[k]] === step ? valuesOf[k][next[k]++] : undefined);
    }
  }
  return [xs, ...columns];
}

function axisValues(u, splits) {
  return splits.map((value) => formatValue(value));
}

/** Draws the markers' dashed lines and labels on the canvas. */
function drawMarkers(u, markers) {
  const { ctx } = u;
  const { top, height, left, width } = u.bbox;
  const ratio = window.devicePixelRatio || 1;
  ctx.save();
  ctx.font = `${11 * ratio}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  const labelBoxes = []; // labels placed so far, so that close ones stack
  for (const marker of markers) {
    const x = Math.round(u.valToPos(marker.step, "x", true));
    if (x < left || x > left + width) continue;
    ctx.strokeStyle = marker.faded ? fade(marker.color, 0.4) : marker.color;
    ctx.lineWidth = 1.5 * ratio;
    ctx.setLineDash([5 * ratio, 4 * ratio]);
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
    if (marker.short) {
      // A label on a white pill, right of the line unless that would clip it.
      const pad = 3 * ratio;
      const textWidth = ctx.measureText(marker.short).width;
      const flip = x + 4 * ratio + textWidth + 2 * pad > left + width;
      const box = { x: flip ? x - 4 * ratio - textWidth - 2 * pad : x + 4 * ratio,
        y: top + 2 * ratio, width: textWidth + 2 * pad, height: 15 * ratio };
      const overlaps = (other) => box.x < other.x + other.width && other.x < box.x + box.width &&
        box.y < other.y + other.height && other.y < box.y + box.height;
      while (labelBoxes.some(overlaps)) box.y += box.height + ratio;
      labelBoxes.push(box);
      ctx.setLineDash([]);
      ctx.fillStyle = "rgba(255, 255, 255, 0.6)";
      ctx.fillRect(box.x, box.y, box.width, box.height);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillText(marker.short, box.x + pad, box.y + 2 * ratio);
    }
  }
  ctx.restore();
}

/** Keeps one hoverable DOM element per marker, for tooltips and tests. */
function placeMarkerElements(u, markers, layer) {
  layer.replaceChildren();
  for (const marker of markers) {
    const x = u.valToPos(marker.step, "x");
    if (!(x >= 0 && x <= u.over.clientWidth)) continue;
    layer.append(el("div", {
      class: `chart-marker${marker.faded ? " faded" : ""}`,
      style: `left:${x}px`,
      title: marker.title,
      "data-testid": "nudge-marker",
      dataset: { step: marker.step, nudge: marker.id ?? "" },
    }));
  }
}

/**
 * One chart card: title, uPlot canvas, legend and an empty-state note.
 *
 * `setLines([{label, color, steps, values, faded}])` replaces what is drawn;
 * `setMarkers([{step, color, short, title, faded, id}])` sets vertical lines.
 * Drag to zoom; double-click to follow the live data again.
 */
export class StepChart {
  constructor(title, { id = null, height = 220, logToggle = false, stepped = false, yRange = null } = {}) {
    this.lines = [];
    this.yRange = yRange;
    this.stepped = stepped;
    this.markers = [];
    this.height = height;
    this.log = false;
    this.userRange = null;
    this.plot = null;
    this.signature = "";
    this.pending = false;

    this.body = el("div", { class: "chart-body" });
    this.empty = el("div", { class: "chart-empty" }, "Waiting for points…");
    this.markerLayer = el("div", { class: "chart-markers" });
    this.count = el("span", { class: "chart-count", "data-testid": "chart-count" }, "");
    const tools = el("div", { class: "chart-tools" }, this.count);
    if (logToggle) {
      const box = el("input", { type: "checkbox", onchange: (e) => this.setLog(e.target.checked) });
      tools.append(el("label", { class: "chart-log" }, box, "log"));
    }
    this.root = el("section", { class: "card chart", id, "data-testid": "chart", "data-points": "0" },
      el("header", { class: "chart-header" }, el("h3", {}, title), tools),
      this.body, this.empty);

    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.body);
  }

  setLines(lines) {
    this.lines = lines;
    this.schedule();
  }

  setMarkers(markers) {
    this.markers = markers;
    this.schedule();
  }

  setLog(on) {
    this.log = on;
    this.signature = ""; // the scale kind changed: build a new plot
    this.schedule();
  }

  /** Points on the solid (non-faded) lines. */
  get pointCount() {
    return this.lines.filter((line) => !line.faded).reduce((sum, line) => sum + line.steps.length, 0);
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  render() {
    const points = this.pointCount;
    this.root.dataset.points = String(points);
    const tails = this.lines.filter((line) => line.faded);
    this.root.dataset.tails = String(tails.length);
    this.root.dataset.tailPoints = String(tails.reduce((sum, line) => sum + line.steps.length, 0));
    this.count.textContent = points ? `${formatStep(points)} point${points === 1 ? "" : "s"}` : "";
    const hasData = this.lines.some((line) => line.steps.length > 0);
    this.empty.hidden = hasData;
    this.body.hidden = !hasData;
    if (!hasData) return;

    const data = alignLines(this.lines);
    if (this.log) {
      for (const column of data.slice(1)) {
        for (let i = 0; i < column.length; i++) if (column[i] !== undefined && !(column[i] > 0)) column[i] = null;
      }
    }
    const signature = JSON.stringify([this.log, this.lines.map((l) => [l.label, l.color, !!l.faded, l.dash])]);
    if (!this.plot || signature !== this.signature) {
      this.build(data);
      this.signature = signature;
    } else {
      this.plot.setData(data, this.userRange === null);
      if (this.userRange) this.plot.setScale("x", this.userRange);
    }
    this.showLatestInLegend();
    this.root.dataset.xlen = String(this.plot.data[0].length);
  }

  build(data) {
    if (this.plot) this.plot.destroy();
    const markersOf = () => this.markers;
    const options = {
      width: Math.max(200, this.body.clientWidth || 600),
      height: this.height,
      scales: { x: { time: false }, y: this.log ? { distr: 3 } : this.yScale() },
      axes: [
        { values: (u, splits) => splits.map((v) => formatStep(v)), grid: { stroke: "#eef0f3" }, stroke: "#6b7280" },
        { values: axisValues, grid: { stroke: "#eef0f3" }, stroke: "#6b7280", size: 60 },
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      series: [
        { label: "step", value: (u, v) => (v === null ? "–" : formatStep(v)) },
        ...this.lines.map((line) => ({
          label: line.label,
          stroke: line.faded ? fade(line.color) : line.color,
          width: line.faded ? 1.25 : 1.75,
          dash: line.faded ? [6, 4] : line.dash,
          spanGaps: false,
          points: { size: 5 }, // uPlot shows them only where points are sparse
          paths: this.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
          value: (u, v) => formatValue(v),
        })),
      ],
      hooks: {
        draw: [(u) => drawMarkers(u, markersOf())],
        setSize: [(u) => placeMarkerElements(u, markersOf(), this.markerLayer)],
        setScale: [(u, key) => key === "x" && placeMarkerElements(u, markersOf(), this.markerLayer)],
        setSelect: [(u) => this.rememberZoom(u)],
        setCursor: [(u) => u.cursor.left < 0 && this.showLatestInLegend()],
      },
    };
    this.plot = new uPlot(options, data, this.body);
    this.plot.over.append(this.markerLayer);
    this.plot.over.addEventListener("dblclick", () => {
      this.userRange = null;
    });
    const rows = this.plot.root.querySelectorAll(".u-legend .u-series");
    this.lines.forEach((line, index) => {
      if (line.faded && rows[index + 1]) rows[index + 1].classList.add("tail");
    });
    placeMarkerElements(this.plot, this.markers, this.markerLayer);
  }

  /** Away from the cursor, the legend reads the newest point of each line. */
  showLatestInLegend() {
    const u = this.plot;
    if (u.cursor.left >= 0 || u.data[0].length === 0) return;
    const idxs = u.data.map((column) => {
      let i = column.length - 1;
      while (i > 0 && column[i] === undefined) i--;
      return i;
    });
    // The step shown is the newest one on a solid line, not on a faded tail.
    const solid = this.lines.map((line, index) => (line.faded ? -1 : idxs[index + 1]));
    idxs[0] = Math.max(...solid, 0);
    u.setLegend({ idxs }, false);
  }

  /** A fixed y range, widened if data leave it (momentum lives in [0, 1)). */
  yScale() {
    if (!this.yRange) return {};
    const [low, high] = this.yRange;
    return { range: (u, min, max) => [Math.min(low, min ?? low), Math.max(high, max ?? high)] };
  }

  rememberZoom(u) {
    if (u.select.width > 2) {
      this.userRange = {
        min: u.posToVal(u.select.left, "x"),
        max: u.posToVal(u.select.left + u.select.width, "x"),
      };
    }
  }

  resize() {
    if (!this.plot) return;
    const width = this.body.clientWidth;
    if (width > 0 && width !== this.plot.width) this.plot.setSize({ width, height: this.height });
  }

  destroy() {
    this.resizer.disconnect();
    if (this.plot) this.plot.destroy();
    this.root.remove();
  }
}
