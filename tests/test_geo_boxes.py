"""The R*Tree box of a stored geometry holds everything a geoQ matches it as: GEOS's repair of
a polygon stored before decision 088 with a hole outside its shell is an area there too, and
the box of the shell alone made the R*Tree plan drop it while the per-entity plan and
subscriptions (the evaluator) found it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query import evaluate, geo
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import SqliteStore, qsql
from cityhub.store.sqlite.schema import SCHEMA_VERSION

SHELL = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
AWAY = [[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]
ZONE: dict[str, Any] = {
    "id": "urn:ngsi-ld:Zone:1",
    "type": "Zone",
    "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [SHELL, AWAY]}},
}


def _stored_before_089(path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteStore:
    """A store holding ZONE, written as the hub took it before decision 088 refused it."""
    monkeypatch.setattr(geo, "check_rings", lambda geom: None)
    store = SqliteStore(path)
    out = EntityService(store).batch_upsert("", [ZONE], ContextCache().core, "replace")
    assert not out.errors
    monkeypatch.undo()
    return store


def _found(store: SqliteStore, crowded: bool, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(qsql.Compiler, "_crowded", lambda self, box, limit: crowded)
    gq = geo.parse_geoq("intersects", "Point", "[5.5,5.5]", ContextCache().core.expand("location"))
    assert gq is not None
    docs, total = store.query("", EntityQuery(geo=gq, limit=10, count=True))
    assert total == len(docs)
    return [d["id"] for d in docs]


@pytest.mark.parametrize("crowded", [False, True], ids=["rtree-in-list", "per-entity"])
def test_both_plans_find_what_the_evaluator_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crowded: bool
) -> None:
    store = _stored_before_089(tmp_path / "hub.db", monkeypatch)
    gq = geo.parse_geoq("intersects", "Point", "[5.5,5.5]", ContextCache().core.expand("location"))
    assert gq is not None
    (doc,), _ = store.query("", EntityQuery(limit=10))
    assert evaluate.matches_geo(gq, doc)  # the repair is two squares
    assert _found(store, crowded, monkeypatch) == [ZONE["id"]]
    store.close()


def test_a_schema_18_database_gets_boxes_around_every_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hub.db"
    _stored_before_089(path, monkeypatch).close()
    with sqlite3.connect(path) as conn:  # the box schema 18 wrote: the shell's
        conn.execute("UPDATE geo_rtree SET minx = 0, maxx = 1, miny = 0, maxy = 1")
        conn.execute("UPDATE meta SET value = '18' WHERE key = 'schema_version'")
    store = SqliteStore(path)
    assert _found(store, False, monkeypatch) == [ZONE["id"]]
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT minx, maxx, miny, maxy FROM geo_rtree").fetchall() == [
            (0, 6, 0, 6)
        ]
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
