"""A full disk: writes answer 503 and store nothing, reads go on, and the hub recovers."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api import health as health_module
from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.sqlite import SqliteStore, backend
from conftest import BASE, CORE, JSONLD, problem


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


class FullDisk:
    """The store's writer as on a full disk: every statement that would write raises
    SQLITE_FULL (deletes too: on a real disk their WAL frames cannot be appended)."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _check(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(self.WRITES):
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
            raise exc

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        self._check(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, *args: object) -> sqlite3.Cursor:
        self._check(sql)
        return self.conn.executemany(sql, *args)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.conn, name)


SUB = {
    "id": "urn:ngsi-ld:Subscription:full",
    "type": "Subscription",
    "entities": [{"type": "Note"}],
    "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
}
REG = {
    "id": "urn:ngsi-ld:ContextSourceRegistration:full",
    "type": "ContextSourceRegistration",
    "information": [{"entities": [{"type": "Note"}]}],
    "endpoint": "http://127.0.0.1:9/cs",
}


@contextmanager
def full_disk(store: SqliteStore) -> Iterator[None]:
    """The store's writes fail as on a full disk until the block ends."""
    real = store._writer
    store._writer = FullDisk(real)
    try:
        yield
    finally:
        store._writer = real


def refused(resp: httpx.Response) -> None:
    """The storage-full 503 every write gets on a full disk."""
    body = problem(resp, 503)
    assert "storage is full" in body["detail"] and resp.headers["retry-after"] == "60"


