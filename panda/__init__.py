"""panda: babysit a PyTorch training run.

Stream a run's curves to a panda server, watch them live, and nudge the learning
rate or momentum of the running job::

    import panda

    run = panda.init(name="digits", config={"lr": 0.1})
    sitter = panda.babysit(optimizer, run=run, model=model)
    for step, (x, y) in sitter.batches(loader, epochs=10):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        run.log({"loss": loss}, step=step)
    run.finish()

``babysit`` is loaded on first use so that importing panda never imports torch.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from panda.client import Run, init
from panda.errors import (
    CheckpointNotFound,
    Conflict,
    InvalidNudge,
    NudgeNotFound,
    PandaError,
    RunNotActive,
    RunNotFound,
    SchemaOutdated,
    ServerUnavailable,
)

if TYPE_CHECKING:
    from panda.hooks import Babysitter, babysit

__version__ = "0.1.0"
__all__ = [
    "Babysitter",
    "CheckpointNotFound",
    "Conflict",
    "InvalidNudge",
    "NudgeNotFound",
    "PandaError",
    "Run",
    "RunNotActive",
    "RunNotFound",
    "SchemaOutdated",
    "ServerUnavailable",
    "babysit",
    "init",
]

logging.getLogger("panda").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name in ("babysit", "Babysitter"):
        from panda import hooks

        return getattr(hooks, name)
    raise AttributeError(f"module 'panda' has no attribute {name!r}")
