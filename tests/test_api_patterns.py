"""Client regular expressions (idPattern, q `~=`) cannot stall the hub, and what RE2 refuses is a
clear 400 (docs/decisions/014)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request

# With a backtracking engine this takes about 2**len(id) steps per id: 3 s for 24 characters
# in CPython's `re`, years for these ids.
EVIL = "(.*)*Z"
IDS = [f"urn:ngsi-ld:Sensor:{'x' * 40}{i}" for i in range(3)]


@pytest.fixture
def guard() -> Iterator[None]:
    """Fail the test after 60 s instead of hanging CI, should a pattern backtrack again."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError("a client pattern stalled the hub for 60 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
async def sensors(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Three sensors with long ids and a long name each."""
    batch = [
        {"id": i, "type": "Sensor", "name": {"type": "Property", "value": "y" * 40}} for i in IDS
    ]
    r = await client.post(f"{BASE}/entityOperations/create", json=batch)
    assert r.status_code == 201, r.text
    return client


async def test_backtracking_patterns_answer(sensors: httpx.AsyncClient, guard: None) -> None:
    """idPattern and ~= with nested quantifiers are answered, matches and non-matches alike."""
    c = sensors
    r = await c.get(f"{BASE}/entities", params={"type": "Sensor", "idPattern": EVIL})
    assert r.status_code == 200 and r.json() == []
    r = await c.get(f"{BASE}/entities", params={"type": "Sensor", "idPattern": "(x+)+2$"})
    assert [e["id"] for e in r.json()] == [IDS[2]]
    r = await c.get(f"{BASE}/entities", params={"type": "Sensor", "q": f"name~={EVIL}"})
    assert r.status_code == 200 and r.json() == []
    r = await c.get(f"{BASE}/entities", params={"type": "Sensor", "q": "name!~=(y+)+Z"})
    assert len(r.json()) == 3
    body = {"type": "Query", "entities": [{"idPattern": EVIL, "type": "Sensor"}]}
    r = await c.post(f"{BASE}/entityOperations/query", json=body)
    assert r.status_code == 200 and r.json() == []
    r = await c.get(f"{BASE}/temporal/entities", params={"type": "Sensor", "idPattern": EVIL})
    assert r.status_code == 200 and r.json() == []


async def test_backtracking_pattern_in_a_subscription(
    sensors: httpx.AsyncClient, guard: None
) -> None:
    """A subscription's idPattern is matched against every write it could concern."""
    c = sensors
    sub = {
        "type": "Subscription",
        "entities": [{"idPattern": EVIL, "type": "Sensor"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/none"}},
    }
    r = await c.post(f"{BASE}/subscriptions", json=sub)
    assert r.status_code == 201, r.text
    patch = {"name": {"type": "Property", "value": "z" * 40}}
    r = await c.patch(f"{BASE}/entities/{IDS[0]}/attrs", json=patch)
    assert r.status_code == 204, r.text


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a)\1",  # back-reference: not in POSIX EREs, and exponential to match
        r"(?=a)b",  # look-ahead
        r"(?<!a)b",  # look-behind
        "(unclosed",
        "a{1001}",  # a repetition RE2 will not expand
    ],
)
async def test_patterns_re2_refuses_are_400(client: httpx.AsyncClient, pattern: str) -> None:
    """Each answers 400 naming the pattern, in idPattern and in q alike."""
    r = await client.get(f"{BASE}/entities", params={"type": "T", "idPattern": pattern})
    assert pattern in bad_request(r)["detail"]
    r = await client.get(f"{BASE}/entities", params={"type": "T", "q": f"name~={pattern}"})
    bad_request(r)
