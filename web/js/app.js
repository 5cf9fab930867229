// Entry point: hash routes to pages, so every view has a shareable URL.
//   #/            runs list
//   #/runs/7      one run

import { RunPage } from "./run.js";
import { RunsPage } from "./runs.js";
import { el } from "./format.js";

const main = document.getElementById("main");
const liveState = document.getElementById("live-state");
let page = null;

const LIVE_LABELS = { live: "live", reconnecting: "reconnecting…", closed: "offline", idle: "" };

function setLive(state) {
  liveState.dataset.state = state;
  liveState.textContent = LIVE_LABELS[state] ?? state;
}

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("?")[0].split("/").filter(Boolean);
  if (parts.length === 0 || (parts[0] === "runs" && parts.length === 1)) {
    return new RunsPage(main, { setLive });
  }
  if (parts[0] === "runs" && /^\d+$/.test(parts[1] || "") && parts.length === 2) {
    return new RunPage(main, Number(parts[1]), { setLive });
  }
  main.replaceChildren(el("div", { class: "page" }, el("h1", {}, "Not found"),
    el("p", {}, "No page at this address. ", el("a", { href: "#/" }, "Back to the runs."))));
  return null;
}

function navigate() {
  if (page) page.close();
  setLive("idle");
  document.title = "panda";
  page = route();
  if (page) page.start();
}

window.addEventListener("hashchange", navigate);
navigate();
