"""/health shows what the outbox still owes, from disk: right after a restart too, when the
counters since start-up and the memory queue show almost none of a dead receiver's backlog
(probe 4, finding 5)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.base import OutboxItem
from cityhub.store.sqlite import SqliteStore
from receivers import ServerThread, wait_for
from test_notify_startup import backlog


async def health(app: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
        body: dict[str, Any] = (await c.get("/health")).json()
    return body


async def test_the_outbox_backlog_shows_after_a_restart_and_goes_as_it_is_delivered(
    tmp_path: Path, servers: ServerThread
) -> None:
    db = tmp_path / "backlog.db"
    rec = servers.receiver()
    rec.status["/notify"] = 503
    await backlog(db, rec.url(), "Gauge", 30)
    settings = Settings(db=str(db), notify_queue_max=5, notify_backoff=30, notify_attempts=100)
    again = create_app(settings)  # not started: as the hub stands when it first answers
    body = await health(again)
    notes = body["notifications"]
    assert notes["outboxRows"] == 30 and notes["spilledToOutbox"] == 0
    assert notes["oldestPendingSeconds"] >= 0
    assert body["status"] == "ok"  # 30 rows are below the default bound
    again.state.store.close()
    rec.status["/notify"] = 200
    drained = create_app(Settings(db=str(db), notify_queue_max=5, notify_backoff=0.05))
    drained.state.notifier.start()
    await wait_for(lambda: len(rec.received()) >= 30, timeout=20, what="all 30")
    await drained.state.notifier.close()  # acknowledges what was delivered
    notes = (await health(drained))["notifications"]
    assert notes["outboxRows"] == 0 and notes["oldestPendingSeconds"] is None
    drained.state.store.close()


async def test_a_backlog_past_its_bound_makes_the_hub_degraded(
    tmp_path: Path, servers: ServerThread
) -> None:
    db = tmp_path / "backlog.db"
    rec = servers.receiver()
    rec.status["/notify"] = 503
    await backlog(db, rec.url(), "Gauge", 12)
    app = create_app(Settings(db=str(db), notify_backlog_degraded=10))
    body = await health(app)
    assert body["status"] == "degraded"
    assert body["reason"].startswith(
        "12 notifications wait in the outbox (more than CITYHUB_NOTIFY_BACKLOG_DEGRADED, 10)"
    )
    app.state.store.close()
    never = create_app(Settings(db=str(db), notify_backlog_degraded=0))
    assert (await health(never))["status"] == "ok"
    never.state.store.close()


def test_the_count_follows_every_write_and_a_schema_15_database_is_counted(
    tmp_path: Path,
) -> None:
    """add, remove (what a purge already took is not counted twice) and purge keep the
    count; a database from before the count gets it from its upgrade."""
    db = tmp_path / "count.db"
    store = SqliteStore(str(db))
    items = [OutboxItem("", f"s{n % 2}", "http://r/", b"{}") for n in range(10)]
    with store.group():
        store.outbox_stage(items)
    assert store.outbox_backlog()[0] == 10
    store.outbox_done([items[0].seq, items[1].seq])
    assert store.outbox_backlog()[0] == 8
    gone = store.outbox_purge("entity", "", "s0", 0, items[-1].seq, 100)
    assert gone == 4 and store.outbox_backlog()[0] == 4
    store.outbox_done([items[2].seq, items[3].seq])  # s0's, purged already; s1's went
    assert store.outbox_backlog()[0] == 3
    store.close()
    with sqlite3.connect(db) as conn:  # as schema 15 left it: rows, and no count
        conn.execute("DROP TABLE outbox_rows")
        conn.execute("UPDATE meta SET value = '15' WHERE key = 'schema_version'")
    store = SqliteStore(str(db))
    rows, oldest = store.outbox_backlog()
    assert rows == 3 and oldest is not None
    store.close()
