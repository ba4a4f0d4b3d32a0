"""Delivery status of a subscription (timesSent, lastSuccess, ...): counted in memory on each
attempt, written into the stored subscriptions in batches (it is advisory, not worth a write
per notification)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from cityhub.ngsild.timeutil import now_iso
from cityhub.notify.subscription import Compiled

log = logging.getLogger("cityhub.notify")
Doc = dict[str, Any]


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


def persist(store: Any, kind: str, subs: list[Compiled]) -> None:
    """Write the subscriptions' current status into their stored documents, one transaction."""
    if not subs:
        return
    group = getattr(store, "group", contextlib.nullcontext)
    try:
        with group():
            for sub in subs:
                store.resource_update(kind, sub.tenant, sub.id, _with_status(sub.status))
    except Exception:  # status is advisory; the next delivery writes it again
        log.exception("could not store the delivery status of %d subscriptions", len(subs))


def _with_status(status: Doc) -> Any:
    """A resource_update change that sets a subscription's delivery status (a copy of it)."""
    copy = dict(status)
    return lambda doc: {**doc, "_notif": copy}
