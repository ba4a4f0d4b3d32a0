"""A temporal entity keeps its scope (decision 029): POST /temporal/entities stores the scope
it is given, entity writes keep it in step, scopeQ on temporal queries matches it, and the
temporal representations show it as GET /entities does."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from conftest import BASE, SyncHub

T = f"{BASE}/temporal/entities"
E = f"{BASE}/entities"


def speed(value: float, at: str = "2024-01-01T00:00:00Z") -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at}


async def matching(client: httpx.AsyncClient, scope_q: str, kind: str = "Car") -> list[str]:
    """The ids a temporal query with this scopeQ returns, through GET and through POST."""
    resp = await client.get(T, params={"type": kind, "scopeQ": scope_q})
    assert resp.status_code == 200, resp.text
    ids = sorted(e["id"] for e in resp.json())
    query = {"type": "Query", "entities": [{"type": kind}], "scopeQ": scope_q}
    resp = await client.post(f"{BASE}/temporal/entityOperations/query", json=query)
    assert resp.status_code == 200, resp.text
    assert sorted(e["id"] for e in resp.json()) == ids
    return ids


async def test_a_temporal_create_keeps_its_scope(client: httpx.AsyncClient) -> None:
    """The scope of a temporal create is stored, shown in every representation and matched by
    scopeQ, though the entity has no current state (decision 007)."""
    body = {"id": "urn:x:S2", "type": "Car", "scope": "/Madrid/Centro", "speed": [speed(1)]}
    assert (await client.post(T, json=body)).status_code == 201
    other = {"id": "urn:x:S3", "type": "Car", "scope": ["/Paris", "/Lyon"], "speed": [speed(2)]}
    assert (await client.post(T, json=other)).status_code == 201
    assert (await client.get(f"{E}/urn:x:S2")).status_code == 404
    for options in (
        {},
        {"options": "concise"},
        {"options": "temporalValues"},
        {"options": "sysAttrs"},
    ):
        got = (await client.get(f"{T}/urn:x:S2", params=options)).json()
        assert got["scope"] == "/Madrid/Centro", (options, got)
    got = (await client.get(f"{T}/urn:x:S3")).json()
    assert got["scope"] == ["/Paris", "/Lyon"]
    aggr = {"options": "aggregatedValues", "aggrMethods": "max"}
    assert (await client.get(f"{T}/urn:x:S2", params=aggr)).json()["scope"] == "/Madrid/Centro"
    picked = (await client.get(f"{T}/urn:x:S2", params={"pick": "id,speed"})).json()
    assert "scope" not in picked
    omitted = (await client.get(f"{T}/urn:x:S2", params={"omit": "scope"})).json()
    assert "scope" not in omitted and omitted["id"] == "urn:x:S2"

    assert await matching(client, "/Madrid/Centro") == ["urn:x:S2"]
    assert await matching(client, "/Madrid/#") == ["urn:x:S2"]
    assert await matching(client, "/Madrid") == []
    assert await matching(client, "/Lyon") == ["urn:x:S3"]
    assert await matching(client, "/Madrid/#,/Paris") == ["urn:x:S2", "urn:x:S3"]
    assert await matching(client, "/Paris;/Lyon") == ["urn:x:S3"]


async def test_a_later_temporal_create_replaces_or_keeps_the_scope(
    client: httpx.AsyncClient,
) -> None:
    """More instances without a scope keep the stored one; a scope sent replaces it."""
    body = {"id": "urn:x:S4", "type": "Car", "scope": "/A", "speed": [speed(1)]}
    assert (await client.post(T, json=body)).status_code == 201
    more = {"id": "urn:x:S4", "type": "Car", "speed": [speed(2, "2024-01-02T00:00:00Z")]}
    assert (await client.post(T, json=more)).status_code == 204
    assert (await client.get(f"{T}/urn:x:S4")).json()["scope"] == "/A"
    moved = {"id": "urn:x:S4", "type": "Car", "scope": "/B"}
    assert (await client.post(T, json=moved)).status_code == 204
    assert (await client.get(f"{T}/urn:x:S4")).json()["scope"] == "/B"
    assert await matching(client, "/A") == []
    assert await matching(client, "/B") == ["urn:x:S4"]
    bad = {"id": "urn:x:S5", "type": "Car", "scope": "Madrid", "speed": [speed(1)]}
    assert (await client.post(T, json=bad)).status_code == 400


async def test_entity_writes_keep_the_temporal_scope_in_step(client: httpx.AsyncClient) -> None:
    """Create, merge, scope-only updates, scope deletion, PUT and batch writes set the scope the
    temporal entity has; it stays when the entity is deleted, with its history."""
    body = {"id": "urn:x:E1", "type": "Car", "scope": "/Madrid", "speed": speed(1)}
    assert (await client.post(E, json=body)).status_code == 201
    assert (await client.get(f"{T}/urn:x:E1")).json()["scope"] == "/Madrid"
    assert await matching(client, "/Madrid") == ["urn:x:E1"]

    merge = {"scope": "/Sevilla", "speed": {"type": "Property", "value": 2}}
    assert (await client.patch(f"{E}/urn:x:E1", json=merge)).status_code == 204
    assert await matching(client, "/Madrid") == []
    assert await matching(client, "/Sevilla") == ["urn:x:E1"]
    # the scope alone: no attribute instance is written
    resp = await client.patch(f"{E}/urn:x:E1", json={"scope": "/Bilbao"})
    assert resp.status_code == 204
    assert (await client.get(f"{T}/urn:x:E1")).json()["scope"] == "/Bilbao"
    resp = await client.post(f"{E}/urn:x:E1/attrs", json={"scope": "/Vigo"})
    assert resp.status_code == 204
    assert await matching(client, "/Vigo") == ["urn:x:E1"]
    assert (await client.delete(f"{E}/urn:x:E1/attrs/scope")).status_code == 204
    assert "scope" not in (await client.get(f"{T}/urn:x:E1")).json()
    assert await matching(client, "/#") == []
    put = {"id": "urn:x:E1", "type": "Car", "scope": "/Leon"}
    assert (await client.put(f"{E}/urn:x:E1", json=put)).status_code == 204
    assert await matching(client, "/Leon") == ["urn:x:E1"]

    # batch: bulk creation, upsert (replace and update) and merge of existing entities
    batch = [
        {"id": "urn:x:B1", "type": "Car", "scope": "/Cadiz", "speed": speed(1)},
        {"id": "urn:x:B2", "type": "Car", "speed": speed(1)},
    ]
    resp = await client.post(f"{BASE}/entityOperations/upsert", json=batch)
    assert resp.status_code == 201, resp.text
    assert await matching(client, "/Cadiz") == ["urn:x:B1"]
    assert "scope" not in (await client.get(f"{T}/urn:x:B2")).json()
    again = [{"id": "urn:x:B2", "type": "Car", "scope": "/Cadiz", "speed": speed(2)}]
    resp = await client.post(f"{BASE}/entityOperations/upsert", json=again)
    assert resp.status_code == 204, resp.text
    assert await matching(client, "/Cadiz") == ["urn:x:B1", "urn:x:B2"]
    merged = [{"id": "urn:x:B1", "type": "Car", "scope": "/Jaen"}]
    resp = await client.post(f"{BASE}/entityOperations/merge", json=merged)
    assert resp.status_code == 204, resp.text
    assert await matching(client, "/Cadiz") == ["urn:x:B2"]
    assert await matching(client, "/Jaen") == ["urn:x:B1"]

    # the history of a deleted entity keeps the scope it had
    assert (await client.delete(f"{E}/urn:x:B1")).status_code == 204
    assert await matching(client, "/Jaen") == ["urn:x:B1"]


async def test_a_temporal_create_does_not_change_the_entity(client: httpx.AsyncClient) -> None:
    """Temporal writes touch only the history (decision 007): the entity keeps its scope
    until an entity write sets the temporal one again."""
    body = {"id": "urn:x:E2", "type": "Car", "scope": "/A", "speed": speed(1)}
    assert (await client.post(E, json=body)).status_code == 201
    temporal = {"id": "urn:x:E2", "type": "Car", "scope": "/B", "speed": [speed(5)]}
    assert (await client.post(T, json=temporal)).status_code == 204
    assert (await client.get(f"{E}/urn:x:E2")).json()["scope"] == "/A"
    assert await matching(client, "/B") == ["urn:x:E2"]
    resp = await client.patch(f"{E}/urn:x:E2/attrs", json={"speed": speed(2)})
    assert resp.status_code == 204
    assert await matching(client, "/A") == ["urn:x:E2"]


def test_an_older_database_gets_the_scopes_of_its_entities(tmp_path: Path) -> None:
    """The 8 -> 9 upgrade fills each temporal entity's scope from its current entity."""
    db = tmp_path / "old.db"
    hub = SyncHub(db)
    body = {"id": "urn:x:old", "type": "Car", "scope": ["/A", "/B/C"], "speed": speed(1)}
    assert hub.request("POST", E, json=body).status_code == 201
    plain = {"id": "urn:x:plain", "type": "Car", "speed": speed(1)}
    assert hub.request("POST", E, json=plain).status_code == 201
    alone = {"id": "urn:x:alone", "type": "Car", "speed": [speed(1)]}
    assert hub.request("POST", T, json=alone).status_code == 201
    hub.close()
    with sqlite3.connect(db) as conn:  # the schema 8 table: no scope column
        conn.execute("DROP INDEX tentities_tenant")
        conn.execute("ALTER TABLE tentities DROP COLUMN scope")
        conn.execute("CREATE INDEX tentities_tenant ON tentities (tenant)")
        conn.execute("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    hub = SyncHub(db)
    try:
        resp = hub.request("GET", T, params={"type": "Car", "scopeQ": "/B/#"})
        assert [e["id"] for e in resp.json()] == ["urn:x:old"], resp.text
        assert hub.request("GET", f"{T}/urn:x:old").json()["scope"] == ["/A", "/B/C"]
        for eid in ("urn:x:plain", "urn:x:alone"):
            got = hub.request("GET", f"{T}/{eid}").json()
            assert got["id"] == eid and "scope" not in got
        resp = hub.request("GET", T, params={"type": "Car"})
        assert [e["id"] for e in resp.json()] == ["urn:x:old", "urn:x:plain", "urn:x:alone"]
    finally:
        hub.close()


async def test_a_temporal_append_s_scope_is_the_temporal_entity_s(
    client: httpx.AsyncClient,
) -> None:
    """A scope in a temporal append replaces the temporal entity's, as a temporal create's
    does (decision 101): the append answered 204 and dropped it (probe leftovers.md)."""
    body = {"id": "urn:x:S9", "type": "Car", "scope": "/Paris", "speed": [speed(1)]}
    assert (await client.post(T, json=body)).status_code == 201
    more = {"scope": "/Madrid", "speed": [speed(2, "2024-01-02T00:00:00Z")]}
    assert (await client.post(f"{T}/urn:x:S9/attrs", json=more)).status_code == 204
    assert (await client.get(f"{T}/urn:x:S9")).json()["scope"] == "/Madrid"
    assert await matching(client, "/Madrid") == ["urn:x:S9"]
    assert await matching(client, "/Paris") == []
    only = {"scope": ["/Lyon", "/Nice"]}  # a scope alone is a write too
    assert (await client.post(f"{T}/urn:x:S9/attrs", json=only)).status_code == 204
    assert (await client.get(f"{T}/urn:x:S9")).json()["scope"] == ["/Lyon", "/Nice"]
    bad = {"scope": "Madrid", "speed": [speed(3, "2024-01-03T00:00:00Z")]}
    assert (await client.post(f"{T}/urn:x:S9/attrs", json=bad)).status_code == 400
    values = (await client.get(f"{T}/urn:x:S9", params={"options": "temporalValues"})).json()
    assert [v[0] for v in values["speed"]["values"]] == [1, 2]  # the refused one: nothing
