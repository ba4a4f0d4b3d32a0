"""Long reads run on reader threads: while one is still reading, the hub writes and answers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from conftest import BASE
from receivers import Receiver, wait_for

SENSOR = {
    "id": "urn:ngsi-ld:Sensor:s1",
    "type": "Sensor",
    "n": {"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"},
}
# Each read and the store method it ends in.
LONG_READS = [
    ("/entities?type=Sensor&q=n>0", "query"),
    ("/temporal/entities?type=Sensor", "temporal"),
    (
        "/temporal/entities?type=Sensor&options=aggregatedValues&aggrMethods=sum"
        "&aggrPeriodDuration=P1D",
        "aggregate",
    ),
    ("/attributes?details=true", "attribute_stats"),
    ("/types?details=true", "entity_types"),
    ("/attributes/n", "attribute_info"),
]


class Stall:
    """Wraps a store method so that its first call holds its thread until released."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.started = threading.Event()
        self.release = threading.Event()
        self.timed_out = False  # nobody released it: whoever would have was held up too

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.started.is_set():
            self.started.set()
            # on the event loop this holds every request for 10 s
            self.timed_out = not self.release.wait(10)
        return self.real(*args, **kwargs)


@pytest.mark.parametrize(("path", "method"), LONG_READS)
async def test_a_long_read_holds_up_no_other_request(
    app: Starlette,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    method: str,
) -> None:
    """A create, a read by id, an update and another query all answer while the long read is
    still inside the store; then it answers in full."""
    r = await client.post(f"{BASE}/entities", json=SENSOR)
    assert r.status_code == 201, r.text
    stall = Stall(getattr(app.state.store, method))
    monkeypatch.setattr(app.state.store, method, stall)

    long_read = asyncio.create_task(client.get(BASE + path))
    assert await asyncio.to_thread(stall.started.wait, 5)
    try:
        other = {**SENSOR, "id": "urn:ngsi-ld:Sensor:s2"}
        r = await client.post(f"{BASE}/entities", json=other)
        assert r.status_code == 201, r.text
        r = await client.patch(
            f"{BASE}/entities/{other['id']}/attrs", json={"n": {"type": "Property", "value": 7}}
        )
        assert r.status_code == 204, r.text
        r = await client.get(f"{BASE}/entities/{other['id']}", params={"options": "keyValues"})
        assert r.status_code == 200 and r.json()["n"] == 7
        r = await client.get(f"{BASE}/entities", params={"type": "Sensor", "q": "n==7"})
        assert [e["id"] for e in r.json()] == [other["id"]]
        assert not long_read.done()
    finally:
        stall.release.set()
    r = await long_read
    assert r.status_code == 200, r.text
    assert not stall.timed_out


async def test_errors_of_a_read_on_a_thread_are_problem_details(
    client: httpx.AsyncClient,
) -> None:
    """A query refused inside the reader thread still answers its NGSI-LD error."""
    r = await client.get(f"{BASE}/entities", params={"type": "Sensor", "q": "n>>1"})
    assert r.status_code == 400
    assert r.json()["type"].endswith("BadRequestData")
    r = await client.get(f"{BASE}/attributes/nothing")
    assert r.status_code == 404
    assert r.json()["type"].endswith("ResourceNotFound")


async def test_a_periodic_subscriptions_query_holds_up_no_request(
    app: Starlette,
    hub: httpx.AsyncClient,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A timeInterval subscription selects its entities with a query; while that query is
    still inside the store, writes and reads by id answer."""
    r = await hub.post(f"{BASE}/entities", json=SENSOR)
    assert r.status_code == 201, r.text
    stall = Stall(app.state.store.query)
    monkeypatch.setattr(app.state.store, "query", stall)
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "timeInterval": 1,
        "notification": {"endpoint": {"uri": receiver.url()}},
    }
    assert (await hub.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
    assert await asyncio.to_thread(stall.started.wait, 5)
    try:
        other = {**SENSOR, "id": "urn:ngsi-ld:Sensor:s2"}
        assert (await hub.post(f"{BASE}/entities", json=other)).status_code == 201
        r = await hub.get(f"{BASE}/entities/{other['id']}")
        assert r.status_code == 200
        assert not receiver.received()
    finally:
        stall.release.set()
    await wait_for(lambda: receiver.received(), timeout=5, what="the periodic notification")
    assert not stall.timed_out, "the requests above waited for the periodic query"


@pytest.mark.parametrize("join", ["inline", "flat"])
async def test_a_join_on_one_entity_holds_up_no_other_request(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, join: str
) -> None:
    """GET /entities/{id} with a join fetches and renders linked entities (a 24 MB join held
    /health 4.9 s on the loop): it runs on a reader thread, as GET /entities does."""
    linking = {**SENSOR, "near": {"type": "Relationship", "object": "urn:ngsi-ld:Sensor:s3"}}
    linked = {**SENSOR, "id": "urn:ngsi-ld:Sensor:s3"}
    r = await client.post(f"{BASE}/entityOperations/create", json=[linking, linked])
    assert r.status_code == 201, r.text
    stall = Stall(app.state.store.query)  # the join's fetch of the linked entities
    monkeypatch.setattr(app.state.store, "query", stall)

    long_read = asyncio.create_task(
        client.get(f"{BASE}/entities/{SENSOR['id']}", params={"join": join})
    )
    assert await asyncio.to_thread(stall.started.wait, 5)
    try:
        r = await client.get(f"{BASE}/entities/{linked['id']}", params={"options": "keyValues"})
        assert r.status_code == 200 and r.json()["n"] == 1
        assert not long_read.done()
    finally:
        stall.release.set()
    r = await long_read
    assert r.status_code == 200, r.text
    assert not stall.timed_out
    if join == "inline":
        assert r.json()["near"]["entity"]["id"] == linked["id"]
    else:
        assert [e["id"] for e in r.json()] == [SENSOR["id"], linked["id"]]


async def test_a_joined_notification_is_rendered_off_the_loop(
    app: Starlette,
    hub: httpx.AsyncClient,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscription with a join fetches and renders linked entities for every change (a
    27.5 MB notification per one-string change held every request 2.5-5 s): that is done on
    a thread, whatever the size of the change."""
    linking = {**SENSOR, "near": {"type": "Relationship", "object": "urn:ngsi-ld:Sensor:s3"}}
    linked = {**SENSOR, "id": "urn:ngsi-ld:Sensor:s3"}
    r = await hub.post(f"{BASE}/entityOperations/create", json=[linking, linked])
    assert r.status_code == 201, r.text
    sub = {
        "type": "Subscription",
        "entities": [{"id": SENSOR["id"], "type": "Sensor"}],
        "notification": {"endpoint": {"uri": receiver.url()}, "join": "inline"},
    }
    assert (await hub.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
    stall = Stall(app.state.store.query)  # the join's fetch of the linked entities
    monkeypatch.setattr(app.state.store, "query", stall)
    r = await hub.patch(f"{BASE}/entities/{SENSOR['id']}/attrs/n", json={"value": 2})
    assert r.status_code == 204, r.text
    assert await asyncio.to_thread(stall.started.wait, 5)
    try:
        r = await hub.get(f"{BASE}/entities/{linked['id']}", params={"options": "keyValues"})
        assert r.status_code == 200 and r.json()["n"] == 1
        assert not receiver.received()
    finally:
        stall.release.set()
    got = await wait_for(lambda: receiver.received(), timeout=5, what="the joined notification")
    assert got[0].body["data"][0]["near"]["entity"]["id"] == linked["id"]
    assert not stall.timed_out, "the read above waited for the notification's rendering"
