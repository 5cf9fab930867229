"""Latency from ``POST /api/runs/{id}/nudges`` to the step that trains with it.

A babysat loop (``panda.babysit`` + ``sitter.batches``) whose steps take a known
time (a small MLP step plus a sleep, ``--step-ms``) runs against a
``panda serve`` subprocess; a thread POSTs lr nudges at random moments. For each
nudge the loop's own clock says when step ``applied_step`` began, so:

- steps: how many step boundaries passed after the POST until the nudge was in
  force (1 = the very next boundary, the best possible);
- latency ms: from the POST to the start of ``applied_step`` (this includes the
  checkpoint the babysitter writes before it applies a nudge);
- beyond one step: latency minus one step time (the baseline: a nudge posted
  just after a boundary must wait for the running step to end).

    .venv-bench/bin/python bench/nudge_latency.py [--quick] [--nudges N]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import harness
import httpx


def nudger(url: str, run_id: int, count: int, posted: dict[int, float]) -> None:
    """POST ``count`` lr nudges at random moments; note when each was sent."""
    rng = random.Random(3)
    with httpx.Client(base_url=url, timeout=10) as http:
        time.sleep(0.5)
        for index in range(count):
            time.sleep(rng.uniform(0.4, 0.8))
            value = 0.01 if index % 2 else 0.02
            sent = time.time()
            reply = http.post(
                f"/api/runs/{run_id}/nudges", json={"param": "lr", "value": value}
            )
            reply.raise_for_status()
            posted[reply.json()["id"]] = sent


def watch_inbox(run: Any) -> dict[int, float]:
    """Note when each nudge first reaches the client's inbox (for the breakdown).

    Wraps the private ``NudgeInbox.offer`` of this one run; panda is unchanged.
    """
    seen: dict[int, float] = {}
    inbox = run._inbox
    offer = inbox.offer

    def noting_offer(pending: list[Any]) -> bool:
        now = time.time()
        for item in pending:
            seen.setdefault(item.nudge.id, now)
        return offer(pending)

    inbox.offer = noting_offer
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("--nudges", type=int, default=None)
    parser.add_argument("--step-ms", type=float, default=50.0)
    args = parser.parse_args()
    count = args.nudges or (3 if args.quick else 12)
    step_s = args.step_ms / 1000

    import torch

    import panda

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = [(torch.randn(64, 32), torch.randn(64, 1)) for _ in range(16)]

    posted: dict[int, float] = {}
    began: list[float] = []  # began[step] = wall time step `step` started
    with harness.panda_server() as server, tempfile.TemporaryDirectory() as ckpt:
        run = panda.init("nudge", server=server.url, spool_dir=server.home / "spool")
        seen = watch_inbox(run)
        sitter = panda.babysit(
            optimizer, run=run, model=model, checkpoint_dir=Path(ckpt)
        )
        thread = threading.Thread(
            target=nudger, args=(server.url, run.id, count, posted), daemon=True
        )
        thread.start()
        with sitter:
            for step, (inputs, targets) in sitter.batches(batches, epochs=10**6):
                began.append(time.time())
                assert len(began) == step + 1
                work_started = time.perf_counter()
                loss = torch.nn.functional.mse_loss(model(inputs), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.log({"loss": loss}, step=step)
                time.sleep(max(0.0, step_s - (time.perf_counter() - work_started)))
                if (
                    not thread.is_alive()
                    and len(posted) == count
                    and (time.time() - max(posted.values()) > 1.0)
                ):
                    break
        run.flush()
        with httpx.Client(base_url=server.url) as http:
            nudges = http.get(f"/api/runs/{run.id}/nudges").json()
        run.finish()

    measured_step_ms = statistics.median(
        (b - a) * 1000 for a, b in itertools.pairwise(began)
    )
    latencies, steps_waited, to_inbox = [], [], []
    for nudge in nudges:
        if nudge["id"] not in posted or nudge["applied_step"] is None:
            continue
        sent = posted[nudge["id"]]
        applied_at = began[nudge["applied_step"]]
        latencies.append((applied_at - sent) * 1000)
        if nudge["id"] in seen:
            to_inbox.append((seen[nudge["id"]] - sent) * 1000)
        steps_waited.append(
            nudge["applied_step"] - bisect.bisect_right(began, sent) + 1
        )
    applied = f"{len(latencies)}/{count}"
    beyond = [latency - measured_step_ms for latency in latencies]
    rows = [
        ["step time (baseline)", applied, measured_step_ms, measured_step_ms, "", ""],
        [
            "POST nudge -> applied step starts",
            applied,
            statistics.median(latencies),
            max(latencies),
            f"{statistics.median(steps_waited):g} / {max(steps_waited)}",
            f"{statistics.median(beyond):.0f} / {max(beyond):.0f}",
        ],
    ]
    rows.append(
        [
            "  of which POST -> client inbox",
            f"{len(to_inbox)}/{count}",
            statistics.median(to_inbox) if to_inbox else float("nan"),
            max(to_inbox) if to_inbox else float("nan"),
            "",
            "",
        ]
    )
    harness.print_table(
        f"Nudge latency, babysat loop at {args.step_ms:g} ms a step",
        [
            "what",
            "nudges",
            "median ms",
            "max ms",
            "steps med/max",
            "ms beyond 1 step med/max",
        ],
        rows,
    )
    worst = max(beyond)
    verdict = "met" if worst <= 100 else "MISSED"
    print(
        f"\ntarget within one step + 100 ms: worst {worst:.0f} ms beyond -> {verdict}"
    )


if __name__ == "__main__":
    main()
