"""History rows of instances without a datasetId are inserted without binding their NULL
dataset_id (store/sqlite/temporal.py::_write_history, decision 068): the same rows are
stored, datasetIds and their series where they are given, and Python's sqlite3 adapts no
None for them on the way."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.entity import expand_entity
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore
from cityhub.store.sqlite.binding import bind_none_cheaply


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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "hub.db"))
    yield s
    s.close()


def _entity(n: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Meter:{n}", "type": "Meter", **attrs}


def _rows(store: SqliteStore, sql: str) -> list[tuple[Any, ...]]:
    return store._writer.execute(sql).fetchall()


@pytest.mark.parametrize("bulk", [True, False])
def test_history_rows_bind_no_null_dataset_id(
    store: SqliteStore, nones: list[None], bulk: bool
) -> None:
    """Numbers only: each index row binds its NULL txt and ts (2 x 2 per entity), and the
    history rows nothing (their dataset_id cost one NULL each before)."""
    svc, tm = EntityService(store), ContextCache().core
    bodies = [
        _entity(
            n,
            level={"type": "Property", "value": n + 0.5},
            count={"type": "Property", "value": n},
        )
        for n in range(3)
    ]
    docs = [expand_entity(b, tm) for b in bodies]
    if bulk:
        assert [ok for ok, _ in svc.create_many("", docs)] == [True] * 3
    else:
        for doc in docs:
            svc.create_expanded("", doc)
    assert len(nones) == 3 * 2 * 2
    history = _rows(store, "SELECT dataset_id, num FROM history ORDER BY hid")
    assert history == [(None, v) for n in range(3) for v in (n + 0.5, float(n))]
    assert _rows(store, "SELECT * FROM history_datasets") == []


def test_history_rows_keep_their_datasetids(store: SqliteStore) -> None:
    svc, tm = EntityService(store), ContextCache().core
    body = _entity(
        1,
        level=[
            {"type": "Property", "value": 1},
            {"type": "Property", "value": 2, "datasetId": "urn:ds:b"},
        ],
        count={"type": "Property", "value": 3},
    )
    svc.create_many("", [expand_entity(body, tm)])
    history = _rows(store, "SELECT dataset_id, num FROM history ORDER BY hid")
    assert history == [(None, 1.0), ("urn:ds:b", 2.0), (None, 3.0)]
    series = _rows(store, "SELECT dataset_id FROM history_datasets ORDER BY dataset_id")
    assert series == [("@none",), ("urn:ds:b",)]
