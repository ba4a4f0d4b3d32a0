"""Type-less merge fragments a prober got wrong (2026-12-06, the eighteenth session): a
fragment of sub-attributes replaced the attribute's value or object, a fragment aimed at one
instance of a multi-attribute overwrote the default instance, and an instance without content
was taken for a JSON value."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, create, get_entity, get_temporal, problem

EID = "urn:ngsi-ld:Sensor:s1"
SINCE = {"type": "Property", "value": 2}
T = "2020-01-01T00:00:00Z"


def sensor(**attrs: Any) -> dict[str, Any]:
    return {"id": EID, "type": "Sensor", **attrs}


async def merge(client: httpx.AsyncClient, how: str, fragment: dict[str, Any]) -> httpx.Response:
    if how == "batch":
        return await client.post(
            f"{BASE}/entityOperations/merge", json=[{"id": EID, "type": "Sensor", **fragment}]
        )
    return await client.patch(f"{BASE}/entities/{EID}", json=fragment)


@pytest.mark.parametrize("how", ["patch", "batch"])
async def test_a_fragment_of_sub_attributes_merges_them_in(
    client: httpx.AsyncClient, how: str
) -> None:
    """The relationship lost its object, and the property's value became the fragment."""
    await create(
        client,
        sensor(
            p={"type": "Property", "value": 1, "s": {"type": "Property", "value": 1}},
            r={"type": "Relationship", "object": "urn:ngsi-ld:Thing:a"},
        ),
    )
    for fragment in (
        {"r": {"since": SINCE}},
        {"p": {"s": SINCE}},
        {"r": {"observedAt": T, "since": SINCE}},
    ):
        resp = await merge(client, how, fragment)
        assert resp.status_code in (200, 204), resp.text
    doc = await get_entity(client, EID)
    assert doc["r"]["type"] == "Relationship", doc
    assert doc["r"]["object"] == "urn:ngsi-ld:Thing:a", doc
    assert doc["r"]["since"] == SINCE and doc["r"]["observedAt"] == T, doc
    assert doc["p"] == {"type": "Property", "value": 1, "s": SINCE}, doc


@pytest.mark.parametrize("how", ["patch", "batch"])
async def test_a_fragment_for_one_instance_changes_only_that_instance(
    client: httpx.AsyncClient, how: str
) -> None:
    """Sent as a list, it overwrote the default instance with the fragment as its value."""
    both = [
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": "urn:ds:2"},
    ]
    await create(client, sensor(m=both))
    resp = await merge(client, how, {"m": [{"datasetId": "urn:ds:2", "observedAt": T}]})
    assert resp.status_code in (200, 204), resp.text
    doc = await get_entity(client, EID)
    assert doc["m"] == [
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": "urn:ds:2", "observedAt": T},
    ], doc


@pytest.mark.parametrize(
    "fragment",
    [
        {"m": {"datasetId": "urn:ds:9", "observedAt": T}},
        {"m": [{"datasetId": "urn:ds:9", "observedAt": T}]},
        {"fresh": {"observedAt": T}},
        {"fresh": {"unitCode": "CEL"}},
    ],
)
async def test_a_fragment_with_nothing_to_merge_into_is_refused(
    client: httpx.AsyncClient, fragment: dict[str, Any]
) -> None:
    """An instance without content was stored as the default instance, with the fragment as
    its value."""
    await create(client, sensor(m={"type": "Property", "value": 1}))
    before = await get_entity(client, EID)
    problem(await client.patch(f"{BASE}/entities/{EID}", json=fragment), 400, "BadRequestData")
    resp = await client.post(
        f"{BASE}/entityOperations/merge", json=[{"id": EID, "type": "Sensor", **fragment}]
    )
    assert resp.status_code == 400 or resp.json()["errors"], resp.text
    assert await get_entity(client, EID) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/attrs"), ("POST", "/attrs"), ("PUT", "")],
)
async def test_an_attribute_of_metadata_alone_is_refused(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """`{"observedAt": ...}` alone turned a Relationship into a Property holding it."""
    r = {"type": "Relationship", "object": "urn:ngsi-ld:Thing:a"}
    await create(client, sensor(r=r))
    body: dict[str, Any] = {"r": {"observedAt": T}}
    if method == "PUT":
        body["type"] = "Sensor"
    problem(await client.request(method, f"{BASE}/entities/{EID}{path}", json=body), 400)
    assert (await get_entity(client, EID))["r"] == r


async def test_a_concise_json_value_still_merges_as_a_value(client: httpx.AsyncClient) -> None:
    """A type-less object that is no attribute fragment stays a concise JSON value, which a
    merge merges into the stored object key by key (RFC 7396, 5.5.12); an update replaces it."""
    await create(client, sensor(address={"type": "Property", "value": {"street": "Main"}}))
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"address": {"street name": "X"}})
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["address"] == {
        "type": "Property",
        "value": {"street": "Main", "street name": "X"},
    }
    resp = await client.patch(
        f"{BASE}/entities/{EID}/attrs", json={"address": {"street name": "Y"}}
    )
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["address"]["value"] == {"street name": "Y"}


