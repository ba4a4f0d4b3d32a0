"""The createdAt axis of instances an entity write recorded, as the README states it: an
instance is the attribute as it was, and its createdAt is the attribute's (4.8: when it
entered the system), which an update keeps; what was recorded after a time is asked on the
modifiedAt axis. An instance sent through /temporal is created by that write."""

from __future__ import annotations

from datetime import timedelta

import httpx

from cityhub.ngsild.timeutil import format_ts, parse_ts
from conftest import BASE, create

EID = "urn:ngsi-ld:Sensor:S10"
T = f"{BASE}/temporal/entities/{EID}"


async def test_entity_writes_share_the_attributes_created_at(client: httpx.AsyncClient) -> None:
    await create(client, {"id": EID, "type": "Sensor", "temp": {"type": "Property", "value": 1}})
    first = (await client.get(T, params={"options": "sysAttrs"})).json()["temp"][0]
    for value in (2, 3):
        resp = await client.patch(f"{BASE}/entities/{EID}/attrs/temp", json={"value": value})
        assert resp.status_code == 204, resp.text
    created = await client.get(T, params={"timeproperty": "createdAt", "options": "sysAttrs"})
    assert [(i["value"], i["createdAt"]) for i in created.json()["temp"]] == [
        (v, first["createdAt"]) for v in (1, 2, 3)
    ]
    later = format_ts(parse_ts(first["modifiedAt"]) + timedelta(microseconds=1))
    window = {"timerel": "after", "timeAt": later}
    on_created = await client.get(T, params={"timeproperty": "createdAt", **window})
    assert "temp" not in on_created.json()
    on_modified = await client.get(T, params={"timeproperty": "modifiedAt", **window})
    assert [i["value"] for i in on_modified.json()["temp"]] == [2, 3]
