"""The application/geo+json representation of entities (spec 6.3.15)."""

from __future__ import annotations

from typing import Any

from cityhub.ngsild.entity import is_geo_type
from cityhub.ngsild.render import of_datasets

Geometries = dict[str, Any]  # entity id -> the geometry of its stored GeoProperty, or None


def stored_geometries(
    docs: list[dict[str, Any]], iri: str, dataset_ids: frozenset[str] | None
) -> Geometries:
    """Each stored entity's geometry for a FeatureCollection: the named attribute's default
    instance (else its first), among the datasetIds asked for, when it is a GeoProperty. Read
    from the documents: keyValues and concise renderings no longer say which attribute is a
    GeoProperty, and a plain Property holding a geometry became the Feature's geometry."""
    out: Geometries = {}
    for doc in docs:
        instances = doc["attrs"].get(iri, [])
        if dataset_ids is not None:
            instances = of_datasets(instances, dataset_ids)
        inst = next((i for i in instances if "datasetId" not in i), None) or next(
            iter(instances), None
        )
        geo = inst.get("value") if inst and inst["type"] == "GeoProperty" else None
        out[doc["id"]] = geo if _is_geometry(geo) else None
    return out


def feature(
    entity: dict[str, Any],
    geometry_property: str,
    context: Any | None,
    stored: Geometries | None = None,
    stored_id: str | None = None,
) -> dict[str, Any]:
    """One rendered entity as a GeoJSON Feature: its geometry is the named GeoProperty's
    value, or null when the entity has no such GeoProperty (never a plain Property's value);
    taken from `stored` for the entities it names, by `stored_id` (the id it is stored
    under: a projection may leave the rendered id out) or else the rendered id. That id is
    the Feature's id even when a pick leaves it out of the entity: 1.8 clause 4.5.17.2
    (4.5.16.2 in 1.9.1) makes "id" a mandatory member of the Feature."""
    props = {k: v for k, v in entity.items() if k != "id"}
    key = stored_id if stored_id is not None else entity.get("id")
    if stored is not None and key in stored:
        return _feature(key, props, stored[key], context)
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
    return _feature(key, props, geometry, context)


def _feature(fid: Any, props: dict[str, Any], geometry: Any, context: Any | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Feature", "geometry": geometry, "properties": props}
    if fid is not None:  # RFC 7946 3.2: a Feature's id, when present, is a string or number
        out = {"id": fid, **out}
    if context is not None:
        out["@context"] = context
    return out


def _is_geometry(value: Any) -> bool:
    return isinstance(value, dict) and is_geo_type(value.get("type"))


def collection(
    entities: list[dict[str, Any]],
    geometry_property: str,
    context: Any | None,
    stored: Geometries | None = None,
    stored_ids: list[str] | None = None,
) -> dict[str, Any]:
    """Rendered entities as a FeatureCollection (stored_ids: each one's, see feature)."""
    ids: list[str | None] = list(stored_ids) if stored_ids is not None else [None] * len(entities)
    out: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            feature(e, geometry_property, None, stored, i)
            for e, i in zip(entities, ids, strict=True)
        ],
    }
    if context is not None:
        out["@context"] = context
    return out
