"""A stored geometry with an edge across the antimeridian (a ferry leg or a vessel's track from
a device, written as it came) is matched the short way, as the cut geometry RFC 7946 3.1.9
asks for: read the long way it spanned the globe, answered geoQs around longitude 0 and none
near 180, and its R*Tree box left it out of the plan that walks the R*Tree."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query import evaluate, geo
from cityhub.ngsild.query.geo import geo_matches, parse_geoq
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import SqliteStore, qsql
from cityhub.store.sqlite.schema import SCHEMA_VERSION

LEG = {"type": "LineString", "coordinates": [[179, 0], [-179, 0]]}
BOX = {"type": "Polygon", "coordinates": [[[179, -1], [-179, -1], [-179, 1], [179, 1], [179, -1]]]}
CUT_BOXES = (
    "[[[[170,-5],[180,-5],[180,5],[170,5],[170,-5]]],"
    "[[[-180,-5],[-170,-5],[-170,5],[-180,5],[-180,-5]]]]"
)


def _m(rel: str, kind: str, coords: str, stored: dict[str, Any]) -> bool:
    gq = parse_geoq(rel, kind, coords)
    assert gq is not None
    return geo_matches(gq, stored)


@pytest.mark.parametrize("stored", [LEG, BOX], ids=["line", "polygon"])
def test_a_geometry_across_180_is_where_it_was_drawn(stored: dict[str, Any]) -> None:
    assert _m("intersects", "Point", "[179.5,0]", stored)
    assert _m("intersects", "Point", "[-179.5,0]", stored)
    assert not _m("intersects", "Point", "[0,0]", stored)
    assert _m("disjoint", "Point", "[0,0]", stored)
    assert not _m("near;maxDistance==1000", "Point", "[0,0]", stored)
    assert _m("near;minDistance==1000", "Point", "[0,0]", stored)
    assert _m("within", "MultiPolygon", CUT_BOXES, stored)
    assert _m("near;maxDistance==1000", "Point", "[180,0.001]", stored)


def test_it_equals_the_same_line_cut_at_180() -> None:
    assert _m("equals", "MultiLineString", "[[[179,0],[180,0]],[[-180,0],[-179,0]]]", LEG)


def test_a_box_across_180_holds_a_point_on_either_side() -> None:
    small = "[[[179.5,-0.5],[180,-0.5],[180,0.5],[179.5,0.5],[179.5,-0.5]]]"
    assert not _m("within", "Polygon", small, BOX)
    assert _m("intersects", "Polygon", small, BOX)
    assert _m("intersects", "Point", "[-179.2,0.5]", BOX)
    assert not _m("intersects", "Point", "[-178.8,0.5]", BOX)


def test_near_a_pole_across_180_measures_the_short_way() -> None:
    # 2.2 km from the line's crossing of 180 at 89.99; the long way passes through the point
    track = {"type": "LineString", "coordinates": [[170, 89.99], [-170, 89.99]]}
    assert not _m("near;maxDistance==2000", "Point", "[0,89.99]", track)
    assert _m("near;maxDistance==2500", "Point", "[0,89.99]", track)
    assert _m("near;minDistance==2000", "Point", "[0,89.99]", track)


def test_the_long_way_drawn_with_a_midpoint_stays_the_long_way() -> None:
    round_the_world = {"type": "LineString", "coordinates": [[179, 0], [0, 0], [-179, 0]]}
    assert _m("intersects", "Point", "[0,0]", round_the_world)
    assert not _m("intersects", "Point", "[179.5,0]", round_the_world)


def test_an_edge_along_the_world_s_edge_is_kept() -> None:
    # a polar cap drawn as RFC 7946 draws it: its closing edge runs from 180 to -180 at -90
    cap = {
        "type": "Polygon",
        "coordinates": [
            [[-180, -89.9], [0, -89.9], [180, -89.9], [180, -90], [-180, -90], [-180, -89.9]]
        ],
    }
    assert _m("intersects", "Point", "[10,-89.95]", cap)
    assert not _m("intersects", "Point", "[10,-89.5]", cap)


ENTITY = {
    "id": "urn:ngsi-ld:Vessel:1",
    "type": "Vessel",
    "location": {"type": "GeoProperty", "value": LEG},
}


def _store(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    out = EntityService(store).batch_upsert("", [ENTITY], ContextCache().core, "replace")
    assert not out.errors
    return store


def _found(store: SqliteStore, point: str, crowded: bool, mp: pytest.MonkeyPatch) -> list[str]:
    mp.setattr(qsql.Compiler, "_crowded", lambda self, box, limit: crowded)
    gq = geo.parse_geoq("intersects", "Point", point, ContextCache().core.expand("location"))
    assert gq is not None
    docs, _ = store.query("", EntityQuery(geo=gq, limit=10))
    ids = [d["id"] for d in docs]
    (doc,), _ = store.query("", EntityQuery(limit=10))
    assert ids == ([doc["id"]] if evaluate.matches_geo(gq, doc) else [])  # as subscriptions
    return ids


@pytest.mark.parametrize("crowded", [False, True], ids=["rtree-in-list", "per-entity"])
def test_both_plans_find_it_near_180_and_not_at_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crowded: bool
) -> None:
    store = _store(tmp_path / "hub.db")
    assert _found(store, "[179.5,0]", crowded, monkeypatch) == [ENTITY["id"]]
    assert _found(store, "[-179.5,0]", crowded, monkeypatch) == [ENTITY["id"]]
    assert _found(store, "[0,0]", crowded, monkeypatch) == []
    store.close()


def test_a_schema_20_database_gets_the_box_of_the_short_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hub.db"
    _store(path).close()
    with sqlite3.connect(path) as conn:  # the box schema 20 wrote: the long way round
        conn.execute("UPDATE geo_rtree SET minx = -179, maxx = 179, miny = 0, maxy = 0")
        conn.execute("UPDATE meta SET value = '20' WHERE key = 'schema_version'")
    store = SqliteStore(path)
    assert _found(store, "[179.5,0]", False, monkeypatch) == [ENTITY["id"]]
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT minx, maxx, miny, maxy FROM geo_rtree").fetchall() == [
            (-180, 180, 0, 0)
        ]
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
