"""Invalid polygons (decision 088): a ring that encloses no area, a hole outside its exterior
ring and a polygon too tangled to repair are refused when written or asked about in a new
geoQ; a self-intersecting polygon (ETSI 019_11 stores and queries with one) is kept as
written and matched as GEOS repairs it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cityhub.ngsild.entity import check_geometry
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query.geo import geo_matches, parse_geoq
from conftest import BASE, bad_request, create
from test_query_geo import star

SQUARE = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
FAR_SQUARE = [[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]
HOLE_OUTSIDE = {"type": "Polygon", "coordinates": [SQUARE, FAR_SQUARE]}
COLLINEAR = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]}
REPEATED = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 0], [0, 0]]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
# the building ETSI 019_11 creates (building-location-polygon.jsonld) and asks `equals` of
ETSI_BUILDING = {
    "type": "Polygon",
    "coordinates": [
        [
            [13.2865906, 52.5648645],
            [13.2879639, 52.5648645],
            [13.2797241, 52.4988679],
            [13.477478, 52.4712703],
            [13.5049438, 52.5373084],
            [13.2865906, 52.5648645],
        ]
    ],
}


@pytest.mark.parametrize(
    ("geometry", "said"),
    [
        (COLLINEAR, "encloses no area"),
        (REPEATED, "encloses no area"),
        (
            {
                "type": "Polygon",
                "coordinates": [SQUARE, [[0.2, 0.2], [0.5, 0.2], [0.2, 0.2], [0.2, 0.2]]],
            },
            "encloses no area",
        ),
        (HOLE_OUTSIDE, "outside"),
        ({"type": "MultiPolygon", "coordinates": [[FAR_SQUARE], [SQUARE, FAR_SQUARE]]}, "outside"),
        ({"type": "GeometryCollection", "geometries": [HOLE_OUTSIDE]}, "outside"),
        ({"type": "Polygon", "coordinates": [star(301)]}, "too many to repair"),
    ],
)
def test_a_polygon_the_hub_would_guess_at_is_refused(geometry: dict[str, Any], said: str) -> None:
    """Each was stored (201) and matched as what GEOS's repair made of it: a line, a second
    area where the client drew a hole, or nothing at all."""
    with pytest.raises(BadRequestData) as caught:
        check_geometry(geometry)
    assert said in caught.value.detail


def test_the_refusal_says_which_ring_and_where() -> None:
    with pytest.raises(BadRequestData) as caught:
        check_geometry({"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE, FAR_SQUARE]]})
    detail = caught.value.detail
    assert "polygon 2" in detail and "ring 2" in detail and "[5, 5]" in detail
    assert "MultiPolygon" in detail  # what to send instead of a hole outside the shell


@pytest.mark.parametrize(
    "geometry",
    [
        BOWTIE,
        ETSI_BUILDING,
        {
            "type": "Polygon",
            "coordinates": [[[0, 0], [2, 0], [2, 2], [1, 2], [1, 3], [1, 2], [0, 2], [0, 0]]],
        },
        {
            "type": "MultiPolygon",
            "coordinates": [[SQUARE], [[[0.5, 0.5], [3, 0.5], [3, 3], [0.5, 3], [0.5, 0.5]]]],
        },
        {
            "type": "Polygon",
            "coordinates": [SQUARE, [[0.2, 0.2], [0.5, 0.2], [0.5, 0.5], [0.2, 0.2]]],
        },
        {"type": "LineString", "coordinates": [[1, 1], [1, 1]]},  # a device that did not move
    ],
)
def test_a_repairable_or_valid_geometry_is_kept_as_written(geometry: dict[str, Any]) -> None:
    assert check_geometry(geometry) is geometry


def test_a_kept_self_intersecting_polygon_matches_as_repaired() -> None:
    """ETSI 019_11_01: `equals` with the building's own self-intersecting polygon finds it."""
    coords = json.dumps(ETSI_BUILDING["coordinates"])
    assert geo_matches(parse_geoq("equals", "Polygon", coords), ETSI_BUILDING)  # type: ignore[arg-type]
    assert geo_matches(parse_geoq("intersects", "Point", "[0.9,0.5]"), BOWTIE)  # type: ignore[arg-type]


