"""Deleting a hub-served @context that a hosted one includes, or that IoT devices or sources
name (5.13.5): refused while they exist, so what clients and devices name keeps working."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.api.contexts import implicit_context
from cityhub.settings import Settings
from conftest import BASE, CORE, link, problem
from iot_support import IOT, provision
from test_jsonld_contexts import (
    CTX,
    DOC_A,
    HUB,
    PATIENT,
    VOCAB,
    _request,
    add,
    hub,
    hub_app,
    lamp,
)

__all__ = ["hub", "hub_app"]  # the fixtures, imported for the tests below
CITY = {"NGSILD-Tenant": "city"}


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


async def test_a_hosted_context_iot_devices_or_sources_name_is_not_deleted(
    hub: httpx.AsyncClient,
) -> None:
    # deleted, every later message of those devices was refused (context_unavailable)
    local_id = await add(hub)
    url = f"{HUB}{CTX}/{local_id}"
    source = {"id": "meters", "entityType": "Lamp", "ldContext": url}
    device = {"id": "lamp-1", "entityType": "Lamp", "protocol": "http", "ldContext": url}
    await provision(hub, source, tenant="city", kind="sources")
    await provision(hub, device, tenant="city")
    body = problem(await hub.delete(f"{CTX}/{local_id}"), 409, "Conflict")
    assert "lamp-1" in body["detail"] and "meters" in body["detail"], body
    assert (await hub.delete(f"{IOT}/devices/lamp-1", headers=CITY)).status_code == 204
    problem(await hub.delete(f"{CTX}/{local_id}"), 409, "Conflict")
    assert (await hub.delete(f"{IOT}/sources/meters", headers=CITY)).status_code == 204
    assert (await hub.delete(f"{CTX}/{local_id}")).status_code == 204


async def test_what_a_deleted_context_a_subscription_names_includes_stays_for_it(
    hub: httpx.AsyncClient, tmp_path: Path
) -> None:
    # the subscription names outer, outer includes inner: outer deleted (kept, retired, for
    # the subscription), then inner; the subscription must still compile after a restart
    inner = await add(hub)
    outer = await add(hub, {"@context": [f"{HUB}{CTX}/{inner}"]})
    sub = {
        "id": "urn:ngsi-ld:Subscription:lamps",
        "type": "Subscription",
        "entities": [{"type": "Lamp"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    headers = {"Link": link(f"{HUB}{CTX}/{outer}")}
    assert (await hub.post(f"{BASE}/subscriptions", json=sub, headers=headers)).status_code == 201
    assert (await hub.delete(f"{CTX}/{outer}")).status_code == 204
    assert (await hub.delete(f"{CTX}/{inner}")).status_code == 204
    problem(await hub.get(f"{CTX}/{inner}"), 404, "ResourceNotFound")
    app2 = create_app(Settings(db=str(tmp_path / "hub.db"), context_timeout=PATIENT))
    try:
        assert app2.state.notifier.get("", sub["id"]) is not None, "the subscription waits"
    finally:
        app2.state.store.close()
