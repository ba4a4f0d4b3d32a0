"""Query bodies with several EntitySelectors, and queries as large as a client may send."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request

U = "urn:ngsi-ld:"


def ent(kind: str, n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"{U}{kind}:{n}", "type": kind, "n": {"type": "Property", "value": n}, **extra}


@pytest.fixture
async def city(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """300 sensors, 3 buildings and 3 vehicles, with a little history each."""
    batch = [ent("Sensor", i) for i in range(300)]
    batch += [ent("Building", i) for i in range(3)] + [ent("Vehicle", i) for i in range(3)]
    r = await client.post(f"{BASE}/entityOperations/create", json=batch)
    assert r.status_code == 201, r.text
    return client


async def found(c: httpx.AsyncClient, body: dict[str, Any], temporal: bool = False) -> list[str]:
    """The ids a POST query answers, in order."""
    path = "/temporal/entityOperations/query" if temporal else "/entityOperations/query"
    r = await c.post(f"{BASE}{path}", params={"limit": "1000"}, json={"type": "Query", **body})
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


@pytest.mark.parametrize("temporal", [False, True])
async def test_selectors_are_alternatives(city: httpx.AsyncClient, temporal: bool) -> None:
    """Each selector is id AND idPattern AND type; the entity meets any selector."""
    body = {
        "entities": [
            {"id": f"{U}Building:1", "type": "Building"},
            {"type": "Vehicle"},
            {"idPattern": r":Sensor:1\d$", "type": "Sensor"},
        ]
    }
    want = [f"{U}Sensor:{i}" for i in range(10, 20)]
    want += [f"{U}Building:1"] + [f"{U}Vehicle:{i}" for i in range(3)]
    assert await found(city, body, temporal) == want
    # a selector's members narrow each other: an id of another type selects nothing
    body = {"entities": [{"id": f"{U}Building:1", "type": "Vehicle"}, {"type": "Nothing"}]}
    assert await found(city, body, temporal) == []


async def test_selectors_with_the_rest_of_the_query(city: httpx.AsyncClient) -> None:
    """q, attrs and the selectors all hold at once."""
    body = {"entities": [{"type": "Building"}, {"id": f"{U}Sensor:7", "type": "Sensor"}]}
    want = [f"{U}Sensor:7", f"{U}Building:1", f"{U}Building:2"]
    assert await found(city, {**body, "q": "n>=1"}) == want
    assert await found(city, {**body, "q": "n==7"}) == [f"{U}Sensor:7"]


async def test_a_thousand_selectors_by_id(city: httpx.AsyncClient) -> None:
    """A dashboard asking for its sensors one selector each: one id list per type."""
    sensors = [{"id": f"{U}Sensor:{i}", "type": "Sensor"} for i in range(0, 300, 2)]
    missing = [{"id": f"{U}Sensor:x{i}", "type": "Sensor"} for i in range(850)]
    others = [{"id": f"{U}Vehicle:{i}", "type": "Vehicle"} for i in range(3)]
    ids = await found(city, {"entities": sensors + missing + others})
    assert ids == [f"{U}Sensor:{i}" for i in range(0, 300, 2)] + [
        f"{U}Vehicle:{i}" for i in range(3)
    ]


async def test_long_id_list(city: httpx.AsyncClient) -> None:
    """An id list longer than SQLite's parameter limit, in GET and in a temporal query."""
    ids = [f"{U}Sensor:{i}" for i in range(40_000)]
    body = {"entities": [{"id": i, "type": "Sensor"} for i in ids]}
    assert len(await found(city, body)) == 300
    assert len(await found(city, body, temporal=True)) == 300
    r = await city.get(
        f"{BASE}/entities", params={"type": "Sensor", "id": ",".join(ids[:2_000]), "limit": "1000"}
    )
    assert r.status_code == 200 and len(r.json()) == 300


