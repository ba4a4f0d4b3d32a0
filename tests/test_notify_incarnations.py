"""A subscription deleted and made again under its id is a new one: what was queued for the one
before (in memory, in the outbox, after a restart) is never sent to it (probe 2, finding 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.base import OutboxItem
from cityhub.store.sqlite import outbox
from cityhub.store.sqlite.backend import SqliteStore
from conftest import BASE, create
from receivers import Receiver, ServerThread, wait_for

SID = "urn:ngsi-ld:Subscription:again"


def subscription(url: str, type_: str, **members: Any) -> dict[str, Any]:
    """A subscription under SID to every entity (or registration) of one type."""
    return {
        "id": SID,
        "type": "Subscription",
        "entities": [{"type": type_}],
        "notification": {"endpoint": {"uri": url}},
        **members,
    }


def entity(n: int, type_: str) -> dict[str, Any]:
    """An entity numbered n."""
    return {"id": f"urn:ngsi-ld:{type_}:{n}", "type": type_, "n": {"type": "Property", "value": n}}


def notified_ids(rec: Receiver, path: str) -> list[str]:
    """The id of every entity or registration notified on a path, in the order they came."""
    return [d["id"] for r in rec.received(path) for d in r.body["data"]]


def outbox_left(app: Starlette) -> int:
    """Outbox rows not yet deleted (acknowledgements flushed first)."""
    notifier = app.state.notifier
    notifier.dispatcher.flush_acks()
    notifier.csource.dispatcher.flush_acks()
    return len(app.state.store.outbox_pending())


async def test_a_subscription_made_again_is_not_sent_what_was_queued_for_the_one_before(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    """The Weather subscription got the deleted Parking one's three queued notifications."""
    policy = app.state.notifier.dispatcher.policy
    policy.backoff, policy.backoff_max, policy.attempts = 0.05, 0.05, 10_000
    rec = servers.receiver()
    rec.status["/old"] = 503  # down: the Parking changes wait in its queue
    resp = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url("/old"), "Parking"))
    assert resp.status_code == 201
    for n in range(3):
        assert (await create(hub, entity(n, "Parking"))).status_code == 201
    await wait_for(lambda: rec.received("/old"), what="a first attempt")
    assert (await hub.delete(f"{BASE}/subscriptions/{SID}")).status_code == 204
    made = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url("/new"), "Weather"))
    assert made.status_code == 201
    assert (await create(hub, entity(7, "Weather"))).status_code == 201
    await wait_for(lambda: rec.received("/new"), what="the Weather notification")
    await wait_for(lambda: outbox_left(app) == 0, what="the old rows deleted")
    await wait_for(lambda: app.state.notifier.dispatcher.pending() == 0, what="empty queues")
    assert notified_ids(rec, "/new") == ["urn:ngsi-ld:Weather:7"]
    got = await hub.get(f"{BASE}/subscriptions/{SID}")
    assert got.json()["notification"]["timesSent"] == 1


async def test_a_subscription_made_again_alike_gets_only_its_own_in_order(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    """Made again on the same type and endpoint, it got the old backlog after its own
    newer notification (values 99, 0, 1, 2)."""
    policy = app.state.notifier.dispatcher.policy
    policy.backoff, policy.backoff_max, policy.attempts = 0.05, 0.05, 10_000
    rec = servers.receiver()
    rec.status["/same"] = 503
    body = subscription(rec.url("/same"), "Lot")
    assert (await hub.post(f"{BASE}/subscriptions", json=body)).status_code == 201
    for n in range(3):
        assert (await create(hub, entity(n, "Lot"))).status_code == 201
    await wait_for(lambda: rec.received("/same"), what="a first attempt")
    assert (await hub.delete(f"{BASE}/subscriptions/{SID}")).status_code == 204
    assert (await hub.post(f"{BASE}/subscriptions", json=body)).status_code == 201
    tried = len(rec.received("/same"))
    rec.status["/same"] = 200
    assert (await create(hub, entity(99, "Lot"))).status_code == 201
    await wait_for(lambda: outbox_left(app) == 0, what="the outbox emptied")
    await wait_for(lambda: app.state.notifier.dispatcher.pending() == 0, what="empty queues")
    after = [d["id"] for r in rec.received("/same")[tried:] for d in r.body["data"]]
    assert after == ["urn:ngsi-ld:Lot:99"]


async def test_a_csource_subscription_made_again_is_not_sent_what_was_queued_before(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    """A csourceSubscription made again on Weather got three newlyMatching notifications of
    Parking registrations queued for the deleted one."""
    csource = app.state.notifier.csource
    policy = csource.dispatcher.policy
    policy.backoff, policy.backoff_max, policy.attempts = 0.05, 0.05, 10_000
    rec = servers.receiver()
    rec.status["/old"] = 503
    csubs = f"{BASE}/csourceSubscriptions"
    resp = await hub.post(csubs, json=subscription(rec.url("/old"), "Parking"))
    assert resp.status_code == 201, resp.text
    for n in range(3):
        reg = {
            "id": f"urn:ngsi-ld:ContextSourceRegistration:p{n}",
            "type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": "Parking"}]}],
            "endpoint": "http://csource.example.org:1026",
        }
        assert (await hub.post(f"{BASE}/csourceRegistrations", json=reg)).status_code == 201
    await wait_for(lambda: rec.received("/old"), what="a first attempt")
    assert (await hub.delete(f"{csubs}/{SID}")).status_code == 204
    made = await hub.post(csubs, json=subscription(rec.url("/new"), "Weather"))
    assert made.status_code == 201
    weather = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:w",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Weather"}]}],
        "endpoint": "http://csource.example.org:1026",
    }
    assert (await hub.post(f"{BASE}/csourceRegistrations", json=weather)).status_code == 201
    await wait_for(lambda: rec.received("/new"), what="the Weather registration")
    await wait_for(lambda: outbox_left(app) == 0, what="the old items dropped")
    await wait_for(lambda: csource.dispatcher.pending() == 0, what="empty queues")
    assert notified_ids(rec, "/new") == [weather["id"]]


