"""Attribute names are stored once, as ids: queries, rollbacks and schema-2 databases still work."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.qlang import parse_q
from cityhub.ngsild.query.typeexpr import parse_types
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery, StoreError, TemporalQuery
from cityhub.store.sqlite import SqliteStore
from cityhub.store.sqlite.schema import SCHEMA_VERSION

TM = ContextCache().core


def _ids(store: SqliteStore, q: str | None = None, attrs: tuple[str, ...] = ()) -> list[str]:
    query = EntityQuery(
        types=ast.map_names(parse_types("Sensor"), TM.expand),
        q=ast.map_names(parse_q(q), TM.expand) if q else None,
        attrs=tuple(TM.expand(a) for a in attrs) or None,
        limit=100,
        count=True,
    )
    docs, total = store.query("", query)
    assert total == len(docs)
    return sorted(d["id"] for d in docs)


def _sensor(i: int, **attrs: Any) -> dict[str, Any]:
    body = {"id": f"urn:ngsi-ld:Sensor:{i}", "type": "Sensor"}
    body.update({k: {"type": "Property", "value": v} for k, v in attrs.items()})
    return body


def _group_after_a_failed_humidity(store: SqliteStore, *later: dict[str, Any]) -> None:
    """One group: a write of sensor 1's new `humidity` that fails (its savepoint is rolled
    back), then each later body written on its own."""
    svc = EntityService(store)
    with store.group():
        with pytest.raises(RuntimeError), store.write("") as tx:
            svc._insert(tx, _doc(svc, _sensor(1, humidity=40)))
            raise RuntimeError("this write is rolled back")
        for body in later:
            with store.write("") as tx:
                svc._insert(tx, _doc(svc, body))


def test_a_name_written_in_a_rolled_back_write_is_not_remembered(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    svc = EntityService(store)
    _group_after_a_failed_humidity(store, _sensor(2, pressure=1013))
    assert store.get("", "urn:ngsi-ld:Sensor:1") is None
    assert _ids(store, "humidity>0") == []
    assert _ids(store, "pressure>1000") == ["urn:ngsi-ld:Sensor:2"]
    names = {r[0] for r in store._writer.execute("SELECT name FROM attr_names")}
    assert TM.expand("humidity") not in names
    # The same name written again gets a real id and is found.
    svc.create("", _sensor(3, humidity=55), TM)
    assert _ids(store, "humidity==55") == ["urn:ngsi-ld:Sensor:3"]
    store.close()


def test_a_name_taken_again_after_a_rolled_back_job_gets_its_own_id(tmp_path: Path) -> None:
    """Inside one group: a job that added a name fails (its savepoint rolls back, and SQLite
    may give the freed id to the next new name); a later job writing that name again must
    not reuse the id the writer remembered for it."""
    store = SqliteStore(tmp_path / "hub.db")
    _group_after_a_failed_humidity(store, _sensor(2, pressure=1013), _sensor(3, humidity=55))
    assert _ids(store, "humidity==55") == ["urn:ngsi-ld:Sensor:3"]
    assert _ids(store, "pressure>1000") == ["urn:ngsi-ld:Sensor:2"]
    store.close()


def test_a_whole_rolled_back_group_leaves_no_names(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    svc = EntityService(store)
    with pytest.raises(RuntimeError), store.group():
        svc.create("", _sensor(1, noise=70), TM)
        raise RuntimeError("the COMMIT never happens")
    svc.create("", _sensor(2, level=3), TM)
    assert _ids(store, "noise>0") == []
    assert _ids(store, "level==3") == ["urn:ngsi-ld:Sensor:2"]
    store.close()


def test_an_unknown_attribute_matches_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    EntityService(store).create("", _sensor(1, temperature=20), TM)
    assert _ids(store, "nothere==1") == []
    assert _ids(store, "nothere") == []
    assert _ids(store, attrs=("nothere",)) == []
    assert _ids(store, attrs=("nothere", "temperature")) == ["urn:ngsi-ld:Sensor:1"]
    store.close()


def test_a_schema_2_database_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = SqliteStore(db)
    svc = EntityService(store)
    items = [_sensor(i, temperature=i, status="ok" if i % 2 else "warn") for i in range(20)]
    assert not svc.batch_upsert("", items, TM, "replace").errors
    store.close()
    _downgrade_to_schema_2(db)

    again = SqliteStore(db)
    assert again._writer.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[
        0
    ] == str(SCHEMA_VERSION)
    odd = [f"urn:ngsi-ld:Sensor:{i}" for i in range(11, 20, 2)]
    assert _ids(again, 'temperature>10;status=="ok"') == sorted(odd)
    assert [t for t, _, _ in again.entity_types("")] == [TM.expand("Sensor")]
    assert set(again.entity_types("")[0][1]) == {TM.expand("temperature"), TM.expand("status")}
    # the history came along, under the same names
    (header, attrs), *_ = again.temporal(
        "", TemporalQuery(entities=EntityQuery(ids=("urn:ngsi-ld:Sensor:7",)))
    )[0]
    assert header["id"] == "urn:ngsi-ld:Sensor:7"
    assert sorted(attrs) == sorted([TM.expand("temperature"), TM.expand("status")])
    assert [i["value"] for i in attrs[TM.expand("temperature")]] == [7]
    # and it takes new writes
    EntityService(again).create("", _sensor(99, temperature=99), TM)
    assert _ids(again, "temperature>90") == ["urn:ngsi-ld:Sensor:99"]
    again.close()


def test_a_failed_upgrade_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "odd.db"
    SqliteStore(db).close()
    _downgrade_to_schema_2(db)
    conn = sqlite3.connect(db)
    conn.execute("ALTER TABLE history RENAME COLUMN attr TO attribute")  # not what 2 -> 3 expects
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"cannot upgrade .* from schema 2 to 3"):
        SqliteStore(db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(attr_index)")}
    assert "name" in columns and "nid" not in columns
    conn.close()


def _doc(svc: EntityService, body: dict[str, Any]) -> dict[str, Any]:
    from cityhub.ngsild.entity import expand_entity
    from cityhub.ngsild.timeutil import now_iso

    doc = expand_entity(body, TM)
    doc["createdAt"] = doc["modifiedAt"] = now_iso()
    svc._stamp_all(doc["attrs"], doc["createdAt"])
    return doc


def _downgrade_to_schema_2(db: Path) -> None:
    """Rewrite attr_index and history the way schema 2 stored them: the name in every row."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(
        """
        BEGIN;
        CREATE TABLE old (
            pk INTEGER NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
            num REAL, txt TEXT, ts TEXT, PRIMARY KEY (pk, name, seq)
        ) WITHOUT ROWID;
        INSERT INTO old SELECT a.pk, n.name, a.seq, a.num, a.txt, a.ts
            FROM attr_index a JOIN attr_names n ON n.nid = a.nid;
        CREATE TABLE old_history (
            hid INTEGER PRIMARY KEY, tpk INTEGER NOT NULL, attr TEXT NOT NULL, dataset_id TEXT,
            instance_id TEXT NOT NULL, t_observed REAL, t_created REAL NOT NULL,
            t_modified REAL NOT NULL, num REAL, inst TEXT NOT NULL
        );
        INSERT INTO old_history SELECT h.hid, h.tpk, n.name, h.dataset_id, h.instance_id,
            h.t_observed, h.t_created, h.t_modified, h.num, h.inst
            FROM history h JOIN attr_names n ON n.nid = h.nid;
        DROP TABLE attr_index;
        DROP TABLE history;
        DROP TABLE attr_names;
        DROP TABLE type_attrs;
        ALTER TABLE old RENAME TO attr_index;
        ALTER TABLE old_history RENAME TO history;
        CREATE INDEX attr_index_num ON attr_index (name, num) WHERE num IS NOT NULL;
        CREATE INDEX history_obs ON history (tpk, attr, t_observed, num);
        UPDATE meta SET value = '2' WHERE key = 'schema_version';
        COMMIT;
        """
    )
    conn.close()


