"""Background deletes are sized by time: a step that held the loop long makes the next one
smaller, and the loop is left to requests for as long (decisions 017 and 040). Steps of a
fixed 2,000 rows held every request for 0.1-2 s with interleaved sensors or large instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub import pacing
from cityhub.api.app import create_app
from cityhub.pacing import StepPacer
from cityhub.settings import Settings
from cityhub.store.base import Erasure
from cityhub.store.sqlite import erasures
from conftest import BASE
from test_history_retention import age, entity

SLOW = 4 * pacing.TARGET  # what each step of a slow store takes, on a clock of the test's own


def test_slow_steps_shrink_quick_ones_grow_within_bounds() -> None:
    pacer = StepPacer(2000)
    first = pacer.size
    assert 0 < first <= 2000
    assert pacer.took(SLOW) == SLOW  # the loop is left to requests as long as the step took
    assert pacer.size == first // 4  # sized to take about TARGET
    for _ in range(20):
        pacer.took(10.0)
    assert pacer.size == pacing.LEAST  # however slow, a step still takes a few rows
    for _ in range(20):
        pacer.took(0.0)
    assert pacer.size == 2000  # quick steps grow back, to the most asked for
    pacer.took(pacing.TARGET)
    assert pacer.size == 2000  # about on target: kept
    assert StepPacer(3).size == 3


@pytest.fixture
def slow_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """time.perf_counter advances SLOW per call, so each step looks slow; the pauses are
    real (asyncio's clock is time.monotonic)."""
    ticks = iter(range(1_000_000))
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks) * SLOW / 2)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    app = create_app(Settings(db=str(tmp_path / "hub.db"), history_days=30))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client, app
    await app.state.eraser.close()
    app.state.store.close()


async def test_slow_retention_steps_get_smaller_and_health_counts_them_as_they_go(
    hub: tuple[httpx.AsyncClient, Starlette], slow_clock: None
) -> None:
    client, app = hub
    batch = [entity(f"urn:ngsi-ld:Sensor:{i}", i) for i in range(500)]
    assert (await client.post(f"{BASE}/entityOperations/create", json=batch)).status_code == 201
    age(app, 31)
    limits: list[int] = []
    real = app.state.store.prune_history

    def recording(before: float, after: int, limit: int) -> Any:
        limits.append(limit)
        return real(before, after, limit)

    app.state.store.prune_history = recording
    pruning = asyncio.create_task(app.state.pruner.prune())
    while len(limits) < 2:
        await asyncio.sleep(0.001)
    health = (await client.get("/health")).json()["history"]
    assert 0 < health["deletedInstances"] < 500  # counted step by step, not at the end
    assert health["lastRun"] is None
    assert await pruning == 500
    assert limits[0] == pacing.FIRST and limits[1] < limits[0]
    assert max(limits[1:]) < pacing.FIRST
    health = (await client.get("/health")).json()["history"]
    assert health["deletedInstances"] == 500 and health["lastRun"] is not None


async def test_slow_erasure_steps_get_smaller(
    hub: tuple[httpx.AsyncClient, Starlette], slow_clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, app = hub
    monkeypatch.setattr(erasures, "STEP", 100)  # the DELETE's own step; the eraser's at most
    eid = "urn:ngsi-ld:Sensor:long"
    readings = [
        {"type": "Property", "value": i, "observedAt": f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00Z"}
        for i in range(400)
    ]
    body = {"id": eid, "type": "Sensor", "n": readings}
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    limits: list[int] = []
    store = app.state.store
    real = store.erase_history

    def recording(erasure: Erasure, limit: int = erasures.STEP) -> Any:
        limits.append(limit)
        return real(erasure, limit)

    store.erase_history = recording
    r = await client.delete(f"{BASE}/temporal/entities/{eid}/attrs/n")
    assert r.status_code == 204
    assert limits[0] == pacing.FIRST and limits[1] < limits[0]
    assert max(limits[1:]) < pacing.FIRST
    r = await client.get(f"{BASE}/temporal/entities/{eid}")
    assert "n" not in r.json()
