"""Bad input to every ``panda`` command: one ``Error:`` line, non-zero, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.robustness.conftest import Served, free_port

# (arguments, words the Error line must hold); SERVER and DOWN are filled in.
CASES = [
    (["runs", "--server", "DOWN"], "cannot reach"),
    (["nudge", "999", "lr=0.01", "--server", "SERVER"], "run 999 not found"),
    (["nudge", "1", "lr", "--server", "SERVER"], "PARAM=VALUE"),
    (["nudge", "1", "lr=fast", "--server", "SERVER"], "must be a number"),
    (["nudge", "1", "lr=-1", "--server", "SERVER"], "lr must be > 0"),
    (["nudges", "abc"], "not a valid integer"),
    (["undo", "1", "999", "--server", "SERVER"], "nudge 999"),
    (["resume", "999", "--server", "SERVER"], "run 999 not found"),
    (["resume", "2", "--server", "SERVER"], "no checkpoint to resume from"),
    (["fork", "1", "--set", "lr=-1", "--server", "SERVER"], "lr must be > 0"),
    (["plot", "1", "-o", "out.gif"], ".png or .svg"),
    (["serve", "--db", "bogus://x", "--port", "PORT"], "cannot use database"),
    (["serve", "--db", "sqlite:////no/such/dir/x.db", "--port", "PORT"], "cannot open"),
    (["serve", "--port", "99999999"], "--port"),
]


def test_bad_input_to_every_command_prints_one_error_line(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    server = serve().start()
    with server.api() as api:
        api.post("/runs", json={"name": "target"})
        api.post("/runs", json={"name": "unsaved", "command": ["train.py"]})
    fill = {"SERVER": server.url, "DOWN": f"http://127.0.0.1:{free_port()}"}
    environment = {**os.environ, "PANDA_HOME": str(tmp_path / "cli-home")}
    environment.pop("PANDA_TOKEN", None)

    started = []
    for arguments, expected in CASES:
        filled = [fill.get(part, part).replace("PORT", str(free_port()))
                  for part in arguments]  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "panda", *filled],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            cwd=tmp_path,
        )
        started.append((filled, expected, process))

    wrong = []
    for filled, expected, process in started:
        _, err = process.communicate(timeout=120)
        errors = [line for line in err.splitlines() if line.startswith("Error:")]
        if (
            process.returncode == 0
            or "Traceback" in err
            or len(errors) != 1
            or expected not in errors[0]
        ):
            wrong.append(f"panda {' '.join(filled)} -> {process.returncode}\n{err}")
    assert not wrong, "\n".join(wrong)
