"""geoQ parsing and the shapely predicate; near distances checked against a Vincenty oracle."""

from __future__ import annotations

import contextlib
import json
import math
import random
from typing import Any

import pytest

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query.distance import distance_m, point_distance_m
from cityhub.ngsild.query.geo import (
    GeoQuery,
    geo_matches,
    parse_geoq,
    shape_matches,
)
from cityhub.ngsild.subscriptions import parsed_geo
from cityhub.store.sqlite.qsql import prefilter_box


def vincenty(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance on WGS84 (Vincenty inverse), the independent oracle for these tests."""
    a, f = 6378137.0, 1 / 298.257223563
    b = a * (1 - f)
    big_l = math.radians(lon2 - lon1)
    u1 = math.atan((1 - f) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - f) * math.tan(math.radians(lat2)))
    su1, cu1, su2, cu2 = math.sin(u1), math.cos(u1), math.sin(u2), math.cos(u2)
    lam = big_l
    for _ in range(200):
        sl, cl = math.sin(lam), math.cos(lam)
        ss = math.hypot(cu2 * sl, cu1 * su2 - su1 * cu2 * cl)
        if ss == 0:
            return 0.0
        cs = su1 * su2 + cu1 * cu2 * cl
        sig = math.atan2(ss, cs)
        sa = cu1 * cu2 * sl / ss
        c2a = 1 - sa * sa
        c2m = cs - 2 * su1 * su2 / c2a if c2a else 0.0
        cc = f / 16 * c2a * (4 + f * (4 - 3 * c2a))
        prev = lam
        lam = big_l + (1 - cc) * f * sa * (sig + cc * ss * (c2m + cc * cs * (-1 + 2 * c2m * c2m)))
        if abs(lam - prev) < 1e-12:
            break
    u_sq = c2a * (a * a - b * b) / (b * b)
    aa = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
    bb = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
    ds = (
        bb
        * ss
        * (
            c2m
            + bb
            / 4
            * (cs * (-1 + 2 * c2m * c2m) - bb / 6 * c2m * (-3 + 4 * ss * ss) * (-3 + 4 * c2m * c2m))
        )
    )
    return b * aa * (sig - ds)


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


SQUARE = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]


def q(
    georel: str, geometry: str, coordinates: Any, prop: str | None = None, stored: bool = False
) -> GeoQuery:
    coords = coordinates if isinstance(coordinates, str) else json.dumps(coordinates)
    result = parse_geoq(georel, geometry, coords, prop, stored=stored)
    assert result is not None
    return result


# --- parsing ---------------------------------------------------------------------------------


def test_absent_means_no_geo_query() -> None:
    assert parse_geoq(None, None, None, None) is None


@pytest.mark.parametrize(
    "parts",
    [("", "", "", "location"), (None, None, None, "location"), (None, None, None, "")],
)
def test_a_geoproperty_or_empty_parts_alone_are_refused(
    parts: tuple[str | None, str | None, str | None, str | None],
) -> None:
    """Ignored, they widened the query to every entity of the type."""
    with pytest.raises(BadRequestData):
        parse_geoq(*parts)


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates"),
    [("near;maxDistance==1", None, None), (None, "Point", "[1,2]"), ("within", "Polygon", None)],
)
def test_partial_geo_query_is_bad_request(georel: Any, geometry: Any, coordinates: Any) -> None:
    with pytest.raises(BadRequestData):
        parse_geoq(georel, geometry, coordinates, None)


def test_georel_forms() -> None:
    near = q("near;maxDistance==2000", "Point", [2.1, 41.3])
    assert (near.georel, near.max_distance, near.min_distance) == ("near", 2000.0, None)
    far = q("near;minDistance==12.5", "Point", [2.1, 41.3])
    assert (far.georel, far.max_distance, far.min_distance) == ("near", None, 12.5)
    for rel in ("within", "contains", "intersects", "equals", "disjoint", "overlaps"):
        parsed = q(rel, "Polygon", SQUARE)
        assert parsed.georel == rel and parsed.max_distance is None


@pytest.mark.parametrize(
    "georel",
    [
        "near",
        "near;",
        "near;maxDistance=2000",
        "near;maxDistance==-1",
        "near;maxDistance==abc",
        "near;distance==3",
        "near;maxDistance==1;minDistance==2",
        "within;maxDistance==1",
        "nearby",
        "Within",
        "near;maxDistance==1e999",
        # 4.10: PositiveNumber, RFC 8259's number "excluding the number 0"
        "near;maxDistance==0",
        "near;minDistance==0",
        "near;minDistance==0.0",
        "near;maxDistance==1e-400",
        "near;maxDistance==010",
        "near;maxDistance==\uff15",
    ],
)
def test_bad_georel(georel: str) -> None:
    with pytest.raises(BadRequestData):
        parse_geoq(georel, "Point", "[1, 2]", None)


def test_a_stored_distance_is_read_as_it_was_accepted() -> None:
    """A subscription's geoQ stored before 0 was refused still compiles (and notifies)."""
    stored = {"geoQ": {"georel": "near;minDistance==0", "geometry": "Point", "coordinates": [1, 2]}}
    gq = parsed_geo(stored)
    assert gq is not None and gq.min_distance == 0.0
    assert q("near;maxDistance==0.5", "Point", [1, 2]).max_distance == 0.5


@pytest.mark.parametrize(
    ("geometry", "coordinates", "geom_type"),
    [
        ("Point", [2.1, 41.3], "Point"),
        ("Point", [2.1, 41.3, 12.0], "Point"),
        ("MultiPoint", [[2.1, 41.3], [2.2, 41.4]], "MultiPoint"),
        ("LineString", [[2.1, 41.3], [2.2, 41.4]], "LineString"),
        ("MultiLineString", [[[2.1, 41.3], [2.2, 41.4]], [[0, 0], [1, 1]]], "MultiLineString"),
        ("Polygon", SQUARE, "Polygon"),
        ("MultiPolygon", [SQUARE, [[[5, 5], [6, 5], [6, 6], [5, 5]]]], "MultiPolygon"),
    ],
)
def test_geometries(geometry: str, coordinates: Any, geom_type: str) -> None:
    parsed = q("intersects", geometry, coordinates)
    assert parsed.geometry.geom_type == geom_type
    assert not parsed.geometry.has_z
    assert parsed.geojson == {"type": geometry, "coordinates": coordinates}
    assert parsed.geoproperty == "location"


def test_coordinates_may_be_an_array_and_geoproperty_custom() -> None:
    parsed = parse_geoq("within", "Polygon", SQUARE, "observationSpace")
    assert parsed is not None and parsed.geoproperty == "observationSpace"


@pytest.mark.parametrize(
    ("geometry", "coordinates"),
    [
        ("point", "[1, 2]"),
        ("Circle", "[1, 2]"),
        ("GeometryCollection", "[]"),
        ("Point", "1, 2"),
        ("Point", "[1, 2"),
        ("Point", "{}"),
        ("Point", "[1]"),
        ("Point", "[1, 2, 3, 4]"),
        ("Point", '["1", 2]'),
        ("Point", "[true, 2]"),
        ("Point", "[NaN, 2]"),
        ("Point", "[Infinity, 2]"),
        ("Point", "[181, 2]"),
        ("Point", "[1, -91]"),
        ("Point", "[[1, 2]]"),
        ("MultiPoint", "[]"),
        ("MultiPoint", "[1, 2]"),
        ("LineString", "[[1, 2]]"),
        ("MultiLineString", "[]"),
        ("MultiLineString", "[[[1, 2]]]"),
        ("Polygon", "[]"),
        ("Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]"),
        ("Polygon", "[[[0,0],[1,0],[0,0]]]"),
        ("MultiPolygon", "[[[0,0],[1,0],[1,1],[0,0]]]"),
        ("MultiPolygon", "[]"),
        ("Point", "[" * 5000 + "]" * 5000),
    ],
)
def test_bad_geometry(geometry: str, coordinates: str) -> None:
    with pytest.raises(BadRequestData):
        parse_geoq("intersects", geometry, coordinates, None)


@pytest.mark.parametrize(
    ("geometry", "coordinates", "shape"),
    [
        ("Polygon", "[[145,-17],[146,-17],[146,-16],[145,-17]]", "[[[lon, lat], ...]]"),
        ("MultiPolygon", "[[[0,0],[1,0],[1,1],[0,0]]]", "[[[[lon, lat], ...]], ...]"),
    ],
)
def test_a_polygon_one_level_too_shallow_is_named_so(
    geometry: str, coordinates: str, shape: str
) -> None:
    """Four positions given as the rings: "a ring needs 4 positions" sent the user counting."""
    with pytest.raises(BadRequestData) as caught:
        parse_geoq("within", geometry, coordinates, None)
    assert "one array level is missing" in caught.value.detail
    assert shape in caught.value.detail


@pytest.mark.parametrize("prop", ["", "  "])
def test_an_empty_geoproperty_is_refused(prop: str) -> None:
    """It was read as location: the query ran on another attribute than the one asked."""
    with pytest.raises(BadRequestData, match="geoproperty"):
        parse_geoq("within", "Polygon", json.dumps(SQUARE), prop)


@pytest.mark.parametrize("prop", ["loc ation", "a;b", "x=y", "(x)"])
def test_bad_geoproperty(prop: str) -> None:
    with pytest.raises(BadRequestData):
        parse_geoq("within", "Polygon", json.dumps(SQUARE), prop)


def test_fuzz_geoq() -> None:
    rnd = random.Random(99)
    pieces = ["[", "]", ",", "1", "-2.5", "180", "91", '"', "null", "true", "{", "}", " ", "1e400"]
    rels = ["near;maxDistance==10", "near;minDistance==1", "within", "near", "x", ""]
    for _ in range(200):
        coords = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 16)))
        with contextlib.suppress(BadRequestData):
            parse_geoq(
                rnd.choice(rels), rnd.choice(["Point", "Polygon", "LineString"]), coords, None
            )


