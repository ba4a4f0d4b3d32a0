"""Geometries a geoQ can afford to check: bounded positions and edge pairs, for query and
stored geometries alike, and each large stored geometry checked once."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import httpx
import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query import repair
from cityhub.ngsild.query.geo import MAX_VERTICES, geo_matches, parse_geoq, positions
from cityhub.ngsild.query.repair import tangle
from conftest import BASE, create, problem


def ring(n: int, lon: float = 10.0, lat: float = 50.0, r: float = 0.05) -> list[list[float]]:
    """A closed, valid ring of n positions (n - 1 distinct vertices): a jagged boundary."""
    rnd = random.Random(n)
    k, out = 1.0, []
    for i in range(n - 1):
        k = max(0.3, min(1.7, k + rnd.uniform(-0.05, 0.05)))
        a = 2 * math.pi * i / (n - 1)
        out.append([lon + r * k * math.cos(a), lat + r * k * math.sin(a)])
    return [*out, out[0]]


def zigzag(n: int, crossing: bool = False) -> list[list[float]]:
    """A closed ring of about n positions whose long edges all lie in each other's bounding
    box without crossing: valid, but GEOS's check of 10,000 of them took 4 s (with one
    crossing, the old repair bound took 49 s to count)."""
    out: list[list[float]] = []
    x, w = 0.0, 0.0001
    while len(out) < n - 3:
        out += [[x, 0.0], [x + 1, 1.0], [x + 1 + w, 1.0], [x + w, 0.0]]
        x += 2 * w
    out = [*out[: n - 3], [x + 0.5, -0.1], [-0.1, -0.1]]
    if crossing:
        out += [[0.5, 1.1], [0.5, -0.2]]
    return [*out, out[0]]


def test_positions_are_counted_from_array_lengths() -> None:
    assert positions({"type": "Point", "coordinates": [1, 2]}) == 1
    assert positions({"type": "Polygon", "coordinates": [ring(50), ring(20)]}) == 70
    multi = {"type": "MultiPolygon", "coordinates": [[ring(50)], [ring(30), ring(5)]]}
    assert positions(multi) == 85
    collection = {"type": "GeometryCollection", "geometries": [multi, multi]}
    assert positions(collection) == 170
    assert positions({"type": "Polygon", "coordinates": "x"}) == 1


def test_a_query_geometry_past_the_vertex_bound_is_refused() -> None:
    """A 200,000-vertex query polygon held a reader (and the hub with it) for a minute."""
    assert parse_geoq("within", "Polygon", json.dumps([ring(MAX_VERTICES)]), None)
    with pytest.raises(BadRequestData, match="10,001 positions, more than the 10,000"):
        parse_geoq("within", "Polygon", json.dumps([ring(MAX_VERTICES + 1)]), None)
    points = [[0, i * 1e-4] for i in range(MAX_VERTICES + 1)]
    with pytest.raises(BadRequestData, match="positions"):
        parse_geoq("intersects", "MultiPoint", points, None)


@pytest.mark.parametrize("crossing", [False, True])
def test_a_query_polygon_too_intricate_to_check_is_refused(crossing: bool) -> None:
    with pytest.raises(BadRequestData, match="too intricate to check"):
        parse_geoq("within", "Polygon", json.dumps([zigzag(2000, crossing)]), None)
    assert parse_geoq("within", "Polygon", json.dumps([zigzag(300, crossing)]), None)


def test_a_stored_geometry_too_large_or_too_intricate_matches_nothing() -> None:
    """Such rows were written before the bounds: a query skips them instead of stalling."""
    inside = parse_geoq("intersects", "Point", "[10, 50]", None)
    assert inside is not None
    assert geo_matches(inside, {"type": "Polygon", "coordinates": [ring(MAX_VERTICES)]})
    assert not geo_matches(inside, {"type": "Polygon", "coordinates": [ring(MAX_VERTICES + 1)]})
    near = parse_geoq("intersects", "Point", "[0.5, 0.5]", None)
    assert near is not None
    assert geo_matches(near, {"type": "Polygon", "coordinates": [zigzag(300)]})
    assert not geo_matches(near, {"type": "Polygon", "coordinates": [zigzag(2000)]})


def test_a_large_stored_polygon_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every geoQ over a stored polygon ran GEOS's validity check on it again."""
    calls: list[str] = []
    for name in ("is_valid", "is_valid_reason"):
        real = getattr(shapely, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(shapely, name, counted)
    real_property = BaseGeometry.is_valid

    def counted_property(geom: BaseGeometry) -> bool:
        calls.append("BaseGeometry.is_valid")
        return bool(real_property.__get__(geom))

    monkeypatch.setattr(BaseGeometry, "is_valid", property(counted_property))
    repair._verdicts.clear()
    stored = {"type": "Polygon", "coordinates": [ring(1000, lon=20.0)]}
    query = parse_geoq("intersects", "Point", "[20, 50]", None)
    assert query is not None
    calls.clear()
    for _ in range(3):
        assert geo_matches(query, stored)
    assert len(calls) == 1


def test_a_large_invalid_stored_polygon_is_repaired_once() -> None:
    repair._verdicts.clear()
    shell = ring(1000, lon=30.0)
    shell[10], shell[11] = shell[11], shell[10]  # a bow
    stored = {"type": "Polygon", "coordinates": [shell]}
    query = parse_geoq("intersects", "Point", "[30, 50]", None)
    assert query is not None
    assert geo_matches(query, stored)
    assert geo_matches(query, stored)


def test_tangle_counts_touching_edge_pairs_as_shapely_does() -> None:
    for seed in range(5):
        rnd = random.Random(seed)
        pts = [[rnd.uniform(0, 1), rnd.uniform(0, 1)] for _ in range(40)]
        poly = shapely.Polygon([*pts, pts[0]])
        xy = shapely.get_coordinates(poly.exterior)
        edges = [shapely.LineString(xy[i : i + 2]) for i in range(len(xy) - 1)]
        expected = sum(
            1
            for i in range(len(edges))
            for j in range(i + 2, len(edges))
            if edges[i].intersects(edges[j])
        )
        assert tangle(poly).crossings == expected


def sensor(geometry: dict[str, Any], eid: str = "urn:ngsi-ld:Area:a1") -> dict[str, Any]:
    return {"id": eid, "type": "Area", "location": {"type": "GeoProperty", "value": geometry}}


async def test_a_stored_geometry_past_the_bounds_is_refused_when_written(
    client: httpx.AsyncClient,
) -> None:
    """One 200,000-vertex polygon made every later geoQ on its type take 39 s."""
    await create(client, sensor({"type": "Polygon", "coordinates": [ring(MAX_VERTICES)]}))
    too_big = {"type": "Polygon", "coordinates": [ring(MAX_VERTICES + 1)]}
    body = problem(await client.post(f"{BASE}/entities", json=sensor(too_big, "urn:x:2")), 400)
    assert "10,001 positions" in body["detail"]
    halves = {
        "type": "GeometryCollection",
        "geometries": [{"type": "Polygon", "coordinates": [ring(6000)]}] * 2,
    }
    problem(await client.post(f"{BASE}/entities", json=sensor(halves, "urn:x:3")), 400)
    intricate = {"type": "Polygon", "coordinates": [zigzag(2000)]}
    body = problem(await client.post(f"{BASE}/entities", json=sensor(intricate, "urn:x:4")), 400)
    assert "too intricate" in body["detail"]
    for eid in ("urn:x:2", "urn:x:3", "urn:x:4"):
        assert (await client.get(f"{BASE}/entities/{eid}")).status_code == 404
