"""Deleting an attribute is a change too: it is recorded with deletedAt in the history."""

from __future__ import annotations

import httpx

BASE = "/ngsi-ld/v1"
ENTITY = {
    "id": "urn:ngsi-ld:Vehicle:d1",
    "type": "Vehicle",
    "fuelLevel": {"type": "Property", "value": 40, "observedAt": "2024-01-01T10:00:00Z"},
    "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
}


async def test_deleted_attribute_leaves_a_deletedAt_instance(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{BASE}/entities", json=ENTITY)).status_code == 201
    resp = await client.delete(f"{BASE}/entities/{ENTITY['id']}/attrs/fuelLevel")
    assert resp.status_code == 204, resp.text
    resp = await client.get(
        f"{BASE}/temporal/entities/{ENTITY['id']}", params={"timeproperty": "deletedAt"}
    )
    assert resp.status_code == 200, resp.text
    fuel = resp.json()["fuelLevel"]
    assert len(fuel) == 1 and fuel[0]["value"] == "urn:ngsi-ld:null", fuel
    assert "deletedAt" in fuel[0]


async def test_merge_null_is_recorded_as_a_deletion(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{BASE}/entities", json=ENTITY)).status_code == 201
    resp = await client.patch(f"{BASE}/entities/{ENTITY['id']}", json={"owner": "urn:ngsi-ld:null"})
    assert resp.status_code == 204, resp.text
    resp = await client.get(
        f"{BASE}/temporal/entities/{ENTITY['id']}", params={"timeproperty": "deletedAt"}
    )
    owner = resp.json()["owner"]
    assert owner[0]["object"] == "urn:ngsi-ld:null" and "deletedAt" in owner[0], owner
    current = await client.get(f"{BASE}/entities/{ENTITY['id']}")
    assert "owner" not in current.json()


async def test_partial_attribute_update_to_null_is_recorded_as_a_deletion(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(f"{BASE}/entities", json=ENTITY)).status_code == 201
    resp = await client.patch(
        f"{BASE}/entities/{ENTITY['id']}/attrs/fuelLevel", json={"value": "urn:ngsi-ld:null"}
    )
    assert resp.status_code == 204, resp.text
    resp = await client.get(
        f"{BASE}/temporal/entities/{ENTITY['id']}", params={"timeproperty": "deletedAt"}
    )
    (fuel,) = resp.json()["fuelLevel"]
    assert fuel["value"] == "urn:ngsi-ld:null" and "deletedAt" in fuel, fuel
    assert "fuelLevel" not in (await client.get(f"{BASE}/entities/{ENTITY['id']}")).json()


async def test_replace_and_delete_record_what_they_removed(client: httpx.AsyncClient) -> None:
    """PUT, a replacing upsert and an entity DELETE dropped attributes from the entity with
    no deletedAt instance in its history, unlike every other way of deleting one."""
    eid = ENTITY["id"]
    assert (await client.post(f"{BASE}/entities", json=ENTITY)).status_code == 201
    resp = await client.put(f"{BASE}/entities/{eid}", json={"type": "Vehicle", "speed": 5})
    assert resp.status_code == 204, resp.text

    async def deleted() -> list[str]:
        resp = await client.get(
            f"{BASE}/temporal/entities/{eid}", params={"timeproperty": "deletedAt"}
        )
        assert resp.status_code == 200, resp.text
        return sorted(k for k in resp.json() if k not in ("id", "type"))

    assert await deleted() == ["fuelLevel", "owner"]
    upsert = [{"id": eid, "type": "Vehicle", "fuelLevel": 3}]
    assert (await client.post(f"{BASE}/entityOperations/upsert", json=upsert)).status_code == 204
    assert await deleted() == ["fuelLevel", "owner", "speed"]  # replaced away by the upsert
    assert (await client.delete(f"{BASE}/entities/{eid}")).status_code == 204
    resp = await client.get(f"{BASE}/temporal/entities/{eid}", params={"timeproperty": "deletedAt"})
    fuel = resp.json()["fuelLevel"]
    assert len(fuel) == 2 and all(i["value"] == "urn:ngsi-ld:null" for i in fuel), fuel


async def test_deleted_at_is_compared_to_the_microsecond(client: httpx.AsyncClient) -> None:
    """deletedAt went through julianday(), which keeps milliseconds: `after` the instance's
    own deletedAt left it out, and `before` it took it in."""
    eid = ENTITY["id"]
    assert (await client.post(f"{BASE}/entities", json=ENTITY)).status_code == 201
    assert (await client.delete(f"{BASE}/entities/{eid}/attrs/fuelLevel")).status_code == 204
    url = f"{BASE}/temporal/entities/{eid}"
    [gone] = (await client.get(url, params={"timeproperty": "deletedAt"})).json()["fuelLevel"]
    at = gone["deletedAt"]
    for timerel, found in (("after", True), ("before", False)):
        params = {"timeproperty": "deletedAt", "timerel": timerel, "timeAt": at}
        body = (await client.get(url, params=params)).json()
        assert ("fuelLevel" in body) is found, (timerel, at, body)
