"""Group commit: the writes of requests that arrive together share one SQLite transaction.

A commit costs about as much as a whole small write (the WAL frames of every page touched),
so under load the hub runs the write jobs that are ready in one event-loop turn inside one
transaction, each in its own savepoint, and answers them all after the one COMMIT. A job that
fails rolls back only its own savepoint. Nothing is answered before it is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request

T = TypeVar("T")
Job = tuple[Callable[[], Any], asyncio.Future[Any]]


class GroupCommitter:
    """Queue write jobs on the running loop; flush them in one transaction per loop turn."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._jobs: list[Job] = []
        self._scheduled = False

    async def run(self, fn: Callable[[], T]) -> T:
        """Run fn (which opens store.write blocks) in the next group transaction."""
        if not hasattr(self.store, "group"):
            return fn()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._jobs.append((fn, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        result: T = await fut
        return result

    def _flush(self) -> None:
        jobs, self._jobs, self._scheduled = self._jobs, [], False
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.store.group():
                for fn, _ in jobs:
                    try:
                        outcomes.append((True, fn()))
                    except Exception as exc:  # the job's own savepoint was rolled back
                        outcomes.append((False, exc))
        except Exception as exc:  # the COMMIT itself failed: nothing of this group is stored
            outcomes = [(False, exc)] * len(jobs)
        for (_, fut), (ok, value) in zip(jobs, outcomes, strict=True):
            if fut.cancelled():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)


async def grouped(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run a service write through the app's group committer."""
    committer: GroupCommitter = request.app.state.committer
    return await committer.run(lambda: fn(*args))