# --- distances -------------------------------------------------------------------------------


def test_known_distances() -> None:
    # One degree of latitude / longitude on WGS84 at the equator.
    assert point_distance_m(0, 0, 0, 1) == pytest.approx(110574, rel=1e-3)
    assert point_distance_m(0, 0, 1, 0) == pytest.approx(111320, rel=1e-3)
    # Vincenty's own test line, Flinders Peak to Buninyong: 54 972.271 m.
    flinders = (144 + 25 / 60 + 29.52440 / 3600, -(37 + 57 / 60 + 3.72030 / 3600))
    buninyong = (143 + 55 / 60 + 35.38390 / 3600, -(37 + 39 / 60 + 10.15610 / 3600))
    assert point_distance_m(*flinders, *buninyong) == pytest.approx(54972.271, rel=1e-4)
    # Across the antimeridian.
    assert point_distance_m(179.99, 0, -179.99, 0) == pytest.approx(2226.4, rel=1e-3)


def test_city_scale_distances_match_geodesic() -> None:
    rnd = random.Random(5)
    for _ in range(500):
        lat = rnd.uniform(-70, 70)
        lon = rnd.uniform(-180, 180)
        metres = rnd.uniform(5, 40000)
        bearing = rnd.uniform(0, 2 * math.pi)
        lat2 = lat + metres * math.cos(bearing) / 111_000
        lon2 = lon + metres * math.sin(bearing) / (111_000 * math.cos(math.radians(lat)))
        oracle = vincenty(lon, lat, lon2, lat2)
        assert point_distance_m(lon, lat, lon2, lat2) == pytest.approx(oracle, rel=1e-3)


