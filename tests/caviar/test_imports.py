"""Pin what importing panda.caviar loads, so a server or runner stays light."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "fastapi", "sqlalchemy", "matplotlib", "sklearn", "scipy")


def test_import_caviar_loads_no_heavy_modules() -> None:
    code = (
        "import json, sys; import panda.caviar; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert json.loads(result.stdout) == []
