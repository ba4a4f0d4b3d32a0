"""`@id` and `@type` in entity writes (a probe's finding, 2026-12-07): the core context makes
`id` and `type` their aliases, and create read either, but a merge, an append and an update
dropped `@type` with a 204, a PUT whose `@id` named another entity replaced the one in the
path, and a batch merge took an item naming itself by `@id` for one without an id."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, get_entity, problem

EID = "urn:ngsi-ld:Sensor:alias"
OPS = f"{BASE}/entityOperations"


async def _sensor(client: httpx.AsyncClient) -> None:
    body = {"id": EID, "type": "Sensor", "speed": {"type": "Property", "value": 1}}
    assert (await client.post(f"{BASE}/entities", json=body)).status_code == 201


async def _types(client: httpx.AsyncClient) -> list[str]:
    types = (await get_entity(client, EID))["type"]
    return types if isinstance(types, list) else [types]


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", ""), ("POST", "/attrs"), ("PATCH", "/attrs")],
    ids=["merge", "append", "update"],
)
async def test_at_type_adds_a_type_as_type_does(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await _sensor(client)
    url = f"{BASE}/entities/{EID}{path}"
    resp = await client.request(method, url, json={"@type": "Camera", "speed": 2})
    assert resp.status_code == 204, resp.text
    assert await _types(client) == ["Sensor", "Camera"]


async def test_put_naming_another_entity_by_at_id_is_refused(client: httpx.AsyncClient) -> None:
    await _sensor(client)
    resp = await client.put(
        f"{BASE}/entities/{EID}", json={"@id": "urn:ngsi-ld:Sensor:other", "@type": "Camera"}
    )
    problem(resp, 400, "BadRequestData")
    entity = await get_entity(client, EID)
    assert entity["type"] == "Sensor" and entity["speed"]["value"] == 1, entity


async def test_put_with_at_type_replaces_the_types(client: httpx.AsyncClient) -> None:
    await _sensor(client)
    resp = await client.put(f"{BASE}/entities/{EID}", json={"@id": EID, "@type": "Camera"})
    assert resp.status_code == 204, resp.text
    assert await get_entity(client, EID) == {"id": EID, "type": "Camera"}


@pytest.mark.parametrize(
    ("op", "item"),
    [
        ("merge", {"@id": EID, "@type": "Camera", "speed": 3}),
        ("update", {"@id": EID, "@type": "Camera", "speed": 3}),
        ("upsert?options=update", {"@id": EID, "@type": "Camera", "speed": 3}),
    ],
)
async def test_batch_items_may_name_themselves_by_at_id(
    client: httpx.AsyncClient, op: str, item: dict[str, Any]
) -> None:
    await _sensor(client)
    resp = await client.post(f"{OPS}/{op}", json=[item])
    assert resp.status_code == 204, resp.text
    entity = await get_entity(client, EID)
    assert entity["speed"]["value"] == 3 and "Camera" in entity["type"], entity


@pytest.mark.parametrize(
    "body",
    [
        {"id": EID, "@id": "urn:ngsi-ld:Sensor:other", "type": "Sensor"},
        {"id": EID, "type": "Sensor", "@type": "Camera"},
    ],
    ids=["id", "type"],
)
async def test_both_spellings_with_different_values_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    detail = problem(await client.post(f"{BASE}/entities", json=body), 400, "BadRequestData")
    assert "alias" in detail["detail"], detail
    assert (await client.get(f"{BASE}/entities/{EID}")).status_code == 404
    await _sensor(client)
    problem(await client.patch(f"{BASE}/entities/{EID}", json=body), 400, "BadRequestData")
    assert await _types(client) == ["Sensor"]


async def test_a_batch_error_names_the_item_by_its_at_id(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{OPS}/update", json=[{"@id": EID, "@type": "Sensor", "a": 1}])
    assert resp.status_code == 207, resp.text
    (error,) = resp.json()["errors"]
    assert error["entityId"] == EID and error["error"]["status"] == 404, error
