"""Deleting a hub-served @context that a hosted one includes (5.13.5): refused while the
including one exists, so the hosted context clients and devices name keeps working."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from cityhub.api.contexts import implicit_context
from conftest import BASE, CORE, link, problem
from test_jsonld_contexts import CTX, DOC_A, HUB, VOCAB, _request, add, hub, hub_app, lamp

__all__ = ["hub", "hub_app"]  # the fixtures, imported for the tests below


async def test_a_context_a_hosted_one_includes_is_not_deleted(hub: httpx.AsyncClient) -> None:
    inner = await add(hub)
    outer = await add(hub, {"@context": [f"{HUB}{CTX}/{inner}", {"extra": VOCAB + "extra"}]})
    resp = await hub.delete(f"{CTX}/{inner}")
    body = problem(resp, 409, "Conflict")
    assert outer in body["detail"], body
    # nothing changed: both are served, and the outer one still expands the inner one's terms
    assert (await hub.get(f"{CTX}/{inner}")).json() == DOC_A
    resp = await hub.post(
        f"{BASE}/entities", json=lamp(), headers={"Link": link(f"{HUB}{CTX}/{outer}")}
    )
    assert resp.status_code == 201, resp.text
    got = (await hub.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1")).json()
    assert got["type"] == VOCAB + "Lamp" and VOCAB + "lux" in got, got
    # once the including context is gone, the included one can go
    assert (await hub.delete(f"{CTX}/{outer}")).status_code == 204
    assert (await hub.delete(f"{CTX}/{inner}")).status_code == 204
    problem(await hub.get(f"{CTX}/{inner}"), 404, "ResourceNotFound")


async def test_an_implicit_context_a_hosted_one_includes_is_not_deleted(
    hub: httpx.AsyncClient, hub_app: Starlette
) -> None:
    url = implicit_context(_request(hub_app), [{"Lamp": VOCAB + "Lamp"}, CORE])
    outer = await add(hub, {"@context": [url]})
    problem(await hub.delete(f"{CTX}/{url.rsplit('/', 1)[-1]}"), 409, "Conflict")
    resp = await hub.post(
        f"{BASE}/entities", json=lamp(), headers={"Link": link(f"{HUB}{CTX}/{outer}")}
    )
    assert resp.status_code == 201, resp.text