def _name_reads(store: SqliteStore) -> list[str]:
    """The statements that read attr_names on this thread's reader connection, from now on."""
    seen: list[str] = []
    store._reader().set_trace_callback(seen.append)
    return seen


def test_a_name_read_inside_a_read_transaction_is_remembered(tmp_path: Path) -> None:
    """A count=true query (and a temporal read) runs in one read transaction; the ids its
    reader connection reads there are committed, so a second read no longer selects them."""
    writer = SqliteStore(tmp_path / "hub.db")
    EntityService(writer).create("", _sensor(1, humidity=40), TM)
    store = SqliteStore(tmp_path / "hub.db")  # its own name cache, empty: as after a restart
    seen = _name_reads(store)
    assert _ids(store, "humidity>0") == ["urn:ngsi-ld:Sensor:1"]
    assert any("FROM attr_names WHERE name" in s for s in seen)
    seen.clear()
    assert _ids(store, "humidity>0") == ["urn:ngsi-ld:Sensor:1"]
    assert [s for s in seen if "attr_names" in s] == []
    store.close()
    writer.close()


def test_a_name_the_writer_looks_up_in_a_write_rolled_back_is_not_remembered(
    tmp_path: Path,
) -> None:
    """The writer's lookup inside its transaction may read its own uncommitted id: after the
    rollback SQLite hands that id to the next new name, which the query must not match."""
    store = SqliteStore(tmp_path / "hub.db")
    svc = EntityService(store)
    humid = EntityQuery(q=ast.map_names(parse_q("humidity>0"), TM.expand), limit=10)
    with pytest.raises(RuntimeError), store.write("") as tx:
        svc._insert(tx, _doc(svc, _sensor(1, humidity=40)))
        assert tx.matching(humid) == {"urn:ngsi-ld:Sensor:1"}  # a lookup on the writer
        raise RuntimeError("this write is rolled back")
    svc.create("", _sensor(2, pressure=1013), TM)
    assert _ids(store, "humidity>0") == []
    assert _ids(store, "pressure>1000") == ["urn:ngsi-ld:Sensor:2"]
    store.close()
