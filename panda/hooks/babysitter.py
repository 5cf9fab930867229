"""The optimizer step hook: pending nudge -> checkpoint -> apply -> acknowledge.

A :class:`Babysitter` rides on a ``torch.optim.Optimizer`` through its step
pre- and post-hooks. Before each step it logs the learning rate and momentum in
force; at each step boundary it applies the nudges the client has already
fetched: checkpoint first, then change the value, then acknowledge. It also
takes periodic checkpoints, undoes a nudge in-process, and resumes a run from a
checkpoint.

Where the boundary is: inside :meth:`Babysitter.batches` it is the top of the
loop, after the loop body (and so after ``scheduler.step()``) and before the
next batch is drawn, so a checkpoint there holds a consistent model, optimizer,
scheduler, RNG and data position and a resume from it is exact. Without
``batches()`` the boundary is the end of ``optimizer.step()``.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import torch
from torch.optim import Optimizer

from panda import config as panda_config
from panda.client import CheckpointTicket, PendingNudge, Run, current_run
from panda.errors import CheckpointNotFound
from panda.hooks import nudges as nudging
from panda.hooks.checkpoints import (
    CheckpointFile,
    DataPosition,
    capture_state,
    load_checkpoint,
    restore_rng,
    restore_state,
    save_checkpoint,
)
from panda.hooks.nudges import NudgeRefused, Scheduler
from panda.protocol import CheckpointReason, NudgeOut, ResumePlan

logger = logging.getLogger(__name__)

BatchT = TypeVar("BatchT")


class Babysitter:
    """Apply nudges to a running optimizer and keep checkpoints to undo them.

    Made by :func:`panda.babysit`. Remove it with :meth:`detach`, or use it as
    a context manager.

    Attributes:
        step: optimizer steps completed, which is the index of the next step.
        position: where :meth:`batches` stands in the data.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        run: Run | None,
        model: torch.nn.Module | None,
        schedulers: Sequence[Scheduler],
        scaler: Any,
        checkpoint_dir: Path,
        checkpoint_every: int | None,
        checkpoint_every_s: float | None,
        keep_checkpoints: int,
        log_hparams: bool,
    ) -> None:
        self.optimizer = optimizer
        self.run = run
        self.model = model
        self.schedulers = list(schedulers)
        self.scaler = scaler
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.checkpoint_every_s = checkpoint_every_s
        self.keep_checkpoints = keep_checkpoints
        self.log_hparams = log_hparams
        self.step = 0
        self.position = DataPosition()

        self._reflected: list[int] = []
        self._periodic: deque[tuple[CheckpointFile, CheckpointTicket | None]] = deque()
        self._protected: set[Path] = set()
        self._last_checkpoint_s = time.monotonic()
        self._last_checkpoint_step: int | None = None
        self._last_boundary_step: int | None = None
        self._in_loop = False
        self._rewind: DataPosition | None = None
        self._rewind_rng: dict[str, Any] | None = None
        self._replay: list[NudgeOut] = []
        self._last_ticket: CheckpointTicket | None = None

        if run is not None and run.resume_plan is not None:
            self._resume(run.resume_plan)
        self._handles = [
            optimizer.register_step_pre_hook(self._pre_step),
            optimizer.register_step_post_hook(self._post_step),
        ]

    # -- hooks ----------------------------------------------------------------

    def on_step_start(self) -> None:
        """Fires before each optimizer step: log the lr and momentum it will use."""
        if self.run is None or not self.log_hparams:
            return
        values: dict[str, Any] = {}
        for index, group in enumerate(self.optimizer.param_groups):
            suffix = "" if index == 0 else f"/{group.get('name', index)}"
            # A tensor lr is logged as is: the sender thread reads it, so no
            # device sync happens here.
            values[f"lr{suffix}"] = group["lr"]
            momentum = _momentum_entry(group)
            if momentum is not None:
                values[f"momentum{suffix}"] = momentum
        self.run.log(values, step=self.step)

    def on_step_end(self) -> None:
        """Fires after each optimizer step: count it; outside batches(), a boundary."""
        self.step += 1
        if not self._in_loop:
            self.on_boundary()

    def on_boundary(self) -> None:
        """Fires between two steps: apply pending nudges, or checkpoint if due."""
        if self.step == self._last_boundary_step:
            return
        self._last_boundary_step = self.step
        self._replay_due()
        pending = self.run.take_nudges() if self.run is not None else []
        if pending:
            self._apply(pending)
        elif self._periodic_due():
            try:
                self.checkpoint(reason="periodic")
            except OSError as error:
                # Training goes on; the next periodic checkpoint tries again.
                self._last_checkpoint_step = self.step
                logger.error(
                    "periodic checkpoint at step %d failed: %s", self.step, error
                )

    def _pre_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        self.on_step_start()

    def _post_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        self.on_step_end()

    # -- data -------------------------------------------------------------------

    def batches(
        self, loader: Iterable[BatchT], *, epochs: int
    ) -> Iterator[tuple[int, BatchT]]:
        """Yield ``(step, batch)`` over ``epochs`` passes of ``loader``.

        Tracks the epoch and the index in it, saves the torch RNG state at each
        epoch start so the shuffle order can be drawn again, skips to the saved
        position after a resume, and rewinds after an undo. ``step`` is the
        index of the optimizer step the batch will feed.

        Limitations:
            Skipping to a position draws and discards the batches before it. A
            loader with its own ``generator`` is restored with it; a sampler
            with a private generator is not.
        """
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if self._in_loop:
            raise RuntimeError("batches() is already running for this babysitter")
        self._in_loop = True
        try:
            yield from self._loop(loader, epochs)
        finally:
            self._in_loop = False

    def _loop(
        self, loader: Iterable[BatchT], epochs: int
    ) -> Iterator[tuple[int, BatchT]]:
        start, self._rewind = self._rewind, None
        epoch = start.epoch if start is not None else self.position.epoch
        while epoch < epochs:
            batch_iterator = self._open_epoch(loader, epoch, start)
            start = None
            for batch in _boundaries(self, batch_iterator):
                yield self.step, batch
            if self._rewind is not None:
                start, self._rewind = self._rewind, None
                epoch = start.epoch
            else:
                epoch += 1

    def _open_epoch(
        self, loader: Iterable[BatchT], epoch: int, start: DataPosition | None
    ) -> Iterator[BatchT]:
        generator = getattr(loader, "generator", None)
        if start is None:
            self.position = DataPosition(
                epoch=epoch, index=0, epoch_rng=_epoch_rng(generator)
            )
            return iter(loader)

        if start.epoch_rng is not None:
            _set_epoch_rng(start.epoch_rng, generator)
        batch_iterator = iter(loader)
        for skipped in range(start.index):
            if next(batch_iterator, _END) is _END:
                raise RuntimeError(
                    f"the loader ended after {skipped} batches but the checkpoint "
                    f"stands at batch {start.index} of epoch {epoch}"
                )
        if self._rewind_rng is not None:
            restore_rng(self._rewind_rng)
        self.position = start
        return batch_iterator

    # -- checkpoints ------------------------------------------------------------

    def checkpoint(self, *, reason: CheckpointReason = "manual") -> CheckpointFile:
        """Write a checkpoint of the current state and register it with the run."""
        state = capture_state(
            step=self.step,
            optimizer=self.optimizer,
            model=self.model,
            schedulers=self.schedulers,
            scaler=self.scaler,
            position=self.position,
            nudges=self._reflected,
        )
        name = f"step-{self.step:09d}-{reason}-{uuid.uuid4().hex[:8]}.pt"
        written = save_checkpoint(self.checkpoint_dir / name, state)
        self._last_ticket = self._register(written, reason)
        self._last_checkpoint_s = time.monotonic()
        self._last_checkpoint_step = self.step

        if reason == "periodic":
            self._periodic.append((written, self._last_ticket))
            self._prune()
        log = logger.debug if reason == "periodic" else logger.info
        log("checkpoint at step %d written to %s", self.step, written.path)
        return written

    def _register(
        self, written: CheckpointFile, reason: CheckpointReason
    ) -> CheckpointTicket | None:
        if self.run is None:
            return None
        return self.run.register_checkpoint(
            step=written.step,
            path=str(written.path.resolve()),
            size_bytes=written.size_bytes,
            sha256=written.sha256,
            reason=reason,
        )

    def _periodic_due(self) -> bool:
        if self.step == self._last_checkpoint_step:
            return False
        every = self.checkpoint_every
        if every is not None and self.step > 0 and self.step % every == 0:
            return True
        every_s = self.checkpoint_every_s
        return (
            every_s is not None
            and time.monotonic() - self._last_checkpoint_s >= every_s
        )

    def _prune(self) -> None:
        """Delete periodic checkpoints beyond the newest ``keep_checkpoints``."""
        while len(self._periodic) > self.keep_checkpoints:
            written, ticket = self._periodic.popleft()
            if written.path in self._protected:
                continue
            if self.run is not None and ticket is not None:
                # The server refuses while a nudge or branch refers to it; the
                # sender removes the file only once the server agreed.
                self.run.delete_checkpoint(ticket, path=str(written.path))
            else:
                written.path.unlink(missing_ok=True)

    # -- nudges -----------------------------------------------------------------

    def _apply(self, pending: list[PendingNudge]) -> None:
        ticket: CheckpointTicket | None = None
        checkpointed = False
        for item in pending:
            nudge = item.nudge
            if nudge.action == "undo":
                self._undo(item)
                checkpointed = False
                continue
            try:
                nudging.check_nudge(
                    self.optimizer,
                    nudge.param,
                    nudge.value,
                    schedulers=self.schedulers,
                    group=nudge.group,
                )
            except NudgeRefused as refusal:
                self._reject(nudge, str(refusal))
                continue

            if not checkpointed:
                try:
                    self.checkpoint(reason="nudge")
                except OSError as error:
                    self._reject(nudge, f"the checkpoint before it failed: {error}")
                    continue
                ticket, checkpointed = self._last_ticket, True
            try:
                change = self._change(nudge)
            except NudgeRefused as refusal:
                # check_nudge should have caught it; a refusal must still never
                # reach the training loop.
                self._reject(nudge, str(refusal))
                continue
            self._reflected.append(nudge.id)
            self._ack_applied(nudge, change, ticket)

    def _change(self, nudge: NudgeOut, *, factor: float | None = None) -> Any:
        """Apply a set nudge; with ``factor``, replay an lr nudge exactly."""
        assert nudge.value is not None  # checked by check_nudge
        if nudge.param == "momentum":
            return nudging.set_momentum(
                self.optimizer,
                nudge.value,
                schedulers=self.schedulers,
                group=nudge.group,
            )
        if factor is not None:
            return nudging.scale_lr(
                self.optimizer, factor, schedulers=self.schedulers, group=nudge.group
            )
        return nudging.set_lr(
            self.optimizer, nudge.value, schedulers=self.schedulers, group=nudge.group
        )

    def _ack_applied(
        self,
        nudge: NudgeOut,
        change: nudging.NudgeChange,
        ticket: CheckpointTicket | None,
    ) -> None:
        logger.info(
            "nudge %d applied at step %d: %s %.6g -> %.6g",
            nudge.id,
            self.step,
            nudge.param,
            change.old_value,
            change.new_value,
        )
        if self.run is not None:
            self.run.ack_nudge(
                nudge.id,
                status="applied",
                step=self.step,
                old_value=change.old_value,
                factor=change.factor,
                checkpoint=ticket,
            )

    def _reject(self, nudge: NudgeOut, reason: str) -> None:
        logger.warning("nudge %d refused: %s", nudge.id, reason)
        if self.run is not None:
            self.run.ack_nudge(nudge.id, status="rejected", reason=reason)

    def _undo(self, item: PendingNudge) -> None:
        """Go back to the checkpoint taken before the undone nudge, in-process."""
        nudge, checkpoint = item.nudge, item.checkpoint
        if checkpoint is None or checkpoint.deleted:
            self._reject(nudge, f"no checkpoint to undo nudge {nudge.undoes} with")
            return
        try:
            state = load_checkpoint(Path(checkpoint.path), sha256=checkpoint.sha256)
        except CheckpointNotFound as error:
            self._reject(nudge, str(error))
            return

        self._restore(state)
        self._protected.add(Path(checkpoint.path))
        logger.info(
            "nudge %s undone: back to step %d from checkpoint %d",
            nudge.undoes,
            self.step,
            checkpoint.id,
        )
        if self.run is not None:
            self.run.ack_nudge(
                nudge.id, status="applied", step=self.step, checkpoint=checkpoint.id
            )
        if not self._in_loop:
            self._rewind = self._rewind_rng = None
            logger.warning(
                "undo restored step %d, but the data position was not rewound; "
                "iterate with sitter.batches() to have it rewound too",
                self.step,
            )

    def _restore(self, state: dict[str, Any]) -> None:
        position = restore_state(
            state,
            optimizer=self.optimizer,
            model=self.model,
            schedulers=self.schedulers,
            scaler=self.scaler,
        )
        self.step = int(state["step"])
        self._last_boundary_step = self.step
        self._last_checkpoint_step = self.step
        self._reflected = [int(nudge_id) for nudge_id in state["nudges"]]
        self._rewind, self._rewind_rng = position, state["rng"]
        self.position = position

    def _resume(self, plan: ResumePlan) -> None:
        """Load the resume plan's checkpoint, then replay the nudges it lacks."""
        state = load_checkpoint(
            Path(plan.checkpoint.path), sha256=plan.checkpoint.sha256
        )
        self._restore(state)
        # The first boundary after a resume must still look for nudges.
        self._last_boundary_step = None
        self._protected.add(Path(plan.checkpoint.path))
        self._replay = [
            nudge
            for nudge in plan.replay
            if nudge.action == "set" and nudge.id not in self._reflected
        ]
        self._replay_due()
        logger.info(
            "resumed run %s at step %d from %s",
            plan.run.id,
            self.step,
            plan.checkpoint.path,
        )

    def _replay_due(self) -> None:
        """Re-apply recorded nudges whose step has come, with their own factor."""
        due = [
            nudge
            for nudge in self._replay
            if nudge.applied_step is None or nudge.applied_step <= self.step
        ]
        for nudge in due:
            factor = nudge.factor if nudge.param == "lr" else None
            self._change(nudge, factor=factor)
            self._reflected.append(nudge.id)
            logger.info("nudge %d replayed at step %d", nudge.id, self.step)
        self._replay = [nudge for nudge in self._replay if nudge not in due]

    # -- removal ----------------------------------------------------------------

    def detach(self) -> None:
        """Remove the hooks from the optimizer; calling it again does nothing."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> Babysitter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.detach()


_END = object()


def _boundaries(
    sitter: Babysitter, batch_iterator: Iterator[BatchT]
) -> Iterator[BatchT]:
    """Yield batches, running a step boundary before drawing each one.

    Ends early when an undo at a boundary asked for a rewind.
    """
    while True:
        sitter.on_boundary()
        if sitter._rewind is not None:
            return
        batch = next(batch_iterator, _END)
        if batch is _END:
            return
        sitter.position.index += 1
        yield batch  # type: ignore[misc]


def _momentum_entry(group: dict[str, Any]) -> Any:
    if "betas" in group:
        return group["betas"][0]
    return group.get("momentum")


def _epoch_rng(generator: Any) -> torch.Tensor:
    """Return the RNG state a loader's shuffle for the coming epoch draws from."""
    if isinstance(generator, torch.Generator):
        return generator.get_state()
    return torch.get_rng_state()


