"""Errors panda raises that a user can act on.

PandaError
├── ServerUnavailable   the panda server cannot be reached
├── RunNotFound         no run with that id
├── NudgeNotFound       no nudge with that id on that run
├── CheckpointNotFound  no usable checkpoint with that id on that run
├── InvalidNudge        a nudge that can never be applied (unknown param, bad value)
├── RunNotActive        the run has ended and takes no more nudges or points
├── Conflict            the request clashes with the state it would change
└── SchemaOutdated      the database schema is newer than this version of panda
"""

from __future__ import annotations


class PandaError(Exception):
    """Base class of every error panda raises on purpose."""


class ServerUnavailable(PandaError):
    """The panda server could not be reached."""


class RunNotFound(PandaError):
    """No run has the given id."""


class NudgeNotFound(PandaError):
    """No nudge has the given id on the given run."""


class CheckpointNotFound(PandaError):
    """No usable checkpoint has the given id on the given run."""


class InvalidNudge(PandaError):
    """The nudge names an unknown parameter or a value it can never take."""


class RunNotActive(PandaError):
    """The run has ended: it accepts no more nudges."""


class Conflict(PandaError):
    """The request clashes with the current state (for example, an applied nudge
    cannot be cancelled)."""


class SchemaOutdated(PandaError):
    """The database was migrated by a newer panda than this one."""
