"""caviar's commands: sweep, suggest, fork, lr-find.

Registered on the ``panda`` group by :mod:`panda.cli`, whose REST helper and
options they share; import this module only from there.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from panda import config
from panda.cli import (
    _Api,
    _describe_nudge,
    _fail,
    _parse_assignment,
    _server_option,
    _short,
)


class _SweepGroup(click.Group):
    """``panda sweep CONFIG`` runs a sweep; ``stop``, ``show``, ``list`` act on one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_SweepGroup)
def sweep() -> None:
    """Train many runs with sampled settings and keep the best (caviar).

    panda sweep CONFIG runs the sweep file CONFIG (see examples/digits-sweep.toml).
    """


@sweep.command("run")
@click.argument(
    "config_path",
    metavar="CONFIG",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
)
@_server_option
@click.option(
    "--resume",
    "resume_id",
    type=int,
    default=None,
    metavar="SWEEP",
    help="Continue this sweep [default: an unfinished one of the same name].",
)
@click.option(
    "--around",
    "around_run",
    type=int,
    default=None,
    metavar="RUN",
    help="Narrow lr and momentum ranges around the values RUN was nudged to.",
)
@click.option(
    "--parallel", type=int, default=None, help="Trials at once [default: the file's]."
)
@click.option(
    "--trials", type=int, default=None, help="Trials in all [default: the file's]."
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where trial output goes [default: <panda home>/sweeps].",
)
def sweep_run(
    config_path: Path,
    server: str | None,
    resume_id: int | None,
    around_run: int | None,
    parallel: int | None,
    trials: int | None,
    log_dir: Path | None,
) -> None:
    """Run the sweep file CONFIG: its command once per trial, in parallel."""
    from panda.caviar.config import load_sweep_config
    from panda.caviar.sweep import SweepError, SweepRunner, narrow_around

    api = _Api(server)
    try:
        sweep_config = load_sweep_config(config_path)
        if parallel is not None:
            sweep_config = dataclasses.replace(sweep_config, parallel=parallel)
        if trials is not None:
            sweep_config = dataclasses.replace(sweep_config, trials=trials)
        if around_run is not None:
            sweep_config = narrow_around(sweep_config, _nudged_values(api, around_run))
            name = sweep_config.name or config_path.stem
            sweep_config = dataclasses.replace(
                sweep_config, name=f"{name}-around-{around_run}"
            )
        elif sweep_config.name is None:
            sweep_config = dataclasses.replace(sweep_config, name=config_path.stem)
        trial_logs = log_dir or config.default_home() / "sweeps"
        runner = SweepRunner(
            sweep_config,
            server=api.url,
            token=config.default_token(),
            log_dir=trial_logs,
            resume=resume_id,
            echo=lambda line: click.echo(line, err=True),
        )
        sweep_id = runner.run()
    except (ValueError, SweepError) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted; continue with `panda sweep {config_path} "
            f"--resume {runner.sweep_id}`",
            err=True,
        )
        sys.exit(130)
    found = api.request("GET", f"/sweeps/{sweep_id}")
    _print_sweep(found)
    if found["trials"] and all(t["status"] == "failed" for t in found["trials"]):
        _fail(
            f"every trial of sweep {sweep_id} failed; their output is in "
            f"{trial_logs / f'sweep-{sweep_id}'}"
        )


def _nudged_values(api: _Api, run_id: int) -> dict[str, list[float]]:
    """Return the lr and momentum RUN started with and was nudged to."""
    run = api.request("GET", f"/runs/{run_id}")
    values: dict[str, list[float]] = {"lr": [], "momentum": []}
    for param in values:
        if isinstance(run["config"].get(param), int | float):
            values[param].append(float(run["config"][param]))
    for item in api.request("GET", f"/runs/{run_id}/nudges"):
        if item["status"] == "applied" and item["param"] in values:
            values[item["param"]].append(float(item["value"]))
    return values


def _print_sweep(found: dict[str, Any]) -> None:
    settings = found["config"]["sweep"]
    click.echo(
        f"sweep {found['id']} {found['name']!r} [{found['status']}]: "
        f"{settings['strategy']}, {settings['objective']} "
        f"({settings['direction']}, {settings['summary']})"
    )
    click.echo(
        f"{'RANK':>4} {'TRIAL':>5} {'RUN':>5} {'STATUS':<9} {'OBJECTIVE':>10}  PARAMS"
    )
    for trial in found["trials"]:
        params = ", ".join(
            f"{key}={_short(value)}" for key, value in trial["params"].items()
        )
        rank = "" if trial["rank"] is None else str(trial["rank"])
        run = "" if trial["run"] is None else str(trial["run"])
        objective = "" if trial["objective"] is None else _short(trial["objective"])
        click.echo(
            f"{rank:>4} {trial['number']:>5} {run:>5} {trial['status']:<9} "
            f"{objective:>10}  {params}"
        )


@sweep.command("stop")
@click.argument("sweep_id", metavar="SWEEP", type=int)
@click.argument("trial", type=int)
@_server_option
def sweep_stop(sweep_id: int, trial: int, server: str | None) -> None:
    """Stop TRIAL of SWEEP early; its runner ends the process."""
    found = _Api(server).request("POST", f"/sweeps/{sweep_id}/trials/{trial}/stop")
    click.echo(
        f"trial {found['number']} of sweep {sweep_id}: stop requested "
        f"[{found['status']}]"
    )


@sweep.command("show")
@click.argument("sweep_id", metavar="SWEEP", type=int)
@_server_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sweep_show(sweep_id: int, server: str | None, as_json: bool) -> None:
    """Show SWEEP's trials, best first."""
    found = _Api(server).request("GET", f"/sweeps/{sweep_id}")
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    _print_sweep(found)


