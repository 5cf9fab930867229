"""The user's handle on a run: create or resume it, log points, finish it.

``log()`` only appends to an in-memory outbox; a background thread sends the
points in batches and a second one long-polls the server for nudges, so the
training thread never waits on the network.
"""

from __future__ import annotations

import atexit
import logging
import numbers
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx

from panda import config as panda_config
from panda.client._heartbeat import NudgeInbox, NudgeWatcher, PendingNudge
from panda.client._sender import CheckpointTicket, Sender
from panda.client._spool import Spool, spool_path
from panda.errors import (
    CheckpointNotFound,
    PandaError,
    RunNotFound,
    ServerUnavailable,
)
from panda.protocol import (
    METRIC_KEY_MAX_CHARS,
    METRIC_KEY_PATTERN,
    NAME_MAX_CHARS,
    STEP_MAX,
    CheckpointReason,
    ResumePlan,
    RunCreate,
    RunOut,
)

logger = logging.getLogger(__name__)

_visible_key = re.compile(METRIC_KEY_PATTERN).fullmatch

DEFAULT_SPOOL_MAX_BYTES = 256 * 2**20
WAKE_AT_RECORDS = 1000
"""Wake the sender early once this many ``log`` calls wait in the outbox."""
CHECKED_KEYS_MAX = 10_000
CONNECT_TIMEOUT_S = 3.0

_current_run: Run | None = None


def current_run() -> Run | None:
    """Return the run most recently started by :func:`init` and not finished."""
    return _current_run


