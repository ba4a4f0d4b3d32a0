"""Type sets (store/sqlite/typesets.py, decision 067): counts and pages of `type=T&q=...`
agree with a plain Python filter through creates, type changes, deletes and tenants; the sets
follow the entities; a schema 17 database upgrades in place."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.qlang import parse_q
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import SqliteStore, backend, qsql, typesets
from cityhub.store.sqlite.schema import SCHEMA_VERSION

TM = ContextCache().core
TYPES = ("Sensor", "Lamp", "Bus")
TENANTS = ("", "other")
# an AND of value index terms (ranges and equalities), with a term tested per row, alone
Q = [
    ("temperature>20", lambda d: _num(d, "temperature", lambda v: v > 20)),
    (
        'temperature>5;status=="ok"',
        lambda d: _num(d, "temperature", lambda v: v > 5) and _is(d, "status", "ok"),
    ),
    (
        'status=="ok";battery<=50',
        lambda d: _is(d, "status", "ok") and _num(d, "battery", lambda v: v <= 50),
    ),
    (
        'temperature==10..30;status!="alarm"',
        lambda d: (
            _num(d, "temperature", lambda v: 10 <= v <= 30)
            and "status" in d
            and not _is(d, "status", "alarm")
        ),
    ),
    ('status=="warn"', lambda d: _is(d, "status", "warn")),
]


def _values(doc: dict[str, Any], attr: str) -> list[Any]:
    """Every value of an attribute's instances, a list's elements one by one."""
    found = doc.get(attr)
    out: list[Any] = []
    for inst in [] if found is None else found if isinstance(found, list) else [found]:
        v = inst["value"]
        out += v if isinstance(v, list) else [v]
    return out


def _num(doc: dict[str, Any], attr: str, test: Any) -> bool:
    return any(isinstance(v, int | float) and test(v) for v in _values(doc, attr))


def _is(doc: dict[str, Any], attr: str, text: str) -> bool:
    return text in _values(doc, attr)


def _entity(i: int, rnd: random.Random, tenant: str) -> dict[str, Any]:
    """Entities of one, two or three types; some with two temperature instances, some with
    a list of temperatures, some without status."""
    typ: Any = TYPES[i % 3] if i % 4 else [TYPES[i % 3], "Asset"]
    if i % 11 == 0:
        typ = ["Asset", TYPES[(i + 1) % 3], TYPES[i % 3]]
    ent: dict[str, Any] = {
        "id": f"urn:ngsi-ld:{TYPES[i % 3]}:{tenant or 'default'}-{i}",
        "type": typ,
        "temperature": {"type": "Property", "value": round(rnd.uniform(0, 40), 1)},
        "battery": {"type": "Property", "value": rnd.randint(0, 100)},
    }
    if i % 5 == 0:
        ent["temperature"] = [
            {"type": "Property", "value": round(rnd.uniform(0, 40), 1)},
            {"type": "Property", "value": round(rnd.uniform(0, 40), 1), "datasetId": "urn:ds:b"},
        ]
    if i % 6 == 0:
        ent["temperature"] = {"type": "Property", "value": [rnd.randint(0, 40) for _ in range(3)]}
    if i % 9:
        ent["status"] = {"type": "Property", "value": rnd.choice(["ok", "ok", "warn", "alarm"])}
    return ent


def _plain(ent: dict[str, Any]) -> dict[str, Any]:
    """The entity as the Python filter reads it: types as a list."""
    types = ent["type"]
    return {**ent, "type": types if isinstance(types, list) else [types]}


def _agree(store: SqliteStore, held: dict[str, dict[str, dict[str, Any]]]) -> None:
    """For every tenant, type and q: the count, and the ids over pages of 7, are the filter's."""
    for tenant in TENANTS:
        for typ in (*TYPES, "Asset", "Depot", "Nothing"):
            for q, test in Q:
                node = ast.expand_q(parse_q(q), TM.expand)
                tnode = ast.TypeName(TM.expand(typ))
                want = sorted(
                    eid
                    for eid, ent in held[tenant].items()
                    if typ in _plain(ent)["type"] and test(ent)
                )
                got: list[str] = []
                for offset in range(0, len(want) + 7, 7):
                    docs, total = store.query(
                        tenant,
                        EntityQuery(q=node, types=tnode, limit=7, offset=offset, count=True),
                    )
                    assert total == len(want), (tenant, typ, q)
                    got += [d["id"] for d in docs]
                assert sorted(got) == want, (tenant, typ, q)


def _driven(store: SqliteStore, q: str) -> bool:
    """Does the store count `type=Sensor&q=...` by a value index (Compiler.count_sql)?"""
    comp = qsql.Compiler(store._reader(), pk="d.pk", names=store.names)
    query = EntityQuery(
        q=ast.expand_q(parse_q(q), TM.expand),
        types=ast.TypeName(TM.expand("Sensor")),
        count=True,
    )
    return comp.count_sql("", query) is not None


