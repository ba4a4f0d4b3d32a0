"""A batch writes its history and its updates' index rows in one round at its end (decision
087): what it stores, the temporal entities' types and scopes, the series of datasetIds and
the index rows included, is what its items written one at a time store, in fewer
statements."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
from bench.iot_path import without_write_times

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore

E1, E2, E3 = "urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2", "urn:ngsi-ld:T:3"


def _t(value: float, at: str, **more: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at, **more}


# one entity written again and again in one batch: types added, a scope set, changed and
# kept, a datasetId after default instances (the default series is then recorded), a late
# reading (history only, decision 080), and an entity the batch creates and then updates
ITEMS: list[dict[str, Any]] = [
    {"id": E1, "type": "T", "temperature": _t(1, "2024-01-01T10:00:00Z")},
    {"id": E1, "type": "U", "scope": "/a", "temperature": _t(2, "2024-01-01T11:00:00Z")},
    {"id": E1, "type": "T", "temperature": _t(3, "2024-01-01T12:00:00Z", datasetId="urn:d:1")},
    {"id": E1, "type": "T", "scope": "/b", "temperature": _t(0, "2024-01-01T09:00:00Z")},
    {"id": E2, "type": "T", "humidity": _t(5, "2024-01-01T10:00:00Z", datasetId="urn:d:2")},
    {"id": E2, "type": "T", "humidity": _t(6, "2024-01-01T10:30:00Z")},
    {"id": E3, "type": "T", "temperature": _t(7, "2024-01-01T10:00:00Z")},
    {"id": E3, "type": "T", "temperature": _t(8, "2024-01-01T10:05:00Z")},
    {"id": E3, "type": "T", "scope": "/c", "temperature": _t(9, "2024-01-01T10:06:00Z")},
    {"id": "not a uri", "type": "T"},
]
STORED = [  # E1 and E2 exist before the batch, E3 does not
    {"id": E1, "type": "T", "temperature": _t(0.5, "2024-01-01T09:30:00Z")},
    {"id": E2, "type": "T", "scope": "/z", "humidity": _t(4, "2024-01-01T09:00:00Z")},
]


def _contents(db: Path) -> dict[str, Any]:
    """Entities, each one's history rows in order (a batch inserts its new entities first,
    decision 078), temporal entities and series, index rows and counts, less write times."""
    with sqlite3.connect(db) as conn:
        return {
            "entities": [
                (eid, without_write_times(orjson.loads(doc)))
                for eid, doc in conn.execute("SELECT id, doc FROM entities ORDER BY pk")
            ],
            "history": [
                (eid, nid, ds, t, num, without_write_times(orjson.loads(inst)))
                for eid, nid, ds, t, num, inst in conn.execute(
                    "SELECT e.id, h.nid, h.dataset_id, h.t_observed, h.num, h.inst "
                    "FROM history h JOIN tentities e USING (tpk) ORDER BY e.id, h.hid"
                )
            ],
            "tentities": conn.execute(
                "SELECT id, types, scope, created_at <= modified_at FROM tentities ORDER BY id"
            ).fetchall(),
            "index": conn.execute(
                "SELECT e.id, a.nid, a.tid, a.seq, a.num, a.txt, a.ts FROM attr_index a "
                "JOIN entities e USING (pk) ORDER BY 1, 2, 4"
            ).fetchall(),
            "counts": conn.execute("SELECT * FROM type_attrs ORDER BY 1, 2, 3, 4").fetchall(),
            "series": conn.execute(
                "SELECT e.id, d.nid, d.dataset_id FROM history_datasets d "
                "JOIN tentities e USING (tpk) ORDER BY 1, 2, 3"
            ).fetchall(),
        }


def _write(db: Path, batches: list[list[dict[str, Any]]]) -> list[Any]:
    """Store STORED, then each batch as a device batch is written; the outcomes."""
    store = SqliteStore(str(db))
    try:
        svc = EntityService(store)
        tm = ContextCache().core
        svc.batch_upsert("", STORED, tm, mode="update")
        return [
            (out.success, out.created, [e for e, _ in out.errors])
            for out in (
                svc.batch_upsert("", items, tm, mode="update", late=True) for items in batches
            )
        ]
    finally:
        store.close()


def test_a_batch_stores_what_its_items_store_one_at_a_time(tmp_path: Path) -> None:
    together = _write(tmp_path / "batch.db", [ITEMS])
    apart = _write(tmp_path / "apart.db", [[item] for item in ITEMS])
    assert together[0][0] == [s for out in apart for s in out[0]]
    assert together[0][2] == ["not a uri"]
    got, want = _contents(tmp_path / "batch.db"), _contents(tmp_path / "apart.db")
    assert got == want
    # what the comparison rests on: the late reading is in the history alone, the scope is
    # the last one written, the types are every one sent, a default series is recorded
    e1 = next(doc for eid, doc in got["entities"] if eid == E1)
    (temp,) = [v for k, v in e1["attrs"].items() if k.endswith("temperature")]
    assert [i["value"] for i in temp] == [2, 3]
    assert (
        E1,
        '["https://uri.etsi.org/ngsi-ld/default-context/T",'
        '"https://uri.etsi.org/ngsi-ld/default-context/U"]',
        '["/b"]',
        1,
    ) in got["tentities"]
    t_only = '["https://uri.etsi.org/ngsi-ld/default-context/T"]'
    assert (E2, t_only, '["/z"]', 1) in got["tentities"]
    assert {(eid, ds) for eid, _, ds in got["series"]} >= {(E1, "@none"), (E2, "@none")}
    assert len(got["history"]) == 2 + 9


def test_a_device_batch_records_its_history_in_a_few_statements(tmp_path: Path) -> None:
    """Each update of a batch ran its own statements on the history: the temporal entity's
    upsert, a look for datasetIds and the row (three of the seven statements of a device
    message), inserted its index row alone, and read the entity it had just found to
    exist."""
    store = SqliteStore(str(tmp_path / "hub.db"))
    try:
        svc = EntityService(store)
        tm = ContextCache().core
        ids = [f"urn:ngsi-ld:T:{i}" for i in range(25)]
        svc.batch_upsert("", [{"id": i, "type": "T"} for i in ids], tm, mode="update")
        seen: list[str] = []
        store._writer.set_trace_callback(seen.append)
        items = [
            {"id": i, "type": "T", "t": _t(n, "2024-01-01T10:00:00Z")} for n, i in enumerate(ids)
        ]
        assert svc.batch_upsert("", items, tm, mode="update", late=True).success == ids
        store._writer.set_trace_callback(None)
        about = [s for s in seen if "history" in s or "tentities" in s]
        # 75 before, 3 a message; now multi-row INSERTs of 16, 4, 4 and 1 rows for tentities
        # and history, the temporal entities' row ids and one look for datasetIds
        assert len(about) <= 10, about
        assert len([s for s in seen if s.startswith("INSERT INTO history ")]) == 4
        assert not [s for s in seen if s.startswith("SELECT pk, doc FROM entities")], seen
        # the index rows: a multi-row INSERT of 16, 4, 4 and 1, not one INSERT each
        assert len([s for s in seen if s.startswith("INSERT INTO attr_index")]) == 4
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "hub.db") as conn:
        assert conn.execute("SELECT count(*) FROM history").fetchone() == (25,)


def test_a_history_read_in_the_block_sees_what_it_holds(tmp_path: Path) -> None:
    """Entries held for the block's end are written before any other use of the history."""
    store = SqliteStore(str(tmp_path / "hub.db"))
    try:
        with store.write("") as tx, tx.history_in_one_round():
            inst = {"type": "Property", "value": 1, "createdAt": "2024-01-01T00:00:00.000000Z"}
            inst["modifiedAt"] = inst["createdAt"]
            tx.add_history_many(E1, ["T"], {"v": [inst]}, None)
            assert tx.temporal_exists(E1)
            assert tx.history_kind(E1, "v") == "Property"
            tx.add_history_many(E1, ["T"], {"v": [dict(inst, value=2)]}, None)
        with store.write("") as tx:
            assert tx.temporal_exists(E1)
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "hub.db") as conn:
        rows = conn.execute("SELECT num FROM history ORDER BY hid").fetchall()
    assert rows == [(1.0,), (2.0,)]
