"""The indexed router picks exactly the route Starlette's linear scan picks."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
from starlette.routing import BaseRoute, Match, Route
from tests.conftest import BASE, create, problem

from cityhub.api.app import routes
from cityhub.api.router import IndexedRouter

IDS = ["urn:ngsi-ld:T:1", "http://example.org/a/b", "", "x/attrs", "x/attrs/"]


def _linear(rs: list[BaseRoute], scope: dict[str, Any]) -> BaseRoute | None:
    """Starlette's own choice: the first route that matches fully."""
    for route in rs:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def _paths(route: Route) -> list[str]:
    """Paths that route's pattern may take, with awkward values for its parameters."""
    return [re.sub(r"\{[^}]*\}", value, route.path) for value in IDS]


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_every_method_and_path_gets_the_route_starlette_would_pick() -> None:
    rs = routes()
    router = IndexedRouter(rs)
    methods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    paths = {p for r in rs if isinstance(r, Route) for p in _paths(r)}
    paths |= {p + "/" for p in paths} | {p.rstrip("/") for p in paths} | {BASE + "/nothing"}
    checked = 0
    for path in sorted(paths):
        for method in sorted(methods):
            scope = _scope(method, path)
            expected = _linear(rs, scope)
            found = router.full_match(_scope(method, path))
            assert (found[0] if found else None) is expected, (method, path)
            checked += expected is not None
    assert checked > 300


async def test_unknown_paths_and_methods_are_answered_as_before(
    client: httpx.AsyncClient,
) -> None:
    problem(await client.get(f"{BASE}/nothing"), 404)
    problem(await client.put(f"{BASE}/entities"), 405)
    assert (await client.get(f"{BASE}/entities/urn:ngsi-ld:T:9")).status_code == 404


async def test_an_id_ending_in_attrs_is_reachable_encoded(client: httpx.AsyncClient) -> None:
    """urn:x:q/attrs could be created but never read, changed or deleted: the path looked
    like the entity urn:x:q's attributes (405). Encoded, the '/' is part of the id."""
    eid = "urn:ngsi-ld:Bin:q/attrs"
    await create(client, {"id": eid, "type": "Bin", "a": 1})
    one = f"{BASE}/entities/{quote(eid, safe=':')}"
    assert (await client.get(one)).json()["a"]["value"] == 1
    assert (await client.patch(one, json={"a": 2})).status_code == 204
    assert (await client.get(f"{BASE}/temporal/entities/{quote(eid, safe=':')}")).status_code == 200
    problem(await client.get(f"{BASE}/entities/{eid}"), 405)
    assert (await client.delete(one)).status_code == 204
    problem(await client.get(one), 404)
