"""Routes for caviar sweeps: create, read, trials, stop, suggest; α for a run."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from panda.caviar.config import SweepConfig
from panda.caviar.strategies import CoarseToFine
from panda.caviar.suggestions import suggest_lr
from panda.errors import Conflict
from panda.protocol import (
    STEP_MAX,
    SUGGEST_MAX,
    LrSuggestion,
    MetricKey,
    RoundOut,
    SimilarRun,
    Suggestion,
    SuggestionsOut,
    SweepCreate,
    SweepDetail,
    SweepOut,
    SweepUpdate,
    TrialCreate,
    TrialOut,
    TrialUpdate,
)
from panda.server.deps import RunId, SessionDep, WriteAuth, WriteSessionDep
from panda.store import runs, sweeps
from panda.store.models import Sweep, SweepTrial

router = APIRouter(prefix="/sweeps", tags=["sweeps"], dependencies=[WriteAuth])
runs_router = APIRouter(prefix="/runs", tags=["sweeps"], dependencies=[WriteAuth])

SweepId = Annotated[int, Path(ge=1, le=STEP_MAX, description="sweep id")]
TrialNumber = Annotated[
    int, Path(ge=1, le=2**31 - 1, description="trial number within the sweep")
]


def trial_out(trial: SweepTrial, rank: int | None = None) -> TrialOut:
    """Return the reply for a trial."""
    return TrialOut(
        sweep=trial.sweep_id,
        number=trial.number,
        run=trial.run_id,
        params=trial.params,
        round=trial.round,
        objective=trial.objective,
        status=trial.status,  # type: ignore[arg-type]
        stop_requested=trial.stop_requested,
        note=trial.note,
        rank=rank,
        created_at=trial.created_at,
        updated_at=trial.updated_at,
    )


def _summary(sweep: Sweep, trials: list[SweepTrial]) -> dict[str, object]:
    direction = sweep.config["sweep"]["direction"]
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.status] = counts.get(trial.status, 0) + 1
    return {
        "id": sweep.id,
        "name": sweep.name,
        "status": sweep.status,
        "config": sweep.config,
        "created_at": sweep.created_at,
        "updated_at": sweep.updated_at,
        "trial_counts": counts,
        "best_objective": sweeps.best_objective(trials, direction),
    }


def _detail(session: SessionDep, sweep: Sweep) -> SweepDetail:
    trials = sweeps.list_trials(session, sweep.id)
    config = sweeps.sweep_config(sweep)
    ranked = sweeps.ranked_trials(trials, config.direction)
    return SweepDetail.model_validate(
        {
            **_summary(sweep, trials),
            "trials": [trial_out(trial, rank) for trial, rank in ranked],
            "rounds": _rounds(config, trials),
        }
    )


def _rounds(config: SweepConfig, trials: list[SweepTrial]) -> list[RoundOut]:
    strategy = config.make_strategy()
    if not isinstance(strategy, CoarseToFine):
        return []
    return [
        RoundOut(index=round_.index, space=round_.space.to_config())
        for round_ in strategy.rounds(sweeps.history(trials))
    ]


@router.post("", status_code=201)
def create_sweep(body: SweepCreate, session: WriteSessionDep) -> SweepDetail:
    """Create a sweep from a sweep file's content ({'sweep': ..., 'space': ...})."""
    sweep = sweeps.create_sweep(session, name=body.name, config=body.config)
    return _detail(session, sweep)


@router.get("")
def list_sweeps(session: SessionDep) -> list[SweepOut]:
    """List sweeps, newest first, with trial counts and the best objective."""
    return [
        SweepOut.model_validate(_summary(sweep, sweeps.list_trials(session, sweep.id)))
        for sweep in sweeps.list_sweeps(session)
    ]


@router.get("/{sweep_id}")
def read_sweep(sweep_id: SweepId, session: SessionDep) -> SweepDetail:
    """Return a sweep with its trials, best objective first, and its rounds."""
    return _detail(session, sweeps.get_sweep(session, sweep_id))


