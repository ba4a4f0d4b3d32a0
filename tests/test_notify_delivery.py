"""Delivery guarantees: one dead receiver never delays the others, a crash loses no
acknowledged change, and MQTT endpoints get their notifications through a real broker."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import aiomqtt
import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.notify import delivery
from cityhub.settings import Settings
from conftest import BASE, ContextServer, create, free_port, link
from iot_support import MOSQUITTO, require_mosquitto
from outbox_support import MemoryOutbox
from receivers import Receiver, ServerThread, wait_for
from test_serve import process, serving, wait_healthy


def subscription(url: str, eid: str, **notification: Any) -> dict[str, Any]:
    """A subscription to one entity."""
    return {
        "type": "Subscription",
        "entities": [{"id": eid, "type": "Sensor"}],
        "notification": {"endpoint": {"uri": url}, **notification},
    }


def sensor(eid: str, value: float) -> dict[str, Any]:
    """A Sensor entity."""
    return {"id": eid, "type": "Sensor", "level": {"type": "Property", "value": value}}


async def test_a_hung_receiver_never_delays_a_hundred_live_ones(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    app.state.notifier.dispatcher.policy.timeout = 30.0  # the hung one holds its slot 30 s
    live = servers.receiver()
    dead = servers.blackhole()
    eid = "urn:ngsi-ld:Sensor:shared"
    await create(hub, sensor(eid, 0))
    resp = await hub.post(f"{BASE}/subscriptions", json=subscription(dead, eid))
    assert resp.status_code == 201
    for n in range(100):
        resp = await hub.post(f"{BASE}/subscriptions", json=subscription(live.url(f"/r{n}"), eid))
        assert resp.status_code == 201
    started = time.monotonic()
    for value in range(1, 6):
        resp = await hub.patch(
            f"{BASE}/entities/{eid}/attrs", json={"level": {"type": "Property", "value": value}}
        )
        assert resp.status_code == 204
    await wait_for(lambda: live.total() >= 500, timeout=10, what="500 live notifications")
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"live receivers waited {elapsed:.1f} s behind the hung one"
    for n in range(100):  # every live receiver got every change, in order
        values = [r.body["data"][0]["level"]["value"] for r in live.received(f"/r{n}")]
        assert values == [1, 2, 3, 4, 5], (n, values)


# -- crash and restart ---------------------------------------------------------------------------


@pytest.mark.server
def test_an_acknowledged_change_is_notified_after_a_crash(
    tmp_path: Path, servers: ServerThread
) -> None:
    db = tmp_path / "crash.db"
    down_port = free_port()  # nothing listens here until after the crash
    notify_url = f"http://127.0.0.1:{down_port}/notify"
    eid = "urn:ngsi-ld:Sensor:crash"
    args = ["serve", "--port", str(free_port()), "--db", str(db)]
    with process(args, {"CITYHUB_NOTIFY_BACKOFF": "0.2"}) as proc:
        url = f"http://127.0.0.1:{args[2]}"
        wait_healthy(proc, url)
        assert httpx.post(f"{url}{BASE}/entities", json=sensor(eid, 1)).status_code == 201
        sub = subscription(notify_url, eid)
        assert httpx.post(f"{url}{BASE}/subscriptions", json=sub).status_code == 201
        resp = httpx.patch(
            f"{url}{BASE}/entities/{eid}/attrs", json={"level": {"type": "Property", "value": 42}}
        )
        assert resp.status_code == 204  # acknowledged; the receiver is down
        proc.send_signal(signal.SIGKILL)  # a crash: no shutdown, nothing flushed
        proc.wait(10)
    receiver = _receiver_on(servers, down_port)
    with serving(db, free_port(), {"CITYHUB_NOTIFY_BACKOFF": "0.2"}):
        deadline = time.monotonic() + 15
        while not receiver.received() and time.monotonic() < deadline:
            time.sleep(0.05)
    got = receiver.received()
    assert got, "the notification acknowledged before the crash never arrived"
    assert got[0].body["data"][0]["level"]["value"] == 42


async def test_a_backlog_waits_for_its_subscriptions_context_after_a_restart(
    tmp_path: Path, servers: ServerThread, context_server: ContextServer
) -> None:
    """A subscription whose @context is no longer stored is installed a moment after start;
    its backlog must wait for it, not be dropped as unwanted."""
    db = str(tmp_path / "hub.db")
    ctx = context_server.url("/ctx/restart.jsonld")
    down_port = free_port()  # nothing listens here until after the restart
    app = create_app(Settings(db=db, notify_backoff=30))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
        sub = {
            "type": "Subscription",
            "entities": [{"type": "Sensor"}],
            "notification": {"endpoint": {"uri": f"http://127.0.0.1:{down_port}/notify"}},
        }
        headers = {"Link": link(ctx)}
        assert (await c.post(f"{BASE}/subscriptions", json=sub, headers=headers)).status_code == 201
        await create(c, {"id": "urn:ngsi-ld:Sensor:r1", "type": "Sensor", "x": 1}, headers)
        listed = (await c.get(f"{BASE}/jsonldContexts", params={"details": "true"})).json()
        (local,) = [e["localId"] for e in listed if e.get("URL") == ctx]
        assert (await c.delete(f"{BASE}/jsonldContexts/{local}")).status_code == 204
    await app.state.notifier.close()
    app.state.store.close()
    receiver = _receiver_on(servers, down_port)
    again = create_app(Settings(db=db))
    again.state.notifier.start()
    try:
        await wait_for(lambda: bool(receiver.received()), timeout=10, what="the backlog")
        assert receiver.received()[0].body["data"][0]["id"] == "urn:ngsi-ld:Sensor:r1"
    finally:
        await again.state.notifier.close()
        again.state.store.close()


def _receiver_on(servers: ServerThread, port: int) -> Receiver:
    """A receiver on a given port (the one the subscription names)."""
    from aiohttp import web

    rec = Receiver(port=port)

    async def start() -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", rec._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    asyncio.run_coroutine_threadsafe(start(), servers.loop).result(10)
    return rec


# -- MQTT ------------------------------------------------------------------------------------------


async def test_mqtt_endpoint_publishes_to_a_real_broker(hub: httpx.AsyncClient) -> None:
    require_mosquitto()
    host, port = MOSQUITTO
    topic = f"cityhub-test/{uuid.uuid4().hex}"
    eid = "urn:ngsi-ld:Sensor:mqtt"
    await create(hub, sensor(eid, 1))
    async with aiomqtt.Client(host, port) as listener:
        await listener.subscribe(topic, qos=1)
        sub = subscription(
            f"mqtt://{host}:{port}/{topic}",
            eid,
            endpoint={
                "uri": f"mqtt://{host}:{port}/{topic}",
                "receiverInfo": [{"key": "x-city", "value": "namwon"}],
                "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}],
            },
        )
        assert (await hub.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
        resp = await hub.patch(
            f"{BASE}/entities/{eid}/attrs", json={"level": {"type": "Property", "value": 7}}
        )
        assert resp.status_code == 204
        async with asyncio.timeout(10):
            message = await anext(aiter(listener.messages))
    payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
    assert message.qos == 1
    assert payload["metadata"]["x-city"] == "namwon"
    assert payload["metadata"]["Content-Type"] == "application/json"
    assert payload["body"]["type"] == "Notification"
    assert payload["body"]["data"][0]["level"]["value"] == 7


async def test_an_mqtt_topic_keeps_its_leading_slash(hub: httpx.AsyncClient) -> None:
    """`mqtt://host//a/b` names topic `/a/b`, which MQTT tells from `a/b`: its subscribers
    got nothing, as every leading slash was stripped."""
    require_mosquitto()
    host, port = MOSQUITTO
    topic = f"/cityhub-test/{uuid.uuid4().hex}"
    eid = "urn:ngsi-ld:Sensor:slash"
    await create(hub, sensor(eid, 1))
    async with aiomqtt.Client(host, port) as listener:
        await listener.subscribe(topic, qos=1)
        uri = f"mqtt://{host}:{port}/{topic}"
        sub = subscription(
            uri, eid, endpoint={"uri": uri, "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}]}
        )
        assert (await hub.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
        resp = await hub.patch(
            f"{BASE}/entities/{eid}/attrs", json={"level": {"type": "Property", "value": 8}}
        )
        assert resp.status_code == 204
        async with asyncio.timeout(10):
            message = await anext(aiter(listener.messages))
    assert message.topic.value == topic
    assert json.loads(bytes(message.payload))["body"]["data"][0]["level"]["value"] == 8  # type: ignore[arg-type]


async def test_a_stored_mqtt_endpoint_without_a_host_fails_and_publishes_nowhere() -> None:
    """One stored before create refused it went to the broker on localhost, as delivered."""
    from cityhub.notify.outcome import Failed
    from cityhub.notify.senders import MqttSender

    sender = MqttSender()
    try:
        outcome = await sender.send("mqtt://user@/city/a", b"{}", {}, 1.0)
    finally:
        await sender.close()
    assert isinstance(outcome, Failed) and "no host" in outcome.why


async def test_a_full_queue_leaves_the_newest_in_the_outbox_never_the_one_in_flight() -> None:
    from cityhub.notify.delivery import Dispatcher, Policy
    from cityhub.store.base import OutboxItem

    release = asyncio.Event()
    sent: list[bytes] = []
    outbox = MemoryOutbox()

    async def deliver(item: OutboxItem, attempt: int) -> bool:
        if item.payload == b"1":
            await release.wait()  # the first one is in flight while more arrive
        sent.append(item.payload)
        return True

    dispatcher = Dispatcher(deliver, outbox.ack, Policy(queue_max=1), outbox.backlog)
    item = outbox.add([OutboxItem("", "sub", "http://x", str(n).encode(), n) for n in (1, 2, 3)])
    dispatcher.submit([item[0]])
    await asyncio.sleep(0)  # the worker takes item 1
    dispatcher.submit([item[1]])
    dispatcher.submit([item[2]])  # one waiting is the bound: item 3 stays in the outbox only
    assert dispatcher.pending() == 2
    release.set()
    await wait_for(lambda: len(sent) == 3, timeout=5, what="three deliveries")
    await dispatcher.close()
    assert sent == [b"1", b"2", b"3"], "read back from the outbox, in order"
    assert dispatcher.counters.spilled == 1 and dispatcher.counters.delivered == 3
    assert dispatcher.counters.dropped_full == 0
    assert sorted(outbox.acked) == [1, 2, 3], "each item leaves the outbox once, delivered"


async def test_the_memory_bound_spills_from_the_longest_queue_and_keeps_the_rest() -> None:
    """Each endpoint may hold queue_max items, so many dead receivers could exhaust the
    memory: past the memory bound the newest waiting items of the longest queue leave memory
    (not the outbox), and are read back in order once there is room."""
    from cityhub.notify.delivery import ITEM_OVERHEAD, Dispatcher, Policy
    from cityhub.store.base import OutboxItem

    release = asyncio.Event()
    sent: dict[str, list[int]] = {"dead": [], "slow": [], "live": []}
    outbox = MemoryOutbox()

    async def deliver(item: OutboxItem, attempt: int) -> bool:
        await release.wait()  # nobody answers until the end
        sent[item.endpoint].append(item.seq)
        return True

    cost = 100 + ITEM_OVERHEAD
    dispatcher = Dispatcher(deliver, outbox.ack, Policy(memory=12 * cost), outbox.backlog)
    seq = iter(range(1, 1000))

    def submit(endpoint: str, n: int) -> list[int]:
        items = [OutboxItem("", endpoint, endpoint, b"x" * 100, next(seq)) for _ in range(n)]
        dispatcher.submit(outbox.add(items))
        return [i.seq for i in items]

    live = submit("live", 2)
    slow = submit("slow", 3)
    dead = submit("dead", 30)
    await asyncio.sleep(0)  # each worker takes its first item
    dead += submit("dead", 10)
    live += submit("live", 1)  # over the bound: the dead queue, the longest, gives way
    assert dispatcher.size <= 12 * cost
    assert dispatcher.pending() == 12
    assert [i.seq for i in dispatcher.queues[("", "dead")].items] == dead[:6], "its oldest stay"
    assert dispatcher.counters.spilled == len(dead) - 6
    release.set()
    await wait_for(lambda: sum(map(len, sent.values())) == 46, timeout=5, what="deliveries")
    await dispatcher.close()
    assert sent["live"] == live and sent["slow"] == slow, "short queues keep every item"
    assert sent["dead"] == dead, "the dead one's are all sent, in order"
    assert dispatcher.counters.dropped_full == 0
    assert sorted(outbox.acked) == sorted(live + slow + dead), "each leaves the outbox once"


async def test_items_held_for_paused_subscriptions_count_against_the_memory_bound() -> None:
    """Held items escaped CITYHUB_NOTIFY_MEMORY_MB: paused subscriptions to dead receivers
    held 6 times the setting after 6 rounds of a soak. Now the newest held leave memory first
    from the largest holder (not the outbox), and come back in order when they are released."""
    from cityhub.notify.delivery import HOLD, ITEM_OVERHEAD, Dispatcher, Policy
    from cityhub.store.base import OutboxItem

    paused = {"p1", "p2", "p3"}
    sent: dict[str, list[int]] = {s: [] for s in paused}
    outbox = MemoryOutbox()

    async def deliver(item: OutboxItem, attempt: int) -> bool | Literal["hold"]:
        if item.sub_id in paused:
            return HOLD
        sent[item.sub_id].append(item.seq)
        return True

    cost = 100 + ITEM_OVERHEAD
    dispatcher = Dispatcher(deliver, outbox.ack, Policy(memory=20 * cost), outbox.backlog)
    seq = iter(range(1, 1000))
    made: dict[str, list[int]] = {s: [] for s in paused}
    for n in range(3):
        for sid in sorted(paused):
            items = [OutboxItem("", sid, f"http://{sid}", b"x" * 100, next(seq)) for _ in range(15)]
            made[sid] += [i.seq for i in outbox.add(items)]
            if n == 0:  # queued before the pause: held when the worker reaches them
                dispatcher.submit(items)
            else:  # reached while paused: held at once
                dispatcher.hold(items)
        await wait_for(lambda: dispatcher.pending() == 0, timeout=5, what="all held")
    assert dispatcher.held_count() <= 20, "the memory bound holds with held items too"
    assert dispatcher.size <= 20 * cost
    assert dispatcher.counters.dropped_full == 0
    paused.clear()
    for sid in ("p1", "p2", "p3"):
        dispatcher.release("", sid, f"http://{sid}")
    await wait_for(lambda: sum(map(len, sent.values())) == 135, timeout=5, what="all sent")
    assert sent == made, "every owed item, in order"
    assert dispatcher.size == 0 and dispatcher.held == {}
    await dispatcher.close()
    assert sorted(outbox.acked) == sorted(s for seqs in made.values() for s in seqs)


async def test_a_paused_subscription_keeps_what_it_owed_and_sends_it_on_resuming(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    dispatcher = app.state.notifier.dispatcher
    dispatcher.policy.backoff = dispatcher.policy.backoff_max = 0.05
    dispatcher.policy.attempts = 10_000
    rec = servers.receiver()
    rec.status["/notify"] = 503  # down while the changes are made: they wait in the queue
    eid = "urn:ngsi-ld:Sensor:paused"
    await create(hub, sensor(eid, 0))
    resp = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url(), eid))
    assert resp.status_code == 201
    sub_url = resp.headers["location"]
    for value in (1, 2, 3):
        resp = await hub.patch(
            f"{BASE}/entities/{eid}/attrs", json={"level": {"type": "Property", "value": value}}
        )
        assert resp.status_code == 204
    await wait_for(lambda: rec.received(), what="a first attempt")
    assert (await hub.patch(sub_url, json={"isActive": False})).status_code == 204
    await asyncio.sleep(0.3)  # the next attempt finds the subscription paused
    rec.status["/notify"] = 200
    tried = len(rec.received())
    await asyncio.sleep(0.3)
    assert len(rec.received()) == tried, "a paused subscription sends nothing"
    assert (await hub.patch(sub_url, json={"isActive": True})).status_code == 204
    await wait_for(lambda: len(rec.received()) >= tried + 3, what="the three held notifications")
    values = [r.body["data"][0]["level"]["value"] for r in rec.received()[tried:]]
    assert values == [1, 2, 3], values


async def test_deleting_a_paused_subscription_drops_what_it_held_from_the_outbox(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    notifier = app.state.notifier
    notifier.dispatcher.policy.backoff = notifier.dispatcher.policy.backoff_max = 0.05
    rec = servers.receiver()
    rec.status["/notify"] = 503
    eid = "urn:ngsi-ld:Sensor:gone"
    await create(hub, sensor(eid, 0))
    resp = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url(), eid))
    sub_url = resp.headers["location"]
    await hub.patch(
        f"{BASE}/entities/{eid}/attrs", json={"level": {"type": "Property", "value": 1}}
    )
    await wait_for(lambda: rec.received(), what="a first attempt")
    assert (await hub.patch(sub_url, json={"isActive": False})).status_code == 204
    await wait_for(lambda: notifier.dispatcher.held, what="the item held")
    assert len(notifier.store.outbox_pending()) == 1, "a held item stays in the outbox"
    assert (await hub.delete(sub_url)).status_code == 204
    notifier.dispatcher.flush_acks()
    assert notifier.store.outbox_pending() == []


async def test_held_notifications_resume_in_order_on_the_endpoint_the_subscription_has_then(
    hub: httpx.AsyncClient, servers: ServerThread
) -> None:
    """Released items went to the back of a shared queue, behind the subscription's later
    ones, and to the endpoint they were made for, not the one it was changed to."""
    rec = servers.receiver()
    rec.delay["/shared"] = 0.4  # each notification holds the shared queue a while
    a, b = "urn:ngsi-ld:Sensor:held-a", "urn:ngsi-ld:Sensor:held-b"
    await create(hub, sensor(a, 0))
    await create(hub, sensor(b, 0))
    subs = {}
    for eid in (a, b):
        resp = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url("/shared"), eid))
        subs[eid] = resp.headers["location"]
    for eid, value in ((b, 100), (a, 1), (b, 101), (a, 2)):
        resp = await hub.patch(
            f"{BASE}/entities/{eid}/attrs", json={"level": {"type": "Property", "value": value}}
        )
        assert resp.status_code == 204
    assert (await hub.patch(subs[a], json={"isActive": False})).status_code == 204
    await wait_for(lambda: len(rec.received("/shared")) >= 2, what="b's 100 and 101 in flight")
    new = {"notification": {"endpoint": {"uri": rec.url("/new")}}, "isActive": True}
    assert (await hub.patch(subs[a], json=new)).status_code == 204
    await wait_for(lambda: len(rec.received("/new")) >= 2, what="a's two held notifications")
    got = [r.body["data"][0]["level"]["value"] for r in rec.received("/new")]
    assert got == [1, 2], got
    shared = [r.body["data"][0]["id"] for r in rec.received("/shared")]
    assert a not in shared, shared


async def test_a_restart_holds_a_paused_subscriptions_items_past_the_queue_bound(
    tmp_path: Path, servers: ServerThread
) -> None:
    """The backlog went through the queues' bound at start-up, which dropped held items."""
    db = tmp_path / "held.db"
    rec = servers.receiver()
    rec.status["/down"] = 503
    app = create_app(Settings(db=str(db), notify_backoff=0.05))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
        for n in range(2):
            eid = f"urn:ngsi-ld:Sensor:r{n}"
            await create(c, sensor(eid, 0))
            resp = await c.post(f"{BASE}/subscriptions", json=subscription(rec.url("/down"), eid))
            sub_url = resp.headers["location"]
            assert (await c.patch(sub_url, json={"isActive": False})).status_code == 204
            for value in range(1, 5):  # changes made while paused are not notified
                patch = {"level": {"type": "Property", "value": value}}
                await c.patch(f"{BASE}/entities/{eid}/attrs", json=patch)
            assert (await c.patch(sub_url, json={"isActive": True})).status_code == 204
            for value in range(5, 9):  # four owed notifications, then paused
                patch = {"level": {"type": "Property", "value": value}}
                await c.patch(f"{BASE}/entities/{eid}/attrs", json=patch)
            assert (await c.patch(sub_url, json={"isActive": False})).status_code == 204
    await app.state.notifier.close()
    app.state.store.close()
    # a restart with a bound of 5 items per queue: 8 owed items for one endpoint
    again = create_app(Settings(db=str(db), notify_queue_max=5, notify_backoff=0.05))
    again.state.notifier.start()
    await again.state.notifier.close()  # acknowledges what was dropped
    assert again.state.notifier.dispatcher.counters.dropped_full == 0
    assert len(again.state.store.outbox_pending()) == 8, "each owed item is kept"
    again.state.store.close()


