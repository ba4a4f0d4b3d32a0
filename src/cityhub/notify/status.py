"""Delivery status of a subscription (timesSent, lastSuccess, ...): counted in memory on each
attempt, shown live by the API, written into the stored subscriptions in batches (it is
advisory, not worth a write per notification)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from cityhub.ngsild.timeutil import now_iso
from cityhub.notify.subscription import Compiled
from cityhub.store.base import StoreBusy, StoreFull, StoreLost
from cityhub.throttled_log import ThrottledLog

log = logging.getLogger("cityhub.notify")
Doc = dict[str, Any]
EVERY = 1.0  # seconds between writes of changed delivery status
SLICE = 250  # subscriptions whose status one transaction writes, one loop turn (5-15 ms)
STORED = "_notif"  # the stored subscription's member holding its delivery status


def record(status: Doc, ok: bool) -> None:
    """Count one attempt: timesSent and lastNotification, then success or failure."""
    now = now_iso()
    status["timesSent"] = status.get("timesSent", 0) + 1
    status["lastNotification"] = now
    if ok:
        status["lastSuccess"] = now
        status["status"] = "ok"
    else:
        status["timesFailed"] = status.get("timesFailed", 0) + 1
        status["lastFailure"] = now
        status["status"] = "failed"


def unsent(status: Doc) -> None:
    """A notification that could not be rendered: never sent, so neither timesSent nor
    timesFailed (a receiver's answer) counts it, but lastFailure and status say so."""
    status["lastFailure"] = now_iso()
    status["status"] = "failed"


def shown(doc: Doc, sub: Compiled | None) -> Doc:
    """A stored subscription with the live delivery status of its compiled form, if any."""
    if sub is None or not sub.status:
        return doc
    return {**doc, STORED: dict(sub.status)}


class StatusBook:
    """The subscriptions of one kind whose status changed since the last write."""

    def __init__(self, store: Any, kind: str) -> None:
        self.store = store
        self.kind = kind  # the resources kind the subscriptions are stored under
        self._dirty: dict[tuple[str, str], Compiled] = {}
        # taken from _dirty by a paced flush and not written yet (forget() reaches them too)
        self._writing: dict[tuple[str, str], Compiled] = {}
        self._full_log = ThrottledLog(log)  # a full disk fails every flush: one line per 10 s

    def record(self, sub: Compiled, ok: bool) -> None:
        """Count one attempt; it is stored with the next write."""
        record(sub.status, ok)
        self._dirty[(sub.tenant, sub.id)] = sub

    def unsent(self, sub: Compiled) -> None:
        """A notification of sub that could not be rendered; stored with the next write."""
        unsent(sub.status)
        self._dirty[(sub.tenant, sub.id)] = sub

    def forget(self, tenant: str, sid: str) -> None:
        """Drop a deleted subscription's unwritten status: a new one created with the same id
        within the second took it over (timesSent and all)."""
        self._dirty.pop((tenant, sid), None)
        self._writing.pop((tenant, sid), None)

    async def run(self) -> None:
        """Write the changed status every EVERY seconds, until cancelled."""
        while True:
            await asyncio.sleep(EVERY)
            await self.flush_paced()

    async def flush_paced(self) -> None:
        """Write the changed status SLICE subscriptions to a transaction, leaving the loop to
        other work between slices: one write of them all held it 0.66 s at 10,000."""
        self._writing.update(self._dirty)
        self._dirty = {}
        while self._writing:
            self._write(self._take(SLICE))
            if self._writing:
                await asyncio.sleep(0)

    def flush(self) -> None:
        """Write every changed status now (at close), SLICE to a transaction (a deleted
        subscription is skipped by the store)."""
        self._writing.update(self._dirty)
        self._dirty = {}
        while self._writing:
            self._write(self._take(SLICE))

    def _take(self, most: int) -> list[Compiled]:
        """Up to most of the subscriptions waiting to be written, no longer waiting."""
        keys = list(itertools.islice(self._writing, most))
        return [self._writing.pop(key) for key in keys]

    def _write(self, subs: list[Compiled]) -> None:
        """Store these subscriptions' status as it is now, in one transaction."""
        rows = [(sub.tenant, sub.id, dict(sub.status)) for sub in subs]
        try:
            self.store.resource_set_member(self.kind, STORED, rows)
        # advisory; the next delivery writes it again
        except (StoreFull, StoreBusy, StoreLost) as exc:
            self._full_log.warning("could not store the delivery status: %s", exc)
        except Exception:
            log.exception("could not store the delivery status of %d subscriptions", len(subs))
