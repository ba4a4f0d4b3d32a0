"""One change that notifies many subscriptions: its entity is stored (and held in memory)
once, not once per subscription, and each subscription still gets its own notification.

Before, every (subscription, change) pair had an outbox row holding the whole event: 200
subscriptions and one 5 MB write made about 1 GB of rows in the write's transaction.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.sqlite.schema import SCHEMA_VERSION
from conftest import BASE, create
from receivers import Receiver, ServerThread, wait_for

NULL = "urn:ngsi-ld:null"
BIG = 200_000  # characters of the value every subscription is notified of
SUBS = 20


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h")


async def _subscribe(c: httpx.AsyncClient, rec: Receiver, n: int, **extra: Any) -> str:
    """A subscription to every Amp entity, notified on one of five paths."""
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Amp"}],
        "notification": {"endpoint": {"uri": rec.url(f"/n{n % 5}")}},
        **extra,
    }
    resp = await c.post(f"{BASE}/subscriptions", json=sub)
    assert resp.status_code == 201, resp.text
    return str(resp.headers["location"]).rsplit("/", 1)[-1]


def _outbox(db: Path) -> tuple[int, int]:
    """Rows in the outbox and the bytes their notifications take there."""
    with sqlite3.connect(db) as conn:
        rows, own = conn.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox"
        ).fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        shared = 0
        if "outbox_bodies" in tables:
            shared = conn.execute("SELECT coalesce(sum(length(body)), 0) FROM outbox_bodies")
            shared = shared.fetchone()[0]
    return int(rows), int(own + shared)


def _big(n: int) -> dict[str, Any]:
    """Entity n with one BIG-character value: what each subscription's row once copied."""
    return {
        "id": f"urn:ngsi-ld:Amp:{n}",
        "type": "Amp",
        "p": {"type": "Property", "value": "x" * BIG},
    }


def _receivers_down(servers: ServerThread, db: Path) -> tuple[Receiver, Any]:
    """A receiver whose five paths answer 503, so every item stays in the outbox, and a hub
    on db that retries only after a minute."""
    rec = servers.receiver()
    for n in range(5):
        rec.status[f"/n{n}"] = 503
    return rec, create_app(Settings(db=str(db), notify_backoff=60))


def _received(rec: Receiver) -> list[dict[str, Any]]:
    """Every notification's first entity, over the five paths."""
    return [r.body["data"][0] for n in range(5) for r in rec.received(f"/n{n}")]


async def test_a_change_notifying_many_subscriptions_is_stored_once_and_reaches_each(
    tmp_path: Path, servers: ServerThread
) -> None:
    db = tmp_path / "hub.db"
    rec, app = _receivers_down(servers, db)
    async with _client(app) as c:
        for n in range(SUBS):
            await _subscribe(c, rec, n)
        await create(c, _big(1))
        rows, stored = _outbox(db)
        assert rows == SUBS
        assert stored < 1.5 * BIG, f"{stored:,} bytes stored for one {BIG:,}-character change"
    await app.state.notifier.close()
    app.state.store.close()
    # after a restart, the stored items reach every subscription, and then leave no trace
    for n in range(5):
        rec.status[f"/n{n}"] = 200
    rec.got.clear()
    again = create_app(Settings(db=str(db), notify_backoff=60))
    again.state.notifier.start()
    try:
        await wait_for(lambda: len(_received(rec)) >= SUBS, timeout=10, what="every item")
        got = _received(rec)
        assert len(got) == SUBS
        assert all(e["id"] == "urn:ngsi-ld:Amp:1" and e["p"]["value"] == "x" * BIG for e in got)
        paths = {r.body["subscriptionId"] for n in range(5) for r in rec.received(f"/n{n}")}
        assert len(paths) == SUBS, "one notification per subscription"
        await wait_for(lambda: _outbox(db) == (0, 0), timeout=5, what="the outbox emptied")
    finally:
        await again.state.notifier.close()
        again.state.store.close()


