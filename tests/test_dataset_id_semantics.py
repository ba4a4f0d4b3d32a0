"""What datasetId means beside the other parameters, as the README states it: on a read it
picks the instances shown and selects no entity; on an attribute DELETE, deleteAll=true
deletes every instance, a datasetId beside it included (the spec: "otherwise", only the
instance the datasetId names)."""

from __future__ import annotations

import httpx
import pytest

from conftest import BASE, create

EID = "urn:ngsi-ld:Sensor:ds"
DS = "urn:ngsi-ld:Dataset:a"


@pytest.fixture
async def sensor(client: httpx.AsyncClient) -> None:
    temp = [
        {"type": "Property", "value": 1, "observedAt": "2024-01-01T00:00:00Z"},
        {"type": "Property", "value": 2, "observedAt": "2024-01-01T00:00:00Z", "datasetId": DS},
    ]
    await create(client, {"id": EID, "type": "Sensor", "temp": temp})


async def test_a_dataset_id_no_instance_has_shows_the_entity_bare(
    client: httpx.AsyncClient, sensor: None
) -> None:
    other = {"datasetId": "urn:ngsi-ld:Dataset:zz"}
    one = await client.get(f"{BASE}/entities/{EID}", params=other)
    assert one.status_code == 200 and one.json() == {"id": EID, "type": "Sensor"}
    many = await client.get(f"{BASE}/entities", params={"type": "Sensor", "attrs": "temp", **other})
    assert many.json() == [{"id": EID, "type": "Sensor"}]
    shown = await client.get(f"{BASE}/entities/{EID}", params={"datasetId": DS})
    assert shown.json()["temp"]["value"] == 2


@pytest.mark.parametrize("temporal", [False, True], ids=["entity", "temporal"])
async def test_delete_all_wins_over_a_dataset_id(
    client: httpx.AsyncClient, sensor: None, temporal: bool
) -> None:
    prefix = f"{BASE}/temporal/entities" if temporal else f"{BASE}/entities"
    resp = await client.delete(
        f"{prefix}/{EID}/attrs/temp", params={"deleteAll": "true", "datasetId": DS}
    )
    assert resp.status_code == 204, resp.text
    after = await client.get(f"{prefix}/{EID}")
    assert "temp" not in after.json(), after.json()
