"""Derive index rows (attr_index, geo) from a stored entity document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from cityhub.ngsild.query.ast import Value
from cityhub.ngsild.query.evaluate import attribute_targets, geo_value
from cityhub.ngsild.query.qlang import norm_date, norm_datetime, norm_time

IndexRow = tuple[str, int, float | None, str | None, str | None]
Key = tuple[float | None, str | None, str | None]

# seq = target * TARGET + REL (set for a Relationship's target) + element. A target is one
# thing the q evaluator compares (an instance's content; a LanguageProperty instance's
# values in every language together, schema 10); its element 0 row always exists, so `!=`
# can look for a target none of whose rows equal the value within [seq, seq + ELEMENT] of
# each element 0 row.
TARGET = 1 << 32
REL = 1 << 31
ELEMENT = REL - 1
NO_TARGET = -1  # an attribute with nothing to compare: present for `attrs=`, no q target
# ts holds a kind-tagged key for each comparable that is neither a number (num) nor only a
# string (txt): kinds never coerce, so each has its own tag, and within one tag the keys
# order as the evaluator orders the values (normalised dates, times and UTC datetimes).
TS_TAGS = {"datetime": "z", "date": "d", "time": "t", "bool": "b", "null": "n"}
_TEMPORAL = (("datetime", norm_datetime), ("date", norm_date), ("time", norm_time))


# Every integer below this is exactly a double, so SQL's comparison of the stored float with
# such a literal orders them as Python orders the stored value and the literal; from it on,
# doubles skip integers (2^53 + 1 is stored as 2^53), and only the evaluator tells them apart.
EXACT = 2**53


def number(value: int | float) -> float:
    """A number as num holds it; an integer too large for a double is past every double."""
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def ts_key(text: str) -> str | None:
    """The tagged key of a DateTime, Date or Time string, else None."""
    if not text[:1].isdigit():  # each of the three starts with a digit: no regex to try
        return None
    for kind, norm in _TEMPORAL:
        normed = norm(text)
        if normed is not None:
            return TS_TAGS[kind] + normed
    return None


def literal_key(value: Value) -> tuple[str, Any]:
    """The attr_index column a q literal compares with, and the parameter it binds."""
    if value.kind == "number":
        assert isinstance(value.value, int | float)
        return "num", number(value.value)
    if value.kind == "string":
        return "txt", value.value
    if value.kind == "bool":
        return "ts", TS_TAGS["bool"] + ("1" if value.value else "0")
    if value.kind == "null":
        return "ts", TS_TAGS["null"]
    return "ts", TS_TAGS[value.kind] + str(value.norm)


_NUMERIC = (int, float)  # not `int | float`, a union built anew at every call


def item_key(item: Any) -> Key | None:
    """(num, txt, ts) of one compared element, None when it can equal no literal."""
    kind = type(item)  # the JSON parser's own types first, each in one test
    if kind is float:
        return item, None, None
    if kind is str:
        return None, item, ts_key(item)
    if kind is int:
        return number(item), None, None
    if isinstance(item, dict) and "@value" in item:
        item = item["@value"]
    if isinstance(item, bool):
        return None, None, TS_TAGS["bool"] + ("1" if item else "0")
    if isinstance(item, _NUMERIC):
        return number(item), None, None
    if isinstance(item, str):
        return None, item, ts_key(item)
    if item is None:
        return None, None, TS_TAGS["null"]
    return None


_NO_KEY = (None, None, None)  # the element 0 row of a target no literal can equal


def attr_keys(instances: Any, head: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One attribute's rows of attr_rows, each `head` + (seq, num, txt, ts): the writer puts
    the entity's pk and the name's id in front, with no row built twice."""
    found = attribute_targets(instances)
    if not found:
        return [(*head, NO_TARGET, None, None, None)]
    rows = []
    for t, (value, rel) in enumerate(found):
        base = t * TARGET + (REL if rel else 0)
        if not isinstance(value, list):
            rows.append((*head, base, *(item_key(value) or _NO_KEY)))
            continue
        keys = [k for k in map(item_key, value) if k is not None] or [_NO_KEY]
        rows += [(*head, base + i, *key) for i, key in enumerate(keys)]
    return rows


