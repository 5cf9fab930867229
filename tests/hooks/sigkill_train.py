"""A training script for the SIGKILL test: python -m tests.hooks.sigkill_train.

Arguments: server URL, checkpoint folder, spool folder, and the step at which
to kill itself (-1: never). ``PANDA_RESUME`` makes it resume.
"""

from __future__ import annotations

import os
import signal
import sys

import torch
from torch.optim import lr_scheduler

import panda
from tests.hooks.conftest import make_setup


def main() -> None:
    url, checkpoint_dir, spool_dir, kill_at = sys.argv[1:5]
    run = panda.init("sigkill", server=url, spool_dir=spool_dir, heartbeat_wait_s=1)
    seed = 0 if run.resume_plan is None else 77
    setup = make_setup(
        seed, scheduler=lambda opt: lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    )
    sitter = panda.babysit(
        setup.optimizer,
        run=run,
        model=setup.model,
        scheduler=setup.scheduler,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=5,
    )
    for step, (inputs, targets) in sitter.batches(setup.loader, epochs=3):
        if step == int(kill_at):
            run.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        loss = torch.nn.functional.mse_loss(setup.model(inputs), targets)
        setup.optimizer.zero_grad()
        loss.backward()
        setup.optimizer.step()
        assert setup.scheduler is not None
        setup.scheduler.step()
        run.log({"loss": loss}, step=step)
    run.finish()


if __name__ == "__main__":
    main()
