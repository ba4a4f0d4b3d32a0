"""An erasure takes back what the hub has not yet sent about the entity: notifications
queued for a receiver that is down (or held for a paused subscription) carried the erased
person's values in the outbox, and were sent once the receiver came back (decision 095)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE
from receivers import Receiver, wait_for

SECRET = "PULSE-OF-ALICE-4410"
ALICE = "urn:ngsi-ld:Resident:alice"
BOB = "urn:ngsi-ld:Resident:bob"


def resident(eid: str, note: str) -> dict[str, Any]:
    return {"id": eid, "type": "Resident", "note": {"type": "Property", "value": note}}


def in_files(db: Path, needle: str) -> list[str]:
    """The hub's files (database, WAL) that hold needle's bytes."""
    found = []
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists() and needle.encode() in path.read_bytes():
            found.append(path.name)
    return found


def residents_subscription(sid: str, uri: str) -> dict[str, Any]:
    """A subscription to every Resident, notifying uri."""
    return {
        "id": sid,
        "type": "Subscription",
        "entities": [{"type": "Resident"}],
        "notification": {"endpoint": {"uri": uri}},
    }


async def bob_arrives(receiver: Receiver) -> None:
    """Wait until Bob's notification reaches /up (a withdrawn seq must not pass it by)."""

    def bobs() -> list[Any]:
        return [r for r in receiver.received("/up") if r.body["data"][0]["id"] == BOB]

    await wait_for(bobs, timeout=5, what="Bob's notification")