def _sets(store: SqliteStore) -> set[tuple[str, str, int]]:
    """(tenant, types, entities) of every stored type set."""
    rows = store._writer.execute("SELECT tenant, types, n FROM type_sets").fetchall()
    return {(t, types, n) for t, types, n in rows}


def _held_sets(held: dict[str, dict[str, dict[str, Any]]]) -> set[tuple[str, str, int]]:
    """The type sets the entities should have: per tenant, each distinct set with its count."""
    counts: dict[tuple[str, str], int] = {}
    for tenant, ents in held.items():
        for ent in ents.values():
            types = sorted({TM.expand(t) for t in _plain(ent)["type"]})
            key = (tenant, "[" + ",".join(f'"{t}"' for t in types) + "]")
            counts[key] = counts.get(key, 0) + 1
    return {(t, k, n) for (t, k), n in counts.items()}


@pytest.mark.parametrize("split", [False, True], ids=["one-count", "halves"])
def test_counts_and_pages_agree_with_a_filter_through_type_changes_and_deletes(
    tmp_path: Path, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each count also as two halves of the type's pk span (backend.SPLIT_SPAN)."""
    monkeypatch.setattr(backend, "SPLIT_SPAN", 1 if split else 10**9)
    store = SqliteStore(tmp_path / "hub.db")
    svc = EntityService(store)
    rnd = random.Random(7)
    held: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TENANTS}
    try:
        for tenant in TENANTS:
            ents = [_entity(i, rnd, tenant) for i in range(150)]
            assert not svc.batch_upsert(tenant, ents[:100], TM, "replace").errors
            for ent in ents[100:]:  # one at a time: SqliteWriteTx.insert
                svc.create(tenant, ent, TM)
            held[tenant] = {e["id"]: e for e in ents}
        assert all(_driven(store, q) for q, _ in Q)
        _agree(store, held)
        assert _sets(store) == _held_sets(held)

        ents = held[""]
        ids = sorted(ents)
        for eid in ids[:40:3]:  # PUT with other types: every index row moves
            new = {**ents[eid], "type": ["Lamp", "Bus"]}
            svc.replace("", eid, {k: v for k, v in new.items() if k != "id"}, TM)
            ents[eid] = new
        for eid in ids[40:80:3]:  # merge adding a type, with and without an attribute
            body: dict[str, Any] = {"type": "Depot"}
            if len(eid) % 2:
                body["battery"] = {"type": "Property", "value": 5}
                ents[eid] = {**ents[eid], "battery": body["battery"]}
            svc.merge("", eid, body, TM)
            ents[eid] = {**ents[eid], "type": [*_plain(ents[eid])["type"], "Depot"]}
        for eid in ids[80:120:4]:  # PATCH of an attribute: rows of the same set
            value = {"type": "Property", "value": 33}
            svc.update("", eid, {"battery": value}, TM)
            ents[eid] = {**ents[eid], "battery": value}
        for eid in ids[120:] + ids[:40:6]:
            svc.delete("", eid)
            del ents[eid]
        # the other tenant's entities of the same types are untouched by all of it
        _agree(store, held)
        assert _sets(store) == _held_sets(held)

        for tenant in TENANTS:  # every entity gone: so are the sets
            for eid in list(held[tenant]):
                svc.delete(tenant, eid)
            held[tenant].clear()
        _agree(store, held)
        assert _sets(store) == set()
        assert store._writer.execute("SELECT count(*) FROM type_set_members").fetchone() == (0,)
    finally:
        store.close()


def test_a_rolled_back_write_leaves_no_set_behind(tmp_path: Path) -> None:
    """A set made in a transaction that rolls back is not cached: the next entity of those
    types gets a stored set, and queries find it."""
    store = SqliteStore(tmp_path / "hub.db")
    svc = EntityService(store)
    rng = random.Random(3)
    ent = {**_entity(1, rng, ""), "type": ["Kiosk"]}
    try:
        with pytest.raises(RuntimeError), store.write("") as tx:
            tx.insert(svc_doc(ent))
            raise RuntimeError("rolled back")
        assert _sets(store) == set()
        svc.create("", ent, TM)
        node = ast.expand_q(parse_q("battery>=0"), TM.expand)
        found = store.query(
            "", EntityQuery(q=node, types=ast.TypeName(TM.expand("Kiosk")), count=True)
        )
        assert found[1] == 1
        assert _sets(store) == _held_sets({"": {ent["id"]: ent}})
    finally:
        store.close()