async def test_subscriptions_sharing_a_change_each_get_their_own_view_of_it(
    hub: httpx.AsyncClient, app: Any, servers: ServerThread
) -> None:
    """The stored change gives each subscription the event its own fields ask for."""
    rec = servers.receiver()
    plain = await _subscribe(hub, rec, 0)
    shown = await _subscribe(
        hub, rec, 1, notification={"endpoint": {"uri": rec.url("/n1")}, "showChanges": True}
    )
    watching = await _subscribe(
        hub,
        rec,
        2,
        watchedAttributes=["b"],
        notificationTrigger=["attributeDeleted"],
        notification={"endpoint": {"uri": rec.url("/n2")}, "showChanges": True},
    )
    amp = {
        "id": "urn:ngsi-ld:Amp:2",
        "type": "Amp",
        "a": {"type": "Property", "value": 1},
        "b": {"type": "Property", "value": 2},
    }
    await create(hub, amp)
    await wait_for(lambda: len(_received(rec)) >= 2, what="the two creations")
    rec.got.clear()
    patch = {"a": {"type": "Property", "value": 10}, "b": {"type": "Property", "value": NULL}}
    resp = await hub.patch(f"{BASE}/entities/urn:ngsi-ld:Amp:2/attrs", json=patch)
    assert resp.status_code == 204
    await wait_for(lambda: len(_received(rec)) >= 3, what="three notifications")
    got = {r.body["subscriptionId"]: r.body for n in range(5) for r in rec.received(f"/n{n}")}
    assert sorted(got) == sorted([plain, shown, watching])
    one = got[plain]["data"][0]
    assert one["a"] == {"type": "Property", "value": 10}
    assert one["b"] == {"type": "Property", "value": NULL}
    two = got[shown]["data"][0]
    assert two["a"]["previousValue"] == 1 and two["b"]["previousValue"] == 2
    three = got[watching]
    assert three["triggerReason"] == "attributeDeleted"
    assert three["data"][0]["b"] == {"type": "Property", "value": NULL, "previousValue": 2}
    await wait_for(lambda: not app.state.store.outbox_pending(), what="every item acknowledged")
    assert _outbox(Path(app.state.store.path)) == (0, 0), "the stored change went with them"


async def test_a_shared_change_counts_once_against_the_memory_bound(
    tmp_path: Path, servers: ServerThread
) -> None:
    """Twenty items of one 200 KB change counted 4 MB against a 1 MB bound: fifteen of the
    notifications were dropped, though the change was in memory once."""
    rec = servers.receiver()
    app = create_app(Settings(db=str(tmp_path / "hub.db"), notify_memory_mb=1))
    async with _client(app) as c:
        for n in range(SUBS):
            await _subscribe(c, rec, n)
        await create(c, _big(3))
        await wait_for(lambda: len(_received(rec)) >= SUBS, timeout=10, what="every item")
        dispatcher = app.state.notifier.dispatcher
        assert dispatcher.counters.dropped_full == 0
        await wait_for(lambda: dispatcher.size == 0, what="the queues emptied")
    await app.state.notifier.close()
    app.state.store.close()


def _to_schema_10(db: Path) -> None:
    """The outbox as schema 10 wrote it: every row holding its whole event, of subscriptions
    that had no incarnation."""
    from cityhub.notify.events import stored_events
    from cityhub.store.sqlite.outbox import V10_DDL

    conn = sqlite3.connect(db, isolation_level=None)
    rows = conn.execute(
        "SELECT o.seq, o.tenant, o.sub_id, o.endpoint, o.payload, o.created, o.kind, b.body "
        "FROM outbox o LEFT JOIN outbox_bodies b ON b.bid = o.body ORDER BY o.seq"
    ).fetchall()
    conn.execute("BEGIN")
    conn.execute("DROP TABLE outbox")
    conn.execute("DROP TABLE outbox_bodies")
    conn.execute(V10_DDL)
    for seq, tenant, sid, endpoint, payload, created, kind, body in rows:
        whole = orjson.dumps(stored_events(payload, body))
        conn.execute(
            "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, tenant, sid, endpoint, whole, created, kind),
        )
    # nor did its subscriptions have an incarnation (schema 15)
    conn.execute("UPDATE resources SET doc = json_remove(doc, '$._inc')")
    conn.execute("UPDATE meta SET value = '10' WHERE key = 'schema_version'")
    conn.execute("COMMIT")
    conn.close()


