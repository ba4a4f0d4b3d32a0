"""A type selection of many names, in `type=` or in a Query's type-only EntitySelectors, is one
look-up of entity_types for all of them.

With one `pk IN (...)` list per name, every walked entity was probed once per name: `type=`
with 301 names over 105,000 entities took 4.8 s, and 2,001 type-only selectors ran into the
30 s query deadline; four such requests held every reader thread (queryperf probe, finding 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.qlang import parse_q
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery, EntitySelector, TemporalQuery
from cityhub.store.sqlite import SqliteStore
from recording import Recording

TM = ContextCache().core
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
TREE, LAMP, BENCH = (ast.TypeName(VOCAB + t) for t in ("Tree", "Lamp", "Bench"))
ABSENT = tuple(ast.TypeName(f"{VOCAB}Absent{k}") for k in range(200))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """Trees t0..t9, lamps l0..l4, benches b0..b2, and a lamp post p0 that is a Tree too."""
    store = SqliteStore(tmp_path / "hub.db")
    items: list[dict[str, Any]] = [
        {"id": f"urn:ngsi-ld:Tree:t{i}", "type": "Tree", "h": i} for i in range(10)
    ]
    items += [{"id": f"urn:ngsi-ld:Lamp:l{i}", "type": "Lamp", "h": i} for i in range(5)]
    items += [{"id": f"urn:ngsi-ld:Bench:b{i}", "type": "Bench", "h": i} for i in range(3)]
    items.append({"id": "urn:ngsi-ld:Post:p0", "type": ["Lamp", "Tree"], "h": 0})
    assert not EntityService(store).batch_upsert("", items, TM, "replace").errors
    yield store
    store.close()  # its connections' descriptors: the suite's later select() takes < 1,024


def _query(store: SqliteStore, query: EntityQuery) -> tuple[list[str], int | None, list[str]]:
    """The ids a query finds, its count, and the plan of its page's statement."""
    real = store._reader()
    recording = Recording(real)
    store._reader = lambda: recording  # type: ignore[method-assign]
    try:
        docs, total = store.query("", query)
    finally:
        del store._reader
    sql, params = next(
        (s, p)
        for s, p in recording.statements
        if s.startswith("SELECT") and "entities e" in s and "entity_types" in s
    )
    plan = [row[3] for row in real.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    return [d["id"].rsplit(":", 1)[1] for d in docs], total, plan


def _type_look_ups(plan: list[str]) -> list[str]:
    return [step for step in plan if "entity_types" in step or step.split()[1] in ("t", "ty")]


TREES = [f"t{i}" for i in range(10)]
LAMPS = [f"l{i}" for i in range(5)]


def test_a_list_of_type_names_is_one_look_up(store: SqliteStore) -> None:
    names = ast.TypeOr((*ABSENT[:100], TREE, *ABSENT[100:], LAMP))
    ids, total, plan = _query(store, EntityQuery(types=names, limit=100, count=True))
    assert ids == [*TREES, *LAMPS, "p0"] and total == 16
    assert len(_type_look_ups(plan)) == 1, plan


def test_a_selective_q_still_drives_beside_a_list_of_names(store: SqliteStore) -> None:
    """The names' one list is tested per entity, as their OR was: as a list SQLite could
    seek, it drove the query instead of the q's few matches (a type list and a rare status
    over 100,000 entities took twice the CPU)."""
    q = ast.expand_q(parse_q("h==3"), TM.expand)
    names = ast.TypeOr((*ABSENT[:10], TREE, BENCH))
    ids, total, plan = _query(store, EntityQuery(types=names, q=q))
    assert ids == ["t3"] and total is None
    lists = [plan[i + 1] for i, step in enumerate(plan) if step.startswith("LIST SUBQUERY")]
    assert lists[0].startswith("SEARCH a "), plan  # the q's value index first


def test_names_beside_a_conjunction_are_one_look_up(store: SqliteStore) -> None:
    """`Absent0|...|Bench|(Lamp;Tree)`: the names together, the conjunction on its own."""
    both = ast.TypeAnd((LAMP, TREE))
    names = ast.TypeOr((ast.TypeOr(ABSENT), BENCH, both))
    ids, total, plan = _query(store, EntityQuery(types=names, limit=100, count=True))
    assert ids == ["b0", "b1", "b2", "p0"] and total == 4
    assert len(_type_look_ups(plan)) == 3, plan  # the names, then Lamp and Tree


def test_names_beside_an_id_list_are_tested_per_entity_found(store: SqliteStore) -> None:
    names = ast.TypeOr((*ABSENT, LAMP))
    wanted = ("urn:ngsi-ld:Tree:t1", "urn:ngsi-ld:Lamp:l2", "urn:ngsi-ld:Post:p0")
    ids, total, plan = _query(store, EntityQuery(ids=wanted, types=names, count=True))
    assert ids == ["l2", "p0"] and total == 2
    look_ups = _type_look_ups(plan)
    assert len(look_ups) == 1 and "pk=?" in look_ups[0], plan


def test_type_only_selectors_are_one_look_up(store: SqliteStore) -> None:
    """A Query's type-only EntitySelectors together, the others beside them as they were."""
    selectors = tuple(EntitySelector(types=t) for t in (*ABSENT, BENCH))
    selectors += (EntitySelector(types=TREE, id_pattern="t[12]$"),)
    ids, total, plan = _query(store, EntityQuery(selectors=selectors, limit=100, count=True))
    assert ids == ["t1", "t2", "b0", "b1", "b2"] and total == 5
    assert len(_type_look_ups(plan)) == 2, plan  # the type-only ones, then Tree


def test_a_temporal_type_list_finds_the_same_entities(store: SqliteStore) -> None:
    names = ast.TypeOr((*ABSENT, BENCH, ast.TypeAnd((LAMP, TREE))))
    query = TemporalQuery(entities=EntityQuery(types=names, limit=100, count=True))
    rows, total = store.temporal("", query)
    assert sorted(doc["id"].rsplit(":", 1)[1] for doc, _ in rows) == ["b0", "b1", "b2", "p0"]
    assert total == 4


def _selected(store: SqliteStore, selectors: tuple[EntitySelector, ...]) -> list[str]:
    docs, total = store.query("", EntityQuery(selectors=selectors, limit=100, count=True))
    assert total == len(docs)
    return [d["id"].rsplit(":", 1)[1] for d in docs]


def test_many_id_patterns_of_one_type_are_one_search_per_entity(store: SqliteStore) -> None:
    """600 `{type, idPattern}` selectors (more than the 512 compiled patterns kept): every
    entity of the type was searched once per pattern, each compiled again (1,000 such
    selectors over 20,000 entities: 30 s, then 503)."""
    selectors = tuple(EntitySelector(types=TREE, id_pattern=f"t{k}$") for k in range(3, 603))
    selectors += (EntitySelector(types=LAMP, id_pattern="l[14]$"),)
    real = store._reader()
    recording = Recording(real)
    store._reader = lambda: recording  # type: ignore[method-assign]
    try:
        assert _selected(store, selectors) == ["t3", "t4", "t5", "t6", "t7", "t8", "t9", "l1", "l4"]
    finally:
        del store._reader
    sql = next(s for s, _ in recording.statements if "entities e" in s)
    assert sql.count("regexp_any(") == 1 and sql.count("regexp(") == 1, sql


def test_id_patterns_searched_together_keep_their_own_flags(store: SqliteStore) -> None:
    selectors = (
        EntitySelector(types=TREE, id_pattern="(?i)TREE:T1$"),
        EntitySelector(types=TREE, id_pattern="TREE:t2$"),
        EntitySelector(types=TREE, id_pattern="^urn:ngsi-ld:Tree:t3"),
        EntitySelector(types=TREE, id_pattern="Tree:t4\\z"),
    )
    assert _selected(store, selectors) == ["t1", "t3", "t4"]
