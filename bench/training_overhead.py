"""Training-step overhead of logging three metrics every step.

A small MLP trains on CPU on synthetic data; every step logs ``loss``, ``acc``
and ``lr``. The baseline is the same loop without the log call. Step times on a
shared machine drift by more than the overhead being measured, so each logger
is measured in pairs of short blocks: ``--block`` steps without logging, then
``--block`` steps with it (the order alternates between rounds), with the
logger live throughout. The overhead is the median, over ``--rounds`` rounds,
of the ratio of the two blocks' mean step times: drift slower than a block
cancels out. The same pairing of the baseline against itself gives the noise
floor of the method. The time spent inside the log call is also reported: it
is what the training thread pays directly, and it barely depends on the load.

Contenders: panda ``run.log`` (tensors handed over as they are; a ``panda serve``
subprocess receives them), panda with ``babysit`` attached as well (it logs
lr and momentum before every step and checks for nudges after it),
TensorBoard ``add_scalar``, MLflow async ``log_metrics`` to a local
``mlflow server``, and Aim ``Run.track``.

Torch runs on one thread (``--threads``) so that the logger's background
threads and the servers have the other core, as on a machine with spare cores.

    .venv-bench/bin/python bench/training_overhead.py [--quick] [--steps N]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import harness

LogFn = Callable[[int, Any, Any, float], None]


def make_model(torch: Any) -> tuple[Any, Any, list[tuple[Any, Any]]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = [(torch.randn(128, 256), torch.randint(0, 10, (128,))) for _ in range(32)]
    return model, optimizer, data


def train(
    torch: Any, steps: int, log: LogFn | None, parts: tuple
) -> tuple[float, float]:
    """Train ``steps`` steps; return mean wall and training-thread CPU s per step.

    The CPU time of the training thread alone (``time.thread_time``; torch runs
    its ops in this thread with one intra-op thread) is what logging costs the
    step directly, and it is far less disturbed by other load on the machine
    than the wall time is.
    """
    model, optimizer, data = parts
    loss_fn = torch.nn.functional.cross_entropy
    started = time.perf_counter()
    cpu_started = time.thread_time()
    for step in range(steps):
        inputs, labels = data[step % len(data)]
        logits = model(inputs)
        loss = loss_fn(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if log is not None:
            acc = (logits.detach().argmax(1) == labels).float().mean()
            log(step, loss.detach(), acc, optimizer.param_groups[0]["lr"])
    wall_s = (time.perf_counter() - started) / steps
    return wall_s, (time.thread_time() - cpu_started) / steps


def accuracy_only(step: int, loss: Any, acc: Any, lr: float) -> None:
    """What every logger computes anyway; the baseline pays for it too."""


@contextlib.contextmanager
def panda_logger(
    server: harness.Server, parts: tuple, *, babysat: bool
) -> Iterator[LogFn]:
    import panda

    run = panda.init("overhead", server=server.url, spool_dir=server.home / "spool")
    sitter = None
    if babysat:
        sitter = panda.babysit(
            parts[1], run=run, checkpoint_dir=server.home / "checkpoints"
        )

    def log(step: int, loss: Any, acc: Any, lr: float) -> None:
        run.log({"loss": loss, "acc": acc, "lr": lr}, step=step)

    try:
        yield log
    finally:
        if sitter is not None:
            sitter.detach()
        run.finish(timeout_s=60)


@contextlib.contextmanager
def tensorboard_logger() -> Iterator[LogFn]:
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as directory:
        writer = SummaryWriter(directory)

        def log(step: int, loss: Any, acc: Any, lr: float) -> None:
            writer.add_scalar("loss", loss.item(), step)
            writer.add_scalar("acc", acc.item(), step)
            writer.add_scalar("lr", lr, step)

        try:
            yield log
        finally:
            writer.close()


@contextlib.contextmanager
def mlflow_logger(server: harness.Server) -> Iterator[LogFn]:
    import mlflow

    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment("overhead")
    with mlflow.start_run():

        def log(step: int, loss: Any, acc: Any, lr: float) -> None:
            values = {"loss": loss.item(), "acc": acc.item(), "lr": lr}
            mlflow.log_metrics(values, step=step, synchronous=False)

        yield log
        mlflow.flush_async_logging()


@contextlib.contextmanager
def aim_logger() -> Iterator[LogFn]:
    from aim import Run

    directory = str(harness.scratch_dir())
    run = Run(repo=directory, experiment="overhead", system_tracking_interval=None)

    def log(step: int, loss: Any, acc: Any, lr: float) -> None:
        run.track(loss.item(), name="loss", step=step)
        run.track(acc.item(), name="acc", step=step)
        run.track(lr, name="lr", step=step)

    try:
        yield log
    finally:
        run.close()


@dataclass
class Paired:
    """One logger's rounds: step-time ratios of logging to not logging."""

    wall_ratios: list[float] = field(default_factory=list)
    cpu_ratios: list[float] = field(default_factory=list)
    base_walls: list[float] = field(default_factory=list)
    in_call_s: float = 0.0
    steps: int = 0

    def overhead(self, ratios: list[float]) -> float:
        """Return the median overhead in percent."""
        return (statistics.median(ratios) - 1.0) * 100


