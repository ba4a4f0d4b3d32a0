"""CITYHUB_HISTORY_DAYS: temporal instances last written longer ago than that are deleted."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub import retention
from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.sqlite.schema import SCHEMA_VERSION
from conftest import BASE
from receivers import Receiver, wait_for

DAY = 86400.0


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    """A hub that keeps history for 30 days."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), history_days=30))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client, app
    app.state.store.close()


def age(app: Starlette, days: float, where: str = "1", params: tuple[Any, ...] = ()) -> int:
    """Make history rows look `days` older, as if written then (another connection, as a
    second process would)."""
    conn = sqlite3.connect(app.state.store.path, isolation_level=None)
    try:
        cur = conn.execute(
            f"UPDATE history SET t_modified = t_modified - ? WHERE {where}", (days * DAY, *params)
        )
        return cur.rowcount
    finally:
        conn.close()


def entity(eid: str, n: int) -> dict[str, Any]:
    return {"id": eid, "type": "Sensor", "n": {"type": "Property", "value": n}}


async def values(client: httpx.AsyncClient, eid: str) -> list[Any] | None:
    """The temporal values of n, oldest first (None: no temporal entity)."""
    r = await client.get(f"{BASE}/temporal/entities/{eid}", params={"options": "temporalValues"})
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return [v for v, _ in r.json().get("n", {}).get("values", [])]


async def test_expired_instances_go_and_recent_ones_stay(
    hub: tuple[httpx.AsyncClient, Starlette],
) -> None:
    """Instances older than 30 days are deleted; the current entities are untouched; a deleted
    entity's temporal evolution goes with its last instance, a live one's stays, empty."""
    client, app = hub
    kept, gone, quiet = "urn:ngsi-ld:Sensor:kept", "urn:ngsi-ld:Sensor:gone", "urn:ngsi-ld:Sensor:q"
    for eid in (kept, gone, quiet):
        assert (await client.post(f"{BASE}/entities", json=entity(eid, 1))).status_code == 201
    # deleted before kept's updates: pruning goes in write order, and stops at kept's last
    assert (await client.delete(f"{BASE}/entities/{gone}")).status_code == 204
    for n in (2, 3):
        r = await client.patch(f"{BASE}/entities/{kept}/attrs", json={"n": entity(kept, n)["n"]})
        assert r.status_code == 204
    assert await values(client, kept) == [1, 2, 3]
    assert await values(client, gone) is not None

    # everything but kept's last instance was written 40 days ago
    newest = "hid = (SELECT max(hid) FROM history WHERE t_modified IS NOT NULL AND tpk = ?)"
    tpk = (
        sqlite3.connect(app.state.store.path)
        .execute("SELECT tpk FROM tentities WHERE id = ?", (kept,))
        .fetchone()[0]
    )
    total = age(app, 40, f"NOT ({newest})", (tpk,))
    assert total == 5  # kept: 1 and 2; gone: 1 and its deletion; quiet: 1

    assert await app.state.pruner.prune() == total
    assert await values(client, kept) == [3]
    assert await values(client, gone) is None  # its entity is deleted: nothing left to show
    assert await values(client, quiet) == []  # live entity, no instance within 30 days
    r = await client.get(f"{BASE}/entities/{quiet}", params={"options": "keyValues"})
    assert r.json()["n"] == 1  # the current state is never pruned
    assert await app.state.pruner.prune() == 0
    health = (await client.get("/health")).json()["history"]
    assert health["retentionDays"] == 30 and health["deletedInstances"] == total
    assert health["lastRun"] is not None


