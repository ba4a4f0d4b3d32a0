"""A request that writes one entity has a body bound of its own (decision 082): a 50 MB body
sent to POST /entities was read and parsed, 0.35 s of CPU, only to be refused for the size of
its entity. Batches and temporal writes keep CITYHUB_MAX_BODY, which leaves them room."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from cityhub.api.app import create_app
from cityhub.api.body_limits import entity_body_limit
from cityhub.ngsild.context import MAX_CONTEXT_BYTES
from cityhub.settings import Settings
from conftest import BASE, problem

BOUND = 2048
EID = "urn:ngsi-ld:Bin:1"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def bounded(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db=str(tmp_path / "hub.db"), max_entity_body=BOUND))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client
    app.state.store.close()


def padded(size: int, **members: object) -> bytes:
    """A JSON object of `size` bytes: the members, then a Property holding the padding."""
    head = orjson.dumps({**members, "note": {"type": "Property", "value": ""}})
    return head[:-3] + b"x" * (size - len(head)) + head[-3:]


ONE_ENTITY = [
    ("POST", "/entities", {"id": EID, "type": "Bin"}),
    ("PUT", f"/entities/{EID}", {"type": "Bin"}),
    ("PATCH", f"/entities/{EID}", {}),
    ("POST", f"/entities/{EID}/attrs", {}),
    ("PATCH", f"/entities/{EID}/attrs", {}),
    ("PATCH", f"/entities/{EID}/attrs/note", {}),
    ("PUT", f"/entities/{EID}/attrs/note", {}),
    ("PATCH", f"/temporal/entities/{EID}/attrs/note/urn:ngsi-ld:Instance:1", {}),
]


@pytest.mark.parametrize(("method", "path", "members"), ONE_ENTITY)
async def test_a_one_entity_body_past_its_bound_is_413(
    bounded: httpx.AsyncClient, method: str, path: str, members: dict[str, object]
) -> None:
    body = padded(BOUND + 1, **members)
    resp = await bounded.request(method, BASE + path, content=body, headers=JSON)
    detail = problem(resp, 413, "InvalidRequest")["detail"]
    assert f"{BOUND:,}" in detail and "CITYHUB_MAX_ENTITY_BODY" in detail
    assert (await bounded.get(f"{BASE}/entities/{EID}")).status_code == 404


async def test_an_undeclared_one_entity_body_is_cut_off_at_its_bound(
    bounded: httpx.AsyncClient,
) -> None:
    body = padded(BOUND * 4, id=EID, type="Bin")
    pulled = 0

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        nonlocal pulled
        for i in range(0, len(body), 512):
            pulled += 512
            yield body[i : i + 512]

    resp = await bounded.post(f"{BASE}/entities", content=chunked(), headers=JSON)
    problem(resp, 413, "InvalidRequest")
    assert pulled <= BOUND + 512  # refused as soon as it passed the bound, not read whole
    assert (await bounded.get(f"{BASE}/entities/{EID}")).status_code == 404


async def test_a_body_within_the_bound_is_written(bounded: httpx.AsyncClient) -> None:
    body = padded(BOUND, id=EID, type="Bin")
    resp = await bounded.post(f"{BASE}/entities", content=body, headers=JSON)
    assert resp.status_code == 201, resp.text


async def test_a_batch_keeps_the_whole_body_bound(bounded: httpx.AsyncClient) -> None:
    body = b"[" + padded(BOUND * 2, id=EID, type="Bin") + b"]"
    resp = await bounded.post(f"{BASE}/entityOperations/create", content=body, headers=JSON)
    assert resp.status_code == 201, resp.text


async def test_a_temporal_write_keeps_the_whole_body_bound(bounded: httpx.AsyncClient) -> None:
    value = {"type": "Property", "value": "x" * BOUND, "observedAt": "2026-01-01T00:00:00Z"}
    body = orjson.dumps({"id": EID, "type": "Bin", "note": [value]})
    resp = await bounded.post(f"{BASE}/temporal/entities", content=body, headers=JSON)
    assert resp.status_code == 201, resp.text


def test_the_default_bound_leaves_room_for_an_escaped_entity_and_an_inline_context() -> None:
    settings = Settings()
    assert entity_body_limit(settings) == 3 * settings.max_entity_bytes + MAX_CONTEXT_BYTES
    assert entity_body_limit(settings) == 10 * 1024 * 1024
    assert entity_body_limit(Settings(max_body=4096)) == 4096  # never past the whole bound
    assert entity_body_limit(Settings(max_entity_bytes=0)) == settings.max_body
    assert entity_body_limit(Settings(max_entity_body=5000)) == 5000


async def test_an_entity_near_the_entity_bound_written_escaped_is_stored(
    client: httpx.AsyncClient,
) -> None:
    """Python's json.dumps writes each é as six bytes: an entity just under
    CITYHUB_MAX_ENTITY_BYTES takes three times that in its body, and still fits."""
    ent = {"id": EID, "type": "Bin", "note": {"type": "Property", "value": "é" * 1_000_000}}
    body = json.dumps(ent).encode()  # ensure_ascii: \\u00e9
    assert len(body) > 2 * Settings().max_entity_bytes
    resp = await client.post(f"{BASE}/entities", content=body, headers=JSON)
    assert resp.status_code == 201, resp.text[:300]


async def test_a_50_mb_create_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    """The declared length alone refuses it: the body is never pulled from the server."""
    pulled = 0

    async def fifty_mb() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(50):
            pulled += 1
            yield b" " * 1_000_000

    headers = JSON | {"Content-Length": str(50_000_000)}
    resp = await client.post(f"{BASE}/entities", content=fifty_mb(), headers=headers)
    assert "CITYHUB_MAX_ENTITY_BODY" in problem(resp, 413, "InvalidRequest")["detail"]
    assert pulled <= 1
