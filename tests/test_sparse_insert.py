"""Index and history rows are inserted without binding NULLs (store/sqlite/bulk.py's
insert_sparse, history rows without a dataset_id column when none has one; decision 068):
the same rows are stored, and Python's sqlite3 adapts no None on the way."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore
from cityhub.store.sqlite.binding import bind_none_cheaply
from cityhub.store.sqlite.bulk import insert_rows, insert_sparse


@pytest.fixture
def nones() -> Iterator[list[None]]:
    """Every None Python's sqlite3 binds while the test runs (one entry each)."""
    seen: list[None] = []

    def count(value: None) -> None:
        seen.append(value)
        return value

    sqlite3.register_adapter(type(None), count)
    try:
        yield seen
    finally:
        bind_none_cheaply()


TABLE = "CREATE TABLE t (a INTEGER, b INTEGER, c REAL, d TEXT, e TEXT, PRIMARY KEY (a, b))"
ROWS: list[tuple[Any, ...]] = [
    (1, 1, 2.5, None, None),
    (1, 2, None, "x", "k"),
    (2, 1, None, "y", None),
    (2, 2, None, None, None),
    (3, 1, 7.0, None, None),
    (3, 2, 1.0, "both", "k2"),
    *[(4, i, float(i), None, None) for i in range(70)],  # a chunk of 64 and more
]


def _stored(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM t ORDER BY a, b").fetchall()


def test_sparse_rows_are_the_rows_insert_rows_stores(nones: list[None]) -> None:
    plain, sparse = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    for conn in (plain, sparse):
        conn.execute(TABLE)
    insert_rows(plain, "INSERT INTO t (a, b, c, d, e)", ROWS)
    bound = len(nones)
    insert_sparse(sparse, "t", ("a", "b", "c", "d", "e"), ROWS, (2, 3, 4))
    assert bound == sum(r.count(None) for r in ROWS)
    assert len(nones) == bound, "insert_sparse bound a None"
    assert _stored(sparse) == _stored(plain) == sorted(ROWS, key=lambda r: (r[0], r[1]))


def test_nothing_to_insert() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(TABLE)
    insert_sparse(conn, "t", ("a", "b", "c", "d", "e"), [], (2, 3, 4))
    assert _stored(conn) == []


def _entity(n: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Meter:{n}", "type": "Meter", **attrs}


@pytest.mark.parametrize("bulk", [True, False])
def test_a_create_of_numbers_binds_no_null(tmp_path: Path, nones: list[None], bulk: bool) -> None:
    """Index rows leave txt and ts NULL and the history rows dataset_id: none is bound."""
    store = SqliteStore(str(tmp_path / "hub.db"))
    svc, tm = EntityService(store), ContextCache().core
    from cityhub.ngsild.entity import expand_entity

    bodies = [
        _entity(
            n, level={"type": "Property", "value": n + 0.5}, count={"value": n, "type": "Property"}
        )
        for n in range(3)
    ]
    docs = [expand_entity(b, tm) for b in bodies]
    if bulk:
        assert [ok for ok, _ in svc.create_many("", docs)] == [True] * 3
    else:
        for doc in docs:
            svc.create_expanded("", doc)
    assert nones == []
    rows = store._writer.execute(
        "SELECT pk, seq, num, txt, ts FROM attr_index ORDER BY pk, nid, seq"
    ).fetchall()
    assert rows == [(pk, 0, v, None, None) for pk in (1, 2, 3) for v in (pk - 0.5, pk - 1)]
    history = store._writer.execute("SELECT dataset_id, num FROM history ORDER BY hid").fetchall()
    assert history == [(None, v) for n in range(3) for v in (n + 0.5, float(n))]
    store.close()


def test_history_rows_keep_their_datasetids(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "hub.db"))
    svc, tm = EntityService(store), ContextCache().core
    from cityhub.ngsild.entity import expand_entity

    body = _entity(
        1,
        level=[
            {"type": "Property", "value": 1},
            {"type": "Property", "value": 2, "datasetId": "urn:ds:b"},
        ],
    )
    svc.create_many("", [expand_entity(body, tm)])
    history = store._writer.execute("SELECT dataset_id, num FROM history ORDER BY hid").fetchall()
    assert history == [(None, 1.0), ("urn:ds:b", 2.0)]
    store.close()
