"""numberOfHits, lastUsage and createdAt of the @contexts (5.13.3, 5.13.4) survive a restart:
an operator who must delete hosted contexts to make room (decision 073) reads them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.sqlite.backend import SqliteStore
from cityhub.store.sqlite.schema import SCHEMA_VERSION
from conftest import BASE, CORE, link
from test_jsonld_contexts import CTX, HUB, PATIENT, Remote, details, lamp, remote, remote_server

__all__ = ["remote", "remote_server"]  # the fixtures, imported for the tests below


async def test_usage_and_creation_times_survive_a_restart(tmp_path: Path, remote: Remote) -> None:
    settings = Settings(db=str(tmp_path / "hub.db"), context_timeout=PATIENT)
    app = create_app(settings)
    fetched, _ = remote.serve()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HUB) as hub,
    ):
        resp = await hub.post(CTX, json={"@context": {"Lamp": "https://ex.org/Lamp"}})
        hosted = resp.headers["location"].rsplit("/", 1)[-1]
        for n, url in enumerate([f"{HUB}{CTX}/{hosted}", f"{HUB}{CTX}/{hosted}", fetched]):
            resp = await hub.post(f"{BASE}/entities", json=lamp(n), headers={"Link": link(url)})
            assert resp.status_code == 201, resp.text
        before = {ident: await details(hub, ident) for ident in (hosted, fetched)}
    assert before[hosted]["numberOfHits"] == 2 and before[fetched]["numberOfHits"] == 1, before

    app2 = create_app(settings)
    async with (
        app2.router.lifespan_context(app2),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app2), base_url=HUB) as hub,
    ):
        for ident, was in before.items():
            now = await details(hub, ident)
            # the details request before the restart was one more use (5.13.4)
            assert now["numberOfHits"] == was["numberOfHits"] + 1, (was, now)
            assert now["lastUsage"] > was["lastUsage"], (was, now)
            assert {**now, "numberOfHits": 0, "lastUsage": ""} == {
                **was,
                "numberOfHits": 0,
                "lastUsage": "",
            }


def test_a_schema_18_database_gets_the_usage_table(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    SqliteStore(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(
        "BEGIN; DROP TABLE context_usage;"
        " UPDATE meta SET value = '18' WHERE key = 'schema_version'; COMMIT;"
    )
    conn.close()
    store = SqliteStore(db)
    try:
        version = store._writer.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION)
        store.save_context_usage([("https://ex.org/c.jsonld", 4, "2026-12-07T00:00:00Z")])
        assert store.context_usage() == {"https://ex.org/c.jsonld": (4, "2026-12-07T00:00:00Z")}
    finally:
        store.close()


async def test_the_usage_of_a_context_no_restart_keeps_is_not_saved(tmp_path: Path) -> None:
    # an answer's ImplicitlyCreated context lives in memory only: its count would stay
    # behind in the table once it is evicted
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HUB) as hub,
    ):
        entry = app.state.contexts.implicit([{"Lamp": "https://ex.org/Lamp"}])
        resp = await hub.get(f"{CTX}/{entry.local_id}")
        assert resp.status_code == 200 and entry.hits == 1, resp.text
        await hub.get(f"{BASE}/types", headers={"Link": link(CORE)})  # the core counts
    saved = SqliteStore(tmp_path / "hub.db").context_usage()
    assert list(saved) == [CORE] and saved[CORE][0] >= 1, saved
