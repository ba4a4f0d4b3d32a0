"""The members of a GeoJSON geometry besides its type and coordinates (RFC 7946): a bbox must
enclose the geometry, a crs is no longer GeoJSON, and a member that belongs to another kind
of object (geometries on a Point) makes the geometry invalid GeoJSON. Stored unchecked, each
was served again as application/geo+json (decision 050)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from cityhub.ngsild.errors import BadRequestData, clipped

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

# RFC 7946 7.1: a geometry has no "geometry", "properties" or "features" member
FORBIDDEN = ("geometry", "properties", "features")
# degrees (about 0.1 m): a bbox written with 6 decimals still encloses its geometry
BBOX_SLACK = 1e-6
# names of WGS84 longitude/latitude: RFC 7946's only system, which GIS exports still name
WGS84_NAMES = frozenset(
    {
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        "urn:ogc:def:crs:OGC::CRS84",
        "urn:ogc:def:crs:EPSG::4326",
        "OGC:CRS84",
        "CRS84",
        "EPSG:4326",
    }
)


def check_members(value: dict[str, Any], geom: BaseGeometry) -> None:
    """Refuse what RFC 7946 forbids on a geometry, a crs, and a bbox that is malformed or
    leaves part of the geometry out."""
    kind = value["type"]
    wrong = "coordinates" if kind == "GeometryCollection" else "geometries"
    for name in (wrong, *FORBIDDEN):
        if name in value:
            raise BadRequestData(
                f"invalid GeoJSON geometry: a {kind} has no '{name}' member (RFC 7946 7.1)"
            )
    if "crs" in value:
        raise BadRequestData(
            "invalid GeoJSON geometry: 'crs' is not GeoJSON (RFC 7946 4): coordinates are "
            "always WGS84 longitude, latitude; leave it out (reproject the geometry first if "
            "it is in another system)"
        )
    if "bbox" in value:
        check_bbox(value["bbox"], geom)


def _number(n: Any) -> bool:
    return isinstance(n, int | float) and not isinstance(n, bool) and math.isfinite(n)


def check_bbox(bbox: Any, geom: BaseGeometry) -> None:
    """[west, south, east, north] (or with altitudes, 6 numbers) enclosing the geometry; a
    west larger than east crosses the antimeridian (RFC 7946 5.2)."""
    if not isinstance(bbox, list) or len(bbox) not in (4, 6) or not all(map(_number, bbox)):
        raise BadRequestData(
            f"invalid bbox {clipped(bbox)}: expected [west, south, east, north] (6 numbers with the "
            "lowest and highest altitude)"
        )
    half = len(bbox) // 2
    west, south, east, north = bbox[0], bbox[1], bbox[half], bbox[half + 1]
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise BadRequestData(
            f"invalid bbox {bbox!r}: longitudes and latitudes out of range, or south above north"
        )
    if half == 3 and bbox[2] > bbox[5]:
        raise BadRequestData(f"invalid bbox {bbox!r}: the lowest altitude is above the highest")
    # imported here: the importer reads a file's crs with this module, before any geometry
    import numpy as np
    import shapely

    xy = shapely.get_coordinates(geom)
    if not len(xy):
        return
    xs, ys = xy[:, 0], xy[:, 1]
    slack = BBOX_SLACK
    if west <= east:
        inside = xs.min() >= west - slack and xs.max() <= east + slack
    else:
        inside = bool(np.all((xs >= west - slack) | (xs <= east + slack)))
    if not (inside and ys.min() >= south - slack and ys.max() <= north + slack):
        bounds = [float(b) for b in geom.bounds]
        raise BadRequestData(
            f"invalid bbox {bbox!r}: it does not enclose the geometry, whose bounds are "
            f"{bounds} (RFC 7946 5)"
        )


def crs_name(crs: Any) -> str | None:
    """The name a GeoJSON 2008 `crs` member gives, None for a null one (no system named)."""
    if crs is None:
        return None
    props = crs.get("properties") if isinstance(crs, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    return name if isinstance(name, str) else repr(crs)


def is_wgs84(name: str) -> bool:
    """Whether a crs name is WGS84 longitude/latitude (EPSG:4326 as GIS exports use it)."""
    return name.strip() in WGS84_NAMES
