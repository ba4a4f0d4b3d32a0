"""Another process holding the write lock (`cityhub import --db` next to a running hub): a
write waits for it without holding the event loop, and past the wait is a 503 with
Retry-After, not a 500."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api import commit
from conftest import BASE, problem


def note(n: int) -> dict[str, object]:
    return {"id": f"urn:ngsi-ld:Note:{n}", "type": "Note", "text": {"type": "Property", "value": n}}


@contextmanager
def locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction on the database, as the importer holds it."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


async def test_a_write_past_the_busy_wait_is_a_503_and_reads_go_on(
    app: Starlette, client: httpx.AsyncClient, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's import of 60,000 rows in one chunk held the lock for 12-18 s: merges got
    500 "database is locked" and /health took 5.15 s while the hub waited on the loop."""
    monkeypatch.setattr(commit, "BUSY_WAIT", 1.0, raising=False)
    assert (await client.post(f"{BASE}/entities", json=note(0))).status_code == 201
    with locked(db_path):
        started = time.monotonic()
        write = asyncio.create_task(client.post(f"{BASE}/entities", json=note(1)))
        await asyncio.sleep(0.1)
        slowest = 0.0
        while not write.done():  # reads are served while the write waits
            t0 = time.monotonic()
            health = await client.get("/health")
            got = await client.get(f"{BASE}/entities/urn:ngsi-ld:Note:0")
            slowest = max(slowest, time.monotonic() - t0)
            assert health.status_code == 200 and got.status_code == 200
            await asyncio.sleep(0.05)
        resp = await write
        waited = time.monotonic() - started
    body = problem(resp, 503)
    assert "locked" in body["detail"] or "busy" in body["detail"], body
    assert int(resp.headers["retry-after"]) >= 1
    assert 0.9 < waited < 3, waited
    assert slowest < 0.5, f"a read waited {slowest:.2f} s behind the write"
    resp = await client.get(f"{BASE}/entities/urn:ngsi-ld:Note:1")
    assert resp.status_code == 404, "nothing of the refused write was stored"


async def test_a_write_waits_for_a_short_lock_and_succeeds(
    app: Starlette, client: httpx.AsyncClient, db_path: Path
) -> None:
    with locked(db_path):
        write = asyncio.create_task(client.post(f"{BASE}/entities", json=note(2)))
        await asyncio.sleep(0.5)
        assert not write.done(), "it waits for the lock"
    resp = await write
    assert resp.status_code == 201, resp.text


def test_import_into_a_database_commits_at_most_a_slice_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk of 60,000 rows (--chunk-size, up to 100,000) was one transaction of 12-18 s:
    a hub serving the file waited out its lock. Now each holds at most SLICE entities."""
    from cityhub.cli import main
    from cityhub.store.sqlite import SqliteStore

    commits: list[int] = []
    real = SqliteStore._transaction

    def counted(self: SqliteStore) -> Any:
        commits.append(1)
        return real(self)

    monkeypatch.setattr(SqliteStore, "_transaction", counted)
    rows = "\n".join(f"r{n},{n}" for n in range(2_500))
    (tmp_path / "in.csv").write_text(f"id,n\n{rows}\n")
    db = tmp_path / "imp.db"
    argv = ["import", "csv", str(tmp_path / "in.csv"), "--type", "Imp", "--chunk-size", "3000"]
    assert main([*argv, "--db", str(db), "--no-progress"]) == 0
    assert len(commits) >= 3, f"{len(commits)} transactions for 2,500 rows"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM entities").fetchone() == (2_500,)
