// Entry point: hash routes to pages, so every view has a shareable URL.
//   #/            runs list
//   #/runs/7      one run
//   #/compare?runs=3,5&metric=loss&align=step&y=log&smooth=0.6   runs overlaid
//   #/nudges?run=3&window=50   what each applied nudge did

import { ComparePage } from "./compare.js";
import { NudgeReviewPage } from "./review.js";
import { RunPage } from "./run.js";
import { RunsPage } from "./runs.js";
import { SweepPage, SweepsPage } from "./sweep.js";
import { el, formatAgo } from "./format.js";

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
  if (parts[0] === "sweeps" && parts.length === 1) {
    return new SweepsPage(main, { setLive });
  }
  if (parts[0] === "sweeps" && /^\d+$/.test(parts[1] || "") && parts.length === 2) {
    return new SweepPage(main, Number(parts[1]), { setLive });
  }
  if (parts[0] === "compare" && parts.length === 1) {
    return new ComparePage(main, hash, { setLive });
  }
  if (parts[0] === "nudges" && parts.length === 1) {
    return new NudgeReviewPage(main, hash, { setLive });
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
  markNav();
  if (page) page.start();
}

/** Underline the nav link of the page shown. */
function markNav() {
  const section = location.hash.replace(/^#\/?/, "").split(/[/?]/)[0] || "runs";
  for (const link of document.querySelectorAll(".topnav a")) {
    const target = link.getAttribute("href").replace(/^#\/?/, "").split(/[/?]/)[0] || "runs";
    link.classList.toggle("active", target === section);
  }
}

/** Keep every "3 min ago" on the page honest without re-rendering tables. */
function refreshAges() {
  for (const time of document.querySelectorAll("time[datetime]")) {
    time.textContent = formatAgo(time.getAttribute("datetime"));
  }
}

window.addEventListener("hashchange", navigate);
setInterval(refreshAges, 10_000);
navigate();
