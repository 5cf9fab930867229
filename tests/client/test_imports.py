"""The training side stays light: what importing it pulls in."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("fastapi", "sqlalchemy", "matplotlib", "uvicorn")


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [("panda.client", (*HEAVY, "torch")), ("panda.hooks", HEAVY)],
)
def test_import_training_side_leaves_server_modules_out(
    module: str, forbidden: tuple[str, ...]
) -> None:
    code = (
        f"import sys, {module}; "
        f"print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_import_server_app_leaves_matplotlib_and_torch_out() -> None:
    # What `panda serve` imports before it starts: plots load on first use.
    code = (
        "import sys, panda.cli, uvicorn, panda.server.app; "
        "print(','.join(m for m in ('matplotlib', 'torch') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
