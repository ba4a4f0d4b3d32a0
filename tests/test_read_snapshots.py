"""Reads of several statements answer from one state of the database: a write committed
between two of their statements (here by another store on the file, as `cityhub import --db`
writes) showed a count beside a page it did not count, a type's count beside the attributes of
other entities, an entity beside linked entities already changed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.ngsild import registrations as R
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.typeexpr import parse_types
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import SqliteStore, resources, typestats
from conftest import BASE

TM = ContextCache().core
A, B = "urn:ngsi-ld:Meter:a", "urn:ngsi-ld:Tank:b"


@pytest.fixture
def other(db_path: Path, client: httpx.AsyncClient) -> Iterator[SqliteStore]:
    """A second store on the hub's file, closed after the hub's read."""
    store = SqliteStore(db_path)
    yield store
    store.close()


def _once_before(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, write: Callable[[], None]
) -> None:
    """Run `write` (a commit by the other store) once, just before owner.name is next called:
    between the statements of the read under test."""
    inner = getattr(owner, name)
    done: list[bool] = []

    def late(*args: Any, **kwargs: Any) -> Any:
        if not done:
            done.append(True)
            write()
        return inner(*args, **kwargs)

    monkeypatch.setattr(owner, name, late)


def _meter(eid: str, typ: str = "Meter", **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": eid, "type": typ}
    body.update(
        {
            k: {"type": "Relationship", "object": v}
            if k == "feeds"
            else {"type": "Property", "value": v}
            for k, v in attrs.items()
        }
    )
    return body


async def test_a_subscription_page_and_its_count_are_one_state(
    client: httpx.AsyncClient, other: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(2):
        body = {
            "id": f"urn:ngsi-ld:Subscription:{n}",
            "type": "Subscription",
            "entities": [{"type": "Meter"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:18399/n"}},
        }
        assert (await client.post(f"{BASE}/subscriptions", json=body)).status_code == 201
    doc = other.resource_get("subscription", "", "urn:ngsi-ld:Subscription:0")
    assert doc is not None
    third = {**doc, "id": "urn:ngsi-ld:Subscription:2"}
    _once_before(
        monkeypatch,
        resources,
        "count",
        lambda: other.resource_create("subscription", "", third["id"], third),
    )
    resp = await client.get(f"{BASE}/subscriptions?count=true&limit=10")
    assert resp.status_code == 200
    assert int(resp.headers["NGSILD-Results-Count"]) == len(resp.json()) == 2


async def test_a_registration_page_and_its_count_are_one_state(
    client: httpx.AsyncClient, other: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(One statement already: a guard for the scan, which reads the page and counts it.)"""
    for n in range(2):
        body = {
            "id": f"urn:ngsi-ld:ContextSourceRegistration:{n}",
            "type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": "Meter"}]}],
            "endpoint": "http://127.0.0.1:18399",
        }
        assert (await client.post(f"{BASE}/csourceRegistrations", json=body)).status_code == 201
    kind = "csourceRegistration"
    doc = other.resource_get(kind, "", "urn:ngsi-ld:ContextSourceRegistration:0")
    assert doc is not None
    third = {**doc, "id": "urn:ngsi-ld:ContextSourceRegistration:2"}
    _once_before(
        monkeypatch, R, "matches", lambda: other.resource_create(kind, "", third["id"], third)
    )
    resp = await client.get(f"{BASE}/csourceRegistrations?type=Meter&count=true&limit=10")
    assert resp.status_code == 200
    assert int(resp.headers["NGSILD-Results-Count"]) == len(resp.json()) == 2


async def test_types_with_details_list_the_attributes_of_the_types_they_list(
    client: httpx.AsyncClient, other: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.post(f"{BASE}/entities", json=_meter(A, p=1))).status_code == 201

    def swap() -> None:
        svc = EntityService(other)
        svc.delete("", A)
        svc.create("", _meter(B, "Tank", q=1), TM)

    _once_before(monkeypatch, typestats, "type_attr_names", swap)
    got = [
        (t["typeName"], t["attributeNames"])
        for t in (await client.get(f"{BASE}/types?details=true")).json()
    ]
    assert got in ([("Meter", ["p"])], [("Tank", ["q"])]), got


async def test_a_type_s_count_and_its_attributes_are_one_state(
    client: httpx.AsyncClient, other: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.post(f"{BASE}/entities", json=_meter(A, p=1))).status_code == 201
    _once_before(
        monkeypatch,
        typestats,
        "type_attributes",
        lambda: EntityService(other).create("", _meter(f"{A}:2", q=1), TM),
    )
    info = (await client.get(f"{BASE}/types/Meter")).json()
    got = (info["entityCount"], [a["attributeName"] for a in info["attributeDetails"]])
    assert got in ((1, ["p"]), (2, ["p", "q"])), got


async def _linked_pair(client: httpx.AsyncClient) -> Callable[[SqliteStore], None]:
    """A (v 0) feeds B (v 0); the write that sets v to 1 on both in one transaction."""
    body = [_meter(A, v=0, feeds=B), _meter(B, "Tank", v=0)]
    assert (await client.post(f"{BASE}/entityOperations/create", json=body)).status_code == 201

    def both(other: SqliteStore) -> None:
        items = [_meter(A, v=1, feeds=B), _meter(B, "Tank", v=1)]
        assert not EntityService(other).batch_upsert("", items, TM, "replace").errors

    return both


def _values(listed: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["id"]: e["v"]["value"] for e in listed}


async def test_an_entity_and_the_entities_it_joins_are_one_state(
    client: httpx.AsyncClient, other: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = await _linked_pair(client)
    _once_before(monkeypatch, SqliteStore, "query", lambda: both(other))
    got = _values((await client.get(f"{BASE}/entities/{A}?join=flat")).json())
    assert got in ({A: 0, B: 0}, {A: 1, B: 1}), got


async def test_a_query_page_and_the_entities_it_joins_are_one_state(
    client: httpx.AsyncClient, other: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = await _linked_pair(client)
    calls: list[int] = []
    query = SqliteStore.query

    def hooked(self: SqliteStore, tenant: str, q: EntityQuery) -> Any:
        calls.append(1)
        if len(calls) == 2:  # after the page's own query, before the linked entities'
            both(other)
        return query(self, tenant, q)

    monkeypatch.setattr(SqliteStore, "query", hooked)
    resp = await client.get(f"{BASE}/entities?type=Meter&join=flat&count=true")
    assert resp.headers["NGSILD-Results-Count"] == "1"
    got = _values(resp.json())
    assert got in ({A: 0, B: 0}, {A: 1, B: 1}), got


def test_a_split_count_inside_a_join_s_snapshot_counts_that_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A count=true query inside read_snapshot (a join) may start after the snapshot read:
    the half counted on another connection is counted again on the snapshot's."""
    from cityhub.store.sqlite import backend

    monkeypatch.setattr(backend, "SPLIT_SPAN", 1)  # two entities already split the count
    store, other = SqliteStore(tmp_path / "hub.db"), SqliteStore(tmp_path / "hub.db")
    for n in range(2):
        EntityService(store).create("", _meter(f"{A}:{n}", p=n), TM)
    meters = EntityQuery(types=ast.map_names(parse_types("Meter"), TM.expand), count=True)
    with store.read_snapshot():
        assert store.get("", f"{A}:0") is not None  # the snapshot begins here
        EntityService(other).delete("", f"{A}:1")  # in the other half of the span
        docs, total = store.query("", replace(meters, limit=10))
    assert total == len(docs) == 2
    other.close()
    store.close()
