"""One attribute named twice in one body, by its term and by its IRI (a probe's finding F5,
2026-12-07): the second key overwrote the first, so a create answered 201 having lost data
and an update answered 207 with the wrong reason. JSON-LD expansion joins the two keys into
one attribute; the hub now does the same, and refuses two instances of one datasetId."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, create, get_entity, get_temporal, problem

EID = "urn:ngsi-ld:Thing:al"
IRI = "https://uri.etsi.org/ngsi-ld/default-context/a"
DS2 = {"type": "Property", "value": 2, "datasetId": "urn:ds:2"}


async def test_a_create_keeps_the_instances_of_both_keys(client: httpx.AsyncClient) -> None:
    await create(client, {"id": EID, "type": "T", "a": 1, IRI: DS2})
    assert (await get_entity(client, EID))["a"] == [{"type": "Property", "value": 1}, DS2]


async def test_a_temporal_create_keeps_the_instances_of_both_keys(
    client: httpx.AsyncClient,
) -> None:
    body = {"id": EID, "type": "T", "a": [{"type": "Property", "value": 1}], IRI: [DS2]}
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    values = [i["value"] for i in (await get_temporal(client, EID))["a"]]
    assert sorted(values) == [1, 2]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "", {"id": EID, "type": "T", "a": 1, IRI: 2}),
        ("POST", "/attrs", {"a": 1, IRI: 2}),
        ("PATCH", "/attrs", {"a": 5, IRI: "urn:ngsi-ld:null"}),
        ("PATCH", "/", {"a": 5, IRI: {"type": "Property", "value": 6}}),
    ],
)
async def test_both_keys_giving_one_instance_is_a_400_naming_them(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> None:
    """The update answered 207 "no such attribute to delete" and threw the 5 away."""
    if path:
        await create(client, {"id": "urn:ngsi-ld:Thing:x", "type": "T", "a": 0})
    url = f"{BASE}/entities" + (f"/urn:ngsi-ld:Thing:x{path.rstrip('/')}" if path else "")
    detail = problem(await client.request(method, url, json=body), 400, "BadRequestData")["detail"]
    assert "'a'" in detail and repr(IRI) in detail and "default instance" in detail, detail
    if path:
        assert (await get_entity(client, "urn:ngsi-ld:Thing:x"))["a"]["value"] == 0
