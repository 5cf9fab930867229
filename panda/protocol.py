"""The HTTP contract between the training side and the server.

Both ends import these pydantic models: the server to validate what arrives
and shape what it answers, the client to build requests and read replies.
Metric values may be NaN or infinite. JSON has no literal for those, so on the
wire a non-finite value travels as one of the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (which ``float()`` in Python and
``Number()`` in JavaScript both read back); finite values stay numbers.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)

STEP_MAX = 2**63 - 1
"""Largest step a point may carry: steps are stored as signed 64-bit integers."""

METRIC_KEY_MAX_CHARS = 200
NOTE_MAX_CHARS = 2000
NAME_MAX_CHARS = 200

# "ready": a fork waiting for its first process (``panda resume``).
RunStatus = Literal["running", "ready", "finished", "failed", "crashed"]
NudgeStatus = Literal["pending", "applied", "rejected", "cancelled"]
NudgeAction = Literal["set", "undo"]
NudgeParam = Literal["lr", "momentum"]
CheckpointReason = Literal["nudge", "periodic", "final", "manual"]
BranchReason = Literal["start", "resume", "undo", "fork"]


def encode_value(value: float) -> float | str:
    """Return ``value`` as JSON can carry it: a number, or a string if non-finite."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_value(value: float | str) -> float:
    """Read a value written by :func:`encode_value` (or a plain number)."""
    if isinstance(value, str):
        if value not in ("NaN", "Infinity", "-Infinity"):
            raise ValueError(
                f"value {value!r} is not a number; "
                "use a number or 'NaN', 'Infinity', '-Infinity'"
            )
        return float(value)
    return float(value)


WireFloat = Annotated[float, PlainSerializer(encode_value, return_type=Any)]
"""A float that may be non-finite and serialises to JSON-safe form."""

# Visible text: no control characters, and not only white space. Checked by
# pydantic's compiled regex, not Python code, because a batch holds 100k keys.
METRIC_KEY_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
MetricKey = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=METRIC_KEY_MAX_CHARS,
        strip_whitespace=False,
        pattern=METRIC_KEY_PATTERN,
    ),
]
PointTime = Annotated[float, Field(allow_inf_nan=False)]
"""When a point was logged, in seconds since the Unix epoch: always finite."""
# Strict: a JSON number, never true/false or a string of digits. A float step
# such as 2**53 + 1.0 would lose its last digit on the way in.
WireValue = Annotated[
    Annotated[float, Field(strict=True)] | Literal["NaN", "Infinity", "-Infinity"],
    Field(union_mode="left_to_right"),
]
"""A metric value as it arrives: a number, or the string form of a non-finite one."""
Step = Annotated[int, Field(ge=0, le=STEP_MAX, strict=True)]
Id = Annotated[int, Field(ge=1, le=STEP_MAX)]
"""An id of a run, branch, nudge or checkpoint (a signed 64-bit integer)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- runs -------------------------------------------------------------------


class RunCreate(_Model):
    """Body of ``POST /api/runs``."""

    name: Annotated[str, StringConstraints(max_length=NAME_MAX_CHARS)] | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    command: list[str] | None = Field(
        default=None, description="argv of the training process, used to resume it"
    )
    cwd: str | None = None


class RunUpdate(_Model):
    """Body of ``PATCH /api/runs/{run}``: a training process ending its run."""

    status: Literal["finished", "failed"]


class RunOut(BaseModel):
    id: int
    name: str
    status: RunStatus
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    heartbeat_at: datetime | None
    finished_at: datetime | None
    last_step: int | None
    last_values: dict[str, WireFloat]
    branch: int | None = Field(description="the branch the run now logs to")
    parent_run: int | None = None
    parent_step: int | None = None
    command: list[str] | None = None
    cwd: str | None = None


# -- metrics ----------------------------------------------------------------


class Point(_Model):
    """One metric value at one step. ``value`` may be "NaN", "Infinity" or
    "-Infinity"; ``float(point.value)`` reads every form."""

    key: MetricKey
    step: Step
    value: WireValue
    time: PointTime | None = Field(
        default=None, description="seconds since the Unix epoch; server time if absent"
    )


POINTS_PER_BATCH_MAX = 1_000_000


class PointColumns(_Model):
    """One metric's points as parallel columns: the compact form of a batch."""

    steps: list[Step]
    values: list[WireValue]
    times: list[PointTime] | None = Field(
        default=None, description="seconds since the Unix epoch; server time if absent"
    )

    @model_validator(mode="after")
    def _check_lengths(self) -> PointColumns:
        lengths = {len(self.steps), len(self.values)}
        if self.times is not None:
            lengths.add(len(self.times))
        if len(lengths) > 1:
            raise ValueError("steps, values and times must have the same length")
        return self


