"""Input side of the information model: validate NGSI-LD bodies and expand them for storage.

Stored form: names and types are IRIs, every attribute is a list of instances (one per
datasetId), sub-attributes sit under "sub" so they never clash with reserved keys.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, NoReturn
from urllib.parse import quote

from cityhub.ngsild.context import TermMap, is_absolute_iri
from cityhub.ngsild.core_context import NGSI_LD
from cityhub.ngsild.errors import (
    BadRequestData,
    InvalidRequest,
    MethodNotAllowed,
    excerpt,
    shown,
)
from cityhub.ngsild.languages import check_language_map
from cityhub.ngsild.nested_null import NULL_URI, check_nested, holds_null, refuse_first_level
from cityhub.ngsild.timeutil import parse_ts

Instance = dict[str, Any]
Attrs = dict[str, list[Instance]]

ATTR_TYPES = frozenset(
    {
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "VocabProperty",
        "ListProperty",
        "ListRelationship",
        "JsonProperty",
    }
)
GEO_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)
# The member that carries each attribute type's content.
CONTENT_KEY = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
    "JsonProperty": "json",
}
_INFER_ORDER = (
    ("object", "Relationship"),
    ("languageMap", "LanguageProperty"),
    ("vocab", "VocabProperty"),
    ("valueList", "ListProperty"),
    ("objectList", "ListRelationship"),
    ("json", "JsonProperty"),
    ("value", "Property"),
)
META_KEYS = frozenset({"observedAt", "unitCode", "datasetId", "objectType"})
# members only some attribute types carry (5.2.5 Property, 5.2.6 Relationship, ...), and
# what to call those types in an error
TYPED_MEMBERS = {
    "unitCode": (("Property", "ListProperty"), "Properties and ListProperties"),
    "objectType": (("Relationship", "ListRelationship"), "relationships"),
}
SYS_KEYS = frozenset({"createdAt", "modifiedAt", "deletedAt", "instanceId"})
RESERVED_INSTANCE_KEYS = (
    frozenset(CONTENT_KEY.values()) | META_KEYS | SYS_KEYS | {"type", "lang", "@context"}
)
ENTITY_KEYS = frozenset(
    {"id", "@id", "type", "@type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"}
)
GEO_ATTRS = frozenset(
    {NGSI_LD + "location", NGSI_LD + "observationSpace", NGSI_LD + "operationSpace"}
)
# Expanded names of members an attribute (or a sub-attribute) would hide once compacted:
# `ngsi-ld:scope` as an attribute rendered as "scope" over the entity's own scope.
_ENTITY_MEMBERS = frozenset(NGSI_LD + n for n in ("scope", "createdAt", "modifiedAt", "deletedAt"))
_INSTANCE_MEMBERS = _ENTITY_MEMBERS - {NGSI_LD + "scope"} | frozenset(
    NGSI_LD + n
    for n in (
        *("observedAt", "unitCode", "datasetId", "objectType", "instanceId", "lang"),
        *("hasValue", "hasObject", "hasLanguageMap", "hasVocab", "hasValueList"),
        *("hasObjectList", "hasJSON"),
    )
)
_BAD_NAME = re.compile(r"[\s<>\"'=;()\x00-\x1f\\]")


MAX_VALUE_ITEMS = 10_000  # items of one array value (value, object, vocab, valueList, ...)
# What one entity body may hold. Writes are validated and stored on the event loop, at some
# 50 µs per attribute (150 µs with both cores busy), 10 per array item or position: one
# entity of 300,000 attributes held every other request for 19 s. At the bounds one entity
# takes about 0.1-0.2 s (0.3-0.55 s on the busy cores); no city model comes near them.
MAX_ATTRS = 2_000  # attribute instances (each datasetId's) and sub-attributes
MAX_ITEMS = 20_000  # items of array values and positions of geometries, all values together


class TooLarge(BadRequestData):
    """A body past one of its bounds: the whole body's fault, not one attribute's."""


class Budget:
    """What is left of a body's bounds while it is expanded: each attribute instance and
    sub-attribute takes one of `attrs`, each array item and geometry position one of
    `items`; past either the body is refused before more of it is expanded."""

    __slots__ = ("advice", "attrs", "attrs_left", "items", "items_left", "unit", "what")

    def __init__(
        self,
        attrs: int = MAX_ATTRS,
        items: int = MAX_ITEMS,
        *,
        what: str = "an entity",
        unit: str = "attributes, each datasetId instance and each sub-attribute counted",
        advice: str = "split it into several entities",
    ) -> None:
        self.attrs, self.items, self.attrs_left, self.items_left = attrs, items, attrs, items
        self.what, self.unit, self.advice = what, unit, advice

    def take_attr(self) -> None:
        """Take an attribute instance or a sub-attribute."""
        self.attrs_left -= 1
        if self.attrs_left < 0:
            self.refuse_attrs()

    def check_attrs(self, count: int) -> None:
        """Refuse at once a body whose attributes, counted before they are expanded, are
        more than are left (most are well under it: only then is it worth counting them)."""
        if count > self.attrs_left:
            self.refuse_attrs()

    def refuse_attrs(self) -> NoReturn:
        raise TooLarge(f"{self.what} holds at most {self.attrs:,} {self.unit}; {self.advice}")

    def take_items(self, count: int) -> None:
        """Take the items of an array value, or the positions of a geometry."""
        self.items_left -= count
        if self.items_left < 0:
            raise TooLarge(
                f"{self.what} holds at most {self.items:,} items of array values and positions "
                f"of geometries, all its attributes together; {self.advice}"
            )


def _quoted(name: Any) -> str:
    """A refused name as an error quotes it: its start when it is long text."""
    return excerpt(name) if isinstance(name, str) else excerpt(repr(name))[1:-1]


def check_name(name: Any, what: str = "attribute name") -> str:
    """Reject names NGSI-LD forbids (empty, keywords, whitespace, <>\"'=;() and controls)."""
    if not isinstance(name, str) or not name or name.startswith("@"):
        raise BadRequestData(f"invalid {what}: {_quoted(name)}")
    bad = _BAD_NAME.search(name)
    if bad:
        raise BadRequestData(
            f"invalid {what}: {excerpt(name)} holds {bad.group()!r} (names cannot hold whitespace, "
            "control characters or <>\"'=;()\\)"
        )
    return name


def expand_name(name: Any, tm: TermMap, what: str = "attribute name") -> str:
    """Validate a name and expand it; a name that maps to a JSON-LD keyword is invalid."""
    if isinstance(name, str):
        known = tm.checked.get(name)
        if known is not None:
            return known
    iri = tm.expand(check_name(name, what))
    if iri.startswith("@"):
        raise BadRequestData(f"invalid {what}: {excerpt(name)} is a JSON-LD keyword")
    if len(tm.checked) < 10_000:
        tm.checked[name] = iri
    return iri


def check_member_name(iri: str, name: str, sub: bool = False) -> str:
    """Refuse a name that expands to a member NGSI-LD itself gives an entity (or an instance,
    for a sub-attribute): stored, it hid that member from every read."""
    if iri in (_INSTANCE_MEMBERS if sub else _ENTITY_MEMBERS):
        what = "a sub-attribute" if sub else "an attribute"
        raise BadRequestData(f"{shown(name)} names the NGSI-LD member {iri}; it cannot be {what}")
    return iri


def is_null_instance(typ: str, raw: dict[str, Any]) -> bool:
    """The NGSI-LD null marker of each attribute type (a merge or update deletes it)."""
    content = raw.get(CONTENT_KEY.get(typ, "value"))
    if typ == "LanguageProperty":
        return content == {"@none": NULL_URI}
    if typ in ("ListProperty", "ListRelationship"):
        return content in ([NULL_URI], [{"object": NULL_URI}])
    return bool(content == NULL_URI)


def refuse_null(what: str) -> NoReturn:
    """The 400 for the marker in a write that cannot delete (5.2.1): stored, it was served as
    data to every reader, and the client meant a deletion the write never made."""
    raise BadRequestData(
        f"{what} cannot be {NULL_URI} here: the NGSI-LD Null deletes only in a merge "
        "(PATCH /entities/{id}, entityOperations/merge) or an update (PATCH .../attrs, "
        "entityOperations/update); leave the attribute out, or delete it"
    )


_BAD_URI = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f]")
# Characters an id (any URI the hub keys on: entity id, datasetId, subscription and registration
# id, instanceId, Relationship object) may take in a URL path, percent-encoded as the hub writes
# it in Location: the longest path naming one, /ngsi-ld/v1/temporal/entities/{id}/attrs/{name}/
# {instanceId}, then fits the 2,048 characters most HTTP stacks take for a URL.
MAX_URI_LENGTH = 1024


