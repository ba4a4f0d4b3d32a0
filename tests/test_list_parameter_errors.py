"""A list parameter with an empty item (`?datasetId=`, `?attrs=a,,b`) is a 400 that names
the parameter: it quoted only the value, so `?datasetId=` answered "empty item in list
parameter ''" and left the client to guess which parameter was meant (probe temporal.md)."""

from __future__ import annotations

import httpx
import pytest

from conftest import BASE, create, problem

EID = "urn:ngsi-ld:Lamp:1"

# (method, path, the other parameters it needs, the list parameter): every caller of params.csv
CASES = [
    ("GET", "/entities", "type=Lamp&", "options"),
    ("GET", "/entities", "type=Lamp&", "attrs"),
    ("GET", "/entities", "type=Lamp&", "datasetId"),
    ("GET", "/entities", "type=Lamp&", "orderBy"),
    ("GET", "/entities", "type=Lamp&q=level%3E0&", "expandValues"),
    ("GET", "/entities", "", "id"),
    ("GET", f"/entities/{EID}", "", "attrs"),
    ("DELETE", "/entities", "type=Lamp&", "drop"),
    ("DELETE", "/entities", "type=Lamp&", "keep"),
    ("GET", "/csourceRegistrations", "", "id"),
    ("GET", "/csourceRegistrations", "type=Lamp&", "attrs"),
    ("GET", "/temporal/entities", "type=Lamp&", "attrs"),
    ("GET", "/temporal/entities", "type=Lamp&", "datasetId"),
    ("GET", "/temporal/entities", "type=Lamp&", "options"),
    ("GET", f"/temporal/entities/{EID}", "", "aggrMethods"),
    ("GET", f"/temporal/entities/{EID}", "", "datasetId"),
]


@pytest.mark.parametrize("value", ["", "urn:a:1,,urn:a:2"])
@pytest.mark.parametrize(("method", "path", "others", "name"), CASES)
async def test_an_empty_list_item_is_refused_by_the_parameter_s_name(
    client: httpx.AsyncClient, method: str, path: str, others: str, name: str, value: str
) -> None:
    await create(client, {"id": EID, "type": "Lamp", "level": {"type": "Property", "value": 1}})
    resp = await client.request(method, f"{BASE}{path}?{others}{name}={value}")
    detail = problem(resp, 400)["detail"]
    assert name in detail, detail
    assert "empty" in detail, detail
    # a refused purge purged nothing
    assert (await client.get(f"{BASE}/entities/{EID}")).status_code == 200
