"""Temporal DELETEs finish in steps: each a group-commit job, the event loop free between.

A temporal entity's DELETE hides it and removes its first few thousand rows in the request's
transaction; a sensor's ten million instances would hold every request for some 15 s in one
statement. The rest is a job the store keeps (Store.erase_history), carried on here in the
background; an attribute's DELETE waits for its own job before it answers. Jobs a crash or a
stop cut short are resumed when the hub starts (docs/decisions/040).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial
from typing import Any

from cityhub.pacing import StepPacer
from cityhub.store.base import Erasure, Store, StoreBusy, StoreFull

log = logging.getLogger("cityhub.erasure")
RETRY = 1.0  # seconds before a step refused for a full disk or another process's lock is retried
STEP = 2000  # rows per step at most (pacing.py sizes each step; the store may take fewer)


class HistoryEraser:
    """Runs the erasure steps of temporal DELETEs through the group committer."""

    def __init__(self, store: Store, committer: Any) -> None:
        self.store = store
        self.committer = committer
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Resume the jobs left in the store (a crash, or a stop between steps)."""
        for erasure in self.store.erasures():
            self.later(erasure)

    def later(self, erasure: Erasure) -> None:
        """Carry a job on in the background."""
        task = asyncio.get_running_loop().create_task(self._background(erasure))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, erasure: Erasure) -> None:
        """Carry a job on until it is done (an attribute's DELETE answers then). A step that
        fails raises here; the job stays in the store and is taken up in the background."""
        try:
            await self.run(erasure)
        except (StoreFull, StoreBusy):
            self.later(erasure)
            raise

    async def run(self, erasure: Erasure | None) -> int:
        """Step until the job is done: rows deleted. Each step is a committer job of its own,
        sized by the time the last one took (with its group's COMMIT), and the loop is left
        to requests for as long between them."""
        total = 0
        pacer = StepPacer(STEP)
        while erasure is not None:
            started = time.perf_counter()
            job = partial(self.store.erase_history, erasure, pacer.size)
            deleted, erasure = await self.committer.run(job)
            total += deleted
            await asyncio.sleep(pacer.took(time.perf_counter() - started))
        return total

    async def _background(self, erasure: Erasure) -> None:
        while True:
            try:
                await self.run(erasure)
                return
            except (StoreFull, StoreBusy) as exc:
                log.warning("temporal delete postponed %g s: %s", RETRY, exc)
                await asyncio.sleep(RETRY)
            except Exception:  # the job stays stored: the next start takes it up again
                log.exception("temporal delete stopped; resumed when the hub next starts")
                return

    async def idle(self) -> None:
        """Wait for the background jobs (tests, and a clean stop's last chance)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop between two steps: each step is committed or not begun; the job stays."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def report(self) -> dict[str, Any]:
        """For /health's history member: temporal DELETEs whose rows are still going."""
        return {"pendingDeletes": len(self._tasks)}