_ATTRS_PATH = re.compile(r"/attrs(/[^/]*)?/?$")


@functools.lru_cache(maxsize=4096)
def check_path_id(value: str, encoded: bool = False) -> str:
    """An entity id taken from a path; `<id>/attrs/...` reached a method /attrs lacks, unless
    the slash came encoded (%2F): then it is part of the id. Clients read the same ids again
    and again: a valid one is remembered (a refused one raises, and is not)."""
    if not encoded and _ATTRS_PATH.search(value):
        raise MethodNotAllowed(f"this method is not allowed on {shown(value)}")
    return check_uri(value, "entity id")


def check_uri(value: Any, what: str) -> str:
    """NGSI-LD ids must be absolute URIs (RFC 3986 characters only), short enough to address."""
    # at most 12 characters encoded per character: most ids are far too short to need quote()
    if isinstance(value, str) and len(value) * 12 > MAX_URI_LENGTH:
        long = len(value) > MAX_URI_LENGTH  # then it is too long however it is encoded
        size = len(value) if long else len(quote(value, safe=":"))
        if size > MAX_URI_LENGTH:
            raise BadRequestData(
                f"{what} must take at most {MAX_URI_LENGTH:,} characters in a URL "
                f"(percent-encoded); {value[:60]!r}... takes {'at least ' if long else ''}"
                f"{size:,}"
            )
    if not isinstance(value, str) or not is_absolute_iri(value) or _BAD_URI.search(value):
        raise BadRequestData(f"{what} must be an absolute URI, got {shown(value)}")
    return value


