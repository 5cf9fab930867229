"""``panda demo``: babysit a small CNN learning scikit-learn's bundled digits.

The 1,797 8x8 images ship inside scikit-learn, so the demo needs no download.
By default it also serves the dashboard from this process, on an SQLite file in
panda's data directory, and paces training so a person has minutes to watch the
curves and nudge α or the momentum.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import click
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import panda
from panda import config

DEFAULT_EPOCHS = 100
BATCH_SIZE = 32
SEED = 0


class DigitsCNN(nn.Module):
    """Two convolutions and a linear head: about 12k parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 16, 10)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(images))
        return logits


def load_digits_split(
    device: torch.device, *, seed: int = SEED
) -> tuple[TensorDataset, TensorDataset]:
    """Return (train, validation) tensors of the digits, 80/20, scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(labels))
    train, val = order[:cut], order[cut:]
    return (
        TensorDataset(images[train].to(device), labels[train].to(device)),
        TensorDataset(images[val].to(device), labels[val].to(device)),
    )


def train(
    run: panda.Run,
    *,
    epochs: int,
    lr: float,
    momentum: float,
    pace: float,
    device: torch.device,
    progress: bool = True,
    batch_size: int = BATCH_SIZE,
    final_checkpoint: bool = False,
) -> None:
    """Train the CNN on the digits, logging to ``run`` and babysat by panda.

    With ``final_checkpoint`` the last state is saved too, so the run can be
    forked from where it ended (a sweep's best trial, for instance).
    """
    torch.manual_seed(SEED)
    train_set, val_set = load_digits_split(device)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True)
    model = DigitsCNN().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    sitter = panda.babysit(
        optimizer, run=run, model=model, checkpoint_every=5 * len(loader)
    )
    total_steps = epochs * len(loader)
    step_period_s = 1.0 / pace if pace > 0 else 0.0

    with sitter, _progress_bar(total_steps, sitter.step, progress) as bar:
        next_step_at = time.monotonic()
        for step, (images, labels) in sitter.batches(loader, epochs=epochs):
            model.train()
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            run.log({"train/loss": loss}, step=step)

            if sitter.step % len(loader) == 0:
                run.log(evaluate(model, val_set, loss_fn), step=step)
            bar.update(1)

            # Pacing: sleep off whatever the step left of its time slot.
            if step_period_s:
                next_step_at += step_period_s
                time.sleep(max(0.0, next_step_at - time.monotonic()))
        if final_checkpoint:
            sitter.checkpoint(reason="final")


def lr_find_digits(
    finder: Callable[..., tuple[list[float], list[float], float]],
    *,
    start: float,
    end: float,
    steps: int,
    momentum: float = 0.9,
    device: torch.device | None = None,
) -> tuple[list[float], list[float], float]:
    """Run ``finder`` (:func:`panda.caviar.lrfind.lr_find`) on a fresh digits CNN."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(SEED)
    train_set, _ = load_digits_split(device)
    loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
    model = DigitsCNN().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=start, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    return finder(model, optimizer, loader, loss_fn, start=start, end=end, steps=steps)


@torch.no_grad()
def evaluate(
    model: nn.Module, val_set: TensorDataset, loss_fn: nn.Module
) -> dict[str, float]:
    """Return validation loss and accuracy over the whole held-out set."""
    model.eval()
    images, labels = val_set.tensors
    logits = model(images)
    # .item() syncs with the device; once per epoch, so it costs nothing.
    loss = loss_fn(logits, labels).item()
    accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
    return {"val/loss": loss, "val/acc": accuracy}


@contextlib.contextmanager
def _progress_bar(total: int, start: int, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield _NoBar()
        return
    with click.progressbar(
        length=total, label="training", show_pos=True, show_eta=True, file=None
    ) as bar:
        bar.update(start)
        yield bar


class _NoBar:
    def update(self, steps: int) -> None:
        """Ignore progress."""


def main(
    *,
    server: str | None,
    epochs: int | None,
    lr: float,
    momentum: float,
    pace: float,
    port: int,
    db: str | None,
    name: str,
) -> None:
    """Run the demo: serve unless ``server`` is given, then train.

    Launched by ``panda sweep``, the trial's params (``lr``, ``momentum``,
    ``batch_size``, ``epochs``) override the options, the sweep's server is
    used, and the run ends with a checkpoint to fork from.
    """
    # SIGTERM ends the process without unwinding; make it unwind, so the run is
    # marked failed at once instead of crashed a heartbeat timeout later.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    trial = config.sweep_trial()
    overrides = trial.params if trial is not None else {}
    if server is None and (trial is not None or config.resume_request()):
        # Relaunched by `panda sweep` or `panda resume`: the run lives on the
        # server that launched it, not on a demo server of its own.
        server = config.default_server_url()
    lr = float(overrides.get("lr", lr))
    momentum = float(overrides.get("momentum", momentum))
    batch_size = int(overrides.get("batch_size", BATCH_SIZE))
    epochs = int(overrides.get("epochs", epochs or DEFAULT_EPOCHS))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    serving = server is None
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(_serving(port=port, db=db))
        click.echo(f"dashboard: {server}/", err=True)
        run = panda.init(
            name=name,
            config={
                "lr": lr,
                "momentum": momentum,
                "epochs": epochs,
                "batch_size": batch_size,
                "model": "DigitsCNN",
                "device": str(device),
            },
            server=server,
        )
        server_option = (
            "" if server == config.default_server_url() else f" --server {server}"
        )
        click.echo(
            f"run {run.id}: nudge it with "
            f"`panda nudge {run.id} lr=0.01{server_option}` "
            f"or from {server}/#/runs/{run.id}",
            err=True,
        )
        try:
            train(
                run,
                epochs=epochs,
                lr=lr,
                momentum=momentum,
                pace=pace,
                device=device,
                batch_size=batch_size,
                final_checkpoint=trial is not None,
                progress=trial is None,
            )
        except KeyboardInterrupt:
            run.finish(status="failed")
            click.echo(f"\nstopped; resume with `panda resume {run.id}`", err=True)
            raise SystemExit(130) from None
        except BaseException:
            run.finish(status="failed")
            raise
        run.finish()
        if serving:
            click.echo(
                f"run {run.id} finished; the dashboard stays up until Ctrl-C", err=True
            )
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _serving(*, port: int, db: str | None) -> Iterator[str]:
    """Serve panda from a background thread of this process."""
    from panda.server.app import create_app
    from panda.server.thread import serve_in_thread

    # Leave db out when unset, so PANDA_DB from the environment still applies.
    settings = (
        config.Settings(port=port) if db is None else config.Settings(port=port, db=db)
    )
    app = create_app(settings)
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(
                serve_in_thread(app, host=settings.host, port=port)
            )
        except OSError as error:
            raise click.ClickException(
                f"port {port} is busy ({error}); pass --port, or --server URL to use "
                "the server already running there"
            ) from error
        yield url
