"""Small builders for normalized NGSI-LD attributes and ids, shared by every importer."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from cityhub.ngsild.context import is_absolute_iri
from cityhub.ngsild.entity import ENTITY_KEYS

_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)?(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INT_LIMIT = 2**63  # orjson and SQLite hold 64-bit integers; longer digit strings stay text
_ID_SAFE = re.compile(r"[A-Za-z0-9._~:@!$&'()*+,;=-]*")
_BAD_NAME_RUN = re.compile(r"[\s<>\"'=;()\x00-\x1f\\]+")


def prop(value: Any, observed_at: str | None = None) -> dict[str, Any]:
    """A Property; observedAt when the source says when the value was true."""
    attr: dict[str, Any] = {"type": "Property", "value": value}
    if observed_at is not None:
        attr["observedAt"] = observed_at
    return attr


def rel(target: str) -> dict[str, Any]:
    """A Relationship to another entity (GTFS references become these)."""
    return {"type": "Relationship", "object": target}


def geo(geometry: dict[str, Any], observed_at: str | None = None) -> dict[str, Any]:
    """A GeoProperty, so the hub indexes the geometry for geoQ."""
    return prop(geometry, observed_at) | {"type": "GeoProperty"}


def point(lon: float, lat: float) -> dict[str, Any]:
    """A GeoJSON Point in GeoJSON order (longitude first)."""
    return {"type": "Point", "coordinates": [lon, lat]}


def id_part(text: str) -> str:
    """Percent-encode what an entity id may not hold, so any source key becomes a valid URI."""
    if _ID_SAFE.fullmatch(text):
        return text
    return quote(text, safe="~:@!$&'()*+,;=")


def urn(entity_type: str, key: str) -> str:
    """Build ids as urn:ngsi-ld:<type>:<key>, the Smart Data Models convention."""
    return f"urn:ngsi-ld:{entity_type}:{id_part(key)}"


def entity_id(raw: str, prefix: str) -> str:
    """Keep an id that is already an absolute URI; otherwise prefix its encoded form."""
    return raw if is_absolute_iri(raw) else prefix + id_part(raw)


def scalar(text: str) -> int | float | str:
    """A cell as a number when it reads as one as JSON writes numbers: a leading zero (a code,
    a ZIP) or a leading `+` (a phone number, +33...) keeps it text."""
    if not text or not (text[0].isdigit() or text[0] in "-."):
        return text
    if _INT.fullmatch(text):
        number = int(text)
        return number if -_INT_LIMIT < number < _INT_LIMIT else text
    if any(c.isdigit() for c in text) and _FLOAT.fullmatch(text):
        value = float(text)
        return value if value not in (float("inf"), float("-inf")) else text
    return text


def attribute_name(header: str) -> str:
    """A column header as an attribute name: forbidden characters become '_'.

    Raises ValueError (with the reason) for a header no renaming can save.
    """
    name = _BAD_NAME_RUN.sub("_", header.strip()).strip("_")
    if not name:
        raise ValueError("it has no usable characters")
    if name.startswith("@"):
        raise ValueError("names starting with '@' are JSON-LD keywords")
    if name in ENTITY_KEYS:
        raise ValueError(f"NGSI-LD reserves {name!r} for the entity itself")
    return name
