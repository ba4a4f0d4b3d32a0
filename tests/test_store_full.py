"""A full disk: writes answer 503 and store nothing, reads go on, and the hub recovers."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.sqlite import SqliteStore, backend
from conftest import BASE, problem


def note(n: int) -> dict[str, object]:
    return {"id": f"urn:ngsi-ld:Note:{n}", "type": "Note", "text": "x" * 3000}


async def test_a_full_disk_is_a_503_that_stores_nothing_and_the_hub_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    writer = app.state.store._writer
    (pages,) = writer.execute("PRAGMA page_count").fetchone()
    writer.execute(f"PRAGMA max_page_count = {pages + 40}")  # room for a few writes only
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        stored = []
        for n in range(200):
            resp = await client.post(f"{BASE}/entities", json=note(n))
            if resp.status_code != 201:
                break
            stored.append(n)
        assert stored and len(stored) < 200, "the size limit stopped the writes"
        body = problem(resp, 503)
        assert "storage is full" in body["detail"] and resp.headers["retry-after"] == "60"
        for n in range(1000, 1020):  # refused again and again: the log says so once
            assert (await client.post(f"{BASE}/entities", json=note(n))).status_code == 503
        refusals = [r for r in caplog.records if "write refused" in r.getMessage()]
        assert len(refusals) == 1, [r.getMessage() for r in refusals]
        refused = note(len(stored))["id"]
        assert (await client.get(f"{BASE}/entities/{refused}")).status_code == 404
        assert (await client.get(f"{BASE}/entities/{note(stored[-1])['id']}")).status_code == 200
        temporal = await client.get(f"{BASE}/temporal/entities/{refused}")
        assert temporal.status_code == 404, "no history row of the refused write either"
        # space again: the very next write succeeds (no transaction was left open)
        writer.execute("PRAGMA max_page_count = 1073741823")
        resp = await client.post(f"{BASE}/entities", json=note(999))
        assert resp.status_code == 201, resp.text
    app.state.store.close()


def test_a_checkpoint_that_keeps_failing_is_logged_once_per_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On a full disk every tick failed and logged: two lines a second, filling the disk."""
    ticks = 0
    enough = threading.Event()

    def full(self: SqliteStore, conn: sqlite3.Connection) -> tuple[int, float]:
        nonlocal ticks
        ticks += 1
        if ticks >= 30:
            enough.set()
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(backend, "CHECKPOINT_EVERY", 0.001)
    with caplog.at_level(logging.WARNING, logger="cityhub.store"):
        store = SqliteStore(tmp_path / "hub.db")
        # this store's only: other tests' stores may still be checkpointing in this process
        monkeypatch.setattr(store, "checkpoint", full.__get__(store))
        try:
            assert enough.wait(60), "the checkpointer ticked"
        finally:
            store.close()
    failed = [r.getMessage() for r in caplog.records if "checkpoint failed" in r.getMessage()]
    assert failed == ["checkpoint failed: database or disk is full"]
