"""Declarative payload mappings: checked once at provisioning, applied to every message.

A mapping is data (JSON), never code. Its stored form:

    {"attributes": {"<payload field>": {"name": "temperature", "type": "number",
                                       "unitCode": "CEL", "scale": 0.1, "offset": 0}},
     "points": {"location": {"lat": "<field>", "lon": "<field>"}},
     "observedAt": "<payload field>",
     "static": {"<attribute>": <an NGSI-LD attribute>},
     "unmapped": "ignore" | "keep"}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cityhub.ingest.agent.reasons import BAD_VALUE, NO_DATA, Rejected
from cityhub.jsonints import INT_MAX, INT_MIN
from cityhub.ngsild.entity import ENTITY_KEYS, check_name, check_uri
from cityhub.ngsild.errors import BadRequestData, NgsiLdError
from cityhub.ngsild.timeutil import format_ts, parse_ts

NUMBER, STRING, BOOLEAN, RELATIONSHIP = "number", "string", "boolean", "relationship"
VALUE_TYPES = (NUMBER, STRING, BOOLEAN, RELATIONSHIP)
TOP_KEYS = ("attributes", "points", "observedAt", "static", "unmapped")
FIELD_KEYS = ("name", "type", "unitCode", "scale", "offset", "prefix")
UNMAPPED = ("ignore", "keep")
# Epoch numbers at or above this are milliseconds (1e11 s is the year 5138, 1e11 ms is 1973).
MS_THRESHOLD = 1e11
# Readings dated before this come from a clock that was never set: one that lost power counts
# from 1970, or from 2000 as many RTC chips do (decision 080).
EARLIEST = datetime(2001, 1, 1, tzinfo=UTC)
_TRUE = frozenset({"true", "1", "on", "yes"})
_FALSE = frozenset({"false", "0", "off", "no"})

Doc = dict[str, Any]


def _bad(where: str, what: str) -> BadRequestData:
    return BadRequestData(f"{where} {what}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_field_name(field: Any, where: str) -> str:
    if not isinstance(field, str) or not field or len(field) > 128 or "|" in field:
        raise _bad(where, f"has a bad payload field name {field!r} (1-128 characters, no '|')")
    return field


# -- checking the stored form -------------------------------------------------------------------
def check_mapping(raw: Any, where: str = "mapping") -> Doc:
    """Validate a mapping's shape and return its stored form (400 naming the bad member)."""
    if not isinstance(raw, dict):
        raise _bad(where, "must be a JSON object")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise _bad(where, f"has unknown member(s) {unknown}; allowed: {', '.join(TOP_KEYS)}")
    out: Doc = {}
    attrs = raw.get("attributes", {})
    if not isinstance(attrs, dict):
        raise _bad(f"{where}.attributes", "must be a JSON object: payload field -> attribute")
    if attrs:
        out["attributes"] = {
            _check_field_name(f, f"{where}.attributes"): _check_field(
                f, spec, f"{where}.attributes.{f}"
            )
            for f, spec in attrs.items()
        }
    points = raw.get("points", {})
    if not isinstance(points, dict):
        raise _bad(f"{where}.points", "must be a JSON object: attribute -> {lat, lon}")
    if points:
        out["points"] = {
            check_name(name): _check_point(spec, f"{where}.points.{name}")
            for name, spec in points.items()
        }
    if raw.get("observedAt") is not None:
        out["observedAt"] = _check_field_name(raw["observedAt"], f"{where}.observedAt")
    static = raw.get("static", {})
    if not isinstance(static, dict):
        raise _bad(f"{where}.static", "must be a JSON object: attribute -> NGSI-LD attribute")
    if static:
        for name in static:
            if name in ENTITY_KEYS:
                raise _bad(f"{where}.static", f"cannot set the entity member {name!r}")
            check_name(name)
        out["static"] = static
    if "unmapped" in raw:
        if raw["unmapped"] not in UNMAPPED:
            raise _bad(f"{where}.unmapped", f"must be one of {', '.join(UNMAPPED)}")
        out["unmapped"] = raw["unmapped"]
    return out


