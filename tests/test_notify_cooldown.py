"""endpoint.cooldown (5.2.15): after a failed notification, nothing is sent to the endpoint
until the cooldown has passed; notifications due meanwhile are not sent, nor are retries
that would fall within it."""

from __future__ import annotations

import asyncio

import httpx

from conftest import BASE, create
from receivers import Receiver, wait_for

EID = "urn:ngsi-ld:Room:cool"
SID = "urn:ngsi-ld:Subscription:cool"


async def patch(hub: httpx.AsyncClient, value: int) -> None:
    resp = await hub.post(
        f"{BASE}/entities/{EID}/attrs", json={"t": {"type": "Property", "value": value}}
    )
    assert resp.status_code in (204, 207), resp.text


async def test_nothing_is_sent_within_the_cooldown_after_a_failure(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.status["/notify"] = 500
    body = {
        "id": SID,
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "notification": {"endpoint": {"uri": receiver.url(), "cooldown": 2500}},
    }
    assert (await hub.post(f"{BASE}/subscriptions", json=body)).status_code == 201
    await create(hub, {"id": EID, "type": "Room", "t": {"type": "Property", "value": 0}})
    await wait_for(lambda: receiver.received(), what="the first, failed, notification")
    await patch(hub, 1)  # due within the cooldown: not sent
    await asyncio.sleep(1.6)  # the first retry (after 1 s) falls within it too
    assert len(receiver.received()) == 1, [r.body["data"][0]["t"] for r in receiver.received()]
    await asyncio.sleep(1.2)  # the cooldown has passed
    receiver.status["/notify"] = 200
    await patch(hub, 2)
    got = await wait_for(lambda: len(receiver.received()) >= 2 and receiver.received())
    assert got[1].body["data"][0]["t"]["value"] == 2
    sub = (await hub.get(f"{BASE}/subscriptions/{SID}")).json()["notification"]
    assert sub["timesSent"] == 2 and sub["timesFailed"] == 1 and sub["status"] == "ok"
    health = (await hub.get("/health")).json()["notifications"]
    assert health["cooldownSkipped"] >= 1, health
