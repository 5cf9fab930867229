"""Serve a panda app from a background thread of the current process.

``panda demo`` serves its dashboard this way while it trains in the main
thread, and the tests use it for a real server on a free loopback port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from fastapi import FastAPI

START_TIMEOUT_S = 30.0

# An open event stream holds uvicorn's shutdown forever without a grace limit.
GRACEFUL_SHUTDOWN_S = 2


@contextlib.contextmanager
def serve_in_thread(
    app: FastAPI, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve ``app`` on ``host:port`` (0 picks a free port) and yield its base URL.

    Raises:
        OSError: the address cannot be bound (for example, the port is busy).
        RuntimeError: the server did not start.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"panda server did not start on {host}:{bound_port}")
            time.sleep(0.02)
        url_host = f"[{host}]" if ":" in host else host
        yield f"http://{url_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(GRACEFUL_SHUTDOWN_S + 8)
        sock.close()