def measure_paired(
    torch: Any, parts: tuple, log: LogFn | None, rounds: int, block: int
) -> Paired:
    """Alternate blocks without and with ``log``; see the module docstring."""
    paired = Paired()
    spent = [0.0]

    def timed(step: int, loss: Any, acc: Any, lr: float) -> None:
        started = time.perf_counter()
        if log is not None:
            log(step, loss, acc, lr)
        spent[0] += time.perf_counter() - started

    for index in range(rounds):
        order = (False, True) if index % 2 == 0 else (True, False)
        result = {}
        for logging_on in order:
            result[logging_on] = train(
                torch, block, timed if logging_on else accuracy_only, parts
            )
        (off_wall, off_cpu), (on_wall, on_cpu) = result[False], result[True]
        paired.wall_ratios.append(on_wall / off_wall)
        paired.cpu_ratios.append(on_cpu / off_cpu)
        paired.base_walls.append(off_wall)
    paired.in_call_s = spent[0]
    paired.steps = rounds * block
    return paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--block", type=int, default=100, help="steps per block")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[])
    args = parser.parse_args()
    harness.scratch_dir()  # before Aim is imported: see its docstring
    rounds = args.rounds or (6 if args.quick else 40)

    import torch

    torch.set_num_threads(args.threads)
    parts = make_model(torch)
    train(torch, 100, accuracy_only, parts)  # warm-up

    with contextlib.ExitStack() as servers:
        panda_server = servers.enter_context(harness.panda_server())
        contenders: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
            "no logging vs no logging (noise floor)": contextlib.nullcontext,
            "panda run.log": lambda: panda_logger(panda_server, parts, babysat=False),
            "panda run.log + babysit": lambda: panda_logger(
                panda_server, parts, babysat=True
            ),
        }
        notes: dict[str, str] = {}
        if "tensorboard" not in args.skip:
            if why := harness.anchor_missing("tensorboard"):
                notes["TensorBoard add_scalar"] = why
            else:
                contenders["TensorBoard add_scalar"] = tensorboard_logger
        if "mlflow" not in args.skip:
            if why := harness.anchor_missing("mlflow"):
                notes["MLflow async log_metrics"] = why
            else:
                mlflow_server = servers.enter_context(harness.mlflow_server())
                contenders["MLflow async log_metrics"] = lambda: mlflow_logger(
                    mlflow_server
                )
        if "aim" not in args.skip:
            if why := harness.anchor_missing("aim"):
                notes["Aim Run.track"] = why
            else:
                contenders["Aim Run.track"] = aim_logger

        results: dict[str, Paired] = {}
        for name, make in contenders.items():
            with make() as log:
                results[name] = measure_paired(torch, parts, log, rounds, args.block)

    rows: list[list[Any]] = []
    for name, paired in results.items():
        base_ms = statistics.median(paired.base_walls) * 1000
        in_call_us = paired.in_call_s / paired.steps * 1e6
        rows.append(
            [
                name,
                base_ms,
                paired.overhead(paired.wall_ratios),
                paired.overhead(paired.cpu_ratios),
                in_call_us,
                in_call_us / (base_ms * 1000) * 100,
            ]
        )
    for name, why in notes.items():
        rows.append([name, *[float("nan")] * 5, why])
    harness.print_table(
        f"Training-step overhead, MLP 256-512-512-10, batch 128, torch threads "
        f"{args.threads}; {rounds} rounds of 2 x {args.block} steps per logger",
        [
            "logger",
            "step ms (no logging)",
            "wall overhead % (median)",
            "train-thread CPU overhead %",
            "in log call us/step",
            "in log call % of step",
        ],
        rows,
    )
    noise = max(abs(rows[0][2]), abs(rows[0][3]))
    wall, cpu, direct = rows[1][2], rows[1][3], rows[1][5]
    verdict = "met" if max(wall, cpu) <= 1.0 else "MISSED"
    if noise > 1.0:
        verdict += (
            f" (but the noise floor is {noise:.2f}%: the time inside log() is the "
            "figure that resolves 1% in this run)"
        )
    print(
        f"\nnoise floor of the method: {noise:.2f}%. target panda overhead <= 1% "
        f"of step time: wall {wall:.2f}%, training-thread CPU {cpu:.2f}%, "
        f"inside log() {direct:.2f}% -> {verdict}"
    )


if __name__ == "__main__":
    main()