def _check_field(field: str, spec: Any, where: str) -> Doc:
    if not isinstance(spec, dict):
        raise _bad(where, 'must be a JSON object such as {"name": "temperature", "type": "number"}')
    unknown = sorted(set(spec) - set(FIELD_KEYS))
    if unknown:
        raise _bad(where, f"has unknown member(s) {unknown}; allowed: {', '.join(FIELD_KEYS)}")
    name = spec.get("name", field)
    if name in ENTITY_KEYS:
        raise _bad(f"{where}.name", f"cannot be the entity member {name!r}")
    out: Doc = {"name": check_name(name), "type": spec.get("type", NUMBER)}
    if out["type"] not in VALUE_TYPES:
        raise _bad(f"{where}.type", f"must be one of {', '.join(VALUE_TYPES)}")
    for key in ("scale", "offset"):
        if key in spec:
            if out["type"] != NUMBER:
                raise _bad(f"{where}.{key}", "applies to number attributes only")
            if not _is_number(spec[key]):
                raise _bad(f"{where}.{key}", f"must be a finite number, got {spec[key]!r}")
            out[key] = spec[key]
    if "unitCode" in spec:
        if out["type"] != NUMBER:
            raise _bad(f"{where}.unitCode", "applies to number attributes only")
        if not isinstance(spec["unitCode"], str) or not spec["unitCode"]:
            raise _bad(f"{where}.unitCode", "must be a UN/CEFACT code such as CEL")
        out["unitCode"] = spec["unitCode"]
    if "prefix" in spec:
        if out["type"] != RELATIONSHIP:
            raise _bad(f"{where}.prefix", "applies to relationship attributes only")
        if not isinstance(spec["prefix"], str):
            raise _bad(f"{where}.prefix", "must be a string such as urn:ngsi-ld:Room:")
        if spec["prefix"]:  # with a typical id after it, it must make an entity id
            try:
                check_uri(spec["prefix"] + "1", "prefix")
            except NgsiLdError:
                raise _bad(
                    f"{where}.prefix",
                    f"must begin an absolute URI, such as urn:ngsi-ld:Room:; "
                    f"got {spec['prefix']!r}",
                ) from None
        out["prefix"] = spec["prefix"]
    return out


def _check_point(spec: Any, where: str) -> Doc:
    if not isinstance(spec, dict) or set(spec) != {"lat", "lon"}:
        raise _bad(where, 'must be {"lat": "<payload field>", "lon": "<payload field>"}')
    return {
        "lat": _check_field_name(spec["lat"], f"{where}.lat"),
        "lon": _check_field_name(spec["lon"], f"{where}.lon"),
    }


def merge(base: Doc | None, over: Doc | None) -> Doc:
    """A device's mapping over its source's: member by member, the device's entries win."""
    base, over = base or {}, over or {}
    out: Doc = {}
    for key in ("attributes", "points", "static"):
        merged = {**base.get(key, {}), **over.get(key, {})}
        if merged:
            out[key] = merged
    for key in ("observedAt", "unmapped"):
        if key in over or key in base:
            out[key] = over.get(key, base.get(key))
    return out


def check_effective(doc: Doc, where: str = "mapping") -> None:
    """The mapping a device ends up with: each attribute is written by one rule only."""
    owners: dict[str, str] = {}
    entries = [(spec["name"], f"attributes.{f}") for f, spec in doc.get("attributes", {}).items()]
    entries += [(name, f"points.{name}") for name in doc.get("points", {})]
    entries += [(name, f"static.{name}") for name in doc.get("static", {})]
    for name, rule in entries:
        if name in owners:
            raise _bad(where, f"writes attribute {name!r} twice ({owners[name]} and {rule})")
        owners[name] = rule


def sample_attributes(doc: Doc) -> Doc:
    """Attributes with a typical value for every rule: NGSI-LD validation of the mapping."""
    samples = {
        NUMBER: 1.5,
        STRING: "text",
        BOOLEAN: True,
    }
    out: Doc = {}
    for spec in doc.get("attributes", {}).values():
        if spec["type"] == RELATIONSHIP:
            target = spec.get("prefix", "") + "1" if spec.get("prefix") else "urn:ngsi-ld:Sample:1"
            out[spec["name"]] = {"type": "Relationship", "object": target}
        else:
            attr: Doc = {"type": "Property", "value": samples[spec["type"]]}
            if "unitCode" in spec:
                attr["unitCode"] = spec["unitCode"]
            out[spec["name"]] = attr
    for name in doc.get("points", {}):
        out[name] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [0.0, 0.0]}}
    out.update(doc.get("static", {}))
    return out


# -- applying it ----------------------------------------------------------------------------------
def _fail(field: str, want: str, raw: Any) -> Rejected:
    return Rejected(BAD_VALUE, f"payload field {field!r}: expected {want}, got {str(raw)[:80]!r}")


