"""The ``panda`` command: serve, demo, runs, nudge, nudges, undo, resume.

This is the only module (with ``demo.py``) that writes to the terminal, and the
only one that sets up logging handlers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import httpx

from panda import config
from panda.errors import PandaError

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def _setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"
        )
    )
    root = logging.getLogger("panda")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.propagate = False


def _server_option(function: F) -> F:
    return click.option(
        "--server",
        default=None,
        metavar="URL",
        help="panda server to talk to [default: $PANDA_URL or http://127.0.0.1:8765]",
    )(function)


class _Api:
    """A few REST calls for the commands that inspect or steer a run."""

    def __init__(self, server: str | None) -> None:
        self.url = (server or config.default_server_url()).rstrip("/")
        headers = {}
        token = config.default_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Longer than SQLite's busy timeout, so that a server waiting behind
        # another writer answers (a 503 that says so) before the client gives up.
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, "/api" + path, **kwargs)
        except httpx.TransportError as error:
            raise click.ClickException(
                f"cannot reach the panda server at {self.url} ({error}); "
                "start one with `panda serve` or pass --server URL"
            ) from error
        if response.status_code >= 400:
            raise click.ClickException(_error_detail(response))
        return response.json() if response.content else None


def _error_detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not isinstance(detail, str):
        detail = response.text.strip() or response.reason_phrase
    return f"{detail} (HTTP {response.status_code})"


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Log at DEBUG level and show tracebacks.")
@click.version_option(package_name="panda-babysitter", prog_name="panda")
@click.pass_context
def cli(context: click.Context, debug: bool) -> None:
    """Babysit a PyTorch training run: watch its curves, nudge its learning rate."""
    _setup_logging(debug)
    context.obj = {"debug": debug}


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=config.DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(1, 65535),
)
@click.option("--db", default=None, metavar="URL", help="SQLAlchemy database URL.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory [default: $PANDA_HOME or ~/.panda].",
)
@click.option("--token", default=None, help="Token that write requests must carry.")
def serve(
    host: str, port: int, db: str | None, home: Path | None, token: str | None
) -> None:
    """Run the server and the dashboard."""
    settings = _settings(host=host, port=port, db=db, home=home, token=token)
    _serve(settings)


def _settings(**overrides: Any) -> config.Settings:
    values = {name: value for name, value in overrides.items() if value is not None}
    try:
        return config.Settings(**values)
    except ValueError as error:
        _fail(f"invalid setting: {error}")


def _serve(settings: config.Settings) -> None:
    import uvicorn

    from panda.server.app import create_app

    try:
        app = create_app(settings)
    except PandaError as error:
        _fail(str(error))
    logger.info("dashboard at http://%s:%d/", _url_host(settings.host), settings.port)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@cli.command()
@click.option(
    "--server",
    default=None,
    metavar="URL",
    help="Train against this running panda server instead of serving one.",
)
@click.option(
    "--epochs", default=None, type=int, help="Epochs to train [default: 100]."
)
@click.option("--lr", default=0.05, show_default=True, type=float, help="Initial α.")
@click.option("--momentum", default=0.9, show_default=True, type=float)
@click.option(
    "--pace",
    default=20.0,
    show_default=True,
    type=float,
    help="Training steps per second, so a person can follow; 0 trains flat out.",
)
@click.option("--port", default=config.DEFAULT_PORT, show_default=True, type=int)
@click.option(
    "--db", default=None, metavar="URL", help="Database of the demo's server."
)
@click.option("--name", default="digits-cnn", show_default=True, help="Run name.")
def demo(
    server: str | None,
    epochs: int | None,
    lr: float,
    momentum: float,
    pace: float,
    port: int,
    db: str | None,
    name: str,
) -> None:
    """Serve the dashboard and train a small CNN on scikit-learn's digits.

    With --server URL the model trains against that running server instead.
    """
    if lr <= 0 or not math.isfinite(lr):
        _fail(f"--lr must be a positive number, got {lr}")
    if not 0 <= momentum < 1:
        _fail(f"--momentum must be in [0, 1), got {momentum}")
    if epochs is not None and epochs < 1:
        _fail(f"--epochs must be at least 1, got {epochs}")
    if pace < 0:
        _fail(f"--pace must be 0 or more, got {pace}")

    from panda import demo as demo_module

    demo_module.main(
        server=server,
        epochs=epochs,
        lr=lr,
        momentum=momentum,
        pace=pace,
        port=port,
        db=db,
        name=name,
    )


@cli.command()
@_server_option
@click.option("--status", default=None, help="Only runs with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs(server: str | None, status: str | None, as_json: bool) -> None:
    """List runs, newest first."""
    params = {"status": status} if status else None
    found = _Api(server).request("GET", "/runs", params=params)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no runs yet")
        return
    click.echo(f"{'ID':>4}  {'NAME':<24} {'STATUS':<9} {'STEP':>8}  LAST VALUES")
    for run in found:
        values = ", ".join(
            f"{key}={_short(value)}"
            for key, value in sorted(run["last_values"].items())
        )
        step = "" if run["last_step"] is None else str(run["last_step"])
        click.echo(
            f"{run['id']:>4}  {run['name'][:24]:<24} {run['status']:<9} {step:>8}  "
            f"{values}"
        )


def _short(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:.4g}"


def _parse_assignment(text: str) -> tuple[str, float]:
    param, sep, raw = text.partition("=")
    if not sep or not param:
        _fail(f"expected PARAM=VALUE such as lr=0.01, got {text!r}")
    try:
        value = float(raw)
    except ValueError:
        _fail(f"value of {param} must be a number, got {raw!r}")
    return param.strip(), value


@cli.command()
@click.argument("run", type=int)
@click.argument("assignments", nargs=-1, required=True, metavar="PARAM=VALUE...")
@click.option("--note", default=None, help="Why: kept in the nudge history.")
@click.option("--group", default=None, help="Param group index or name [default: all].")
@_server_option
def nudge(
    run: int,
    assignments: Sequence[str],
    note: str | None,
    group: str | None,
    server: str | None,
) -> None:
    """Change lr or momentum of RUN at its next step: panda nudge 3 lr=0.01."""
    api = _Api(server)
    parsed = [_parse_assignment(text) for text in assignments]
    target: int | str | None = int(group) if group and group.isdigit() else group
    for param, value in parsed:
        body = {"param": param, "value": value, "note": note, "group": target}
        created = api.request("POST", f"/runs/{run}/nudges", json=body)
        click.echo(_describe_nudge(created))


def _describe_nudge(nudge: dict[str, Any]) -> str:
    if nudge["action"] == "undo":
        what = f"undo of nudge {nudge['undoes']}"
    else:
        old = "" if nudge["old_value"] is None else f"{_short(nudge['old_value'])} -> "
        what = f"{nudge['param']} {old}{_short(nudge['value'])}"
    parts = [f"nudge {nudge['id']} on run {nudge['run']}: {what} [{nudge['status']}]"]
    if nudge["applied_step"] is not None:
        parts.append(f"at step {nudge['applied_step']}")
    if nudge["reason"]:
        parts.append(f"({nudge['reason']})")
    if nudge["note"]:
        parts.append(f"note: {nudge['note']}")
    return " ".join(parts)


@cli.command()
@click.argument("run", type=int)
@_server_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def nudges(run: int, server: str | None, as_json: bool) -> None:
    """Show the nudge history of RUN."""
    history = _Api(server).request("GET", f"/runs/{run}/nudges")
    if as_json:
        click.echo(json.dumps(history, indent=2))
        return
    if not history:
        click.echo(f"run {run} has no nudges")
    for item in history:
        click.echo(_describe_nudge(item))


@cli.command()
@click.argument("run", type=int)
@click.argument("nudge_id", metavar="NUDGE", type=int)
@_server_option
def undo(run: int, nudge_id: int, server: str | None) -> None:
    """Take back nudge NUDGE of RUN: the job returns to the checkpoint before it."""
    created = _Api(server).request("POST", f"/runs/{run}/nudges/{nudge_id}/undo")
    click.echo(_describe_nudge(created))


@cli.command()
@click.argument("run", type=int)
@_server_option
@click.option(
    "--dry-run", is_flag=True, help="Print the command that would be relaunched."
)
def resume(run: int, server: str | None, dry_run: bool) -> None:
    """Relaunch the training process of RUN from its last checkpoint.

    The command and directory the run was started with are run again with
    PANDA_RESUME set, so the script's ``panda.init`` continues the same run on a
    new branch instead of creating one.
    """
    api = _Api(server)
    found = api.request("GET", f"/runs/{run}")
    command, cwd = found.get("command"), found.get("cwd")
    if not command:
        _fail(
            f"run {run} did not record its command; relaunch the script yourself "
            f"with PANDA_RESUME={run} set"
        )
    # A fork starts from a checkpoint of its parent run, not one of its own.
    if found["parent_run"] is None and not any(
        not checkpoint["deleted"]
        for checkpoint in api.request("GET", f"/runs/{run}/checkpoints")
    ):
        _fail(
            f"run {run} has no checkpoint to resume from; a run takes them when "
            "panda.babysit(...) is given checkpoint_every=STEPS or "
            "checkpoint_every_s=SECONDS, and before every nudge"
        )
    if found["status"] == "running":
        _fail(
            f"run {run} is still running; stop its process first, or wait until "
            "it is marked crashed"
        )
    if dry_run:
        click.echo(
            f"cd {cwd} && PANDA_RESUME={run} PANDA_URL={api.url} " + " ".join(command)
        )
        return
    environment = {**os.environ, "PANDA_RESUME": str(run), "PANDA_URL": api.url}
    click.echo(f"resuming run {run}: {' '.join(command)}", err=True)
    completed = subprocess.run(command, cwd=cwd or None, env=environment, check=False)
    sys.exit(completed.returncode)


@cli.command()
@click.argument("run_ids", metavar="RUN...", nargs=-1, required=True, type=int)
@click.option("--metric", default="train/loss", show_default=True)
@click.option(
    "--align",
    type=click.Choice(["step", "time", "relative"]),
    default="step",
    show_default=True,
    help="x axis: step, wall-clock time, or time since each run started.",
)
@click.option("--log-y", is_flag=True, help="Logarithmic y axis.")
@click.option(
    "--smooth",
    "smoothing",
    default=0.0,
    show_default=True,
    type=float,
    help="Exponential moving average weight in [0, 1).",
)
@click.option(
    "--size",
    default="1000x600",
    show_default=True,
    metavar="WxH",
    help="Image size in pixels.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("panda-plot.png"),
    show_default=True,
    help="Image to write; .png or .svg.",
)
@_server_option
def plot(
    run_ids: Sequence[int],
    metric: str,
    align: str,
    log_y: bool,
    smoothing: float,
    size: str,
    output: Path,
    server: str | None,
) -> None:
    """Plot METRIC of one or more runs, with α below and a mark at each nudge.

    The server draws the image from its store (GET /api/plot.png).
    """
    image_format = output.suffix.lower().lstrip(".")
    if image_format not in ("png", "svg"):
        _fail(f"--output must end in .png or .svg, got {output.name!r}")
    if not 0 <= smoothing < 1:
        _fail(f"--smooth must be in [0, 1), got {smoothing}")
    width, height = _parse_size(size)

    params = {
        "runs": ",".join(str(run_id) for run_id in run_ids),
        "metric": metric,
        "align": align,
        "log_y": str(log_y).lower(),
        "smooth": smoothing,
        "width": width,
        "height": height,
    }
    image = _download(_Api(server), f"/plot.{image_format}", params)
    output.write_bytes(image)
    click.echo(f"wrote {output}")


def _parse_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        _fail(f"--size must look like 1000x600, got {text!r}")
    return int(width), int(height)


@cli.command()
@click.argument("run", type=int)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
)
@click.option(
    "--what",
    type=click.Choice(["metrics", "nudges"]),
    default=None,
    help="Only the metric points or only the nudge history "
    "[default: metrics for CSV, both for JSON].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write, - for stdout [default: run-RUN-WHAT.FORMAT].",
)
@_server_option
def export(
    run: int,
    file_format: str,
    what: str | None,
    output: Path | None,
    server: str | None,
) -> None:
    """Export RUN's metrics along its current line, or its nudges, to a file.

    Every point is written; NaN and infinities as NaN, Infinity, -Infinity.
    """
    params = {"what": what} if what else {}
    body = _download(_Api(server), f"/runs/{run}/export.{file_format}", params)
    if output is not None and str(output) == "-":
        click.echo(body.decode(), nl=False)
        return
    if output is None:
        part = what or ("metrics" if file_format == "csv" else None)
        output = Path(
            f"run-{run}-{part}.{file_format}" if part else f"run-{run}.{file_format}"
        )
    output.write_bytes(body)
    click.echo(f"wrote {output}")


def _download(api: _Api, path: str, params: dict[str, Any]) -> bytes:
    """Return the body of ``GET /api{path}``, raising a ClickException on failure.

    Closes the API's connection: call it last.
    """
    try:
        with api._http:
            response = api._http.get("/api" + path, params=params, timeout=120.0)
    except httpx.TransportError as error:
        raise click.ClickException(
            f"cannot reach the panda server at {api.url} ({error}); "
            "start one with `panda serve` or pass --server URL"
        ) from error
    if response.status_code >= 400:
        raise click.ClickException(_error_detail(response))
    return response.content


def _add_caviar_commands() -> None:
    # Imported here: panda.cli_caviar uses this module's helpers and options.
    from panda import cli_caviar

    for command in cli_caviar.COMMANDS:
        cli.add_command(command)


_add_caviar_commands()


def main() -> None:
    """Entry point of the ``panda`` console command.

    Any error ends the command with one ``Error: ...`` line and exit status 1;
    ``panda --debug`` shows the traceback of an unexpected one instead.
    """
    debug = "--debug" in sys.argv[1:]
    try:
        cli(standalone_mode=True)
    except PandaError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    except Exception as error:
        if debug:
            raise
        lines = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {lines[0]}" if lines else repr(error)
        click.echo(
            f"Error: {reason} (run `panda --debug ...` to see the traceback)",
            err=True,
        )
        sys.exit(1)
