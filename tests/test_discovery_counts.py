"""/types and /attributes answer from counts kept as entities are written (decision 020): after
every kind of write the counts equal a recount of the stored documents, and the answers follow."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from cityhub.store.sqlite.backend import SqliteStore
from cityhub.store.sqlite.schema import SCHEMA_VERSION
from conftest import BASE, SyncHub, stored_type_attrs, type_attrs_from_docs

BUILDING = {
    "id": "urn:ngsi-ld:Building:1",
    "type": "Building",
    "height": 10,
    "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
}
SHOP = {
    "id": "urn:ngsi-ld:Building:2",
    "type": ["Building", "Shop"],
    "height": 20,
    # a multi-attribute of two kinds: one entity, counted once per kind
    "owner": [
        {"type": "Property", "value": "someone"},
        {"type": "Relationship", "object": "urn:ngsi-ld:Person:2", "datasetId": "urn:ds:1"},
    ],
}
TREE = {"id": "urn:ngsi-ld:Tree:1", "type": "Tree", "species": {"languageMap": {"en": "oak"}}}


def counts_match(db: Path) -> None:
    """The kept counts equal a recount of the documents."""
    with sqlite3.connect(db) as conn:
        assert stored_type_attrs(conn) == type_attrs_from_docs(conn)


async def ok(client: httpx.AsyncClient, method: str, path: str, db: Path, **kw: Any) -> None:
    """A write that succeeds, then the counts check."""
    resp = await client.request(method, BASE + path, **kw)
    assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text}"
    counts_match(db)


async def details(client: httpx.AsyncClient) -> dict[str, list[str]]:
    """{type: attribute names} from /types?details=true."""
    resp = await client.get(f"{BASE}/types", params={"details": "true"})
    assert resp.status_code == 200, resp.text
    return {t["typeName"]: sorted(t["attributeNames"]) for t in resp.json()}


async def attribute(client: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    """/attributes/{name}, or None on 404."""
    resp = await client.get(f"{BASE}/attributes/{name}")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_every_write_keeps_the_counts(client: httpx.AsyncClient, db_path: Path) -> None:
    await ok(client, "POST", "/entityOperations/create", db_path, json=[BUILDING, SHOP])
    await ok(client, "POST", "/entities", db_path, json=TREE)
    assert await details(client) == {
        "Building": ["height", "location", "owner"],
        "Shop": ["height", "owner"],
        "Tree": ["species"],
    }
    owner = await attribute(client, "owner")
    assert owner is not None
    # the attribute instances with this name (5.2.28): one on Building:1, two on Building:2
    assert owner["attributeCount"] == 3
    assert owner["attributeTypes"] == ["Property", "Relationship"]
    assert sorted(owner["typeNames"]) == ["Building", "Shop"]

    b1 = "urn:ngsi-ld:Building:1"
    # attribute writes: add, change kind, partial update, replace, delete
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "attrs", {"floors": 3}),
        ("PATCH", "attrs", {"height": {"type": "Relationship", "object": "urn:x:1"}}),
        ("PATCH", "attrs/floors", {"value": 4}),
        ("PUT", "attrs/floors", {"type": "ListProperty", "valueList": [1, 2]}),
    ]
    for method, where, body in writes:
        await ok(client, method, f"/entities/{b1}/{where}", db_path, json=body)
    resp = await client.get(f"{BASE}/types/Building")
    kinds = {a["attributeName"]: a["attributeTypes"] for a in resp.json()["attributeDetails"]}
    assert kinds["floors"] == ["ListProperty"]
    assert kinds["height"] == ["Property", "Relationship"]  # Property still on Building:2
    await ok(client, "DELETE", f"/entities/{b1}/attrs/floors", db_path)
    await ok(
        client,
        "DELETE",
        "/entities/urn:ngsi-ld:Building:2/attrs/owner",
        db_path,
        params={"datasetId": "urn:ds:1"},
    )
    assert (await attribute(client, "floors")) is None
    owner = await attribute(client, "owner")
    assert owner is not None and owner["attributeCount"] == 2  # one instance fewer

    # entity writes: merge with a new type, replace with another type and other attributes
    await ok(client, "PATCH", f"/entities/{b1}", db_path, json={"type": ["Building", "Museum"]})
    assert "Museum" in await details(client)
    await ok(client, "PUT", f"/entities/{b1}", db_path, json={"type": "Tree", "species": "elm"})
    found = await details(client)
    assert "Museum" not in found and found["Building"] == ["height", "owner"]

    # batch operations
    lamp = "urn:ngsi-ld:Lamp:"
    relation = {"type": "Relationship", "object": "urn:x:2"}
    batches: list[tuple[str, dict[str, str], list[dict[str, Any]]]] = [
        ("upsert", {}, [{"id": f"{lamp}{i}", "type": "Lamp", "lux": i} for i in range(5)]),
        ("upsert", {"options": "update"}, [{"id": f"{lamp}0", "type": "Lamp", "on": True}]),
        ("upsert", {"options": "replace"}, [{"id": f"{lamp}1", "type": "Lamp", "on": False}]),
        ("update", {}, [{"id": f"{lamp}2", "type": "Lamp", "lux": relation}]),
        ("merge", {}, [{"id": f"{lamp}3", "type": "Lamp", "color": "red"}]),
    ]
    for op, params, body in batches:
        await ok(client, "POST", f"/entityOperations/{op}", db_path, params=params, json=body)
    lux = await attribute(client, "lux")
    assert lux is not None and lux["attributeCount"] == 4  # Lamp:1 was replaced without it
    await ok(client, "POST", "/entityOperations/delete", db_path, json=["urn:ngsi-ld:Lamp:4"])
    await ok(client, "DELETE", "/entities/urn:ngsi-ld:Lamp:3", db_path)

    # purges: trim attributes, then delete the rest of a type
    await ok(client, "DELETE", "/entities", db_path, params={"type": "Lamp", "drop": "on"})
    assert await details(client) == {
        "Building": ["height", "owner"],
        "Lamp": ["lux"],
        "Shop": ["height", "owner"],
        "Tree": ["species"],
    }
    await ok(client, "DELETE", "/entities", db_path, params={"type": "Lamp"})
    assert "Lamp" not in await details(client)
    assert (await attribute(client, "lux")) is None


async def test_tenants_are_counted_apart(client: httpx.AsyncClient, db_path: Path) -> None:
    await ok(client, "POST", "/entities", db_path, json=TREE)
    other = {"NGSILD-Tenant": "t1"}
    await ok(client, "POST", "/entities", db_path, json=BUILDING, headers=other)
    assert await details(client) == {"Tree": ["species"]}
    resp = await client.get(f"{BASE}/attributes", headers=other)
    assert sorted(resp.json()["attributeList"]) == ["height", "location", "owner"]
    assert (await attribute(client, "height")) is None


def test_an_older_database_gets_its_counts(tmp_path: Path) -> None:
    """A schema-3 database (no counts yet) is counted from its documents when opened."""
    hub_db = tmp_path / "hub.db"
    hub = SyncHub(hub_db)
    for body in (BUILDING, SHOP, TREE):
        assert hub.request("POST", f"{BASE}/entities", json=body).status_code == 201
    hub.close()
    with sqlite3.connect(hub_db) as conn:
        expected = stored_type_attrs(conn)
        assert expected == type_attrs_from_docs(conn) and expected
        conn.execute("DROP TABLE type_attrs")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    again = SqliteStore(hub_db)
    again.close()
    with sqlite3.connect(hub_db) as conn:
        assert stored_type_attrs(conn) == expected
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)


def test_a_schema_11_database_counts_attribute_instances(tmp_path: Path) -> None:
    """attributeCount counted entities before schema 12; opening the database recounts it as
    attribute instances (Table 5.2.28-1), and leaves the other counts as they were."""
    hub_db = tmp_path / "hub.db"
    hub = SyncHub(hub_db)
    for body in (BUILDING, SHOP, TREE):
        assert hub.request("POST", f"{BASE}/entities", json=body).status_code == 201
    hub.close()
    with sqlite3.connect(hub_db) as conn:
        expected = stored_type_attrs(conn)
        assert expected == type_attrs_from_docs(conn)
        # as schema 11 kept it: the entities holding each attribute
        conn.execute(
            "UPDATE type_attrs SET n = (SELECT count(*) FROM entities e, "
            "json_each(e.doc, '$.attrs') a JOIN attr_names m ON m.name = a.key "
            "WHERE m.nid = type_attrs.nid) WHERE type = ''"
        )
        assert stored_type_attrs(conn) != expected
        conn.execute("UPDATE meta SET value = '11' WHERE key = 'schema_version'")
    again = SqliteStore(hub_db)
    again.close()
    with sqlite3.connect(hub_db) as conn:
        assert stored_type_attrs(conn) == expected


def plan(conn: sqlite3.Connection, sql: str, *args: Any) -> str:
    """SQLite's query plan for a statement, in one line."""
    return " | ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))


