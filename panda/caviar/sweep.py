"""The sweep runner: launch a sweep's trials as parallel processes, keep the best.

:class:`SweepRunner` talks to the panda server only through its REST API. Each
free slot gets a trial the server registered as pending (suggested by the
sweep's strategy, or registered by someone else), and the trial's command runs
with ``PANDA_URL``, ``PANDA_SWEEP``, ``PANDA_TRIAL`` and ``PANDA_PARAMS`` (JSON)
in its environment, so ``panda.init()`` tags the run and links it to the trial,
and the runner's interpreter directory first on ``PATH``, so ``panda`` and
``python`` in a command are those of the environment that runs the sweep.
When a process ends, the trial's objective is the sweep's metric read back from
the store: its last value, or its best one.

A trial is stopped early by ``POST /api/sweeps/{id}/trials/{n}/stop`` (the CLI's
``panda sweep stop`` or the dashboard's button): the runner sees the request on
its next poll and ends the process group. An interrupted runner marks its
trials pending again, so ``panda sweep CONFIG --resume ID`` (or the same config
under the same name) starts them anew and goes on to the rest of the budget.

A command of the form ``module:function`` (one word) runs that Python function
in a fresh process, called with the params as keyword arguments; the function
calls ``panda.init()`` itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from panda.caviar.config import SweepConfig
from panda.caviar.space import LogUniform, OneMinusLogUniform, Space

logger = logging.getLogger(__name__)

POLL_S = 0.5
STOP_GRACE_S = 5.0
_FUNCTION_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class SweepError(Exception):
    """The sweep cannot go on: the server refused a request or is unreachable."""


@dataclass
class _Active:
    """A trial whose process is running."""

    number: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path
    stop_sent_at: float | None = None


class _Api:
    def __init__(self, server: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.server = server.rstrip("/")
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=30.0)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, "/api" + path, **kwargs)
        except httpx.TransportError as error:
            raise SweepError(
                f"panda server {self.server} unreachable ({error}); start it with "
                "`panda serve` and resume the sweep with --resume"
            ) from error
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise SweepError(f"{method} {path}: {detail} ({response.status_code})")
        return response.json() if response.content else None


class SweepRunner:
    """Run a sweep's trials, at most ``config.parallel`` at once, to its budget."""

    def __init__(
        self,
        config: SweepConfig,
        *,
        server: str,
        token: str | None = None,
        log_dir: Path,
        resume: int | None = None,
        echo: Callable[[str], None] = lambda line: None,
        poll_s: float = POLL_S,
    ) -> None:
        """Prepare a runner; nothing starts until :meth:`run`.

        Args:
            config: the sweep; its ``command`` is what each trial runs.
            server: the panda server's URL, also handed to the trials.
            token: the server's write token, if it has one.
            log_dir: each trial's output goes to ``sweep-<id>/trial-<n>.log`` here.
            resume: a sweep id to continue; else an unfinished sweep with the
                same name and config continues, or a new one starts.
            echo: called with one line per event worth telling a person.
            poll_s: how often processes and stop requests are checked.
        """
        if not config.command:
            raise ValueError(
                "the sweep has no command: set sweep.command in the sweep file, "
                'e.g. command = "panda demo --epochs 1 --pace 0"'
            )
        self.config = config
        self.api = _Api(server, token)
        self.token = token
        self.log_dir = log_dir
        self.resume = resume
        self.echo = echo
        self.poll_s = poll_s
        self.sweep_id: int | None = None
        self._active: dict[int, _Active] = {}

    # -- the loop ---------------------------------------------------------------

    def run(self) -> int:
        """Run the sweep to the end of its budget; return its id.

        Raises:
            SweepError: the server refused a request or went away.
            KeyboardInterrupt: after ending the running trials, which become
                pending again, and marking the sweep interrupted.
        """
        sweep = self._open_sweep()
        self.sweep_id = sweep["id"]
        self._requeue(sweep)
        try:
            self._loop()
        except BaseException:
            self._interrupt()
            raise
        self.api.call("PATCH", f"/sweeps/{self.sweep_id}", json={"status": "finished"})
        return self.sweep_id

    def _loop(self) -> None:
        while True:
            sweep = self._read()
            self._honour_stops(sweep)
            self._reap(sweep)
            launched = self._fill_slots(sweep)
            if not self._active and not launched:
                return
            time.sleep(self.poll_s)

    def _read(self) -> dict[str, Any]:
        sweep: dict[str, Any] = self.api.call("GET", f"/sweeps/{self.sweep_id}")
        return sweep

    def _open_sweep(self) -> dict[str, Any]:
        wanted = self.config.to_dict()
        if self.resume is not None:
            sweep: dict[str, Any] = self.api.call("GET", f"/sweeps/{self.resume}")
            self.echo(f"resuming sweep {sweep['id']} {sweep['name']!r}")
        else:
            name = self.config.name
            earlier = [
                found
                for found in self.api.call("GET", "/sweeps")
                if name is not None
                and found["name"] == name
                and found["status"] != "finished"
                and found["config"] == wanted
            ]
            if earlier:
                sweep = self.api.call("GET", f"/sweeps/{earlier[0]['id']}")
                self.echo(f"continuing unfinished sweep {sweep['id']} {name!r}")
            else:
                body = {"name": name, "config": wanted}
                sweep = self.api.call("POST", "/sweeps", json=body)
                self.echo(f"sweep {sweep['id']} {sweep['name']!r} created")
        if sweep["status"] != "running":
            sweep = self.api.call(
                "PATCH", f"/sweeps/{sweep['id']}", json={"status": "running"}
            )
        return sweep

    def _requeue(self, sweep: Mapping[str, Any]) -> None:
        """Make trials an earlier, interrupted runner left running pending again."""
        for trial in sweep["trials"]:
            if trial["status"] == "running":
                self._patch_trial(
                    trial["number"], status="pending", note="relaunched on resume"
                )
                self.echo(f"trial {trial['number']} was interrupted; it runs again")

    # -- launching --------------------------------------------------------------

    def _fill_slots(self, sweep: Mapping[str, Any]) -> int:
        free = self.config.parallel - len(self._active)
        waiting = sorted(
            (
                trial
                for trial in sweep["trials"]
                if trial["status"] == "pending" and trial["number"] not in self._active
            ),
            key=lambda trial: trial["number"],
        )
        launched = 0
        while free > 0:
            if waiting:
                trial = waiting.pop(0)
            else:
                created = self.api.call(
                    "POST", f"/sweeps/{self.sweep_id}/trials", json={"count": 1}
                )
                if not created:
                    break
                trial = created[0]
            self._launch(trial)
            free -= 1
            launched += 1
        return launched

    def _launch(self, trial: Mapping[str, Any]) -> None:
        number = trial["number"]
        params = trial["params"]
        environment = {
            **os.environ,
            # As if the environment that runs the sweep were activated: a
            # command of "panda ..." or "python ..." finds its executables.
            "PATH": os.pathsep.join(
                [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
            ),
            "PANDA_URL": self.api.server,
            "PANDA_SWEEP": str(self.sweep_id),
            "PANDA_TRIAL": str(number),
            "PANDA_PARAMS": json.dumps(params),
        }
        if self.token:
            environment["PANDA_TOKEN"] = self.token
        environment.pop("PANDA_RESUME", None)

        log_path = self.log_dir / f"sweep-{self.sweep_id}" / f"trial-{number}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("wb")
        self._patch_trial(number, status="running")
        try:
            process = subprocess.Popen(
                trial_command(self.config.command),
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            log.close()
            self._patch_trial(number, status="failed", note=f"cannot start: {error}")
            self.echo(f"trial {number} could not start: {error}")
            return
        self._active[number] = _Active(number, process, log, log_path)
        shown = ", ".join(f"{key}={_short(value)}" for key, value in params.items())
        self.echo(f"trial {number} started: {shown}")

    # -- stopping and reaping ---------------------------------------------------

    def _honour_stops(self, sweep: Mapping[str, Any]) -> None:
        wanted = {
            trial["number"] for trial in sweep["trials"] if trial["stop_requested"]
        }
        now = time.monotonic()
        for number, active in self._active.items():
            if number not in wanted:
                continue
            if active.stop_sent_at is None:
                active.stop_sent_at = now
                _signal_group(active.process, signal.SIGTERM)
                self.echo(f"trial {number}: stopping on request")
            elif now - active.stop_sent_at > STOP_GRACE_S:
                _signal_group(active.process, signal.SIGKILL)

    def _reap(self, sweep: Mapping[str, Any]) -> None:
        runs = {trial["number"]: trial["run"] for trial in sweep["trials"]}
        for number in list(self._active):
            active = self._active[number]
            code = active.process.poll()
            if code is None:
                continue
            del self._active[number]
            active.log.close()
            self._settle(active, code, runs.get(number))

    def _settle(self, active: _Active, code: int, run_id: int | None) -> None:
        number = active.number
        run_id = run_id if run_id is not None else self._find_run(number)
        if active.stop_sent_at is not None:
            self._end_run(run_id)
            self._patch_trial(number, status="stopped", note="stopped on request")
            self.echo(f"trial {number} stopped")
            return
        if code != 0 or run_id is None:
            reason = f"exit code {code}" if code != 0 else "it started no panda run"
            self._end_run(run_id)
            note = f"{reason}; see {active.log_path}"
            self._patch_trial(number, status="failed", note=note)
            self.echo(f"trial {number} failed: {note}")
            return

        objective = self._objective(run_id)
        if objective is None or not math.isfinite(objective):
            note = (
                f"run {run_id} logged no {self.config.objective!r}"
                if objective is None
                else f"{self.config.objective} is {objective}"
            )
            self._patch_trial(number, status="failed", note=note)
            self.echo(f"trial {number} failed: {note}")
            return
        self._patch_trial(number, status="finished", objective=objective)
        self.echo(f"trial {number} finished: {self.config.objective}={objective:.4g}")

    def _objective(self, run_id: int) -> float | None:
        metric = self.config.objective
        if self.config.summary == "last":
            run = self.api.call("GET", f"/runs/{run_id}")
            value = run["last_values"].get(metric)
            return None if value is None else float(value)
        keys = self.api.call("GET", f"/runs/{run_id}/metrics")
        if metric not in keys:
            return None
        series = self.api.call("GET", f"/runs/{run_id}/metrics", params={"key": metric})
        values = [float(value) for value in series["values"]]
        finite = [value for value in values if math.isfinite(value)]
        if not finite:
            return math.nan if values else None
        return min(finite) if self.config.direction == "minimize" else max(finite)

    def _find_run(self, number: int) -> int | None:
        """Find the run of a trial whose process could not link it (server late)."""
        tag = {"id": self.sweep_id, "trial": number}
        for run in self.api.call("GET", "/runs"):
            if run["config"].get("sweep") == tag:
                self._patch_trial(number, run=run["id"])
                return int(run["id"])
        return None

    def _end_run(self, run_id: int | None) -> None:
        """Mark a killed trial's run failed, rather than crashed a minute later."""
        if run_id is None:
            return
        run = self.api.call("GET", f"/runs/{run_id}")
        if run["status"] in ("running", "crashed"):
            self.api.call("PATCH", f"/runs/{run_id}", json={"status": "failed"})

    def _interrupt(self) -> None:
        """End the running trials and leave them pending for a resume."""
        for active in self._active.values():
            _signal_group(active.process, signal.SIGTERM)
        for active in self._active.values():
            try:
                active.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(active.process, signal.SIGKILL)
                active.process.wait()
            active.log.close()
        try:
            sweep = self._read()
            runs = {trial["number"]: trial["run"] for trial in sweep["trials"]}
            for number in self._active:
                self._end_run(runs.get(number))
                self._patch_trial(number, status="pending", note="interrupted")
            self.api.call(
                "PATCH", f"/sweeps/{self.sweep_id}", json={"status": "interrupted"}
            )
        except SweepError as error:
            logger.warning("could not record the interruption of the sweep: %s", error)
        self._active.clear()

    def _patch_trial(self, number: int, **body: Any) -> None:
        self.api.call("PATCH", f"/sweeps/{self.sweep_id}/trials/{number}", json=body)


def trial_command(command: Sequence[str]) -> list[str]:
    """Return the argv a trial runs: the command, or a call of a function target."""
    if len(command) == 1 and _FUNCTION_TARGET.match(command[0]):
        return [sys.executable, "-m", "panda.caviar.sweep", command[0]]
    return list(command)


def call_target(spec: str, params: Mapping[str, Any]) -> Any:
    """Import ``module:function`` and call it with ``params`` as keywords."""
    module_name, _, function_name = spec.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    return function(**params)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- seeding a sweep from a babysat run -------------------------------------------


def narrow_around(
    config: SweepConfig, values: Mapping[str, Sequence[float]], *, factor: float = 3.0
) -> SweepConfig:
    """Narrow α-like and β-like dimensions around values a person nudged to.

    A :class:`LogUniform` dimension (α) becomes [min / factor, max * factor]; a
    :class:`OneMinusLogUniform` one (β) does the same on 1 - β, kept inside
    [0, 1). Other dimensions, and names without values, stay as they are.

    Raises:
        ValueError: ``factor`` is not above 1, or a value does not fit its scale.
    """
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor}")
    dimensions = dict(config.space)
    for name, found in values.items():
        dimension = dimensions.get(name)
        if not found or dimension is None:
            continue
        low, high = min(found), max(found)
        if isinstance(dimension, LogUniform):
            if not low > 0:
                raise ValueError(f"{name} values must be > 0, got {low}")
            dimensions[name] = LogUniform(low / factor, high * factor)
        elif isinstance(dimension, OneMinusLogUniform):
            if not 0 <= low <= high < 1:
                raise ValueError(f"{name} values must lie in [0, 1), got {list(found)}")
            smallest_gap = (1.0 - high) / factor
            largest_gap = min((1.0 - low) * factor, 1.0)
            dimensions[name] = OneMinusLogUniform(1.0 - largest_gap, 1.0 - smallest_gap)
    return dataclasses.replace(config, space=Space(dimensions))


def main(argv: Sequence[str]) -> None:
    """Entry of a function-target trial: ``python -m panda.caviar.sweep MOD:FN``."""
    from panda import config as panda_config

    trial = panda_config.sweep_trial()
    call_target(argv[0], trial.params if trial is not None else {})


if __name__ == "__main__":
    main(sys.argv[1:])
