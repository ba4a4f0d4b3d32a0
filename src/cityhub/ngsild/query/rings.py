"""Invalid polygons the hub refuses rather than repairs (decision 088): a ring that encloses
no area, a hole that lies outside its exterior ring, and a polygon too tangled to repair.
GEOS's repair turned the first into a line or a point and the second into a second area where
the client drew a hole; the third was stored and then matched no geoQ. Other invalid polygons
(a self-intersecting ring, overlapping parts) are kept and matched as GEOS repairs them."""

from __future__ import annotations

import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from cityhub.ngsild.query.repair import Unusable, ring_vertices, usable


def check_rings(geom: BaseGeometry) -> None:
    """Unusable, saying which ring and where, for a polygon the hub would have to guess at.
    A valid geometry costs GEOS's validity check only (that of a geometry without rings,
    nothing)."""
    if not ring_vertices(geom) or shapely.is_valid(geom):
        return
    usable(geom)  # too tangled to repair: Unusable, before any ring is repaired on its own
    polygons = [p for p in shapely.get_parts(shapely.get_parts(geom)) if p.geom_type == "Polygon"]
    several = len(polygons) > 1
    for k, polygon in enumerate(polygons, 1):
        shell = _area(polygon.exterior.coords)
        for r, ring in enumerate((polygon.exterior, *polygon.interiors), 1):
            where = f"{f'polygon {k}, ' if several else ''}ring {r} (from {_first(ring)})"
            area = shell if r == 1 else _area(ring.coords)
            if area.area == 0:
                raise Unusable(
                    f"{where} encloses no area: its positions lie on one line or repeat one "
                    "point; a line is a LineString, a place a Point"
                )
            if r > 1 and shell.intersection(area).area == 0:
                raise Unusable(
                    f"{where} lies outside the exterior ring, where a hole cannot be (RFC "
                    "7946 3.1.6); separate areas are the polygons of a MultiPolygon"
                )


def _area(coords: object) -> BaseGeometry:
    """The area a ring encloses, however it crosses itself (GEOS's structure repair)."""
    return shapely.make_valid(Polygon(coords), method="structure")


def _first(ring: BaseGeometry) -> list[float]:
    """A ring's first position, as a client wrote it (integers without a fraction)."""
    x, y = ring.coords[0][:2]
    return [int(v) if v == int(v) else v for v in (x, y)]
