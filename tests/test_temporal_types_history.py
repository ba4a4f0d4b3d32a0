"""A temporal entity's types are every type its entity has had (decision 032): a temporal
query by a type the entity held finds the history it recorded then, however the entity's
types changed (a replace, a batch upsert, a merge, a delete and a new create)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE

EID = "urn:ngsi-ld:Vehicle:ty1"


def speed(n: int) -> dict[str, Any]:
    return {"type": "Property", "value": n, "observedAt": f"2020-01-0{n}T00:00:00Z"}


async def _by_type(client: httpx.AsyncClient, typ: str) -> list[list[Any]]:
    """The speed values each temporal entity of `typ` shows."""
    params = {"type": typ, "options": "temporalValues", "attrs": "speed"}
    resp = await client.get(f"{BASE}/temporal/entities", params=params)
    assert resp.status_code == 200, resp.text
    return [[v[0] for v in e["speed"]["values"]] for e in resp.json()]


async def _ok(resp: Any) -> None:
    assert resp.status_code in (201, 204), resp.text


async def _retype(client: httpx.AsyncClient, how: str, typ: str, n: int) -> None:
    body = {"type": typ, "speed": speed(n)}
    if how == "replace":
        await _ok(await client.put(f"{BASE}/entities/{EID}", json=body))
    elif how == "upsert":
        batch = [{"id": EID, **body}]
        params = {"options": "replace"}
        await _ok(await client.post(f"{BASE}/entityOperations/upsert", params=params, json=batch))
    else:  # delete the entity and create it anew under another type
        await _ok(await client.delete(f"{BASE}/entities/{EID}"))
        await _ok(await client.post(f"{BASE}/entities", json={"id": EID, **body}))


@pytest.mark.parametrize("how", ["replace", "upsert", "recreate"])
async def test_a_query_by_a_former_type_still_finds_the_history(
    client: httpx.AsyncClient, how: str
) -> None:
    """The entity's new types replaced the temporal entity's: type=Car then found nothing,
    not even the speed recorded while it was a Car."""
    create = {"id": EID, "type": "Car", "speed": speed(1)}
    await _ok(await client.post(f"{BASE}/entities", json=create))
    await _retype(client, how, "Truck", 2)
    car, truck = await _by_type(client, "Car"), await _by_type(client, "Truck")
    assert car == truck and car and car[0][:2] == [1, 2], (car, truck)
    resp = await client.get(f"{BASE}/temporal/entities/{EID}")
    assert resp.json()["type"] == ["Car", "Truck"], resp.text


async def test_types_gained_by_a_merge_add_to_the_history(client: httpx.AsyncClient) -> None:
    await _ok(
        await client.post(f"{BASE}/entities", json={"id": EID, "type": "Car", "speed": speed(1)})
    )
    merge = {"type": ["Car", "Taxi"], "speed": speed(2)}
    await _ok(await client.patch(f"{BASE}/entities/{EID}", json=merge))
    assert await _by_type(client, "Car") == await _by_type(client, "Taxi") == [[1, 2]]


async def test_the_current_entity_keeps_only_its_own_types(client: httpx.AsyncClient) -> None:
    """Only the history remembers: GET /entities and its type queries follow the entity."""
    await _ok(
        await client.post(f"{BASE}/entities", json={"id": EID, "type": "Car", "speed": speed(1)})
    )
    await _retype(client, "replace", "Truck", 2)
    assert (await client.get(f"{BASE}/entities/{EID}")).json()["type"] == "Truck"
    resp = await client.get(f"{BASE}/entities", params={"type": "Car"})
    assert resp.json() == [], resp.text


# probe temporal.md, finding 4: POST /temporal/entities/{id}/attrs with a `type` answered 204
# and dropped it; the entity append (5.6.3) adds the types a fragment names, and so does a
# second POST /temporal/entities, so the temporal append adds them too (decision 101)
@pytest.mark.parametrize("member", ["type", "@type"])
@pytest.mark.parametrize("with_attrs", [True, False])
async def test_a_temporal_append_adds_the_types_it_names(
    client: httpx.AsyncClient, member: str, with_attrs: bool
) -> None:
    create = {"id": EID, "type": "Car", "speed": [speed(1)]}
    await _ok(await client.post(f"{BASE}/temporal/entities", json=create))
    body: dict[str, Any] = {member: ["Truck", "Car"]}
    if with_attrs:
        body["speed"] = [speed(2)]
    await _ok(await client.post(f"{BASE}/temporal/entities/{EID}/attrs", json=body))
    resp = await client.get(f"{BASE}/temporal/entities/{EID}")
    assert resp.json()["type"] == ["Car", "Truck"], resp.text
    assert await _by_type(client, "Truck") == [[1, 2] if with_attrs else [1]]


async def test_a_temporal_append_s_bad_type_stores_nothing(client: httpx.AsyncClient) -> None:
    create = {"id": EID, "type": "Car", "speed": [speed(1)]}
    await _ok(await client.post(f"{BASE}/temporal/entities", json=create))
    for bad in ([], "urn:ngsi-ld:null", 5):
        body = {"type": bad, "speed": [speed(2)]}
        resp = await client.post(f"{BASE}/temporal/entities/{EID}/attrs", json=body)
        assert resp.status_code == 400, resp.text
    assert await _by_type(client, "Car") == [[1]]
