// Step-indexed line charts on top of uPlot, reusable by every view: a chart
// takes named lines (steps and values) plus vertical markers, and redraws
// at most once per animation frame however fast points arrive.

import { el, formatDuration, formatValue, formatStep, formatClock } from "./format.js";

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
  // A log axis hands null for the ticks it leaves unlabelled.
  return splits.map((value) => (value === null || value === undefined ? "" : formatValue(value)));
}

/**
 * What the x axis counts: optimizer steps, wall-clock time (seconds since
 * the epoch) or seconds since each run started.
 */
export const X_KINDS = {
  step: { label: "step", time: false, format: (v) => formatStep(Math.round(v)) },
  time: { label: "time", time: true, format: (v) => formatClock(v) },
  elapsed: { label: "since start", time: false, format: (v) => formatDuration(v) },
};

/**
 * Charts that share an x range and a cursor: zooming one zooms all, and one
 * debounced `onZoom(range | null)` call per gesture asks the page for detail.
 */
export class ChartGroup {
  constructor({ onZoom = null, debounceMs = 250 } = {}) {
    this.key = `group-${ChartGroup.count = (ChartGroup.count || 0) + 1}`;
    this.charts = new Set();
    this.onZoom = onZoom;
    this.debounceMs = debounceMs;
    this.range = null;
    this.timer = null;
  }

  add(chart) {
    this.charts.add(chart);
  }

  remove(chart) {
    this.charts.delete(chart);
  }

  /** A person zoomed `from` (a range {min, max}) or reset it (null). */
  zoom(range, from = null) {
    this.range = range;
    for (const chart of this.charts) if (chart !== from) chart.applyRange(range);
    clearTimeout(this.timer);
    if (this.onZoom) this.timer = setTimeout(() => this.onZoom(this.range), this.debounceMs);
  }

  close() {
    clearTimeout(this.timer);
  }
}

/** Where a marker sits on the x axis: its own x if given, else its step. */
const markerX = (marker) => (marker.x ?? marker.step);

