"""What a stored geometry may carry besides its type and coordinates (RFC 7946, decision 050):
a bbox that encloses it, foreign members that are not GeoJSON's own; no crs, no member of
another kind of object. Positions with and without an altitude may mix, on writes, in a
geoQ and in an imported file; a file in another crs stops the import up front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.cli import main
from cityhub.ngsild.entity import check_geometry
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query.geo import geo_matches, parse_geoq
from conftest import BASE, bad_request, create

SQUARE = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]
POINT = {"type": "Point", "coordinates": [2.35, 48.85]}
MIXED = {"type": "LineString", "coordinates": [[0, 0], [1, 1, 5]]}


@pytest.mark.parametrize(
    ("geometry", "named"),
    [
        (POINT | {"bbox": "hello"}, "bbox"),
        (POINT | {"bbox": [2, 48]}, "bbox"),
        (POINT | {"bbox": [2, 48, True, 49]}, "bbox"),
        (POINT | {"bbox": [2, 49, 3, 48]}, "south above north"),
        (POINT | {"bbox": [2, 48, 0, 3, 49, -1]}, "altitude"),
        ({"type": "Polygon", "coordinates": SQUARE, "bbox": [100, 10, 101, 11]}, "enclose"),
        ({"type": "Polygon", "coordinates": SQUARE, "bbox": [0, 0, 0.5, 1]}, "enclose"),
        (POINT | {"crs": {"type": "name", "properties": {"name": "EPSG:4326"}}}, "crs"),
        (POINT | {"geometries": [{"type": "Point", "coordinates": [50, 50]}]}, "geometries"),
        (POINT | {"properties": {}}, "properties"),
        ({"type": "GeometryCollection", "geometries": [POINT], "coordinates": [1, 2]}, "coord"),
        ({"type": "GeometryCollection", "geometries": [POINT | {"bbox": [0, 0, 1, 1]}]}, "bbox"),
    ],
)
def test_a_geometry_with_a_wrong_member_is_refused(geometry: dict[str, Any], named: str) -> None:
    """Stored, each was served again as invalid GeoJSON (a bbox 100 degrees away)."""
    with pytest.raises(BadRequestData) as caught:
        check_geometry(geometry)
    assert named in caught.value.detail


@pytest.mark.parametrize(
    "geometry",
    [
        POINT | {"bbox": [2.35, 48.85, 2.35, 48.85]},
        POINT | {"bbox": [2.35, 48.85, 35, 2.35, 48.85, 35]},
        {"type": "Polygon", "coordinates": SQUARE, "bbox": [0, 0, 1, 1]},
        {"type": "Polygon", "coordinates": SQUARE, "bbox": [0.0000004, 0, 1, 0.9999996]},
        {"type": "LineString", "coordinates": [[179, 0], [-179, 1]], "bbox": [179, 0, -179, 1]},
        POINT | {"name": "a foreign member, allowed"},
        MIXED,
        {"type": "GeometryCollection", "geometries": [MIXED, POINT]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0, 3], [1, 1], [0, 1, 2], [0, 0]]]},
    ],
)
def test_a_well_formed_geometry_is_kept(geometry: dict[str, Any]) -> None:
    assert check_geometry(geometry) is geometry


def test_a_geoq_geometry_may_mix_positions_with_and_without_altitude() -> None:
    """numpy's "inhomogeneous shape" message was all the client got."""
    gq = parse_geoq("intersects", "LineString", "[[0,0],[1,1,5]]")
    assert gq is not None
    assert geo_matches(gq, {"type": "Point", "coordinates": [0.5, 0.5]})
    assert geo_matches(parse_geoq("intersects", "Point", "[0.5,0.5]"), MIXED)  # type: ignore[arg-type]


async def test_the_api_stores_and_finds_a_mixed_track_and_refuses_a_bad_bbox(
    client: httpx.AsyncClient,
) -> None:
    track = {"type": "GeoProperty", "value": MIXED}
    await create(client, {"id": "urn:ngsi-ld:V:10", "type": "V", "location": track})
    params = {"type": "V", "georel": "intersects", "geometry": "Point", "coordinates": "[1,1]"}
    resp = await client.get(f"{BASE}/entities", params=params)
    assert [e["id"] for e in resp.json()] == ["urn:ngsi-ld:V:10"]
    mixed = params | {"geometry": "LineString", "coordinates": "[[1,1],[2,2,7]]"}
    resp = await client.get(f"{BASE}/entities", params=mixed)
    assert [e["id"] for e in resp.json()] == ["urn:ngsi-ld:V:10"]
    far = {"type": "GeoProperty", "value": POINT | {"bbox": [100, 10, 101, 11]}}
    body = {"id": "urn:ngsi-ld:V:11", "type": "V", "location": far}
    assert "enclose" in bad_request(await client.post(f"{BASE}/entities", json=body))["detail"]


def _import(tmp_path: Path, doc: dict[str, Any]) -> int:
    path = tmp_path / "data.geojson"
    path.write_text(json.dumps(doc))
    return main(["import", "geojson", str(path), "--type", "Spot", "--db", str(tmp_path / "h.db")])


def _features() -> list[dict[str, Any]]:
    return [
        {"type": "Feature", "id": "a", "geometry": POINT, "properties": {}},
        {"type": "Feature", "id": "b", "geometry": MIXED, "properties": {}},
    ]


def test_an_import_in_another_crs_stops_up_front_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every feature of a Lambert-93 export was refused on its own, "out of range"."""
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}}
    doc = {"type": "FeatureCollection", "crs": crs, "features": _features()}
    assert _import(tmp_path, doc) == 2
    err = capsys.readouterr().err
    assert "urn:ogc:def:crs:EPSG::2154" in err and "WGS84" in err


@pytest.mark.parametrize("name", ["urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326", None])
def test_an_import_in_wgs84_goes_on_mixed_positions_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str | None
) -> None:
    crs = None if name is None else {"type": "name", "properties": {"name": name}}
    doc = {"type": "FeatureCollection", "crs": crs, "features": _features()}
    assert _import(tmp_path, doc) == 0, capsys.readouterr().err
    assert "2 created" in capsys.readouterr().out
