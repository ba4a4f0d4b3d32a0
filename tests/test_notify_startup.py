"""Start-up reads a bounded part of the outbox: a dead receiver's backlog, which the queue
bounds no longer limit on disk, stays there and is read back in order as the queue drains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.base import OutboxItem
from cityhub.store.sqlite import outbox
from conftest import BASE, create
from receivers import ServerThread, wait_for


def subscription(url: str, type_: str) -> dict[str, Any]:
    """A subscription to every entity of one type."""
    return {
        "type": "Subscription",
        "entities": [{"type": type_}],
        "notification": {"endpoint": {"uri": url}},
    }


def entity(n: int, type_: str) -> dict[str, Any]:
    """An entity numbered n."""
    return {"id": f"urn:ngsi-ld:{type_}:{n}", "type": type_, "n": {"type": "Property", "value": n}}


def numbers(received: list[Any]) -> list[int]:
    """The n of every entity notified, in the order they came."""
    return [d["n"]["value"] for r in received for d in r.body["data"]]


async def backlog(db: Path, url: str, type_: str, count: int) -> str:
    """A hub whose receiver is down leaves count notifications in the outbox; the
    subscription's URL."""
    app = create_app(Settings(db=str(db), notify_backoff=0.05, notify_attempts=100))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
        resp = await c.post(f"{BASE}/subscriptions", json=subscription(url, type_))
        assert resp.status_code == 201
        for n in range(count):
            assert (await create(c, entity(n, type_))).status_code == 201
    await app.state.notifier.close()
    assert len(app.state.store.outbox_pending()) == count
    app.state.store.close()
    return str(resp.headers["location"])


async def test_start_up_reads_no_more_of_a_backlog_than_the_queue_bound(
    tmp_path: Path, servers: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up read the whole outbox into memory, then spilled what did not fit."""
    db = tmp_path / "backlog.db"
    rec = servers.receiver()
    rec.status["/notify"] = 503
    await backlog(db, rec.url(), "Big", 40)
    reads: list[int] = []
    real = outbox._items

    def counted(conn: Any, rows: list[Any]) -> Any:
        reads.append(len(rows))
        return real(conn, rows)

    monkeypatch.setattr(outbox, "_items", counted)
    rec.status["/notify"] = 200
    again = create_app(Settings(db=str(db), notify_queue_max=5, notify_backoff=0.05))
    again.state.notifier.start()
    assert reads and max(reads) <= 5, f"rows read at a time: {reads}"
    await wait_for(lambda: len(set(numbers(rec.received()))) == 40, timeout=20, what="all 40")
    firsts = list(dict.fromkeys(numbers(rec.received())))
    assert firsts == list(range(40)), f"in order: {firsts}"
    assert max(reads) <= 5, f"rows read at a time: {reads}"
    await again.state.notifier.close()
    assert again.state.store.outbox_pending() == []
    again.state.store.close()


def test_heads_take_each_subscriptions_oldest_and_mark_where_the_rest_begins(
    tmp_path: Path,
) -> None:
    """Every tenant's and subscription's backlog is found by index seeks, in seq order."""
    app = create_app(Settings(db=str(tmp_path / "heads.db")))
    store = app.state.store
    subs = [("", "urn:a"), ("", "urn:b"), ("t2", "urn:a"), ("t3", "urn:c")]
    staged = [OutboxItem(t, s, f"http://r/{s}", b"{}") for _ in range(3) for t, s in subs]
    store.outbox_stage(staged)
    heads = store.outbox_heads(2, 10**9)
    assert [i.seq for i in heads.items] == sorted(i.seq for i in staged[:8])
    rest = {(r.tenant, r.sub_id): r.seq for r in heads.rest}
    assert rest == {(i.tenant, i.sub_id): i.seq for i in staged[8:]}
    nothing = store.outbox_heads(2, 0)  # no memory to spend: every backlog stays on disk
    assert nothing.items == []
    assert {(r.tenant, r.sub_id): r.seq for r in nothing.rest} == {
        (i.tenant, i.sub_id): i.seq for i in staged[:4]
    }
    store.close()
