"""A temporal q or geoQ in SQL as a necessary condition: an entity none of whose instances in
the window could satisfy a numeric comparison (or, holding only numbers, a string, null or
time one), or lie where the geoQ may match, is left out before Python reads its history and
decides exactly (store/sqlite/temporal.py, `_matches_history`)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable

import shapely
from shapely.geometry.base import BaseGeometry

from cityhub.ngsild.query import ast
from cityhub.ngsild.query.distance import POLAR, Box, metres_per_degree
from cityhub.ngsild.query.evaluate import ENTITY_FIELDS
from cityhub.ngsild.query.geo import GeoQuery
from cityhub.store.sqlite.index import EXACT
from cityhub.store.sqlite.names import AttrNames
from cityhub.store.sqlite.qsql import balanced, prefilter_box

# metres: past this, a minDistance's box would span a continent, where a flat margin is unsure
MAX_EXCLUDED_REACH = 1_000_000
_SQL_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "="}
# Literal kinds no number or Boolean satisfies (kinds never coerce, evaluate._order): only an
# instance without `num`, which history_obs holds, may match one.
_NO_NUMBER_KINDS = frozenset({"string", "null", *ast.TEMPORAL_KINDS})


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
    if all(v.kind in _NO_NUMBER_KINDS for v in _literals(value)):
        return True
    if not isinstance(value, ast.Value):
        return False
    number = value.value
    return (
        value.kind == "number"
        and isinstance(number, int | float)
        and not isinstance(number, bool)
        and abs(number) < EXACT
    )


def _literals(value: object) -> tuple[ast.Value, ...]:
    """The literals a comparison names (a list's, a range's ends); none for anything else."""
    if isinstance(value, ast.Value):
        return (value,)
    if isinstance(value, ast.ValueList):
        return value.values
    if isinstance(value, ast.Range):
        return (value.low, value.high)
    return ()


def prefilter(
    node: object,
    conn: sqlite3.Connection,
    names: AttrNames,
    bind: Callable[[object], str],
    window: Callable[[int], str],
) -> str | None:
    """SQL on `tt.tpk` that every entity the q tree matches satisfies, or None (no narrowing).

    A numeric comparison keeps an entity with an instance whose number satisfies it, or with
    one that is not a plain number (a list, a string, a JSON value: Python decides those); a
    string, null or time comparison one with an instance that is no number (`==` a string:
    one that is not another string);
    `window(nid)` is the instance filter (attribute, datasetId, time window) as SQL.
    """
    if not narrowable(node):
        return None
    if isinstance(node, ast.And | ast.Or):
        joiner = " AND " if isinstance(node, ast.And) else " OR "
        parts = [prefilter(n, conn, names, bind, window) for n in node.items if narrowable(n)]
        return balanced(joiner, [p for p in parts if p])
    assert isinstance(node, ast.Compare)
    scope = window(names.lookup(conn, node.path.attr))
    literals = _literals(node.value)
    if all(v.kind in _NO_NUMBER_KINDS for v in literals):
        may = "h.num IS NULL"
        equal = node.op == "==" and not isinstance(node.value, ast.Range)
        if equal and all(v.kind == "string" for v in literals):
            # a Property whose value is another string cannot match either (a string q
            # comes as a list: the literal and its vocab expansion); any other type or shape
            # of value (no `value`, a list, an object) is left to Python
            texts = ", ".join(bind(v.value) for v in literals)
            may += (
                " AND (json_type(h.inst, '$.value') IS NOT 'text'"
                f" OR h.inst ->> '$.value' IN ({texts})"
                " OR h.inst ->> '$.type' IS NOT 'Property')"
            )
        return f"EXISTS (SELECT 1 FROM history h WHERE h.tpk = tt.tpk{scope} AND {may})"
    assert isinstance(node.value, ast.Value)
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

    An entity keeps when one of its GeoProperty instances in the window is anything but a
    Point (Python decides those) or a Point that may match: inside the box any match must
    touch (qsql.prefilter_box), or, for disjoint and minDistance, outside the box in which
    no point can match (excluded_box). Temporal geometries have no R*Tree; this test reads
    each instance's JSON instead of building a shapely shape for it in Python.
    """
    box = prefilter_box(gq)
    inside = "{x} BETWEEN {minx} AND {maxx} AND {y} BETWEEN {miny} AND {maxy}"
    if box is not None:
        may_match = inside
    else:
        box = excluded_box(gq)
        if box is None:
            return None
        may_match = f"NOT coalesce({inside}, 0)"
    minx, miny, maxx, maxy = box
    scope = window(names.lookup(conn, gq.geoproperty))
    point = may_match.format(
        x="json_extract(h.inst, '$.value.coordinates[0]')",
        y="json_extract(h.inst, '$.value.coordinates[1]')",
        minx=bind(minx),
        maxx=bind(maxx),
        miny=bind(miny),
        maxy=bind(maxy),
    )
    # the instance's own type last: most rows are settled by their point already
    return (
        f"EXISTS (SELECT 1 FROM history h WHERE h.tpk = tt.tpk{scope} AND "
        f"(json_extract(h.inst, '$.value.type') IS NOT 'Point' OR ({point})) AND "
        "json_extract(h.inst, '$.type') = 'GeoProperty')"
    )


def excluded_box(gq: GeoQuery) -> Box | None:
    """A lon/lat box no point inside which satisfies a disjoint or near;minDistance geoQ, or
    None: for disjoint, a box inside the reference polygon (its own bounds when it fills them,
    else a square in its largest inscribed circle); for minDistance, a box around a point of
    the reference (or that inner box) whose corners are closer than the distance."""
    ref = gq.geometry
    if gq.georel == "disjoint":
        return _inner_box(ref)
    if gq.georel != "near" or not gq.min_distance or gq.min_distance > MAX_EXCLUDED_REACH:
        return None
    inner = _inner_box(ref)
    if inner is None:
        c = ref if ref.geom_type == "Point" else ref.representative_point()
        inner = (c.x, c.y, c.x, c.y)
    minx, miny, maxx, maxy = inner
    # 0.6 of the distance each way: a corner lies within 0.85 of it, a margin for the plane
    reach = 0.6 * gq.min_distance
    nearest_equator = 0.0 if miny <= 0 <= maxy else min(abs(miny), abs(maxy))
    dlon = reach / metres_per_degree(nearest_equator)[0]
    dlat = reach / metres_per_degree(90.0)[1]
    box = (minx - dlon, miny - dlat, maxx + dlon, maxy + dlat)
    if box[0] < -180 or box[2] > 180 or box[1] < -POLAR or box[3] > POLAR:
        return None  # past the antimeridian or near a pole, a box is no longer a circle's
    return box


def _inner_box(ref: BaseGeometry) -> Box | None:
    """A box inside a polygon (its largest part), or None for a reference without an area."""
    polygons = [p for p in shapely.get_parts(ref) if p.geom_type == "Polygon"]
    if not polygons:
        return None
    polygon = max(polygons, key=lambda p: p.area)
    bounds = polygon.bounds
    if polygon.covers(shapely.box(*bounds)):
        return bounds
    spoke = shapely.maximum_inscribed_circle(polygon, polygon.length / 1000)
    (cx, cy), _ = spoke.coords
    half = spoke.length / math.sqrt(2) * 0.999
    inner = (cx - half, cy - half, cx + half, cy + half)
    return inner if half > 0 and polygon.covers(shapely.box(*inner)) else None
