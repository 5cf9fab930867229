"""Atomic checkpoint files and exact restore of state and RNGs."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from panda.errors import CheckpointNotFound
from panda.hooks import checkpoints
from panda.hooks.checkpoints import (
    capture_rng,
    file_sha256,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)

STATE = {"format": checkpoints.FORMAT, "step": 3, "weights": torch.arange(4.0)}


def test_save_checkpoint_records_size_and_sha256(tmp_path: Path) -> None:
    written = save_checkpoint(tmp_path / "a.pt", STATE)
    assert written.step == 3
    assert written.size_bytes == (tmp_path / "a.pt").stat().st_size
    assert written.sha256 == file_sha256(tmp_path / "a.pt")
    assert torch.equal(load_checkpoint(written.path)["weights"], STATE["weights"])


def test_save_checkpoint_failing_midway_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = save_checkpoint(tmp_path / "a.pt", STATE)

    def crash(state: Any, file: Any) -> None:
        file.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "a.pt", {**STATE, "step": 4})

    assert [path.name for path in tmp_path.iterdir()] == ["a.pt"]
    assert file_sha256(good.path) == good.sha256
    assert load_checkpoint(good.path, sha256=good.sha256)["step"] == 3


def test_load_checkpoint_with_other_sha256_is_refused(tmp_path: Path) -> None:
    written = save_checkpoint(tmp_path / "a.pt", STATE)
    with written.path.open("ab") as file:
        file.write(b"x")
    with pytest.raises(CheckpointNotFound, match="sha256"):
        load_checkpoint(written.path, sha256=written.sha256)


def test_load_checkpoint_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFound, match="missing"):
        load_checkpoint(tmp_path / "none.pt")


def test_restore_rng_after_draws_repeats_them(tmp_path: Path) -> None:
    state = capture_rng()
    path = tmp_path / "rng.pt"
    save_checkpoint(path, {"format": checkpoints.FORMAT, "step": 0, "rng": state})
    first = (random.random(), np.random.rand(), torch.rand(1).item())

    restore_rng(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
