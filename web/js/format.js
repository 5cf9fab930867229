// How values, times and statuses look on the page, and a small DOM builder.

/** Build an element: el("td", {class: "num", dataset: {step: 3}}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A metric or hyperparameter value, short but exact enough to read an α. */
export function formatValue(value) {
  if (value === null || value === undefined) return "–";
  const number = Number(value);
  if (Number.isNaN(number)) return "NaN";
  if (!Number.isFinite(number)) return number > 0 ? "+∞" : "−∞";
  if (number === 0) return "0";
  const magnitude = Math.abs(number);
  if (magnitude < 1e-3 || magnitude >= 1e6) return number.toExponential(2);
  if (Number.isInteger(number)) return String(number);
  return String(Number(number.toPrecision(4)));
}

export function formatStep(step) {
  return step === null || step === undefined ? "–" : Number(step).toLocaleString("en-US");
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let size = Number(bytes);
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? size : size.toFixed(1)} ${units[unit]}`;
}

/** Parse a server datetime; one without a zone is UTC. */
export function parseTime(text) {
  if (!text) return null;
  const hasZone = /[zZ]|[+-]\d\d:?\d\d$/.test(text);
  const date = new Date(hasZone ? text : `${text}Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}

const pad = (number) => String(number).padStart(2, "0");

export function formatTime(text) {
  const date = parseTime(text);
  if (!date) return "–";
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function formatAgo(text, now = Date.now()) {
  const date = parseTime(text);
  if (!date) return "–";
  const seconds = Math.max(0, Math.round((now - date.getTime()) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A <time> showing "3 min ago" with the exact local time on hover. */
export function timeCell(text) {
  return el("time", { datetime: text || "", title: formatTime(text) }, formatAgo(text));
}

/** A colored status pill for runs and nudges; the class carries the color. */
export function badge(status, title = null) {
  return el(
    "span",
    { class: `badge badge-${status}`, "data-testid": "status-badge", title },
    status,
  );
}

/** A table head row; a label with a Greek letter keeps its case. */
export function headRow(labels) {
  return el("thead", {}, el("tr", {},
    labels.map((label) => el("th", { class: /[α-ω]/.test(label) ? "keep-case" : null }, label))));
}

export const PARAM_LABELS = { lr: "α", momentum: "momentum" };

export function paramLabel(param) {
  return PARAM_LABELS[param] || param || "–";
}

/** Seconds since the epoch as a local clock time, with the day when it is not today. */
export function formatClock(seconds, now = new Date()) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "–";
  const date = new Date(Number(seconds) * 1000);
  const clock = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  if (date.toDateString() === now.toDateString()) return clock;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${clock}`;
}

/** A duration in seconds, short: "45s", "3m 20s", "2h 05m", "3d 4h". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "–";
  const sign = seconds < 0 ? "−" : "";
  let rest = Math.round(Math.abs(Number(seconds)));
  if (rest < 60) return `${sign}${rest}s`;
  const days = Math.floor(rest / 86400);
  rest -= days * 86400;
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const secs = rest - minutes * 60;
  if (days) return `${sign}${days}d ${hours}h`;
  if (hours) return `${sign}${hours}h ${pad(minutes)}m`;
  return `${sign}${minutes}m ${pad(secs)}s`;
}

/** A slope or other signed small number, with an explicit sign. */
export function formatSigned(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const text = formatValue(value);
  return value > 0 ? `+${text}` : text.replace(/^-/, "−");
}
