"""attr_index rows and the SQL over them keep q's kinds and targets apart (NGSI-LD 4.9, as
the reference evaluator reads it); test_store_query_oracle.py compares whole answers, this
file checks the rows, the upgrade that rebuilds them, updates and the fast plans."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query import ast, evaluate
from cityhub.ngsild.query.qlang import parse_q
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import SqliteStore, qsql
from cityhub.store.sqlite.index import NO_TARGET, REL, TARGET, attr_rows
from conftest import BASE

TM = ContextCache().core


def _prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


ENTITY: dict[str, Any] = {
    "id": "urn:ngsi-ld:Sensor:1",
    "type": "Sensor",
    "multi": [_prop(["red", "blue"], datasetId="urn:ds:1"), _prop("green")],
    "rel": {"type": "Relationship", "object": ["urn:a", "urn:b"]},
    "lbl": {"type": "LanguageProperty", "languageMap": {"en": "Hi", "fr": ["Salut", "Allo"]}},
    "flag": _prop(True),
    "n": _prop(2),
    "when": _prop({"@type": "Date", "@value": "2024-03-01"}),
    "at": _prop("10:30:00+02:00"),
    "obj": _prop({"a": 1}),
}


def _stored(store: SqliteStore) -> list[dict[str, Any]]:
    docs, _ = store.query("", EntityQuery(limit=1000))
    return docs


def _ids(store: SqliteStore, q: str) -> list[str]:
    node = ast.expand_q(parse_q(q), TM.expand)
    got, _ = store.query("", EntityQuery(q=node, limit=1000))
    return sorted(d["id"] for d in got)


def _want(store: SqliteStore, q: str) -> list[str]:
    node = ast.expand_q(parse_q(q), TM.expand)
    return sorted(d["id"] for d in _stored(store) if evaluate.matches_q(node, d))


def test_rows_keep_targets_relationships_and_kinds_apart(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    EntityService(store).create("", ENTITY, TM)
    (doc,) = _stored(store)
    rows = {(TM.compact(n), seq): rest for n, seq, *rest in attr_rows(doc)}
    # one target per instance (seq // TARGET), elements within it
    assert rows[("multi", 0)] == [None, "red", None]
    assert rows[("multi", 1)] == [None, "blue", None]
    assert rows[("multi", TARGET)] == [None, "green", None]
    # a Relationship's objects are one target, marked REL
    assert rows[("rel", REL)] == [None, "urn:a", None]
    assert rows[("rel", REL + 1)] == [None, "urn:b", None]
    # a LanguageProperty instance is one target: every language's values together
    assert rows[("lbl", 0)] == [None, "Hi", None]
    assert rows[("lbl", 2)] == [None, "Allo", None]
    assert not any(n == "lbl" and seq >= TARGET for n, seq in rows)
    # booleans, dates and times are tagged ts keys, never numbers or datetimes
    assert rows[("flag", 0)] == [None, None, "b1"]
    assert rows[("n", 0)] == [2.0, None, None]
    assert rows[("when", 0)] == [None, "2024-03-01", "d2024-03-01"]
    assert rows[("at", 0)] == [None, "10:30:00+02:00", "t08:30:00.000000Z"]
    # an object has nothing to compare, but it is a target (`obj!=1` holds)
    assert rows[("obj", 0)] == [None, None, None]
    assert NO_TARGET not in {seq for _, seq in rows}


def test_a_schema_4_database_gets_its_rows_rebuilt(tmp_path: Path) -> None:
    """The upgrade from schema 4 rewrites every attr_index row from the documents; the
    queries it fixes answer as the evaluator does right after it."""
    db = tmp_path / "old.db"
    store = SqliteStore(db)
    EntityService(store).create("", ENTITY, TM)
    with sqlite3.connect(db) as conn:
        want = conn.execute("SELECT * FROM attr_index ORDER BY 1, 2, 3").fetchall()
    store.close()
    with sqlite3.connect(db) as conn:  # rows as schema 4 wrote them: one run of seq, no tags
        conn.execute("UPDATE attr_index SET seq = seq % 1000 + 7, ts = NULL")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    again = SqliteStore(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT * FROM attr_index ORDER BY 1, 2, 3").fetchall() == want
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    for q in ('multi!="red"', "flag==true", "when==2024-03-01", "at<09:00:00Z", 'rel~="a"'):
        assert _ids(again, q) == _want(again, q), q
    again.close()


def test_updates_rewrite_targets(tmp_path: Path) -> None:
    """A PATCH that adds or replaces an instance rewrites the attribute's rows: `!=` still
    looks at each instance on its own."""
    store = SqliteStore(tmp_path / "hub.db")
    svc = EntityService(store)
    svc.create("", ENTITY, TM)
    svc.create("", {**ENTITY, "id": "urn:ngsi-ld:Sensor:2", "multi": _prop(["red"])}, TM)
    queries = ('multi!="red"', 'multi=="green"', "multi!~=^r", "flag!=true")
    for q in queries:
        assert _ids(store, q) == _want(store, q), q
    svc.update("", "urn:ngsi-ld:Sensor:1", {"multi": _prop("red")}, TM)
    svc.update("", "urn:ngsi-ld:Sensor:2", {"multi": _prop("blue", datasetId="urn:ds:9")}, TM)
    svc.update("", "urn:ngsi-ld:Sensor:2", {"flag": _prop(False)}, TM)
    for q in queries:
        assert _ids(store, q) == _want(store, q), q
    assert _ids(store, 'multi!="red"') == ["urn:ngsi-ld:Sensor:2"]


def test_top_level_numbers_and_strings_keep_their_value_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench (e) `temperature>38;status=="alarm"`: with few matches each term is one range
    read of its value index; with many, a look-up per entity on the primary key."""
    store = SqliteStore(tmp_path / "hub.db")
    EntityService(store).create("", ENTITY, TM)
    node = ast.expand_q(parse_q('n>1;lbl=="Hi"'), TM.expand)
    conn = store._reader()
    for selective, plan in ((10**9, "INDEXED BY"), (0, "+a.")):
        monkeypatch.setattr(qsql, "SELECTIVE", selective)
        sql = qsql.Compiler(conn, names=store.names, tenant="").q(node)
        assert plan in sql
        assert "q_match" not in sql and "json_" not in sql
        if plan == "INDEXED BY":
            assert "attr_index_num" in sql and "attr_index_txt" in sql