def test_the_cache_of_sets_is_bounded_however_many_tenants_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every (tenant, types) a write named stayed in the writer's memory for good: a hub that
    many tenants write to grew by one entry each (about 190 bytes) with no bound. Past the
    bound the oldest go; a set read again from the table keeps its tid, and one emptied by a
    delete and made again is found."""
    monkeypatch.setattr(typesets, "CACHED", 50, raising=False)
    store = SqliteStore(tmp_path / "hub.db")
    svc = EntityService(store)
    tenants = [f"district-{i}" for i in range(200)]

    def lamp(i: int, tenant: str, typ: str = "Lamp") -> dict[str, Any]:
        return {"id": f"urn:ngsi-ld:{typ}:{tenant}-{i}", "type": typ}

    def count(tenant: str, typ: str) -> int | None:
        query = EntityQuery(types=ast.TypeName(TM.expand(typ)), count=True)
        return store.query(tenant, query)[1]

    try:
        for tenant in tenants:
            svc.create(tenant, lamp(1, tenant), TM)
        assert len(store.type_sets._ids) <= 50
        for tenant in tenants[:3]:  # their sets left the cache: read again, not made anew
            svc.create(tenant, lamp(2, tenant), TM)
            assert count(tenant, "Lamp") == 2
        rows = store._writer.execute("SELECT tenant, count(*) FROM type_sets GROUP BY tenant")
        assert {n for _, n in rows} == {1}, "one set per tenant, the early ones included"
        for tenant in tenants[:3] + tenants[-3:]:  # emptied, then made again
            for i in (1, 2) if tenant in tenants[:3] else (1,):
                svc.delete(tenant, lamp(i, tenant)["id"])
            assert count(tenant, "Lamp") == 0
            svc.create(tenant, lamp(3, tenant), TM)
            svc.create(tenant, lamp(4, tenant, "Kiosk"), TM)
            assert (count(tenant, "Lamp"), count(tenant, "Kiosk")) == (1, 1), tenant
        sets = store.type_sets
        assert len(sets._ids) <= 50
        assert sorted(m for ms in sets._memos.values() for m in ms) == sorted(sets._ids)
    finally:
        store.close()


def svc_doc(ent: dict[str, Any]) -> dict[str, Any]:
    """An entity as the store holds it (expanded, with its times)."""
    from cityhub.ngsild.entity import expand_entity

    doc = expand_entity(ent, TM)
    doc["createdAt"] = doc["modifiedAt"] = "2024-01-01T00:00:00Z"
    return doc


def test_a_schema_17_database_is_upgraded_with_type_sets(tmp_path: Path) -> None:
    """Schema 17 had no type sets and value indexes by (nid, value): the upgrade gives every
    attr_index row its entity's set, and counts and pages agree with the filter after it."""
    db = tmp_path / "old.db"
    store = SqliteStore(db)
    svc = EntityService(store)
    rnd = random.Random(17)
    held: dict[str, dict[str, dict[str, Any]]] = {}
    for tenant in TENANTS:
        ents = [_entity(i, rnd, tenant) for i in range(90)]
        assert not svc.batch_upsert(tenant, ents, TM, "replace").errors
        held[tenant] = {e["id"]: e for e in ents}
    store.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(
        "BEGIN; DROP TABLE type_sets; DROP TABLE type_set_members;"
        " CREATE TABLE a17 (pk INTEGER NOT NULL, nid INTEGER NOT NULL, seq INTEGER NOT NULL,"
        " num REAL, txt TEXT, ts TEXT, PRIMARY KEY (pk, nid, seq)) WITHOUT ROWID;"
        " INSERT INTO a17 SELECT pk, nid, seq, num, txt, ts FROM attr_index;"
        " DROP TABLE attr_index; ALTER TABLE a17 RENAME TO attr_index;"
        " CREATE INDEX attr_index_ts ON attr_index (nid, ts) WHERE ts IS NOT NULL;"
        " CREATE INDEX attr_index_num ON attr_index (nid, num) WHERE num IS NOT NULL;"
        " CREATE INDEX attr_index_txt ON attr_index (nid, txt) WHERE txt IS NOT NULL;"
        " UPDATE meta SET value = '17' WHERE key = 'schema_version'; COMMIT;"
    )
    rows = conn.execute("SELECT count(*) FROM attr_index").fetchone()
    conn.close()
    store = SqliteStore(db)
    try:
        version = store._writer.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION)  # 18, and the later ones
        assert store._writer.execute("SELECT count(*) FROM attr_index").fetchone() == rows
        unset = "SELECT count(*) FROM attr_index WHERE tid NOT IN (SELECT tid FROM type_sets)"
        assert store._writer.execute(unset).fetchone() == (0,)
        assert _sets(store) == _held_sets(held)
        _agree(store, held)
        svc = EntityService(store)  # and writes after it keep the sets
        first = sorted(held[""])[0]
        svc.merge("", first, {"type": "Depot"}, TM)
        held[""][first] = {**held[""][first], "type": [*_plain(held[""][first])["type"], "Depot"]}
        _agree(store, held)
        assert _sets(store) == _held_sets(held)
    finally:
        store.close()
