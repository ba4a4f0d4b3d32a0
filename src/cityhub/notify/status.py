"""Delivery status of a subscription (timesSent, lastSuccess, ...): counted in memory on each
attempt, shown live by the API, written into the stored subscriptions in batches (it is
advisory, not worth a write per notification)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cityhub.ngsild.timeutil import now_iso
from cityhub.notify.subscription import Compiled
from cityhub.store.base import StoreBusy, StoreFull, StoreLost
from cityhub.throttled_log import ThrottledLog

log = logging.getLogger("cityhub.notify")
Doc = dict[str, Any]
EVERY = 1.0  # seconds between writes of changed delivery status


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
    return {**doc, "_notif": dict(sub.status)}


class StatusBook:
    """The subscriptions of one kind whose status changed since the last write."""

    def __init__(self, store: Any, kind: str) -> None:
        self.store = store
        self.kind = kind  # the resources kind the subscriptions are stored under
        self._dirty: dict[tuple[str, str], Compiled] = {}
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

    async def run(self) -> None:
        """Write the changed status every EVERY seconds, until cancelled."""
        while True:
            await asyncio.sleep(EVERY)
            self.flush()

    def flush(self) -> None:
        """Write the changed status now, in one transaction (a deleted subscription is skipped
        by resource_update)."""
        subs, self._dirty = list(self._dirty.values()), {}
        if not subs:
            return
        try:
            with self.store.group():
                for sub in subs:
                    self.store.resource_update(
                        self.kind, sub.tenant, sub.id, _with_status(sub.status)
                    )
        # advisory; the next delivery writes it again
        except (StoreFull, StoreBusy, StoreLost) as exc:
            self._full_log.warning("could not store the delivery status: %s", exc)
        except Exception:
            log.exception("could not store the delivery status of %d subscriptions", len(subs))


def _with_status(status: Doc) -> Any:
    """A resource_update change that sets a subscription's delivery status (a copy of it)."""
    copy = dict(status)
    return lambda doc: {**doc, "_notif": copy}
