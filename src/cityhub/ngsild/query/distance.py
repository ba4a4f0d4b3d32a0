"""`near` distances in metres on WGS84: the geodesic between two points, and the local plane in
which the points of two geometries nearest each other are found (decision 051)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from cityhub.ngsild.query.antimeridian import folded

# WGS84 ellipsoid.
_A = 6378137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)
# Points less than this many degrees apart in longitude and latitude are measured on a plane
# with the radii of their mid-latitude: within 1e-5 of the geodesic, poles included, at a
# third of the cost of the formula used beyond it.
FLAT_SPAN = 0.5
# A geometry (with the distance asked for around it) reaching past this latitude is measured
# in a plane around the pole: there meridians meet, which a lon/lat plane cannot show.
POLAR = 80.0
# The longest edge, in degrees, of a geometry drawn in the polar plane: edges are straight in
# longitude/latitude (RFC 7946 3.1.1) and bow around the pole in that plane (an edge 0.15°
# long climbing 0.03° at 86°N lies 2 m off its chord; 0.13 m in pieces of this length).
POLAR_EDGE = 0.05


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and latitude at a latitude on the WGS84 ellipsoid."""
    phi = math.radians(lat)
    w = 1 - _E2 * math.sin(phi) ** 2
    prime_vertical = _A / math.sqrt(w)
    meridional = _A * (1 - _E2) / w**1.5
    return math.radians(prime_vertical * math.cos(phi)), math.radians(meridional)


def wrap(dlon: Any) -> Any:
    """Longitude differences folded into [-180, 180)."""
    return (dlon + 180.0) % 360.0 - 180.0


def point_distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance between two points: within 1e-5 of it everywhere but next to the
    antipode (3e-4 there). Close points on a plane with their mid-latitude's radii; farther
    ones, and those on either side of a pole, by Lambert's formula, which no longitude fools
    (a flat earth made 111.7 km across the South Pole 175 km)."""
    dlon = wrap(lon2 - lon1)
    dlat = lat2 - lat1
    if abs(dlon) <= FLAT_SPAN and abs(dlat) <= FLAT_SPAN:
        kx, ky = metres_per_degree((lat1 + lat2) / 2)
        return math.hypot(dlon * kx, dlat * ky)
    return _lambert(math.radians(dlon), math.radians(lat1), math.radians(lat2))


def _lambert(dlon: float, phi1: float, phi2: float) -> float:
    """Lambert's ellipsoidal correction of the great-circle angle between reduced latitudes."""
    b1 = math.atan2((1 - _F) * math.sin(phi1), math.cos(phi1))
    b2 = math.atan2((1 - _F) * math.sin(phi2), math.cos(phi2))
    half_db = (b2 - b1) / 2
    s_db, s_dl = math.sin(half_db), math.sin(dlon / 2)
    h = s_db * s_db + math.cos(b1) * math.cos(b2) * s_dl * s_dl  # haversine of the angle
    if h <= 0.0:
        return 0.0
    sigma = 2 * math.asin(min(1.0, math.sqrt(h)))
    mid = (b1 + b2) / 2
    s_sigma = math.sin(sigma)
    x = (sigma - s_sigma) * (math.sin(mid) * math.cos(half_db)) ** 2 / (1 - h) if h < 1 else 0.0
    y = (sigma + s_sigma) * (math.cos(mid) * s_db) ** 2 / h
    return _A * (sigma - _F / 2 * (x + y))


Box = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat


def reach_box(bounds: Box, dist: float) -> Box | None:
    """The lon/lat box holding every point within dist metres of a geometry with these bounds,
    or None when one box cannot follow that reach.

    The bounds widen by the distance: in latitude, and in longitude over the shortest degree of
    longitude in the box, at the latitude nearest the pole that it reaches (a geodesic from a
    point to one within dist never leaves those latitudes, and crosses its degrees of
    longitude no shorter). A box that reaches a pole or wraps past the antimeridian cannot
    follow the circle: then there is no box.
    """
    minx, miny, maxx, maxy = bounds
    if not dist:
        return bounds
    dlat = dist / 111_000.0 * 1.01
    polar = max(abs(miny - dlat), abs(maxy + dlat))
    if polar >= 90:
        return None
    dlon = dist / (111_320.0 * math.cos(math.radians(polar))) * 1.01
    if minx - dlon < -180 or maxx + dlon > 180:
        return None  # the circle wraps past the antimeridian, where one box cannot follow
    return minx - dlon, miny - dlat, maxx + dlon, maxy + dlat


