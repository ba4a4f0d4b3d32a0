"""`cityhub import geojson`: one entity per Feature, the geometry as location."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from cityhub.ingest.importers.attrs import attribute_name, entity_id, geo, prop
from cityhub.ingest.importers.records import Entity, ImportFailed, Record
from cityhub.ngsild.entity import check_name
from cityhub.ngsild.errors import BadRequestData, NgsiLdError


class GeoJsonSource:
    """The features of a FeatureCollection (or one Feature) as entities."""

    def __init__(
        self, path: Path, entity_type: str | None = None, id_prefix: str | None = None
    ) -> None:
        self.path = path
        self.entity_type = entity_type
        self.id_prefix = id_prefix
        if entity_type is not None:
            try:
                check_name(entity_type, "entity type")
            except BadRequestData as exc:
                raise ImportFailed(f"--type: {exc.detail}") from exc
        try:
            data = orjson.loads(path.read_bytes())
        except OSError as exc:
            raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise ImportFailed(f"{path} is not valid JSON: {exc}") from exc
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "FeatureCollection" and isinstance(data.get("features"), list):
            self.features: list[Any] = data["features"]
            self.label = "features[{}]"
        elif kind == "Feature":
            self.features = [data]
            self.label = "feature"
        else:
            raise ImportFailed(f"{path} holds no GeoJSON FeatureCollection or Feature")

    def renamed(self) -> list[tuple[str, str]]:
        """Property names that had to change to become attribute names, as the CSV importer
        renames headers (GIS exports name fields "Floor Area (m2)")."""
        seen: dict[str, None] = {}
        for feature in self.features:
            props = feature.get("properties") if isinstance(feature, dict) else None
            if isinstance(props, dict):
                seen.update(dict.fromkeys(props))
        return [(p, n) for p in seen if isinstance(n := _name(p), str) and n != p]

    def estimate(self) -> int | None:
        """The number of features (known once the file is parsed)."""
        return len(self.features)

    def __iter__(self) -> Iterator[Record]:
        """One record per feature, in file order."""
        for i, feature in enumerate(self.features):
            where = self.label.format(i)
            eid = ""
            try:
                etype, eid, props = self._identify(feature)
                entity = self._entity(feature, etype, eid, props)
            except NgsiLdError as err:
                yield Record(where, error=err, eid=eid)
            else:
                yield Record(where, entity, eid=eid)

    def _identify(self, feature: Any) -> tuple[str, str, dict[str, Any]]:
        """The entity type, the entity id and the properties of a feature."""
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise BadRequestData("not a GeoJSON Feature object")
        props = feature.get("properties")
        if props is None:  # RFC 7946 3.2: an object, or null
            props = {}
        if not isinstance(props, dict):  # [] was taken for {}, "" too
            raise BadRequestData("the feature's properties must be a JSON object")
        etype = self.entity_type or props.get("type")
        if not isinstance(etype, str) or not etype:
            raise BadRequestData("no entity type: give --type or a 'type' property")
        raw = feature.get("id", props.get("id"))
        if isinstance(raw, bool) or not isinstance(raw, str | int | float) or raw == "":
            raise BadRequestData("no entity id: the feature has no 'id' (nor properties.id)")
        return etype, entity_id(str(raw), self.id_prefix or f"urn:ngsi-ld:{etype}:"), props

    @staticmethod
    def _entity(feature: dict[str, Any], etype: str, eid: str, props: dict[str, Any]) -> Entity:
        entity: Entity = {"id": eid, "type": etype, "location": None}  # None: no value
        geometry = feature.get("geometry")
        if geometry is not None:
            if "location" in props:
                raise BadRequestData("property 'location' clashes with the feature's geometry")
            entity["location"] = geo(geometry)
        given: dict[str, str] = {"location": "the feature's geometry"} if geometry else {}
        for name, value in props.items():
            if name in ("id", "type"):
                continue  # used above
            attr = _name(name)
            if isinstance(attr, ValueError):
                raise BadRequestData(f"property {name!r} cannot be an attribute name: {attr}")
            if attr in given:
                raise BadRequestData(
                    f"property {name!r} becomes attribute {attr!r}, which {given[attr]} gives"
                )
            given[attr] = f"property {name!r}"
            entity[attr] = None if value is None else prop(value)  # null: no value
        return entity


@lru_cache(maxsize=4096)
def _name(prop_name: str) -> str | ValueError:
    """A property name as an attribute name (the CSV importer's renaming), or why it cannot be
    one; a feature collection repeats its names in every feature, so each is worked out once."""
    try:
        return attribute_name(prop_name)
    except ValueError as exc:
        return exc