async def test_an_invalid_merge_of_an_absent_entity_is_a_400(client: httpx.AsyncClient) -> None:
    """The body is checked before the entity is looked up (ETSI 057_03_02): a 404 said the
    entity was the problem when the body was."""
    bad = {"p": {"type": "Property"}}  # no value
    problem(await client.patch(f"{BASE}/entities/{EID}", json=bad), 400, "BadRequestData")
    resp = await client.post(
        f"{BASE}/entityOperations/merge", json=[{"id": EID, "type": "Sensor", **bad}]
    )
    assert resp.status_code == 207, resp.text
    assert resp.json()["errors"][0]["error"]["type"].endswith("BadRequestData"), resp.text
    good = {"p": {"type": "Property", "value": 1}}
    problem(await client.patch(f"{BASE}/entities/{EID}", json=good), 404, "ResourceNotFound")


NULL = "urn:ngsi-ld:null"
WRITES = ["merge", "batch-merge", "partial-update", "update"]


async def write(client: httpx.AsyncClient, how: str, member: str, null: Any) -> httpx.Response:
    """Give p a new value and `member: null` through one of the writes that take nulls."""
    frag = {"value": 2, member: null}
    if how == "partial-update":
        return await client.patch(f"{BASE}/entities/{EID}/attrs/p", json=frag)
    typed = {"p": {"type": "Property", **frag}}
    if how == "update":
        return await client.patch(f"{BASE}/entities/{EID}/attrs", json=typed)
    return await merge(client, "batch" if how == "batch-merge" else "patch", typed)


@pytest.mark.parametrize("member", ["observedAt", "unitCode"])
@pytest.mark.parametrize("how", WRITES)
async def test_the_null_marker_on_observedat_or_unitcode_removes_it(
    client: httpx.AsyncClient, member: str, how: str
) -> None:
    """A null member goes, as RFC 7396 has it: a unitCode of urn:ngsi-ld:null was stored (and
    served) as a unit, and observedAt answered 400, so neither could be removed short of
    replacing the whole attribute."""
    await create(
        client, sensor(p={"type": "Property", "value": 1, "observedAt": T, "unitCode": "CEL"})
    )
    resp = await write(client, how, member, NULL)
    assert resp.status_code in (200, 204), resp.text
    kept = {"observedAt": T, "unitCode": "CEL"}
    if how == "update":  # replaces the instance whole: what it leaves out is gone too
        kept = {}
    kept.pop(member, None)
    assert (await get_entity(client, EID))["p"] == {"type": "Property", "value": 2, **kept}
    history = await client.get(f"{BASE}/temporal/entities/{EID}")
    assert NULL not in history.text, history.text


@pytest.mark.parametrize("member", ["observedAt", "unitCode"])
async def test_a_json_null_observedat_or_unitcode_names_the_marker(
    client: httpx.AsyncClient, member: str
) -> None:
    """JSON null is no NGSI-LD Null: answered "not an ISO 8601 DateTime: None" before."""
    p = {"type": "Property", "value": 1, "observedAt": T, "unitCode": "CEL"}
    await create(client, sensor(p=p))
    for how in ("merge", "partial-update"):
        detail = problem(await write(client, how, member, None), 400, "BadRequestData")["detail"]
        assert f"{member} must not be null" in detail and NULL in detail, detail
    assert (await get_entity(client, EID))["p"] == p