def attr_rows(doc: dict[str, Any]) -> Iterator[IndexRow]:
    """(name, seq, num, txt, ts) rows: one per element of each target the q evaluator sees
    (evaluate.targets), so SQL and evaluator compare the same things; every attribute has
    at least one row, so `exists` is a look-up."""
    for name, instances in doc["attrs"].items():
        yield from attr_keys(instances, (name,))


def index_rows(text: str) -> str:
    """attr_rows of a stored document as a JSON array, for SQL that rebuilds attr_index."""
    return orjson.dumps(list(attr_rows(orjson.loads(text)))).decode()


def geo_rows(doc: dict[str, Any]) -> Iterator[tuple[str, str, tuple[float, float, float, float]]]:
    """(name, geojson, bbox) for every GeoProperty instance."""
    for name, instances in doc["attrs"].items():
        for inst in instances:
            value = geo_value(inst)
            if value is None:
                continue
            if value.get("type") == "Point":
                x, y = value["coordinates"][:2]
                yield name, orjson.dumps(value).decode(), (x, x, y, y)
                continue
            box = geo_box(value)
            if box is not None:
                yield name, orjson.dumps(value).decode(), box


def geo_box(value: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) around every position of a geometry, None for an empty one. A
    polygon's own bounds are its shell's, but GEOS's repair of one with a hole outside the
    shell (stored before decision 088) is an area there too, which a geoQ matches: the box
    must hold it, and a repair never reaches past the positions it was made from."""
    # imported here, past the points: a from-import of a package runs importlib's Python each
    # time, and most geometries are points
    import shapely

    from cityhub.ngsild.query.antimeridian import short_way
    from cityhub.ngsild.query.geo import geometry_shape

    geom = short_way(geometry_shape(value))
    if geom.is_empty:
        return None
    if geom.geom_type in ("Point", "MultiPoint", "LineString", "MultiLineString"):
        minx, miny, maxx, maxy = geom.bounds
    else:
        xy = shapely.get_coordinates(geom)
        (minx, miny), (maxx, maxy) = xy.min(axis=0), xy.max(axis=0)
    return float(minx), float(maxx), float(miny), float(maxy)


def geo_box_text(geojson: str) -> str | None:
    """geo_box of a stored geometry's JSON with a hole or an edge across the antimeridian, as
    a JSON array, for SQL that rebuilds geo_rtree; None for one with neither (its box was
    right) or that it cannot read (its box is left as it is: an upgrade must not fail)."""
    try:
        value = orjson.loads(geojson)
        box = geo_box(value) if _has_holes(value) or _crosses_180(value) else None
    except Exception:
        return None
    return None if box is None else orjson.dumps(box).decode()


def _crosses_180(value: Any) -> bool:
    """Whether a stored geometry has an edge across the antimeridian (its box went the long
    way round before decision 099)."""
    from cityhub.ngsild.query.antimeridian import crosses
    from cityhub.ngsild.query.geo import geometry_shape

    return crosses(geometry_shape(value))


def _has_holes(value: Any) -> bool:
    """Whether a stored geometry has a polygon of more than one ring (told from its arrays)."""
    kind = value.get("type") if isinstance(value, dict) else None
    coords = value.get("coordinates") if isinstance(value, dict) else None
    if kind == "Polygon":
        return isinstance(coords, list) and len(coords) > 1
    if kind == "MultiPolygon":
        return isinstance(coords, list) and any(isinstance(p, list) and len(p) > 1 for p in coords)
    if kind == "GeometryCollection":
        members = value.get("geometries")
        return isinstance(members, list) and any(_has_holes(m) for m in members)
    return False
