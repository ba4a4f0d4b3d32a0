"""Helpers shared by the IoT agent tests (tests/test_iot_*.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

IOT = "/iot/v1"
MOSQUITTO = ("127.0.0.1", 1883)
BROKER = f"mqtt://{MOSQUITTO[0]}:{MOSQUITTO[1]}"


def own_root() -> str:
    """A topic root no other test, hub or device on the shared Mosquitto publishes under: a
    shared-subscription group alone still gets a copy of every cityhub/... message."""
    return f"test-{uuid.uuid4().hex[:12]}/cityhub"


def on_mosquitto(**settings: Any) -> dict[str, Any]:
    """Settings of a hub on the shared Mosquitto, isolated by construction: its own topic root
    and group, and a session that ends when it disconnects (tests leave none behind); each
    can be overridden."""
    own = {
        "mqtt": BROKER,
        "mqtt_topic_root": own_root(),
        "mqtt_group": f"test-{uuid.uuid4().hex[:8]}",
        "mqtt_session_expiry": 0,
    }
    return {**own, **settings}


# A mapping that exercises every transform: scale/offset, unitCode, a point, a relationship,
# a boolean, a string, observedAt and a static attribute.
MAPPING: dict[str, Any] = {
    "attributes": {
        "t": {"name": "temperature", "type": "number", "unitCode": "CEL", "scale": 0.1},
        "f": {"name": "fahrenheit", "type": "number", "scale": 1.8, "offset": 32},
        "on": {"name": "heating", "type": "boolean"},
        "st": {"name": "status", "type": "string"},
        "room": {"name": "isIn", "type": "relationship", "prefix": "urn:ngsi-ld:Room:"},
    },
    "points": {"location": {"lat": "la", "lon": "lo"}},
    "observedAt": "ts",
    "static": {"name": {"type": "Property", "value": "Boiler room sensor"}},
}


async def provision(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    tenant: str | None = None,
    kind: str = "devices",
) -> dict[str, Any]:
    """Create a device (or source) and return the create answer (which holds the key)."""
    headers = {"NGSILD-Tenant": tenant} if tenant else None
    resp = await client.post(f"{IOT}/{kind}", json=body, headers=headers)
    assert resp.status_code == 201, f"create {body.get('id')}: {resp.status_code} {resp.text}"
    answer: dict[str, Any] = resp.json()
    return answer


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    """GET /iot/v1/stats."""
    resp = await client.get(f"{IOT}/stats")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Poll check() until it is true; fail naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_stats(
    client: httpx.AsyncClient, timeout: float = 10.0, **want: int
) -> dict[str, Any]:
    """Poll the stats until every named counter has at least the wanted value."""
    latest: dict[str, Any] = {}

    async def ok() -> bool:
        nonlocal latest
        latest = await stats(client)
        return all(_counter(latest, k) >= v for k, v in want.items())

    await wait_for(ok, f"stats {want}", timeout)
    return latest


def _counter(body: dict[str, Any], name: str) -> int:
    if name in body:
        return int(body[name])
    return int(body["rejectedByReason"][name])


def broker_reachable(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_mosquitto() -> None:
    """Skip without a local Mosquitto, except under CI=true, where its absence is a failure."""
    if broker_reachable(*MOSQUITTO):
        return
    where = f"{MOSQUITTO[0]}:{MOSQUITTO[1]}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but no MQTT broker answers on {where}: CI must provide Mosquitto")
    pytest.skip(f"no Mosquitto on {where} (install and start it to run the MQTT tests)")
