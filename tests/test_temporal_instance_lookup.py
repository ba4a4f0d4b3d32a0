"""A PATCH or DELETE of one temporal instance finds its row without reading the attribute's
history (decision 060): the instanceId names the row's time on history_obs, and the rows it
no longer names (moved by a PATCH, or written before schema 16) are in history_moved. It read
every instance of the attribute, under the write lock (0.3-0.5 s at 300,000)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.errors import ResourceNotFound
from cityhub.ngsild.temporal import TemporalService
from cityhub.store.sqlite import SqliteStore, instance_rows
from cityhub.store.sqlite.schema import SCHEMA_VERSION

EID = "urn:ngsi-ld:Meter:big"
TM = ContextCache().core


def _minute(i: int) -> str:
    return f"2024-01-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00Z"


def _load(svc: TemporalService, first: int, n: int) -> None:
    insts = [{"type": "Property", "value": i, "observedAt": _minute(i)} for i in range(first, n)]
    svc.create("", {"id": EID, "type": "Meter", "p": insts}, TM)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "hub.db")
    yield s
    s.close()


def _ids(svc: TemporalService, **params: str) -> list[str]:
    body = svc.query("", {"lastN": "5", **params}, TM, one_entity=EID).entities[0]
    return [i["instanceId"] for i in body["p"]]


def _steps(store: SqliteStore, iid: str) -> int:
    """SQLite VM steps (instructions) of finding one instance's rows: no clock involved."""
    conn = store._writer
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    tpk = conn.execute("SELECT tpk FROM tentities WHERE id = ?", (EID,)).fetchone()[0]
    nid = store.names.lookup(conn, TM.expand("p"))
    conn.set_progress_handler(count, 1)
    try:
        rows = instance_rows.locate(conn, tpk, nid, iid)
    finally:
        conn.set_progress_handler(None, 0)
    assert len(rows) == 1, rows
    return steps


def test_finding_an_instance_does_not_grow_with_the_history(store: SqliteStore) -> None:
    svc = TemporalService(store)
    _load(svc, 0, 100)
    small = _steps(store, _ids(svc)[0])
    _load(svc, 100, 5000)
    big = _steps(store, _ids(svc)[0])
    assert big <= small + 10, (small, big)  # the scan took thousands of steps more


def test_the_plan_is_one_seek(store: SqliteStore) -> None:
    """Each of locate's statements reads one index by equality, never a range of the
    attribute; both statements say which index (INDEXED BY), so a missing one fails loudly."""
    svc = TemporalService(store)
    _load(svc, 0, 10)
    conn = store._writer
    plans = [
        " ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
        for sql, args in (
            (
                "SELECT hid, inst FROM history INDEXED BY history_obs "
                "WHERE tpk = ? AND nid = ? AND t_observed = ? AND instance_id = ?",
                (1, 1, 0.0, "x"),
            ),
            (
                "SELECT hid, inst FROM history INDEXED BY history_moved "
                "WHERE instance_id = ? AND id_time IS NOT t_observed AND tpk = ? AND nid = ?",
                ("x", 1, 1),
            ),
        )
    ]
    assert plans == [
        "SEARCH history USING INDEX history_obs (tpk=? AND nid=? AND t_observed=?)",
        "SEARCH history USING INDEX history_moved (instance_id=?)",
    ]


def test_an_instance_moved_in_time_is_still_found(store: SqliteStore) -> None:
    """Its id names the time it was written at; the PATCH that moves it puts its row in
    history_moved, and only such rows are there."""
    svc = TemporalService(store)
    _load(svc, 0, 50)
    moved, kept = _ids(svc)[:2]
    conn = store._writer
    in_moved = "SELECT count(*) FROM history WHERE id_time IS NOT t_observed"
    assert conn.execute(in_moved).fetchone()[0] == 0, "a fresh write indexes nothing there"
    svc.modify_instance("", EID, "p", moved, {"observedAt": "2023-06-01T00:00:00Z"}, TM)
    assert conn.execute(in_moved).fetchone()[0] == 1
    svc.modify_instance("", EID, "p", moved, {"value": -1}, TM)
    svc.modify_instance("", EID, "p", kept, {"value": -2}, TM)
    first = svc.query(
        "",
        {"lastN": "1", "timerel": "before", "timeAt": "2024-01-01T00:00:00Z"},
        TM,
        one_entity=EID,
    )
    assert [(i["instanceId"], i["value"]) for i in first.entities[0]["p"]] == [(moved, -1)]
    assert _steps(store, moved) < 100
    svc.delete_instance("", EID, "p", moved, TM)
    assert conn.execute(in_moved).fetchone()[0] == 0
    with pytest.raises(ResourceNotFound):
        svc.delete_instance("", EID, "p", moved, TM)
    assert -2 in [i["value"] for i in svc.query("", {}, TM, one_entity=EID).entities[0]["p"]]


def test_an_id_from_before_schema_16_is_found_after_the_upgrade(tmp_path: Path) -> None:
    """A schema 15 history (no id_time, ids naming no time) upgrades in place: its rows go
    into history_moved, and a PATCH or DELETE of one finds it there."""
    db = tmp_path / "old.db"
    store = SqliteStore(db)
    _load(TemporalService(store), 0, 300)
    store.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(
        "BEGIN; DROP INDEX history_moved; DROP INDEX history_obs;"
        " CREATE TABLE h15 AS SELECT hid, tpk, nid, dataset_id,"
        " 'urn:ngsi-ld:attribute:instance:0123456789ab-' || printf('%x', hid) || '-1' AS instance_id,"
        " t_observed, t_created, t_modified, num, inst FROM history;"
        " DROP TABLE history; ALTER TABLE h15 RENAME TO history;"
        " CREATE INDEX history_obs ON history (tpk, nid, t_observed, num);"
        " UPDATE meta SET value = '15' WHERE key = 'schema_version'; COMMIT;"
    )
    old = conn.execute("SELECT instance_id FROM history ORDER BY hid DESC LIMIT 2").fetchall()
    conn.close()
    store = SqliteStore(db)
    try:
        svc = TemporalService(store)
        assert _ids(svc, lastN="2") == [old[1][0], old[0][0]]
        svc.modify_instance("", EID, "p", old[0][0], {"value": -1}, TM)
        svc.delete_instance("", EID, "p", old[1][0], TM)
        values = [
            i["value"] for i in svc.query("", {"lastN": "2"}, TM, one_entity=EID).entities[0]["p"]
        ]
        assert values == [297, -1]
        assert _steps(store, old[0][0]) < 100
        version = store._writer.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION)  # and on through later ones
    finally:
        store.close()