async def test_subscriptions_registrations_and_contexts_on_a_full_disk_are_503(
    app: Starlette, hub: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """They wrote outside the entity transaction, so SQLITE_FULL was a 500 with a traceback."""
    store, client = app.state.store, hub
    subs, regs, ctx = f"{BASE}/subscriptions", f"{BASE}/csourceRegistrations", ""
    assert (await client.post(subs, json=SUB)).status_code == 201
    assert (await client.post(regs, json=REG)).status_code == 201
    resp = await client.post(f"{BASE}/jsonldContexts", json={"@context": {"a": "urn:a"}})
    assert resp.status_code == 201
    ctx = resp.headers["location"]
    with full_disk(store):
        other = {**SUB, "id": "urn:ngsi-ld:Subscription:other"}
        refused(await client.post(subs, json=other))
        inline = {**other, "@context": [{"Note": "urn:note"}, CORE]}  # implicitly created
        refused(await client.post(subs, json=inline, headers={"Content-Type": JSONLD}))
        refused(await client.patch(f"{subs}/{SUB['id']}", json={"throttling": 5}))
        refused(await client.delete(f"{subs}/{SUB['id']}"))
        refused(await client.post(regs, json={**REG, "id": REG["id"] + "2"}))
        refused(await client.patch(f"{regs}/{REG['id']}", json={"endpoint": "http://x/"}))
        refused(await client.delete(f"{regs}/{REG['id']}"))
        refused(await client.post(f"{BASE}/jsonldContexts", json={"@context": {"b": "urn:b"}}))
        refused(await client.delete(ctx))
    assert not [r for r in caplog.records if "unhandled error" in r.getMessage()]
    # nothing changed, in the store or in memory
    assert (await client.get(f"{subs}/{other['id']}")).status_code == 404
    assert "throttling" not in (await client.get(f"{subs}/{SUB['id']}")).json()
    assert (await client.get(f"{regs}/{REG['id']}")).json()["endpoint"] == REG["endpoint"]
    assert (await client.get(f"{regs}/{REG['id']}2")).status_code == 404
    listed = (await client.get(f"{BASE}/jsonldContexts", params={"kind": "Hosted"})).json()
    assert listed == [f"http://hub{ctx}"], "the refused POST hosts nothing, the DELETE kept it"
    assert (await client.get(ctx)).status_code == 200
    implicit = {"kind": "ImplicitlyCreated"}
    assert (await client.get(f"{BASE}/jsonldContexts", params=implicit)).json() == []


async def test_health_is_degraded_while_writes_are_refused_for_a_full_disk(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/health said "ok" while every write answered 503."""
    store = app.state.store
    assert (await client.get("/health")).json()["status"] == "ok"
    with full_disk(store):
        refused(await client.post(f"{BASE}/entities", json=note(1)))
    health = (await client.get("/health")).json()
    assert health["status"] == "degraded", health
    assert "lack of disk space" in health["reason"] and "Z)" in health["reason"], health
    # a write that commits: ok again at once
    assert (await client.post(f"{BASE}/entities", json=note(2))).status_code == 201
    assert (await client.get("/health")).json()["status"] == "ok"
    # and ok again a while after the last refusal, even without a write
    with full_disk(store):
        refused(await client.post(f"{BASE}/entities", json=note(3)))
    assert (await client.get("/health")).json()["status"] == "degraded"
    monkeypatch.setattr(health_module, "FULL_SHOWN", 0.0)
    assert (await client.get("/health")).json()["status"] == "ok"
    store.close()


async def status_until(client: httpx.AsyncClient, want: str) -> dict[str, Any]:
    """/health once its status is `want` (the checkpointer acts on its own thread), or as it
    is after 20 s."""
    deadline = time.monotonic() + 20
    while True:
        health: dict[str, Any] = (await client.get("/health")).json()
        if health["status"] == want or time.monotonic() > deadline:
            return health
        await asyncio.sleep(0.01)


async def test_health_is_degraded_while_checkpoints_keep_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a full disk /health said "ok" a minute after the last refused write, and at once
    after a restart, while every checkpoint failed and the WAL only grew (probe 1, finding 2)."""
    monkeypatch.setattr(backend, "CHECKPOINT_EVERY", 0.01)
    monkeypatch.setattr(health_module, "SPACE_FLOOR", 0)
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    store = app.state.store
    failing = threading.Event()
    failing.set()
    real = store.checkpoint

    def checkpoint(conn: sqlite3.Connection) -> tuple[int, float]:
        if failing.is_set():
            raise sqlite3.OperationalError("database or disk is full")
        return real(conn)

    monkeypatch.setattr(store, "checkpoint", checkpoint)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        health = await status_until(client, "degraded")
        assert health["status"] == "degraded", health
        reason = health["reason"]
        assert "WAL only grows" in reason and "(database or disk is full)" in reason, reason
        assert "free space on the database's disk" in reason, reason
        # a write that still fits changes nothing: the checkpoints still fail
        assert (await client.post(f"{BASE}/entities", json=note(1))).status_code == 201
        assert (await client.get("/health")).json()["reason"] == reason
        failing.clear()
        assert (await status_until(client, "ok"))["status"] == "ok"
    store.close()


async def test_health_is_degraded_while_little_space_is_left(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes that still fit on an almost full disk kept /health "ok" until the first one
    was refused."""
    assert (await client.get("/health")).json()["status"] == "ok"
    free = (await client.get("/health")).json()["storage"]["diskFreeBytes"]
    monkeypatch.setattr(health_module, "SPACE_FLOOR", free * 2)
    health = (await client.get("/health")).json()
    assert health["status"] == "degraded" and "MiB are free" in health["reason"], health


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MiB tmpfs (root only; skipped elsewhere)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


async def test_a_restart_on_a_full_disk_is_degraded(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probe 1's run on a real full disk: the WAL cannot be copied back after a restart, and
    /health says so though no write was refused yet."""
    monkeypatch.setattr(health_module, "SPACE_FLOOR", 0)  # the checkpoints are what is shown
    db = str(small_disk / "hub.db")
    app = create_app(Settings(db=db))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for b in range(200):
            batch = [note(b * 100 + i) for i in range(100)]
            resp = await client.post(f"{BASE}/entityOperations/upsert", json=batch)
            if resp.status_code == 503:
                break
        assert resp.status_code == 503, "the disk filled up"
    app.state.store.close()
    monkeypatch.setattr(backend, "CHECKPOINT_EVERY", 0.01)
    app = create_app(Settings(db=db))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        health = await status_until(client, "degraded")
        assert health["status"] == "degraded", health
        assert "WAL only grows" in health["reason"], health
        assert health["storage"]["diskFreeBytes"] == 0
    app.state.store.close()
