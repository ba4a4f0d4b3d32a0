"""`near` distances on WGS84 everywhere, the poles included (decision 051), and a geoQ's
reference drawn in its plane once per query, not once per candidate."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest
import shapely

from cityhub.ngsild.query.distance import Projected, point_distance_m
from cityhub.ngsild.query.geo import GeoQuery, geo_matches, parse_geoq
from test_query_geo import vincenty


def q(georel: str, geometry: str, coordinates: Any) -> GeoQuery:
    gq = parse_geoq(georel, geometry, coordinates, None)
    assert gq is not None
    return gq


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def test_known_distances_at_the_poles() -> None:
    """A flat earth made A-B 175.4 km and (0,89.9)-(180,89.9) 35.1 km."""
    a, b = (10, -89.5), (-170, -89.5)  # both 55.8 km from the South Pole, on either side
    assert point_distance_m(*a, *b) == pytest.approx(111_693.95, rel=1e-6)
    assert point_distance_m(0, 89.9, 180, 89.9) == pytest.approx(22_338.80, rel=1e-6)
    for lon in (0, 10, 90, -170, 180):
        assert point_distance_m(lon, -90, *a) == pytest.approx(55_846.98, rel=1e-6)
    assert point_distance_m(0, 90, 0, -90) == pytest.approx(20_003_931.46, rel=1e-6)


def test_distances_match_the_geodesic_everywhere() -> None:
    """Any two points, from a metre to half the globe apart, within 1e-5 of Vincenty's
    geodesic (next to the antipode, where Vincenty's own series fails, left out)."""
    rnd = random.Random(3)
    for _ in range(3000):
        lon, lat = rnd.uniform(-180, 180), rnd.uniform(-90, 90)
        span = rnd.choice([1e-4, 0.01, 0.4, 0.6, 5, 60, 150])
        lon2 = lon + rnd.uniform(-span, span)
        lat2 = max(-90.0, min(90.0, lat + rnd.uniform(-span, span)))
        oracle = vincenty(lon, lat, lon2, lat2)
        if oracle < 1 or oracle > 19_000_000:
            continue
        assert point_distance_m(lon, lat, lon2, lat2) == pytest.approx(oracle, rel=1e-5)


@pytest.mark.parametrize("pole_lon", [0, 90, -170, 180])
def test_near_a_pole_does_not_depend_on_the_longitude_naming_it(pole_lon: float) -> None:
    near = q("near;maxDistance==60000", "Point", [pole_lon, -90])
    assert geo_matches(near, point(10, -89.5))
    assert geo_matches(near, point(-170, -89.5))
    assert not geo_matches(near, point(-170, -89.4))  # 67 km
    circle = {"type": "LineString", "coordinates": [[0, -89.5], [90, -89.5], [180, -89.5]]}
    assert geo_matches(near, circle)
    assert not geo_matches(q("near;maxDistance==55000", "Point", [pole_lon, -90]), circle)


def test_near_across_a_pole_measures_the_short_way() -> None:
    """B is 111.7 km from A over the pole: within 120 km, and not 150 km or more away."""
    a = [10, -89.5]
    assert geo_matches(q("near;maxDistance==120000", "Point", a), point(-170, -89.5))
    assert not geo_matches(q("near;minDistance==150000", "Point", a), point(-170, -89.5))
    line = q("near;maxDistance==120000", "LineString", [a, [20, -89.5]])
    assert geo_matches(line, point(-170, -89.5))


def _oracle(line: list[list[float]], x: float, y: float) -> float:
    """Distance from a point to a lon/lat-straight polyline, densified and measured by Vincenty."""
    best = math.inf
    for (x1, y1), (x2, y2) in itertools.pairwise(line):
        for i in range(2001):
            t = i / 2000
            best = min(best, vincenty(x, y, x1 + (x2 - x1) * t, y1 + (y2 - y1) * t))
    return best


@pytest.mark.parametrize("lat", [48.85, -33.9, 70.0, 86.0])
def test_a_point_to_a_street_matches_the_geodesic(lat: float) -> None:
    """Measured from the point to the nearest point of the reference drawn in its plane."""
    rnd = random.Random(int(lat))
    line = [[2.2, lat], [2.35, lat + 0.03], [2.5, lat - 0.01]]
    projected = Projected.of(shapely.LineString(line), 5000)
    for _ in range(12):
        x, y = rnd.uniform(2.1, 2.6), lat + rnd.uniform(-0.05, 0.05)
        oracle = _oracle(line, x, y)
        assert projected.distance_xy(x, y) == pytest.approx(oracle, rel=2e-3, abs=1.0)


def test_the_reference_is_drawn_once_per_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each candidate drew the reference (and itself) in the plane again: ~100 µs each, against
    ~5 for a Point reference. Now a stored point is measured without a shape being drawn."""
    street = q("near;maxDistance==2000", "LineString", [[2.2, 48.83], [2.35, 48.86], [2.5, 48.84]])
    drawn: list[int] = []
    real = shapely.transform
    monkeypatch.setattr(shapely, "transform", lambda *a, **k: drawn.append(1) or real(*a, **k))
    rnd = random.Random(5)
    hits = 0
    for _ in range(200):
        hits += geo_matches(street, point(2.2 + rnd.random() * 0.3, 48.8 + rnd.random() * 0.1))
    assert 0 < hits < 200
    assert drawn == []


def test_a_continental_min_distance_keeps_the_references_own_plane() -> None:
    """A minDistance reaches every latitude; the plane is chosen by the reference alone, so a
    street at 40°N is not drawn around the pole (14 % out along its parallels)."""
    street = q("near;minDistance==6000000", "LineString", [[-3.70, 40.41], [-3.69, 40.42]])
    assert street.projected is not None and street.projected.plane.pole == 0
    for lon, lat in ((-74.0, 40.7), (37.6, 55.75), (139.7, 35.7), (2.35, 48.85)):
        far = vincenty(-3.70, 40.41, lon, lat) > 6_000_000 * 1.01
        assert geo_matches(street, point(lon, lat)) == far, (lon, lat)
