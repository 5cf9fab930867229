// The dashboard's only door to the server: REST calls and server-sent events.
// Every URL is relative, so the dashboard works under any host and port.

/** An HTTP answer outside 2xx; `detail` is the server's message for people. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

/** Read a wire value: a number, or "NaN" / "Infinity" / "-Infinity". */
export function decodeValue(value) {
  return value === null || value === undefined ? NaN : Number(value);
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  // FastAPI's default 422 body is a list of {loc, msg}; keep it readable.
  if (Array.isArray(detail)) {
    return detail
      .map((item) => `${(item.loc || []).join(".")}: ${item.msg}`)
      .join("; ");
  }
  return JSON.stringify(detail);
}

const TOKEN_KEY = "panda.token";

/**
 * The server's write token, kept in this browser's local storage. A server
 * started with a token refuses changes (nudges, cancel, undo) without it.
 */
export const writeToken = {
  get() {
    try {
      return localStorage.getItem(TOKEN_KEY) || null;
    } catch {
      return null; // storage disabled: the page still reads
    }
  },
  set(token) {
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      // Nothing to keep it in; the next write asks again.
    }
  },
};

async function request(method, path, body) {
  const options = { method, headers: { Accept: "application/json" } };
  const token = method === "GET" ? null : writeToken.get();
  if (token) options.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, `server unreachable (${error.message})`);
  }

  const text = await response.text();
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = text;
  }
  if (!response.ok) {
    const detail = payload && payload.detail !== undefined ? payload.detail : text;
    throw new ApiError(response.status, describeDetail(detail) || response.statusText);
  }
  return payload;
}

const enc = encodeURIComponent;

/** The most points the server answers in one view (`max_points` is capped there). */
export const MAX_VIEW_POINTS = 20_000;

export const api = {
  listRuns: () => request("GET", "api/runs"),
  getRun: (run) => request("GET", `api/runs/${enc(run)}`),
  listMetricKeys: (run) => request("GET", `api/runs/${enc(run)}/metrics`),

  /**
   * A metric's points on the current line, or on one branch's own points if
   * `branch` is set; over [minStep, maxStep] when given. Past `maxPoints` the
   * server answers a view: the lowest and highest point of each bucket.
   */
  readSeries(run, key, { branch = null, maxPoints = null, minStep = null, maxStep = null } = {}) {
    const query = new URLSearchParams({ key });
    if (branch !== null) query.set("branch", String(branch));
    if (maxPoints !== null) query.set("max_points", String(Math.min(MAX_VIEW_POINTS, maxPoints)));
    if (minStep !== null) query.set("min_step", String(Math.max(0, Math.floor(minStep))));
    if (maxStep !== null) query.set("max_step", String(Math.max(0, Math.ceil(maxStep))));
    return request("GET", `api/runs/${enc(run)}/metrics?${query}`);
  },

  /** A metric's abandoned tails, one Series (with `branch`) per old branch. */
  readTails(run, key, { maxPoints = null } = {}) {
    const query = new URLSearchParams({ key });
    if (maxPoints !== null) query.set("max_points", String(maxPoints));
    return request("GET", `api/runs/${enc(run)}/metrics/tails?${query}`);
  },

  listNudges: (run) => request("GET", `api/runs/${enc(run)}/nudges`),
  createNudge: (run, body) => request("POST", `api/runs/${enc(run)}/nudges`, body),
  cancelNudge: (run, nudge) =>
    request("POST", `api/runs/${enc(run)}/nudges/${enc(nudge)}/cancel`),
  undoNudge: (run, nudge) =>
    request("POST", `api/runs/${enc(run)}/nudges/${enc(nudge)}/undo`),

  listCheckpoints: (run) => request("GET", `api/runs/${enc(run)}/checkpoints`),
  listBranches: (run) => request("GET", `api/runs/${enc(run)}/branches`),
};

const STREAM_RETRY_MS = 3000;

/**
 * Open a server-sent event stream and dispatch its named events.
 *
 * `handlers` maps event names to callbacks taking the parsed JSON data;
 * `onState(state)` hears "live", "reconnecting" or "closed". After a
 * reconnect the caller gets `onReopen()`, since events sent while away are
 * lost. EventSource retries network errors itself but gives up on an HTTP
 * error; then this opens a new one after a pause. Returns a closer.
 */
export function openStream(path, handlers, { onState = () => {}, onReopen = () => {} } = {}) {
  let source = null;
  let wasOpen = false;
  let closed = false;
  let retryTimer = null;

  function dispatch(handler, event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return; // a malformed event must not break the page
    }
    handler(data);
  }

  function connect() {
    source = new EventSource(path);
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => dispatch(handler, event));
    }
    source.addEventListener("open", () => {
      onState("live");
      if (wasOpen) onReopen();
      wasOpen = true;
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) return onState("reconnecting");
      onState("closed");
      if (!closed) retryTimer = setTimeout(connect, STREAM_RETRY_MS);
    });
  }

  connect();
  return () => {
    closed = true;
    clearTimeout(retryTimer);
    source.close();
  };
}
