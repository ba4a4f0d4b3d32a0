"""An instance whose content is the NGSI-LD Null, sent through /temporal, is the record of a
deletion (4.5.7, 5.2.1; decision 059) and is stored as the hub stores its own: with a
deletedAt. Stored without one, it was a reading: counted by aggregation, matched by q, and
missing from the deletedAt axis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, problem

T = f"{BASE}/temporal/entities"
EID = "urn:ngsi-ld:Sensor:T5"
NULL = "urn:ngsi-ld:null"


def _reading(value: Any, hour: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Property",
        "value": value,
        "observedAt": f"2024-01-01T{hour:02d}:00:00Z",
        **extra,
    }


@pytest.fixture
async def imported(client: httpx.AsyncClient) -> None:
    """The probe's T:5: a reading, a deletion record with its deletedAt, a reading."""
    body = {
        "id": EID,
        "type": "Sensor",
        "temp": [
            _reading(1, 0),
            _reading(NULL, 1, deletedAt="2024-01-01T01:00:00Z"),
            _reading(3, 2),
        ],
    }
    assert (await client.post(T, json=body)).status_code == 201


async def test_the_record_keeps_its_deleted_at(client: httpx.AsyncClient, imported: None) -> None:
    resp = await client.get(f"{T}/{EID}")
    marker = resp.json()["temp"][1]
    assert (marker["value"], marker["deletedAt"]) == (NULL, "2024-01-01T01:00:00Z"), marker
    assert "deletedAt" not in resp.json()["temp"][0]
    on_axis = await client.get(f"{T}/{EID}", params={"timeproperty": "deletedAt"})
    assert [i["value"] for i in on_axis.json()["temp"]] == [NULL]


async def test_the_record_is_no_reading(client: httpx.AsyncClient, imported: None) -> None:
    aggr = {"options": "aggregatedValues", "aggrMethods": "totalCount,distinctCount,max"}
    resp = await client.get(f"{T}/{EID}", params=aggr)
    got = {m: resp.json()["temp"][m][0][0] for m in ("totalCount", "distinctCount", "max")}
    assert got == {"totalCount": 2, "distinctCount": 2, "max": 3}, resp.json()
    q = {"type": "Sensor", "q": f'temp=="{NULL}"', "options": "temporalValues"}
    assert (await client.get(T, params=q)).json() == []


@pytest.mark.parametrize(
    ("given", "deleted_at"),
    [
        ({"observedAt": "2024-01-01T05:00:00Z"}, "2024-01-01T05:00:00Z"),
        ({}, None),  # the time of the write, which is also its createdAt
    ],
    ids=["observedAt", "write-time"],
)
async def test_a_record_without_deleted_at_gets_one(
    client: httpx.AsyncClient, given: dict[str, str], deleted_at: str | None
) -> None:
    item = {"type": "Relationship", "object": NULL, **given}
    body = {"id": EID, "type": "Sensor", "owner": [item]}
    assert (await client.post(T, json=body)).status_code == 201
    [marker] = (await client.get(f"{T}/{EID}", params={"options": "sysAttrs"})).json()["owner"]
    assert marker["deletedAt"] == (deleted_at or marker["createdAt"]), marker


async def test_the_suites_upsert_with_a_deleted_instance(client: httpx.AsyncClient) -> None:
    """ETSI 5611_01_01: the record is legal temporal input (refusing it fails the suite), and
    a retrieval on observedAt shows it beside the reading."""
    first = {"id": EID, "type": "Vehicle", "speed": [_reading(1, 0)]}
    assert (await client.post(T, json=first)).status_code == 201
    second = {"id": EID, "type": ["Vehicle", "Truck"], "speed": [_reading(NULL, 3)]}
    assert (await client.post(T, json=second)).status_code == 204
    resp = await client.get(
        f"{T}/{EID}", params={"timerel": "before", "timeAt": "2030-01-01T00:00:00Z"}
    )
    assert [i["value"] for i in resp.json()["speed"]] == [1, NULL]
    assert resp.json()["speed"][1]["deletedAt"] == "2024-01-01T03:00:00Z"


async def test_a_deleted_at_that_is_no_time_is_400(client: httpx.AsyncClient) -> None:
    body = {"id": EID, "type": "Sensor", "temp": [_reading(NULL, 1, deletedAt="yesterday")]}
    err = problem(await client.post(T, json=body), 400, "BadRequestData")
    assert "deletedAt" in err["detail"], err
