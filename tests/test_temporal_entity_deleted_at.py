"""An entity DELETE is part of its temporal representation: the entity's own deletedAt."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.ngsild.temporal import TemporalService
from cityhub.store.sqlite import SqliteStore
from cityhub.store.sqlite.schema import SCHEMA_VERSION
from conftest import BASE

EID = "urn:ngsi-ld:Bench:deleted-1"
SYS = {"options": "sysAttrs"}
EARLY = "2000-01-01T00:00:00Z"


def bench(eid: str = EID, **attrs: Any) -> dict[str, Any]:
    return {"id": eid, "type": "Bench", **attrs}


async def temporal(client: httpx.AsyncClient, eid: str = EID, **params: str) -> dict[str, Any]:
    resp = await client.get(f"{BASE}/temporal/entities/{eid}", params={**SYS, **params})
    assert resp.status_code == 200, resp.text
    got: dict[str, Any] = resp.json()
    return got


async def created(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> None:
    resp = await client.post(f"{BASE}/entities", json=body, headers=headers)
    assert resp.status_code == 201, resp.text


async def deleted(client: httpx.AsyncClient, eid: str = EID, **headers: str) -> None:
    resp = await client.delete(f"{BASE}/entities/{eid}", headers=headers)
    assert resp.status_code == 204, resp.text


async def found_deleted(client: httpx.AsyncClient, timerel: str, at: str) -> list[str]:
    """The ids a temporal query on the deletedAt axis finds among the Bench entities."""
    params = {"type": "Bench", "timeproperty": "deletedAt", "timerel": timerel, "timeAt": at}
    resp = await client.get(f"{BASE}/temporal/entities", params=params)
    assert resp.status_code == 200, resp.text
    return sorted(e["id"] for e in resp.json())


async def test_a_deleted_entity_says_when_it_was_deleted(client: httpx.AsyncClient) -> None:
    """With sysAttrs, as its createdAt and modifiedAt; the same time as its markers."""
    await created(client, bench(seats={"type": "Property", "value": 3}))
    assert "deletedAt" not in await temporal(client)
    await deleted(client)
    got = await temporal(client)
    (_, marker) = got["seats"]
    assert got["deletedAt"] == marker["deletedAt"] == got["modifiedAt"], got
    plain = (await client.get(f"{BASE}/temporal/entities/{EID}")).json()
    assert "deletedAt" not in plain and "modifiedAt" not in plain, plain


async def test_an_entity_deleted_without_attributes_leaves_its_deletion(
    client: httpx.AsyncClient,
) -> None:
    """No attribute, no marker: the entity's deletedAt is the only trace, and the deletedAt
    axis finds it."""
    await created(client, bench())
    other = "urn:ngsi-ld:Bench:kept"
    await created(client, bench(other))
    await deleted(client)
    got = await temporal(client)
    assert set(got) == {"id", "type", "createdAt", "modifiedAt", "deletedAt"}, got
    assert await found_deleted(client, "after", EARLY) == [EID]
    assert await found_deleted(client, "after", got["deletedAt"]) == [EID]
    assert await found_deleted(client, "before", got["deletedAt"]) == []
    assert await found_deleted(client, "before", "2999-01-01T00:00:00Z") == [EID]
    # naming attributes asks for their deletions: this entity had none
    params = {"type": "Bench", "timeproperty": "deletedAt", "timerel": "after", "timeAt": EARLY}
    resp = await client.get(f"{BASE}/temporal/entities", params={**params, "attrs": "seats"})
    assert resp.status_code == 200 and resp.json() == [], resp.text


async def test_a_created_again_entity_is_deleted_only_once_deleted_again(
    client: httpx.AsyncClient,
) -> None:
    """A create (with or without attributes, by POST or batch) ends the deletion; the next
    DELETE gives its own time."""
    await created(client, bench(seats={"type": "Property", "value": 3}))
    await deleted(client)
    first = (await temporal(client))["deletedAt"]
    await created(client, bench())
    assert "deletedAt" not in await temporal(client)
    await deleted(client)
    second = (await temporal(client))["deletedAt"]
    assert second > first
    upsert = [bench(seats={"type": "Property", "value": 4})]
    resp = await client.post(f"{BASE}/entityOperations/upsert", json=upsert)
    assert resp.status_code == 201, resp.text
    assert "deletedAt" not in await temporal(client)
    resp = await client.post(f"{BASE}/entityOperations/create", json=[bench("urn:x:other")])
    assert resp.status_code == 201, resp.text
    assert "deletedAt" not in await temporal(client)


async def test_a_temporal_write_leaves_the_entity_deleted(client: httpx.AsyncClient) -> None:
    """Adding history of a deleted entity does not bring the entity back."""
    await created(client, bench(seats={"type": "Property", "value": 3}))
    await deleted(client)
    when = (await temporal(client))["deletedAt"]
    late = {"seats": {"type": "Property", "value": 2, "observedAt": "2001-01-01T00:00:00Z"}}
    resp = await client.post(f"{BASE}/temporal/entities/{EID}/attrs", json=late)
    assert resp.status_code == 204, resp.text
    assert (await temporal(client))["deletedAt"] == when


async def test_batch_delete_and_purge_record_each_deletion_in_its_tenant(
    client: httpx.AsyncClient,
) -> None:
    t = {"NGSILD-Tenant": "parks"}
    ids = [f"urn:ngsi-ld:Bench:{n}" for n in range(4)]
    resp = await client.post(
        f"{BASE}/entityOperations/create",
        json=[bench(i, seats={"type": "Property", "value": n}) for n, i in enumerate(ids)],
        headers=t,
    )
    assert resp.status_code == 201, resp.text
    await created(client, bench(ids[0]))  # the same id in the default tenant stays
    resp = await client.post(f"{BASE}/entityOperations/delete", json=ids[:2], headers=t)
    assert resp.status_code == 204, resp.text
    resp = await client.delete(f"{BASE}/entities", params={"type": "Bench"}, headers=t)
    assert resp.status_code == 204, resp.text
    for eid in ids:
        resp = await client.get(f"{BASE}/temporal/entities/{eid}", params=SYS, headers=t)
        assert "deletedAt" in resp.json(), resp.text
    assert "deletedAt" not in await temporal(client, ids[0])


async def test_erasing_the_history_erases_the_deletion(client: httpx.AsyncClient) -> None:
    await created(client, bench())
    await deleted(client)
    resp = await client.delete(f"{BASE}/temporal/entities/{EID}")
    assert resp.status_code == 204, resp.text
    resp = await client.get(f"{BASE}/temporal/entities/{EID}")
    assert resp.status_code == 404, resp.text
    assert await found_deleted(client, "after", EARLY) == []


def test_a_schema_20_database_is_upgraded_and_records_deletions(tmp_path: Path) -> None:
    """Its temporal entities get no deletedAt (none was kept); deletions after the upgrade
    do."""
    db = tmp_path / "old.db"
    store = SqliteStore(db)
    tm = ContextCache().core
    EntityService(store).create("", bench(seats={"type": "Property", "value": 1}), tm)
    EntityService(store).delete("", EID)
    EntityService(store).create("", bench("urn:x:2"), tm)
    store.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(
        "BEGIN; ALTER TABLE tentities DROP COLUMN deleted_at;"
        " UPDATE meta SET value = '20' WHERE key = 'schema_version'; COMMIT;"
    )
    conn.close()
    store = SqliteStore(db)
    try:
        version = store._writer.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION) == "22"
        svc = TemporalService(store)
        (old,) = svc.query("", {"options": "sysAttrs"}, tm, one_entity=EID).entities
        assert "deletedAt" not in old and len(old["seats"]) == 2
        EntityService(store).delete("", "urn:x:2")
        (new,) = svc.query("", {"options": "sysAttrs"}, tm, one_entity="urn:x:2").entities
        assert new["deletedAt"] == new["modifiedAt"]
    finally:
        store.close()