def to_number(raw: Any, field: str) -> int | float:
    """A JSON number or a numeric string (compact text carries only strings)."""
    value: int | float
    if isinstance(raw, bool):
        raise _fail(field, "a number", raw)
    if isinstance(raw, int | float):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip()
        if not text.isascii() or "_" in text:  # Python reads "1_000" and "٣" as numbers
            raise _fail(field, "a number", raw)
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise _fail(field, "a number", raw) from None
        else:
            if not INT_MIN <= value <= INT_MAX:  # stored, it was rounded (jsonints)
                raise _fail(field, "an integer from -2^63 to 2^63-1 (or a decimal number)", raw)
    else:
        raise _fail(field, "a number", raw)
    if not math.isfinite(value):
        raise _fail(field, "a finite number", raw)
    return value


def to_boolean(raw: Any, field: str) -> bool:
    """true/false, 1/0, on/off, yes/no."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise _fail(field, "a boolean", raw)


def to_time(
    raw: Any, field: str, not_after: float | None = None, zone: tzinfo | None = None
) -> str:
    """observedAt from an ISO 8601 string or epoch seconds/milliseconds; a time past
    `not_after` (epoch seconds: the receipt plus the clock drift allowed) is refused, as a
    device clock that is wrong or in local time would hold its entity's latest reading, and
    so is one before EARLIEST, whose readings would all be late ones (decision 080)."""
    when = _when(raw, zone)
    if when is None:
        raise _fail(field, "an ISO 8601 date-time or epoch seconds/milliseconds", raw)
    if when < EARLIEST:
        raise Rejected(
            BAD_VALUE,
            f"payload field {field!r}: {format_ts(when)} is before 2001, the time of a device "
            "clock that was never set (or lost power); set its clock, or leave the field out: "
            "the reading is then stored as of its arrival",
        )
    if not_after is not None and when.timestamp() > not_after:
        raise Rejected(
            BAD_VALUE,
            f"payload field {field!r}: {format_ts(when)} is "
            f"{when.timestamp() - not_after:,.0f} s further ahead of the hub's clock than the "
            "drift allowed (CITYHUB_INGEST_MAX_AHEAD); check the device's clock and time zone",
        )
    return format_ts(when)


def device_zone(name: str) -> tzinfo:
    """The IANA zone CITYHUB_INGEST_TIMEZONE names; ValueError naming examples if none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{name!r} is no IANA time zone (e.g. Asia/Seoul, Europe/Paris, UTC)"
        ) from exc