@pytest.mark.parametrize("terms", [1, 999, 1000])
async def test_long_expressions_are_answered(city: httpx.AsyncClient, terms: int) -> None:
    """Up to 1,000 terms in q, in a type expression, and as distinct selectors."""
    q = "|".join(f"n=={i}" for i in range(terms))
    r = await city.post(
        f"{BASE}/entityOperations/query",
        params={"limit": "1000", "count": "true"},
        json={"type": "Query", "q": q, "entities": [{"type": "Sensor"}]},
    )
    assert r.status_code == 200, r.text
    assert r.headers["NGSILD-Results-Count"] == str(min(terms, 300))
    types = "|".join(["Sensor", *(f"T{i}" for i in range(terms - 1))])
    r = await city.get(f"{BASE}/entities", params={"type": types, "count": "true"})
    assert r.status_code == 200 and r.headers["NGSILD-Results-Count"] == "300"
    selectors = [{"idPattern": f":Sensor:{i}$", "type": "Sensor"} for i in range(terms)]
    assert len(await found(city, {"entities": selectors})) == min(terms, 300)


async def test_longer_expressions_are_400(city: httpx.AsyncClient) -> None:
    """Beyond 1,000 terms the answer says what is too long, and never 500."""
    q = "|".join(f"n=={i}" for i in range(1001))
    body = bad_request(
        await city.post(f"{BASE}/entityOperations/query", json={"type": "Query", "q": q})
    )
    assert "1,000 terms" in body["detail"]
    types = "|".join(f"T{i}" for i in range(1001))
    bad_request(await city.get(f"{BASE}/entities", params={"type": types}))
    selectors = [{"idPattern": f":Sensor:{i}$", "type": "Sensor"} for i in range(1001)]
    body = bad_request(
        await city.post(
            f"{BASE}/entityOperations/query", json={"type": "Query", "entities": selectors}
        )
    )
    assert "selectors" in body["detail"]
    values = ",".join(str(i) for i in range(40_000))
    body = bad_request(
        await city.post(
            f"{BASE}/entityOperations/query", json={"type": "Query", "q": f"n=={values}"}
        )
    )
    assert "too large" in body["detail"]


@pytest.mark.parametrize(
    "entities",
    [[], [{"type": 5}], [{"id": "not an iri", "type": "T"}], [{"idPattern": ["x"]}], "T", [1]],
)
async def test_bad_selectors_are_400(city: httpx.AsyncClient, entities: Any) -> None:
    body = {"type": "Query", "entities": entities}
    bad_request(await city.post(f"{BASE}/entityOperations/query", json=body))


@pytest.mark.parametrize("temporal", [False, True])
async def test_a_selector_gets_the_same_answer_alone_and_beside_others(
    city: httpx.AsyncClient, temporal: bool
) -> None:
    """A type-less selector was refused alone ("a query needs at least one of type, ...") and
    applied beside a typed one; one naming nothing was refused alone and matched every entity
    beside another. Now one naming an id or idPattern selects alone too, and one naming
    nothing is refused either way, saying what a selector needs (5.2.33)."""
    path = "/temporal/entityOperations/query" if temporal else "/entityOperations/query"
    by_id, vehicles = {"id": f"{U}Building:1"}, {"type": "Vehicle"}
    assert await found(city, {"entities": [by_id]}, temporal) == [f"{U}Building:1"]
    both = [f"{U}Building:1"] + [f"{U}Vehicle:{i}" for i in range(3)]
    assert await found(city, {"entities": [by_id, vehicles]}, temporal) == both
    pattern = {"idPattern": ":Building:[12]$"}
    assert await found(city, {"entities": [pattern]}, temporal) == [
        f"{U}Building:{i}" for i in (1, 2)
    ]
    for entities in ([{}], [{}, vehicles]):
        resp = await city.post(f"{BASE}{path}", json={"type": "Query", "entities": entities})
        assert "needs type" in bad_request(resp)["detail"], resp.text


async def test_a_star_selector_selects_every_type(city: httpx.AsyncClient) -> None:
    """type "*" (5.2.33) selects every entity, alone and beside another selector."""
    every = await found(city, {"entities": [{"type": "*"}]})
    assert len(every) == 306
    body = {"entities": [{"type": "*", "idPattern": ":Vehicle:"}, {"type": "Building"}]}
    assert await found(city, body) == [f"{U}Building:{i}" for i in range(3)] + [
        f"{U}Vehicle:{i}" for i in range(3)
    ]
