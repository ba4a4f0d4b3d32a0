"""The minute's save of @context usage (api/context_usage.py) while the store cannot take it:
one line in the log, not a traceback a minute, and no failure at once while another process
holds the write lock (the save waits for it off the event loop's back, as writes do)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.api.context_usage import save_usage_soon
from cityhub.settings import Settings
from cityhub.store.sqlite.backend import SqliteStore
from cityhub.throttled_log import ThrottledLog
from conftest import BASE, CORE, link
from test_jsonld_contexts import HUB


async def _used(hub: httpx.AsyncClient) -> None:
    """One more use of the core @context, a count the next save writes."""
    assert (await hub.get(f"{BASE}/types", headers={"Link": link(CORE)})).status_code == 200


async def test_a_lost_store_logs_one_line_not_a_traceback_a_minute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "hub.db"
    app = create_app(Settings(db=str(db)))
    failed = ThrottledLog(logging.getLogger("cityhub.api.context_usage"), 600.0)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HUB) as hub,
    ):
        await _used(hub)
        db.unlink()  # the store is lost: it writes nothing more
        assert app.state.store._watch.look()  # noticed now, not at its next checkpoint
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cityhub.api.context_usage"):
            for _ in range(5):  # five minutes' saves
                assert not await save_usage_soon(app.state.contexts, app.state.committer, failed)
        lines = [r for r in caplog.records if r.name == "cityhub.api.context_usage"]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert lines[0].exc_info is None and "usage counts" in lines[0].getMessage()
        assert app.state.contexts.usage()  # the counts wait for a later save


async def test_a_save_waits_for_another_process_s_write_lock(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    app = create_app(Settings(db=str(db)))
    failed = ThrottledLog(logging.getLogger("cityhub.api.context_usage"), 600.0)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HUB) as hub,
    ):
        await _used(hub)
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        save = asyncio.create_task(save_usage_soon(app.state.contexts, app.state.committer, failed))
        for _ in range(20):  # the loop goes on turning while the save waits
            await asyncio.sleep(0)
        assert not save.done()
        other.execute("COMMIT")
        other.close()
        assert await save
        assert not app.state.contexts.usage()
    saved = SqliteStore(db).context_usage()
    assert saved[CORE][0] >= 1, saved
