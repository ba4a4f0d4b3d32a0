"""Temporal DELETEs remove the history in steps (decision 040): the answer is right at once,
each step deletes at most STEP rows, other requests are served between steps, and a job cut
short by a crash is finished after a restart without touching what was written since."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub import erasure
from cityhub.api import commit
from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.base import Erasure
from cityhub.store.sqlite import erasures
from conftest import BASE, free_port, problem
from test_serve import process, wait_healthy

EID = "urn:ngsi-ld:Sensor:long"
T = BASE + "/temporal/entities"
TEMPERATURE = "https://uri.etsi.org/ngsi-ld/default-context/temperature"


@pytest.fixture
def small_steps(monkeypatch: pytest.MonkeyPatch) -> int:
    """Steps of 10 rows, so a few hundred instances take many steps."""
    monkeypatch.setattr(erasures, "STEP", 10)
    return 10


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client, app
    await app.state.eraser.close()
    app.state.store.close()


def instances(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    """n readings, one a minute from 2026-01-01 on (minute `start` first)."""
    out = []
    for i in range(start, start + n):
        at = f"2026-01-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00Z"
        out.append({"type": "Property", "value": i, "observedAt": at, **extra})
    return out


async def load(client: httpx.AsyncClient, eid: str, **attrs: list[dict[str, Any]]) -> None:
    resp = await client.post(T, json={"id": eid, "type": "Sensor", **attrs})
    assert resp.status_code in (201, 204), resp.text


async def values(client: httpx.AsyncClient, eid: str) -> dict[str, list[Any]] | None:
    """Each attribute's temporal values, every datasetId together, sorted (None: 404)."""
    resp = await client.get(f"{T}/{eid}", params={"options": "temporalValues"})
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    out = {}
    for name, attr in resp.json().items():
        if name not in ("id", "type"):
            series = attr if isinstance(attr, list) else [attr]
            out[name] = sorted(v for s in series for v, _ in s["values"])
    return out


def count(db: Path | str, sql: str, *params: Any) -> int:
    """One number from the database, read as another process would."""
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def spy_steps(app: Starlette, events: list[Any]) -> None:
    """Record the rows each erasure step deletes."""
    store = app.state.store
    real = store.erase_history

    def step(erasure: Erasure, *limit: int) -> tuple[int, Erasure | None]:
        deleted, rest = real(erasure, *limit)
        events.append(("step", deleted))
        return deleted, rest

    store.erase_history = step


