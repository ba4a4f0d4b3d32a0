"""bulk.insert_rows stores what one INSERT per row stores: the same rows, values and types,
in the same order (row ids), an ON CONFLICT clause applied to every row."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from cityhub.store.sqlite import bulk
from cityhub.store.sqlite.binding import bind_none_cheaply

TABLE = "CREATE TABLE t (rid INTEGER PRIMARY KEY, k TEXT UNIQUE, n REAL, x, hits INTEGER)"
UPSERT = " ON CONFLICT (k) DO UPDATE SET hits = hits + 1, n = excluded.n"


def _rows(count: int, keys: int | None = None) -> list[tuple[Any, ...]]:
    """Rows of every kind of value; `keys` repeats the keys (for the upsert)."""
    values: list[Any] = [None, 1, 2.5, "text", b"\x00blob", 2**62]
    return [(f"k{i % (keys or count)}", i / 3, values[i % len(values)], 0) for i in range(count)]


def _stored(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT rid, k, n, x, typeof(x), hits FROM t ORDER BY rid").fetchall()


def _both(rows: list[tuple[Any, ...]], tail: str = "") -> tuple[Any, Any]:
    bind_none_cheaply()
    one, many = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    for conn in (one, many):
        conn.execute(TABLE)
    head = "INSERT INTO t (k, n, x, hits)"
    for row in rows:
        one.execute(f"{head} VALUES (?, ?, ?, ?){tail}", row)
    bulk.insert_rows(many, head, rows, tail)
    return _stored(one), _stored(many)


@pytest.mark.parametrize("count", [0, 1, 2, 7, 31, 32, 33, 63, 64, 65, 100, 225])
def test_rows_are_stored_as_one_insert_each_stores_them(count: int) -> None:
    one, many = _both(_rows(count))
    assert many == one
    assert len(many) == count


@pytest.mark.parametrize("count", [9, 40, 97])
def test_a_conflict_clause_applies_to_each_row_in_order(count: int) -> None:
    one, many = _both(_rows(count, keys=7), UPSERT)
    assert many == one
    assert sum(r[-1] for r in many) == count - 7


def test_each_chunk_size_is_one_statement_text() -> None:
    """At most four texts per table in the connection's statement cache, however many rows."""
    bulk._sql.cache_clear()
    for count in range(1, 200):
        _both(_rows(count))
    assert bulk._sql.cache_info().currsize == 4
