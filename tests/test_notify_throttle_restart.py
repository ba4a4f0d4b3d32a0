"""A subscription's throttling window outlives a restart of the hub (GS CIM 009 5.2.12:
throttling is the least time between two notifications, not between two since start-up)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE, create
from receivers import ServerThread, wait_for


def subscription(url: str, **extra: Any) -> dict[str, Any]:
    """A subscription to every Bus."""
    return {
        "type": "Subscription",
        "entities": [{"type": "Bus"}],
        "notification": {"endpoint": {"uri": url}},
        **extra,
    }


@asynccontextmanager
async def hub(db: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of one run of the hub on db, stopped as a restart stops it."""
    app = create_app(Settings(db=str(db)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
        yield c
    await app.state.notifier.close()
    app.state.store.close()


def bus(speed: int) -> dict[str, Any]:
    """The one bus, at a speed."""
    return {"id": "urn:ngsi-ld:Bus:1", "type": "Bus", "speed": {"type": "Property", "value": speed}}


async def test_a_restart_inside_the_throttling_window_opens_no_new_one(
    tmp_path: Path, servers: ServerThread
) -> None:
    """throttling 3600, one notification, a restart, a change: it was notified at once (the
    clock lived in memory only), a message a restart more for a receiver that pays or
    rate-limits per message."""
    db, rec = tmp_path / "hub.db", servers.receiver()
    async with hub(db) as c:
        sub = subscription(rec.url("/throttled"), throttling=3600)
        assert (await c.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
        control = subscription(rec.url("/every"))
        assert (await c.post(f"{BASE}/subscriptions", json=control)).status_code == 201
        assert (await create(c, bus(10))).status_code == 201
        await wait_for(lambda: rec.received("/throttled"), what="the first notification")

    async with hub(db) as c:
        patch = {"speed": {"type": "Property", "value": 20}}
        resp = await c.patch(f"{BASE}/entities/urn:ngsi-ld:Bus:1/attrs", json=patch)
        assert resp.status_code == 204
        # the control subscription is notified of the change: it has been matched
        await wait_for(lambda: len(rec.received("/every")) == 2, what="the control's second")
        assert len(rec.received("/throttled")) == 1, "inside the window: not notified"


async def test_a_window_that_ran_out_while_the_hub_was_down_is_over(
    tmp_path: Path, servers: ServerThread
) -> None:
    """The window counts from the last notification: one that ended while the hub was
    stopped holds nothing back after the restart."""
    db, rec = tmp_path / "hub.db", servers.receiver()
    async with hub(db) as c:
        sub = subscription(rec.url("/throttled"), throttling=1)
        assert (await c.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
        assert (await create(c, bus(10))).status_code == 201
        await wait_for(lambda: rec.received("/throttled"), what="the first notification")
    await asyncio.sleep(1.2)  # the window ends while no hub runs

    async with hub(db) as c:
        patch = {"speed": {"type": "Property", "value": 20}}
        resp = await c.patch(f"{BASE}/entities/urn:ngsi-ld:Bus:1/attrs", json=patch)
        assert resp.status_code == 204
        await wait_for(lambda: len(rec.received("/throttled")) == 2, what="the second")


async def test_throttling_set_after_a_restart_counts_from_the_notification_before_it(
    tmp_path: Path, servers: ServerThread
) -> None:
    """A PATCH that adds throttling after a restart counts the window from the last
    notification, as it does without a restart between them."""
    db, rec = tmp_path / "hub.db", servers.receiver()
    async with hub(db) as c:
        sub = {**subscription(rec.url("/later")), "id": "urn:ngsi-ld:Subscription:later"}
        assert (await c.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
        assert (
            await c.post(f"{BASE}/subscriptions", json=subscription(rec.url("/every")))
        ).status_code == 201
        assert (await create(c, bus(10))).status_code == 201
        await wait_for(lambda: rec.received("/later"), what="the first notification")

    async with hub(db) as c:
        resp = await c.patch(f"{BASE}/subscriptions/{sub['id']}", json={"throttling": 3600})
        assert resp.status_code == 204
        patch = {"speed": {"type": "Property", "value": 20}}
        resp = await c.patch(f"{BASE}/entities/urn:ngsi-ld:Bus:1/attrs", json=patch)
        assert resp.status_code == 204
        await wait_for(lambda: len(rec.received("/every")) == 2, what="the control's second")
        assert len(rec.received("/later")) == 1, "inside the window: not notified"
