"""Queries that name ids are looked up on UNIQUE (tenant, id), whatever else they ask.

Ordered by plain pk, SQLite walked the whole tenant in pk order to skip a sort: two ids among
400,000 entities took about a second, and `cityhub import --db`, which reads each chunk's
ids first, slowed down as the tenant grew (probe 4, finding 3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query import ast
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery, EntitySelector, OrderKey, TemporalQuery
from cityhub.store.sqlite import SqliteStore
from recording import Recording

TM = ContextCache().core
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
TREE = ast.TypeName(VOCAB + "Tree")
LAMP = ast.TypeName(VOCAB + "Lamp")
ENTITIES_BY_ID = "sqlite_autoindex_entities_1"
TENTITIES_BY_ID = "sqlite_autoindex_tentities_1"


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    """Trees t0..t29 and lamps l0..l9, stored in the order c, then the rest."""
    store = SqliteStore(tmp_path / "hub.db")
    items = [{"id": "urn:ngsi-ld:Tree:c", "type": "Tree", "h": 1}]
    items += [{"id": f"urn:ngsi-ld:Tree:t{i}", "type": "Tree", "h": i} for i in range(30)]
    items += [{"id": f"urn:ngsi-ld:Lamp:l{i}", "type": "Lamp", "h": i} for i in range(10)]
    assert not EntityService(store).batch_upsert("", items, TM, "replace").errors
    return store


def _plans(store: SqliteStore, run: Any, table: str) -> list[list[str]]:
    """The query plan of every statement `run` made that reads `table`."""
    real = store._reader()
    recording = Recording(real)
    store._reader = lambda: recording  # type: ignore[method-assign]
    try:
        run()
    finally:
        del store._reader
    plans = [
        [row[3] for row in real.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        for sql, params in recording.statements
        if sql.startswith("SELECT") and f"FROM {table} " in sql
    ]
    assert plans, recording.statements
    return plans


IDS = ("urn:ngsi-ld:Tree:t3", "urn:ngsi-ld:Tree:absent")
MANY = tuple(f"urn:ngsi-ld:Tree:t{i}" for i in range(200))  # past LONG_LIST: a JSON list


@pytest.mark.parametrize(
    "query",
    [
        EntityQuery(ids=IDS),
        EntityQuery(ids=IDS, types=TREE),
        EntityQuery(ids=IDS, types=ast.TypeOr((TREE, LAMP))),
        EntityQuery(ids=IDS, types=TREE, count=True),
        EntityQuery(ids=MANY, limit=1000),
        EntityQuery(ids=IDS, order=(OrderKey((VOCAB + "h",), desc=True),)),
        EntityQuery(
            selectors=(EntitySelector(ids=IDS[:1], types=TREE), EntitySelector(ids=IDS[1:]))
        ),
    ],
    ids=["ids", "type", "types", "count", "long", "orderBy", "selectors"],
)
def test_an_id_list_is_looked_up_on_the_unique_index(
    store: SqliteStore, query: EntityQuery
) -> None:
    for plan in _plans(store, lambda: store.query("", query), "entities"):
        assert f"USING INDEX {ENTITIES_BY_ID}" in plan[0] or (
            f"USING COVERING INDEX {ENTITIES_BY_ID}" in plan[0]
        ), plan
        # a type is tested on each entity found (by its pk), not by listing its entities
        types = [step for step in plan if step.split()[1] in ("t", "ty")]
        assert all("pk=?" in step for step in types), plan


def test_a_temporal_id_list_is_looked_up_on_the_unique_index(store: SqliteStore) -> None:
    query = TemporalQuery(entities=EntityQuery(ids=IDS, count=True))
    for plan in _plans(store, lambda: store.temporal("", query), "tentities"):
        assert TENTITIES_BY_ID in plan[0], plan


def _ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"].rsplit(":", 1)[1] for d in docs]


def test_answers_keep_insertion_order_and_pages(store: SqliteStore) -> None:
    """Found by id, entities still come in the order they were stored, not the list's or the
    index's, so pages over an id list are the same as before."""
    ids = tuple(f"urn:ngsi-ld:Tree:{n}" for n in ("t12", "c", "t2", "t1", "gone"))
    docs, total = store.query("", EntityQuery(ids=ids, types=TREE, count=True))
    assert _ids(docs) == ["c", "t1", "t2", "t12"] and total == 4
    page, _ = store.query("", EntityQuery(ids=ids, limit=2, offset=1))
    assert _ids(page) == ["t1", "t2"]
    lamps, total = store.query("", EntityQuery(ids=ids, types=LAMP, count=True))
    assert lamps == [] and total == 0
    both = (EntitySelector(ids=ids[:2], types=TREE), EntitySelector(ids=ids[2:], types=LAMP))
    docs, total = store.query("", EntityQuery(selectors=both, count=True))
    assert _ids(docs) == ["c", "t12"] and total == 2
    ordered, _ = store.query("", EntityQuery(ids=ids, order=(OrderKey((VOCAB + "h",), desc=True),)))
    assert _ids(ordered) == ["t12", "t2", "c", "t1"]  # h desc, then insertion order


def test_temporal_answers_keep_insertion_order(store: SqliteStore) -> None:
    ids = ("urn:ngsi-ld:Tree:t7", "urn:ngsi-ld:Lamp:l1", "urn:ngsi-ld:Tree:c")
    rows, total = store.temporal("", TemporalQuery(entities=EntityQuery(ids=ids, count=True)))
    assert [doc["id"].rsplit(":", 1)[1] for doc, _ in rows] == ["c", "t7", "l1"]
    assert total == 3
