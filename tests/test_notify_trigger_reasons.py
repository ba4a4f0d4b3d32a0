"""A change that fires several attribute triggers a subscription asks for is notified once per
trigger, each notification naming its own triggerReason (GS CIM 009 5.2.12
notificationTrigger, 5.3.1 Notification.triggerReason): a PUT that updates one attribute and
drops another was one notification named attributeUpdated, and a receiver that filters on
triggerReason attributeDeleted never heard of the deletion."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from conftest import BASE, create
from receivers import ServerThread, wait_for

EID = "urn:ngsi-ld:ParkingSpot:1"


def spot(**attrs: Any) -> dict[str, Any]:
    """A ParkingSpot with the given Properties."""
    return {
        "id": EID,
        "type": "ParkingSpot",
        **{k: {"type": "Property", "value": v} for k, v in attrs.items()},
    }


async def subscribe(hub: httpx.AsyncClient, url: str, **members: Any) -> None:
    """A subscription to ParkingSpots with these members."""
    body = {
        "type": "Subscription",
        "entities": [{"type": "ParkingSpot"}],
        "notification": {"endpoint": {"uri": url}},
        **members,
    }
    assert (await hub.post(f"{BASE}/subscriptions", json=body)).status_code == 201


async def test_a_replace_that_updates_and_drops_is_notified_once_per_trigger(
    hub: httpx.AsyncClient, servers: ServerThread
) -> None:
    """PUT: status updated, note dropped; asked for both, the receiver hears of both."""
    rec = servers.receiver()
    await create(hub, spot(status="occupied", note="kerb"))
    await subscribe(hub, rec.url(), notificationTrigger=["attributeUpdated", "attributeDeleted"])
    resp = await hub.put(f"{BASE}/entities/{EID}", json=spot(status="free"))
    assert resp.status_code == 204, resp.text
    await wait_for(lambda: len(rec.received()) >= 2, timeout=5, what="two notifications")
    reasons = [r.body["triggerReason"] for r in rec.received()]
    assert reasons == ["attributeUpdated", "attributeDeleted"]
    for r in rec.received():
        (notified,) = r.body["data"]
        assert notified["status"]["value"] == "free"
        assert notified["note"]["value"] == "urn:ngsi-ld:null"


async def test_one_trigger_asked_one_notification(
    hub: httpx.AsyncClient, servers: ServerThread
) -> None:
    """Only the triggers a subscription asks for are notified: with the default ones
    (attributeCreated, attributeUpdated) the same PUT is one notification, as before."""
    rec, deleted = servers.receiver(), servers.receiver()
    await create(hub, spot(status="occupied", note="kerb"))
    await subscribe(hub, rec.url())
    await subscribe(hub, deleted.url(), notificationTrigger=["attributeDeleted"])
    resp = await hub.put(f"{BASE}/entities/{EID}", json=spot(status="free"))
    assert resp.status_code == 204, resp.text
    await wait_for(lambda: rec.received() and deleted.received(), timeout=5, what="both")
    assert await _settled(rec) == ["attributeUpdated"]
    assert await _settled(deleted) == ["attributeDeleted"]


async def test_a_throttled_subscription_gets_one_notification_of_a_change(
    hub: httpx.AsyncClient, servers: ServerThread
) -> None:
    """Two notifications of one change at once would break throttling (the least time
    between two notifications): a throttled subscription gets the first trigger's."""
    rec = servers.receiver()
    await create(hub, spot(status="occupied", note="kerb"))
    await subscribe(
        hub,
        rec.url(),
        notificationTrigger=["attributeUpdated", "attributeDeleted"],
        throttling=60,
    )
    resp = await hub.put(f"{BASE}/entities/{EID}", json=spot(status="free"))
    assert resp.status_code == 204, resp.text
    await wait_for(lambda: rec.received(), timeout=5, what="a notification")
    assert await _settled(rec) == ["attributeUpdated"]


async def _settled(rec: Any) -> list[str]:
    """The triggerReasons a receiver got, once a moment passed with nothing more."""
    await asyncio.sleep(0.5)
    return [r.body["triggerReason"] for r in rec.received()]
