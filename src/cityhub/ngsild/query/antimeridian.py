"""A new geoQ geometry whose edge spans more than 180° of longitude (decision 088, addendum).
RFC 7946 reads an edge as a straight line in longitude and latitude, so a box drawn across
the antimeridian without being cut (3.1.9) was a band round the rest of the world: `within`
it answered every entity but those it was drawn around. Such an edge is refused, unless both
its ends lie on the antimeridian (the world's own edges, [-180, y] to [180, y])."""

from __future__ import annotations

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
