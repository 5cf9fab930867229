"""The training side's link to the panda server: start a run and log to it.

Importing this package never imports torch.
"""

from __future__ import annotations

from panda.client._heartbeat import PendingNudge
from panda.client._sender import CheckpointTicket
from panda.client.run import Run, current_run, init

__all__ = ["CheckpointTicket", "PendingNudge", "Run", "current_run", "init"]
