"""Sweeps and their trials: create, suggest and register, update, rank.

A trial is registered (status ``pending``) before its process starts. Points the
strategy suggests are stored in the same transaction that computed them, under
the sweep's row lock, so two callers asking at once never get the same point.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from panda.caviar.config import SweepConfig, parse_sweep_config
from panda.caviar.suggestions import Suggestion, suggest_next
from panda.caviar.trials import Trial
from panda.errors import Conflict, PandaError
from panda.store.models import Nudge, Run, Sweep, SweepTrial, utcnow
from panda.store.runs import get_run

logger = logging.getLogger(__name__)

PENDING = "pending"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
STOPPED = "stopped"
ENDED = (FINISHED, FAILED, STOPPED)
_ORDER_OF_STATUS = {RUNNING: 1, PENDING: 2, STOPPED: 3, FAILED: 4}


class SweepNotFound(PandaError):
    """No sweep has the given id."""


class TrialNotFound(PandaError):
    """The sweep has no trial with the given number."""


class InvalidSweep(PandaError):
    """A sweep config, or a trial's params, that cannot be used."""


def sweep_config(sweep: Sweep) -> SweepConfig:
    """Return the validated config a sweep was stored with."""
    return parse_sweep_config(sweep.config)


def create_sweep(
    session: Session, *, name: str | None, config: Mapping[str, Any]
) -> Sweep:
    """Validate ``config`` and store a running sweep; commit.

    Raises:
        InvalidSweep: the config does not validate; the message says why.
    """
    try:
        parsed = parse_sweep_config(config)
    except ValueError as error:
        raise InvalidSweep(f"invalid sweep config: {error}") from None
    now = utcnow()
    sweep = Sweep(
        name=name or parsed.name or "",
        config=parsed.to_dict(),
        status=RUNNING,
        created_at=now,
        updated_at=now,
    )
    session.add(sweep)
    session.flush()
    sweep.name = sweep.name or f"sweep {sweep.id}"
    session.commit()
    logger.info("sweep %d %r created", sweep.id, sweep.name)
    return sweep


def get_sweep(session: Session, sweep_id: int, *, lock: bool = False) -> Sweep:
    """Return sweep ``sweep_id``, row-locked for update if ``lock``.

    Raises:
        SweepNotFound: there is no such sweep.
    """
    query = select(Sweep).where(Sweep.id == sweep_id)
    if lock:
        query = query.with_for_update()
    sweep = session.scalar(query)
    if sweep is None:
        raise SweepNotFound(f"sweep {sweep_id} not found")
    return sweep


def list_sweeps(session: Session) -> Sequence[Sweep]:
    """Return the sweeps, newest first."""
    return session.scalars(select(Sweep).order_by(Sweep.id.desc())).all()


def set_sweep_status(session: Session, sweep_id: int, status: str) -> Sweep:
    """Set the sweep's status (``running``, ``interrupted``, ``finished``); commit."""
    sweep = get_sweep(session, sweep_id)
    sweep.status = status
    sweep.updated_at = utcnow()
    session.commit()
    return sweep


def list_trials(session: Session, sweep_id: int) -> list[SweepTrial]:
    """Return the sweep's trials in the order they were registered."""
    query = select(SweepTrial).where(SweepTrial.sweep_id == sweep_id)
    return list(session.scalars(query.order_by(SweepTrial.number)))


def get_trial(session: Session, sweep_id: int, number: int) -> SweepTrial:
    """Return trial ``number`` of the sweep.

    Raises:
        SweepNotFound: there is no such sweep.
        TrialNotFound: the sweep has no such trial.
    """
    get_sweep(session, sweep_id)
    trial = session.scalar(
        select(SweepTrial).where(
            SweepTrial.sweep_id == sweep_id, SweepTrial.number == number
        )
    )
    if trial is None:
        raise TrialNotFound(f"sweep {sweep_id} has no trial {number}")
    return trial


def history(trials: Sequence[SweepTrial]) -> list[Trial]:
    """Return the trials as the search strategies see them.

    Pending and running trials have no objective yet; failed and stopped ones
    count as NaN, so the strategies rank them last and steer away from them.
    """
    return [
        Trial(
            dict(trial.params),
            _strategy_objective(trial),
            trial.round,
            str(trial.number),
        )
        for trial in trials
    ]


def _strategy_objective(trial: SweepTrial) -> float | None:
    if trial.status in (PENDING, RUNNING):
        return None
    if trial.status == FINISHED and trial.objective is not None:
        return trial.objective
    return math.nan


def ranked_trials(
    trials: Sequence[SweepTrial], direction: str
) -> list[tuple[SweepTrial, int | None]]:
    """Return (trial, rank) pairs: finished trials best first, ranked from 1,
    then running, pending, stopped and failed ones, unranked.
    """
    sign = 1.0 if direction == "minimize" else -1.0
    done = [t for t in trials if t.status == FINISHED and t.objective is not None]
    done.sort(key=lambda trial: (sign * float(trial.objective or 0.0), trial.number))
    rest = [t for t in trials if t not in done]
    rest.sort(key=lambda trial: (_ORDER_OF_STATUS.get(trial.status, 5), trial.number))
    return [(t, rank) for rank, t in enumerate(done, start=1)] + [
        (t, None) for t in rest
    ]


def preview_suggestions(session: Session, sweep: Sweep, count: int) -> list[Suggestion]:
    """Return what the strategy would suggest now, without storing anything."""
    return suggest_next(
        sweep_config(sweep), history(list_trials(session, sweep.id)), count
    )


