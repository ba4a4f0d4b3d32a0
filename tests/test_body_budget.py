"""Large request bodies held at once are bounded hub-wide (CITYHUB_BODY_MEMORY_MB): one past the
bound is a 503 with Retry-After before it is read, nothing stored. Probe (resilience, finding
3): one 61 MB batch upsert took the hub from 171 to 371 MB, four at once to 805 MB, and up
to CITYHUB_MAX_CONNECTIONS (1,000) may send one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE, problem

KIB = 1024


def batch(first: int, size: int) -> bytes:
    """A batch upsert body of about `size` bytes, its ids from `first` on."""
    items, n = [], first
    while sum(len(i) for i in items) < size:
        items.append(orjson.dumps({"id": f"urn:ngsi-ld:T:{n}", "type": "T", "v": "x" * 900}))
        n += 1
    return b"[" + b",".join(items) + b"]"


async def slowly(body: bytes, go_on: asyncio.Event) -> AsyncIterator[bytes]:
    """Half of the body, then the rest once `go_on` is set: a client still sending."""
    yield body[: len(body) // 2]
    await go_on.wait()
    yield body[len(body) // 2 :]


def hub(tmp_path: Path) -> Starlette:
    return create_app(Settings(db=str(tmp_path / "hub.db"), body_memory_mb=1))


async def test_a_large_body_past_the_hub_wide_bound_is_a_503_that_stores_nothing(
    tmp_path: Path,
) -> None:
    app = hub(tmp_path)
    upsert = f"{BASE}/entityOperations/upsert"
    first, second = batch(0, 700 * KIB), batch(10_000, 700 * KIB)
    go_on = asyncio.Event()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        sending = asyncio.create_task(
            client.post(
                upsert,
                content=slowly(first, go_on),
                headers={"Content-Type": "application/json", "Content-Length": str(len(first))},
            )
        )
        await asyncio.sleep(0.2)  # its first half is read: its length is held
        resp = await client.post(
            upsert, content=second, headers={"Content-Type": "application/json"}
        )
        body = problem(resp, 503)
        assert "CITYHUB_BODY_MEMORY_MB" in body["detail"], body
        assert resp.headers["retry-after"] == "1"
        # small bodies are not held back
        small = await client.post(f"{BASE}/entities", json={"id": "urn:ngsi-ld:T:s", "type": "T"})
        assert small.status_code == 201, small.text
        go_on.set()
        assert (await sending).status_code == 201
        got = await client.get(f"{BASE}/entities/urn:ngsi-ld:T:10000")
        assert got.status_code == 404, "a refused body stored nothing"
        # the first one's bytes were given back: the same body is taken now
        resp = await client.post(
            upsert, content=second, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 201, resp.text
    app.state.store.close()


async def test_one_body_is_taken_whatever_the_bound(tmp_path: Path) -> None:
    """A body larger than the bound alone is read when no other is held, so CITYHUB_MAX_BODY
    stays the largest body the hub takes."""
    app = hub(tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for _ in range(2):  # and the bytes are given back after each
            resp = await client.post(
                f"{BASE}/entityOperations/upsert",
                content=batch(0, 1500 * KIB),
                headers={"Content-Type": "application/json"},
            )
            assert resp.status_code in (201, 204), resp.text
    app.state.store.close()


async def in_pieces(body: bytes, piece: int) -> AsyncIterator[bytes]:
    """The body in pieces, with no Content-Length: a client sending it chunked."""
    for at in range(0, len(body), piece):
        yield body[at : at + piece]


async def test_one_chunked_body_is_taken_whatever_the_bound_too(tmp_path: Path) -> None:
    """Without a Content-Length the body is held as it is read: its own first pieces counted
    as another body's, so alone it was a 503 past the bound, though the same body with its
    length declared was taken."""
    app = hub(tmp_path)
    body = batch(0, 1500 * KIB)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for _ in range(2):  # and the bytes are given back after each
            resp = await client.post(
                f"{BASE}/entityOperations/upsert",
                content=in_pieces(body, 300 * KIB),
                headers={"Content-Type": "application/json"},
            )
            assert resp.status_code in (201, 204), resp.text
        assert app.state.bodies.held == 0
    app.state.store.close()
