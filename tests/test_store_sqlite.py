"""SQLite store housekeeping: the WAL is folded back by the checkpointer, data survives."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

import pydantic
import pytest

from cityhub.api.app import create_app
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.settings import Settings
from cityhub.store.base import StoreError
from cityhub.store.sqlite import SqliteStore


def _write(store: SqliteStore, n: int) -> None:
    tm = ContextCache().core
    items = [{"id": f"urn:ngsi-ld:T:{i}", "type": "T", "v": i} for i in range(n)]
    assert not EntityService(store).batch_upsert("", items, tm, "replace").errors


def test_checkpointer_copies_the_wal_into_the_database(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    size_before = db.stat().st_size
    _write(store, 500)
    deadline = time.monotonic() + 5
    while db.stat().st_size == size_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert db.stat().st_size > size_before, "the background checkpoint reached the main file"
    store.close()


def test_close_truncates_the_wal_and_data_survives_reopening(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    _write(store, 200)
    store.close()
    wal = Path(str(db) + "-wal")
    assert not wal.exists() or os.path.getsize(wal) == 0
    again = SqliteStore(db)
    assert again.get("", "urn:ngsi-ld:T:199") is not None
    again.close()


def test_history_keeps_each_instance_id_once_and_gives_it_back(tmp_path: Path) -> None:
    from cityhub.store.base import EntityQuery, TemporalQuery

    store = SqliteStore(tmp_path / "hub.db")
    _write(store, 3)
    stored = store._writer.execute("SELECT instance_id, inst FROM history").fetchall()
    assert len(stored) == 3
    assert all(iid.startswith("urn:") and "instanceId" not in inst for iid, inst in stored)
    (_, attrs), *_ = store.temporal(
        "", TemporalQuery(entities=EntityQuery(ids=("urn:ngsi-ld:T:1",)))
    )[0]
    (inst,) = next(iter(attrs.values()))
    assert inst["instanceId"] in {iid for iid, _ in stored}
    store.close()


def _synchronous(store: SqliteStore) -> int:
    return int(store._writer.execute("PRAGMA synchronous").fetchone()[0])


def test_sync_full_makes_every_commit_reach_the_disk(tmp_path: Path) -> None:
    normal = SqliteStore(tmp_path / "a.db")
    full = SqliteStore(tmp_path / "b.db", sync="full")
    assert (_synchronous(normal), _synchronous(full)) == (1, 2)  # NORMAL, FULL
    _write(full, 10)  # still an ordinary store
    assert full.get("", "urn:ngsi-ld:T:9") is not None
    normal.close()
    full.close()
    # the setting reaches the hub's store
    app = create_app(Settings(db=str(tmp_path / "c.db"), sync="full"))
    assert _synchronous(app.state.store) == 2
    app.state.store.close()


def test_an_unknown_sync_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="sync must be one of normal, full"):
        SqliteStore(tmp_path / "x.db", sync="off")
    assert not (tmp_path / "x.db").exists(), "refused before creating anything"
    with pytest.raises(pydantic.ValidationError):
        Settings(sync="off")


def test_a_tenant_stays_known_once_its_content_is_deleted(tmp_path: Path) -> None:
    """NGSI-LD 4.14: a tenant is created by its first write; deleting everything it holds
    does not make it nonexistent again (reads go on answering 200 with nothing)."""
    from cityhub.ngsild.temporal import TemporalService

    store = SqliteStore(tmp_path / "hub.db")
    assert store.tenants() == [] and not store.has_tenant("a")
    tm = ContextCache().core
    service = EntityService(store)
    for tenant in ("", "b", "a", "b"):
        items = [{"id": f"urn:ngsi-ld:T:{tenant}{i}", "type": "T", "v": i} for i in range(50)]
        assert not service.batch_upsert(tenant, items, tm, "replace").errors
    TemporalService(store, 100).create(
        "history-only", {"id": "urn:ngsi-ld:T:h", "type": "T", "v": [{"value": 1}]}, tm
    )
    with store.write("a") as tx:
        for i in range(50):
            assert tx.delete(f"urn:ngsi-ld:T:a{i}")
    with store.write("history-only") as tx:
        assert tx.delete_history("urn:ngsi-ld:T:h")
    assert store.tenants() == ["", "a", "b", "history-only"]
    assert store.has_tenant("a") and store.has_tenant("history-only")
    with contextlib.suppress(RuntimeError), store.write("rolled-back") as tx:
        tx.insert(
            {"id": "urn:x:1", "type": ["T"], "attrs": {}, "createdAt": "t", "modifiedAt": "t"}
        )
        raise RuntimeError("the block fails: its tenant is not created")
    assert not store.has_tenant("rolled-back")
    store.close()
    assert SqliteStore(tmp_path / "hub.db").tenants() == ["", "a", "b", "history-only"]


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    """serve and import added cityhub's tables to any SQLite file they were pointed at."""
    db = tmp_path / "foreign.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE x (a)")
    with pytest.raises(StoreError, match="not a cityhub one"):
        SqliteStore(db)
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["x"]
    assert not Path(f"{db}-wal").exists(), "nothing was written, not even a WAL"


