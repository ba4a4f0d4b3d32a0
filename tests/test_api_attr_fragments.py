"""Attribute writes a prober got wrong (2026-12-06): null sub-attributes stored as markers,
type-less fragments changing an attribute's kind, the ignored `type` selector, attributes and
ids that hold an encoded '/', and sub-attributes without system times."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from conftest import BASE, create, get_entity, problem

EID = "urn:ngsi-ld:Building:b1"
NULL = "urn:ngsi-ld:null"
POINT = {"type": "Point", "coordinates": [127.0, 37.5]}
NEAR = {
    "type": "Building",
    "georel": "near;maxDistance==1000",
    "geometry": "Point",
    "coordinates": "[127.001,37.5011]",
    "geoproperty": "area",
}


def building(**attrs: Any) -> dict[str, Any]:
    return {"id": EID, "type": "Building", **attrs}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/attrs", {"p": {"type": "Property", "value": 2, "s": NULL}}),
        ("PATCH", "", {"q": {"type": "Property", "value": 1, "s": NULL}}),
        ("PATCH", "/attrs/p", {"value": 3, "t": {"type": "Property", "value": 4, "u": NULL}}),
    ],
    ids=["update", "merge-new-attribute", "partial-update-nested"],
)
async def test_a_null_sub_attribute_is_never_stored(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> None:
    """It was stored as {"null": true}; every later sysAttrs or concise read was a 500."""
    await create(client, building(p={"type": "Property", "value": 1}))
    resp = await client.request(method, f"{BASE}/entities/{EID}{path}", json=body)
    assert resp.status_code == 204, resp.text
    for options in ("sysAttrs", "concise", None):
        doc = await get_entity(client, EID, {"options": options} if options else None)
        assert "null" not in str(doc) and NULL not in str(doc), doc


async def test_merge_keeps_the_kind_of_what_a_type_less_fragment_merges_into(
    client: httpx.AsyncClient,
) -> None:
    await create(
        client,
        building(
            area={"type": "GeoProperty", "value": POINT},
            owner={"type": "Relationship", "object": "urn:ngsi-ld:Person:p1"},
        ),
    )
    moved = {"type": "Point", "coordinates": [127.001, 37.501]}
    body = {"area": {"value": moved}, "owner": {"observedAt": "2024-01-01T00:00:00Z"}}
    assert (await client.patch(f"{BASE}/entities/{EID}", json=body)).status_code == 204
    doc = await get_entity(client, EID)
    assert doc["area"] == {"type": "GeoProperty", "value": moved}, doc
    assert doc["owner"]["type"] == "Relationship", doc
    assert doc["owner"]["object"] == "urn:ngsi-ld:Person:p1", "the target stays"
    assert doc["owner"]["observedAt"] == "2024-01-01T00:00:00Z"
    found = (await client.get(f"{BASE}/entities", params=NEAR)).json()
    assert [e["id"] for e in found] == [EID], "still found by a geo-query"


async def test_a_partial_update_moves_a_geoproperty_by_its_value(
    client: httpx.AsyncClient,
) -> None:
    """The usual "move the bus" call was a 400: inference took the geometry for a Property."""
    await create(client, building(area={"type": "GeoProperty", "value": POINT}))
    moved = {"type": "Point", "coordinates": [127.002, 37.502]}
    resp = await client.patch(f"{BASE}/entities/{EID}/attrs/area", json={"value": moved})
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["area"] == {"type": "GeoProperty", "value": moved}
    for wrong in (5, {"coordinates": [127.0, 37.5]}):  # a number, a geometry without its type
        resp = await client.patch(f"{BASE}/entities/{EID}/attrs/area", json={"value": wrong})
        # it said "attribute area is a GeoProperty, not a Property", of a fragment naming none
        assert "GeoJSON geometry" in problem(resp, 400, "BadRequestData")["detail"]
    assert (await get_entity(client, EID))["area"] == {"type": "GeoProperty", "value": moved}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "", None),
        ("PUT", "", {"type": "Building", "name": "other"}),
        ("PATCH", "", {"name": "other"}),
        ("DELETE", "", None),
        ("POST", "/attrs", {"floors": 3}),
        ("PATCH", "/attrs", {"name": "other"}),
        ("PATCH", "/attrs/name", {"value": "other"}),
        ("PUT", "/attrs/name", {"type": "Property", "value": "other"}),
        ("DELETE", "/attrs/name", None),
    ],
)
async def test_the_type_selector_is_applied_not_ignored(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """DELETE /entities/{id}?type=Vehicle deleted a Building."""
    await create(client, building(name={"type": "Property", "value": "town hall"}))
    url = f"{BASE}/entities/{EID}{path}"
    problem(await client.request(method, url, json=body, params={"type": "Vehicle"}), 404)
    assert (await get_entity(client, EID))["name"]["value"] == "town hall", "nothing changed"
    # an AND the entity does not meet, and an invalid name: nothing changes either
    problem(await client.request(method, url, json=body, params={"type": "Building;Shop"}), 404)
    problem(await client.request(method, url, json=body, params={"type": 'Shop"'}), 400)
    assert (await get_entity(client, EID))["name"]["value"] == "town hall", "nothing changed"
    # the type-selection syntax of GET /entities: `|` is OR, parentheses group
    for selector in ("Vehicle|Building", "(Building;Building)|Shop"):
        one = await client.get(f"{BASE}/entities/{EID}", params={"type": selector})
        assert one.status_code == 200, (selector, one.text)
    resp = await client.request(method, url, json=body, params={"type": "Vehicle,Building"})
    assert resp.status_code in (200, 201, 204, 207), resp.text


async def test_attributes_and_ids_holding_an_encoded_slash_are_reachable(
    client: httpx.AsyncClient,
) -> None:
    """The decoded '/' made extra path segments: the request fell to the entity routes."""
    iri = "https://example.org/speed"
    eid = "https://example.org/bus/7"
    await create(client, {"id": eid, "type": "Bus", iri: {"type": "Property", "value": 1}})
    one = f"{BASE}/entities/{quote(eid, safe='')}"
    attr = f"{one}/attrs/{quote(iri, safe='')}"
    assert (await client.patch(attr, json={"value": 5})).status_code == 204
    assert (await get_entity(client, quote(eid, safe="")))[iri]["value"] == 5
    resp = await client.patch(f"{one}/attrs", json={"seats": 40})
    assert resp.status_code == 204, resp.text
    assert (await client.delete(attr)).status_code == 204
    assert set(await get_entity(client, quote(eid, safe=""))) == {"id", "type", "seats"}
    assert (await client.delete(one)).status_code == 204
    problem(await client.get(one), 404)


async def test_every_written_sub_attribute_has_system_times(client: httpx.AsyncClient) -> None:
    await create(client, building(p={"type": "Property", "value": 1}))
    sub = {"type": "Property", "value": 1}
    writes = [
        ("POST", "/attrs", {"q": {"type": "Property", "value": 1, "s": sub}}),
        ("PUT", "/attrs/p", {"type": "Property", "value": 3, "u": sub}),
        ("PATCH", "", {"r": {"type": "Property", "value": 1, "v": sub}}),
        ("PATCH", "/attrs/p", {"w": sub}),
    ]
    for method, path, body in writes:
        resp = await client.request(method, f"{BASE}/entities/{EID}{path}", json=body)
        assert resp.status_code == 204, resp.text
    doc = await get_entity(client, EID, {"options": "sysAttrs"})
    subs = [doc["q"]["s"], doc["p"]["u"], doc["r"]["v"], doc["p"]["w"]]
    assert all("createdAt" in s and "modifiedAt" in s for s in subs), doc


async def test_a_partial_update_stamps_the_attribute_and_the_entity_with_one_time(
    client: httpx.AsyncClient,
) -> None:
    """Two clock reads gave the entity a later modifiedAt than the attribute it changed, so a
    client looking for what changed (attribute modifiedAt == entity modifiedAt) missed it."""
    await create(client, building(p={"type": "Property", "value": 1}))
    resp = await client.patch(f"{BASE}/entities/{EID}/attrs/p", json={"value": 2})
    assert resp.status_code == 204, resp.text
    doc = await get_entity(client, EID, {"options": "sysAttrs"})
    assert doc["p"]["modifiedAt"] == doc["modifiedAt"], doc
