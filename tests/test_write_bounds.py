"""What one write may hold: writes are validated and stored on the event loop, so one entity of
300,000 attributes held every other request for 19 s, and one temporal write of 200,000
instances for 8 s. Past the bounds the body is a 400 that says what to do, and nothing of it
is stored."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from cityhub.ngsild.entity import MAX_ATTRS, MAX_ITEMS, MAX_VALUE_ITEMS
from cityhub.ngsild.temporal import MAX_WRITE_INSTANCES
from conftest import BASE, bad_request, create, problem

EID = "urn:ngsi-ld:T:big"


def attrs(n: int) -> dict[str, Any]:
    return {f"a{i}": {"type": "Property", "value": i} for i in range(n)}


def ring(n: int) -> list[list[float]]:
    """A closed ring of n positions around (10, 50)."""
    pts = [
        [10 + math.cos(2 * math.pi * i / (n - 1)), 50 + math.sin(2 * math.pi * i / (n - 1))]
        for i in range(n - 1)
    ]
    return [*pts, pts[0]]


def too_large(resp: httpx.Response, *words: str) -> str:
    detail: str = bad_request(resp)["detail"]
    assert all(w in detail for w in words), detail
    return detail


async def test_an_entity_of_more_attributes_than_the_bound_is_400(
    client: httpx.AsyncClient,
) -> None:
    body = {"id": EID, "type": "T", **attrs(MAX_ATTRS + 1)}
    detail = too_large(
        await client.post(f"{BASE}/entities", json=body), f"at most {MAX_ATTRS:,} attributes"
    )
    assert "split it into several entities" in detail and not detail.startswith("attribute")
    problem(await client.get(f"{BASE}/entities/{EID}"), 404)
    await create(client, {"id": EID, "type": "T", **attrs(MAX_ATTRS)})  # the bound itself


@pytest.mark.parametrize(
    "attr",
    [
        [{"type": "Property", "value": i, "datasetId": f"urn:d:{i}"} for i in range(MAX_ATTRS + 1)],
        {"type": "Property", "value": 1, **attrs(MAX_ATTRS)},
    ],
    ids=["datasetIds", "sub-attributes"],
)
async def test_instances_and_sub_attributes_count_as_attributes(
    client: httpx.AsyncClient, attr: Any
) -> None:
    body = {"id": EID, "type": "T", "p": attr}
    too_large(await client.post(f"{BASE}/entities", json=body), f"at most {MAX_ATTRS:,}")
    problem(await client.get(f"{BASE}/entities/{EID}"), 404)


async def test_the_bound_holds_for_every_write_of_attributes(client: httpx.AsyncClient) -> None:
    """Appends, updates, merges, a PATCH of one attribute and batch items are bodies too."""
    await create(client, {"id": EID, "type": "T", "p": {"type": "Property", "value": 0}})
    many = attrs(MAX_ATTRS + 1)
    for method, path, body in [
        ("POST", f"/entities/{EID}/attrs", many),
        ("PATCH", f"/entities/{EID}/attrs", {"p": {"type": "Property", "value": 1}, **many}),
        ("PATCH", f"/entities/{EID}", many),
        ("PATCH", f"/entities/{EID}/attrs/p", {"value": 1, **attrs(MAX_ATTRS)}),
    ]:
        resp = await client.request(method, BASE + path, json=body)
        too_large(resp, f"at most {MAX_ATTRS:,}")
    got = (await client.get(f"{BASE}/entities/{EID}", params={"options": "keyValues"})).json()
    assert got == {"id": EID, "type": "T", "p": 0}
    resp = await client.post(
        f"{BASE}/entityOperations/upsert",
        json=[{"id": "urn:ngsi-ld:T:ok", "type": "T"}, {"id": EID, "type": "T", **many}],
    )
    assert resp.status_code == 207, resp.text
    out = resp.json()
    assert out["success"] == ["urn:ngsi-ld:T:ok"]
    assert [e["entityId"] for e in out["errors"]] == [EID]
    assert f"at most {MAX_ATTRS:,}" in out["errors"][0]["error"]["detail"]


async def test_array_items_and_positions_are_bound_over_the_whole_entity(
    client: httpx.AsyncClient,
) -> None:
    """Each array item is a row of the q index, and each position shapely's work: one value
    holds at most 10,000 items, but 3,000 such values fitted in the body."""
    full = {"type": "Property", "value": list(range(MAX_VALUE_ITEMS))}
    n = MAX_ITEMS // MAX_VALUE_ITEMS
    body = {"id": EID, "type": "T", **{f"a{i}": full for i in range(n + 1)}}
    too_large(await client.post(f"{BASE}/entities", json=body), f"at most {MAX_ITEMS:,} items")
    area = {
        "type": "GeoProperty",
        "value": {"type": "Polygon", "coordinates": [ring(MAX_ITEMS + 1)]},
    }
    too_large(
        await client.post(f"{BASE}/entities", json={"id": EID, "type": "T", "area": area}),
        "positions of geometries",
    )
    problem(await client.get(f"{BASE}/entities/{EID}"), 404)
    await create(client, {"id": EID, "type": "T", **{f"a{i}": full for i in range(n)}})
    # one geometry holds at most MAX_VERTICES positions (test_geo_bounds): two reach the bound
    half = {
        "type": "GeoProperty",
        "value": {"type": "Polygon", "coordinates": [ring(MAX_ITEMS // 2)]},
    }
    await create(client, {"id": "urn:ngsi-ld:T:area", "type": "T", "area": half, "zone": half})


def history(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "Property", "value": i, "observedAt": f"2024-01-01T00:00:00.{i:06d}Z"}
        for i in range(n)
    ]


async def test_a_temporal_write_of_more_instances_than_the_bound_is_400(
    client: httpx.AsyncClient,
) -> None:
    """One transaction on the event loop: 200,000 instances held every request for 8 s."""
    half = MAX_WRITE_INSTANCES // 2
    body = {"id": EID, "type": "T", "p": history(half), "q": history(half + 1)}
    too_large(
        await client.post(f"{BASE}/temporal/entities", json=body),
        f"at most {MAX_WRITE_INSTANCES:,} instances",
        "several requests",
    )
    problem(await client.get(f"{BASE}/temporal/entities/{EID}"), 404)
    body["q"] = history(half)
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    resp = await client.post(
        f"{BASE}/temporal/entities/{EID}/attrs", json={"p": history(MAX_WRITE_INSTANCES + 1)}
    )
    too_large(resp, f"at most {MAX_WRITE_INSTANCES:,} instances")


@pytest.mark.parametrize("how", ["create", "append"])
async def test_a_temporal_write_of_more_attributes_than_an_entity_holds_is_400(
    client: httpx.AsyncClient, how: str
) -> None:
    """Each attribute costs the write a round of statements: 9,999 names of one instance
    each held the loop for 1.7 s (probe3, section 3), against 0.3 s for 9,999 instances of
    one; the names are bounded as an entity body's attributes are."""
    body: dict[str, Any] = {"id": EID, "type": "T", **attrs(MAX_ATTRS + 1)}
    url = f"{BASE}/temporal/entities"
    if how == "append":
        assert (await client.post(url, json={"id": EID, "type": "T"})).status_code == 201
        url = f"{url}/{EID}/attrs"
        del body["type"]
    too_large(await client.post(url, json=body), f"at most {MAX_ATTRS:,} attributes")
    body.pop("a0")
    assert (await client.post(url, json=body)).status_code in (201, 204)
