"""/health: liveness, the space the database uses and has left, the notification backlog,
history retention, and whether the hub needs its operator (`status`, with a `reason`); 503
while it cannot serve its data, for monitors that read only the status code (decision 085)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cityhub import __version__
from cityhub.api.http import plain_json
from cityhub.ngsild.timeutil import format_ts
from cityhub.store.base import StoreError

# /health says "degraded" this long after a write refused for a full disk, unless a write
# commits first: long enough for a monitor polling every half minute to see it
FULL_SHOWN = 60.0
# and while less than this is free on the database's disk: a burst of writes fills that
# before a checkpoint (the WAL may keep 64 MiB, PRAGMA journal_size_limit)
SPACE_FLOOR = 64 * 2**20
FULL = (
    "writes are refused for lack of disk space (the last at {}); free space on the "
    "database's disk: writes resume without a restart"
)
REFUSED = (
    "writes are refused: the disk refused a write (the last at {}) although it may have "
    "free space: {}; writes resume without a restart once it takes them"
)
DAMAGED = (
    "the hub's database file is damaged ({}); stop the hub and restore a backup "
    "(`cityhub restore`, from a copy taken with `cityhub backup`)"
)
CHECKPOINTS = (
    "copying the WAL back into the database has failed since {} ({}), so the WAL only grows; {}"
)
LOW_SPACE = (
    "only {:.1f} MiB are free on the database's disk (less than {} MiB): writes will soon be "
    "refused; free space on it"
)
# a reader's snapshot older than this (and twice CITYHUB_QUERY_TIMEOUT, which bounds the hub's
# own) that keeps checkpoints from copying the WAL is another process's
STARVED_SHOWN = 60.0
STARVED = (
    "the WAL holds {:,} frames that checkpoints cannot copy back since {}: a reader keeps an "
    "old snapshot (another process's open transaction: an sqlite3 shell, a DB browser, a "
    "backup), so the WAL grows with every write until it ends; end that transaction"
)
BACKLOG = (
    "{:,} notifications wait in the outbox (more than CITYHUB_NOTIFY_BACKLOG_DEGRADED, {:,}), "
    "the oldest since {}: a receiver down or refusing, or a paused subscription's changes "
    "held; see the subscriptions' status and lastFailure"
)


async def health(request: Request) -> Response:
    """Liveness (the store answers a read), the space it uses and has left, the
    notification backlog and history retention: what an operator watches."""
    state = request.app.state
    store = state.store
    lost = store.lost()
    if lost is None:
        try:
            store.answers()
        except store.driver_error as exc:  # its own read found the file damaged: a 503 below
            if not note_damaged(request, exc):
                raise
    dispatcher = state.notifier.dispatcher
    rows, oldest = _backlog(store, lost)
    notifications = {
        "queued": dispatcher.pending(),
        "held": dispatcher.held_count(),  # for paused subscriptions, until they resume
        **dispatcher.counters.report(),
        "renderFailed": state.notifier.render_failed,  # also in givenUp and each lastFailure
        "cooldownSkipped": state.notifier.cooldown_skipped,  # due within an endpoint's cooldown
        "outboxRows": rows,  # every notification not yet delivered, on disk: a gauge
        "oldestPendingSeconds": None if oldest is None else round(time.time() - oldest, 1),
    }
    storage = store.storage()
    mqtt, down = state.iot.health()
    owed = _owed(rows, oldest, state.settings.notify_backlog_degraded)
    starved = _starved(store, state.settings.query_timeout)
    reason = lost or _trouble(store, storage, state.damaged) or starved or down or owed
    # a hub that cannot serve its data says so in the status code too (decision 085)
    failing = bool(lost or state.damaged)
    status: dict[str, Any] = (
        {"status": "degraded", "reason": reason} if reason else {"status": "ok"}
    )
    body = {
        **status,
        "version": __version__,
        "storage": storage,
        "notifications": notifications,
        "history": {**state.pruner.report(), **state.eraser.report()},
    }
    if mqtt is not None:  # only a hub with MQTT configured has it
        body["mqtt"] = mqtt
    return plain_json(body, 503 if failing else 200)


def note_damaged(request: Request, exc: Exception) -> bool:
    """Whether a driver error means the file is damaged; if so /health says so from now on
    and the log says it (once per 10 s). /health's own read goes through here too."""
    state = request.app.state
    if not state.store.damaged(exc):
        return False
    state.damaged = state.damaged or str(exc)
    state.damaged_log.error(
        "the database file %s is damaged (%s, on %s %s): stop the hub and restore a backup "
        "with `cityhub restore`",
        state.settings.db,
        exc,
        request.method,
        request.url.path,
    )
    return True


def _backlog(store: Any, lost: str | None) -> tuple[int | None, float | None]:
    """The outbox's rows and when the oldest was written; unknown (None) once the file is
    gone or cannot be read, which the status says otherwise."""
    if lost is not None:
        return None, None
    try:
        rows, oldest = store.outbox_backlog()
    except (StoreError, store.driver_error):
        return None, None
    return rows, oldest


def _owed(rows: int | None, oldest: float | None, most: int) -> str:
    """The reason a backlog past CITYHUB_NOTIFY_BACKLOG_DEGRADED gives ('' within it, or 0)."""
    if not most or rows is None or oldest is None or rows <= most:
        return ""
    return BACKLOG.format(rows, most, _when(oldest))


def _trouble(store: Any, storage: dict[str, int], damaged: str) -> str:
    """What is wrong with the database, worst first ('' when nothing is): a damaged file (a
    request found it: its pages are read only when asked for), a write refused for lack of
    space within FULL_SHOWN, checkpoints that keep failing, little free space."""
    if damaged:
        return DAMAGED.format(damaged)
    refused = store.write_refused()
    if refused is not None and time.time() - refused < FULL_SHOWN:
        limit = store.write_refused_cause()
        if limit:  # a size limit or a quota, which free space does not lift
            return REFUSED.format(_when(refused), limit)
        return FULL.format(_when(refused))
    failing = store.checkpoint_failed()
    if failing is not None:
        since, error = failing
        full = "full" in error
        advice = "free space on the database's disk" if full else "see the hub log"
        return CHECKPOINTS.format(_when(since), error, advice)
    free = storage["diskFreeBytes"]
    if free < SPACE_FLOOR:
        return LOW_SPACE.format(free / 2**20, SPACE_FLOOR // 2**20)
    return ""


def _starved(store: Any, query_timeout: float) -> str:
    """The reason a WAL held back by a reader's old snapshot gives ('' while it is not, or
    not for longer than the hub's own reads may take)."""
    starved = store.checkpoint_starved()
    if starved is None:
        return ""
    since, frames = starved
    if time.time() - since < max(STARVED_SHOWN, 2 * query_timeout):
        return ""
    return STARVED.format(frames, _when(since))


def _when(seconds: float) -> str:
    return format_ts(datetime.fromtimestamp(seconds, UTC))
