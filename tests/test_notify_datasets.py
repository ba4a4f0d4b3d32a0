"""A subscription's datasetId selects the attribute instances it is about (4.5.5, 5.2.12):
a change to instances of other datasetIds triggers no attribute notification, as its
notification would show nothing that changed."""

from __future__ import annotations

from typing import Any

import httpx

from conftest import BASE, create
from receivers import Receiver, wait_for

EID = "urn:ngsi-ld:Sensor:ds"
ATTRS = f"{BASE}/entities/{EID}/attrs"


def instance(value: Any, dataset: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if dataset is not None:
        out["datasetId"] = dataset
    return out


async def subscribe(hub: httpx.AsyncClient, url: str, datasets: list[str]) -> None:
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notificationTrigger": ["attributeCreated", "attributeUpdated", "attributeDeleted"],
        "datasetId": datasets,
        "notification": {"endpoint": {"uri": url}},
    }
    resp = await hub.post(f"{BASE}/subscriptions", json=body)
    assert resp.status_code == 201, resp.text


async def test_changes_to_other_datasets_do_not_notify(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(
        hub, {"id": EID, "type": "Sensor", "a": [instance(1, "urn:ds:1"), instance(1, "urn:ds:2")]}
    )
    await subscribe(hub, receiver.url(), ["urn:ds:1"])
    for fragment in (
        {"a": instance(2, "urn:ds:2")},  # updated, another dataset
        {"a": instance(5, "urn:ds:3")},  # created, another dataset
        {"b": instance(5, None)},  # created, the default instance
    ):
        resp = await hub.post(ATTRS, json=fragment)
        assert resp.status_code in (204, 207), resp.text
    resp = await hub.delete(f"{ATTRS}/a", params={"datasetId": "urn:ds:3"})
    assert resp.status_code == 204, resp.text
    resp = await hub.post(ATTRS, json={"a": instance(7, "urn:ds:1")})  # the one it asked for
    assert resp.status_code in (204, 207), resp.text
    got = await wait_for(lambda: receiver.received(), what="the notification of urn:ds:1")
    first = got[0].body
    assert first["triggerReason"] == "attributeUpdated"
    assert first["data"][0]["a"] == {"type": "Property", "value": 7, "datasetId": "urn:ds:1"}


async def test_none_stands_for_the_default_instance(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(
        hub, {"id": EID, "type": "Sensor", "a": [instance(1, None), instance(1, "urn:ds:2")]}
    )
    await subscribe(hub, receiver.url(), ["@none"])
    resp = await hub.post(ATTRS, json={"a": instance(2, "urn:ds:2")})
    assert resp.status_code in (204, 207), resp.text
    resp = await hub.post(ATTRS, json={"a": instance(3, None)})
    assert resp.status_code in (204, 207), resp.text
    got = await wait_for(lambda: receiver.received(), what="the default instance's notification")
    assert got[0].body["data"][0]["a"] == {"type": "Property", "value": 3}