# every operator's correlated form, on each kind of value attr_index holds
CORRELATED_Q = [
    "multi",
    'multi=="red"',
    'multi=="red","blue"',
    'multi!="red"',
    'multi!="red","blue"',
    'multi>"a"',
    "multi~=^r",
    "multi!~=^r",
    "n==2",
    "n==1..3",
    "n!=1..3",
    "n>=2",
    "n!=2",
    "n!~=^2",
    "flag==true",
    "flag!=true",
    "when<2024-04-01",
    "when!=2024-03-01",
    "lbl!~=^S",
    'rel!="urn:a"',
]


@pytest.mark.parametrize("q", CORRELATED_Q)
@pytest.mark.parametrize("pk", ["e.pk", "t.pk"])
def test_correlated_terms_look_up_each_entity_on_the_primary_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, q: str, pk: str
) -> None:
    """A term too common for an IN list is a look-up of each candidate's own rows, on the
    (pk, nid) primary key. Driven from a value index instead, it reads every row of the
    attribute (all tenants': attr_index has no tenant) for each candidate: `s!~=^s` over
    12,000 entities took 23 s, then was a 503."""
    store = SqliteStore(tmp_path / "hub.db")
    EntityService(store).create("", ENTITY, TM)
    monkeypatch.setattr(qsql, "SELECTIVE", 0)
    conn = store._reader()
    comp = qsql.Compiler(conn, pk=pk, names=store.names, tenant="")
    cond = comp.q(ast.expand_q(parse_q(q), TM.expand))
    source = "entity_types t CROSS JOIN entities e ON e.pk = t.pk" if pk == "t.pk" else "entities e"
    plan = [
        row[3]
        for row in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT 1 FROM {source} WHERE {cond}", comp.params
        )
    ]
    reads = [step for step in plan if step.split()[1] in ("a", "b")]  # attr_index's aliases
    assert reads, plan
    assert all("PRIMARY KEY (pk=? AND nid=?" in step for step in reads), plan


@pytest.mark.parametrize(
    "q",
    [
        "temperature==9223372036854775807",
        "temperature==1..9223372036854775807",
        "temperature[a]<9223372036854775807",
        "temperature.accuracy!=9223372036854775807",
    ],
)
async def test_integers_at_64_bits_are_numbers_not_errors(
    client: httpx.AsyncClient, q: str
) -> None:
    """(Past 2^63-1 a write and a q literal are 400s, decision 053.)"""
    body = {"id": "urn:ngsi-ld:Sensor:9", "type": "Sensor", "temperature": 2**63 - 1}
    assert (await client.post(f"{BASE}/entities", json=body)).status_code == 201
    r = await client.get(f"{BASE}/entities", params={"type": "Sensor", "q": q})
    assert r.status_code == 200, r.text
    want = q.startswith("temperature==9") or q.startswith("temperature==1")
    assert [e["id"] for e in r.json()] == (["urn:ngsi-ld:Sensor:9"] if want else [])


def test_a_typed_value_is_its_string_for_patterns() -> None:
    """`~=` reads {"@type": "Date", "@value": ...} as its string, as `==` and `<` do, so the
    evaluator agrees with attr_index's txt for it."""
    doc = {"attrs": {"d": [_prop({"@type": "Date", "@value": "2024-03-01"})]}}
    assert evaluate.matches_q(parse_q('d~="^2024"'), doc)
    assert evaluate.matches_q(parse_q('d=="2024-03-01"'), doc)
    assert not evaluate.matches_q(parse_q('d!~="^2024"'), doc)


async def test_an_integer_past_every_double_is_a_400(client: httpx.AsyncClient) -> None:
    """isfinite() raised OverflowError on such an integer: a 500."""
    r = await client.get(f"{BASE}/entities", params={"type": "Sensor", "q": "t==" + "9" * 400})
    assert r.status_code == 400 and "out of range" in r.json()["detail"], r.text