def expand_types(raw: Any, tm: TermMap) -> list[str]:
    """An entity's type member (string or list) as a list of IRIs. The null marker is no
    type: stored, `{"type": "urn:ngsi-ld:null"}` in a merge gave the entity that type (in
    every read and in /types) where the client meant to remove one."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise BadRequestData("entity type must not be empty")
    out = []
    for item in items:
        if item == NULL_URI:
            raise BadRequestData(
                f"an entity type cannot be {NULL_URI}: no write deletes a type; a PUT of "
                "the entity (or an upsert) replaces its types"
            )
        iri = expand_name(item, tm, "entity type")
        if iri not in out:
            out.append(iri)
    return out


def expand_scope(raw: Any) -> list[str]:
    """Scopes are '/'-separated paths; keep them as given."""
    items = raw if isinstance(raw, list) else [raw]
    for item in items:
        if item == NULL_URI:
            raise BadRequestData(
                f"scope cannot be {NULL_URI} here: the NGSI-LD Null removes the scope only in "
                "a merge or an update"
            )
        if not isinstance(item, str) or not item.startswith("/") or _BAD_NAME.search(item):
            raise BadRequestData(f"invalid scope {shown(item)}")
    return list(items)


def entity_object(body: Any) -> dict[str, Any]:
    """body, when it is an entity's JSON object at all: what a write answers for one that
    is not, a single write or a batch item alike."""
    if not isinstance(body, dict) or not body:
        raise InvalidRequest("an entity must be a non-empty JSON object")
    return body


def expand_entity(
    body: Any, tm: TermMap, *, need_id: bool = True, nulls: bool = False
) -> dict[str, Any]:
    """Validate a whole entity (normalized or concise) and return its stored form; with
    nulls (batch update), attributes and a scope given the null marker are deletions."""
    entity_object(body)
    body = unaliased(body)
    eid = body.get("id")
    if need_id or eid is not None:
        check_uri(eid, "entity id")
        if eid == NULL_URI:
            refuse_null("an entity id")
    raw_type = body.get("type")
    if raw_type is None:
        raise BadRequestData("entity type is required")
    doc: dict[str, Any] = {"id": eid, "type": expand_types(raw_type, tm)}
    if "scope" in body and not (nulls and body["scope"] == NULL_URI):
        doc["scope"] = expand_scope(body["scope"])
    doc["attrs"] = expand_attrs(body, tm, skip=ENTITY_KEYS, nulls=nulls)
    return doc


def expand_attrs(
    body: Any,
    tm: TermMap,
    *,
    skip: frozenset[str] = ENTITY_KEYS,
    nulls: bool = False,
    merge: bool = False,
    stored: Attrs | None = None,
    budget: Budget | None = None,
) -> Attrs:
    """A fragment of attributes (entity body or /attrs payload) in stored form.

    With nulls, an instance holding the null marker comes back as {"type": ..., "null": True};
    with merge too, the marker may also be a key's value in a Property's JSON object.
    With the stored attributes (a merge), a type-less fragment of a stored instance is read
    as a part of it (fragment_kind). The body holds at most MAX_ATTRS attributes and
    MAX_ITEMS items (Budget).
    """
    if not isinstance(body, dict):
        raise BadRequestData("attributes must be given as a JSON object")
    budget = budget or Budget()
    if len(body) > budget.attrs_left:
        budget.check_attrs(sum(1 for name in body if name not in skip))
    attrs: Attrs = {}
    keys: dict[str, str] = {}  # IRI → the body key that first named it
    for name, raw in body.items():
        if name in skip:
            continue
        iri = check_member_name(expand_name(name, tm), name)
        into = stored.get(iri, ()) if stored else ()
        try:
            instances = expand_attribute(
                iri, raw, tm, nulls=nulls, merge=merge, stored=into, budget=budget
            )
        except BadRequestData as exc:
            raise naming(exc, "attribute", name) from None
        if iri in attrs:  # a term and its IRI: one attribute, as JSON-LD expansion joins them
            _check_joined(attrs[iri], instances, keys[iri], name)
            attrs[iri] += instances
        else:
            attrs[iri], keys[iri] = instances, name
    return attrs


def _check_joined(first: list[Instance], more: list[Instance], key: str, name: str) -> None:
    """Two keys of one body that name the same attribute may not both give an instance of
    one datasetId: the second overwrote the first without a word (201 with data lost)."""
    given = {i.get("datasetId") for i in first}
    for inst in more:
        ds = inst.get("datasetId")
        if ds in given:
            which = "the default instance" if ds is None else f"datasetId {shown(ds)}"
            raise BadRequestData(
                f"{shown(key)} and {shown(name)} name the same attribute; both give {which}"
            )


def naming(exc: BadRequestData, what: str, name: str) -> BadRequestData:
    """The error with the (sub-)attribute it is about in front: in a 30-attribute entity the
    detail alone left the reader to guess which one was wrong."""
    if isinstance(exc, TooLarge):
        return exc  # about the whole body
    if exc.detail.startswith((name + " ", f"attribute {shown(name)}", f"attribute {name} ")):
        return exc  # it names the attribute already
    return type(exc)(f"{what} {shown(name)}: {exc.detail}", **exc.extra)


def expand_attribute(
    iri: str,
    raw: Any,
    tm: TermMap,
    *,
    nulls: bool = False,
    merge: bool = False,
    stored: Sequence[Instance] = (),
    budget: Budget | None = None,
    history: bool = False,
) -> list[Instance]:
    """One attribute: a single instance or a list of them with distinct datasetIds; an item
    that is a fragment of one of the stored instances merges into it as that kind. With
    history (temporal input), an instance holding the null marker is a deletion's record."""
    budget = budget or Budget()
    if type(raw) is dict:
        plain = _plain_instance(iri, raw, tm, budget, nulls)
        if plain is not None:
            return [plain]
    items = raw if isinstance(raw, list) and _is_multi(raw) else (raw,)
    budget.check_attrs(len(items))
    out: list[Instance] = []
    seen: set[str | None] = set()
    for item in items:
        kind = fragment_kind(item, stored) if stored else None
        if kind:
            inst = expand_instance(
                {**item, "type": kind}, tm, nulls=nulls, merge=merge, fragment=True, budget=budget
            )
        else:
            inst = expand_instance(
                item, tm, nulls=nulls, merge=merge, budget=budget, history=history
            )
        if inst.get("null"):
            out.append(inst)
            continue
        if iri in GEO_ATTRS and inst["type"] != "GeoProperty":
            raise BadRequestData(f"{tm.compact(iri)} must be a GeoProperty")
        ds = inst.get("datasetId")
        if ds in seen:
            raise BadRequestData(f"attribute {tm.compact(iri)} repeats datasetId {shown(ds)}")
        seen.add(ds)
        out.append(inst)
    return out