def _when(raw: Any, zone: tzinfo | None = None) -> datetime | None:
    """The time a payload's time field names (None: it names none); a text without a zone
    offset is read in `zone`, when one is set (devices that keep local time)."""
    try:
        if _is_number(raw):
            seconds = raw / 1000 if abs(raw) >= MS_THRESHOLD else raw
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(raw, str):
            text = raw.strip()
            try:
                number = float(text)
            except ValueError:
                when = parse_ts(text)
                if (
                    zone is not None
                    and datetime.fromisoformat(text.replace("z", "Z")).tzinfo is None
                ):
                    return when.replace(tzinfo=zone).astimezone(UTC)
                return when
            return _when(number)
    except (NgsiLdError, ValueError, OverflowError, OSError):
        pass
    return None


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One payload field -> one attribute."""

    field: str
    name: str
    kind: str
    unit: str | None = None
    scale: float | None = None
    offset: float | None = None
    prefix: str = ""

    def attribute(self, raw: Any) -> Doc:
        """The NGSI-LD attribute for a raw value (Rejected when it does not convert)."""
        kind = self.kind
        if kind == NUMBER:
            value = to_number(raw, self.field)
            if self.scale is not None or self.offset is not None:
                value = round(value * (1 if self.scale is None else self.scale), 10)
                value = round(value + (self.offset or 0), 10)
                if not math.isfinite(value):  # stored, an infinity became null
                    raise _fail(self.field, "a number that stays finite when scaled", raw)
            attr: Doc = {"type": "Property", "value": value}
            if self.unit:
                attr["unitCode"] = self.unit
            return attr
        if kind == STRING:
            if isinstance(raw, dict | list):
                raise _fail(self.field, "a string", raw)
            if isinstance(raw, bool):
                return {"type": "Property", "value": "true" if raw else "false"}
            return {"type": "Property", "value": raw if isinstance(raw, str) else str(raw)}
        if kind == BOOLEAN:
            return {"type": "Property", "value": to_boolean(raw, self.field)}
        if not isinstance(raw, str) or not raw:
            raise _fail(self.field, "an entity id", raw)
        try:
            target = check_uri(self.prefix + raw.strip(), "Relationship object")
        except NgsiLdError:
            raise _fail(self.field, "an entity id (an absolute URI)", self.prefix + raw) from None
        return {"type": "Relationship", "object": target}


@dataclass(frozen=True, slots=True)
class PointRule:
    """Two payload fields (latitude, longitude) -> one GeoProperty Point."""

    name: str
    lat: str
    lon: str

    def attribute(self, payload: Doc) -> Doc | None:
        """The Point, None when neither field is present."""
        lat, lon = payload.get(self.lat), payload.get(self.lon)
        if lat is None and lon is None:
            return None
        if lat is None or lon is None:
            missing = self.lat if lat is None else self.lon
            raise Rejected(
                BAD_VALUE, f"payload field {missing!r} is missing for point {self.name!r}"
            )
        y, x = to_number(lat, self.lat), to_number(lon, self.lon)
        if not -90 <= y <= 90:
            raise _fail(self.lat, "a latitude in [-90, 90]", lat)
        if not -180 <= x <= 180:
            raise _fail(self.lon, "a longitude in [-180, 180]", lon)
        return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [x, y]}}


@dataclass(frozen=True)
class Mapping:
    """A compiled mapping: apply() turns one payload object into NGSI-LD attributes."""

    fields: tuple[FieldRule, ...]
    points: tuple[PointRule, ...]
    observed_at: str | None
    static: Doc
    keep_unmapped: bool
    consumed: frozenset[str]  # payload fields some rule reads (never kept as themselves)

    def apply(
        self,
        payload: Doc,
        textual: bool = False,
        not_after: float | None = None,
        zone: tzinfo | None = None,
    ) -> Doc:
        """Attributes for one measurement; Rejected (bad_value / no_data) when unusable, or
        when it was observed after `not_after` (epoch seconds); a time without a zone offset
        is read in `zone` (UTC when None)."""
        observed = None
        if self.observed_at is not None:
            raw_time = payload.get(self.observed_at)
            if raw_time is not None:
                observed = to_time(raw_time, self.observed_at, not_after, zone)
        attrs: Doc = {}
        for rule in self.fields:
            raw = payload.get(rule.field)
            if raw is not None:
                attrs[rule.name] = rule.attribute(raw)
        for point in self.points:
            geo = point.attribute(payload)
            if geo is not None:
                attrs[point.name] = geo
        if self.keep_unmapped:
            for field, raw in payload.items():
                if field not in self.consumed and raw is not None and field not in attrs:
                    attrs[field] = _kept(field, raw, textual)
        if not attrs:
            raise Rejected(NO_DATA, "no field of the payload maps to an attribute")
        if observed is not None:
            for attr in attrs.values():
                attr["observedAt"] = observed
        return attrs


def _kept(field: str, raw: Any, textual: bool) -> Doc:
    """An unmapped field kept as a Property of the same name (numbers stay numbers)."""
    if field in ENTITY_KEYS:
        raise Rejected(BAD_VALUE, f"payload field {field!r} cannot become an attribute")
    try:
        check_name(field)
    except NgsiLdError:
        raise Rejected(
            BAD_VALUE, f"payload field {field!r} is not a valid attribute name"
        ) from None
    if textual and isinstance(raw, str):
        try:
            return {"type": "Property", "value": to_number(raw, field)}
        except Rejected:
            return {"type": "Property", "value": raw}
    return {"type": "Property", "value": raw}


def compile_mapping(doc: Doc) -> Mapping:
    """The hot-path form of a stored (already checked) mapping."""
    fields = tuple(
        FieldRule(
            field=f,
            name=spec["name"],
            kind=spec["type"],
            unit=spec.get("unitCode"),
            scale=spec.get("scale"),
            offset=spec.get("offset"),
            prefix=spec.get("prefix", ""),
        )
        for f, spec in doc.get("attributes", {}).items()
    )
    points = tuple(
        PointRule(name, spec["lat"], spec["lon"]) for name, spec in doc.get("points", {}).items()
    )
    consumed = {r.field for r in fields} | {p.lat for p in points} | {p.lon for p in points}
    if doc.get("observedAt"):
        consumed.add(doc["observedAt"])
    default = "ignore" if fields or points else "keep"
    return Mapping(
        fields=fields,
        points=points,
        observed_at=doc.get("observedAt"),
        static=doc.get("static", {}),
        keep_unmapped=doc.get("unmapped", default) == "keep",
        consumed=frozenset(consumed),
    )
