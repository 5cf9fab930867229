"""Fixtures for dashboard tests: a real panda server and headless Chromium.

The server is the real application on a free loopback port with a fresh SQLite
database per test. Chromium is the system one (Debian's package), driven by
Playwright's sync API; it may only resolve loopback names, so nothing a test
does can leave the machine. In CI (``CI=true``) a missing Chromium fails the
run instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from panda.config import Settings

CHROMIUM = (
    os.environ.get("PANDA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Without this Chromium looks up Google hosts on start; only loopback resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    if not os.path.exists(CHROMIUM):
        message = f"chromium not found at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server_token() -> str | None:
    """The server's write token; a test parametrizes this name to set one."""
    return None


@pytest.fixture
def server_url(tmp_path: Path, server_token: str | None) -> Iterator[str]:
    """Serve the real panda app on 127.0.0.1 with a fresh database; yield its URL."""
    from panda.server.app import create_app
    from panda.server.thread import serve_in_thread

    settings = Settings(
        home=tmp_path, db=f"sqlite:///{tmp_path}/panda.db", token=server_token
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture
def api(server_url: str, server_token: str | None) -> Iterator[httpx.Client]:
    """An HTTP client for the server's REST API, as a training job would use it."""
    headers = {"Authorization": f"Bearer {server_token}"} if server_token else {}
    with httpx.Client(base_url=server_url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught JavaScript errors of the page; tests assert this stays empty."""
    return []


def _record_console_error(message: Any, page_errors: list[str]) -> None:
    # A 4xx answer is part of some tests (Chromium logs each one); anything else
    # the console reports as an error is a fault of the page.
    expected = "Failed to load resource: the server responded with a status of 4"
    if message.type == "error" and not message.text.startswith(expected):
        page_errors.append(f"console: {message.text}")


@pytest.fixture
def page(browser: Any, server_url: str, page_errors: list[str]) -> Iterator[Any]:
    """A fresh browser tab; its context closes before the server stops."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.on("pageerror", lambda error: page_errors.append(str(error)))
    tab.on("console", lambda message: _record_console_error(message, page_errors))
    yield tab
    context.close()


@pytest.fixture
def screenshot(page: Any, request: pytest.FixtureRequest) -> Any:
    """Save a full-page screenshot to test-artifacts/<test>-<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)

    def save(name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