class PointBatch(_Model):
    """Body of ``POST /api/runs/{run}/metrics``.

    Points come as a list of objects (``points``), as parallel columns per
    metric (``columns``, what panda's client sends: validating it costs a
    twentieth of the list form), or both.
    """

    points: list[Point] = Field(default_factory=list, max_length=100_000)
    columns: dict[MetricKey, PointColumns] = Field(default_factory=dict)
    branch: Id | None = Field(
        default=None,
        description="branch the points belong to; the run's current one if absent",
    )

    @model_validator(mode="after")
    def _check_size(self) -> PointBatch:
        total = len(self.points) + sum(len(c.steps) for c in self.columns.values())
        if total > POINTS_PER_BATCH_MAX:
            raise ValueError(
                f"a batch holds at most {POINTS_PER_BATCH_MAX} points, got {total}; "
                "split it"
            )
        return self


class PointBatchAccepted(BaseModel):
    received: int
    stored: int = Field(
        description="points that were new; a resent point is not stored twice"
    )


class Series(BaseModel):
    """A metric's points along a line, as parallel columns."""

    run: int
    key: str
    steps: list[int]
    values: list[WireFloat]
    times: list[float]
    downsampled: bool = False
    total: int = Field(description="points on the line before any downsampling")
    branch: int | None = Field(
        default=None, description="for an abandoned tail, the branch it belongs to"
    )


# -- nudges -----------------------------------------------------------------


class NudgeCreate(_Model):
    """Body of ``POST /api/runs/{run}/nudges``."""

    param: str = Field(description="'lr' or 'momentum' (Adam's beta1)")
    value: float
    note: Annotated[str, StringConstraints(max_length=NOTE_MAX_CHARS)] | None = None
    group: int | str | None = Field(
        default=None,
        description="param group index or name; all groups, scaled alike, if absent",
    )

    @field_validator("value", mode="before")
    @classmethod
    def _refuse_booleans(cls, value: Any) -> Any:
        # JSON true would otherwise pass as 1.0: a typo, never a learning rate.
        if isinstance(value, bool):
            raise ValueError("must be a number, not true or false")
        return value


class NudgeAck(_Model):
    """Body of ``POST /api/runs/{run}/nudges/{nudge}/ack``, sent by the hook."""

    status: Literal["applied", "rejected"]
    step: Step | None = None
    old_value: float | None = None
    factor: float | None = None
    checkpoint: Id | None = None
    branch: Id | None = None
    reason: Annotated[str, StringConstraints(max_length=NOTE_MAX_CHARS)] | None = None


class NudgeOut(BaseModel):
    id: int
    run: int
    action: NudgeAction
    param: str | None
    value: float | None
    old_value: float | None
    group: int | str | None
    factor: float | None
    status: NudgeStatus
    reason: str | None
    note: str | None
    requested_at: datetime
    applied_at: datetime | None
    applied_step: int | None
    checkpoint: int | None
    undoes: int | None = Field(
        default=None, description="for an undo, the nudge it takes back"
    )
    branch: int | None = None


HEARTBEAT_HELD_MAX = 1000


class Heartbeat(_Model):
    """Body of ``POST /api/runs/{run}/heartbeat``."""

    step: Step | None = None
    held: list[Id] = Field(
        default_factory=list,
        max_length=HEARTBEAT_HELD_MAX,
        description=(
            "ids of pending nudges the client already holds; the long poll "
            "waits past them and answers once the pending list differs"
        ),
    )


class HeartbeatReply(BaseModel):
    status: RunStatus
    pending: list[NudgeOut]


# -- checkpoints and branches -----------------------------------------------


class CheckpointCreate(_Model):
    """Body of ``POST /api/runs/{run}/checkpoints``, sent after the file is in place."""

    step: Step
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    size_bytes: int = Field(ge=0, le=STEP_MAX)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    reason: CheckpointReason = "periodic"
    branch: Id | None = None


