"""An endpoint's own timeout is bounded as the hub-wide one is: one subscription with
timeout 1e308 held an endpoint URI's queue, shared by every tenant, until a restart (probe 2,
finding 3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cityhub.ngsild.notify_timeout import attempt_seconds
from conftest import BASE


@pytest.mark.parametrize("timeout", [300_001, 1e308])
async def test_an_endpoint_timeout_past_300_s_is_400_on_create_and_update(
    hub: httpx.AsyncClient, timeout: float
) -> None:
    def body(ms: float | None) -> dict[str, Any]:
        endpoint: dict[str, Any] = {"uri": "http://127.0.0.1:9/n"}
        if ms is not None:
            endpoint["timeout"] = ms
        return {
            "id": "urn:s:to",
            "type": "Subscription",
            "entities": [{"type": "T"}],
            "notification": {"endpoint": endpoint},
        }

    resp = await hub.post(f"{BASE}/subscriptions", json=body(timeout))
    assert resp.status_code == 400 and "300000" in resp.json()["detail"], resp.text
    assert (await hub.post(f"{BASE}/subscriptions", json=body(300_000))).status_code == 201
    resp = await hub.patch(
        f"{BASE}/subscriptions/urn:s:to", json={"notification": body(timeout)["notification"]}
    )
    assert resp.status_code == 400, resp.text


def test_a_stored_timeout_past_the_bound_is_cut_to_it() -> None:
    assert attempt_seconds({"uri": "http://x", "timeout": 1e308}, 5.0) == 300.0
    assert attempt_seconds({"uri": "http://x", "timeout": 1500}, 5.0) == 1.5
    assert attempt_seconds({"uri": "http://x"}, 5.0) == 5.0
