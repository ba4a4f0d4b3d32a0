"""The application/geo+json representation of entities (spec 6.3.15)."""

from __future__ import annotations

from typing import Any


def feature(entity: dict[str, Any], geometry_property: str, context: Any | None) -> dict[str, Any]:
    """One rendered entity as a GeoJSON Feature."""
    props = {k: v for k, v in entity.items() if k != "id"}
    geo = entity.get(geometry_property)
    if isinstance(geo, list) and geo:  # a multi-attribute: its default instance, else the first
        geo = next((g for g in geo if isinstance(g, dict) and "datasetId" not in g), geo[0])
    geometry = None
    if isinstance(geo, dict):
        geometry = (
            geo.get("value", geo) if "type" not in geo or geo.get("type") == "GeoProperty" else geo
        )
        if (
            isinstance(geometry, dict)
            and "coordinates" not in geometry
            and geometry.get("type") != "GeometryCollection"
        ):
            geometry = geometry.get("value")
    out: dict[str, Any] = {
        "id": entity.get("id"),
        "type": "Feature",
        "geometry": geometry,
        "properties": props,
    }
    if context is not None:
        out["@context"] = context
    return out


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
