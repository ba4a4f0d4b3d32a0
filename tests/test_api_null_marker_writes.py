"""The NGSI-LD Null outside merges and updates (a probe's finding, 2026-12-08): create, append,
replace and the batch create and upsert stored `urn:ngsi-ld:null` as a value, a sub-attribute
or a language's text (5.2.1, 5.5.4: BadRequestData), and batch update refused the marker that
PATCH /entities/{id}/attrs takes as a deletion."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, create, get_entity, get_temporal, problem

NULL = "urn:ngsi-ld:null"
EID = "urn:ngsi-ld:Sensor:n1"
OPS = f"{BASE}/entityOperations"
T = "2020-01-01T00:00:00Z"

# attributes holding the marker where a value goes, each a 400 in a write without nulls
HOLDING_NULL: dict[str, Any] = {
    "property": {"type": "Property", "value": NULL},
    "concise": NULL,
    "concise-object": {"value": NULL},
    "relationship": {"type": "Relationship", "object": NULL},
    "relationship-list": {"type": "Relationship", "object": ["urn:a:1", NULL]},
    "sub-attribute": {"type": "Property", "value": 1, "s": {"type": "Property", "value": NULL}},
    "concise-sub": {"type": "Property", "value": 1, "s": NULL},
    "language-none": {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
    "language-entry": {"type": "LanguageProperty", "languageMap": {"en": "a", "de": NULL}},
    "nested-value": {"type": "Property", "value": {"country": NULL}},
    "deeper-value": {"type": "Property", "value": {"geo": {"country": NULL}}},
    "list-value": {"type": "Property", "value": [1, NULL]},
    "value-list": {"type": "ListProperty", "valueList": [NULL]},
    "object-list": {"type": "ListRelationship", "objectList": [{"object": NULL}]},
    "vocab": {"type": "VocabProperty", "vocab": NULL},
    "json": {"type": "JsonProperty", "json": NULL},
}


def sensor(eid: str = EID, **attrs: Any) -> dict[str, Any]:
    return {"id": eid, "type": "Sensor", **attrs}


def refused(resp: httpx.Response) -> str:
    """The 400 a write that cannot hold the marker answers, saying where it can go."""
    detail = str(problem(resp, 400, "BadRequestData")["detail"])
    assert NULL in detail and "merge" in detail, detail
    return detail


@pytest.mark.parametrize("case", HOLDING_NULL)
async def test_create_refuses_the_marker(client: httpx.AsyncClient, case: str) -> None:
    detail = refused(await client.post(f"{BASE}/entities", json=sensor(p=HOLDING_NULL[case])))
    assert "'p'" in detail, detail
    assert (await client.get(f"{BASE}/entities/{EID}")).status_code == 404


async def test_create_refuses_the_marker_as_the_entity_id(client: httpx.AsyncClient) -> None:
    refused(await client.post(f"{BASE}/entities", json=sensor(eid=NULL)))


@pytest.mark.parametrize("case", HOLDING_NULL)
async def test_append_and_replace_refuse_the_marker(client: httpx.AsyncClient, case: str) -> None:
    before = sensor(p={"type": "Property", "value": 1}, q={"type": "Property", "value": 2})
    await create(client, before)
    attr = HOLDING_NULL[case]
    refused(await client.post(f"{BASE}/entities/{EID}/attrs", json={"p": attr}))
    refused(await client.put(f"{BASE}/entities/{EID}", json=sensor(p=attr)))
    resp = await client.put(f"{BASE}/entities/{EID}/attrs/q", json=attr)
    if isinstance(attr, dict):
        refused(resp)
    else:  # a bare string is no attribute body at all
        problem(resp, 400, "InvalidRequest")
    body = await get_entity(client, EID)
    assert body["p"]["value"] == 1 and body["q"]["value"] == 2, body


@pytest.mark.parametrize("case", ["property", "concise", "sub-attribute", "language-none"])
async def test_batch_create_and_upsert_refuse_the_marker(
    client: httpx.AsyncClient, case: str
) -> None:
    await create(client, sensor(p={"type": "Property", "value": 1}))
    item = sensor(p=HOLDING_NULL[case])
    new = sensor(eid="urn:ngsi-ld:Sensor:n2", p=HOLDING_NULL[case])
    for path, items in [
        ("create", [new]),
        ("upsert", [new]),
        ("upsert", [item]),
        ("upsert?options=update", [item]),
    ]:
        resp = await client.post(f"{OPS}/{path}", json=items)
        assert resp.status_code == 207, (path, resp.text)
        (error,) = resp.json()["errors"]
        assert error["error"]["status"] == 400 and NULL in error["error"]["detail"], error
    assert (await get_entity(client, EID))["p"]["value"] == 1
    assert (await client.get(f"{BASE}/entities/urn:ngsi-ld:Sensor:n2")).status_code == 404


async def test_a_json_property_may_hold_the_string_inside_its_json(
    client: httpx.AsyncClient,
) -> None:
    """A JsonProperty's JSON is opaque (never expanded): only the marker as the whole of it
    is the Null."""
    doc = {"note": NULL, "items": [NULL]}
    await create(client, sensor(j={"type": "JsonProperty", "json": doc}))
    assert (await get_entity(client, EID))["j"]["json"] == doc


async def test_temporal_input_still_takes_a_deleted_instance(client: httpx.AsyncClient) -> None:
    """5.5.4 excepts the temporal evolution: a null instance records a deletion (4.5.7)."""
    body = sensor(speed=[{"type": "Property", "value": NULL, "observedAt": T}])
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    assert (await get_temporal(client, EID))["speed"][0]["value"] == NULL


# -- batch update: an update, so the marker deletes, as PATCH /entities/{id}/attrs has it ---------

P = {"type": "Property", "value": 1, "unitCode": "CEL", "observedAt": T}


async def batch_update(
    client: httpx.AsyncClient, item: dict[str, Any], options: str = ""
) -> httpx.Response:
    query = f"?options={options}" if options else ""
    return await client.post(f"{OPS}/update{query}", json=[{"id": EID, "type": "Sensor", **item}])


@pytest.mark.parametrize("gone", [NULL, {"type": "Property", "value": NULL}])
async def test_batch_update_deletes_an_attribute_given_the_marker(
    client: httpx.AsyncClient, gone: Any
) -> None:
    await create(client, sensor(p=P, k={"type": "Property", "value": 3}))
    resp = await batch_update(client, {"k": gone, "n": {"type": "Property", "value": 4}})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert "k" not in body and body["n"]["value"] == 4 and body["p"] == P, body
    history = (await get_temporal(client, EID))["k"]
    assert history[-1]["value"] == NULL and "deletedAt" in history[-1], history


async def test_batch_update_removes_members_given_the_marker(client: httpx.AsyncClient) -> None:
    await create(client, sensor(p=P, scope="/a"))
    fragment = {"type": "Property", "value": 2, "unitCode": NULL, "observedAt": NULL}
    resp = await batch_update(client, {"p": fragment, "scope": NULL})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["p"] == {"type": "Property", "value": 2} and "scope" not in body, body


async def test_batch_update_deletes_one_instance(client: httpx.AsyncClient) -> None:
    two = [{"type": "Property", "value": 1}, {"type": "Property", "value": 2, "datasetId": "urn:d"}]
    await create(client, sensor(m=two))
    resp = await batch_update(
        client, {"m": {"type": "Property", "value": NULL, "datasetId": "urn:d"}}
    )
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["m"] == {"type": "Property", "value": 1}


async def test_batch_update_with_the_marker_for_an_absent_attribute_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await create(client, sensor(p=P))
    before = await get_entity(client, EID, {"options": "sysAttrs"})
    assert (await batch_update(client, {"absent": NULL})).status_code == 204
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == before


async def test_batch_update_with_no_overwrite_keeps_what_the_marker_names(
    client: httpx.AsyncClient,
) -> None:
    await create(client, sensor(p=P))
    resp = await batch_update(client, {"p": NULL}, "noOverwrite")
    assert resp.status_code == 207, resp.text
    assert "noOverwrite" in resp.json()["errors"][0]["error"]["detail"]
    assert (await get_entity(client, EID))["p"] == P


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/entities", sensor(type=NULL)),
        ("POST", "/entities", sensor(type=["Sensor", NULL])),
        ("PATCH", f"/entities/{EID}", {"type": NULL}),
        ("POST", f"/entities/{EID}/attrs", {"type": NULL}),
        ("PATCH", f"/entities/{EID}/attrs", {"type": NULL}),
        ("PUT", f"/entities/{EID}", {"type": NULL}),
    ],
    ids=["create", "create-list", "merge", "append", "update", "replace"],
)
async def test_the_marker_is_no_entity_type(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> None:
    """`{"type": "urn:ngsi-ld:null"}` in a merge gave the entity that type, shown in every
    read and in /types, where the client meant to remove a type (a probe's finding,
    2026-12-07); a create made an entity of that type."""
    if method != "POST" or path != "/entities":
        await create(client, sensor(p={"type": "Property", "value": 1}))
    detail = str(problem(await client.request(method, BASE + path, json=body), 400)["detail"])
    assert NULL in detail and "type" in detail, detail
    resp = await client.get(f"{BASE}/entities/{EID}")
    assert resp.status_code == 404 or resp.json()["type"] == "Sensor", resp.text
    batch = await client.post(f"{OPS}/upsert", json=[sensor(type=NULL)])
    assert batch.status_code == 207 and batch.json()["success"] == [], batch.text
