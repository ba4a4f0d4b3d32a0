"""`cityhub import geojson`: one entity per Feature, the geometry as location."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from cityhub.ingest.importers import jsonitems
from cityhub.ingest.importers.attrs import attribute_name, entity_id, geo, prop
from cityhub.ingest.importers.records import Entity, ImportFailed, Record
from cityhub.ingest.importers.textfile import BOM, LEGACY, looks_like
from cityhub.jsonints import huge_integer, huge_integer_detail
from cityhub.ngsild.entity import MAX_ITEMS, check_name
from cityhub.ngsild.errors import BadRequestData, NgsiLdError
from cityhub.ngsild.geometry_members import crs_name, is_wgs84

# A feature over this much JSON is rejected without being held: the hub takes at most 20,000
# positions per entity (about 0.5 MB of JSON, 1-2 MB indented), and memory stays bounded.
MAX_FEATURE_BYTES = 4 * 1024 * 1024
TOO_LARGE = BadRequestData(
    f"the feature is larger than {MAX_FEATURE_BYTES:,} bytes of JSON (an entity holds at "
    f"most {MAX_ITEMS:,} positions and array items)"
)
MAX_NAMES = 10_000  # distinct property names looked at for renaming (reported on stderr)


class GeoJsonSource:
    """The features of a FeatureCollection (or one Feature) as entities.

    The file is read twice, a block at a time, never whole: first to check that it is valid
    JSON and a FeatureCollection or a Feature (else nothing is imported, exit 2), to count
    the features and to collect their property names; then feature by feature, each parsed
    when the import reaches it (a 105 MB file took 976 MB parsed whole).
    """

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
        self._count = 0
        self._names: dict[str, None] = {}
        try:
            with path.open("rb") as stream:
                found = self._check(stream)
        except OSError as exc:
            raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from exc
        except jsonitems.Malformed as exc:
            raise self._malformed(exc) from exc
        except jsonitems.NotAnObject:
            raise self._not_an_object() from None
        kind = found.values.get("type")
        _check_crs(path, found.values.get("crs"))
        self._array_at = found.array_at
        self._single: dict[str, Any] | None = None
        self._huge: tuple[str, str] | None = None
        if kind == "FeatureCollection" and found.array_at is not None:
            self.label = "features[{}]"
        elif kind == "Feature":
            self._single = None if found.oversized else found.values
            self._huge = found.huge
            self._count = 1
            self.label = "feature"
            props = found.values.get("properties")
            self._names = dict.fromkeys(props) if isinstance(props, dict) else {}
        else:
            raise ImportFailed(f"{path} holds no GeoJSON FeatureCollection or Feature")

    def _check(self, stream: BinaryIO) -> jsonitems.Members:
        """Read the whole file once: valid JSON, its top-level members, features counted."""
        for part in jsonitems.members(stream, "features", MAX_FEATURE_BYTES):
            if isinstance(part, jsonitems.Members):
                return part
            if part.index == 0:  # "features" given twice: the last one counts
                self._count, self._names = 0, {}
            self._count += 1
            if part.raw is None:
                continue
            feature = jsonitems.parse(part.raw, part.offset)
            props = feature.get("properties") if isinstance(feature, dict) else None
            if isinstance(props, dict) and len(self._names) < MAX_NAMES:
                self._names.update(dict.fromkeys(props))
        raise AssertionError("members() ends with the members")  # pragma: no cover

    def _malformed(self, exc: jsonitems.Malformed) -> ImportFailed:
        """Why the file is not valid JSON, where, and, for the two usual causes, what to do."""
        at = self._at(exc)
        if "not valid UTF-8" in exc.reason:
            with self.path.open("rb") as stream:
                stream.seek(exc.offset)
                guess = looks_like(stream.read(1 << 16))
            return ImportFailed(
                f"{self.path} is not UTF-8 text ({at}): GeoJSON is UTF-8 (RFC 7946); convert "
                f"it (iconv -f {guess} -t utf-8, if it is {LEGACY[guess]} text)"
            )
        if exc.reason == "data after the end of the document":
            return ImportFailed(
                f"{self.path} is not valid JSON: {exc.reason} ({at}): one GeoJSON text per "
                "line (a GeoJSON Text Sequence, RFC 8142)? Make it one "
                "FeatureCollection first (ogr2ogr -f GeoJSON out.geojson in.geojsonl)"
            )
        return ImportFailed(f"{self.path} is not valid JSON: {exc.reason} ({at})")

    def _at(self, exc: jsonitems.Malformed) -> str:
        """Where in the file an error is, as a text editor counts: line and column."""
        line, start = 1, 0
        with self.path.open("rb") as stream:
            read = 0
            while read < exc.offset and (block := stream.read(min(1 << 20, exc.offset - read))):
                if n := block.count(b"\n"):
                    line += n
                    start = read + block.rindex(b"\n") + 1
                read += len(block)
        return f"line {line} column {exc.offset - start + 1}"

    def _not_an_object(self) -> ImportFailed:
        """Why a file that does not hold a JSON object cannot be imported (orjson's reason
        when it is not JSON at all, as when the file was parsed whole)."""
        no = ImportFailed(f"{self.path} holds no GeoJSON FeatureCollection or Feature")
        try:
            if self.path.stat().st_size > MAX_FEATURE_BYTES:
                return no
            orjson.loads(self.path.read_bytes().removeprefix(BOM))
        except OSError as exc:
            return ImportFailed(f"cannot read {self.path}: {exc.strerror or exc}")
        except orjson.JSONDecodeError as exc:
            return ImportFailed(f"{self.path} is not valid JSON: {exc}")
        return no

    def renamed(self) -> list[tuple[str, str]]:
        """Property names that had to change to become attribute names, as the CSV importer
        renames headers (GIS exports name fields "Floor Area (m2)")."""
        return [(p, n) for p in self._names if isinstance(n := _name(p), str) and n != p]

    def estimate(self) -> int | None:
        """The number of features (counted when the file was checked)."""
        return self._count

    def __iter__(self) -> Iterator[Record]:
        """One record per feature, in file order, each parsed when it is reached."""
        if self.label == "feature":
            yield self._record("feature", self._single, self._huge)
            return
        assert self._array_at is not None
        try:
            with self.path.open("rb") as stream:
                for item in jsonitems.items(stream, self._array_at, MAX_FEATURE_BYTES):
                    where = self.label.format(item.index)
                    if item.raw is None:
                        yield Record(where, error=TOO_LARGE)
                    else:
                        feature = jsonitems.parse(item.raw, item.offset)
                        yield self._record(where, feature, huge_integer(item.raw))
        except OSError as exc:
            raise ImportFailed(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        except jsonitems.Malformed as exc:  # it was valid when checked
            raise ImportFailed(
                f"{self.path} changed while it was imported: {exc.reason} ({self._at(exc)})"
            ) from exc

    def _record(self, where: str, feature: Any, huge: tuple[str, str] | None) -> Record:
        """A feature's entity, or why it has none (None: a feature too large to read; huge:
        an integer it holds past 64 bits, which orjson rounded)."""
        if feature is None:
            return Record(where, error=TOO_LARGE)
        if huge is not None:
            return Record(where, error=BadRequestData(huge_integer_detail(huge)))
        eid = ""
        try:
            etype, eid, props = self._identify(feature)
            entity = self._entity(feature, etype, eid, props)
        except NgsiLdError as err:
            return Record(where, error=err, eid=eid)
        return Record(where, entity, eid=eid)

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


def _check_crs(path: Path, crs: Any) -> None:
    """A file whose top-level crs (GeoJSON 2008; RFC 7946 dropped it) names another system
    than WGS84 longitude/latitude stops the import: its coordinates are in that system, so
    every feature was refused on its own as out of range, with no word about the cause."""
    name = crs_name(crs)
    if name is not None and not is_wgs84(name):
        raise ImportFailed(
            f"{path} gives its coordinates in crs {name}, not WGS84 longitude/latitude, the "
            "only system GeoJSON has (RFC 7946): reproject it first (ogr2ogr -t_srs "
            "EPSG:4326 out.geojson in.geojson)"
        )


@lru_cache(maxsize=4096)
def _name(prop_name: str) -> str | ValueError:
    """A property name as an attribute name (the CSV importer's renaming), or why it cannot be
    one; a feature collection repeats its names in every feature, so each is worked out once."""
    try:
        return attribute_name(prop_name)
    except ValueError as exc:
        return exc
