"""The application/geo+json representation of entities (spec 6.3.15)."""

from __future__ import annotations

from typing import Any

from cityhub.ngsild.entity import is_geo_type


def feature(entity: dict[str, Any], geometry_property: str, context: Any | None) -> dict[str, Any]:
    """One rendered entity as a GeoJSON Feature: its geometry is the named GeoProperty's
    value, or null when the entity has no such GeoProperty (never a plain Property's value)."""
    props = {k: v for k, v in entity.items() if k != "id"}
    geo = entity.get(geometry_property)
    if isinstance(geo, list) and geo:  # a multi-attribute: its default instance, else the first
        geo = next((g for g in geo if isinstance(g, dict) and "datasetId" not in g), geo[0])
    elif isinstance(geo, dict) and geo.keys() == {"dataset"} and isinstance(geo["dataset"], dict):
        several = geo["dataset"]  # keyValues of a multi-attribute, by datasetId
        geo = several.get("@none", next(iter(several.values()), None))
    geometry = None
    if isinstance(geo, dict):
        # normalized {"type": "GeoProperty", "value": g}, concise {"value": g}, keyValues g
        inner = geo.get("value") if geo.get("type") in ("GeoProperty", None) else geo
        geometry = inner if _is_geometry(inner) else None
    out: dict[str, Any] = {"type": "Feature", "geometry": geometry, "properties": props}
    if "id" in entity:  # RFC 7946 3.2: a Feature's id, when present, is a string or number
        out = {"id": entity["id"], **out}
    if context is not None:
        out["@context"] = context
    return out


def _is_geometry(value: Any) -> bool:
    return isinstance(value, dict) and is_geo_type(value.get("type"))


def collection(
    entities: list[dict[str, Any]], geometry_property: str, context: Any | None
) -> dict[str, Any]:
    """Rendered entities as a FeatureCollection."""
    out: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [feature(e, geometry_property, None) for e in entities],
    }
    if context is not None:
        out["@context"] = context
    return out