async def test_rows_of_the_one_before_left_in_the_outbox_are_not_sent_after_a_restart(
    tmp_path: Path, servers: ServerThread
) -> None:
    """Rows the stepwise purge had not reached were read at start-up and delivered to the
    subscription made again under their id."""
    db = tmp_path / "hub.db"
    rec = servers.receiver()
    rec.status["/old"] = 503
    # the first attempt fails, the next would be in a minute: the items are still queued
    app = create_app(Settings(db=str(db), notify_backoff=60, notify_attempts=100))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
        body = subscription(rec.url("/old"), "Parking")
        assert (await c.post(f"{BASE}/subscriptions", json=body)).status_code == 201
        for n in range(3):
            assert (await create(c, entity(n, "Parking"))).status_code == 201
        await wait_for(lambda: rec.received("/old"), what="a first attempt")
        app.state.notifier.dispatcher.purge = None  # stopped before its purge: as in a crash
        assert (await c.delete(f"{BASE}/subscriptions/{SID}")).status_code == 204
        again = subscription(rec.url("/new"), "Weather")
        assert (await c.post(f"{BASE}/subscriptions", json=again)).status_code == 201
    await app.state.notifier.close()
    assert len(app.state.store.outbox_pending()) == 3, "the old rows are still there"
    app.state.store.close()
    rec.status["/old"] = 200
    later = create_app(Settings(db=str(db), notify_backoff=0.05))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=later), base_url="http://h"
    ) as c:
        later.state.notifier.start()
        assert (await create(c, entity(7, "Weather"))).status_code == 201
        await wait_for(lambda: rec.received("/new"), what="the Weather notification")
        await wait_for(lambda: outbox_left(later) == 0, what="the old rows dropped")
    await later.state.notifier.close()
    later.state.store.close()
    assert notified_ids(rec, "/new") == ["urn:ngsi-ld:Weather:7"]


def test_a_purge_spares_the_rows_of_the_one_made_again_under_reused_seqs(tmp_path: Path) -> None:
    """Seqs are given again once the rows above them are deleted: a purge up to the seq of
    the deletion also deleted the undelivered rows of the subscription made again."""
    store = SqliteStore(str(tmp_path / "hub.db"))
    try:
        old = [OutboxItem("", SID, "http://r/old", b"[]", inc=1) for _ in range(2)]
        other = [OutboxItem("", "urn:ngsi-ld:Subscription:other", "http://r/x", b"[]")]
        store.outbox_stage(old + other)
        upto = store.outbox_last()  # the deletion of SID's first incarnation
        store.outbox_done([other[0].seq])  # the row above SID's is delivered
        new = [OutboxItem("", SID, "http://r/new", b"[]", inc=2)]
        store.outbox_stage(new)
        assert new[0].seq <= upto, "the seq was given again"
        while store.outbox_purge("entity", "", SID, 0, upto, 1, 1):
            pass
        assert [(i.seq, i.inc) for i in store.outbox_pending()] == [(new[0].seq, 2)]
    finally:
        store.close()


def test_the_upgrade_to_15_keeps_pending_rows_as_of_no_incarnation(tmp_path: Path) -> None:
    """Rows written before schema 15 belong to subscriptions stored before it (no _inc)."""
    db = tmp_path / "hub.db"
    store = SqliteStore(str(db))
    store.outbox_stage([OutboxItem("", SID, "http://r/n", b"[]")])
    store.close()
    import sqlite3

    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(
        "BEGIN; CREATE TABLE o13 AS SELECT seq, tenant, sub_id, endpoint, payload, created, kind,"
        " body FROM outbox; DROP TABLE outbox;"
        + outbox.V11_DDL
        + "INSERT INTO outbox SELECT * FROM o13; DROP TABLE o13;"
        " UPDATE meta SET value = '14' WHERE key = 'schema_version'; COMMIT;"
    )
    conn.close()
    store = SqliteStore(str(db))
    try:
        [item] = store.outbox_pending()
        assert (item.sub_id, item.inc) == (SID, 0)
    finally:
        store.close()


async def test_a_notification_in_flight_leaves_no_status_on_the_one_made_again(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    """Deleted and made again under its id while a notification of the old one was at its
    receiver: the answer was counted in the status written for the id, so the new one showed
    the old one's timesSent and lastSuccess."""
    rec = servers.receiver()
    rec.delay["/slow"] = 1.0
    url = f"{BASE}/subscriptions"
    assert (await hub.post(url, json=subscription(rec.url("/slow"), "Kiosk"))).status_code == 201
    assert (await hub.post(f"{BASE}/entities", json=entity(1, "Kiosk"))).status_code == 201
    await wait_for(lambda: rec.received("/slow"), what="the notification at its receiver")
    assert (await hub.delete(f"{url}/{SID}")).status_code == 204
    fresh = subscription(rec.url("/other"), "Nothing")
    assert (await hub.post(url, json=fresh)).status_code == 201
    notifier = app.state.notifier
    await wait_for(lambda: notifier.dispatcher.counters.delivered, what="the old one's answer")
    notifier.statuses.flush()
    shown = (await hub.get(f"{url}/{SID}")).json()["notification"]
    assert "timesSent" not in shown and "lastSuccess" not in shown, shown
    stored = app.state.store.resource_get("subscription", "", SID)
    assert "_notif" not in stored, stored