class OutboxDeleteFails:
    """The store's writer on a full disk, for the outbox's batched delete only."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def executemany(self, sql: str, rows: Any) -> Any:
        if sql.startswith("DELETE FROM outbox"):
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
            raise exc
        return self.conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


async def test_delivered_items_whose_delete_failed_are_deleted_at_a_later_flush(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    """The seqs were dropped: the rows stayed in the outbox and were sent again at restart."""
    notifier, store = app.state.notifier, app.state.store
    rec = servers.receiver()
    eid = "urn:ngsi-ld:Sensor:acks"
    await create(hub, sensor(eid, 0))
    assert (await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url(), eid))).is_success
    real, store._writer = store._writer, OutboxDeleteFails(store._writer)
    try:
        await hub.patch(
            f"{BASE}/entities/{eid}/attrs", json={"level": {"type": "Property", "value": 1}}
        )
        await wait_for(lambda: rec.received(), what="the notification")
        await wait_for(lambda: notifier.dispatcher._acks, what="its acknowledgement")
        notifier.dispatcher.flush_acks()
        assert len(store.outbox_pending()) == 1, "the delete failed"
    finally:
        store._writer = real
    await wait_for(lambda: not store.outbox_pending(), what="the delete retried")
    assert len(rec.received()) == 1


def test_acks_kept_after_a_failed_delete_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "ACKS_KEPT", 3)
    calls: list[list[int]] = []

    def ack(seqs: list[int]) -> None:
        calls.append(list(seqs))
        if len(calls) == 1:
            raise RuntimeError("disk full")

    async def deliver(item: Any, attempt: int) -> bool:
        return True

    dispatcher = delivery.Dispatcher(deliver, ack, delivery.Policy())
    dispatcher._acks = [1, 2, 3, 4, 5]
    dispatcher.flush_acks()
    dispatcher._acks.append(6)
    dispatcher.flush_acks()
    assert calls == [[1, 2, 3, 4, 5], [3, 4, 5, 6]]
    dispatcher.flush_acks()
    assert len(calls) == 2, "nothing left to delete"