# The instances most bodies hold, each type with the kinds of content it takes here: a
# Property of a number, string or boolean, a Relationship to one object, a GeoProperty; with
# observedAt and unitCode the only other members.
_PLAIN = {
    "Property": (int, float, str, bool),
    "Relationship": (str,),
    "GeoProperty": (dict,),
}
_PLAIN_MEMBERS = {  # unitCode on a Property only (TYPED_MEMBERS): elsewhere the general 400
    typ: frozenset(
        {"type", CONTENT_KEY[typ], "observedAt"} | ({"unitCode"} if typ == "Property" else set())
    )
    for typ in _PLAIN
}


def _plain_instance(
    iri: str, raw: dict[str, Any], tm: TermMap, budget: Budget, nulls: bool
) -> Instance | None:
    """expand_attribute's answer for one plain instance (_PLAIN), by expand_instance's own
    checks of it (_content, _meta) without the walk over every other form, which took half
    of a create's expansion; None for any other instance, which the general path expands
    (and refuses, when it must). With a type given, no merge fragment is read (fragment_kind),
    and no content here is or holds the null marker."""
    typ = raw.get("type")
    if type(typ) is not str:
        return None
    members = _PLAIN_MEMBERS.get(typ)
    if members is None or not raw.keys() <= members:
        return None
    key = CONTENT_KEY[typ]
    value = raw.get(key)
    if type(value) not in _PLAIN[typ] or value == NULL_URI:
        return None
    if iri in GEO_ATTRS and typ != "GeoProperty":
        return None  # the general path refuses it
    budget.take_attr()
    # a Property's number, string or boolean is its content as it is (_content's last line)
    inst = {"type": typ, key: value if typ == "Property" else _content(typ, value, tm, budget)}
    if "observedAt" in raw:
        inst["observedAt"] = _meta("observedAt", raw["observedAt"], tm, nulls)
    if "unitCode" in raw:
        inst["unitCode"] = _meta("unitCode", raw["unitCode"], tm, nulls)
    return inst