def register_trials(
    session: Session,
    sweep_id: int,
    *,
    params: Mapping[str, Any] | None = None,
    count: int = 1,
) -> list[SweepTrial]:
    """Store new pending trials and commit; return them.

    With ``params``, one trial with those params (checked against the space).
    Without, up to ``count`` points the strategy suggests, never past the
    sweep's trial budget; fewer (even none) when the strategy waits, as a
    coarse-to-fine round does for its running trials.

    Raises:
        SweepNotFound: there is no such sweep.
        InvalidSweep: ``params`` lie outside the sweep's space.
        Conflict: the sweep is finished.
    """
    sweep = get_sweep(session, sweep_id, lock=True)
    if sweep.status == FINISHED:
        raise Conflict(f"sweep {sweep_id} is finished; it takes no more trials")
    config = sweep_config(sweep)
    trials = list_trials(session, sweep_id)
    space = config.make_strategy().space

    if params is not None:
        try:
            points = [Suggestion(space.validate(params))]
        except ValueError as error:
            raise InvalidSweep(f"params do not fit sweep {sweep_id}: {error}") from None
    else:
        budget = max(config.trials - len(trials), 0)
        points = suggest_next(config, history(trials), min(count, budget))

    number = max((trial.number for trial in trials), default=0)
    now = utcnow()
    created = []
    for point in points:
        number += 1
        trial = SweepTrial(
            sweep_id=sweep_id,
            number=number,
            params=dict(point.params),
            round=point.round,
            status=PENDING,
            stop_requested=False,
            created_at=now,
            updated_at=now,
        )
        session.add(trial)
        created.append(trial)
    sweep.updated_at = now
    session.commit()
    return created


def update_trial(
    session: Session,
    sweep_id: int,
    number: int,
    *,
    status: str | None = None,
    objective: float | None = None,
    run_id: int | None = None,
    note: str | None = None,
) -> SweepTrial:
    """Record a trial's run, status, objective or note; commit.

    A non-finite objective marks the trial failed (the database keeps no NaN).
    Finishing without an objective takes the last value of the sweep's metric
    from the trial's run.

    Raises:
        RunNotFound: ``run_id`` names no run.
        InvalidSweep: finished without any objective to be found.
    """
    trial = get_trial(session, sweep_id, number)
    if run_id is not None:
        trial.run_id = get_run(session, run_id).id
    if status is not None:
        trial.status = status
        if status == PENDING:
            trial.stop_requested = False
    if objective is not None:
        if math.isfinite(objective):
            trial.objective = objective
        else:
            trial.objective = None
            trial.status = FAILED
            note = note or f"objective is {objective}"
    if note is not None:
        trial.note = note

    if trial.status == FINISHED and trial.objective is None:
        trial.objective = _last_objective(session, trial)
    trial.updated_at = utcnow()
    session.commit()
    return trial


def _last_objective(session: Session, trial: SweepTrial) -> float:
    metric = str(trial_sweep_config(session, trial).objective)
    run = session.get(Run, trial.run_id) if trial.run_id is not None else None
    entry = run.last_values.get(metric) if run is not None else None
    if entry is None:
        raise InvalidSweep(
            f"trial {trial.number} finished without an objective, and its run "
            f"logged no {metric!r}; send 'objective', or mark it failed"
        )
    return float(entry[1])


def trial_sweep_config(session: Session, trial: SweepTrial) -> SweepConfig:
    """Return the config of the sweep a trial belongs to."""
    return sweep_config(get_sweep(session, trial.sweep_id))


def request_stop(session: Session, sweep_id: int, number: int) -> SweepTrial:
    """Ask the runner to stop a trial; a pending one stops at once. Commit.

    Raises:
        Conflict: the trial has already ended.
    """
    trial = get_trial(session, sweep_id, number)
    if trial.status in ENDED:
        raise Conflict(f"trial {number} of sweep {sweep_id} has already {trial.status}")
    trial.stop_requested = True
    if trial.status == PENDING:
        trial.status = STOPPED
        trial.note = "stopped before it started"
    trial.updated_at = utcnow()
    session.commit()
    logger.info("stop requested for trial %d of sweep %d", number, sweep_id)
    return trial


def count_by_status(session: Session, sweep_id: int) -> dict[str, int]:
    """Return how many trials the sweep has in each status."""
    query = (
        select(SweepTrial.status, func.count())
        .where(SweepTrial.sweep_id == sweep_id)
        .group_by(SweepTrial.status)
    )
    return {status: int(count) for status, count in session.execute(query)}


def best_objective(trials: Sequence[SweepTrial], direction: str) -> float | None:
    """Return the best finished objective, or None."""
    ranked = ranked_trials(trials, direction)
    if not ranked or ranked[0][1] is None:
        return None
    return ranked[0][0].objective


def similar_runs(
    session: Session, run: Run, metric: str
) -> list[tuple[int, float, float]]:
    """Return (run id, α, objective) of finished runs *like* ``run``.

    Like it means: another run that finished, logged ``metric`` (its last value
    is the objective), has a positive ``lr`` in its config (its α), trained the
    same ``model`` if ``run``'s config names one, and had no α nudge applied, so
    its objective belongs to that one α. Sweep trials are runs, so they count.
    """
    model = run.config.get("model")
    nudged = set(
        session.scalars(
            select(Nudge.run_id).where(Nudge.param == "lr", Nudge.status == "applied")
        )
    )
    query = select(Run).where(Run.status == FINISHED, Run.id != run.id)
    found = []
    for other in session.scalars(query.order_by(Run.id)):
        lr = other.config.get("lr")
        entry = other.last_values.get(metric)
        if entry is None or other.id in nudged:
            continue
        if model is not None and other.config.get("model") != model:
            continue
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
            continue
        found.append((other.id, float(lr), float(entry[1])))
    return found