class CheckpointOut(BaseModel):
    id: int
    run: int
    branch: int
    step: int
    path: str
    size_bytes: int
    sha256: str
    reason: CheckpointReason
    created_at: datetime
    deleted: bool = False


class BranchOut(BaseModel):
    id: int
    run: int
    parent: int | None
    start_step: int
    reason: BranchReason
    created_at: datetime
    current: bool


class ResumeRequest(_Model):
    """Body of ``POST /api/runs/{run}/resume``: the checkpoint to go on from."""

    checkpoint: Id | None = Field(default=None, description="the latest if absent")


class ResumePlan(BaseModel):
    """What a resuming process must load and then replay, in order."""

    run: RunOut
    branch: int
    checkpoint: CheckpointOut
    replay: list[NudgeOut] = Field(
        description="applied nudges on the new line the checkpoint does not hold yet"
    )


class ForkRequest(_Model):
    """Body of ``POST /api/runs/{run}/fork``."""

    checkpoint: Id
    name: Annotated[str, StringConstraints(max_length=NAME_MAX_CHARS)] | None = None
    config: dict[str, Any] = Field(default_factory=dict)


# -- sweeps (caviar) ----------------------------------------------------------

SweepStatus = Literal["running", "interrupted", "finished"]
TrialStatus = Literal["pending", "running", "finished", "failed", "stopped"]
TRIAL_ENDED_STATUSES: tuple[TrialStatus, ...] = ("finished", "failed", "stopped")
SUGGEST_MAX = 100


class SweepCreate(_Model):
    """Body of ``POST /api/sweeps``: a sweep file's content as JSON."""

    name: Annotated[str, StringConstraints(max_length=NAME_MAX_CHARS)] | None = None
    config: dict[str, Any] = Field(
        description="{'sweep': {...}, 'space': {...}} as in panda.caviar.config"
    )


class SweepUpdate(_Model):
    """Body of ``PATCH /api/sweeps/{sweep}``: the runner's view of the sweep."""

    status: SweepStatus


class TrialCreate(_Model):
    """Body of ``POST /api/sweeps/{sweep}/trials``.

    Without ``params`` the server asks the sweep's strategy for ``count`` points
    and stores them as pending before it answers, so two callers never get the
    same point. With ``params`` it registers that one point.
    """

    params: dict[str, Any] | None = None
    count: int = Field(default=1, ge=1, le=SUGGEST_MAX)


class TrialUpdate(_Model):
    """Body of ``PATCH /api/sweeps/{sweep}/trials/{trial}``."""

    status: TrialStatus | None = None
    objective: float | None = Field(
        default=None, description="a non-finite objective marks the trial failed"
    )
    run: Id | None = None
    note: Annotated[str, StringConstraints(max_length=NOTE_MAX_CHARS)] | None = None


class TrialOut(BaseModel):
    sweep: int
    number: int
    run: int | None
    params: dict[str, Any]
    round: int
    objective: float | None
    status: TrialStatus
    stop_requested: bool
    note: str | None
    rank: int | None = Field(
        default=None, description="1 for the best finished trial; None if unranked"
    )
    created_at: datetime
    updated_at: datetime


class SweepOut(BaseModel):
    id: int
    name: str
    status: SweepStatus
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    trial_counts: dict[str, int] = Field(description="trials per status")
    best_objective: float | None = None


class RoundOut(BaseModel):
    """One coarse-to-fine round and the ranges it samples."""

    index: int
    space: dict[str, Any]


class SweepDetail(SweepOut):
    trials: list[TrialOut] = Field(description="ranked: best objective first")
    rounds: list[RoundOut] = Field(default_factory=list)


class Suggestion(BaseModel):
    params: dict[str, Any]
    round: int = 0
    expected_improvement: float | None = Field(
        default=None,
        description="EI under the Bayesian surrogate; None for a random point",
    )


class SuggestionsOut(BaseModel):
    sweep: int
    strategy: str
    suggestions: list[Suggestion]


class SimilarRun(BaseModel):
    run: int
    lr: float
    objective: WireFloat


class LrSuggestion(BaseModel):
    """Reply of ``GET /api/runs/{run}/suggest-lr``."""

    run: int
    metric: str
    direction: Literal["minimize", "maximize"]
    lr: float
    expected_improvement: float
    best: SimilarRun | None
    similar: list[SimilarRun]
    explanation: str
