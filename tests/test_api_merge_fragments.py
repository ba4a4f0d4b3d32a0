"""Type-less merge fragments a prober got wrong (2026-12-06, the eighteenth session): a
fragment of sub-attributes replaced the attribute's value or object, a fragment aimed at one
instance of a multi-attribute overwrote the default instance, and an instance without content
was taken for a JSON value."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, create, get_entity, problem

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


async def test_a_concise_json_value_still_replaces_the_value(client: httpx.AsyncClient) -> None:
    """A type-less object that is no attribute fragment stays a concise JSON value."""
    await create(client, sensor(address={"type": "Property", "value": {"street": "Main"}}))
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"address": {"street name": "X"}})
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["address"] == {
        "type": "Property",
        "value": {"street name": "X"},
    }


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


@pytest.mark.parametrize("member", ["observedAt", "unitCode"])
@pytest.mark.parametrize("null", [None, "urn:ngsi-ld:null"])
async def test_a_null_observedat_or_unitcode_says_how_to_remove_it(
    client: httpx.AsyncClient, member: str, null: Any
) -> None:
    """A merge-patch habit was answered "observedAt is not an ISO 8601 DateTime: None"."""
    await create(
        client, sensor(p={"type": "Property", "value": 1, "observedAt": T, "unitCode": "CEL"})
    )
    for resp in (
        await client.patch(f"{BASE}/entities/{EID}", json={"p": {"value": 2, member: null}}),
        await client.patch(f"{BASE}/entities/{EID}/attrs/p", json={"value": 2, member: null}),
    ):
        detail = problem(resp, 400, "BadRequestData")["detail"]
        assert f"{member} cannot be removed with a null" in detail and "replaced whole" in detail
    doc = await get_entity(client, EID)
    assert doc["p"] == {"type": "Property", "value": 1, "observedAt": T, "unitCode": "CEL"}
