"""A small babysat training loop at a fixed pace, for the robustness tests.

It logs ``loss`` every step through ``panda.init``/``run.log`` (server from
``$PANDA_URL``, resume from ``$PANDA_RESUME``) and appends ``STEP TIME`` to the
``--times`` file after each step, so a test can measure its own step rate. It
stops after ``--steps`` steps, or earlier once the ``--stop-file`` exists.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import torch

import panda


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--pace", type=float, default=50.0, help="steps per second")
    parser.add_argument("--times", required=True)
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--stop-file", default=None)
    args = parser.parse_args()
    # The job's log shows the client's warnings and errors, if any.
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    inputs = torch.randn(64, 8)
    targets = inputs.sum(dim=1, keepdim=True)

    run = panda.init("paced", config={"lr": 0.05}, heartbeat_wait_s=1.0)
    sitter = panda.babysit(
        optimizer,
        run=run,
        model=model,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every or None,
    )
    start_s = time.monotonic() - sitter.step / args.pace
    with open(args.times, "a", buffering=1) as times:
        while sitter.step < args.steps and not _stop_asked(args.stop_file):
            step = sitter.step
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()  # the babysitter applies pending nudges right after
            run.log({"loss": loss}, step=step)
            times.write(f"{step} {time.time():.6f}\n")
            # Hold a fixed schedule, so a slow step shows as a lower rate later.
            delay_s = start_s + (step + 1) / args.pace - time.monotonic()
            if delay_s > 0:
                time.sleep(delay_s)
    sitter.detach()
    run.finish()


def _stop_asked(stop_file: str | None) -> bool:
    return stop_file is not None and os.path.exists(stop_file)


if __name__ == "__main__":
    main()
