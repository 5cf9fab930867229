"""Save, atomically, and restore exactly everything a resume or an undo needs.

A checkpoint holds the model, the optimizer, the schedulers, the grad scaler,
the random number generators (Python, NumPy, torch CPU and CUDA), the step, the
data position, the hyperparameters in force and the nudges already reflected.
A file is written next to its final name, flushed to disk and renamed over it,
so a crash never leaves a half-written checkpoint under a real name.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim import Optimizer

from panda.errors import CheckpointNotFound
from panda.hooks.nudges import Scheduler, hparams

FORMAT = "panda-checkpoint/1"
HASH_CHUNK_BYTES = 2**20


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint on disk: where, which step, and its size and sha256."""

    path: Path
    step: int
    size_bytes: int
    sha256: str


@dataclass
class DataPosition:
    """Where a training loop stands in its data.

    ``epoch_rng`` is the torch CPU RNG state at the start of ``epoch``, from
    which the loader's shuffle order for that epoch can be drawn again.
    """

    epoch: int = 0
    index: int = 0
    epoch_rng: torch.Tensor | None = None


def save_checkpoint(path: Path, state: dict[str, Any]) -> CheckpointFile:
    """Write ``state`` to ``path`` atomically and return what was written.

    The bytes go to a temporary file in the same directory, are flushed to
    disk, and only then renamed over ``path``; the temporary file is removed
    if anything fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return CheckpointFile(
        path=path,
        step=int(state["step"]),
        size_bytes=path.stat().st_size,
        sha256=file_sha256(path),
    )


def load_checkpoint(path: Path, *, sha256: str | None = None) -> dict[str, Any]:
    """Read a checkpoint onto the CPU; check its sha256 first if given.

    Tensors are loaded with ``map_location="cpu"``; ``load_state_dict`` then
    copies them to wherever the model and optimizer live.

    Raises:
        CheckpointNotFound: the file is missing, altered, or not a checkpoint.
    """
    if not path.is_file():
        raise CheckpointNotFound(f"checkpoint file {path} is missing")
    if sha256 is not None and file_sha256(path) != sha256:
        raise CheckpointNotFound(
            f"checkpoint file {path} does not match its recorded sha256; "
            "it was changed or truncated after it was written"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:
        # A truncated or foreign file: torch reports a broken zip archive or
        # pickle stream. Never take it for a checkpoint.
        raise CheckpointNotFound(
            f"{path} is not a readable panda checkpoint ({error}); it may have "
            "been cut short while it was written"
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointNotFound(f"{path} is not a panda checkpoint")
    return state


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def capture_state(
    *,
    step: int,
    optimizer: Optimizer,
    model: torch.nn.Module | None,
    schedulers: Sequence[Scheduler],
    scaler: Any,
    position: DataPosition,
    nudges: Sequence[int],
) -> dict[str, Any]:
    """Gather everything a resume needs into one dict of tensors and builtins."""
    return {
        "format": FORMAT,
        "step": step,
        "epoch": position.epoch,
        "index": position.index,
        "epoch_rng": position.epoch_rng,
        "model": model.state_dict() if model is not None else None,
        "optimizer": optimizer.state_dict(),
        "schedulers": [scheduler.state_dict() for scheduler in schedulers],
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": capture_rng(),
        "hparams": hparams(optimizer),
        "nudges": list(nudges),
    }


def restore_state(
    state: dict[str, Any],
    *,
    optimizer: Optimizer,
    model: torch.nn.Module | None,
    schedulers: Sequence[Scheduler],
    scaler: Any,
) -> DataPosition:
    """Load a captured state back into the live objects; return the position.

    The RNG states are restored too. The learning rate and momentum come back
    as they were at the checkpoint: nudges applied later must be replayed.
    """
    if model is not None and state["model"] is not None:
        model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if len(state["schedulers"]) != len(schedulers):
        raise CheckpointNotFound(
            f"the checkpoint holds {len(state['schedulers'])} schedulers but "
            f"babysit() was given {len(schedulers)}"
        )
    for scheduler, scheduler_state in zip(schedulers, state["schedulers"], strict=True):
        scheduler.load_state_dict(scheduler_state)
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])

    restore_rng(state["rng"])
    return DataPosition(
        epoch=int(state["epoch"]),
        index=int(state["index"]),
        epoch_rng=state["epoch_rng"],
    )


def capture_rng() -> dict[str, Any]:
    """Return the state of every random number generator a training loop uses."""
    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    keys = np.asarray(keys)
    return {
        "python": random.getstate(),
        # NumPy's state is stored as builtins and a tensor so that loading
        # needs no pickled NumPy objects (torch.load with weights_only=True).
        "numpy": (
            kind,
            torch.from_numpy(keys.astype(np.int64)),
            position,
            has_gauss,
            cached,
        ),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back generator states captured by :func:`capture_rng`."""
    random.setstate(state["python"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state(
        (kind, keys.numpy().astype(np.uint32), position, has_gauss, cached)
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            torch.cuda.set_rng_state(state["cuda"][0])


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable; a no-op where directories cannot be opened."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
