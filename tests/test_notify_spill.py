"""Memory bounds never cost a notification: past a queue's or the memory's bound, items leave
memory only; the outbox keeps them, and they are read back in order when there is room."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette

from conftest import BASE, create
from receivers import ServerThread, wait_for


def subscription(url: str, type_: str) -> dict[str, Any]:
    """A subscription to every entity of one type."""
    return {
        "type": "Subscription",
        "entities": [{"type": type_}],
        "notification": {"endpoint": {"uri": url}},
    }


def entity(n: int, type_: str = "Spill") -> dict[str, Any]:
    """An entity numbered n."""
    return {"id": f"urn:ngsi-ld:{type_}:{n}", "type": type_, "n": {"type": "Property", "value": n}}


def numbers(received: list[Any]) -> list[int]:
    """The n of every entity notified, in the order they came."""
    return [d["n"]["value"] for r in received for d in r.body["data"]]


async def test_a_full_queue_leaves_items_in_the_outbox_and_sends_them_in_order(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    """Items past CITYHUB_NOTIFY_QUEUE_MAX were deleted from the outbox: 12,000 acknowledged
    creates, 10,001 notified (probe 5, F2)."""
    notifier = app.state.notifier
    policy = notifier.dispatcher.policy
    policy.queue_max, policy.backoff, policy.backoff_max = 5, 0.05, 0.05
    policy.attempts = 10_000
    rec = servers.receiver()
    rec.status["/notify"] = 503  # down while the changes are made
    resp = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url(), "Spill"))
    assert resp.status_code == 201
    for n in range(30):
        assert (await create(hub, entity(n))).status_code == 201
    assert notifier.dispatcher.pending() <= 6, "the queue keeps its bound"
    notifier.dispatcher.flush_acks()
    assert len(notifier.store.outbox_pending()) == 30, "every acknowledged change is kept"
    rec.status["/notify"] = 200
    await wait_for(lambda: len(set(numbers(rec.received()))) == 30, timeout=20, what="all 30")
    got = [n for n in numbers(rec.received()) if rec.received()]
    assert sorted(set(got)) == list(range(30))
    firsts = list(dict.fromkeys(got))
    assert firsts == list(range(30)), f"in order: {firsts}"
    await wait_for(lambda: notifier.dispatcher.pending() == 0, what="an empty queue")
    notifier.dispatcher.flush_acks()
    assert notifier.store.outbox_pending() == []
    assert notifier.dispatcher.counters.spilled > 0
    assert notifier.dispatcher.counters.dropped_full == 0


async def test_a_paused_subscription_past_the_bound_sends_all_it_owed_on_resuming(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    """Items held past the bound for a paused subscription were deleted from the outbox."""
    notifier = app.state.notifier
    policy = notifier.dispatcher.policy
    policy.queue_max, policy.backoff, policy.backoff_max = 4, 0.05, 0.05
    policy.attempts = 10_000
    rec = servers.receiver()
    rec.status["/notify"] = 503  # down while the changes are made: they wait
    resp = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url(), "Held"))
    sub_url = resp.headers["location"]
    for n in range(15):
        assert (await create(hub, entity(n, "Held"))).status_code == 201
    await wait_for(lambda: rec.received(), what="a first attempt")
    assert (await hub.patch(sub_url, json={"isActive": False})).status_code == 204
    await asyncio.sleep(0.5)  # the worker finds it paused: its items are held
    rec.status["/notify"] = 200
    tried = len(rec.received())
    await asyncio.sleep(0.3)
    assert len(rec.received()) == tried, "a paused subscription sends nothing"
    assert notifier.dispatcher.held_count() <= 4
    notifier.dispatcher.flush_acks()
    assert len(notifier.store.outbox_pending()) == 15, "every owed item stays in the outbox"
    assert (await hub.patch(sub_url, json={"isActive": True})).status_code == 204
    await wait_for(lambda: len(rec.received()) >= tried + 15, timeout=10, what="all 15")
    assert numbers(rec.received()[tried:]) == list(range(15))


async def test_deleting_a_paused_subscription_deletes_its_items_left_on_disk(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread
) -> None:
    """Held items past the bound stayed in the outbox until the next start."""
    notifier = app.state.notifier
    policy = notifier.dispatcher.policy
    policy.queue_max, policy.backoff, policy.backoff_max = 4, 0.05, 0.05
    policy.attempts = 10_000
    rec = servers.receiver()
    rec.status["/notify"] = 503
    resp = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url(), "Gone"))
    sub_url = resp.headers["location"]
    for n in range(15):
        assert (await create(hub, entity(n, "Gone"))).status_code == 201
    await wait_for(lambda: rec.received(), what="a first attempt")
    assert (await hub.patch(sub_url, json={"isActive": False})).status_code == 204
    await asyncio.sleep(0.5)  # the worker finds it paused: its items are held, 11 on disk
    assert (await hub.delete(sub_url)).status_code == 204

    def left() -> int:
        notifier.dispatcher.flush_acks()
        return len(notifier.store.outbox_pending())

    await wait_for(lambda: left() == 0, timeout=3, what="an empty outbox")


async def test_past_notify_outbox_max_a_subscriptions_oldest_rows_are_given_up(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread, monkeypatch: Any
) -> None:
    """A dead receiver's rows had no bound on disk: CITYHUB_NOTIFY_OUTBOX_MAX keeps the newest."""
    from cityhub.notify import delivery

    monkeypatch.setattr(delivery, "TRIM_EVERY", 0.2)
    notifier = app.state.notifier
    policy = notifier.dispatcher.policy
    policy.queue_max, policy.backoff, policy.backoff_max = 2, 0.05, 0.05
    policy.attempts, policy.outbox_max = 10_000, 10
    rec = servers.receiver()
    rec.status["/notify"] = 503
    resp = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url(), "Full"))
    assert resp.status_code == 201
    for n in range(30):
        assert (await create(hub, entity(n, "Full"))).status_code == 201

    def left() -> int:
        notifier.dispatcher.flush_acks()
        return len(notifier.store.outbox_pending())

    # the newest 10, and the oldest, in memory (2 waiting, 1 in flight), which are sent
    await wait_for(lambda: left() <= 13, timeout=5, what="the bound on disk")
    assert notifier.dispatcher.counters.report()["droppedOutboxFull"] == 30 - left()
    rec.status["/notify"] = 200
    await wait_for(lambda: 29 in numbers(rec.received()), timeout=10, what="the newest")
    got = list(dict.fromkeys(numbers(rec.received())))
    assert got == sorted(got), f"in order: {got}"
    assert set(range(20, 30)) <= set(got), f"the newest are kept: {got}"