async def test_an_erasure_withdraws_the_unsent_notifications_of_the_entity(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = tmp_path / "hub.db"
    app = create_app(Settings(db=str(db), notify_backoff=0.2, notify_attempts=50))
    receiver.status["/down"] = 503  # the receiver is down while the person is erased
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        sub = {
            "id": "urn:ngsi-ld:Subscription:care",
            "type": "Subscription",
            "entities": [{"type": "Resident"}],
            "notificationTrigger": ["entityCreated", "attributeUpdated", "entityDeleted"],
            "notification": {"endpoint": {"uri": receiver.url("/down")}},
        }
        assert (await client.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
        assert (
            await client.post(f"{BASE}/entities", json=resident(ALICE, SECRET))
        ).status_code == 201
        for n in range(3):
            resp = await client.patch(
                f"{BASE}/entities/{ALICE}/attrs", json={"note": f"{SECRET}-{n}"}
            )
            assert resp.status_code == 204, resp.text
        assert (
            await client.post(f"{BASE}/entities", json=resident(BOB, "bob-kept"))
        ).status_code == 201
        await wait_for(lambda: receiver.received("/down"), what="a first, failed attempt")
        assert (await client.delete(f"{BASE}/entities/{ALICE}")).status_code == 204
        assert (await client.delete(f"{BASE}/temporal/entities/{ALICE}")).status_code == 204
        deadline = time.monotonic() + 10  # the checkpointer ticks every 0.5 s
        while in_files(db, SECRET) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert in_files(db, SECRET) == [], "queued notifications keep the erased values"
        receiver.status["/down"] = 200  # the receiver comes back

        def received(reason: str) -> list[str]:
            return [
                e["id"]
                for r in receiver.received("/down")
                if r.body.get("triggerReason") == reason
                for e in r.body["data"]
            ]

        await wait_for(lambda: BOB in received("entityCreated"), what="the neighbour's")
        await wait_for(lambda: received("entityDeleted"), what="the deletion notice")
        assert received("entityDeleted") == [ALICE], "told that the entity is gone"
        sent = [json.dumps(r.body) for r in receiver.received("/down")]
        late = [s for s in sent[1:] if SECRET in s]  # the first was refused before the erasure
        assert late == [], "the erased values were sent after the erasure"
    await app.state.notifier.close()
    app.state.store.close()


async def test_after_a_restart_nothing_withdrawn_is_sent_and_other_tenants_keep_theirs(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A withdrawn row waits in the outbox for the notifier to pass it by; a restart before
    that sends nothing of it. The same id in another tenant is another entity: its
    notifications stay."""
    db = tmp_path / "hub.db"
    receiver.status["/down"] = 503
    sub = {
        "id": "urn:ngsi-ld:Subscription:care",
        "type": "Subscription",
        "entities": [{"type": "Resident"}],
        "notification": {"endpoint": {"uri": receiver.url("/down")}},
    }
    # no second attempt before the stop: the withdrawn rows are still on disk at the restart
    app = create_app(Settings(db=str(db), notify_backoff=60, notify_attempts=50))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for tenant in ("city-a", "city-b"):
            headers = {"NGSILD-Tenant": tenant}
            resp = await client.post(f"{BASE}/subscriptions", json=sub, headers=headers)
            assert resp.status_code == 201, resp.text
            body = resident(ALICE, f"{SECRET}-{tenant}")
            resp = await client.post(f"{BASE}/entities", json=body, headers=headers)
            assert resp.status_code == 201, resp.text
        resp = await client.delete(
            f"{BASE}/temporal/entities/{ALICE}", headers={"NGSILD-Tenant": "city-a"}
        )
        assert resp.status_code == 204, resp.text
    await app.state.notifier.close()
    app.state.store.close()

    refused = len(receiver.received("/down"))  # attempts made before the erasure
    receiver.status["/down"] = 200
    app = create_app(Settings(db=str(db), notify_backoff=0.2, notify_attempts=50))
    transport = httpx.ASGITransport(app=app)
    app.state.notifier.start()  # what a served hub's start-up does
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            health = (await client.get("/health")).json()
            if health["notifications"]["outboxRows"] == 0:
                break
            await asyncio.sleep(0.1)
        assert health["notifications"]["outboxRows"] == 0, "the withdrawn row was passed by"
        sent = [json.dumps(r.body) for r in receiver.received("/down")[refused:]]
        assert [s for s in sent if f"{SECRET}-city-a" in s] == [], "sent after the erasure"
        assert [s for s in sent if f"{SECRET}-city-b" in s], "city-b's notification is kept"
        assert health["notifications"]["renderFailed"] == 0, "passed by, not failed"
    await app.state.notifier.close()
    app.state.store.close()


def test_what_the_read_before_the_write_missed_is_still_withdrawn(tmp_path: Path) -> None:
    """The erasure's write re-checks only what the read before it found and the rows
    written since: one written in between is still emptied, and a found row whose seq went
    to another entity's notification meanwhile is left alone."""
    from functools import partial

    import orjson

    from cityhub.notify.events import erased_with
    from cityhub.store.base import WITHDRAWN, OutboxItem
    from cityhub.store.sqlite import SqliteStore, outbox

    def item(eid: str) -> OutboxItem:
        event = {"trigger": "attributeCreated", "entity": {"id": eid, "type": ["T"], "attrs": {}}}
        return OutboxItem("t", "urn:sub", "http://r.example/n", orjson.dumps([event]))

    store = SqliteStore(tmp_path / "hub.db")
    conn = store._writer
    takes = partial(erased_with, ALICE)
    outbox.add(conn, [item(ALICE), item(BOB)])  # seqs 1, 2
    read = outbox.about(conn, "t", ALICE, takes)
    assert read == ([1], 2)
    outbox.add(conn, [item(ALICE)])  # seq 3, after the read
    assert sorted(outbox.withdraw(conn, "t", ALICE, takes, read)) == [1, 3]

    outbox.remove(conn, [1, 2, 3])
    outbox.add(conn, [item(ALICE)])  # seq 1 again
    read = outbox.about(conn, "t", ALICE, takes)
    assert read == ([1], 1)
    outbox.remove(conn, [1])
    outbox.add(conn, [item(BOB)])  # seq 1 given to Bob's
    assert outbox.withdraw(conn, "t", ALICE, takes, read) == []
    payloads = [row[0] for row in conn.execute("SELECT payload FROM outbox")]
    assert WITHDRAWN not in payloads and len(payloads) == 1
    store.close()


async def test_a_notification_sent_before_the_erasure_does_not_silence_the_next(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erasure withdrew a row already sent but not yet acknowledged (acks are batched);
    once the ack deleted it, the next notification took its seq and was passed by too (the
    ETSI suite's notification tests failed every other one)."""
    from cityhub.notify import delivery

    monkeypatch.setattr(delivery, "ACK_EVERY", 1.0)  # the erasure lands before the ack
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        sub = residents_subscription("urn:ngsi-ld:Subscription:care", receiver.url("/up"))
        assert (await client.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
        assert (await client.post(f"{BASE}/entities", json=resident(ALICE, "a"))).status_code == 201
        await wait_for(lambda: receiver.received("/up"), what="Alice's notification")
        assert (await client.delete(f"{BASE}/temporal/entities/{ALICE}")).status_code == 204
        await asyncio.sleep(1.5)  # the ack deletes Alice's row: its seq is free again
        assert (await client.post(f"{BASE}/entities", json=resident(BOB, "b"))).status_code == 201
        await bob_arrives(receiver)
    await app.state.notifier.close()
    app.state.store.close()


async def test_a_withdrawn_row_deleted_with_its_subscription_does_not_silence_the_next(
    tmp_path: Path, receiver: Receiver
) -> None:
    """An erasure withdrew a row whose item waited (a receiver down); the subscription was
    deleted, its rows purged, and the next notification, of another subscription, was given
    the freed seq: it was passed by as withdrawn (ETSI 046_14_01)."""
    receiver.status["/down"] = 503
    # the waiting item's next attempt is long after the test: it never passes its seq by
    app = create_app(Settings(db=str(tmp_path / "hub.db"), notify_backoff=60, notify_attempts=50))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:

        def subscription(sid: str, path: str) -> dict[str, Any]:
            return residents_subscription(sid, receiver.url(path))

        down = subscription("urn:ngsi-ld:Subscription:down", "/down")
        assert (await client.post(f"{BASE}/subscriptions", json=down)).status_code == 201
        assert (await client.post(f"{BASE}/entities", json=resident(ALICE, "a"))).status_code == 201
        await wait_for(lambda: receiver.received("/down"), what="a first, failed attempt")
        assert (await client.delete(f"{BASE}/temporal/entities/{ALICE}")).status_code == 204
        resp = await client.delete(f"{BASE}/subscriptions/{down['id']}")
        assert resp.status_code == 204, resp.text

        async def outbox_rows() -> int:
            health = (await client.get("/health")).json()
            return int(health["notifications"]["outboxRows"])

        deadline = time.monotonic() + 10  # the purge runs at the next acknowledgement flush
        while await outbox_rows() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await outbox_rows() == 0, "the deleted subscription's row is purged"
        up = subscription("urn:ngsi-ld:Subscription:up", "/up")
        assert (await client.post(f"{BASE}/subscriptions", json=up)).status_code == 201
        assert (await client.post(f"{BASE}/entities", json=resident(BOB, "b"))).status_code == 201
        await bob_arrives(receiver)
    await app.state.notifier.close()
    app.state.store.close()