@pytest.mark.parametrize("split", [False, True])
def test_a_count_and_its_page_see_one_state_of_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    """A write that commits while a count=true query runs is in neither or both."""
    from cityhub.store.base import EntityQuery
    from cityhub.store.sqlite import backend

    store = SqliteStore(tmp_path / "hub.db")
    _write(store, 30)
    monkeypatch.setattr(backend, "SPLIT_SPAN", 1 if split else 10**9)
    racing = [f"urn:ngsi-ld:T:{n}" for n in range(30, 33)]

    def write_one() -> None:
        if racing:
            eid = racing.pop(0)
            EntityService(store).batch_upsert("", [{"id": eid, "type": "T"}], tm, "replace")

    tm = ContextCache().core
    if split:  # the other half counts after a write committed
        part = backend.SqliteStore._count_part

        def late_part(self: SqliteStore, *args: object) -> int:
            write_one()
            return part(self, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(backend.SqliteStore, "_count_part", late_part)
    else:  # a write commits between the count and the page
        count = backend.SqliteStore._count

        def early_count(self: SqliteStore, *args: object) -> int:
            total = count(self, *args)  # type: ignore[arg-type]
            write_one()
            return total

        monkeypatch.setattr(backend.SqliteStore, "_count", early_count)
    for _ in range(2):
        docs, total = store.query("", EntityQuery(limit=1000, count=True))
        assert total == len(docs), (total, len(docs))
    assert len(store.query("", EntityQuery(limit=1000))[0]) == 32
    store.close()


def test_a_split_count_sees_one_state_when_another_process_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A split count's halves are counted on two connections: a commit between the two
    snapshots by a writer the hub's own commit counter does not see (`cityhub import --db`
    beside the hub) made the total agree with no state the database was ever in."""
    from cityhub.store.base import EntityQuery
    from cityhub.store.sqlite import backend

    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    _write(store, 30)
    monkeypatch.setattr(backend, "SPLIT_SPAN", 1)
    beside = SqliteStore(db)  # another process's store on the same file
    racing = [f"urn:ngsi-ld:T:{n}" for n in (29, 28, 27)]  # in the other half's span
    part = backend.SqliteStore._count_part

    def late_part(self: SqliteStore, *args: object) -> int:
        if racing:
            assert EntityService(beside).batch_delete("", [racing.pop(0)]).success
        return part(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(backend.SqliteStore, "_count_part", late_part)
    for _ in range(3):
        docs, total = store.query("", EntityQuery(limit=1000, count=True))
        assert total == len(docs), (total, len(docs))
    assert len(store.query("", EntityQuery(limit=1000))[0]) == 27
    beside.close()
    store.close()


def test_none_is_bound_as_null(tmp_path: Path) -> None:
    """None reaches SQLite as NULL through the adapter binding.py registers (a value in its
    place would turn every absent datasetId and empty index column into data)."""
    store = SqliteStore(tmp_path / "hub.db")
    try:
        row = store._writer.execute("SELECT typeof(?), ? IS NULL", (None, None)).fetchone()
        assert row == ("null", 1)
        _write(store, 1)
        kinds = store._writer.execute("SELECT DISTINCT typeof(dataset_id) FROM history")
        assert kinds.fetchall() == [("null",)]
    finally:
        store.close()