def _set_epoch_rng(state: torch.Tensor, generator: Any) -> None:
    if isinstance(generator, torch.Generator):
        generator.set_state(state)
    else:
        torch.set_rng_state(state)


def babysit(
    optimizer: Optimizer,
    *,
    run: Run | None = None,
    model: torch.nn.Module | None = None,
    scheduler: Scheduler | Sequence[Scheduler] | None = None,
    scaler: Any = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    checkpoint_every_s: float | None = None,
    keep_checkpoints: int = 3,
    log_hparams: bool = True,
) -> Babysitter:
    """Attach a babysitter to ``optimizer`` and return it.

    Args:
        optimizer: the optimizer whose lr and momentum may be nudged.
        run: the run to take nudges from and log to; the one most recently
            started by :func:`panda.init` if absent. With no run at all the
            babysitter only takes checkpoints.
        model: the model whose weights checkpoints hold.
        scheduler: one scheduler or several; nudges rescale them so they keep
            the change, and checkpoints hold their state.
        scaler: a ``torch.amp.GradScaler`` whose state checkpoints hold.
        checkpoint_dir: where checkpoints go; by default
            ``<panda home>/checkpoints/run-<id>``.
        checkpoint_every: take a periodic checkpoint every this many steps.
        checkpoint_every_s: take a periodic checkpoint every this many seconds.
        keep_checkpoints: periodic checkpoints to keep; older ones are deleted,
            except those a nudge or branch refers to.
        log_hparams: log ``lr`` and ``momentum`` before every step.

    If the run was resumed (``panda.init(resume=...)``), the checkpoint of its
    resume plan is loaded here and the nudges it lacks are replayed.
    """
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if checkpoint_every_s is not None and checkpoint_every_s <= 0:
        raise ValueError(f"checkpoint_every_s must be > 0, got {checkpoint_every_s}")
    if keep_checkpoints < 1:
        raise ValueError(f"keep_checkpoints must be >= 1, got {keep_checkpoints}")
    run = run if run is not None else current_run()

    if scheduler is None:
        schedulers: list[Scheduler] = []
    elif isinstance(scheduler, Sequence):
        schedulers = list(scheduler)
    else:
        schedulers = [scheduler]

    if checkpoint_dir is None:
        label = (
            f"run-{run.id}"
            if run is not None and run.id is not None
            else (f"run-pending-{os.getpid()}")
        )
        directory = panda_config.default_home() / "checkpoints" / label
    else:
        directory = Path(checkpoint_dir)
    return Babysitter(
        optimizer,
        run=run,
        model=model,
        schedulers=schedulers,
        scaler=scaler,
        checkpoint_dir=directory,
        checkpoint_every=checkpoint_every,
        checkpoint_every_s=checkpoint_every_s,
        keep_checkpoints=keep_checkpoints,
        log_hparams=log_hparams,
    )
