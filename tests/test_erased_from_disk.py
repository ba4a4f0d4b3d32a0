"""An erased person's values leave the database's files, not only the API: the main file
(deleted cells and freed pages are zeroed, on any SQLite build) and the WAL (cleared by the
checkpointer soon after a deletion), while the hub keeps serving."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.sqlite import backend
from conftest import BASE

SECRET = "HEARTRATE-OF-ALICE-7731"


def person(n: int, value: str) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Person:{n}",
        "type": "Person",
        "reading": {"type": "Property", "value": value},
    }


def holders(db: Path, needle: str) -> list[str]:
    """The hub's files (database, WAL) that hold needle's bytes."""
    found = []
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists() and needle.encode() in path.read_bytes():
            found.append(path.name)
    return found


@pytest.fixture
def no_secure_delete_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections as on a SQLite built without SECURE_DELETE (upstream's default; Debian's
    build turns it on, so without this the test would pass on the build's word alone)."""
    connect = sqlite3.connect

    def plain(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete=OFF")
        return conn

    monkeypatch.setattr(backend.sqlite3, "connect", plain)


async def test_an_erased_persons_values_leave_the_database_files(
    tmp_path: Path, no_secure_delete_by_default: None
) -> None:
    db = tmp_path / "hub.db"
    app = create_app(Settings(db=str(db)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for n in range(40):  # neighbours on the same pages, who stay
            value = SECRET if n == 20 else f"reading-of-person-{n:02d}-kept"
            assert (await client.post(f"{BASE}/entities", json=person(n, value))).status_code == 201
        for update in range(3):  # a history of several instances
            resp = await client.patch(
                f"{BASE}/entities/urn:ngsi-ld:Person:20/attrs",
                json={"reading": {"type": "Property", "value": f"{SECRET}-{update}"}},
            )
            assert resp.status_code == 204, resp.text
        assert holders(db, SECRET), "the values were written to the files"
        deleted = await client.delete(f"{BASE}/entities/urn:ngsi-ld:Person:20")
        assert deleted.status_code == 204
        erased = await client.delete(f"{BASE}/temporal/entities/urn:ngsi-ld:Person:20")
        assert erased.status_code == 204
        deadline = time.monotonic() + 10  # the checkpointer ticks every 0.5 s
        while holders(db, SECRET) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert holders(db, SECRET) == [], "the erased values are still in the files"
        # the others are untouched, and the hub goes on serving and writing
        kept = await client.get(f"{BASE}/entities/urn:ngsi-ld:Person:21")
        assert kept.json()["reading"]["value"] == "reading-of-person-21-kept"
        assert (await client.post(f"{BASE}/entities", json=person(99, "new"))).status_code == 201
    app.state.store.close()
    assert holders(db, SECRET) == []
    assert holders(db, "reading-of-person-39-kept") == ["hub.db"]


async def test_cleared_dead_letters_leave_the_database_files(
    tmp_path: Path, no_secure_delete_by_default: None
) -> None:
    """A dead letter keeps a device's raw payload; clearing them clears the files too."""
    from cityhub.ingest.agent.payload import Raw
    from cityhub.ingest.agent.reasons import Rejected

    db = tmp_path / "hub.db"
    app = create_app(Settings(db=str(db)))
    letters = app.state.iot.letters
    refused = [
        (None, letters.letter(Raw("http", "", f"d{n}", SECRET.encode()), Rejected("x", "y")))
        for n in range(5)
    ]
    await app.state.committer.run(lambda: letters.write(refused))
    assert holders(db, SECRET), "the payloads were written to the files"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        cleared = await client.delete("/iot/v1/deadletters", params={"unrouted": "true"})
        assert cleared.status_code in (200, 204), cleared.text
        deadline = time.monotonic() + 10
        while holders(db, SECRET) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert holders(db, SECRET) == [], "the cleared payloads are still in the files"
    app.state.store.close()


def test_the_scrub_waits_for_a_reader_on_an_older_snapshot(tmp_path: Path) -> None:
    """A reader in the middle of a read keeps the WAL: the scrub gives up at once (no wait
    that would hold writes) and is tried again at the next tick."""
    store = backend.SqliteStore(tmp_path / "hub.db")
    with store.write("t") as tx:
        tx.insert(
            {
                "id": "urn:a",
                "type": ["T"],
                "attrs": {},
                "createdAt": "2026-01-01T00:00:00Z",
                "modifiedAt": "2026-01-01T00:00:00Z",
            }
        )
    reader = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM entities").fetchone()  # holds its snapshot
    with store.write("t") as tx:
        tx.delete("urn:a")
    conn = sqlite3.connect(tmp_path / "hub.db", isolation_level=None, check_same_thread=False)
    started = time.monotonic()
    assert store.scrub(conn) is False
    assert time.monotonic() - started < 1.0, "it did not wait for the reader"
    assert store._scrub_wanted, "tried again at the next tick"
    reader.execute("COMMIT")
    assert store.scrub(conn) is True
    assert (tmp_path / "hub.db-wal").stat().st_size == 0
    conn.close()
    reader.close()
    store.close()