@pytest.mark.parametrize("member", ["observedAt", "unitCode", "datasetId"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", ""), ("POST", "/attrs"), ("PUT", "/attrs/p"), ("POST", "/upsert")],
)
async def test_writes_without_nulls_refuse_the_marker_on_a_member(
    client: httpx.AsyncClient, member: str, method: str, path: str
) -> None:
    """Create, append, replace and upsert stored urn:ngsi-ld:null as the unit (or datasetId);
    a datasetId is never removed by it, not even in a merge (5.5.8)."""
    if path:
        await create(client, sensor(p={"type": "Property", "value": 1}))
    attr = {"type": "Property", "value": 2, member: NULL}
    url = f"{BASE}/entities" + (f"/{EID}{path}" if path.startswith("/attrs") else "")
    if path == "/upsert":
        url = f"{BASE}/entityOperations/upsert"
    body: Any = attr if path == "/attrs/p" else sensor(p=attr)
    resp = await client.request(method, url, json=[body] if path == "/upsert" else body)
    if path == "/upsert":
        assert resp.status_code == 207 and resp.json()["errors"], resp.text
        detail = resp.json()["errors"][0]["error"]["detail"]
    else:
        detail = problem(resp, 400, "BadRequestData")["detail"]
    assert NULL in detail, detail
    if path:
        if member == "datasetId":
            problem(await client.patch(f"{BASE}/entities/{EID}/attrs/p", json=attr), 400)
        assert (await get_entity(client, EID))["p"] == {"type": "Property", "value": 1}


@pytest.mark.parametrize("how", ["merge", "batch-merge", "update"])
async def test_the_null_marker_as_scope_removes_the_scope(
    client: httpx.AsyncClient, how: str
) -> None:
    """It answered 400 "invalid scope": a merge or an update could not drop the scope that
    DELETE /entities/{id}/attrs/scope drops."""
    await create(client, {**sensor(p={"type": "Property", "value": 1}), "scope": "/a"})
    if how == "update":
        resp = await client.patch(f"{BASE}/entities/{EID}/attrs", json={"scope": NULL})
    else:
        resp = await merge(client, "batch" if how == "batch-merge" else "patch", {"scope": NULL})
    assert resp.status_code in (200, 204), resp.text
    assert "scope" not in await get_entity(client, EID)
    assert "scope" not in await get_temporal(client, EID)
    resp = await client.get(f"{BASE}/entities", params={"type": "Sensor", "scopeQ": "/a"})
    assert resp.json() == [], resp.text
    if how == "update":  # nothing left to remove
        resp = await client.patch(f"{BASE}/entities/{EID}/attrs", json={"scope": NULL})
        assert resp.status_code == 207, resp.text
        assert resp.json()["notUpdated"] == [
            {"attributeName": "scope", "reason": "the entity has no scope to delete"}
        ]


async def test_the_null_marker_as_scope_is_refused_where_nulls_are_not_taken(
    client: httpx.AsyncClient,
) -> None:
    """4.18: the marker stands only for a deleted scope; a create or an append cannot store it."""
    resp = await client.post(f"{BASE}/entities", json={**sensor(), "scope": NULL})
    detail = problem(resp, 400, "BadRequestData")["detail"]
    assert NULL in detail and "merge or an update" in detail, detail
    await create(client, {**sensor(), "scope": "/a"})
    problem(await client.post(f"{BASE}/entities/{EID}/attrs", json={"scope": NULL}), 400)
    assert (await get_entity(client, EID))["scope"] == "/a"


@pytest.mark.parametrize(
    "body",
    [{}, {"zz": NULL}, {"p": [{"type": "Property", "value": NULL, "datasetId": "urn:ds:9"}]}],
)
@pytest.mark.parametrize("how", ["patch", "batch"])
async def test_a_merge_that_changes_nothing_keeps_modified_at(
    client: httpx.AsyncClient, how: str, body: dict[str, Any]
) -> None:
    """It moved the entity's modifiedAt (and handed the notifier a change), where an update
    or an append that changes nothing leaves the entity as it was."""
    await create(client, {**sensor(p={"type": "Property", "value": 1}), "scope": "/a"})
    stored = await get_entity(client, EID, {"options": "sysAttrs"})
    for fragment in (body, {**body, "type": "Sensor", "scope": "/a"}):
        resp = await merge(client, how, fragment)
        assert resp.status_code in (200, 204), resp.text
        assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored
