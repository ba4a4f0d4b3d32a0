"""Linked entity retrieval: join=inline|flat and joinLevel follow Relationships to their targets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, problem

ROOM = {"id": "urn:ngsi-ld:Room:1", "type": "Room", "name": {"type": "Property", "value": "hall"}}
FLOOR = {"id": "urn:ngsi-ld:Floor:1", "type": "Floor", "level": {"type": "Property", "value": 2}}
SENSOR = {
    "id": "urn:ngsi-ld:Sensor:1",
    "type": "Sensor",
    "isIn": {"type": "Relationship", "object": ROOM["id"]},
    "near": {
        "type": "ListRelationship",
        "objectList": [ROOM["id"], FLOOR["id"], "urn:ngsi-ld:Room:missing"],
    },
}


@pytest.fixture
async def linked(client: httpx.AsyncClient) -> httpx.AsyncClient:
    room = {**ROOM, "onFloor": {"type": "Relationship", "object": FLOOR["id"]}}
    resp = await client.post(f"{BASE}/entityOperations/create", json=[FLOOR, room, SENSOR])
    assert resp.status_code == 201, resp.text
    return client


async def get(client: httpx.AsyncClient, eid: str = SENSOR["id"], **params: str) -> Any:
    resp = await client.get(f"{BASE}/entities/{eid}", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_inline_puts_each_target_inside_its_relationship(linked: httpx.AsyncClient) -> None:
    out = await get(linked, join="inline")
    assert out["isIn"]["entity"]["id"] == ROOM["id"]
    assert out["isIn"]["entity"]["name"]["value"] == "hall"
    # a ListRelationship lists the targets that exist, in its order
    assert [e["id"] for e in out["near"]["entity"]] == [ROOM["id"], FLOOR["id"]]
    assert "entity" not in out["isIn"]["entity"]["onFloor"], "joinLevel 1 stops at one hop"


async def test_join_level_two_follows_the_targets_relationships(
    linked: httpx.AsyncClient,
) -> None:
    out = await get(linked, join="inline", joinLevel="2")
    assert out["isIn"]["entity"]["onFloor"]["entity"]["level"]["value"] == 2


@pytest.mark.parametrize("fmt", ["keyValues", "concise"])
async def test_inline_in_the_short_formats(linked: httpx.AsyncClient, fmt: str) -> None:
    out = await get(linked, join="inline", format=fmt)
    if fmt == "keyValues":
        assert out["isIn"]["id"] == ROOM["id"] and out["isIn"]["name"] == "hall"
    else:
        assert out["isIn"]["entity"]["name"] == "hall"


async def test_flat_lists_every_entity_once(linked: httpx.AsyncClient) -> None:
    out = await get(linked, join="flat", joinLevel="2")
    assert sorted(e["id"] for e in out) == sorted([SENSOR["id"], ROOM["id"], FLOOR["id"]])


async def test_a_nested_pick_keeps_the_linked_entity(linked: httpx.AsyncClient) -> None:
    out = await get(linked, join="inline", pick="id,isIn{name}")
    assert out == {"id": SENSOR["id"], "isIn": out["isIn"]}
    assert out["isIn"]["entity"] == {"name": {"type": "Property", "value": "hall"}}
    flat = await get(linked, join="flat", pick="id,isIn{name}")
    room = next(e for e in flat if e["id"] == ROOM["id"])
    assert room == {"id": ROOM["id"], "name": {"type": "Property", "value": "hall"}}


async def test_query_and_post_query_join_too(linked: httpx.AsyncClient) -> None:
    resp = await linked.get(f"{BASE}/entities", params={"type": "Sensor", "join": "flat"})
    assert resp.status_code == 200, resp.text
    assert sorted(e["id"] for e in resp.json()) == sorted([SENSOR["id"], ROOM["id"], FLOOR["id"]])
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "join": "inline"}
    resp = await linked.post(f"{BASE}/entityOperations/query", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()[0]["isIn"]["entity"]["id"] == ROOM["id"]


@pytest.mark.parametrize("params", [{"join": "deep"}, {"join": "inline", "joinLevel": "x"}])
async def test_bad_join_parameters_are_400(
    linked: httpx.AsyncClient, params: dict[str, str]
) -> None:
    problem(await linked.get(f"{BASE}/entities/{SENSOR['id']}", params=params), 400)


LOOPS = [f"urn:ngsi-ld:Loop:{i}" for i in range(3)]


@pytest.fixture
async def loops(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Three entities, each linked to all three (itself included)."""
    links = {"type": "ListRelationship", "objectList": LOOPS}
    body = [{"id": i, "type": "Loop", "links": links} for i in LOOPS]
    assert (await client.post(f"{BASE}/entityOperations/create", json=body)).status_code == 201
    return client


