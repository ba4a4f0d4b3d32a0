"""q on a LanguageProperty (NGSI-LD 4.9): without a language, or with `[*]`, the values of
every language form one target, so `color!="red"` matches a map in which no language says
"red" (the spec's example: {"fr": "noir", "en": "black", "de": "schwarz"}, not {"fr":
"rouge", "en": "red", "de": "rot"}); `color[en]` is the English value alone. Each instance of
a multi-instance attribute (datasetIds) is still a target of its own. The same answers come
from entity queries (SQL), temporal queries and subscriptions (Python), and from a database
whose index rows an older cityhub wrote."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
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
from cityhub.store.sqlite.index import attr_rows
from cityhub.store.sqlite.schema import SCHEMA_VERSION
from conftest import BASE
from receivers import Receiver, wait_for

TM = ContextCache().core


def _lang(langmap: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "LanguageProperty", "languageMap": langmap, **extra}


def _prop_ds(value: Any, dataset: str) -> dict[str, Any]:
    return {"type": "Property", "value": value, "datasetId": dataset}


def _entity(n: int, color: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:L:{n}", "type": "L", "color": color}


ENTITIES = [
    _entity(1, _lang({"fr": "rouge", "en": "red", "de": "rot"})),
    _entity(2, _lang({"fr": "noir", "en": "black", "de": "schwarz"})),
    _entity(3, _lang({"fr": ["rouge", "noir"], "en": ["red", "black"]})),
    # two instances: any of them may match, each on its own
    _entity(
        4,
        [
            _lang({"en": "red"}, datasetId="urn:ds:a"),
            _lang({"en": "blue", "fr": "bleu"}, datasetId="urn:ds:b"),
        ],
    ),
    # a plain Property with two instances: `!=` holds when one of them differs
    _entity(5, [{"type": "Property", "value": "red"}, _prop_ds("blue", "urn:ds:b")]),
]

ANSWERS = [
    ('color!="red"', ["2", "4", "5"]),
    ('color[*]!="red"', ["2", "4"]),
    ('color[en]!="red"', ["2", "4"]),
    ('color=="red"', ["1", "3", "4", "5"]),
    ('color[*]=="rot"', ["1"]),
    ('color[fr]=="noir"', ["2", "3"]),
    ('color!="red","noir"', ["4", "5"]),
    ('color>"s"', ["2"]),  # orderings: any value of the map
    ("color~=^bl", ["2", "3", "4", "5"]),  # patterns: any value of the map
    ("color!~=^ro", ["2", "4", "5"]),  # no value of one target matches
]


async def _create_all(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{BASE}/entityOperations/create", json=ENTITIES)
    assert r.status_code == 201, r.text


async def _ids(client: httpx.AsyncClient, q: str, path: str = "") -> list[str]:
    r = await client.get(f"{BASE}{path}/entities", params={"type": "L", "q": q})
    assert r.status_code == 200, r.text
    return sorted(e["id"].rsplit(":", 1)[1] for e in r.json())


def test_the_evaluator_reads_a_language_map_as_one_target() -> None:
    """The spec's own example, on the reference evaluator (subscriptions, temporal q)."""
    doc = {"id": "urn:x", "type": ["T"], "attrs": {"color": [ENTITIES[0]["color"]]}}
    other = {"id": "urn:y", "type": ["T"], "attrs": {"color": [ENTITIES[1]["color"]]}}
    for q in ('color!="red"', 'color[*]!="red"'):
        node = parse_q(q)
        assert not evaluate.matches_q(node, doc), q
        assert evaluate.matches_q(node, other), q
    assert evaluate.matches_q(parse_q('color[de]!="red"'), doc)


@pytest.mark.parametrize("selective", [0, 10**9], ids=["correlated", "in-list"])
@pytest.mark.parametrize(("q", "want"), ANSWERS)
async def test_entity_queries(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    q: str,
    want: list[str],
    selective: int,
) -> None:
    monkeypatch.setattr(qsql, "SELECTIVE", selective)
    await _create_all(client)
    assert await _ids(client, q) == want


@pytest.mark.parametrize(("q", "want"), ANSWERS)
async def test_temporal_queries(client: httpx.AsyncClient, q: str, want: list[str]) -> None:
    await _create_all(client)
    assert await _ids(client, q, path="/temporal") == want


async def test_a_subscription_skips_a_map_that_holds_the_value(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    sub = {
        "type": "Subscription",
        "entities": [{"type": "L"}],
        "q": 'color[*]!="red"',
        "notification": {"endpoint": {"uri": receiver.url()}},
    }
    assert (await hub.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
    for body in ENTITIES[:2]:
        assert (await hub.post(f"{BASE}/entities", json=body)).status_code == 201
    await wait_for(lambda: bool(receiver.received()), timeout=10, what="the notification")
    await _ids(hub, "color")  # let a stray delivery land
    got = [e["id"] for r in receiver.received() for e in r.body["data"]]
    assert got == ["urn:ngsi-ld:L:2"]


def _per_language(langmap: Mapping[str, Any], keys: tuple[str, ...]) -> Iterator[Any]:
    """Schema 9's reading of a languageMap: one target per language."""
    if len(keys) > 1:
        return
    if keys and keys[0] != "*":
        values = [langmap[keys[0]]] if keys[0] in langmap else []
    else:
        values = list(langmap.values())
    for value in values:
        yield value, False


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT pk, nid, seq, num, txt, ts FROM attr_index ORDER BY 1, 2, 3"
        ).fetchall()


def test_a_schema_9_database_gets_its_language_rows_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written with one target per language are rebuilt when the hub opens the
    database; the rows of entities without a LanguageProperty are left as they were."""
    db = tmp_path / "old.db"
    with monkeypatch.context() as old:
        old.setattr(evaluate, "_languages", _per_language)
        store = SqliteStore(db)
        svc = EntityService(store)
        for body in ENTITIES:
            svc.create("", body, TM)
        store.close()
    written = _rows(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
        plain = conn.execute("SELECT pk FROM entities WHERE id = 'urn:ngsi-ld:L:5'").fetchone()[0]
    again = SqliteStore(db)
    try:
        docs, _ = again.query("", EntityQuery(limit=100))
        conn = again._reader()
        pks = dict(conn.execute("SELECT id, pk FROM entities").fetchall())
        want = sorted(
            (pks[doc["id"]], again.names.lookup(conn, name), *rest)
            for doc in docs
            for name, *rest in attr_rows(doc)
        )
        rebuilt = _rows(db)
        assert rebuilt == want and rebuilt != written
        assert [r for r in rebuilt if r[0] == plain] == [r for r in written if r[0] == plain]
        with sqlite3.connect(db) as conn:
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            assert version.fetchone() == (str(SCHEMA_VERSION),)
        for q, ids in ANSWERS:
            node = ast.expand_q(parse_q(q), TM.expand)
            got, _ = again.query("", EntityQuery(q=node, limit=100))
            assert sorted(d["id"].rsplit(":", 1)[1] for d in got) == ids, q
    finally:
        again.close()