def test_distance_to_lines_and_polygons() -> None:
    madrid = q("near;maxDistance==1", "Point", [-3.7038, 40.4168]).geometry
    # A north-south line 0.01 degrees east of the point: distance is the east-west offset.
    line = q("intersects", "LineString", [[-3.6938, 40.3], [-3.6938, 40.5]]).geometry
    assert distance_m(madrid, line) == pytest.approx(
        vincenty(-3.7038, 40.4168, -3.6938, 40.4168), rel=2e-3
    )
    box = q(
        "intersects",
        "Polygon",
        [[[-3.8, 40.3], [-3.6, 40.3], [-3.6, 40.5], [-3.8, 40.5], [-3.8, 40.3]]],
    ).geometry
    assert distance_m(madrid, box) == 0.0


# --- predicate -------------------------------------------------------------------------------


def test_near_max_and_min_distance() -> None:
    here = (2.1734, 41.3851)  # Barcelona
    there = (2.1834, 41.3901)
    d = vincenty(*here, *there)
    assert 900 < d < 1100
    inside = q(f"near;maxDistance=={d * 1.005}", "Point", list(here))
    outside = q(f"near;maxDistance=={d * 0.995}", "Point", list(here))
    assert geo_matches(inside, point(*there))
    assert not geo_matches(outside, point(*there))
    assert geo_matches(q(f"near;minDistance=={d * 0.995}", "Point", list(here)), point(*there))
    assert not geo_matches(q(f"near;minDistance=={d * 1.005}", "Point", list(here)), point(*there))
    assert geo_matches(q("near;maxDistance==0", "Point", list(here), stored=True), point(*here))


