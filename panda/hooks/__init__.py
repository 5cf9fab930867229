"""The babysitter hook that lives inside the training process.

It applies nudges to a running optimizer at step boundaries, checkpointing
first, and resumes or undoes from checkpoints. This is the only part of panda's
training side that imports torch.
"""

from __future__ import annotations

from panda.hooks.babysitter import Babysitter, babysit
from panda.hooks.checkpoints import CheckpointFile, DataPosition
from panda.hooks.nudges import NudgeChange, NudgeRefused

__all__ = [
    "Babysitter",
    "CheckpointFile",
    "DataPosition",
    "NudgeChange",
    "NudgeRefused",
    "babysit",
]