async def test_rewritten_instances_count_from_their_rewrite(
    hub: tuple[httpx.AsyncClient, Starlette], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old instance modified through the temporal API is kept as recently written, and the
    old instances stored after it are still found, in steps of a few rows."""
    client, app = hub
    monkeypatch.setattr(retention, "STEP", 2)
    eid = "urn:ngsi-ld:Sensor:t"
    body = {
        "id": eid,
        "type": "Sensor",
        "n": [
            {"type": "Property", "value": i, "observedAt": f"2026-01-0{i}T00:00:00Z"}
            for i in range(1, 8)
        ],
    }
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    assert age(app, 40) == 7
    r = await client.get(f"{BASE}/temporal/entities/{eid}")
    first = r.json()["n"][0]
    assert first["value"] == 1
    r = await client.patch(
        f"{BASE}/temporal/entities/{eid}/attrs/n/{first['instanceId']}",
        json={"n": {"type": "Property", "value": 10, "observedAt": "2026-01-01T00:00:00Z"}},
    )
    assert r.status_code == 204, r.text

    assert await app.state.pruner.prune() == 6
    assert await values(client, eid) == [10]


async def test_prunes_in_steps_while_writes_go_on(
    hub: tuple[httpx.AsyncClient, Starlette], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step is its own short transaction: a write made while a pass runs is committed
    and kept."""
    client, app = hub
    monkeypatch.setattr(retention, "STEP", 50)
    batch = [entity(f"urn:ngsi-ld:Sensor:{i}", i) for i in range(500)]
    r = await client.post(f"{BASE}/entityOperations/create", json=batch)
    assert r.status_code == 201
    age(app, 31)
    steps = 0
    real = app.state.store.prune_history

    def counting(*args: Any) -> Any:
        nonlocal steps
        steps += 1
        return real(*args)

    monkeypatch.setattr(app.state.store, "prune_history", counting)
    pruning = asyncio.create_task(app.state.pruner.prune())
    r = await client.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Sensor:new", 7))
    assert r.status_code == 201
    assert await pruning == 500
    assert steps >= 10
    assert await values(client, "urn:ngsi-ld:Sensor:new") == [7]
    assert await values(client, "urn:ngsi-ld:Sensor:3") == []


async def test_off_by_default_and_runs_in_the_background(tmp_path: Path) -> None:
    """Without the setting nothing is pruned; with it, the served hub prunes at start-up."""
    off = create_app(Settings(db=str(tmp_path / "off.db")))
    assert off.state.pruner.report()["retentionDays"] == 0
    off.state.store.close()

    app = create_app(Settings(db=str(tmp_path / "on.db"), history_days=1))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            r = await client.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Sensor:b", 1))
            assert r.status_code == 201
    app = create_app(Settings(db=str(tmp_path / "on.db"), history_days=1))
    age(app, 2)
    app.state.pruner.delay = 0.0  # the first pass waits START_DELAY after start-up
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 10
        while app.state.pruner.deleted == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert app.state.pruner.deleted == 1


def series(db: str) -> dict[str, list[str]]:
    """The datasetIds history_datasets holds per temporal entity id ('?' for rows whose
    temporal entity is gone)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT coalesce(t.id, '?'), d.dataset_id FROM history_datasets d "
            "LEFT JOIN tentities t ON t.tpk = d.tpk ORDER BY 1, 2"
        ).fetchall()
    out: dict[str, list[str]] = {}
    for eid, ds in rows:
        out.setdefault(eid, []).append(ds)
    return out


def readings(*datasets: str | None) -> list[dict[str, Any]]:
    return [
        {"type": "Property", "value": i, "observedAt": f"2026-01-0{i + 1}T00:00:00Z"}
        | ({"datasetId": ds} if ds else {})
        for i, ds in enumerate(datasets)
    ]


async def test_a_pruned_temporal_entity_takes_its_series_along(
    hub: tuple[httpx.AsyncClient, Starlette],
) -> None:
    """Retention dropped a temporal entity but kept its datasetIds; the next temporal entity,
    given the same internal id, inherited them as series it never had (probe 1, finding 3)."""
    client, app = hub
    old = {"id": "urn:ngsi-ld:M:old", "type": "M", "v": readings("urn:d:1", "urn:d:2")}
    assert (await client.post(f"{BASE}/temporal/entities", json=old)).status_code == 201
    db = app.state.store.path
    assert series(db) == {"urn:ngsi-ld:M:old": ["urn:d:1", "urn:d:2"]}
    (old_tpk,) = sqlite3.connect(db).execute("SELECT tpk FROM tentities").fetchone()
    age(app, 40)
    assert await app.state.pruner.prune() == 2
    assert series(db) == {}

    new = {"id": "urn:ngsi-ld:M:new", "type": "M", "v": readings(None, None)}
    assert (await client.post(f"{BASE}/temporal/entities", json=new)).status_code == 201
    (new_tpk,) = sqlite3.connect(db).execute("SELECT tpk FROM tentities").fetchone()
    assert new_tpk == old_tpk  # the case that inherited the old series
    assert series(db) == {}  # no datasetId: no series of its own, none inherited
    r = await client.post(
        f"{BASE}/temporal/entities/{new['id']}/attrs", json={"v": readings(None, None, "urn:d:3")}
    )
    assert r.status_code == 204, r.text
    assert series(db) == {"urn:ngsi-ld:M:new": ["@none", "urn:d:3"]}


async def test_the_upgrade_to_13_drops_the_series_of_pruned_temporal_entities(
    tmp_path: Path,
) -> None:
    """A database a retention run left with orphan series loses them when opened."""
    db = tmp_path / "old.db"
    app = create_app(Settings(db=str(db)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for eid, ds in (("urn:ngsi-ld:M:a", "urn:d:1"), ("urn:ngsi-ld:M:b", "urn:d:2")):
            body = {"id": eid, "type": "M", "v": readings(ds)}
            assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    app.state.store.close()
    with sqlite3.connect(db) as conn:  # as retention left it before: the row, not its series
        conn.execute(
            "DELETE FROM history WHERE tpk IN (SELECT tpk FROM tentities WHERE id = ?)",
            ("urn:ngsi-ld:M:a",),
        )
        conn.execute("DELETE FROM tentities WHERE id = 'urn:ngsi-ld:M:a'")
        conn.execute("UPDATE meta SET value = '12' WHERE key = 'schema_version'")
    assert series(str(db)) == {"?": ["urn:d:1"], "urn:ngsi-ld:M:b": ["urn:d:2"]}
    create_app(Settings(db=str(db))).state.store.close()
    assert series(str(db)) == {"urn:ngsi-ld:M:b": ["urn:d:2"]}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )


async def test_dead_letters_older_than_retention_go_with_the_history(tmp_path: Path) -> None:
    """A dead letter keeps a device's raw payload (a resident's reading): it was kept until
    10,000 newer ones pushed it out, whatever CITYHUB_HISTORY_DAYS said."""
    from cityhub.ingest.agent.payload import Raw
    from cityhub.ingest.agent.reasons import Rejected

    app = create_app(Settings(db=str(tmp_path / "hub.db"), history_days=30))
    letters = app.state.iot.letters
    now = time.time()
    written = []
    for age_days, device in ((400, "old"), (31, "month"), (29, "recent"), (0, "today")):
        raw = Raw("http", "", device, b'{"hr": 77}', received=now - age_days * 86400)
        written.append((None, letters.letter(raw, Rejected("unknownDevice", "test"))))
    await app.state.committer.run(lambda: letters.write(written))
    assert letters.held == 4
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        await app.state.pruner.prune(now=now)
        kept = await client.get("/iot/v1/deadletters", params={"unrouted": "true"})
        assert [d["device"] for d in kept.json()] == ["recent", "today"], kept.json()
        assert letters.held == 2
        history = (await client.get("/health")).json()["history"]
        assert history["deletedDeadLetters"] == 2, history
    app.state.store.close()


async def test_notifications_older_than_retention_are_not_kept_or_sent(
    tmp_path: Path, receiver: Receiver
) -> None:
    """An unsent notification carries the values it reports: behind a receiver that stays
    down, or held for a paused subscription until it resumes, it was kept (and then sent)
    however long CITYHUB_HISTORY_DAYS said personal data may be kept."""
    app = create_app(
        Settings(
            db=str(tmp_path / "hub.db"), history_days=30, notify_backoff=0.2, notify_attempts=100
        )
    )
    receiver.status["/down"] = 503
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        sub = {
            "id": "urn:ngsi-ld:Subscription:s",
            "type": "Subscription",
            "entities": [{"type": "Sensor"}],
            "notification": {"endpoint": {"uri": receiver.url("/down")}},
        }
        assert (await client.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
        for n in range(3):
            resp = await client.post(f"{BASE}/entities", json=entity(f"urn:old:{n}", n))
            assert resp.status_code == 201, resp.text
        conn = sqlite3.connect(app.state.store.path, isolation_level=None)
        conn.execute("UPDATE outbox SET created = created - ?", (31 * DAY,))
        conn.close()
        resp = await client.post(f"{BASE}/entities", json=entity("urn:young:1", 9))
        assert resp.status_code == 201, resp.text
        await app.state.pruner.prune()
        refused = len(receiver.received("/down"))  # attempts before the pass
        receiver.status["/down"] = 200

        def ids() -> list[str]:
            got = receiver.received("/down")[refused:]
            return [e["id"] for r in got for e in r.body["data"]]

        await wait_for(lambda: "urn:young:1" in ids(), what="the young notification")
        assert [i for i in ids() if i.startswith("urn:old:")] == [], "sent past retention"
        history = (await client.get("/health")).json()["history"]
        assert history["deletedNotifications"] == 3, history
    await app.state.notifier.close()
    app.state.store.close()


async def test_the_log_says_what_a_pass_deleted_besides_instances(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pass that deleted only dead letters or notifications logged nothing: the operator
    saw personal data go only on /health."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), history_days=30))
    pruner = app.state.pruner

    async def three(before: float) -> int:
        return 3

    pruner.also = {}
    pruner.add("deletedDeadLetters", "dead letters", three)
    pruner.add("deletedNotifications", "unsent notifications", three)
    with caplog.at_level("INFO", logger="cityhub.retention"):
        await pruner.prune()
    lines = [r.getMessage() for r in caplog.records if r.name == "cityhub.retention"]
    assert lines == [
        "history retention: deleted 0 instances, 3 dead letters and 3 unsent notifications "
        "older than 30 days"
    ], lines
    app.state.store.close()