/** Draws the markers' dashed lines and labels on the canvas. */
function drawMarkers(u, markers) {
  const { ctx } = u;
  const { top, height, left, width } = u.bbox;
  const ratio = window.devicePixelRatio || 1;
  ctx.save();
  ctx.font = `${11 * ratio}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  ctx.textAlign = "left"; // uPlot leaves its axes' alignment on the context
  const labelBoxes = []; // labels placed so far, so that close ones stack
  for (const marker of markers) {
    const x = Math.round(u.valToPos(markerX(marker), "x", true));
    if (!(x >= left && x <= left + width)) continue;
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
      ctx.fillStyle = "rgba(255, 255, 255, 0.75)";
      ctx.fillRect(box.x, box.y, box.width, box.height);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillText(marker.short, box.x + pad, box.y + 2 * ratio);
    }
  }
  ctx.restore();
}

/**
 * Keeps one hoverable DOM element per marker, for tooltips and tests.
 * `onMarker(marker, element, kind)` hears "enter", "leave" and "click".
 */
function placeMarkerElements(u, markers, layer, onMarker) {
  layer.replaceChildren();
  for (const marker of markers) {
    const x = u.valToPos(markerX(marker), "x");
    if (!(x >= 0 && x <= u.over.clientWidth)) continue;
    const node = el("div", {
      class: `chart-marker${marker.faded ? " faded" : ""}`,
      style: `left:${x}px`,
      title: marker.title,
      "data-testid": "nudge-marker",
      dataset: { step: marker.step, nudge: marker.id ?? "", run: marker.run ?? "" },
    });
    if (onMarker) {
      node.addEventListener("mouseenter", () => onMarker(marker, node, "enter"));
      node.addEventListener("mouseleave", () => onMarker(marker, node, "leave"));
      node.addEventListener("click", (event) => {
        event.stopPropagation();
        onMarker(marker, node, "click");
      });
    }
    layer.append(node);
  }
}

/**
 * One chart card: title, uPlot canvas, legend and an empty-state note.
 *
 * `setLines([{label, color, steps, values, faded, raw, dash}])` replaces what
 * is drawn (`steps` are the x values; a `raw` line is drawn faint behind its
 * smoothed twin and left out of the legend and the point count);
 * `setMarkers([{step, x, color, short, title, faded, id, run}])` sets
 * vertical lines. Drag to zoom, double-click to go back to the whole line;
 * charts in one `ChartGroup` zoom together and share the cursor.
 */
export class StepChart {
  constructor(title, { id = null, height = 220, logToggle = false, stepped = false, yRange = null,
    group = null, xKind = "step", onMarker = null, emptyText = "Waiting for points…" } = {}) {
    this.lines = [];
    this.yRange = yRange;
    this.stepped = stepped;
    this.markers = [];
    this.height = height;
    this.log = false;
    this.xKind = xKind;
    this.userRange = null;
    this.xExtent = null; // the x range shown when not zoomed; null: the data's own
    this.plot = null;
    this.signature = "";
    this.pending = false;
    this.onMarker = onMarker;
    this.group = group || new ChartGroup();
    this.group.add(this);

    this.body = el("div", { class: "chart-body" });
    this.empty = el("div", { class: "chart-empty" }, emptyText);
    this.markerLayer = el("div", { class: "chart-markers" });
    this.count = el("span", { class: "chart-count", "data-testid": "chart-count" }, "");
    this.zoomNote = el("span", { class: "chart-zoom", hidden: true, title: "double-click the chart to zoom out" },
      "zoomed · double-click to reset");
    const tools = el("div", { class: "chart-tools" }, this.zoomNote, this.count);
    if (logToggle) {
      const box = el("input", { type: "checkbox", onchange: (e) => this.setLog(e.target.checked) });
      tools.append(el("label", { class: "chart-log" }, box, "log"));
    }
    this.titleNode = el("h3", {}, title);
    this.root = el("section", { class: "card chart", id, "data-testid": "chart", "data-points": "0",
      "data-zoomed": "false", "data-x-kind": xKind },
    el("header", { class: "chart-header" }, this.titleNode, tools),
    this.body, this.empty);

    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.body);
  }

  setTitle(title) {
    this.titleNode.textContent = title;
  }

  setLines(lines) {
    this.lines = lines;
    this.schedule();
  }

  setMarkers(markers) {
    this.markers = markers;
    this.schedule();
  }

  /** Show this x range when not zoomed (charts of a group line up), or null for the data's. */
  setXExtent(extent) {
    this.xExtent = extent;
    this.schedule();
  }

  setLog(on) {
    if (this.log === on) return;
    this.log = on;
    this.signature = ""; // the scale kind changed: build a new plot
    this.schedule();
  }

  setXKind(kind) {
    if (this.xKind === kind) return;
    this.xKind = kind;
    this.root.dataset.xKind = kind;
    this.userRange = null;
    this.signature = "";
    this.schedule();
  }

  /** Points on the solid lines (neither faded tails nor raw twins of smoothed lines). */
  get pointCount() {
    return this.lines.filter((line) => !line.faded && !line.raw)
      .reduce((sum, line) => sum + line.steps.length, 0);
  }

  /** How many points a view of this chart should hold: two per pixel column. */
  get viewPoints() {
    const width = this.body.clientWidth || this.root.clientWidth || 800;
    return Math.max(400, Math.min(8_000, Math.round(width * 2)));
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
    // A page that reads views sets data-total: the points the whole line holds.
    const total = Number(this.root.dataset.total || 0);
    this.count.textContent = !points ? ""
      : total > points ? `${formatStep(points)} of ${formatStep(total)} points`
        : `${formatStep(points)} point${points === 1 ? "" : "s"}`;
    this.count.title = total > points
      ? "a view: the lowest and highest point of each bucket; zoom in for every point" : "";
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
    const signature = JSON.stringify([this.log, this.xKind,
      this.lines.map((l) => [l.label, l.color, !!l.faded, !!l.raw, l.dash])]);
    if (!this.plot || signature !== this.signature) {
      this.build(data);
      this.signature = signature;
    } else {
      this.plot.setData(data, this.userRange === null && this.xExtent === null);
    }
    const range = this.userRange || this.xExtent;
    if (range) this.plot.setScale("x", range);
    this.showLatestInLegend();
    const xs = this.plot.data[0];
    this.root.dataset.xlen = String(xs.length);
    this.root.dataset.xFirst = xs.length ? String(xs[0]) : "";
    this.root.dataset.xLast = xs.length ? String(xs[xs.length - 1]) : "";
  }

  build(data) {
    if (this.plot) this.plot.destroy();
    const markersOf = () => this.markers;
    const kind = X_KINDS[this.xKind] || X_KINDS.step;
    const xAxis = { grid: { stroke: "#eef0f3" }, stroke: "#6b7280" };
    // uPlot formats a time axis itself; steps and durations get ours.
    if (!kind.time) xAxis.values = (u, splits) => splits.map((v) => kind.format(v));
    const placeMarkers = (u) => placeMarkerElements(u, markersOf(), this.markerLayer, this.onMarker);
    const options = {
      width: Math.max(200, this.body.clientWidth || 600),
      height: this.height,
      scales: { x: { time: kind.time }, y: this.log ? { distr: 3 } : this.yScale() },
      axes: [xAxis, { values: axisValues, grid: { stroke: "#eef0f3" }, stroke: "#6b7280", size: 60 }],
      cursor: { drag: { x: true, y: false }, sync: { key: this.group.key } },
      legend: { live: true },
      series: [
        { label: kind.label, value: (u, v) => (v === null || v === undefined ? "–" : kind.format(v)) },
        ...this.lines.map((line) => ({
          label: line.label,
          stroke: line.raw ? fade(line.color, 0.22) : line.faded ? fade(line.color) : line.color,
          width: line.raw ? 1 : line.faded ? 1.25 : 1.75,
          dash: line.faded ? [6, 4] : line.dash,
          spanGaps: false,
          points: { size: 5, show: line.raw ? false : undefined }, // uPlot shows them only where sparse
          paths: this.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
          value: (u, v) => formatValue(v),
        })),
      ],
      hooks: {
        draw: [(u) => drawMarkers(u, markersOf())],
        setSize: [placeMarkers],
        setScale: [(u, key) => key === "x" && placeMarkers(u)],
        setSelect: [(u) => this.rememberZoom(u)],
        setCursor: [(u) => u.cursor.left < 0 && this.showLatestInLegend()],
      },
    };
    this.plot = new uPlot(options, data, this.body);
    this.plot.over.append(this.markerLayer);
    this.plot.over.addEventListener("dblclick", () => {
      this.applyRange(null);
      this.group.zoom(null, this);
    });
    const rows = this.plot.root.querySelectorAll(".u-legend .u-series");
    this.lines.forEach((line, index) => {
      if ((line.faded || line.raw) && rows[index + 1]) rows[index + 1].classList.add("tail");
    });
    placeMarkers(this.plot);
  }

  /** Away from the cursor, the legend reads the newest point of each line. */
  showLatestInLegend() {
    const u = this.plot;
    if (u.cursor.left >= 0 || u.data[0].length === 0) return;
    const idxs = u.data.map((column) => {
      let i = column.length - 1;
      while (i > 0 && (column[i] === undefined || column[i] === null)) i--;
      return i;
    });
    // The x shown is the newest one on a solid line, not on a faded tail.
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
      const range = {
        min: u.posToVal(u.select.left, "x"),
        max: u.posToVal(u.select.left + u.select.width, "x"),
      };
      this.setZoomed(range);
      this.group.zoom(range, this);
    }
  }

  setZoomed(range) {
    this.userRange = range;
    this.root.dataset.zoomed = String(range !== null);
    this.zoomNote.hidden = range === null;
  }

  /** Another chart of the group zoomed to `range`, or reset (null). */
  applyRange(range) {
    this.setZoomed(range);
    if (!this.plot) return;
    const xs = this.plot.data[0];
    const shown = range || this.xExtent || (xs.length ? { min: xs[0], max: xs[xs.length - 1] } : null);
    if (shown) this.plot.setScale("x", shown);
  }

  resize() {
    if (!this.plot) return;
    const width = this.body.clientWidth;
    if (width > 0 && width !== this.plot.width) this.plot.setSize({ width, height: this.height });
  }

  destroy() {
    this.group.remove(this);
    this.resizer.disconnect();
    if (this.plot) this.plot.destroy();
    this.root.remove();
  }
}
