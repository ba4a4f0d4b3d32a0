"""Coordinates nested deeper than their geometry's type has them are a 400 that says so, in a
geoQ and in a stored GeoProperty, and an error quotes at most an excerpt of them: a 900-deep
Point came back whole in the detail, a 100 KB one as "not a JSON array" (it is one) with all
100 KB quoted, and a Polygon with one level too many was said to need 4 positions."""

from __future__ import annotations

import math
import urllib.parse
from typing import Any

import httpx
import pytest

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query.geo import parse_geoq
from conftest import bad_request

RING = "[[0,0],[1,0],[1,1],[0,0]]"


def _detail(kind: str, coords: Any) -> str:
    with pytest.raises(BadRequestData) as err:
        parse_geoq("intersects", kind, coords)
    return err.value.detail


@pytest.mark.parametrize(
    ("kind", "coords", "deep", "levels"),
    [
        ("Point", "[[1,2]]", 2, 1),
        ("Polygon", f"[[{RING}]]", 4, 3),
        ("MultiPolygon", f"[[[{RING}]]]", 5, 4),
        ("LineString", "[[[0,0],[1,1]]]", 3, 2),
        ("Point", "[" * 900 + "0" + "]" * 900, 900, 1),
    ],
)
def test_coordinates_nested_too_deep_say_so(kind: str, coords: str, deep: int, levels: int) -> None:
    detail = _detail(kind, coords)
    assert f"nest {deep} arrays deep" in detail
    assert f"a {kind}'s nest {levels}" in detail
    assert len(detail) < 400


def test_coordinates_too_deep_for_json_are_not_called_no_json_array() -> None:
    detail = _detail("Point", "[" * 100_000 + "]" * 100_000)
    assert "nest deeper than" in detail and "not a JSON array" not in detail
    assert len(detail) < 400


def test_an_error_quotes_an_excerpt_of_long_coordinates() -> None:
    long_point = "[" + ",".join(["1"] * 50_000) + "]"
    assert len(_detail("Point", long_point)) < 400
    assert len(_detail("Point", "[" + "1" * 100_000)) < 400  # not JSON at all


async def test_the_api_answers_a_400_with_a_short_detail(client: httpx.AsyncClient) -> None:
    coords = urllib.parse.quote("[" * 5_000 + "]" * 5_000)
    r = await client.get(
        f"/ngsi-ld/v1/entities?type=T&georel=within&geometry=Point&coordinates={coords}"
    )
    assert len(bad_request(r)["detail"]) < 400


async def test_a_stored_polygon_one_level_too_deep_is_refused_and_not_stored(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "id": "urn:ngsi-ld:Zone:1",
        "type": "Zone",
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Polygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]},
        },
    }
    r = await client.post("/ngsi-ld/v1/entities", json=body)
    assert "nest 4 arrays deep" in bad_request(r)["detail"]
    assert (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Zone:1")).status_code == 404


@pytest.mark.parametrize(
    "coords", [[math.nan, 0], [0, math.nan], [math.inf, 0], [181, 0], [-180.5, 0], [0, 90.5]]
)
def test_positions_off_the_globe_are_refused(coords: list[float]) -> None:
    with pytest.raises(BadRequestData):
        parse_geoq("intersects", "Point", coords)