def test_near_polygon_target() -> None:
    here = [2.0, 41.0]
    block = {
        "type": "Polygon",
        "coordinates": [
            [[2.01, 40.99], [2.02, 40.99], [2.02, 41.01], [2.01, 41.01], [2.01, 40.99]]
        ],
    }
    edge = vincenty(2.0, 41.0, 2.01, 41.0)
    assert geo_matches(q(f"near;maxDistance=={edge * 1.005}", "Point", here), block)
    assert not geo_matches(q(f"near;maxDistance=={edge * 0.995}", "Point", here), block)


def test_topological_relations() -> None:
    inner = {"type": "Polygon", "coordinates": [[[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.2]]]}
    straddling = {
        "type": "Polygon",
        "coordinates": [[[0.5, 0.5], [1.5, 0.5], [1.5, 1.5], [0.5, 0.5]]],
    }
    far = point(10, 10)
    square = {"type": "Polygon", "coordinates": SQUARE}

    def rel(name: str, target: dict[str, Any]) -> bool:
        return geo_matches(q(name, "Polygon", SQUARE), target)

    assert rel("within", inner) and not rel("within", straddling) and not rel("within", far)
    assert rel("intersects", straddling) and not rel("intersects", far)
    assert rel("disjoint", far) and not rel("disjoint", inner)
    assert rel("overlaps", straddling) and not rel("overlaps", inner)
    assert rel("equals", square) and not rel("equals", inner)
    assert not rel("contains", inner)
    assert geo_matches(q("contains", "Point", [0.5, 0.5]), square)
    assert not geo_matches(q("contains", "Point", [5, 5]), square)


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"type": "Point"},
        {"type": "Point", "coordinates": "x"},
        {"type": "Nope", "coordinates": [1, 2]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0]]]},
        "not a dict",
    ],
)
def test_unusable_stored_geometry_never_matches(stored: Any) -> None:
    assert not geo_matches(q("intersects", "Polygon", SQUARE), stored)
    assert not geo_matches(q("near;minDistance==0", "Point", [0, 0], stored=True), stored)


def test_invalid_stored_polygon_is_repaired_not_fatal() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    assert geo_matches(q("intersects", "Point", [0.9, 0.5]), bowtie)


def test_self_intersecting_polygon_is_repaired_not_rejected() -> None:
    """A bow-tie query polygon (as in ETSI 019_11) is a usable area once repaired."""
    gq = parse_geoq("intersects", "Polygon", "[[[0,0],[1,1],[1,0],[0,1],[0,0]]]", None)
    assert gq is not None
    assert gq.geometry.is_valid
    assert geo_matches(gq, {"type": "Point", "coordinates": [0.25, 0.5]})
    assert not geo_matches(gq, {"type": "Point", "coordinates": [5, 5]})


def star(n: int) -> list[list[float]]:
    """A closed ring of n vertices whose edges all cross each other (O(n²) crossings)."""
    k = int(n * 0.8) | 1
    ring = [
        [
            8 * math.cos(2 * math.pi * (i * k % n) / n),
            45 + 5 * math.sin(2 * math.pi * (i * k % n) / n),
        ]
        for i in range(n)
    ]
    return [*ring, ring[0]]


def test_a_query_polygon_too_tangled_to_repair_is_refused() -> None:
    """Repairing 351 such vertices took a minute, 20,001 took 12 GB and then a 500."""
    with pytest.raises(BadRequestData, match="too many to repair"):
        parse_geoq("within", "Polygon", json.dumps([star(301)]), None)
    with pytest.raises(BadRequestData, match="too many to repair"):
        parse_geoq("within", "MultiPolygon", json.dumps([SQUARE, [star(301)]]), None)
    assert parse_geoq("within", "Polygon", json.dumps([star(51)]), None) is not None


def test_a_stored_polygon_too_tangled_to_repair_matches_nothing() -> None:
    stored = {"type": "Polygon", "coordinates": [star(301)]}
    assert not geo_matches(q("intersects", "Point", [0, 45]), stored)