_INSTANCE_KEYS = frozenset({"type", "datasetId", *CONTENT_KEY.values()})
_CONTENT_KEYS = frozenset(CONTENT_KEY.values())


def fragment_kind(raw: Any, stored: Sequence[Instance]) -> str | None:
    """The type of the stored instance a type-less merge fragment is part of, else None.

    A fragment names no content member: it holds metadata (observedAt, unitCode, ...) or
    sub-attributes in their normalized form, to merge into the instance of its datasetId.
    Read alone, `{"since": {...}}` was a concise JSON value that replaced a Relationship's
    object, and `{"observedAt": ...}` an instance without content. Any other type-less object
    stays a concise JSON value.
    """
    if not stored or not isinstance(raw, dict) or "type" in raw or _CONTENT_KEYS & raw.keys():
        return None
    dataset = raw.get("datasetId")
    inst = next((i for i in stored if i.get("datasetId") == dataset), None)
    if inst is None:
        return None
    for key, value in raw.items():
        shaped = isinstance(value, dict) and ("type" in value or _CONTENT_KEYS & value.keys())
        if key not in META_KEYS and not shaped and value != NULL_URI:
            return None
    return str(inst["type"])


def _is_multi(raw: Any) -> bool:
    """A list of attribute objects is a multi-attribute; any other list is a concise value.

    Concise multi-attributes may omit type on every item (the default instance has no
    datasetId either), so an item counts when it holds a content member or a type.
    """
    return (
        isinstance(raw, list)
        and bool(raw)
        and all(isinstance(x, dict) and _INSTANCE_KEYS & x.keys() for x in raw)
        and any("type" in x or "datasetId" in x for x in raw)
        and not all(is_geo_type(x.get("type")) for x in raw)
    )


def is_geo_type(value: Any) -> bool:
    """Whether a client's "type" member names a GeoJSON geometry (lists and objects do not)."""
    return isinstance(value, str) and value in GEO_TYPES


def _infer_type(raw: dict[str, Any]) -> str:
    """Concise form: the attribute type follows from which content member is present."""
    for key, typ in _INFER_ORDER:
        if key in raw:
            return typ
    return ""


