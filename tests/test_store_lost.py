"""A database file deleted or replaced while the hub runs: writes and reads are refused with
a 503, /health says what happened, no empty database appears at the path, and what the hub
held is saved beside it (probe 1, finding 1; decision 044)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.base import StoreLost
from cityhub.store.sqlite import SqliteStore, backend, file_watch
from conftest import BASE, free_port, problem
from test_serve import serving


def lamp(n: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp", "on": {"type": "Property", "value": n}}


def unlink_all(db: Path) -> None:
    """What `rm -f cityhub.db*` does."""
    for name in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        name.unlink(missing_ok=True)


def refused(resp: httpx.Response) -> None:
    assert "deleted or replaced while the hub ran" in problem(resp, 503)["detail"]


def ids(db: Path) -> list[str]:
    """The entity ids a database file holds."""
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM entities ORDER BY pk")]


def test_a_served_hub_whose_file_is_deleted_refuses_and_keeps_what_it_acknowledged(
    tmp_path: Path,
) -> None:
    """Writes after an `rm` answered 201 into the unlinked file and were lost at the next
    restart; a reader that opened later created an empty database at the path (a 500)."""
    db = tmp_path / "hub.db"
    with serving(db, free_port()) as url:
        api = url + BASE
        assert httpx.post(f"{api}/entities", json=lamp(1)).status_code == 201
        unlink_all(db)
        # acknowledged before the hub noticed: it must be in the copy
        early = httpx.post(f"{api}/entities", json=lamp(2))
        deadline = time.monotonic() + 20
        while (health := httpx.get(url + "/health").json())["status"] == "ok":
            assert time.monotonic() < deadline, "the hub noticed"
            time.sleep(0.05)
        deadline = time.monotonic() + 20
        while "saved in" not in health["reason"]:
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
            health = httpx.get(url + "/health").json()
        assert f"{db} was deleted while the hub ran" in health["reason"], health
        refused(httpx.post(f"{api}/entities", json=lamp(3)))
        refused(httpx.get(f"{api}/entities", params={"type": "Lamp"}))
        refused(httpx.get(f"{api}/entities/{lamp(1)['id']}"))
        assert not db.exists(), "no empty database was created at the path"
    (copy,) = tmp_path.glob("hub.db.rescued-*")
    assert str(copy) in health["reason"]
    restored = subprocess.run(
        [sys.executable, "-m", "cityhub.cli", "restore", str(copy), "--db", str(db)],
        capture_output=True,
        text=True,
    )
    assert restored.returncode == 0, restored.stderr
    held = [lamp(1)["id"]] + ([lamp(2)["id"]] if early.status_code == 201 else [])
    with serving(db, free_port()) as url:
        found = httpx.get(f"{url}{BASE}/entities", params={"type": "Lamp"}).json()
        assert [e["id"] for e in found] == held
        assert httpx.get(url + "/health").json()["status"] == "ok"


@pytest.fixture
async def watched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """A hub whose checkpointer looks at its file every 10 ms."""
    monkeypatch.setattr(backend, "CHECKPOINT_EVERY", 0.01)
    (tmp_path / "d").mkdir()
    app = create_app(Settings(db=str(tmp_path / "d" / "hub.db")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield app, client
    app.state.store.close()


async def reason_with(client: httpx.AsyncClient, words: str) -> str:
    """/health's reason once it holds these words (or as it is after 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        reason: str = (await client.get("/health")).json().get("reason", "")
        if words in reason or time.monotonic() > deadline:
            return reason
        await asyncio.sleep(0.01)


async def test_a_file_replaced_under_the_hub_is_left_alone(
    watched: tuple[Starlette, httpx.AsyncClient],
) -> None:
    """A `mv` of another database onto the path: the hub neither writes into the file it
    still holds nor reads the newcomer, and tells how to get either back."""
    app, client = watched
    db = Path(app.state.store.path)
    assert (await client.post(f"{BASE}/entities", json=lamp(1))).status_code == 201
    other = db.with_name("other.db")
    SqliteStore(other).close()
    os.replace(other, db)
    before = db.read_bytes()
    reason = await reason_with(client, "saved in")
    assert f"{db} was replaced by another file while the hub ran" in reason, reason
    assert f"restart it as it is to serve the file now at {db}" in reason, reason
    refused(await client.post(f"{BASE}/entities", json=lamp(2)))
    refused(await client.get(f"{BASE}/entities", params={"type": "Lamp"}))
    assert db.read_bytes() == before, "the file put in its place is untouched"
    (copy,) = db.parent.glob("hub.db.rescued-*")
    assert ids(copy) == [lamp(1)["id"]]


async def test_the_copy_is_tried_again_until_it_can_be_saved(
    watched: tuple[Starlette, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its whole folder gone the copy cannot be written: /health says to keep the hub
    running, and once the folder is back the copy is saved."""
    monkeypatch.setattr(file_watch, "SAVE_EVERY", 0.01)
    app, client = watched
    folder = Path(app.state.store.path).parent
    assert (await client.post(f"{BASE}/entities", json=lamp(1))).status_code == 201
    shutil.rmtree(folder)
    # not "failed": the checkpointer's reason says that too, and may come first
    reason = await reason_with(client, "Keep the hub running")
    assert f"the folder {folder} does not exist" in reason, reason
    assert "Keep the hub running until it is saved" in reason, reason
    folder.mkdir()
    reason = await reason_with(client, "saved in")
    (copy,) = folder.glob("hub.db.rescued-*")
    assert str(copy) in reason and ids(copy) == [lamp(1)["id"]]
    assert not (folder / "hub.db").exists()


def test_a_reader_opened_after_the_delete_creates_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the checkpointer notices, a thread's first read opened the path and created an
    empty database there ("no such table", a 500; after a restart the hub served it)."""
    monkeypatch.setattr(backend, "CHECKPOINT_EVERY", 3600.0)  # the reader notices first
    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    try:
        unlink_all(db)
        raised: list[BaseException] = []

        def read() -> None:
            try:
                store.tenants()
            except BaseException as exc:
                raised.append(exc)

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        assert [type(e) for e in raised] == [StoreLost]
        assert not db.exists()
        with pytest.raises(StoreLost), store.write("") as tx:
            tx.insert({"id": "urn:x", "type": ["urn:T"], "attrs": {}})
    finally:
        store.close()
    (copy,) = tmp_path.glob("hub.db.rescued-*")  # closing saved it: no tick had
    assert ids(copy) == []
