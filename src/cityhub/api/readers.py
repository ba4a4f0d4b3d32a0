"""Long reads on reader threads: a broad query must not hold up writes and device messages.

Queries, temporal reads and discovery run on a small pool of threads, each with its own SQLite
reader connection (WAL readers never block the writer, and SQLite releases the GIL while it
steps). The event loop keeps serving writes, reads by id and the IoT agent meanwhile. Reads of
one entity by id stay on the loop: they read one row, and the hop would cost more than the read
(docs/decisions/016); one that joins linked entities is a read of many and goes to a thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request

T = TypeVar("T")


def reader_pool(threads: int) -> ThreadPoolExecutor:
    """The app's reader threads (started on first use)."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cityhub-read")


async def off_loop(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs) on a reader thread; its errors are raised here, in the handler."""
    pool: ThreadPoolExecutor = request.app.state.readers
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, call)