async def test_a_deleted_temporal_entity_is_gone_at_once_and_a_new_one_starts_empty(
    hub: tuple[httpx.AsyncClient, Starlette], small_steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, app = hub
    db = app.state.store.path
    await load(client, EID, temperature=instances(500))
    held: list[Erasure] = []
    monkeypatch.setattr(app.state.eraser, "later", held.append)  # the cleanup waits

    assert (await client.delete(f"{T}/{EID}")).status_code == 204
    (job,) = held
    assert count(db, "SELECT count(*) FROM history WHERE tpk = ?", job.tpk) == 490  # pending
    assert await values(client, EID) is None
    listed = await client.get(T, params={"type": "Sensor"})
    assert listed.status_code == 200 and listed.json() == []
    assert (await client.delete(f"{T}/{EID}")).status_code == 404

    # created again while the old rows are still there: it has only what is written now
    await load(client, EID, temperature=instances(1, start=9000))
    assert await values(client, EID) == {"temperature": [9000]}
    listed = await client.get(T, params={"type": "Sensor"})
    assert [e["id"] for e in listed.json()] == [EID]

    events: list[Any] = []
    spy_steps(app, events)
    assert await app.state.eraser.run(job) == 490
    assert all(n <= small_steps for _, n in events) and len(events) == 50
    assert count(db, "SELECT count(*) FROM history WHERE tpk = ?", job.tpk) == 0
    assert count(db, "SELECT count(*) FROM tentities WHERE tpk = ?", job.tpk) == 0
    assert count(db, "SELECT count(*) FROM history_erasures") == 0
    assert await values(client, EID) == {"temperature": [9000]}


async def test_an_attribute_delete_goes_in_steps_and_others_are_served_between(
    hub: tuple[httpx.AsyncClient, Starlette], small_steps: int
) -> None:
    """The answer waits for every step; a /health and a write of the same attribute sent
    meanwhile are answered before the last step, and the write stays."""
    client, app = hub
    await load(client, EID, temperature=instances(300), humidity=instances(5))
    events: list[Any] = []
    spy_steps(app, events)

    async def meanwhile() -> None:
        while not events:
            await asyncio.sleep(0)
        assert (await client.get("/health")).status_code == 200
        events.append("health")
        new = {"temperature": instances(1, start=9000)}
        assert (await client.post(f"{T}/{EID}/attrs", json=new)).status_code == 204
        events.append("written")

    deleted, _ = await asyncio.gather(client.delete(f"{T}/{EID}/attrs/temperature"), meanwhile())
    assert deleted.status_code == 204
    steps = [i for i, e in enumerate(events) if isinstance(e, tuple)]
    assert len(steps) >= 300 // small_steps - 1  # the request's own step is not counted
    assert all(events[i][1] <= small_steps for i in steps)
    assert events.index("health") < steps[-1] and events.index("written") < steps[-1]
    assert await values(client, EID) == {"temperature": [9000], "humidity": [0, 1, 2, 3, 4]}
    assert (await client.delete(f"{T}/{EID}/attrs/humidity")).status_code == 204
    assert (await client.delete(f"{T}/{EID}/attrs/humidity")).status_code == 404


async def test_an_attribute_delete_of_one_dataset_keeps_the_others(
    hub: tuple[httpx.AsyncClient, Starlette], small_steps: int
) -> None:
    client, app = hub
    a = instances(150, datasetId="urn:ds:a")
    b = instances(150, start=150, datasetId="urn:ds:b")
    mixed = [x for pair in zip(a, b, strict=True) for x in pair]
    for part in range(0, 300, 100):
        await load(client, EID, level=mixed[part : part + 100])
    missing = await client.delete(f"{T}/{EID}/attrs/level", params={"datasetId": "urn:ds:c"})
    assert missing.status_code == 404
    resp = await client.delete(f"{T}/{EID}/attrs/level", params={"datasetId": "urn:ds:a"})
    assert resp.status_code == 204
    assert await values(client, EID) == {"level": list(range(150, 300))}
    db = app.state.store.path
    assert count(db, "SELECT count(*) FROM history_erasures") == 0


def held_up_after(steps: int, monkeypatch: pytest.MonkeyPatch, hold: Any) -> None:
    """Call hold() before each erasure step after the first `steps` (the rows the request
    deletes itself are not one of them): it may raise as the store would."""
    real = erasures.step
    done = 0

    def step(conn: sqlite3.Connection, job: Erasure, limit: int) -> tuple[int, Erasure | None]:
        nonlocal done
        done += 1
        if done > steps:
            hold()
        return real(conn, job, limit)

    monkeypatch.setattr(erasures, "step", step)
    monkeypatch.setattr(erasure, "RETRY", 0.01)


async def test_an_attribute_delete_the_disk_filled_under_says_it_has_begun_and_ends(
    hub: tuple[httpx.AsyncClient, Starlette], small_steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probe 4: half the history was gone and the rest went later, yet the 503 said "nothing
    of this request was stored"; a client might have written it again."""
    client, app = hub
    db = app.state.store.path
    await load(client, EID, temperature=instances(300), humidity=instances(5))
    full = True

    def disk_full() -> None:
        if full:
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # as SQLite raises it
            raise exc

    held_up_after(4, monkeypatch, disk_full)
    resp = await client.delete(f"{T}/{EID}/attrs/temperature")
    detail = problem(resp, 503)["detail"]
    assert "storage is full" in detail and "has begun" in detail, detail
    assert "nothing" not in detail, detail
    assert 5 < count(db, "SELECT count(*) FROM history") < 305  # partly deleted already
    assert count(db, "SELECT count(*) FROM history_erasures") == 1
    full = False  # space again: the rest goes without another request
    await app.state.eraser.idle()
    assert await values(client, EID) == {"humidity": [0, 1, 2, 3, 4]}
    assert count(db, "SELECT count(*) FROM history_erasures") == 0
    assert (await client.delete(f"{T}/{EID}/attrs/temperature")).status_code == 404


async def test_an_attribute_delete_another_process_locked_out_says_it_has_begun_and_ends(
    hub: tuple[httpx.AsyncClient, Starlette], small_steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock taken by another process (`cityhub import --db`) between two steps: the
    busy 503 said nothing of the stored job either."""
    client, app = hub
    db = app.state.store.path
    await load(client, EID, temperature=instances(300), humidity=instances(5))
    monkeypatch.setattr(commit, "BUSY_WAIT", 0.2)
    importer = sqlite3.connect(db, isolation_level=None, timeout=0)

    def take_the_lock() -> None:  # once this step has committed
        asyncio.get_running_loop().call_soon(importer.execute, "BEGIN IMMEDIATE")

    held_up_after(2, monkeypatch, take_the_lock)
    try:
        resp = await client.delete(f"{T}/{EID}/attrs/temperature")
        detail = problem(resp, 503)["detail"]
        assert "write lock" in detail and "has begun" in detail, detail
        assert count(db, "SELECT count(*) FROM history_erasures") == 1
    finally:
        importer.execute("ROLLBACK")
        importer.close()
    await app.state.eraser.idle()
    assert await values(client, EID) == {"humidity": [0, 1, 2, 3, 4]}
    assert count(db, "SELECT count(*) FROM history_erasures") == 0


async def test_a_retention_pass_leaves_a_hidden_entity_its_row_until_its_erasure_ends(
    hub: tuple[httpx.AsyncClient, Starlette], small_steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention drops a temporal entity left without rows; one being erased must keep its
    row (and so its tpk) until the job ends, or a new one could take its tpk over."""
    client, app = hub
    store, db = app.state.store, app.state.store.path
    await load(client, EID, temperature=instances(100))
    held: list[Erasure] = []
    monkeypatch.setattr(app.state.eraser, "later", held.append)
    assert (await client.delete(f"{T}/{EID}")).status_code == 204
    (job,) = held
    while store.prune_history(time.time() + 60, 0, 1000)[1] is not None:
        pass
    assert count(db, "SELECT count(*) FROM history WHERE tpk = ?", job.tpk) == 0
    assert count(db, "SELECT count(*) FROM tentities WHERE tpk = ?", job.tpk) == 1
    await load(client, "urn:ngsi-ld:Sensor:new", temperature=instances(20))
    assert count(db, "SELECT max(tpk) FROM tentities") > job.tpk
    await app.state.eraser.run(job)
    assert count(db, "SELECT count(*) FROM tentities WHERE tpk = ?", job.tpk) == 0
    assert await values(client, "urn:ngsi-ld:Sensor:new") == {"temperature": list(range(20))}


async def test_jobs_cut_short_are_finished_after_a_restart(
    tmp_path: Path, small_steps: int
) -> None:
    """A stop between steps (as kill -9 leaves it: each step committed or not begun): the
    next hub finishes the jobs; a temporal entity created again meanwhile keeps its rows."""
    db = tmp_path / "hub.db"
    first = create_app(Settings(db=str(db)))
    other = "urn:ngsi-ld:Sensor:other"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="http://hub"
    ) as client:
        await load(client, EID, temperature=instances(200))
        await load(client, other, temperature=instances(200), humidity=instances(3))
        held: list[Erasure] = []
        first.state.eraser.later = held.append
        assert (await client.delete(f"{T}/{EID}")).status_code == 204
        (job,) = held
        for _ in range(3):
            first.state.store.erase_history(job)
        # an attribute's DELETE stopped after its first step, before it answered
        with first.state.store.write("") as tx:
            found, cut = tx.delete_history(other, TEMPERATURE)
        assert found and cut is not None
    first.state.store.close()  # no eraser.close(): nothing is flushed or finished
    assert count(db, "SELECT count(*) FROM history_erasures") == 2

    again = create_app(Settings(db=str(db)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=again), base_url="http://hub"
    ) as client:
        assert await values(client, EID) is None
        await load(client, EID, temperature=instances(2, start=9000))
        again.state.eraser.start()
        await again.state.eraser.idle()
        assert await values(client, EID) == {"temperature": [9000, 9001]}
        assert await values(client, other) == {"humidity": [0, 1, 2]}
    await again.state.eraser.close()
    again.state.store.close()
    assert count(db, "SELECT count(*) FROM history_erasures") == 0
    assert count(db, "SELECT count(*) FROM tentities WHERE tenant = ?", erasures.ERASING) == 0
    assert count(db, "SELECT count(*) FROM history") == 2 + 3


@pytest.mark.server
def test_a_hub_killed_while_erasing_finishes_after_a_restart(tmp_path: Path) -> None:
    """kill -9 while a served hub works through a 128,000-row job; the next one ends it."""
    db = tmp_path / "hub.db"

    async def prepare() -> int:
        app = create_app(Settings(db=str(db)))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hub"
        ) as client:
            await load(client, EID, temperature=instances(1000))
            conn = sqlite3.connect(db)
            for _ in range(7):  # 128 times as many rows, quickly
                conn.execute(
                    "INSERT INTO history (tpk, nid, dataset_id, instance_id, t_observed, "
                    "t_created, t_modified, num, inst) SELECT tpk, nid, dataset_id, "
                    "instance_id || 'x', t_observed, t_created, t_modified, num, inst FROM history"
                )
            conn.commit()
            conn.close()
            held: list[Erasure] = []
            app.state.eraser.later = held.append
            assert (await client.delete(f"{T}/{EID}")).status_code == 204
        app.state.store.close()
        return held[0].tpk

    tpk = asyncio.run(prepare())
    left = count(db, "SELECT count(*) FROM history WHERE tpk = ?", tpk)
    assert left == 128_000 - erasures.STEP
    port = free_port()
    with process(["serve", "--port", str(port), "--db", str(db)]) as proc:
        wait_healthy(proc, f"http://127.0.0.1:{port}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert count(db, "SELECT count(*) FROM history_erasures") in (0, 1)
    port = free_port()
    with process(["serve", "--port", str(port), "--db", str(db)]) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(proc, url)
        deadline = time.monotonic() + 30
        while count(db, "SELECT count(*) FROM history_erasures"):
            assert time.monotonic() < deadline, "the job was not finished"
            time.sleep(0.05)
        assert httpx.get(f"{url}{T}/{EID}").status_code == 404
    assert count(db, "SELECT count(*) FROM history WHERE tpk = ?", tpk) == 0
    assert count(db, "SELECT count(*) FROM tentities WHERE tpk = ?", tpk) == 0