async def test_a_schema_10_outbox_is_upgraded_with_its_pending_notifications(
    tmp_path: Path, servers: ServerThread
) -> None:
    db = tmp_path / "hub.db"
    rec, app = _receivers_down(servers, db)
    async with _client(app) as c:
        subs = [await _subscribe(c, rec, n) for n in range(3)]  # each change notifies three
        solo = {
            "type": "Subscription",
            "entities": [{"type": "Solo"}],
            "notification": {"endpoint": {"uri": rec.url("/n4")}},
        }
        assert (await c.post(f"{BASE}/subscriptions", json=solo)).status_code == 201
        await create(c, {"id": "urn:ngsi-ld:Amp:4", "type": "Amp", "p": {"value": 1}})
        await create(c, {"id": "urn:ngsi-ld:Solo:1", "type": "Solo", "p": {"value": 1}})
        resp = await c.patch(f"{BASE}/entities/urn:ngsi-ld:Amp:4/attrs", json={"p": {"value": 2}})
        assert resp.status_code == 204
    await app.state.notifier.close()
    app.state.store.close()
    assert _outbox(db)[0] == 7
    _to_schema_10(db)
    for n in range(5):
        rec.status[f"/n{n}"] = 200
    rec.got.clear()
    again = create_app(Settings(db=str(db), notify_backoff=60))  # upgrades the database
    again.state.notifier.start()
    try:
        await wait_for(lambda: len(_received(rec)) >= 7, timeout=10, what="the backlog")
        for n, sid in enumerate(subs):
            got = rec.received(f"/n{n}")
            assert [r.body["subscriptionId"] for r in got] == [sid, sid]
            assert [r.body["data"][0]["p"]["value"] for r in got] == [1, 2]
        [solo_got] = rec.received("/n4")
        assert solo_got.body["data"][0]["id"] == "urn:ngsi-ld:Solo:1"
        await wait_for(lambda: _outbox(db) == (0, 0), what="the outbox emptied")
        with sqlite3.connect(db) as conn:
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            assert version.fetchone() == (str(SCHEMA_VERSION),)
    finally:
        await again.state.notifier.close()
        again.state.store.close()


async def test_past_the_memory_bound_the_newest_shared_changes_leave_memory_whole() -> None:
    """A shared body is freed only when its last item goes: the items of the newest change
    waiting leave memory together, from every queue, not items of several changes that free
    nothing; they stay in the outbox, are read back in order, and the count comes back to
    nothing."""
    import asyncio

    from cityhub.notify.delivery import Dispatcher, Policy
    from cityhub.store.base import OutboxItem
    from outbox_support import MemoryOutbox

    release = asyncio.Event()
    sent: list[tuple[str, int]] = []
    outbox = MemoryOutbox()

    async def deliver(item: OutboxItem, attempt: int) -> bool:
        await release.wait()
        sent.append((item.endpoint, item.seq))
        return True

    size = 100_000
    policy = Policy(memory=int(3.5 * size))
    dispatcher = Dispatcher(deliver, outbox.ack, policy, outbox.backlog)
    seq = iter(range(1, 1000))
    for change in range(6):  # four items (endpoints) each, sharing one body
        body = bytes([change]) * size
        items = [OutboxItem("", f"s{e}", f"e{e}", b"[]", next(seq), body=body) for e in range(4)]
        dispatcher.submit(outbox.add(items))
        await asyncio.sleep(0)  # each worker takes its first item
        assert dispatcher.size <= 3.5 * size
    assert dispatcher.counters.spilled == 12, "changes 3, 4 and 5, whole"
    assert dispatcher.counters.dropped_full == 0
    release.set()
    await wait_for(lambda: len(sent) == 24, what="all delivered")
    for e in range(4):  # in order, those read back from the outbox included
        assert [s for endpoint, s in sent if endpoint == f"e{e}"] == list(range(1 + e, 25, 4))
    await dispatcher.close()
    assert dispatcher.size == 0 and dispatcher._bodies == {}
    assert sorted(outbox.acked) == list(range(1, 25)), "each item leaves the outbox once"
