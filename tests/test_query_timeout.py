"""CITYHUB_QUERY_TIMEOUT: a read that runs too long is stopped with 503, and the hub reads on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.sqlite import backend
from conftest import BASE, problem

N = 2000
EID = "urn:ngsi-ld:Sensor:0"
# Each of these reads takes far more than the 10,000 SQLite steps between two deadline checks.
# /types and /attributes are not among them: they read a few count rows (decision 020); the
# temporal reads count their entities, since a first page alone stops after a few rows.
SLOW_READS = [
    "/entities?type=Sensor&q=name~=x.*y",
    "/entities?type=Sensor&q=n>=0&count=true",
    "/entities?type=Sensor&idPattern=.*9$&limit=1000",
    "/temporal/entities?type=Sensor&attrs=n&count=true",
    "/temporal/entities?type=Sensor&attrs=n&aggrMethods=sum&aggrPeriodDuration=PT1H"
    "&options=aggregatedValues&count=true",
]


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    """A hub whose queries may read for one microsecond, holding N sensors."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), query_timeout=1e-6))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        batch = [
            {
                "id": f"urn:ngsi-ld:Sensor:{i}",
                "type": "Sensor",
                "n": {"type": "Property", "value": i, "observedAt": "2026-01-01T00:00:00Z"},
                "name": {"type": "Property", "value": f"sensor {i}"},
            }
            for i in range(N)
        ]
        r = await client.post(f"{BASE}/entityOperations/create", json=batch)
        assert r.status_code == 201, r.text
        yield client, app
    app.state.store.close()


@pytest.mark.parametrize("path", SLOW_READS)
async def test_a_read_past_the_limit_is_503(
    hub: tuple[httpx.AsyncClient, Starlette], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped, with a ProblemDetails that names the setting; then the same read, with time
    enough, answers in full on the same connection."""
    client, app = hub
    monkeypatch.setattr(backend, "SPLIT_SPAN", 10)  # count=true splits: its other half too
    body = problem(await client.get(BASE + path), 503)
    assert "CITYHUB_QUERY_TIMEOUT" in body["detail"]
    r = await client.get(f"{BASE}/entities/{EID}")  # a read by id is not bounded
    assert r.status_code == 200
    app.state.store.query_timeout = 30.0
    r = await client.get(BASE + path)
    assert r.status_code == 200, r.text
    if "count=true" in path:
        assert r.headers["NGSILD-Results-Count"] == str(N)


async def test_no_limit(tmp_path: Path) -> None:
    """query_timeout 0 bounds nothing."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), query_timeout=0))
    assert app.state.store.query_timeout == 0
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        batch = [{"id": f"urn:ngsi-ld:T:{i}", "type": "T"} for i in range(N)]
        assert (await client.post(f"{BASE}/entityOperations/create", json=batch)).status_code == 201
        r = await client.get(f"{BASE}/entities", params={"type": "T", "count": "true"})
        assert r.headers["NGSILD-Results-Count"] == str(N)
    app.state.store.close()


@pytest.mark.parametrize(
    "path",
    [
        "/entities?type=Sensor&q=name~=x.*y",
        "/entities?type=Sensor&idPattern=.*9$&limit=1000",
        "/entities?type=Sensor&q=n[k]==1&limit=1000",  # a path into values: the evaluator
    ],
)
async def test_a_read_whose_rows_call_python_stops_between_rows(
    hub: tuple[httpx.AsyncClient, Starlette], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The progress handler runs every PROGRESS_STEPS SQLite steps; when each row calls a
    costly Python function (a 100 KB pattern took 63 ms a row) those steps ran 50 s past a
    1 s limit. The functions themselves now stop the read."""
    client, _app = hub
    monkeypatch.setattr(backend, "PROGRESS_STEPS", 10**9)  # the handler never runs
    body = problem(await client.get(BASE + path), 503)
    assert "CITYHUB_QUERY_TIMEOUT" in body["detail"]
