"""A temporal q or geoQ in SQL as a necessary condition: an entity none of whose instances in
the window could satisfy a numeric comparison, or lie in the geoQ's box, is left out before
Python reads its history and decides exactly (store/sqlite/temporal.py, `_matches_history`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from cityhub.ngsild.query import ast
from cityhub.ngsild.query.evaluate import ENTITY_FIELDS
from cityhub.ngsild.query.geo import GeoQuery
from cityhub.store.sqlite.index import EXACT
from cityhub.store.sqlite.names import AttrNames
from cityhub.store.sqlite.qsql import balanced, prefilter_box

_SQL_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "="}


def narrowable(node: object) -> bool:
    """Whether prefilter() gives SQL for this tree (it binds parameters only then)."""
    if isinstance(node, ast.And):
        return any(narrowable(n) for n in node.items)
    if isinstance(node, ast.Or):
        return all(narrowable(n) for n in node.items)
    if not isinstance(node, ast.Compare) or node.op not in _SQL_OPS:
        return False
    path, value = node.path, node.value
    if path.sub or path.keys or path.attr in ENTITY_FIELDS:
        return False
    if not isinstance(value, ast.Value) or value.kind != "number":
        return False
    number = value.value
    return isinstance(number, int | float) and not isinstance(number, bool) and abs(number) < EXACT


def prefilter(
    node: object,
    conn: sqlite3.Connection,
    names: AttrNames,
    bind: Callable[[object], str],
    window: Callable[[int], str],
) -> str | None:
    """SQL on `tt.tpk` that every entity the q tree matches satisfies, or None (no narrowing).

    A numeric comparison keeps an entity with an instance whose number satisfies it, or with
    one that is not a plain number (a list, a string, a JSON value: Python decides those);
    `window(nid)` is the instance filter (attribute, datasetId, time window) as SQL.
    """
    if not narrowable(node):
        return None
    if isinstance(node, ast.And | ast.Or):
        joiner = " AND " if isinstance(node, ast.And) else " OR "
        parts = [prefilter(n, conn, names, bind, window) for n in node.items if narrowable(n)]
        return balanced(joiner, [p for p in parts if p])
    assert isinstance(node, ast.Compare) and isinstance(node.value, ast.Value)
    scope = window(names.lookup(conn, node.path.attr))
    return (
        f"EXISTS (SELECT 1 FROM history h WHERE h.tpk = tt.tpk{scope} "
        f"AND (h.num {_SQL_OPS[node.op]} {bind(node.value.value)} OR h.num IS NULL))"
    )


def geo_prefilter(
    gq: GeoQuery,
    conn: sqlite3.Connection,
    names: AttrNames,
    bind: Callable[[object], str],
    window: Callable[[int], str],
) -> str | None:
    """SQL on `tt.tpk` that every entity the geoQ matches satisfies, or None (no narrowing).

    An entity keeps when one of its GeoProperty instances in the window is a Point inside the
    box any match must touch (qsql.prefilter_box), or is anything but a Point (Python decides
    those). Temporal geometries have no R*Tree; this test reads each instance's JSON instead
    of building a shapely shape for it in Python.
    """
    box = prefilter_box(gq)
    if box is None:
        return None
    minx, miny, maxx, maxy = box
    scope = window(names.lookup(conn, gq.geoproperty))
    x = "json_extract(h.inst, '$.value.coordinates[0]')"
    y = "json_extract(h.inst, '$.value.coordinates[1]')"
    return (
        f"EXISTS (SELECT 1 FROM history h WHERE h.tpk = tt.tpk{scope} AND "
        "(json_extract(h.inst, '$.value.type') IS NOT 'Point' OR "
        f"({x} BETWEEN {bind(minx)} AND {bind(maxx)} AND "
        f"{y} BETWEEN {bind(miny)} AND {bind(maxy)})))"
    )