def expand_instance(
    raw: Any,
    tm: TermMap,
    *,
    sub: bool = False,
    nulls: bool = False,
    merge: bool = False,
    fragment: bool = False,
    budget: Budget | None = None,
    history: bool = False,
) -> Instance:
    """Validate one attribute instance and expand its names and vocab values.

    A fragment (partial attribute update) may omit the type and the content member. With
    nulls (a merge or an update) the null marker as a whole content or member deletes, and
    inside a content only a merge takes it (nested_null.check_nested); with history
    (temporal input) a content of the marker is kept as a deletion's record (5.5.4 excepts
    the temporal evolution), the bare marker is a 400; otherwise the marker anywhere in the
    content is a 400 (5.2.1).
    """
    budget = budget or Budget()
    budget.take_attr()
    refuse = not (nulls or history)
    if not isinstance(raw, dict):
        if raw is None:
            raise BadRequestData("an attribute value must not be null")
        if nulls and raw == NULL_URI:
            return {"type": "Property", "null": True}
        if history and raw == NULL_URI:
            refuse_first_level("a value")
        if refuse and holds_null(raw):
            refuse_null("a value")
        if nulls:
            check_nested("Property", raw, "a value", merge=merge)
        return {"type": "Property", "value": raw}
    typ = raw.get("type")
    if typ is not None and not isinstance(typ, str):
        raise BadRequestData(f"an attribute's type must be a string, not {shown(typ)}")
    if (typ in GEO_TYPES and "coordinates" in raw) or typ == "GeometryCollection":
        budget.take_items(positions(raw))
        return {"type": "GeoProperty", "value": check_geometry(raw)}
    given_type = typ is not None
    if typ is None:
        typ = _infer_type(raw)
        if not typ and not fragment:
            if META_KEYS & raw.keys():  # not a JSON value: an instance without its content
                raise BadRequestData(
                    "an attribute needs its content (value, object, languageMap, ...); "
                    f"{sorted(META_KEYS & raw.keys())} alone merge only into a stored instance"
                )
            if refuse and holds_null(raw):
                refuse_null("a value")
            if nulls:
                check_nested("Property", raw, "a value", merge=merge)
            return {"type": "Property", "value": raw}
        value = raw.get("value")
        if typ == "Property" and isinstance(value, dict) and is_geo_type(value.get("type")):
            typ = "GeoProperty"  # concise: a geometry value makes a GeoProperty
    if typ and typ not in ATTR_TYPES:
        raise BadRequestData(f"unknown attribute type {shown(typ)}")
    if nulls and typ and is_null_instance(typ, raw):
        inst = {"type": typ, "null": True}
        if "datasetId" in raw:
            inst["datasetId"] = check_uri(raw["datasetId"], "datasetId")
        return inst
    key = CONTENT_KEY.get(typ, "")
    if fragment and key not in raw:
        inst = {"type": typ} if given_type else {}
    elif key not in raw or raw[key] is None:
        raise BadRequestData(f"a {typ} needs a non-null '{key}' member")
    else:
        if refuse and _content_holds_null(typ, raw[key]):
            refuse_null(f"a {typ}'s {key}")
        if nulls:
            check_nested(typ, raw[key], f"a {typ}'s {key}", merge=merge)
        inst = {"type": typ, key: _content(typ, raw[key], tm, budget)}
    for meta in ("observedAt", "unitCode", "datasetId", "objectType"):
        if meta in raw:
            inst[meta] = _meta(meta, raw[meta], tm, nulls)
    for member, (kinds, owners) in TYPED_MEMBERS.items():
        # stored, it was served until a merge that changed the type dropped it (the marker
        # may still remove one stored before)
        if member in inst and inst[member] is not None and typ and typ not in kinds:
            raise BadRequestData(f"{member} belongs to {owners}, not to a {typ}")
    if "lang" in raw:
        raise BadRequestData(
            "lang is not a member of an attribute one writes: it names the language a lang= "
            "read chose; write the strings as a LanguageProperty's languageMap "
            '({"type": "LanguageProperty", "languageMap": {"fr": "Pont"}})'
        )
    if "datasetId" in inst and sub:
        raise BadRequestData("sub-attributes cannot carry a datasetId")
    subs: dict[str, Instance] = {}
    if len(raw) > budget.attrs_left:
        budget.check_attrs(sum(1 for name in raw if name not in RESERVED_INSTANCE_KEYS))
    for name, value in raw.items():
        if name in RESERVED_INSTANCE_KEYS:
            continue
        iri = check_member_name(expand_name(name, tm, "sub-attribute name"), name, sub=True)
        try:
            subs[iri] = expand_instance(
                value, tm, sub=True, nulls=nulls, merge=merge, budget=budget, history=history
            )
        except BadRequestData as exc:
            raise naming(exc, "sub-attribute", name) from None
    if subs:
        inst["sub"] = subs
    return inst


