"""geoQ parsing (clause 4.10) and an exact shapely predicate, with near distances in metres."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from cityhub.ngsild.entity import positions
from cityhub.ngsild.errors import BadRequestData, clipped, excerpt, shown
from cityhub.ngsild.query.antimeridian import check_edges, short_way
from cityhub.ngsild.query.distance import Projected, point_distance_m, reach_box
from cityhub.ngsild.query.repair import (
    SMALL,
    Unusable,
    checkable,
    made_valid,
    stored_usable,
    usable,
)
from cityhub.ngsild.query.rings import check_rings

GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
# GeoQuery (5.2.13) is a closed type: a member beside these (a misspelt geoProperty, say) is a
# 400, dropped it would leave the query on location or widen it
GEOQ_MEMBERS = ("georel", "geometry", "coordinates", "geoproperty")
GEORELS = ("near", "within", "contains", "intersects", "equals", "disjoint", "overlaps")
DEFAULT_GEOPROPERTY = "location"
# Positions a geometry may have (a query's, or a stored one's, all members of a collection
# together): a jagged 10,000-vertex boundary is checked in ~20-40 ms, and building its shape
# takes as long again on each row a geoQ tests. A district's boundary has a few thousand.
MAX_VERTICES = 10_000
_NEAR_RE = re.compile(r"(maxDistance|minDistance)\s*==\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)")
_JSON_POSITIVE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_BAD_NAME_RE = re.compile(r"[\s<>\"'=;()\\\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class GeoQuery:
    """A validated geoQ: relation, reference geometry (lon/lat) and the GeoProperty to test."""

    georel: str
    geometry: BaseGeometry
    geojson: dict[str, Any] = field(compare=False, hash=False)
    geoproperty: str = DEFAULT_GEOPROPERTY
    max_distance: float | None = None
    min_distance: float | None = None
    # near: the reference drawn once in its local plane, for every candidate to be measured in
    projected: Projected | None = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        near = None
        if self.georel == "near":
            near = Projected.of(self.geometry, self.max_distance or 0.0)
            if self.min_distance:  # the plane stays the reference's own: candidates lie anywhere
                near = replace(near, reach=reach_box(self.geometry.bounds, self.min_distance))
        object.__setattr__(self, "projected", near)


def every_instance(query: GeoQuery) -> bool:
    """Whether an entity matches only when all its instances of the GeoProperty do: the
    negative relations (disjoint, near;minDistance) are their positive pair's negation, so
    that an entity with one instance inside a zone is never also outside it (decision 099,
    addendum); the others hold when any instance does."""
    return query.georel == "disjoint" or query.min_distance is not None


def check_geoq_members(geo: dict[str, Any], what: str = "geoQ") -> None:
    """Refuse members a GeoQuery object does not have, naming them."""
    unknown = set(geo) - set(GEOQ_MEMBERS)
    if unknown:
        raise BadRequestData(
            f"unknown member(s) {', '.join(sorted(unknown))} in {what}; a GeoQuery has "
            f"{', '.join(GEOQ_MEMBERS)}"
        )


def parse_georel(text: str, *, stored: bool = False) -> tuple[str, float | None, float | None]:
    """Split `near;maxDistance==2000` into (relation, max_distance, min_distance). A new
    distance is 4.10's PositiveNumber (RFC 8259's, not 0: minDistance==0 matched every
    entity; digits 0-9, as `\\d` took full-width ones); a `stored` one is read as accepted."""
    parts = [p.strip() for p in text.strip().split(";")]
    rel = parts[0]
    if rel not in GEORELS:
        raise BadRequestData(f"invalid georel {shown(text)}: relation must be one of {GEORELS}")
    if rel != "near":
        if len(parts) != 1:
            raise BadRequestData(f"invalid georel {shown(text)}: only near takes a distance")
        return rel, None, None
    m = _NEAR_RE.fullmatch(parts[1]) if len(parts) == 2 else None
    if m is None:
        raise BadRequestData(
            f"invalid georel {shown(text)}: expected near;maxDistance==<metres> or minDistance"
        )
    number = m.group(2)
    distance = float(number)
    if not math.isfinite(distance):
        raise BadRequestData(f"invalid georel {shown(text)}: distance out of range")
    if not stored and not (number.isascii() and distance > 0 and _JSON_POSITIVE.fullmatch(number)):
        raise BadRequestData(
            f"invalid georel {shown(text)}: a distance is a number of metres above 0, written "
            "as JSON writes it (4.10: PositiveNumber)"
        )
    return ("near", distance, None) if m.group(1) == "maxDistance" else ("near", None, distance)


def _position(pos: Any) -> None:
    """A GeoJSON position: [lon, lat] or [lon, lat, alt], finite and on the globe."""
    if not isinstance(pos, list) or len(pos) not in (2, 3):
        raise BadRequestData(f"invalid position {clipped(pos)}: expected [longitude, latitude]")
    for n in pos:
        if isinstance(n, bool) or not isinstance(n, int | float) or not math.isfinite(n):
            raise BadRequestData(f"invalid position {clipped(pos)}: coordinates must be numbers")
    if not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90):
        raise BadRequestData(f"invalid position {pos!r}: longitude/latitude out of range")


# How many arrays deep each geometry's numbers lie.
_NESTING = {"Point": 1, "MultiPoint": 2, "LineString": 2, "MultiLineString": 3, "Polygon": 3}


def _check_nesting(kind: str, coords: Any) -> None:
    """Coordinates nested deeper than the type has them (followed through first items, which
    is where a wrapped array shows): said so, not "needs 4 positions" or the text echoed."""
    levels = _NESTING.get(kind, 4)
    deep, item = 0, coords
    while isinstance(item, list):
        deep += 1
        item = item[0] if item else None
    if deep > levels:
        raise BadRequestData(
            f"invalid {kind}: its coordinates nest {deep} arrays deep, where a {kind}'s nest "
            f"{levels}: remove the extra brackets"
        )


def _positions(items: Any, minimum: int, what: str) -> None:
    """A non-empty list of at least `minimum` positions."""
    if not isinstance(items, list) or len(items) < minimum:
        raise BadRequestData(f"invalid {what}: needs at least {minimum} positions")
    for pos in items:
        _position(pos)


def _is_position(item: Any) -> bool:
    """A list of numbers: where a list of positions was due, one array level is missing."""
    return (
        isinstance(item, list)
        and bool(item)
        and all(isinstance(n, int | float) and not isinstance(n, bool) for n in item)
    )


def _ring_list(rings: Any, kind: str = "Polygon") -> None:
    """Polygon rings: each closed, with at least four positions."""
    if not isinstance(rings, list) or not rings:
        raise BadRequestData("invalid Polygon: needs at least one linear ring")
    if _is_position(rings[0]):  # the most common Polygon mistake; "needs 4 positions" misled
        shape = "[[[lon, lat], ...]]" if kind == "Polygon" else "[[[[lon, lat], ...]], ...]"
        raise BadRequestData(
            f"invalid {kind}: one array level is missing: {kind} coordinates are a list of "
            f"{'linear rings' if kind == 'Polygon' else 'polygons, each a list of rings'}: "
            f"{shape}"
        )
    for ring in rings:
        _positions(ring, 4, "linear ring")
        if ring[0] != ring[-1]:
            raise BadRequestData("invalid linear ring: first and last positions must be equal")


def _nonempty_list(items: Any, what: str) -> list[Any]:
    if not isinstance(items, list) or not items:
        raise BadRequestData(f"invalid {what}: expected a non-empty array")
    return items


# How deep each geometry's positions lie in its coordinates array.
def check_size(geometry: dict[str, Any]) -> None:
    """At most MAX_VERTICES positions, counted before anything walks them."""
    n = positions(geometry)
    if n > MAX_VERTICES:
        raise BadRequestData(
            f"invalid {geometry.get('type')}: {n:,} positions, more than the {MAX_VERTICES:,} a "
            "geometry may have: simplify it (to a tolerance of a metre, say)"
        )


def check_intricacy(geom: BaseGeometry) -> None:
    """A stored geometry too intricate for a geoQ to check, or a polygon the hub would have to
    guess at (rings.check_rings), is refused when it is written."""
    try:
        checkable(geom)
        check_rings(geom)
    except Unusable as exc:
        raise BadRequestData(f"invalid {geom.geom_type}: {exc}") from None


def check_coordinates(kind: str, coords: Any) -> None:
    """Structural GeoJSON checks, so shapely never sees a shape it would misread."""
    _check_nesting(kind, coords)
    if kind == "Point":
        _position(coords)
    elif kind == "MultiPoint":
        _positions(coords, 1, kind)
    elif kind == "LineString":
        _positions(coords, 2, kind)
    elif kind == "MultiLineString":
        for line in _nonempty_list(coords, kind):
            _positions(line, 2, "LineString")
    elif kind == "Polygon":
        _ring_list(coords)
    else:
        for polygon in _nonempty_list(coords, kind):
            _ring_list(polygon, kind)


def geometry_shape(geojson: dict[str, Any]) -> BaseGeometry:
    """shapely's 2D shape of a GeoJSON geometry. Positions with and without an altitude may mix
    in one geometry (RFC 7946 3.1.1: a GPS track only some of whose fixes have one), which
    shapely's arrays refuse: such a geometry is read without its altitudes, as every geometry
    is (force_2d)."""
    try:
        return shapely.force_2d(shape(geojson))
    except ValueError:
        return shape(_without_altitudes(geojson))


def _without_altitudes(geojson: dict[str, Any]) -> dict[str, Any]:
    """A geometry whose positions keep longitude and latitude only."""
    if geojson.get("type") == "GeometryCollection":
        members = geojson.get("geometries")
        if isinstance(members, list):
            return {**geojson, "geometries": [_without_altitudes(m) for m in members]}
        return geojson
    return {**geojson, "coordinates": _flat(geojson.get("coordinates"))}


def _flat(coords: Any) -> Any:
    if isinstance(coords, list) and coords and isinstance(coords[0], list):
        return [_flat(c) for c in coords]
    return coords[:2] if isinstance(coords, list) else coords


def parse_geometry(
    kind: str, coordinates: str | list[Any], *, stored: bool = False
) -> tuple[BaseGeometry, dict[str, Any]]:
    """Validate geometry + coordinates (JSON text or already-parsed array) into a 2D shape:
    its size first, then its structure, then (bounded) GEOS's validity check. A new one is
    held to check_rings as a stored geometry is; a `stored` one is read as it was accepted."""
    if kind not in GEOMETRY_TYPES:
        raise BadRequestData(f"invalid geometry {shown(kind)}: must be one of {GEOMETRY_TYPES}")
    coords: Any = coordinates
    if isinstance(coordinates, str):
        try:
            coords = json.loads(coordinates)
        except RecursionError:
            raise BadRequestData(
                f"invalid {kind}: its coordinates nest deeper than JSON is read here, where a "
                f"{kind}'s nest {_NESTING.get(kind, 4)} arrays"
            ) from None
        except ValueError:
            raise BadRequestData(
                f"invalid coordinates {excerpt(coordinates)}: not a JSON array"
            ) from None
    geojson = {"type": kind, "coordinates": coords}
    check_size(geojson)
    check_coordinates(kind, coords)
    try:
        geom = geometry_shape(geojson)
    except (ValueError, TypeError, shapely.errors.ShapelyError) as exc:
        raise BadRequestData(f"invalid {kind} coordinates: {exc}") from None
    try:
        # A self-intersecting ring is still a usable query area: repair it the way stored
        # geometries are repaired, so `equals` on the same input still matches.
        if not stored:
            check_edges(geom)  # as written: a repair may split an edge
            check_rings(geom)
        geom = usable(geom)
    except Unusable as exc:
        raise BadRequestData(f"invalid {kind}: {exc}") from None
    return geom, geojson


def parse_geoq(
    georel: str | None,
    geometry: str | None,
    coordinates: str | list[Any] | None,
    geoproperty: str | None = None,
    *,
    stored: bool = False,
) -> GeoQuery | None:
    """Build a GeoQuery from geoQ parameters; None when all four are absent. Any of them
    given alone, or empty, is a 400: ignoring it would widen the query to every entity (an
    empty geoproperty would have run the query on location). `stored`: a subscription's
    geoQ read again, taken as it was accepted (parse_georel)."""
    parts = (georel, geometry, coordinates, geoproperty)
    if all(p is None for p in parts):
        return None
    if any(p in (None, "", []) for p in parts[:3]):
        raise BadRequestData("geoQ needs georel, geometry and coordinates together")
    assert georel is not None and geometry is not None and coordinates is not None
    rel, max_d, min_d = parse_georel(georel, stored=stored)
    geom, geojson = parse_geometry(geometry.strip(), coordinates, stored=stored)
    prop = DEFAULT_GEOPROPERTY if geoproperty is None else geoproperty.strip()
    if not prop:
        raise BadRequestData("geoproperty must not be empty: name a GeoProperty, or leave it out")
    if _BAD_NAME_RE.search(prop):
        raise BadRequestData(f"invalid geoproperty {shown(geoproperty)}")
    return GeoQuery(rel, geom, geojson, prop, max_d, min_d)


def target_shape(geometry_geojson: Any) -> BaseGeometry | None:
    """A stored GeoJSON geometry as a valid 2D shape, cut where it crosses the antimeridian, or
    None if it is not usable (one too large or too intricate to check, which the hub no longer
    stores, included)."""
    if not isinstance(geometry_geojson, dict):
        return None
    try:
        n = positions(geometry_geojson)
        if n > MAX_VERTICES:
            return None
        geom = short_way(geometry_shape(geometry_geojson))
        if geom.is_empty:
            return None
        if n <= SMALL:  # most city geometries: checked directly, as cheaply as looked up
            return geom if geom.is_valid else made_valid(geom)
        # a large one is checked (and repaired, if it must be) once per distinct geometry
        return stored_usable(geom, orjson.dumps(geometry_geojson))
    except Exception:  # stored data of any shape must not break a query
        return None


def geo_matches(query: GeoQuery, geometry_geojson: dict[str, Any]) -> bool:
    """Whether a stored geometry satisfies the geoQ (near distances in metres)."""
    xy = _plain_xy(geometry_geojson)
    if xy is not None:
        found = _point_matches(query, *xy)
        if found is not None:
            return found
    return shape_matches(query, geometry_geojson)


def _plain_xy(geometry_geojson: Any) -> tuple[float, float] | None:
    """(lon, lat) of a stored Point with finite coordinates, else None."""
    if not isinstance(geometry_geojson, dict) or geometry_geojson.get("type") != "Point":
        return None
    coords = geometry_geojson.get("coordinates")
    if not isinstance(coords, list) or not 2 <= len(coords) <= 3:
        return None
    x, y = coords[0], coords[1]
    if type(x) not in (int, float) or type(y) not in (int, float):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return float(x), float(y)


def _point_matches(query: GeoQuery, x: float, y: float) -> bool | None:
    """The relation for a stored point, without building a shape: most city geometries are
    points, and a city-wide query tests every one (3 µs instead of 11). None: not covered."""
    ref, rel = query.geometry, query.georel
    if rel == "within":  # a point lies within what contains it (a boundary point does not)
        return bool(shapely.contains_xy(ref, x, y))
    if rel == "intersects":
        return bool(shapely.intersects_xy(ref, x, y))
    if rel == "disjoint":
        return not shapely.intersects_xy(ref, x, y)
    if rel == "near":
        if ref.geom_type == "Point":
            d = 0.0 if (ref.x, ref.y) == (x, y) else point_distance_m(ref.x, ref.y, x, y)
        else:  # a street or a district: measured in the plane the reference was drawn in
            projected = query.projected
            assert projected is not None
            if projected.beyond(x, y):  # farther than maxDistance (or minDistance)
                return query.max_distance is None
            d = 0.0 if shapely.intersects_xy(ref, x, y) else projected.distance_xy(x, y)
        return _within_distance(query, d)
    return None


def _within_distance(query: GeoQuery, d: float) -> bool:
    """near's test of a distance in metres: up to maxDistance, or from minDistance on."""
    if query.max_distance is not None:
        return d <= query.max_distance
    return query.min_distance is not None and d >= query.min_distance


def shape_matches(query: GeoQuery, geometry_geojson: dict[str, Any]) -> bool:
    """geo_matches for any stored geometry, through a shapely shape."""
    target = target_shape(geometry_geojson)
    if target is None:
        return False
    ref = query.geometry
    rel = query.georel
    try:
        if rel == "near":
            assert query.projected is not None
            d = 0.0 if ref.intersects(target) else query.projected.distance_m(target)
            return _within_distance(query, d)
        predicate = {
            "within": target.within,
            "contains": target.contains,
            "intersects": target.intersects,
            "equals": target.equals,
            "disjoint": target.disjoint,
            "overlaps": target.overlaps,
        }[rel]
        return bool(predicate(ref))
    except shapely.errors.ShapelyError:
        return False
