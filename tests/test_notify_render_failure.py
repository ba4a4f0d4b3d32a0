"""A notification that cannot be rendered is never dropped silently: the subscription's
status and lastFailure say so, and /health counts it; a joinLevel stored before the bound
renders at the bound instead of recursing past the stack."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from conftest import BASE, create
from receivers import Receiver, wait_for

SUBS = f"{BASE}/subscriptions"
SID = "urn:ngsi-ld:Subscription:render"


async def subscribe(hub: httpx.AsyncClient, url: str, **notification: Any) -> None:
    body = {
        "id": SID,
        "type": "Subscription",
        "entities": [{"type": "Chain"}],
        "notification": {"endpoint": {"uri": url}, **notification},
    }
    resp = await hub.post(SUBS, json=body)
    assert resp.status_code == 201, resp.text


async def test_a_render_failure_shows_in_status_and_health(
    hub: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub.notify import payload

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("cannot render")

    monkeypatch.setattr(payload, "render_event_entity", broken)
    await subscribe(hub, receiver.url())
    await create(hub, {"id": "urn:e:c0", "type": "Chain", "n": {"type": "Property", "value": 1}})

    async def failed() -> dict[str, Any] | None:
        got: dict[str, Any] = (await hub.get(f"{SUBS}/{SID}")).json()["notification"]
        return got if got.get("status") == "failed" else None

    notification = None
    for _ in range(250):
        notification = await failed()
        if notification:
            break
        await wait_for(lambda: True)
    assert notification is not None, "the subscription never showed the failure"
    assert "lastFailure" in notification and "lastSuccess" not in notification
    health = (await hub.get("/health")).json()["notifications"]
    assert health["renderFailed"] == 1
    assert health["givenUp"] == 1 and health["delivered"] == 0
    assert receiver.received() == []


async def test_a_stored_join_level_past_the_bound_renders_at_the_bound(
    app: Starlette, hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    chain = [
        {
            "id": f"urn:e:c{i}",
            "type": "Chain",
            "next": {"type": "Relationship", "object": f"urn:e:c{i + 1}"},
        }
        for i in range(1_200)
    ]
    resp = await hub.post(f"{BASE}/entityOperations/create", json=chain)
    assert resp.status_code == 201, resp.text[:300]
    await subscribe(hub, receiver.url(), join="flat", joinLevel=16)
    # a subscription stored before joinLevel was bounded
    store = app.state.store
    store.resource_update(
        "subscription",
        "",
        SID,
        lambda doc: {**doc, "notification": {**doc["notification"], "joinLevel": 100_000}},
    )
    await app.state.notifier.refresh("", SID)
    resp = await hub.patch(
        f"{BASE}/entities/urn:e:c0/attrs", json={"n": {"type": "Property", "value": 2}}
    )
    assert resp.status_code in (204, 207), resp.text
    got = await wait_for(lambda: receiver.received(), timeout=10, what="the notification")
    ids = [e["id"] for e in got[0].body["data"]]
    assert ids == [f"urn:e:c{i}" for i in range(17)]  # the entity and 16 hops
