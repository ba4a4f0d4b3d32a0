"""Derive index rows (attr_index, geo) from a stored entity document."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from cityhub.ngsild.entity import CONTENT_KEY

_DATETIME = re.compile(r"^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$")
IndexRow = tuple[str, int, float | None, str | None, str | None]


def scalar_row(value: Any) -> tuple[float | None, str | None, str | None]:
    """How one scalar is indexed: numbers (and booleans as 0/1) in num, strings in txt,
    datetimes also normalised in ts so they compare as times."""
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None, None
    if isinstance(value, int | float):
        return float(value), None, None
    if isinstance(value, str):
        return None, value, norm_datetime(value)
    if isinstance(value, dict) and "@value" in value:
        return scalar_row(value["@value"])
    return None, None, None


def norm_datetime(value: str) -> str | None:
    """The storage-format UTC time of a datetime-looking string, else None."""
    if not _DATETIME.match(value):
        return None
    from cityhub.ngsild.timeutil import format_ts, parse_ts

    try:
        return format_ts(parse_ts(value))
    except Exception:
        return None


def _scalars(inst: dict[str, Any]) -> Iterator[Any]:
    """The comparable scalars of one instance (lists and language maps give several)."""
    content = inst.get(CONTENT_KEY.get(inst["type"], "value"))
    typ = inst["type"]
    if typ == "LanguageProperty" and isinstance(content, dict):
        for v in content.values():
            yield from v if isinstance(v, list) else [v]
    elif isinstance(content, list) and typ != "GeoProperty":
        for v in content:
            if not isinstance(v, dict | list):
                yield v
    elif not isinstance(content, dict) or "@value" in content:
        yield content


def attr_rows(doc: dict[str, Any]) -> Iterator[IndexRow]:
    """(name, seq, num, txt, ts) rows; every attribute has at least one so `exists` is a
    look-up."""
    for name, instances in doc["attrs"].items():
        seq = 0
        for inst in instances:
            for value in _scalars(inst):
                num, txt, ts = scalar_row(value)
                if num is not None or txt is not None:
                    yield name, seq, num, txt, ts
                    seq += 1
        if not seq:
            yield name, 0, None, None, None


def geo_rows(doc: dict[str, Any]) -> Iterator[tuple[str, str, tuple[float, float, float, float]]]:
    """(name, geojson, bbox) for every GeoProperty instance."""
    from shapely.geometry import shape

    for name, instances in doc["attrs"].items():
        for inst in instances:
            if inst["type"] != "GeoProperty":
                continue
            value = inst["value"]
            if value.get("type") == "Point":
                x, y = value["coordinates"][:2]
                yield name, orjson.dumps(value).decode(), (x, x, y, y)
                continue
            geom = shape(value)
            if geom.is_empty:
                continue
            minx, miny, maxx, maxy = geom.bounds
            yield name, orjson.dumps(inst["value"]).decode(), (minx, maxx, miny, maxy)
