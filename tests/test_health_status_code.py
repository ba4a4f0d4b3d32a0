"""/health's HTTP status: 503 while the hub cannot serve its data (its file deleted or replaced,
or found damaged), so monitors and load balancers that read only the status code see it; 200
while it serves, degraded or not (decision 085)."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE
from test_store_damaged import _damage_table, _entities, damaged_hub  # noqa: F401  (a fixture)
from test_store_lost import lamp, reason_with, watched  # noqa: F401  (watched: a fixture)


async def test_a_hub_whose_file_was_deleted_answers_health_with_503(
    watched: tuple[Starlette, httpx.AsyncClient],  # noqa: F811
) -> None:
    """Every request was refused with 503 while /health answered 200 "degraded"."""
    app, client = watched
    assert (await client.get("/health")).status_code == 200
    assert (await client.post(f"{BASE}/entities", json=lamp(1))).status_code == 201
    db = Path(app.state.store.path)
    for name in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        name.unlink(missing_ok=True)
    await reason_with(client, "saved in")
    resp = await client.get("/health")
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["status"] == "degraded" and "was deleted while the hub ran" in body["reason"]
    assert "storage" in body and "notifications" in body, "the whole report, not a bare 503"


async def test_a_damaged_database_answers_health_with_503(
    damaged_hub: tuple[Starlette, httpx.AsyncClient],  # noqa: F811
) -> None:
    _, client = damaged_hub
    assert (await client.get("/health")).status_code == 200, "no request found it yet"
    assert (await client.get(f"{BASE}/entities?type=B")).status_code == 500
    resp = await client.get("/health")
    assert resp.status_code == 503
    assert resp.json()["reason"].startswith("the hub's database file is damaged")


async def test_a_degraded_hub_that_still_serves_answers_health_with_200(tmp_path: Path) -> None:
    """A broker that cannot be reached leaves every API request served: still 200."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), mqtt="mqtt://127.0.0.1:9"))
    app.state.iot.health = lambda: ({"connected": False}, "the MQTT broker is not connected")
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            resp = await client.get("/health")
        assert resp.status_code == 200
        assert resp.json()["status"] == "degraded"
    finally:
        app.state.store.close()


async def test_health_that_finds_the_damage_itself_answers_503_with_its_report(
    tmp_path: Path,
) -> None:
    """/health's own read (the tenants table) meeting a damaged page answered the API's 500
    ProblemDetails, at every poll: a monitor never saw the 503 report (decision 085)."""
    db = tmp_path / "hub.db"
    await _entities(db, 3)
    _damage_table(db, "tenants")
    app = create_app(Settings(db=str(db)))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            for _ in range(2):
                resp = await client.get("/health")
                assert resp.status_code == 503, resp.text
                body = resp.json()
                assert body["status"] == "degraded", body
                assert body["reason"].startswith("the hub's database file is damaged"), body
                assert "storage" in body and "notifications" in body
    finally:
        await app.state.notifier.close()
        app.state.store.close()
