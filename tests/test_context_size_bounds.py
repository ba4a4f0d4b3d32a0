"""A @context a client writes out (inline in a body, hosted, a subscription's jsonldContext)
is bounded as a downloaded one is, and hosted ones are bounded in number and bytes.

A probe hosted one 1,000,000-term @context (40 MB): 201, a concurrent GET waited 18 s while
it compiled, and the hub kept 400 MB more for good; nothing bounded how many.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.ngsild import context as context_module
from cityhub.ngsild.context import MAX_CONTEXT_BYTES
from cityhub.settings import Settings
from conftest import BASE, CORE, JSONLD, problem

CTX = f"{BASE}/jsonldContexts"
LD = {"Content-Type": JSONLD}


def terms(n: int, prefix: str = "t") -> dict[str, str]:
    return {f"{prefix}{i}": f"https://example.org/{prefix}/{i}" for i in range(n)}


def past_the_bound() -> dict[str, str]:
    """An inline @context object just over MAX_CONTEXT_BYTES of JSON."""
    n = MAX_CONTEXT_BYTES // 30 + 1_000  # each term takes ~40 bytes
    return terms(n)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client
    app.state.store.close()


async def hosted(hub: httpx.AsyncClient) -> list[Any]:
    resp = await hub.get(CTX, params={"kind": "Hosted"})
    assert resp.status_code == 200, resp.text
    listed: list[Any] = resp.json()
    return listed


async def test_a_hosted_context_past_the_download_bound_is_refused(
    hub: httpx.AsyncClient,
) -> None:
    body = problem(await hub.post(CTX, json={"@context": past_the_bound()}), 400, "BadRequestData")
    assert f"{MAX_CONTEXT_BYTES:,}" in body["detail"]
    assert await hosted(hub) == []


async def test_an_inline_context_past_the_bound_stores_nothing(hub: httpx.AsyncClient) -> None:
    entity = {"id": "urn:ngsi-ld:T:1", "type": "T", "@context": [past_the_bound(), CORE]}
    problem(await hub.post(f"{BASE}/entities", json=entity, headers=LD), 400, "BadRequestData")
    resp = await hub.get(f"{BASE}/entities/urn:ngsi-ld:T:1")
    assert resp.status_code == 404, resp.text


async def test_a_subscriptions_inline_context_past_the_bound_is_refused(
    hub: httpx.AsyncClient,
) -> None:
    """A subscription keeps the ImplicitlyCreated copy of its inline @context for good."""
    sub = {
        "type": "Subscription",
        "entities": [{"type": "T"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        "@context": [past_the_bound(), CORE],
    }
    resp = await hub.post(f"{BASE}/subscriptions", json=sub, headers=LD)
    problem(resp, 400, "BadRequestData")
    assert (await hub.get(f"{BASE}/subscriptions")).json() == []


async def test_a_context_within_the_bound_is_hosted(hub: httpx.AsyncClient) -> None:
    resp = await hub.post(CTX, json={"@context": terms(1_000)})
    assert resp.status_code == 201, resp.text[:300]


async def test_hosted_contexts_are_bounded_in_number(
    hub: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context_module, "MAX_HOSTED", 3)
    places = []
    for i in range(3):
        resp = await hub.post(CTX, json={"@context": terms(2, f"n{i}")})
        assert resp.status_code == 201, resp.text
        places.append(resp.headers["location"])
    body = problem(
        await hub.post(CTX, json={"@context": terms(2, "n3")}), 422, "OperationNotSupported"
    )
    assert "delete one first" in body["detail"]
    assert len(await hosted(hub)) == 3
    assert (await hub.delete(places[0])).status_code == 204
    resp = await hub.post(CTX, json={"@context": terms(2, "n3")})
    assert resp.status_code == 201, resp.text


async def test_hosted_contexts_are_bounded_in_bytes(
    hub: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context_module, "MAX_HOSTED_BYTES", 10_000)
    resp = await hub.post(CTX, json={"@context": terms(150, "a")})  # ~6 KB
    assert resp.status_code == 201, resp.text
    problem(await hub.post(CTX, json={"@context": terms(150, "b")}), 422, "OperationNotSupported")
    resp = await hub.post(CTX, json={"@context": terms(10, "c")})  # what is left still fits
    assert resp.status_code == 201, resp.text
