"""What a PATCH of a source or device writes to its entities: nothing when only the record
changed (no history instance, no notification), and otherwise slices with turns between."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api import commit
from conftest import BASE
from iot_support import IOT, provision
from receivers import Receiver, wait_for

KEY = "record-key-0123456789"
STATIC = {"owner": {"type": "Property", "value": "city"}}


async def names(client: httpx.AsyncClient, eid: str) -> list[Any]:
    """The values of the temporal `owner` instances of one entity."""
    resp = await client.get(f"{BASE}/temporal/entities/{eid}", params={"attrs": "owner"})
    assert resp.status_code == 200, resp.text
    return [i["value"] for i in resp.json().get("owner", [])]


async def patch(client: httpx.AsyncClient, kind: str, rid: str, body: dict[str, Any]) -> None:
    resp = await client.patch(f"{IOT}/{kind}/{rid}", json=body)
    assert resp.status_code == 200, resp.text


async def test_a_record_only_change_writes_no_entity(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A description, key or protocol change of a device or of its source leaves the entity
    alone: a PATCH wrote a new instance of every static attribute and notified every
    subscription watching them."""
    await provision(
        hub,
        {"id": "meters", "entityType": "Meter", "apikey": KEY, "mapping": {"static": STATIC}},
        kind="sources",
    )
    await provision(hub, {"id": "m1", "source": "meters"})
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Meter"}],
        "watchedAttributes": ["owner"],
        "notification": {"endpoint": {"uri": receiver.url()}},
    }
    assert (await hub.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
    eid = "urn:ngsi-ld:Meter:m1"
    assert await names(hub, eid) == ["city"]
    await patch(hub, "devices", "m1", {"description": "in the basement"})
    await patch(hub, "devices", "m1", {"protocol": "http", "apikey": "other-key-0123456789"})
    await patch(hub, "sources", "meters", {"description": "all meters"})
    await patch(hub, "sources", "meters", {"apikey": "new-source-key-0123"})
    assert await names(hub, eid) == ["city"]
    # a change of a static attribute is written, and notified: the one notification
    changed = {"static": {"owner": {"type": "Property", "value": "utility"}}}
    await patch(hub, "sources", "meters", {"mapping": changed})
    await wait_for(lambda: receiver.total() >= 1, what="the notification of the change")
    assert await names(hub, eid) == ["city", "utility"]
    assert [n.body["data"][0]["owner"]["value"] for n in receiver.received()] == ["utility"]


@pytest.fixture
def slice2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit, "SLICE", 2)


@pytest.mark.usefixtures("slice2")
async def test_a_source_change_writes_its_entities_in_slices(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """The entities of a source's devices are written a slice at a time, each its own job
    with turns of the loop between (one job for 5,000 devices held every other request for
    seconds), and the record with the last: a read sent during the first slice is answered
    before the last one runs."""
    await provision(
        client,
        {"id": "meters", "entityType": "Meter", "apikey": KEY, "mapping": {"static": STATIC}},
        kind="sources",
    )
    for n in range(5):
        await provision(client, {"id": f"m{n}", "source": "meters"})
    svc = app.state.entities
    real = svc.batch_upsert
    slices: list[int] = []
    read: list[asyncio.Task[httpx.Response]] = []
    seen: list[bool] = []

    def spying(tenant: str, items: Any, *args: Any, **kwargs: Any) -> Any:
        if not read:
            task = client.get(f"{BASE}/entities/urn:ngsi-ld:Meter:m0")
            read.append(asyncio.get_running_loop().create_task(task))
        seen.append(read[0].done())
        slices.append(len(items))
        return real(tenant, items, *args, **kwargs)

    svc.batch_upsert = spying
    changed = {"static": {"owner": {"type": "Property", "value": "utility"}}}
    await patch(client, "sources", "meters", {"mapping": changed})
    assert slices == [2, 2, 1]
    assert seen[0] is False and seen[-1] is True, "the read waited for every slice"
    assert (await read[0]).status_code == 200
    for n in range(5):
        assert await names(client, f"urn:ngsi-ld:Meter:m{n}") == ["city", "utility"]
    resp = await client.get(f"{IOT}/sources/meters")
    assert resp.json()["mapping"] == changed


@pytest.mark.parametrize("kind", ["devices", "sources"])
async def test_a_patch_that_changes_nothing_keeps_modified_at(
    client: httpx.AsyncClient, kind: str
) -> None:
    """`cityhub iot devices update d1` without flags (a PATCH of {}) or one that repeats the
    stored values changed nothing but modifiedAt, which an integrator reads as a change."""
    body = {"id": "same-1", "entityType": "Meter", "description": "hall meter"}
    await provision(client, body, kind=kind)
    before = (await client.get(f"{IOT}/{kind}/same-1")).json()
    for patch in ({}, {"description": "hall meter"}, {"entityType": "Meter"}):
        resp = await client.patch(f"{IOT}/{kind}/same-1", json=patch)
        assert resp.status_code == 200, resp.text
        assert resp.json() == before
    changed = await client.patch(f"{IOT}/{kind}/same-1", json={"description": "new"})
    assert changed.json()["modifiedAt"] > before["modifiedAt"]
