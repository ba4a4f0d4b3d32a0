"""Delivery status written to the stored subscriptions once a second: in slices that leave the
event loop to other work (one write of 10,000 held it 0.66 s), and never onto a subscription
made again under a deleted one's id while a flush is under way."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cityhub.notify import status
from cityhub.notify.status import StatusBook
from cityhub.store.sqlite.backend import SqliteStore

KIND = "subscription"


class Sub:
    """What StatusBook reads of a compiled subscription."""

    def __init__(self, sid: str, tenant: str = "") -> None:
        self.tenant, self.id, self.status = tenant, sid, {}


def stored(store: SqliteStore, n: int) -> list[Sub]:
    """n stored subscriptions (documents with a few members) and their stand-ins."""
    with store.group():
        for i in range(n):
            doc = {"id": f"urn:s:{i}", "type": "Subscription", "description": "x" * 100}
            assert store.resource_create(KIND, "", f"urn:s:{i}", doc)
    return [Sub(f"urn:s:{i}") for i in range(n)]


def written(db: Path) -> int:
    """How many stored subscriptions hold a delivery status, as another connection sees it."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM resources WHERE json_extract(doc, '$._notif') IS NOT NULL"
        ).fetchone()
    return int(row[0])


async def test_a_large_flush_leaves_the_loop_to_other_work_between_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,201 statuses at once: other tasks run while some are written and some are not (all
    of them went in one loop turn)."""
    db = tmp_path / "hub.db"
    store = SqliteStore(str(db))
    subs = stored(store, 1_201)
    book = StatusBook(store, KIND)
    for sub in subs:
        book.record(sub, True)  # type: ignore[arg-type]
    monkeypatch.setattr(status, "EVERY", 0.0)
    seen: list[int] = []
    runner = asyncio.create_task(book.run())
    try:
        for _ in range(10_000):
            await asyncio.sleep(0)
            seen.append(written(db))
            if seen[-1] == len(subs):
                break
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
    assert seen[-1] == len(subs), seen[-5:]
    assert any(0 < n < len(subs) for n in seen), f"written in one turn: {sorted(set(seen))}"
    store.close()


def test_a_status_is_set_beside_the_rest_of_the_document(tmp_path: Path) -> None:
    """The status replaces only the stored status; a subscription that is gone is skipped."""
    store = SqliteStore(str(tmp_path / "hub.db"))
    [sub] = stored(store, 1)
    before = store.resource_get(KIND, "", sub.id)
    book = StatusBook(store, KIND)
    book.record(sub, False)  # type: ignore[arg-type]
    book.record(Sub("urn:s:gone"), True)  # type: ignore[arg-type]
    book.flush()
    after = store.resource_get(KIND, "", sub.id)
    assert after is not None and before is not None
    assert after.pop("_notif") == {
        "timesSent": 1,
        "timesFailed": 1,
        "lastNotification": sub.status["lastNotification"],
        "lastFailure": sub.status["lastFailure"],
        "status": "failed",
    }
    assert after == before
    assert store.resource_get(KIND, "", "urn:s:gone") is None
    book.record(sub, True)
    book.flush()
    again = store.resource_get(KIND, "", sub.id)
    assert again is not None and again["_notif"]["timesSent"] == 2
    store.close()


async def test_a_subscription_deleted_during_a_paced_flush_leaves_no_status_behind(
    tmp_path: Path,
) -> None:
    """One deleted (and made again under its id) while earlier slices are written: its old
    status is not written onto the new one."""
    store = SqliteStore(str(tmp_path / "hub.db"))
    subs = stored(store, status.SLICE + 1)
    book = StatusBook(store, KIND)
    for sub in subs:
        book.record(sub, True)  # type: ignore[arg-type]
    last = subs[-1]
    flushing = asyncio.create_task(book.flush_paced())
    await asyncio.sleep(0)  # the first slice is written, the last subscription waits
    assert not flushing.done()
    assert store.resource_delete(KIND, "", last.id)
    book.forget("", last.id)
    assert store.resource_create(KIND, "", last.id, {"id": last.id, "type": "Subscription"})
    await flushing
    doc: Any = store.resource_get(KIND, "", last.id)
    assert "_notif" not in doc
    first: Any = store.resource_get(KIND, "", subs[0].id)
    assert first["_notif"]["timesSent"] == 1
    store.close()