def _content_holds_null(typ: str, value: Any) -> bool:
    """The marker in an attribute's content: anywhere in it, but a JsonProperty's JSON is
    opaque (only the marker as the whole of it is the Null) and a geometry holds no text."""
    if typ == "JsonProperty":
        return bool(value == NULL_URI)
    return typ != "GeoProperty" and holds_null(value)


def _content(typ: str, value: Any, tm: TermMap, budget: Budget) -> Any:
    """Check the content member of each attribute type."""
    if isinstance(value, list):
        if len(value) > MAX_VALUE_ITEMS:
            # each item is a row of the q index: 6,000,000 held the hub for 40 s and took 2 GB
            raise BadRequestData(
                f"a value holds at most {MAX_VALUE_ITEMS:,} items, not {len(value):,}: send a "
                "long series as temporal instances, or split it into several attributes"
            )
        budget.take_items(len(value))
    if typ == "Relationship":
        if isinstance(value, list):
            if not value:  # a relationship to nothing: `q=attr` could never find it
                raise BadRequestData("a Relationship's object list must not be empty")
            return [check_uri(v, "Relationship object") for v in value]
        return check_uri(value, "Relationship object")
    if typ == "GeoProperty":
        if isinstance(value, dict):
            budget.take_items(positions(value))
        return check_geometry(value)
    if typ == "LanguageProperty":
        return check_language_map(value)
    if typ == "VocabProperty":
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, str) and v for v in items):
            raise BadRequestData("vocab must be a string or a non-empty list of strings")
        expanded = [expand_name(v, tm, "vocab value") for v in items]
        return expanded if isinstance(value, list) else expanded[0]
    if typ == "ListProperty":
        if not isinstance(value, list):
            raise BadRequestData("valueList must be a JSON array")
        return value
    if typ == "ListRelationship":
        if not isinstance(value, list):
            raise BadRequestData("objectList must be a JSON array")
        return [_list_object(v) for v in value]
    return value


def _list_object(item: Any) -> str:
    """One objectList item: a URI, or {"object": URI} as reads show it; nothing else is kept,
    so anything beside "object" is refused rather than dropped."""
    if isinstance(item, dict):
        if "object" not in item:
            raise BadRequestData('an objectList item is a URI or {"object": URI}')
        if len(item) > 1:
            raise BadRequestData(
                'an objectList item is a URI or {"object": URI}; '
                f"{sorted(item.keys() - {'object'})} would be lost"
            )
        item = item["object"]
    return check_uri(item, "objectList item")


def _meta(key: str, value: Any, tm: TermMap, nulls: bool) -> Any:
    """Check observedAt, unitCode, datasetId and objectType; with nulls, the null marker on
    one of them comes back as None: the merge removes that member (RFC 7396)."""
    if value is None:  # JSON null: "not an ISO 8601 DateTime: None" left the client guessing
        how = f"; {NULL_URI} removes it in a merge or an update" if nulls else ""
        raise BadRequestData(f"{key} must not be null{how}")
    if value == NULL_URI:
        if key == "datasetId":  # 5.5.8: it names the instance; DELETE ?datasetId= removes that
            raise BadRequestData(f"a datasetId cannot be {NULL_URI}; delete the instance instead")
        if not nulls:  # stored, the marker was served to every reader as a unit or a time
            raise BadRequestData(
                f"{key} cannot be {NULL_URI} here: the NGSI-LD Null removes a member only in "
                "a merge or an update"
            )
        return None
    if key == "observedAt":
        parse_ts(value, "observedAt")
        return value
    if key == "datasetId":
        return check_uri(value, "datasetId")
    if key == "objectType":
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, str) for v in items):
            raise BadRequestData("objectType must be a type name or a non-empty list of them")
        expanded = [expand_name(v, tm, "objectType") for v in items]
        return expanded if isinstance(value, list) else expanded[0]
    if not isinstance(value, str):
        raise BadRequestData(f"{key} must be a string")
    return value


