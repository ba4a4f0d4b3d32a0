"""History retention: temporal instances older than CITYHUB_HISTORY_DAYS are deleted.

Every attribute change is kept as a temporal instance, so without a limit a town's sensors fill
its disk (1,000 sensors writing once a minute store half a billion instances a year), and
personal data such as a resident's health readings would be kept for ever. The pruner runs in
the hub's event loop: a few seconds after start-up and then every ten minutes it deletes, in
short steps of their own transaction sized by their time (pacing.py), the instances last
written more than the set number of days ago, so writes and device messages go on between the
steps (docs/decisions/017).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cityhub.ngsild.timeutil import now_iso
from cityhub.pacing import StepPacer
from cityhub.store.base import Store, StoreBusy, StoreFull, StoreLost

log = logging.getLogger("cityhub.retention")
STEP = 2000  # instances looked at per transaction at most (pacing.py sizes each step)
# The first pass waits this long after start-up, which its steps would otherwise slow down
START_DELAY = 5.0


def kept_for(days: float) -> str:
    """How long history is kept, in words (for the log)."""
    if not days:
        return "for ever"
    return f"{days:g} day" + ("" if days == 1 else "s")


class HistoryPruner:
    """Deletes expired temporal instances now and then; reports what it did for /health."""

    def __init__(
        self, store: Store, days: float, every: float = 600.0, delay: float = START_DELAY
    ) -> None:
        self.store = store
        self.days = days
        self.every = every
        self.delay = delay
        self.deleted = 0  # since start
        self.last_run: str | None = None
        # what else holds personal data by age, by its /health counter: (what it is, in the
        # log's words; a job that deletes what is older than the epoch seconds it is given
        # and says how many): the IoT agent's dead letters, unsent notifications
        self.also: dict[str, tuple[str, Callable[[float], Awaitable[int]]]] = {}
        self.expired: dict[str, int] = {}  # what each of those deleted since start
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run in the background (nothing when retention is off)."""
        if self.days > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop between two steps: a step's transaction is either committed or not begun."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def prune(self, now: float | None = None) -> int:
        """Delete every instance last written more than `days` before now; how many."""
        before = (time.time() if now is None else now) - self.days * 86400
        total, after = 0, 0
        pacer = StepPacer(STEP)
        while True:
            started = time.perf_counter()
            deleted, next_after = self.store.prune_history(before, after, pacer.size)
            total += deleted
            self.deleted += deleted  # /health shows a long pass going on, and a cut one
            if next_after is None:
                break
            after = next_after
            # requests and device messages get the loop for as long as the step held it
            await asyncio.sleep(pacer.took(time.perf_counter() - started))
        besides = []
        for counter, (words, expire) in self.also.items():
            gone = await expire(before)
            self.expired[counter] = self.expired.get(counter, 0) + gone
            if gone:
                besides.append(f"{gone} {words}")
        self.last_run = now_iso()
        if total or besides:  # personal data went: the log says so, not /health alone
            what = ", ".join([f"{total} instances", *besides[:-1]])
            what += f" and {besides[-1]}" if besides else ""
            log.info("history retention: deleted %s older than %s", what, kept_for(self.days))
        return total

    def add(self, counter: str, words: str, expire: Callable[[float], Awaitable[int]]) -> None:
        """Have each pass also run expire (its /health counter, what it deletes in words)."""
        self.also[counter] = (words, expire)

    async def _run(self) -> None:
        await asyncio.sleep(self.delay)
        while True:
            try:
                await self.prune()
            # no WAL space, an importer, or a deleted database file: next round
            except (StoreFull, StoreBusy, StoreLost) as exc:
                log.warning("history retention postponed: %s", exc)
            except Exception:  # never let one bad round end retention for good
                log.exception("history retention failed; retried in %g s", self.every)
            await asyncio.sleep(self.every)

    def report(self) -> dict[str, Any]:
        """For /health."""
        return {
            "retentionDays": self.days,
            "deletedInstances": self.deleted,
            **{counter: self.expired.get(counter, 0) for counter in self.also},
            "lastRun": self.last_run,
        }