@router.patch("/{sweep_id}")
def update_sweep(
    sweep_id: SweepId, body: SweepUpdate, session: WriteSessionDep
) -> SweepDetail:
    """Mark a sweep running, interrupted or finished."""
    return _detail(session, sweeps.set_sweep_status(session, sweep_id, body.status))


@router.post("/{sweep_id}/trials", status_code=201)
def create_trials(
    sweep_id: SweepId, body: TrialCreate, session: WriteSessionDep
) -> list[TrialOut]:
    """Register trials as pending: given params, or the strategy's next points."""
    created = sweeps.register_trials(
        session, sweep_id, params=body.params, count=body.count
    )
    return [trial_out(trial) for trial in created]


@router.patch("/{sweep_id}/trials/{number}")
def update_trial(
    sweep_id: SweepId, number: TrialNumber, body: TrialUpdate, session: WriteSessionDep
) -> TrialOut:
    """Record a trial's run, status, objective or note."""
    trial = sweeps.update_trial(
        session,
        sweep_id,
        number,
        status=body.status,
        objective=body.objective,
        run_id=body.run,
        note=body.note,
    )
    return trial_out(trial)


@router.post("/{sweep_id}/trials/{number}/stop")
def stop_trial(
    sweep_id: SweepId, number: TrialNumber, session: WriteSessionDep
) -> TrialOut:
    """Ask the sweep's runner to stop a trial early (a pending one never starts)."""
    return trial_out(sweeps.request_stop(session, sweep_id, number))


@router.get("/{sweep_id}/suggest")
def suggest(
    sweep_id: SweepId,
    session: SessionDep,
    n: Annotated[int, Query(ge=1, le=SUGGEST_MAX, description="how many")] = 1,
) -> SuggestionsOut:
    """Preview the strategy's next points, with expected improvement if Bayesian."""
    sweep = sweeps.get_sweep(session, sweep_id)
    found = sweeps.preview_suggestions(session, sweep, n)
    return SuggestionsOut(
        sweep=sweep.id,
        strategy=sweep.config["sweep"]["strategy"],
        suggestions=[
            Suggestion(
                params=item.params,
                round=item.round,
                expected_improvement=item.expected_improvement,
            )
            for item in found
        ],
    )


@runs_router.get("/{run_id}/suggest-lr")
def suggest_run_lr(
    run_id: RunId,
    session: SessionDep,
    metric: Annotated[MetricKey, Query(description="objective metric")] = "val/loss",
    direction: Literal["minimize", "maximize"] = "minimize",
) -> LrSuggestion:
    """Suggest α for a run from finished runs like it, by a GP on log α with EI."""
    run = runs.get_run(session, run_id)
    similar = sweeps.similar_runs(session, run, metric)
    model = run.config.get("model")
    like = f"finished runs of model {model!r}" if model is not None else "finished runs"
    try:
        found = suggest_lr(
            [(lr, value) for _, lr, value in similar], direction=direction
        )
    except ValueError as error:
        raise Conflict(
            f"cannot suggest α for run {run_id} yet: {error}; counted {like} that "
            f"logged {metric!r}, have 'lr' in their config and were never α-nudged"
        ) from None

    observed = [
        SimilarRun(run=other, lr=lr, objective=value) for other, lr, value in similar
    ]
    best = next((item for item in observed if item.lr == found.best_lr), None)
    explanation = (
        f"From {len(observed)} {like} that logged {metric!r} (last value) with a "
        f"fixed α from their config: a Gaussian process on log10 α, and the α of "
        f"highest expected improvement over the best, {found.best_objective:.4g} "
        f"at α={found.best_lr:.3g}."
    )
    return LrSuggestion(
        run=run.id,
        metric=metric,
        direction=direction,
        lr=found.lr,
        expected_improvement=found.expected_improvement
        if math.isfinite(found.expected_improvement)
        else 0.0,
        best=best,
        similar=observed,
        explanation=explanation,
    )
