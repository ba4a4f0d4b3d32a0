"""Notification receivers for tests: real HTTP servers on their own thread and event loop.

``Receiver`` answers POSTs on any path (status per path, 200 by default) and records each
notification; ``Blackhole`` accepts connections and never answers (a hung receiver).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    """One notification as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 (random port) that records every POST."""

    port: int = 0
    status: dict[str, int] = field(default_factory=dict)  # path -> status to answer
    delay: dict[str, float] = field(default_factory=dict)  # path -> seconds before answering
    cookies: dict[str, str] = field(default_factory=dict)  # path -> a Set-Cookie to answer with
    got: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/notify") -> str:
        """The absolute URL of a path on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str = "/notify") -> list[Received]:
        """What arrived on a path so far."""
        with self._lock:
            return list(self.got[path])

    def total(self) -> int:
        """Notifications received on every path."""
        with self._lock:
            return sum(len(v) for v in self.got.values())

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        with self._lock:
            self.got[request.path].append(
                Received(request.path, dict(request.headers), body, time.monotonic())
            )
        await asyncio.sleep(self.delay.get(request.path, 0.0))
        cookie = self.cookies.get(request.path)
        headers = {"Set-Cookie": cookie} if cookie is not None else None
        return web.Response(status=self.status.get(request.path, 200), headers=headers)


async def wait_for(check: Any, timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll check() until it returns something truthy (yielding to the hub's tasks)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


class ServerThread:
    """Runs receivers on a private event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._cleanups: list[Any] = []

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def receiver(self) -> Receiver:
        """Start a recording receiver."""
        rec = Receiver()

        async def start() -> None:
            app = web.Application()
            app.router.add_route("POST", "/{tail:.*}", rec._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            rec.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._cleanups.append(runner.cleanup)

        self._run(start())
        return rec

    def blackhole(self) -> str:
        """Start a server that accepts and never answers; returns its notify URL."""
        holder: list[int] = []
        hung: set[asyncio.Task[Any]] = set()

        async def start() -> None:
            async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                task = asyncio.current_task()
                assert task is not None
                hung.add(task)
                try:
                    await asyncio.sleep(3600)
                finally:
                    writer.close()

            server = await asyncio.start_server(hang, "127.0.0.1", 0)
            holder.append(server.sockets[0].getsockname()[1])

            async def stop() -> None:
                server.close()
                for task in hung:
                    task.cancel()
                await asyncio.gather(*hung, return_exceptions=True)

            self._cleanups.append(stop)

        self._run(start())
        return f"http://127.0.0.1:{holder[0]}/notify"

    def close(self) -> None:
        """Stop every server and the loop."""
        for cleanup in self._cleanups:
            with contextlib.suppress(Exception):  # best effort at teardown
                self._run(cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
