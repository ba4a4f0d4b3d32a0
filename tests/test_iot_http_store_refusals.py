"""An HTTP device whose message the store cannot take (a full disk, another process's write
lock, a deleted database file) gets the API's 503, which devices retry, not a 500, on which
they drop the reading (probe 4, finding 2)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api import commit
from cityhub.store.base import StoreLost
from conftest import get_entity, problem
from iot_support import IOT, MAPPING, provision, stats

EID = "urn:ngsi-ld:Thermometer:h1"


async def http_device(client: httpx.AsyncClient) -> dict[str, str]:
    """Provision device h1 for HTTP; the query its messages are posted with."""
    body = {"id": "h1", "entityType": "Thermometer", "protocol": "http", "mapping": MAPPING}
    return {"k": str((await provision(client, body))["apikey"]), "i": "h1"}


async def test_a_full_disk_is_a_503_with_retry_after_and_the_resent_message_is_stored(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    query = await http_device(client)
    writer = app.state.store._writer
    (pages,) = writer.execute("PRAGMA page_count").fetchone()
    writer.execute(f"PRAGMA max_page_count = {pages + 20}")  # room for a few messages only
    for n in range(200):
        resp = await client.post(f"{IOT}/json", params=query, json={"t": n, "st": "x" * 3000})
        if resp.status_code != 204:
            break
    body = problem(resp, 503)
    assert "storage is full" in body["detail"] and resp.headers["retry-after"] == "60"
    assert (await stats(client))["rejectedByReason"]["store_error"] >= 1
    writer.execute("PRAGMA max_page_count = 1073741823")  # space again: the device sends again
    resp = await client.post(f"{IOT}/json", params=query, json={"t": n, "st": "x" * 3000})
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["temperature"]["value"] == pytest.approx(n / 10)


async def test_another_process_holding_the_write_lock_is_a_503_with_retry_after(
    client: httpx.AsyncClient, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = await http_device(client)
    monkeypatch.setattr(commit, "BUSY_WAIT", 0.2)
    importer = sqlite3.connect(db_path, isolation_level=None)
    importer.execute("BEGIN IMMEDIATE")  # as `cityhub import --db` holds it
    try:
        resp = await client.post(f"{IOT}/json", params=query, json={"t": 215})
    finally:
        importer.execute("ROLLBACK")
        importer.close()
    assert "locked by another process" in problem(resp, 503)["detail"]
    assert resp.headers["retry-after"] == "1"
    resp = await client.post(f"{IOT}/json", params=query, json={"t": 215})
    assert resp.status_code == 204, resp.text


def failing_writes(app: Starlette, monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    """Every entity write raises exc, as the store would."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(app.state.entities, "batch_upsert", refuse)


async def test_a_deleted_database_file_is_a_503_that_says_so(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = await http_device(client)
    failing_writes(app, monkeypatch, StoreLost())
    resp = await client.post(f"{IOT}/json", params=query, json={"t": 215})
    assert "deleted or replaced while the hub ran" in problem(resp, 503)["detail"]


async def test_a_bug_in_the_write_is_still_a_500(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the store's refusals are worth a retry: anything else is for the hub's log."""
    query = await http_device(client)
    failing_writes(app, monkeypatch, RuntimeError("a bug"))
    resp = await client.post(f"{IOT}/json", params=query, json={"t": 215})
    assert "see the hub log" in problem(resp, 500)["detail"]