def _plain_point(coords: Any) -> bool:
    """Two or three finite numbers, longitude and latitude in range: a valid Point position."""
    return (
        isinstance(coords, list)
        and 2 <= len(coords) <= 3
        and all(type(c) in (int, float) and c == c and abs(c) != float("inf") for c in coords)
        and -180 <= coords[0] <= 180
        and -90 <= coords[1] <= 90
    )


_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2}


def positions(geometry: Any) -> int:
    """How many positions a GeoJSON geometry holds, counted from its arrays' lengths alone (no
    walk over the positions): what is malformed counts as one and is refused later."""
    if not isinstance(geometry, dict):
        return 0
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        members = geometry.get("geometries")
        return sum(positions(m) for m in members) if isinstance(members, list) else 0
    return _count(geometry.get("coordinates"), _DEPTH.get(str(kind), 3))


def _count(items: Any, depth: int) -> int:
    if depth == 0 or not isinstance(items, list):
        return 1
    if depth == 1:
        return len(items)
    return sum(_count(item, depth - 1) for item in items)


def check_geometry(value: Any) -> dict[str, Any]:
    """A GeoJSON geometry (RFC 7946: numeric positions on the globe, closed rings, a bbox that
    encloses it, no crs) that shapely accepts, or BadRequestData: the checks geoQ makes of a
    query geometry, and those of the members a query geometry does not have."""
    if not isinstance(value, dict) or not is_geo_type(value.get("type")):
        raise BadRequestData("a GeoProperty value must be a GeoJSON geometry")
    if value["type"] == "Point" and len(value) == 2 and _plain_point(value.get("coordinates")):
        return value  # the common case, checked without building a shapely geometry
    # imported lazily: shapely's import costs ~50 ms at start-up
    from cityhub.ngsild.geometry_members import check_members
    from cityhub.ngsild.query.geo import (
        check_coordinates,
        check_intricacy,
        check_size,
        geometry_shape,
    )

    check_size(value)  # before anything walks its positions
    if value["type"] == "GeometryCollection":
        members = value.get("geometries")
        if not isinstance(members, list):
            raise BadRequestData("a GeometryCollection needs a geometries array")
        for member in members:
            if isinstance(member, dict) and member.get("type") == "GeometryCollection":
                raise BadRequestData("a GeometryCollection must not nest another")
            check_geometry(member)
    else:
        try:
            check_coordinates(value["type"], value.get("coordinates"))
        except BadRequestData as exc:
            raise BadRequestData(f"invalid GeoJSON geometry: {exc.detail}") from None
    try:
        geom = geometry_shape(value)
    except Exception as exc:  # shapely raises many error types for bad coordinates
        raise BadRequestData(f"invalid GeoJSON geometry: {exc}") from exc
    if geom.is_empty and value.get("type") != "GeometryCollection":
        raise BadRequestData("a GeoJSON geometry must not be empty")
    check_members(value, geom)
    check_intricacy(geom)
    return value


def check_body_id(body: Any, eid: str) -> None:
    """A body that names an entity (as `id` or `@id`) must name the one in the path (the
    other is not written)."""
    body = unaliased(body)
    if isinstance(body, dict) and body.get("id", eid) != eid:
        raise BadRequestData("the body's id does not match the path")


_ALIASES = (("@id", "id"), ("@type", "type"))


def unaliased(body: Any) -> Any:
    """The body with `@id` and `@type` written as `id` and `type`, the aliases the core
    context gives them: a merge, an append or a PUT read only `id`/`type`, so `@type` added
    no type (204) and `@id` naming another entity replaced the one in the path. The two
    spellings of one member with different values are a 400, not one silently chosen."""
    if not isinstance(body, dict) or ("@id" not in body and "@type" not in body):
        return body
    out = dict(body)
    for keyword, alias in _ALIASES:
        if keyword in out:
            value = out.pop(keyword)
            if alias in out and out[alias] != value:
                raise BadRequestData(
                    f"{keyword} and {alias} are one member (the core context makes {alias} "
                    f"an alias of {keyword}); the body gives them different values"
                )
            out[alias] = value
    return out