async def test_inline_does_not_follow_a_loop_back(loops: httpx.AsyncClient) -> None:
    """Every level tripled the answer: 15 s and 75 MB at joinLevel 12."""
    deep = await get(loops, LOOPS[0], join="inline", joinLevel="8", options="keyValues")
    assert deep == await get(loops, LOOPS[0], join="inline", joinLevel="3", options="keyValues")
    first = deep["links"]
    assert first[0] == {"id": LOOPS[0], "type": "Loop", "links": LOOPS}, "on the path: shown"
    assert [e["id"] for e in first[1]["links"]] == LOOPS
    innermost = first[1]["links"][2]["links"]  # Loop:0 -> Loop:1 -> Loop:2: all on the path
    assert [e["links"] for e in innermost] == [LOOPS] * 3, "shown, not followed"


async def test_flat_lists_each_entity_of_a_loop_once(loops: httpx.AsyncClient) -> None:
    out = await get(loops, LOOPS[0], join="flat", joinLevel="16")
    assert sorted(e["id"] for e in out) == LOOPS


async def test_a_join_past_the_render_bound_is_a_400(
    loops: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub.ngsild import linked

    monkeypatch.setattr(linked, "MAX_LINKED", 4)
    resp = await loops.get(
        f"{BASE}/entities/{LOOPS[0]}", params={"join": "inline", "joinLevel": "2"}
    )
    assert "joinLevel" in problem(resp, 400, "BadRequestData")["detail"]
    assert (await get(loops, LOOPS[0], join="inline")) is not None, (
        "one level: 3 renders, within it"
    )


async def test_datasetid_picks_which_relationship_instance_is_followed(
    client: httpx.AsyncClient,
) -> None:
    """The targets of every instance were joined, and the datasetId filter was applied to
    the linked entity too, which lost its default-instance attributes."""
    thing = {
        "id": "urn:ngsi-ld:Thing:2",
        "type": "Thing",
        "name": {"type": "Property", "value": "t"},
    }
    person = {"id": "urn:ngsi-ld:Person:1", "type": "Person"}
    owner = [
        {"type": "Relationship", "object": person["id"]},
        {"type": "Relationship", "object": thing["id"], "datasetId": "urn:ds:q"},
    ]
    rel = {"id": "urn:ngsi-ld:Rel:1", "type": "Rel", "r2": owner}
    resp = await client.post(f"{BASE}/entityOperations/create", json=[thing, person, rel])
    assert resp.status_code == 201, resp.text
    url = f"{BASE}/entities/{rel['id']}"
    params = {"datasetId": "urn:ds:q", "attrs": "r2"}
    flat = (await client.get(url, params={**params, "join": "flat"})).json()
    assert [e["id"] for e in flat] == [rel["id"], thing["id"]], flat
    inline = (await client.get(url, params={**params, "join": "inline"})).json()
    assert inline["r2"]["entity"]["name"] == {"type": "Property", "value": "t"}, inline


@pytest.mark.parametrize("fmt", ["keyValues", "concise", "normalized"])
async def test_inline_puts_targets_into_every_instance_of_a_multi_relationship(
    linked: httpx.AsyncClient, fmt: str
) -> None:
    """A Relationship with several datasetIds is inlined in keyValues as in the other
    formats: in keyValues each datasetId's object becomes its entity (it stayed an id)."""
    multi = {
        "id": "urn:ngsi-ld:Sensor:2",
        "type": "Sensor",
        "next": [
            {"type": "Relationship", "object": ROOM["id"]},
            {"type": "Relationship", "object": FLOOR["id"], "datasetId": "urn:ngsi-ld:ds:x"},
        ],
    }
    resp = await linked.post(f"{BASE}/entities", json=multi)
    assert resp.status_code == 201, resp.text
    out = await get(linked, multi["id"], join="inline", format=fmt)
    if fmt == "keyValues":
        shown = out["next"]["dataset"]
        assert shown["@none"]["id"] == ROOM["id"] and shown["@none"]["name"] == "hall"
        assert shown["urn:ngsi-ld:ds:x"]["id"] == FLOOR["id"]
    else:
        assert [i["entity"]["id"] for i in out["next"]] == [ROOM["id"], FLOOR["id"]]
