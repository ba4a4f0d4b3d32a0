"""An attribute whose entity writes changed its type (a Property replaced by a Relationship)
keeps each type's instances apart in temporalValues: one record per type (and datasetId),
so a Relationship's object is never shown as a Property's value."""

from __future__ import annotations

import httpx
import pytest

from conftest import BASE, get_temporal

EID = "urn:ngsi-ld:Mixed:1"


async def _property_then_relationship(client: httpx.AsyncClient) -> None:
    body = {"id": EID, "type": "M", "x": {"type": "Property", "value": 5}}
    assert (await client.post(f"{BASE}/entities", json=body)).status_code == 201
    rel = {"type": "Relationship", "object": "urn:a:b"}
    resp = await client.put(f"{BASE}/entities/{EID}/attrs/x", json=rel)
    assert resp.status_code == 204, resp.text


async def test_temporal_values_give_each_type_its_record(client: httpx.AsyncClient) -> None:
    """It said {"type": "Property", "values": [[5, t], ["urn:a:b", t]]}."""
    await _property_then_relationship(client)
    body = await get_temporal(client, EID, options="temporalValues")
    records = body["x"]
    assert isinstance(records, list), records
    assert [
        (r["type"], [p[0] for p in r.get("values", r.get("objects", []))]) for r in records
    ] == [
        ("Property", [5]),
        ("Relationship", ["urn:a:b"]),
    ]
    assert "objects" in records[1]


async def test_one_type_per_dataset_keeps_one_record_each(client: httpx.AsyncClient) -> None:
    """The split is by type within a datasetId: an attribute of one type is one record."""
    body = {"id": EID, "type": "M", "x": {"type": "Property", "value": 1}}
    assert (await client.post(f"{BASE}/entities", json=body)).status_code == 201
    resp = await client.patch(f"{BASE}/entities/{EID}/attrs/x", json={"value": 2})
    assert resp.status_code == 204, resp.text
    out = await get_temporal(client, EID, options="temporalValues")
    assert out["x"]["type"] == "Property"
    assert [p[0] for p in out["x"]["values"]] == [1, 2]


async def test_aggregated_values_give_each_type_its_series(client: httpx.AsyncClient) -> None:
    """It said {"type": "Property", "totalCount": [[2, ...]]}: the Relationship's instance
    counted with the Property's, under the first type, as temporalValues no longer does."""
    await _property_then_relationship(client)
    body = await get_temporal(client, EID, format="aggregatedValues", aggrMethods="totalCount,sum")
    records = body["x"]
    assert isinstance(records, list), records
    assert [(r["type"], r["totalCount"][0][0], r["sum"][0][0]) for r in records] == [
        ("Property", 1, 5),
        ("Relationship", 1, None),
    ]


async def test_aggregation_of_one_type_is_one_record(client: httpx.AsyncClient) -> None:
    """An attribute that kept its type is one series, as before."""
    body = {"id": EID, "type": "M", "x": {"type": "Property", "value": 1}}
    assert (await client.post(f"{BASE}/entities", json=body)).status_code == 201
    resp = await client.patch(f"{BASE}/entities/{EID}/attrs/x", json={"value": 2})
    assert resp.status_code == 204, resp.text
    out = await get_temporal(client, EID, format="aggregatedValues", aggrMethods="totalCount")
    assert out["x"]["type"] == "Property"
    assert out["x"]["totalCount"][0][0] == 2


async def test_a_window_holding_one_type_names_that_type(client: httpx.AsyncClient) -> None:
    """A window past the PUT holds only the Relationship: it was labelled Property, the
    attribute's first type."""
    await _property_then_relationship(client)
    full = await get_temporal(client, EID, options="temporalValues")
    since = full["x"][1]["objects"][0][1]
    body = await get_temporal(
        client,
        EID,
        format="aggregatedValues",
        aggrMethods="totalCount",
        timerel="after",
        timeAt=since,
        timeproperty="modifiedAt",
    )
    assert body["x"]["type"] == "Relationship", body
    assert body["x"]["totalCount"][0][0] == 1


@pytest.mark.parametrize("period", [None, "PT1H", "P1M"])
async def test_methods_on_numbers_alone_split_types_too(
    client: httpx.AsyncClient, period: str | None
) -> None:
    """Without totalCount or distinctCount (the methods that read numbers only), the
    Relationship's instance is still a series of its own, whole range, periods or months."""
    await _property_then_relationship(client)
    extra = {"aggrPeriodDuration": period} if period else {}
    body = await get_temporal(
        client, EID, format="aggregatedValues", aggrMethods="max,avg", **extra
    )
    records = body["x"]
    assert isinstance(records, list), records
    assert [(r["type"], r["max"][0][0], r["avg"][0][0]) for r in records] == [
        ("Property", 5, 5),
        ("Relationship", None, None),
    ]


async def test_a_window_of_numbers_before_a_relationship_is_one_series(
    client: httpx.AsyncClient,
) -> None:
    """A window that ends before the PUT holds the Property's numbers alone: one record."""
    body = {"id": EID, "type": "M", "x": {"type": "Property", "value": 5}}
    assert (await client.post(f"{BASE}/entities", json=body)).status_code == 201
    resp = await client.patch(f"{BASE}/entities/{EID}/attrs/x", json={"value": 7})
    assert resp.status_code == 204, resp.text
    rel = {"type": "Relationship", "object": "urn:a:b"}
    resp = await client.put(f"{BASE}/entities/{EID}/attrs/x", json=rel)
    assert resp.status_code == 204, resp.text
    full = await get_temporal(client, EID, options="temporalValues")
    put_at = full["x"][1]["objects"][0][1]
    out = await get_temporal(
        client,
        EID,
        format="aggregatedValues",
        aggrMethods="max,min",
        aggrPeriodDuration="PT1H",
        timerel="before",
        timeAt=put_at,
    )
    assert out["x"]["type"] == "Property", out
    assert (out["x"]["max"][0][0], out["x"]["min"][0][0]) == (7, 5)
