"""A device's static attributes (its mapping's `static`) are on its entity whenever the device
writes it, also after the entity was deleted."""

from __future__ import annotations

import httpx

from conftest import BASE, get_entity
from iot_support import IOT, provision

EID = "urn:ngsi-ld:Sensor:s1"
MAPPING = {
    "attributes": {"v": {"name": "noise", "type": "number", "unitCode": "2N"}},
    "static": {
        "name": {"type": "Property", "value": "Market square noise sensor"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [8.4, 49.0]}},
    },
}


async def test_a_deleted_entity_comes_back_with_its_static_attributes(
    client: httpx.AsyncClient,
) -> None:
    body = {"id": "s1", "entityType": "Sensor", "protocol": "http", "mapping": MAPPING}
    key = (await provision(client, body))["apikey"]
    assert (await client.delete(f"{BASE}/entities/{EID}")).status_code == 204
    resp = await client.post(f"{IOT}/json", params={"k": key, "i": "s1"}, json={"v": 61})
    assert resp.status_code == 204, resp.text
    entity = await get_entity(client, EID)
    assert entity["noise"]["value"] == 61
    assert entity["name"]["value"] == "Market square noise sensor"
    assert entity["location"]["value"]["coordinates"] == [8.4, 49.0]
    # found where a map looks for it
    near = {"georel": "near;maxDistance==100", "geometry": "Point", "coordinates": "[8.4,49.0]"}
    resp = await client.get(f"{BASE}/entities", params={"type": "Sensor", **near})
    assert [e["id"] for e in resp.json()] == [EID]
    # a device that keeps writing its entity does not write them again
    resp = await client.post(f"{IOT}/json", params={"k": key, "i": "s1"}, json={"v": 62})
    assert resp.status_code == 204, resp.text
    resp = await client.get(f"{BASE}/temporal/entities/{EID}", params={"attrs": "name"})
    written = [i for i in resp.json()["name"] if i["value"] != "urn:ngsi-ld:null"]
    assert len(written) == 2  # at provisioning, and once after the deletion