def test_a_large_polygon_with_one_crossing_is_still_repaired() -> None:
    """Real boundaries are long and cross themselves a few times: they are repaired."""
    ring = [
        [8 * math.cos(2 * math.pi * i / 5000), 45 + 5 * math.sin(2 * math.pi * i / 5000)]
        for i in range(5000)
    ]
    ring[10], ring[11] = ring[11], ring[10]  # one bow
    coords = json.dumps([[*ring, ring[0]]])
    gq = parse_geoq("intersects", "Polygon", coords, None)
    assert gq is not None and gq.geometry.is_valid
    stored = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    assert geo_matches(q("intersects", "Point", [0, 45]), stored)


# --- stored points: the shortcut agrees with the shapely shape --------------------------------

REFERENCES = [
    ("Polygon", SQUARE),
    (
        "Polygon",
        [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]], [[0.5, 0.5], [1, 0.5], [1, 1], [0.5, 0.5]]],
    ),
    ("MultiPolygon", [SQUARE, [[[2, 2], [3, 2], [3, 3], [2, 2]]]]),
    ("LineString", [[0, 0], [1, 1], [2, 0]]),
    ("MultiPoint", [[0, 0], [0.5, 0.5]]),
    ("Point", [0.5, 0.5]),
]
RELATIONS = [
    "within",
    "intersects",
    "disjoint",
    "contains",
    "overlaps",
    "equals",
    "near;maxDistance==40000",
    "near;minDistance==40000",
]


def _points(rnd: random.Random) -> list[list[float]]:
    """Points inside, outside and exactly on the references' vertices and edges."""
    fixed = [[0, 0], [1, 0], [0.5, 0], [0.5, 0.5], [1, 1], [0.75, 0.75], [2, 2], [2.5, 2.2]]
    fixed += [[0.5, 0.5, 12.0], [3.0, -1.0]]  # a 3D position; a far one
    return fixed + [[rnd.uniform(-0.5, 3.5), rnd.uniform(-0.5, 3.5)] for _ in range(300)]


@pytest.mark.parametrize("georel", RELATIONS)
@pytest.mark.parametrize(("geometry", "coordinates"), REFERENCES)
def test_point_shortcut_agrees_with_the_shape(georel: str, geometry: str, coordinates: Any) -> None:
    """A stored Point is tested without building a shape (geo_matches' shortcut); the answer
    is the one the shapely shape gives, boundary points included."""
    gq = q(georel, geometry, coordinates)
    for position in _points(random.Random(7)):
        stored = {"type": "Point", "coordinates": position}
        assert geo_matches(gq, stored) == shape_matches(gq, stored), (georel, geometry, position)


@pytest.mark.parametrize("seed", range(4))
def test_nothing_outside_the_near_box_is_near(seed: int) -> None:
    """The SQL plans (qsql.prefilter_box) and the temporal prefilter keep only what touches a
    box around the reference; a point just outside it is never within maxDistance, at any
    latitude and for lines and polygons spanning many degrees of latitude."""
    rnd = random.Random(seed)
    boxed = 0
    for _ in range(100):
        lon, lat = rnd.uniform(-150, 150), rnd.uniform(-85, 85)
        span = rnd.choice([0.01, 1, 10, 25])
        far_lon = lon + rnd.uniform(-span, span)
        far_lat = max(-89.0, min(89.0, lat + rnd.uniform(-span, span)))
        geometry, coordinates = rnd.choice(
            [
                ("Point", [lon, lat]),
                ("LineString", [[lon, lat], [far_lon, far_lat]]),
                ("Polygon", [[[lon, lat], [far_lon, lat], [far_lon, far_lat], [lon, lat]]]),
            ]
        )
        if geometry == "Polygon" and (far_lon == lon or far_lat == lat):
            continue
        gq = q(
            f"near;maxDistance=={rnd.choice([100, 5000, 100000, 800000])}", geometry, coordinates
        )
        box = prefilter_box(gq)
        if box is None:
            continue
        boxed += 1
        minx, miny, maxx, maxy = box
        for _ in range(10):
            x, y = rnd.uniform(minx, maxx), rnd.uniform(miny, maxy)
            side = rnd.randrange(4)
            x = (minx - 1e-9, maxx + 1e-9, x, x)[side]
            y = (y, y, miny - 1e-9, maxy + 1e-9)[side]
            if -180 <= x <= 180 and -90 <= y <= 90:
                assert not geo_matches(gq, point(x, y)), (geometry, coordinates, box)
    assert boxed > 60