@sweep.command("list")
@_server_option
def sweep_list(server: str | None) -> None:
    """List sweeps, newest first."""
    for found in _Api(server).request("GET", "/sweeps"):
        counts = ", ".join(
            f"{n} {status}" for status, n in found["trial_counts"].items()
        )
        best = (
            "" if found["best_objective"] is None else _short(found["best_objective"])
        )
        click.echo(
            f"{found['id']:>4}  {found['name'][:24]:<24} {found['status']:<11} "
            f"best {best:<10} {counts}"
        )


@click.command()
@click.argument("sweep_id", metavar="SWEEP", type=int, required=False)
@click.option(
    "-n",
    "count",
    default=1,
    show_default=True,
    type=int,
    help="How many points to suggest.",
)
@click.option(
    "--run",
    "run_id",
    type=int,
    default=None,
    help="Instead, suggest α for this run from finished runs like it.",
)
@click.option(
    "--metric",
    default="val/loss",
    show_default=True,
    help="With --run: the objective metric.",
)
@_server_option
def suggest(
    sweep_id: int | None,
    count: int,
    run_id: int | None,
    metric: str,
    server: str | None,
) -> None:
    """Show the next points SWEEP's strategy would try, with expected improvement."""
    api = _Api(server)
    if (sweep_id is None) == (run_id is None):
        _fail("give a SWEEP, or --run RUN for an α suggestion")
    if run_id is not None:
        found = api.request(
            "GET", f"/runs/{run_id}/suggest-lr", params={"metric": metric}
        )
        click.echo(
            f"suggested α for run {run_id}: {found['lr']:.4g} "
            f"(expected improvement {found['expected_improvement']:.3g})"
        )
        click.echo(found["explanation"])
        return
    found = api.request("GET", f"/sweeps/{sweep_id}/suggest", params={"n": count})
    if not found["suggestions"]:
        click.echo(
            "the strategy has nothing to suggest now (budget spent, or a round "
            "waits for its trials)"
        )
    for item in found["suggestions"]:
        params = ", ".join(
            f"{key}={_short(value)}" for key, value in item["params"].items()
        )
        ei = item["expected_improvement"]
        extra = "" if ei is None else f"  EI={ei:.3g}"
        click.echo(f"round {item['round']}: {params}{extra}")


@click.command()
@click.argument("run", type=int)
@click.option(
    "--checkpoint",
    "checkpoint_id",
    type=int,
    default=None,
    help="Checkpoint to start from [default: the run's latest].",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="PARAM=VALUE",
    help="lr or momentum of the fork, applied when it starts; repeatable.",
)
@click.option("--name", default=None, help="Name of the new run.")
@_server_option
def fork(
    run: int,
    checkpoint_id: int | None,
    assignments: Sequence[str],
    name: str | None,
    server: str | None,
) -> None:
    """Start a new run from a checkpoint of RUN, with other settings.

    Each --set becomes a nudge of the fork, so the babysitter applies it at the
    first step after `panda resume FORK` loads the checkpoint.
    """
    from panda.errors import InvalidNudge
    from panda.store.nudges import check_value

    api = _Api(server)
    parsed = [_parse_assignment(text) for text in assignments]
    for param, value in parsed:
        # Checked before the fork exists: a refused nudge would leave it behind.
        try:
            check_value(param, value)
        except InvalidNudge as error:
            reason = str(error).partition(": ")[2]
            _fail(f"--set {param}={value:g}: {reason}")
    if checkpoint_id is None:
        live = [
            c
            for c in api.request("GET", f"/runs/{run}/checkpoints")
            if not c.get("deleted")
        ]
        if not live:
            _fail(f"run {run} has no checkpoint to fork from")
        checkpoint_id = max(live, key=lambda c: (c["step"], c["id"]))["id"]
    body = {"checkpoint": checkpoint_id, "name": name, "config": dict(parsed)}
    created = api.request("POST", f"/runs/{run}/fork", json=body)
    click.echo(
        f"run {created['id']} forked from run {run} at step "
        f"{created['parent_step']} (checkpoint {checkpoint_id})"
    )
    for param, value in parsed:
        nudge_body = {"param": param, "value": value, "note": "set at fork"}
        made = api.request("POST", f"/runs/{created['id']}/nudges", json=nudge_body)
        click.echo(_describe_nudge(made))
    click.echo(f"train it with `panda resume {created['id']}`")


@click.command("lr-find")
@click.option("--start", default=1e-5, show_default=True, type=float, help="First α.")
@click.option("--end", default=10.0, show_default=True, type=float, help="Last α.")
@click.option("--steps", default=100, show_default=True, type=int)
@click.option("--momentum", default=0.9, show_default=True, type=float)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("lr-find.png"),
    show_default=True,
    help="PNG to write.",
)
def lr_find_command(
    start: float, end: float, steps: int, momentum: float, output: Path
) -> None:
    """Run the learning-rate range test on the digits CNN and plot loss against α."""
    from panda.caviar.lrfind import lr_find, plot_lr_find
    from panda.demo import lr_find_digits

    try:
        lrs, losses, suggested = lr_find_digits(
            lr_find, start=start, end=end, steps=steps, momentum=momentum
        )
    except ValueError as error:
        _fail(str(error))
    figure = plot_lr_find(lrs, losses, suggested)
    figure.savefig(output, dpi=120)
    click.echo(
        f"tried {len(lrs)} values of α from {lrs[0]:.3g} to {lrs[-1]:.3g}; "
        f"plot in {output}"
    )
    click.echo(f"suggested α: {suggested:.3g}")


COMMANDS = (sweep, suggest, fork, lr_find_command)