def test_a_schema_13_database_reads_one_attribute_and_the_types_by_index(tmp_path: Path) -> None:
    """/attributes/{attr} and /types read every type x attribute row of the tenant before
    schema 14; opening the database adds the index they read through, and they answer the
    same."""
    hub_db = tmp_path / "hub.db"
    hub = SyncHub(hub_db)
    for body in (BUILDING, SHOP, TREE):
        assert hub.request("POST", f"{BASE}/entities", json=body).status_code == 201
    paths = ("attributes/height", "types?details=true")
    before = [hub.request("GET", f"{BASE}/{p}").json() for p in paths]
    hub.close()
    with sqlite3.connect(hub_db) as conn:
        conn.execute("DROP INDEX type_attrs_nid")
        conn.execute("UPDATE meta SET value = '13' WHERE key = 'schema_version'")
    hub = SyncHub(hub_db)
    after = [hub.request("GET", f"{BASE}/{p}").json() for p in paths]
    hub.close()
    assert after == before and before[0]["attributeCount"] == 2
    with sqlite3.connect(hub_db) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
        one = plan(conn, "SELECT type, n FROM type_attrs WHERE tenant = '' AND nid = 3")
        types = plan(
            conn,
            "SELECT type, n FROM type_attrs WHERE tenant = '' AND type != '' AND nid = 0 "
            "ORDER BY type",
        )
    assert "INDEX type_attrs_nid (tenant=? AND nid=?)" in one, one
    assert "INDEX type_attrs_nid (tenant=? AND nid=?)" in types and "TEMP B-TREE" not in types, (
        types
    )
