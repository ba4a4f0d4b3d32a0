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