class Run:
    """A run on the panda server, as the training process sees it.

    Made by :func:`panda.init`. Use it as a context manager to end the run as
    ``failed`` when the block raises, or call :meth:`finish`.
    """

    def __init__(
        self,
        *,
        http: httpx.Client,
        poll_http: httpx.Client,
        spool: Spool,
        run: RunOut | None,
        plan: ResumePlan | None,
        name: str | None,
        flush_interval_s: float,
        heartbeat_wait_s: float,
    ) -> None:
        self.name = run.name if run is not None else name
        self.resume_plan = plan
        """What a resumed run must load and replay; None for a fresh run."""

        branch = plan.branch if plan is not None else (run.branch if run else None)
        self._sender = Sender(
            client=http,
            spool=spool,
            run_id=run.id if run is not None else None,
            branch=branch,
            flush_interval_s=flush_interval_s,
        )
        self._inbox = NudgeInbox()
        # Keys already checked: log() checks each new key once.
        self._checked_keys: set[str] = set()
        self._last_step: int | None = None
        self._watcher = NudgeWatcher(
            client=poll_http,
            inbox=self._inbox,
            run_id=lambda: self._sender.run_id,
            last_step=lambda: self._last_step,
            wait_s=heartbeat_wait_s,
        )
        self._next_ticket = 0
        self._finished = False
        self._lock = threading.Lock()

    @property
    def id(self) -> int | None:
        """The run's id on the server; None until the server has answered."""
        return self._sender.run_id

    @property
    def branch(self) -> int | None:
        """The branch new points go to (changes after an undo or a resume)."""
        return self._sender.branch

    @property
    def spool_path(self) -> Path:
        """Where points wait while the server is unreachable."""
        return self._sender.spool.path

    def __repr__(self) -> str:
        return f"Run(id={self.id}, name={self.name!r}, branch={self.branch})"

    # -- logging ----------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any], *, step: int) -> None:
        """Queue metric values measured at ``step``; return at once.

        Args:
            metrics: metric name to value: a float, an int, or a 0-dim tensor.
                A tensor on an accelerator is copied and read in the background
                thread, so the device sync that reading needs never stalls the
                training thread; a CPU tensor is read at once.
            step: the optimizer step the values describe (0-based, see the
                architecture notes).

        Raises:
            ValueError: a negative step, a key that is not a string, or a value
                that is not a number or a 0-dim tensor.
        """
        # The exact-type tests first: the ABC checks cost more than the rest
        # of the call.
        if type(step) is not int and (
            isinstance(step, bool) or not isinstance(step, numbers.Integral)
        ):
            raise ValueError(f"step must be an int, got {step!r}")
        if not 0 <= step <= STEP_MAX:
            raise ValueError(f"step must be >= 0, got {step}")
        if type(metrics) is not dict and not isinstance(metrics, Mapping):
            raise ValueError(f"metrics must be a mapping, got {type(metrics).__name__}")

        now = time.time()
        if not metrics.keys() <= self._checked_keys:
            self._check_keys(metrics)
        # A copy: the caller may reuse its dict. Floats, by far the most common
        # values, are kept as they are; the sender reads the rest.
        values = dict(metrics)
        for key, value in values.items():
            if type(value) is not float:
                values[key] = _check_value(key, value)
        outbox = self._sender.outbox
        outbox.append((int(step), now, values))
        if self._last_step is None or step > self._last_step:
            self._last_step = int(step)
        if len(outbox) >= WAKE_AT_RECORDS:
            self._sender.wake()
        else:
            self._sender.wake_if_idle()

    def _check_keys(self, metrics: Mapping[str, Any]) -> None:
        keys = self._checked_keys
        for key in metrics:
            if key not in keys:
                _check_key(key)
                if len(keys) < CHECKED_KEYS_MAX:
                    keys.add(key)

    def flush(self, *, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far reached the server.

        Returns:
            True if it did within ``timeout_s``; False if the server is away
            (the points stay in the spool) or slow.
        """
        return self._sender.barrier().wait(timeout_s)

    def finish(
        self,
        status: Literal["finished", "failed"] = "finished",
        *,
        timeout_s: float = 10.0,
    ) -> None:
        """Send what is queued, mark the run ``status`` and stop the threads.

        Waits at most ``timeout_s`` for the server; what it did not receive by
        then stays in the spool file, named in a WARNING. Calling it again does
        nothing.
        """
        global _current_run
        with self._lock:
            if self._finished:
                return
            self._finished = True
        atexit.unregister(self._finish_at_exit)
        if _current_run is self:
            _current_run = None

        self._sender.outbox.append({"op": "finish", "status": status})
        delivered = self.flush(timeout_s=timeout_s)
        self._watcher.stop()
        self._sender.stop(timeout_s=timeout_s)
        if not delivered:
            logger.warning(
                "panda run %s ended as %s but the server did not receive "
                "everything; see the spool %s",
                self.id,
                status,
                self.spool_path,
            )

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish("failed" if exc_type is not None else "finished")

    def _finish_at_exit(self) -> None:
        failed = getattr(sys, "last_value", None) is not None
        self.finish("failed" if failed else "finished", timeout_s=5.0)

    def _start(self) -> None:
        self._sender.start()
        self._watcher.start()
        atexit.register(self._finish_at_exit)

    # -- used by the babysitter -------------------------------------------------

    def take_nudges(self) -> list[PendingNudge]:
        """Return nudges waiting to be applied, oldest first; no network I/O."""
        return self._inbox.take()

    def register_checkpoint(
        self,
        *,
        step: int,
        path: str,
        size_bytes: int,
        sha256: str,
        reason: CheckpointReason,
    ) -> CheckpointTicket:
        """Queue the registration of a checkpoint file already in place."""
        with self._lock:
            self._next_ticket += 1
            ticket = CheckpointTicket(self._next_ticket, step=step, path=path)
        self._sender.tickets[ticket.local_id] = ticket
        body = {
            "step": step,
            "path": path,
            "size_bytes": size_bytes,
            "sha256": sha256,
            "reason": reason,
        }
        self._queue({"op": "checkpoint", "ticket": ticket.local_id, "body": body})
        return ticket

    def ack_nudge(
        self,
        nudge: int,
        *,
        status: Literal["applied", "rejected"],
        step: int | None = None,
        old_value: float | None = None,
        factor: float | None = None,
        checkpoint: CheckpointTicket | int | None = None,
        reason: str | None = None,
    ) -> None:
        """Queue a nudge's acknowledgement, after any checkpoint queued before.

        An acknowledged undo moves the run to the branch the server answers with.
        """
        body = {
            "status": status,
            "step": step,
            "old_value": old_value,
            "factor": factor,
            "checkpoint": checkpoint if isinstance(checkpoint, int) else None,
            "reason": reason,
        }
        ticket = (
            checkpoint.local_id if isinstance(checkpoint, CheckpointTicket) else None
        )
        self._queue({"op": "ack", "nudge": nudge, "ticket": ticket, "body": body})

    def delete_checkpoint(
        self, checkpoint: CheckpointTicket | int, *, path: str | None = None
    ) -> None:
        """Queue marking a checkpoint deleted; remove ``path`` if the server agrees.

        The server refuses while a nudge or branch refers to the checkpoint; the
        file then stays.
        """
        record: dict[str, Any] = {
            "op": "delete_checkpoint",
            "path": path,
            "remove_file": path is not None,
        }
        if isinstance(checkpoint, CheckpointTicket):
            record["ticket"] = checkpoint.local_id
        else:
            record["checkpoint"] = checkpoint
        self._queue(record)

    def _queue(self, record: dict[str, Any]) -> None:
        self._sender.outbox.append(record)
        self._sender.wake()


def init(
    name: str | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    server: str | None = None,
    token: str | None = None,
    resume: int | str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
    flush_interval_s: float = 0.15,
    heartbeat_wait_s: float = 10.0,
) -> Run:
    """Start a run on the panda server, or resume one, and return its handle.

    Args:
        name: a name to show; the server picks one if absent.
        config: the run's initial hyperparameters, stored with it.
        server: the server's URL; ``$PANDA_URL`` or ``http://127.0.0.1:8765``.
        token: sent as ``Authorization: Bearer``; ``$PANDA_TOKEN`` if absent.
        resume: a run id to resume from its latest checkpoint, or ``"RUN:CKPT"``
            to resume from checkpoint ``CKPT``; ``$PANDA_RESUME`` (set by
            ``panda resume``) if absent. The plan is kept as ``run.resume_plan``
            and :func:`panda.babysit` loads it.
        spool_dir: where points wait while the server is away;
            ``<panda home>/spool`` by default.
        spool_max_bytes: the spool's size limit; past it new points are
            dropped, with a WARNING.
        flush_interval_s: how often the background thread sends a batch.
        heartbeat_wait_s: how long one long poll for nudges may wait.

    Raises:
        ValueError: an argument is out of range.
        ServerUnavailable: resuming needs the server and it cannot be reached.
        RunNotFound: the run to resume does not exist.
        PandaError: the server refused the request (for example a bad token).

    A fresh run does not need the server at once: if it is unreachable, the
    run is created when it comes back and points wait in the spool meanwhile.

    Launched by ``panda sweep`` (``$PANDA_SWEEP``, ``$PANDA_TRIAL``,
    ``$PANDA_PARAMS``), the run's config takes the trial's params over
    ``config`` and names its sweep and trial, and the trial is linked to it.
    """
    global _current_run
    if flush_interval_s <= 0:
        raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
    if not 0 <= heartbeat_wait_s <= 30:
        raise ValueError(f"heartbeat_wait_s must be in [0, 30], got {heartbeat_wait_s}")
    url = server or panda_config.default_server_url()
    token = token or panda_config.default_token()
    resume = resume if resume is not None else panda_config.resume_request()
    http = _make_client(url, token)

    plan = None
    run_out = None
    trial = panda_config.sweep_trial()
    if trial is not None:
        # A sweep's params override the script's defaults in the stored config.
        sweep_tag = {"sweep": {"id": trial.sweep, "trial": trial.trial}}
        config = {**(config or {}), **trial.params, **sweep_tag}
        # Trials of one script share its name; the runs list tells them apart.
        suffix = f" · sweep {trial.sweep} trial {trial.trial}"
        name = (name or "run")[: NAME_MAX_CHARS - len(suffix)] + suffix
    create = RunCreate(
        name=name,
        config=dict(config or {}),
        command=[sys.executable, *sys.orig_argv[1:]],
        cwd=os.getcwd(),
    ).model_dump(mode="json")
    try:
        if resume is not None:
            plan = _request_resume(http, resume)
            run_out = plan.run
        else:
            run_out = _try_create(http, create)
            if run_out is not None and trial is not None:
                _link_trial(http, trial, run_out.id)
    except BaseException:
        http.close()
        raise

    directory = Path(spool_dir) if spool_dir else panda_config.default_home() / "spool"
    label = f"run-{run_out.id}" if run_out is not None else "run-new"
    spool = Spool(spool_path(directory, label), max_bytes=spool_max_bytes)
    run = Run(
        http=http,
        poll_http=_make_client(url, token),
        spool=spool,
        run=run_out,
        plan=plan,
        name=name,
        flush_interval_s=flush_interval_s,
        heartbeat_wait_s=heartbeat_wait_s,
    )
    if run_out is None:
        run._sender.outbox.append({"op": "create", "body": create})
    run._start()
    _current_run = run
    return run


def _make_client(url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx.Timeout(10.0, connect=CONNECT_TIMEOUT_S)
    return httpx.Client(base_url=url, headers=headers, timeout=timeout)


def _try_create(http: httpx.Client, body: dict[str, Any]) -> RunOut | None:
    """Create the run now; return None if the server is unreachable."""
    try:
        response = http.post("/api/runs", json=body)
    except httpx.TransportError as error:
        # The sender warns once, naming the spool, when its first try fails too.
        logger.debug("cannot create the run yet: %s", error)
        return None
    _raise_for_status(response, "create the run")
    run = RunOut.model_validate(response.json())
    logger.info("panda run %d started on %s", run.id, http.base_url)
    return run


def _link_trial(
    http: httpx.Client, trial: panda_config.SweepTrialEnv, run_id: int
) -> None:
    """Tell the sweep which run trains its trial; a failure only costs the link."""
    path = f"/api/sweeps/{trial.sweep}/trials/{trial.trial}"
    try:
        response = http.patch(path, json={"run": run_id, "status": "running"})
    except httpx.TransportError as error:
        logger.warning("could not link run %d to its sweep trial: %s", run_id, error)
        return
    if response.status_code >= 400:
        logger.warning(
            "sweep %d refused to link run %d to trial %d: %s",
            trial.sweep,
            run_id,
            trial.trial,
            _detail(response),
        )


def _request_resume(http: httpx.Client, resume: int | str) -> ResumePlan:
    run_text, _, checkpoint_text = str(resume).partition(":")
    try:
        run_id = int(run_text)
        checkpoint = int(checkpoint_text) if checkpoint_text else None
    except ValueError:
        raise ValueError(
            f"resume must be a run id or 'RUN:CHECKPOINT', got {resume!r}"
        ) from None

    try:
        response = http.post(
            f"/api/runs/{run_id}/resume", json={"checkpoint": checkpoint}
        )
    except httpx.TransportError as error:
        raise ServerUnavailable(
            f"cannot resume run {run_id}: panda server {http.base_url} unreachable "
            f"({error}); start it with `panda serve`"
        ) from error
    if response.status_code == 404:
        detail = _detail(response)
        error_class = CheckpointNotFound if "checkpoint" in detail else RunNotFound
        raise error_class(f"cannot resume run {run_id}: {detail}")
    _raise_for_status(response, f"resume run {run_id}")
    plan = ResumePlan.model_validate(response.json())
    logger.info(
        "panda run %d resumes from checkpoint %d (step %d) on branch %d",
        run_id,
        plan.checkpoint.id,
        plan.checkpoint.step,
        plan.branch,
    )
    return plan


def _raise_for_status(response: httpx.Response, action: str) -> None:
    if response.status_code >= 400:
        raise PandaError(
            f"panda server refused to {action} ({response.status_code}): "
            f"{_detail(response)}"
        )


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:500]


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise ValueError(f"metric names must be str, got {key!r}")
    # The server's own rule: a batch holding one key it refuses is refused whole.
    # A lone surrogate matches the pattern but has no UTF-8 form to send.
    if (
        len(key) > METRIC_KEY_MAX_CHARS
        or not _visible_key(key)
        or _has_lone_surrogate(key)
    ):
        raise ValueError(
            f"metric name {key!r} must be visible text of at most "
            f"{METRIC_KEY_MAX_CHARS} characters, without control characters"
        )
    return key


def _has_lone_surrogate(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_value(key: str, value: object) -> Any:
    """Return a float for ``value``, or a detached copy of a 0-dim tensor that
    lives on an accelerator (read later, in the sender thread)."""
    if type(value) is int:
        return float(value)
    detach = getattr(value, "detach", None)
    if detach is not None and getattr(value, "ndim", None) == 0:
        # Few attribute reads: right after a training step they run on cold
        # caches, where each costs microseconds.
        if value.is_cpu:  # type: ignore[attr-defined]
            # Reading a CPU tensor waits for nothing, and is cheaper than a copy.
            try:
                return float(value.item())  # type: ignore[attr-defined]
            except TypeError:
                raise ValueError(
                    f"metric {key!r}: complex tensors are not numbers"
                ) from None
        if value.is_complex():  # type: ignore[attr-defined]
            raise ValueError(f"metric {key!r}: complex tensors are not numbers")
        # clone() guards against the caller updating the tensor in place before
        # the sender reads it; neither call waits for the device.
        return detach().clone()
    if isinstance(value, numbers.Real):
        return float(value)
    if detach is None and getattr(value, "ndim", None) == 0:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    if detach is not None:
        raise ValueError(
            f"metric {key!r} must be a 0-dim tensor, got shape "
            f"{tuple(getattr(value, 'shape', ()))}; call .mean() or index it"
        )
    raise ValueError(
        f"metric {key!r} must be a float, an int or a 0-dim tensor, "
        f"got {type(value).__name__}"
    )
