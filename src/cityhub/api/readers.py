"""Long reads on reader threads: a broad query must not hold up writes and device messages.

Queries, temporal reads and discovery run on a small pool of threads, each with its own SQLite
reader connection (WAL readers never block the writer, and SQLite releases the GIL while it
steps). The event loop keeps serving writes, reads by id and the IoT agent meanwhile. Reads of
one entity by id stay on the loop: they read one row, and the hop would cost more than the read
(docs/decisions/016); one that joins linked entities is a read of many and goes to a thread.

A read's CITYHUB_QUERY_TIMEOUT counts from when it is queued, and a read whose client has
left is not started, or is stopped at the store's next check (docs/decisions/016, addendum):
60 clients that sent a broad query and left at once held every thread for 25 s.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.types import Receive

from cityhub.store import reads
from cityhub.store.reads import ReadLimit

T = TypeVar("T")


def reader_pool(threads: int) -> ThreadPoolExecutor:
    """The app's reader threads (started on first use)."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cityhub-read")


async def off_loop(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs) on a reader thread; its errors are raised here, in the handler.
    Not started, or stopped, once the client has left (ClientGone). Call it once the request
    body has been read: it watches the request's ASGI messages for the disconnect."""
    limit = ReadLimit(request.app.state.store.query_timeout)
    watcher = asyncio.get_running_loop().create_task(_watch(request.receive, limit))
    try:
        return await _on_thread(request, limit, fn, args, kwargs)
    finally:
        watcher.cancel()


async def off_loop_for_write(
    request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """As off_loop, for a read that selects what a write then changes (a purge): it runs
    whether or not its client still waits, as every write whose request came whole does."""
    limit = ReadLimit(request.app.state.store.query_timeout)
    return await _on_thread(request, limit, fn, args, kwargs)


async def _on_thread(
    request: Request, limit: ReadLimit, fn: Callable[..., T], args: Any, kwargs: Any
) -> T:
    """fn on a reader thread, in a copy of this context that carries the read's limit."""
    pool: ThreadPoolExecutor = request.app.state.readers
    call = functools.partial(contextvars.copy_context().run, _run, limit, fn, args, kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, call)


def _run(limit: ReadLimit, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
    """On the reader thread: skip a read nobody waits for any more (its client left, or its
    timeout passed in the queue), else run it under its limit."""
    limit.started = time.monotonic()
    if limit.started > limit.deadline:
        raise limit.stop()
    reads.current.set(limit)
    return fn(*args, **kwargs)


async def _watch(receive: Receive, limit: ReadLimit) -> None:
    """Wait for the client to leave (ASGI http.disconnect), then tell the read. Cancelled once
    the read is over. The request's body is read by then, so nothing it needs is taken."""
    while (await receive())["type"] != "http.disconnect":
        pass
    limit.leave()
