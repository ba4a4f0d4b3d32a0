"""A GeoProperty held in several instances (datasetIds) answers a geoQ as one entity: a
positive relation when any instance holds it, `disjoint` and `near;minDistance` only when no
instance intersects, or lies within the distance (decision 099, addendum). Each instance
tested alone made one bus both inside and outside a zone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query import evaluate, geo
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import SqliteStore, qsql


def _point(x: float, y: float, dataset: str | None = None) -> dict[str, Any]:
    inst: dict[str, Any] = {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [x, y]},
    }
    if dataset:
        inst["datasetId"] = dataset
    return inst


BUS = {  # a GPS fix inside the zone, a cell-tower estimate outside it
    "id": "urn:ngsi-ld:Bus:1",
    "type": "Bus",
    "location": [_point(10, 10), _point(20, 20, "urn:ngsi-ld:Dataset:cell")],
}
FAR = {
    "id": "urn:ngsi-ld:Bus:2",
    "type": "Bus",
    "location": [_point(30, 30), _point(31, 31, "urn:d:b")],
}
NEAR = {
    "id": "urn:ngsi-ld:Bus:3",
    "type": "Bus",
    "location": [_point(10.001, 10), _point(10, 10.002, "urn:d:b")],
}
NONE = {"id": "urn:ngsi-ld:Bus:4", "type": "Bus", "name": {"type": "Property", "value": "depot"}}
ZONE = "[[[9,9],[11,9],[11,11],[9,11],[9,9]]]"

CASES = [
    ("intersects", "Polygon", ZONE, {BUS["id"], NEAR["id"]}),
    ("disjoint", "Polygon", ZONE, {FAR["id"]}),
    ("within", "Polygon", ZONE, {BUS["id"], NEAR["id"]}),
    ("near;maxDistance==1000", "Point", "[10,10]", {BUS["id"], NEAR["id"]}),
    ("near;minDistance==1000", "Point", "[10,10]", {FAR["id"]}),
    ("near;minDistance==150", "Point", "[10,10]", {FAR["id"]}),  # NEAR's nearest: 110 m
    ("near;minDistance==100", "Point", "[10,10]", {FAR["id"], NEAR["id"]}),
]


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "hub.db")
    out = EntityService(s).batch_upsert("", [BUS, FAR, NEAR, NONE], ContextCache().core, "replace")
    assert not out.errors
    return s


def _gq(rel: str, kind: str, coords: str) -> geo.GeoQuery:
    gq = geo.parse_geoq(rel, kind, coords, ContextCache().core.expand("location"))
    assert gq is not None
    return gq


@pytest.mark.parametrize(("rel", "kind", "coords", "want"), CASES)
def test_subscriptions_see_one_answer_per_entity(
    store: SqliteStore, rel: str, kind: str, coords: str, want: set[str]
) -> None:
    docs, _ = store.query("", EntityQuery(limit=10))
    gq = _gq(rel, kind, coords)
    assert {d["id"] for d in docs if evaluate.matches_geo(gq, d)} == want


@pytest.mark.parametrize("crowded", [False, True], ids=["rtree-in-list", "per-entity"])
@pytest.mark.parametrize(("rel", "kind", "coords", "want"), CASES)
def test_queries_see_the_same(
    store: SqliteStore,
    monkeypatch: pytest.MonkeyPatch,
    crowded: bool,
    rel: str,
    kind: str,
    coords: str,
    want: set[str],
) -> None:
    monkeypatch.setattr(qsql.Compiler, "_crowded", lambda self, box, limit: crowded)
    docs, total = store.query("", EntityQuery(geo=_gq(rel, kind, coords), limit=10, count=True))
    assert {d["id"] for d in docs} == want
    assert total == len(want)


def test_intersects_and_disjoint_split_the_entities_holding_it(store: SqliteStore) -> None:
    holding = {BUS["id"], FAR["id"], NEAR["id"]}
    found = [
        {d["id"] for d in store.query("", EntityQuery(geo=_gq(rel, "Polygon", ZONE), limit=10))[0]}
        for rel in ("intersects", "disjoint")
    ]
    assert found[0] | found[1] == holding
    assert not found[0] & found[1]