@pytest.mark.parametrize("geometry", [HOLE_OUTSIDE, COLLINEAR])
def test_a_new_geoq_polygon_is_held_to_the_same_rule(geometry: dict[str, Any]) -> None:
    coords = json.dumps(geometry["coordinates"])
    with pytest.raises(BadRequestData):
        parse_geoq("intersects", "Polygon", coords)
    # a subscription's geoQ stored before the rule is read as it was accepted
    stored = parse_geoq("intersects", "Polygon", coords, stored=True)
    assert stored is not None


async def test_the_api_refuses_one_and_stores_nothing(client: httpx.AsyncClient) -> None:
    body = {
        "id": "urn:ngsi-ld:Zone:1",
        "type": "Zone",
        "location": {"type": "GeoProperty", "value": HOLE_OUTSIDE},
    }
    assert "outside" in bad_request(await client.post(f"{BASE}/entities", json=body))["detail"]
    assert (await client.get(f"{BASE}/entities/urn:ngsi-ld:Zone:1")).status_code == 404
    await create(client, body | {"location": {"type": "GeoProperty", "value": BOWTIE}})
    patch = {"location": {"type": "GeoProperty", "value": COLLINEAR}}
    resp = await client.patch(f"{BASE}/entities/urn:ngsi-ld:Zone:1/attrs", json=patch)
    assert "no area" in bad_request(resp)["detail"]
    got = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Zone:1")).json()
    assert got["location"]["value"] == BOWTIE
    params = {"type": "Zone", "georel": "intersects", "geometry": "Polygon"}
    resp = await client.get(
        f"{BASE}/entities", params=params | {"coordinates": json.dumps(HOLE_OUTSIDE["coordinates"])}
    )
    assert "outside" in bad_request(resp)["detail"]


@pytest.mark.parametrize(
    ("kind", "coordinates"),
    [  # a box around Taveuni (Fiji) drawn across the antimeridian, uncut; a ferry's route
        ("Polygon", [[[179.5, -17], [-179.5, -17], [-179.5, -16.5], [179.5, -16.5], [179.5, -17]]]),
        ("LineString", [[178.4, -18.1], [-179.9, -16.8]]),
        ("MultiPolygon", [[SQUARE], [[[170, 0], [-170, 0], [-170, 1], [170, 0]]]]),
    ],
)
def test_a_geoq_edge_across_the_antimeridian_is_refused(kind: str, coordinates: Any) -> None:
    """Read as RFC 7946 reads positions (straight lines in longitude and latitude), the box
    was a band round the rest of the world: `within` it answered every entity but Fiji's."""
    with pytest.raises(BadRequestData) as caught:
        parse_geoq("within", kind, json.dumps(coordinates))
    assert "antimeridian" in caught.value.detail and "3.1.9" in caught.value.detail
    # a subscription's geoQ stored before is read as it was accepted
    assert parse_geoq("within", kind, json.dumps(coordinates), stored=True) is not None


@pytest.mark.parametrize(
    ("kind", "coordinates"),
    [
        ("Polygon", [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]),  # the world
        ("Polygon", [[[-180, -60], [180, -60], [180, 60], [-180, 60], [-180, -60]]]),
        ("Polygon", [[[179.5, -17], [180, -17], [180, -16.5], [179.5, -16.5], [179.5, -17]]]),
        ("LineString", [[-170, 0], [0, 0], [170, 0]]),  # the long way, said with a midpoint
    ],
)
def test_a_geoq_edge_along_or_up_to_the_antimeridian_is_kept(kind: str, coordinates: Any) -> None:
    assert parse_geoq("within", kind, json.dumps(coordinates)) is not None
