"""CITYHUB_MAX_BODY: a request body over the limit is refused with 413 and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import orjson
import pytest

from cityhub.api.app import create_app
from cityhub.jsondepth import MAX_DEPTH
from cityhub.settings import Settings
from conftest import BASE, problem

LIMIT = 4096


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db=str(tmp_path / "hub.db"), max_body=LIMIT))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client
    app.state.store.close()


def batch(n: int) -> bytes:
    items = [{"id": f"urn:ngsi-ld:Bin:{i}", "type": "Bin", "level": i} for i in range(n)]
    return orjson.dumps(items)


async def stored(client: httpx.AsyncClient) -> int:
    resp = await client.get(f"{BASE}/entities", params={"type": "Bin", "count": "true"})
    return int(resp.headers["NGSILD-Results-Count"])


async def test_a_declared_length_over_the_limit_is_refused(small: httpx.AsyncClient) -> None:
    body = batch(200)
    assert len(body) > LIMIT
    resp = await small.post(
        f"{BASE}/entityOperations/upsert",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    detail = problem(resp, 413, "InvalidRequest")["detail"]
    assert f"{LIMIT:,}" in detail
    assert await stored(small) == 0


async def test_an_undeclared_body_is_cut_off_at_the_limit(small: httpx.AsyncClient) -> None:
    body = batch(200)

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    resp = await small.post(
        f"{BASE}/entityOperations/upsert",
        content=chunked(),
        headers={"Content-Type": "application/json"},
    )
    problem(resp, 413, "InvalidRequest")
    assert await stored(small) == 0


async def test_a_body_within_the_limit_is_stored(small: httpx.AsyncClient) -> None:
    body = batch(20)
    assert len(body) <= LIMIT
    resp = await small.post(
        f"{BASE}/entityOperations/upsert",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 201, resp.text
    assert await stored(small) == 20


def nested(depth: int) -> object:
    """A JSON value `depth` objects deep."""
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/entities", lambda v: {"id": "urn:ngsi-ld:Bin:d", "type": "Bin", "x": v}),
        ("/entityOperations/create", lambda v: [{"id": "urn:ngsi-ld:Bin:d", "type": "Bin"}, v]),
        ("/temporal/entities", lambda v: {"id": "urn:ngsi-ld:Bin:d", "type": "Bin", "x": v}),
        (
            "/subscriptions",
            lambda v: {"type": "Subscription", "entities": [{"type": "Bin"}], "x": v},
        ),
    ],
)
async def test_a_body_nested_too_deep_is_400_and_stores_nothing(
    client: httpx.AsyncClient, path: str, body: Callable[[object], object]
) -> None:
    """orjson writes at most 254 levels: deeper bodies were stored halfway to a 500."""
    for depth in (MAX_DEPTH, 300):
        resp = await client.post(BASE + path, json=body(nested(depth)))
        problem(resp, 400, "BadRequestData")
    assert (await client.get(f"{BASE}/entities/urn:ngsi-ld:Bin:d")).status_code == 404
    assert (await client.get(f"{BASE}/subscriptions")).json() == []


async def test_a_value_nested_within_the_limit_is_stored(client: httpx.AsyncClient) -> None:
    value = nested(MAX_DEPTH - 4)  # the entity, the attribute and its value hold it
    ent = {"id": "urn:ngsi-ld:Bin:n", "type": "Bin", "x": {"type": "Property", "value": value}}
    assert (await client.post(f"{BASE}/entities", json=ent)).status_code == 201
    got = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Bin:n")).json()
    assert got["x"]["value"] == value
