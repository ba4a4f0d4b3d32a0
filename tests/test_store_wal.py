"""The WAL stays bounded under a steady write load: the checkpointer makes it restart."""

from __future__ import annotations

import sqlite3
import time
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from cityhub.api import health as health_module
from cityhub.api.app import create_app
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.settings import Settings
from cityhub.store.sqlite import SqliteStore, backend
from conftest import BASE
from test_store_full import status_until

PAGE = 4096 + 24  # one WAL frame: a page and its header


def test_the_wal_restarts_while_writes_never_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes that never pause used to keep SQLite from ever restarting the WAL: each
    checkpoint copied what it found while the writer appended more, and the file grew
    with everything written (644 MB in 12 s of creates through the API).

    Asserted by the WAL's length at each checkpoint, which falls back after every restart,
    rather than by the file's peak size alone: that depends on how promptly a busy machine
    runs the checkpointer thread."""
    monkeypatch.setattr(backend, "CHECKPOINT_EVERY", 0.02)
    monkeypatch.setattr(backend, "WAL_RESTART_FRAMES", 64, raising=False)
    lengths: list[int] = []
    checkpoint = backend.SqliteStore.checkpoint

    def recorded(self: SqliteStore, conn: sqlite3.Connection) -> tuple[int, float]:
        frames, held = checkpoint(self, conn)
        lengths.append(frames)
        return frames, held

    monkeypatch.setattr(backend.SqliteStore, "checkpoint", recorded)
    db = tmp_path / "hub.db"
    wal = Path(f"{db}-wal")
    store = SqliteStore(db)
    service = EntityService(store)
    tm = ContextCache().core
    written = 0
    peak = 0
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline or len(lengths) < 20:
            items = [
                {"id": f"urn:ngsi-ld:T:{written + i}", "type": "T", "v": {"value": i}}
                for i in range(50)
            ]
            assert not service.batch_upsert("", items, tm, "replace").errors
            written += len(items)
            peak = max(peak, wal.stat().st_size)
        pages = store._writer.execute("PRAGMA page_count").fetchone()[0]
    finally:
        store.close()
    assert pages * PAGE > 8 * 64 * PAGE, "the writes filled many restarts' worth of WAL"
    restarts = sum(later < earlier for earlier, later in pairwise(lengths))
    assert restarts >= 5, f"the WAL restarted {restarts} times; its lengths: {lengths}"
    assert peak < pages * PAGE, f"WAL peaked at {peak:,} bytes for {written} entities"


def test_a_reader_of_an_old_snapshot_keeps_writes_from_being_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held copy must stay short: frames a reader still needs cannot be copied, so while
    a reader holds many back the checkpointer does not take the write lock at all."""
    monkeypatch.setattr(backend, "CHECKPOINT_EVERY", 3600.0)  # only the calls below
    monkeypatch.setattr(backend, "WAL_RESTART_FRAMES", 64)
    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    service = EntityService(store)
    tm = ContextCache().core

    def write(start: int) -> None:
        items = [{"id": f"urn:ngsi-ld:T:{start + i}", "type": "T", "v": i} for i in range(300)]
        assert not service.batch_upsert("", items, tm, "replace").errors

    reader = sqlite3.connect(db, isolation_level=None)
    checkpointer = sqlite3.connect(db, isolation_level=None)
    try:
        write(0)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM entities").fetchone() == (300,)
        write(300)  # frames the open snapshot keeps from being copied
        frames, held = store.checkpoint(checkpointer)
        assert frames >= 64 and held == 0.0
        reader.execute("COMMIT")
        frames, held = store.checkpoint(checkpointer)
        assert frames >= 64 and held > 0.0, "with the reader gone, the WAL is made to restart"
        write(600)
        assert checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] < frames
    finally:
        reader.close()
        checkpointer.close()
        store.close()


async def test_health_is_degraded_while_a_reader_keeps_the_wal_from_being_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's open read transaction (an sqlite3 shell, a DB browser, a backup)
    keeps every later frame in the WAL: the probe's grew to 2.8 GB in 30 s of batch upserts
    while /health said "ok", so the disk would fill before anyone was told why."""
    monkeypatch.setattr(backend, "CHECKPOINT_EVERY", 0.02)
    monkeypatch.setattr(backend, "STARVED_FRAMES", 64)
    monkeypatch.setattr(health_module, "STARVED_SHOWN", 0.0)
    monkeypatch.setattr(health_module, "SPACE_FLOOR", 0)
    db = tmp_path / "hub.db"
    app = create_app(Settings(db=str(db), query_timeout=0.1))
    transport = httpx.ASGITransport(app=app)
    reader = sqlite3.connect(db, isolation_level=None)
    batch = [{"id": f"urn:ngsi-ld:T:{i}", "type": "T", "v": "x" * 2000} for i in range(300)]
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        assert (await client.post(f"{BASE}/entityOperations/upsert", json=batch)).status_code == 201
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM entities").fetchone()
        try:
            resp = await client.post(f"{BASE}/entityOperations/upsert", json=batch)
            assert resp.status_code == 204
            health = await status_until(client, "degraded")
            assert health["status"] == "degraded", health
            assert "a reader keeps an old snapshot" in health["reason"], health
        finally:
            reader.execute("COMMIT")
            reader.close()
        assert (await client.post(f"{BASE}/entityOperations/upsert", json=batch)).status_code == 204
        assert (await status_until(client, "ok"))["status"] == "ok"
    app.state.store.close()
