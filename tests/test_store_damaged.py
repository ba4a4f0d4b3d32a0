"""A database file damaged in the middle: the API says so and what to do, /health reports it
from the first request that found it, and the log says it once per interval."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE, problem


async def _entities(db: Path, n: int) -> None:
    """n entities of 2 KB, so the entities table spans many pages under its root."""
    app = create_app(Settings(db=str(db)))
    batch = [
        {"id": f"urn:ngsi-ld:B:{i}", "type": "B", "n": {"type": "Property", "value": "x" * 2000}}
        for i in range(n)
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        resp = await client.post(f"{BASE}/entityOperations/create", json=batch)
        assert resp.status_code == 201, resp.text
    await app.state.notifier.close()
    app.state.store.close()


def _damage_entities(db: Path) -> None:
    """Overwrite the root page of the entities table with noise, as a bad disk sector would."""
    _damage_table(db, "entities")


def _damage_table(db: Path, table: str) -> None:
    """Overwrite the root page of a table with noise, as a bad disk sector would."""
    with sqlite3.connect(db) as conn:
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * size)
        f.write(os.urandom(size))


@pytest.fixture
async def damaged_hub(tmp_path: Path) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    db = tmp_path / "hub.db"
    await _entities(db, 300)
    _damage_entities(db)
    app = create_app(Settings(db=str(db)))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield app, client
    await app.state.notifier.close()
    app.state.store.close()


async def test_a_damaged_database_answers_what_to_do_and_health_reports_it(
    damaged_hub: tuple[Starlette, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    """The API answered "unexpected server error" and /health stayed "ok"."""
    _, client = damaged_hub
    health = (await client.get("/health")).json()
    assert health["status"] == "ok", "nothing has read the damaged pages yet"
    with caplog.at_level(logging.ERROR, logger="cityhub"):
        for path in ("/entities/urn:ngsi-ld:B:5", "/entities?type=B", "/entities/urn:ngsi-ld:B:7"):
            body = problem(await client.get(BASE + path), 500, "InternalError")
            assert body["detail"] == (
                "the hub's database file is damaged (database disk image is malformed); stop the "
                "hub and restore a backup (`cityhub restore`, from a copy taken with "
                "`cityhub backup`)"
            )
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and "is damaged (database disk image is malformed" in logged[0]
    assert "hub.db" in logged[0] and "cityhub restore" in logged[0], logged
    health = (await client.get("/health")).json()
    assert health["status"] == "degraded"
    assert health["reason"].startswith("the hub's database file is damaged")


async def test_another_sqlite_error_is_still_the_unexpected_500(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked() -> None:
        raise sqlite3.OperationalError("database table is locked")

    monkeypatch.setattr(app.state.store, "answers", locked)  # /health reads it first
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            body = problem(await client.get("/health"), 500)
        assert body["detail"] == "unexpected server error; see the hub log"
        assert not app.state.damaged
    finally:
        app.state.store.close()
