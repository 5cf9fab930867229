"""Training-step overhead of logging three metrics every step.

A small MLP trains on CPU on synthetic data; every step logs ``loss``, ``acc``
and ``lr``. The same loop without logging is the baseline, measured in the same
invocation, interleaved with the others so that drift hits all alike. Each
figure is the median, over the repeats, of the mean step time over ``--steps``
steps (after a warm-up).

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[])
    args = parser.parse_args()
    harness.scratch_dir()  # before Aim is imported: see its docstring
    steps = args.steps or (150 if args.quick else 500)
    repeats = 1 if args.quick else args.repeats

    import torch

    torch.set_num_threads(args.threads)
    parts = make_model(torch)
    train(torch, 100, accuracy_only, parts)  # warm-up

    with contextlib.ExitStack() as servers:
        panda_server = servers.enter_context(harness.panda_server())
        contenders: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
            "no logging (baseline)": contextlib.nullcontext,
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

        samples: dict[str, list[tuple[float, float]]] = {n: [] for n in contenders}
        for _ in range(repeats):
            for name, make in contenders.items():
                with make() as log:
                    samples[name].append(
                        train(torch, steps, log or accuracy_only, parts)
                    )

    base = statistics.median(wall for wall, _ in samples["no logging (baseline)"])
    base_cpu = statistics.median(cpu for _, cpu in samples["no logging (baseline)"])
    rows: list[list[Any]] = []
    for name, values in samples.items():
        walls = [wall for wall, _ in values]
        step_s = statistics.median(walls)
        cpu_s = statistics.median(cpu for _, cpu in values)
        rows.append(
            [
                name,
                step_s * 1000,
                (step_s - base) / base * 100,
                (max(walls) - min(walls)) * 1000,
                cpu_s * 1000,
                (cpu_s - base_cpu) / base_cpu * 100,
            ]
        )
    for name, why in notes.items():
        rows.append([name, *[float("nan")] * 4, why])
    harness.print_table(
        f"Training-step overhead, MLP 256-512-512-10, batch 128, {steps} steps, "
        f"torch threads {args.threads}",
        [
            "logger",
            "wall ms/step",
            "wall overhead %",
            "wall spread ms",
            "train-thread CPU ms/step",
            "CPU overhead %",
        ],
        rows,
    )
    wall, cpu = rows[1][2], rows[1][5]
    verdict = "met" if max(wall, cpu) <= 1.0 else "MISSED"
    print(
        f"\ntarget panda overhead <= 1% of step time: wall {wall:.2f}%, "
        f"training-thread CPU {cpu:.2f}% -> {verdict}"
    )


if __name__ == "__main__":
    main()
