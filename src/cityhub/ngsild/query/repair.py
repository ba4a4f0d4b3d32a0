"""Invalid polygons made valid at a bounded cost: the repair grows with the crossings of the
rings, and a few hundred vertices that all cross each other took minutes and gigabytes."""

from __future__ import annotations

import functools

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

# Edge crossings a repair may face: GEOS's "structure" repair of 10,000 takes ~0.1 s, and a
# real boundary with a few self-touching rings has a handful.
MAX_CROSSINGS = 10_000
_CHUNK = 64  # segments tested per STRtree query, so one query's pairs stay small


def crossings_over(geom: BaseGeometry, limit: int = MAX_CROSSINGS) -> bool:
    """Whether the rings of a (multi)polygon cross each other at more than `limit` points.

    Counts the pairs of ring segments that touch, leaving out each segment's next one,
    a chunk at a time, and stops as soon as the count passes the limit.
    """
    rings = shapely.get_rings(shapely.get_parts(geom))
    segments = []
    for ring in rings:
        xy = shapely.get_coordinates(ring)
        segments.append(np.stack([xy[:-1], xy[1:]], axis=1))
    if not segments:
        return False
    lines = shapely.linestrings(np.concatenate(segments))
    tree = shapely.STRtree(lines)
    count = 0
    for lo in range(0, len(lines), _CHUNK):
        left, right = tree.query(lines[lo : lo + _CHUNK], predicate="intersects")
        count += int(np.count_nonzero(right > left + lo + 1))
        if count > limit:
            return True
    return False


def made_valid(geom: BaseGeometry) -> BaseGeometry | None:
    """The geometry itself when valid, its repair when that is affordable, else None."""
    if geom.is_valid:
        return geom
    if geom.geom_type in ("Polygon", "MultiPolygon") and crossings_over(geom):
        return None
    try:
        return shapely.make_valid(geom, method="structure")
    except shapely.errors.GEOSException:  # e.g. out of memory
        return None


@functools.lru_cache(maxsize=256)
def made_valid_from_json(text: str) -> BaseGeometry | None:
    """made_valid of a stored GeoJSON geometry, by its JSON text: an entity's invalid polygon
    is repaired once, not on every write a geoQ subscription checks."""
    geom = shapely.force_2d(shapely.from_geojson(text))
    return None if geom.is_empty else made_valid(geom)


__all__ = ["MAX_CROSSINGS", "crossings_over", "made_valid", "made_valid_from_json"]
