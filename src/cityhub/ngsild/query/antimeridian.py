"""Edges spanning more than 180° of longitude. RFC 7946 reads an edge as a straight line in
longitude and latitude and asks (3.1.9) that a geometry crossing the antimeridian be cut there.
A new geoQ geometry with such an edge is refused (decision 088, addendum): a box drawn across
it uncut was a band round the rest of the world. A stored one, written as a device sent it, is
matched as if cut (`short_way`, decision 099). An edge with both ends on the antimeridian
([-180, y] to [180, y], the world's own edge) is neither."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from cityhub.ngsild.errors import BadRequestData

_POINTS = ("Point", "MultiPoint")


def check_edges(geom: BaseGeometry) -> None:
    """BadRequestData naming the first edge past 180° of longitude, and how to say it."""
    if geom.geom_type in _POINTS:
        return
    parts = shapely.get_parts(geom)
    lines = np.concatenate(
        [shapely.get_rings(p) if p.geom_type == "Polygon" else [p] for p in parts]
    )
    for line in lines:
        x = shapely.get_coordinates(line)[:, 0]
        span = np.abs(np.diff(x))
        long = (span > 180) & ~((np.abs(x[:-1]) == 180) & (np.abs(x[1:]) == 180))
        if long.any():
            i = int(np.argmax(long))
            xy = shapely.get_coordinates(line)
            ends = [[_plain(v) for v in xy[j]] for j in (i, i + 1)]
            raise BadRequestData(
                f"invalid {geom.geom_type}: the edge from {ends[0]} to {ends[1]} spans more "
                "than 180° of longitude, which GeoJSON reads the long way round the world: "
                "cut a geometry that crosses the antimeridian in two there (RFC 7946 3.1.9, "
                "a Multi- geometry), or add a position midway if the long way is meant"
            )


def _plain(v: float) -> float | int:
    """A coordinate as a client wrote it (integers without a fraction)."""
    return int(v) if v == int(v) else float(v)


def short_way(geom: BaseGeometry) -> BaseGeometry:
    """A stored geometry as matched: one whose edges cross the antimeridian (a vessel's track
    written as it came) cut there into a Multi- geometry, as RFC 7946 3.1.9 would have it
    written; others as they are. Read as written, [[179,0],[-179,0]] spanned the globe. A
    ring that does not close once unwrapped goes round a pole, which GeoJSON cannot say
    without the world's edge: that geometry, like one that cannot be cut, stays as written."""
    if not crosses(geom):
        return geom
    parts = shapely.get_parts(shapely.get_parts(geom))  # a collection's Multi- members too
    unwrapped = [_unwrapped(p) for p in parts]
    if any(u is None for u in unwrapped):
        return geom
    try:
        cut = folded(shapely.union_all(unwrapped))
    except shapely.errors.ShapelyError:
        return geom
    return geom if cut.is_empty else cut


def folded(geom: BaseGeometry, half: float = 180.0) -> BaseGeometry:
    """A geometry whose longitudes (x) may reach a copy of the globe on either side, cut where
    it leaves [-half, half] and each piece moved back by a turn (2 * half: 360°, or that many
    metres in a plane scaled by longitude)."""
    turn = 2 * half
    pieces = [
        shapely.transform(
            shapely.intersection(geom, shapely.box(lo, -1e12, lo + turn, 1e12)), _by(dx)
        )
        for lo, dx in ((-half - turn, turn), (-half, 0.0), (half, -turn))
    ]
    return shapely.union_all([p for p in pieces if not p.is_empty])


def crosses(geom: BaseGeometry) -> bool:
    """Whether a geometry has an edge across the antimeridian (short_way cuts it)."""
    minx, _, maxx, _ = geom.bounds
    if not maxx - minx > 180 or geom.geom_type in _POINTS:  # no edge can span more than 180°
        return False
    parts = shapely.get_parts(shapely.get_parts(geom))
    return any(_crosses(line) for p in parts for line in _lines(p))


def _lines(part: BaseGeometry) -> list[BaseGeometry]:
    return list(shapely.get_rings(part)) if part.geom_type == "Polygon" else [part]


def _crosses(line: BaseGeometry) -> bool:
    """Whether an edge spans more than 180° without lying on the world's edge."""
    x = shapely.get_coordinates(line)[:, 0]
    edge = (np.abs(x[:-1]) == 180) & (np.abs(x[1:]) == 180)
    return bool(((np.abs(np.diff(x)) > 180) & ~edge).any())


def _unwrapped_xy(line: BaseGeometry) -> np.ndarray:
    """A line's positions with each edge past 180° taken the short way (longitudes may leave
    [-180, 180]); edges on the world's edge as written."""
    xy = shapely.get_coordinates(line)
    x = xy[:, 0]
    d = np.diff(x)
    edge = (np.abs(x[:-1]) == 180) & (np.abs(x[1:]) == 180)
    d = np.where(edge, d, np.where(d > 180, d - 360, np.where(d < -180, d + 360, d)))
    return np.column_stack((np.concatenate(([x[0]], x[0] + np.cumsum(d))), xy[:, 1]))


def _unwrapped(part: BaseGeometry) -> BaseGeometry | None:
    """A point, line or polygon unwrapped; None for a ring that no longer closes."""
    if part.geom_type == "Point":
        return part
    if part.geom_type == "LineString":
        return shapely.LineString(_unwrapped_xy(part))
    rings: list[np.ndarray] = []
    for ring in shapely.get_rings(part):
        xy = _unwrapped_xy(ring)
        if xy[0, 0] != xy[-1, 0]:
            return None
        if rings:  # a hole lies in the copy of the globe its shell was unwrapped into
            xy[:, 0] += 360.0 * round((rings[0][0, 0] - xy[0, 0]) / 360.0)
        rings.append(xy)
    return shapely.Polygon(rings[0], rings[1:])


def _by(dx: float) -> Callable[[np.ndarray], np.ndarray]:
    def shift(xy: np.ndarray) -> np.ndarray:
        return xy + np.array([dx, 0.0])

    return shift
