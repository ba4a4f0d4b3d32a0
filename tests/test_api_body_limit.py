"""CITYHUB_MAX_BODY: a request body over the limit is refused with 413 and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from cityhub.api.app import create_app
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
