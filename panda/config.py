"""Settings of the server, and where panda's data and shipped folders live.

This is the only module that reads the environment. ``Settings`` is built once by
``cli.py`` (or a test) and handed to ``create_app``.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8765


def default_home() -> Path:
    """Return panda's data directory: ``$PANDA_HOME`` or ``~/.panda``."""
    return Path(os.environ.get("PANDA_HOME") or Path.home() / ".panda").expanduser()


def default_server_url() -> str:
    """Return the server a client talks to: ``$PANDA_URL`` or the local default."""
    return os.environ.get("PANDA_URL") or f"http://127.0.0.1:{DEFAULT_PORT}"


def default_token() -> str | None:
    """Return the write token a client sends, from ``$PANDA_TOKEN``."""
    return os.environ.get("PANDA_TOKEN") or None


def resume_request() -> str | None:
    """Return the run a relaunched training process must resume (``$PANDA_RESUME``)."""
    return os.environ.get("PANDA_RESUME") or None


@dataclass(frozen=True)
class SweepTrialEnv:
    """The trial a sweep runner launched this process for (``PANDA_SWEEP``...)."""

    sweep: int
    trial: int
    params: dict[str, Any]


def sweep_trial() -> SweepTrialEnv | None:
    """Return the sweep trial this process runs, or None outside a sweep.

    The runner sets ``PANDA_SWEEP`` and ``PANDA_TRIAL`` (ids) and ``PANDA_PARAMS``
    (a JSON object of hyperparameters).

    Raises:
        ValueError: the variables are set but malformed.
    """
    sweep, trial = os.environ.get("PANDA_SWEEP"), os.environ.get("PANDA_TRIAL")
    if not sweep or not trial:
        return None
    try:
        params = json.loads(os.environ.get("PANDA_PARAMS") or "{}")
        found = SweepTrialEnv(int(sweep), int(trial), params)
    except ValueError as error:
        raise ValueError(
            f"PANDA_SWEEP, PANDA_TRIAL and PANDA_PARAMS are malformed ({error}); "
            "unset them, or launch the script with `panda sweep`"
        ) from None
    if not isinstance(params, dict):
        raise ValueError(f"PANDA_PARAMS must be a JSON object, got {params!r}")
    return found


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Server settings; each can be set as ``PANDA_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="PANDA_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    db: str | None = Field(
        default=None,
        description="SQLAlchemy URL; SQLite in the data directory if unset",
    )
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    heartbeat_timeout_s: float = 60.0
    max_body_bytes: int = 16 * 1024 * 1024

    @property
    def database_url(self) -> str:
        """The database to use: ``db`` if given, else ``panda.db`` in ``home``."""
        return self.db or f"sqlite:///{self.home / 'panda.db'}"


def _shipped_dir(name: str) -> Path:
    """Find ``web/`` or ``migrations/`` in an installed wheel or a checkout."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / name, package_dir.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"panda's {name}/ folder is missing from {package_dir}")


def web_dir() -> Path:
    """Return the folder of the dashboard's static files."""
    return _shipped_dir("web")


def migrations_dir() -> Path:
    """Return the folder of the Alembic migrations."""
    return _shipped_dir("migrations")
