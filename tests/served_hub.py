"""The hub on a real uvicorn server in a thread of the test process, for tests that speak
raw HTTP over sockets (stalled bodies, unfinished request heads)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from cityhub.api import protocol
from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import free_port


@contextmanager
def hub(
    tmp_path: Path, http: type[protocol.BoundedHttpTools], app: Starlette | None = None
) -> Iterator[tuple[str, int]]:
    """The hub (or `app`) on uvicorn with the given protocol class (keep-alive 1 s): its
    address."""
    port = free_port()
    app = app or create_app(Settings(db=str(tmp_path / "hub.db")))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=http, log_level="warning", timeout_keep_alive=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)