@dataclass(frozen=True, slots=True)
class Plane:
    """A local plane around a geometry, in metres: longitude and latitude scaled by the radii
    at its origin's latitude, or, near a pole (`pole` 1 north, -1 south), distances from the
    pole along each meridian. Nearest points are found in it; distances are then measured
    between the real points they stand for."""

    lon0: float
    lat0: float
    kx: float
    ky: float
    pole: int = 0

    @classmethod
    def around(cls, geom: BaseGeometry, reach_m: float = 0.0) -> Plane:
        """The plane for a geometry and whatever lies within reach_m of it."""
        origin = geom if geom.geom_type == "Point" else geom.representative_point()
        _, miny, _, maxy = geom.bounds
        dlat = reach_m / 110_000.0
        if max(maxy + dlat, -(miny - dlat)) > POLAR:
            pole = 1 if maxy + dlat >= -(miny - dlat) else -1
            return cls(0.0, 90.0 * pole, 0.0, metres_per_degree(90.0)[1], pole)
        kx, ky = metres_per_degree(origin.y)
        return cls(origin.x, origin.y, kx, ky)

    def forward(self, geom: BaseGeometry) -> BaseGeometry:
        """A lon/lat geometry drawn in the plane (a Point by forward_xy, the same arithmetic
        without numpy's arrays: a third of the cost of each stored `near` subscription)."""
        if self.pole:
            geom = shapely.segmentize(geom, POLAR_EDGE)
        elif geom.geom_type == "Point" and not geom.is_empty:
            return shapely.Point(self.forward_xy(geom.x, geom.y))
        else:  # kept whole where it does not reach past the far side of the globe from lon0
            flat = shapely.transform(geom, self._offsets)
            minx, _, maxx, _ = flat.bounds
            half = 180.0 * self.kx
            return flat if -half <= minx and maxx <= half else folded(flat, half)
        return shapely.transform(geom, self._forward_array)

    def _offsets(self, xy: np.ndarray) -> np.ndarray:
        """Positions in the lon/lat plane, unfolded: each longitude taken from lon0 as it
        lies, so an edge keeps its length; folded() cuts one that crosses the far side
        (wrapping each position alone drew an edge across it round the plane's middle)."""
        return np.column_stack(((xy[:, 0] - self.lon0) * self.kx, (xy[:, 1] - self.lat0) * self.ky))

    def _forward_array(self, xy: np.ndarray) -> np.ndarray:
        """Positions in the polar plane."""
        rho = (90.0 - self.pole * xy[:, 1]) * self.ky
        lam = np.radians(xy[:, 0])
        return np.column_stack((rho * np.sin(lam), -self.pole * rho * np.cos(lam)))

    def forward_xy(self, x: float, y: float) -> tuple[float, float]:
        """One lon/lat point in the plane."""
        if self.pole:
            rho = (90.0 - self.pole * y) * self.ky
            lam = math.radians(x)
            return rho * math.sin(lam), -self.pole * rho * math.cos(lam)
        return wrap(x - self.lon0) * self.kx, (y - self.lat0) * self.ky

    def inverse_xy(self, px: float, py: float) -> tuple[float, float]:
        """The lon/lat point a point of the plane stands for."""
        if self.pole:
            lon = math.degrees(math.atan2(px, -self.pole * py))
            return lon, self.pole * (90.0 - math.hypot(px, py) / self.ky)
        return px / self.kx + self.lon0, py / self.ky + self.lat0


@dataclass(frozen=True, slots=True)
class Projected:
    """A geometry drawn once in its plane: a geoQ's reference, measured against every
    candidate without drawing it again (that cost ~100 µs a candidate)."""

    plane: Plane
    shape: BaseGeometry
    reach: Box | None  # every point within the distance asked for lies in it

    @classmethod
    def of(cls, geom: BaseGeometry, reach_m: float = 0.0) -> Projected:
        plane = Plane.around(geom, reach_m)
        reach = reach_box(geom.bounds, reach_m) if reach_m else None
        return cls(plane, plane.forward(geom), reach)

    def beyond(self, x: float, y: float) -> bool:
        """Whether a lon/lat point lies surely farther than the distance asked for: outside
        the reach, tested before anything is drawn or measured."""
        box = self.reach
        return box is not None and not (box[0] <= x <= box[2] and box[1] <= y <= box[3])

    def distance_m(self, target: BaseGeometry) -> float:
        """Distance to a lon/lat geometry that it does not touch."""
        plane = self.plane
        pa, pb = nearest_points(self.shape, plane.forward(target))
        return point_distance_m(*plane.inverse_xy(pa.x, pa.y), *plane.inverse_xy(pb.x, pb.y))

    def distance_xy(self, x: float, y: float) -> float:
        """Distance to a lon/lat point that it does not touch: from the point itself to the
        real point that stands nearest it in the plane."""
        near = shapely.shortest_line(self.shape, shapely.Point(self.plane.forward_xy(x, y)))
        ax, ay = near.coords[0]
        return point_distance_m(*self.plane.inverse_xy(ax, ay), x, y)


def distance_m(a: BaseGeometry, b: BaseGeometry) -> float:
    """Shortest distance in metres between lon/lat geometries (0 when they touch)."""
    if a.intersects(b):
        return 0.0
    return Projected.of(a).distance_m(b)
