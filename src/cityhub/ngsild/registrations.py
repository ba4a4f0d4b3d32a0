"""Context source registrations (clause 5.2.9): validate, expand for storage, merge updates,
render for output, and match discovery queries (5.10.2; csourceSubscriptions match with the
same rules). Stored and validated only: nothing here forwards a request to a context source.

Stored form: the registration's members with entity types, property and relationship names
expanded to IRIs; members this hub does not define are the registration's context source
properties, kept under ``props`` by expanded name. ``_ctx`` is the creating request's @context
and ``_sys`` holds createdAt / modifiedAt (shown with options=sysAttrs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from cityhub.ngsild.context import TermMap
from cityhub.ngsild.core_context import NGSI_LD
from cityhub.ngsild.entity import check_uri, expand_name, expand_scope
from cityhub.ngsild.errors import BadRequestData, clipped, shown
from cityhub.ngsild.merge import merge_members
from cityhub.ngsild.query.evaluate import matches_q, matches_scope, matches_types
from cityhub.ngsild.query.geo import GeoQuery, geo_matches, parse_geometry
from cityhub.ngsild.query.pattern import Pattern, PatternError, compile_lines
from cityhub.ngsild.query.qlang import compile_regex, norm_datetime
from cityhub.ngsild.registration_bounds import InformationBudget
from cityhub.ngsild.registration_modes import MODE_MEMBERS, WRITE_OPERATIONS, check_mode
from cityhub.ngsild.subscriptions import (
    absolute_uri,
    compact_names,
    expand_names,
    future_datetime,
    is_past,
    key_values,
    positive_number,
    require_bool,
    require_dict,
    require_list,
    require_str,
    zoned_datetime,
)
from cityhub.ngsild.temporal import parse_duration
from cityhub.ngsild.timeutil import now_iso

Doc = dict[str, Any]

REGISTRATION = "ContextSourceRegistration"
REGISTRATIONS = "csourceRegistration"  # the resources kind a registration is stored as
MODES = ("inclusive", "exclusive", "redirect", "auxiliary")
DEFAULT_MODE = "inclusive"
# A context source is reached over the HTTP binding (6.3): a file:, javascript: or urn: endpoint
# was stored and handed to every discovering client.
ENDPOINT_SCHEMES = ("http", "https")
DEFAULT_OPERATIONS = ("federationOps",)
# Operation groups and single operations a registration may offer (clause 4.20): the writes
# (registration_modes) and the rest.
OPERATIONS = WRITE_OPERATIONS | frozenset(
    {
        "federationOps",
        "retrieveOps",
        "retrieveEntity",
        "queryEntity",
        "queryBatch",
        "retrieveTemporal",
        "queryTemporal",
        "retrieveEntityTypes",
        "retrieveEntityTypeDetails",
        "retrieveEntityTypeInfo",
        "retrieveAttrTypes",
        "retrieveAttrTypeDetails",
        "retrieveAttrTypeInfo",
        "createSubscription",
        "updateSubscription",
        "retrieveSubscription",
        "querySubscription",
        "deleteSubscription",
        "queryEntityMap",
        "createEntityMap",
        "updateEntityMap",
        "deleteEntityMap",
        "retrieveEntityMap",
    }
)
GEO_MEMBERS = ("location", "observationSpace", "operationSpace")
INTERVALS = ("observationInterval", "managementInterval")
# A time property → the interval it is matched against (5.10.2): observedAt against
# observationInterval, createdAt and modifiedAt against managementInterval.
TIMEPROPERTIES = {
    "observedAt": "observationInterval",
    "createdAt": "managementInterval",
    "modifiedAt": "managementInterval",
}
# System-maintained members: accepted in a body, never taken from it.
SYSTEM_MEMBERS = frozenset(
    {
        "status",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "timesSent",
        "timesFailed",
        "lastSuccess",
        "lastFailure",
        "@context",
    }
)
MANDATORY = ("type", "information", "endpoint")
_ORDER = (
    "id",
    "type",
    "registrationName",
    "description",
    "information",
    "tenant",
    "observationInterval",
    "managementInterval",
    "location",
    "observationSpace",
    "operationSpace",
    "expiresAt",
    "endpoint",
    "contextSourceInfo",
    "scope",
    "mode",
    "operations",
    "refreshRate",
    "management",
)


def _entity_infos(value: Any, tm: TermMap, budget: InformationBudget) -> list[dict[str, Any]]:
    """EntityInfo array: type mandatory (a name or a list of names), id, idPattern."""
    out = []
    items = require_list(value, "information.entities", bounded=False)
    budget.take(items)
    for item in items:
        if not isinstance(item, dict):
            raise BadRequestData("information.entities items must be JSON objects")
        info: dict[str, Any] = {}
        for key, raw in item.items():
            if key == "id":
                info["id"] = check_uri(raw, "information.entities id")
            elif key == "idPattern":
                budget.pattern()
                compile_regex(require_str(raw, "information.entities idPattern"))
                info["idPattern"] = raw
            elif key == "type":
                if isinstance(raw, list):
                    budget.take(raw)
                    info["type"] = expand_names(raw, tm, "information.entities type")
                else:
                    info["type"] = expand_name(raw, tm, "information.entities type")
            else:
                raise BadRequestData(f"unknown member {shown(key)} in information.entities")
        if "type" not in info:
            raise BadRequestData("every item of information.entities needs a type")
        out.append(info)
    return out


def _information(value: Any, tm: TermMap) -> list[dict[str, Any]]:
    """RegistrationInfo array: each with entities, propertyNames and/or relationshipNames."""
    out = []
    budget = InformationBudget()
    items = require_list(value, "information", bounded=False)
    budget.take(items)
    for item in items:
        if not isinstance(item, dict):
            raise BadRequestData("information items must be JSON objects")
        info: dict[str, Any] = {}
        for key, raw in item.items():
            if key == "entities":
                info[key] = _entity_infos(raw, tm, budget)
            elif key in ("propertyNames", "relationshipNames"):
                budget.take(raw)
                info[key] = expand_names(raw, tm, f"information.{key}")
            else:
                raise BadRequestData(f"unknown member {shown(key)} in information")
        if not info:
            raise BadRequestData(
                "each information item needs entities, propertyNames or relationshipNames"
            )
        out.append(info)
    return out


def _interval(value: Any, what: str) -> dict[str, Any]:
    """A TimeInterval: startAt, and endAt after it when given, each with its time zone as
    expiresAt (a naive time was compared as UTC, hours off for a client in another zone)."""
    iv = require_dict(value, what)
    unknown = set(iv) - {"startAt", "endAt"}
    if unknown:
        raise BadRequestData(f"unknown member(s) {', '.join(sorted(unknown))} in {what}")
    start = zoned_datetime(iv.get("startAt"), f"{what}.startAt")
    if "endAt" in iv:
        end = zoned_datetime(iv["endAt"], f"{what}.endAt")
        if (norm_datetime(end) or "") <= (norm_datetime(start) or ""):
            raise BadRequestData(f"{what}.endAt must be after startAt")
    return dict(iv)


def _geometry(value: Any, what: str) -> dict[str, Any]:
    """A GeoJSON geometry (Point, Polygon, ...)."""
    geo = require_dict(value, what)
    if not isinstance(geo.get("type"), str) or "coordinates" not in geo:
        raise BadRequestData(f"{what} must be a GeoJSON geometry with type and coordinates")
    coords = geo["coordinates"]
    if not isinstance(coords, list):
        raise BadRequestData(f"{what}.coordinates must be an array")
    parse_geometry(geo["type"], coords)
    return dict(geo)


def _management(value: Any, *, patch: bool = False) -> dict[str, Any]:
    """RegistrationManagementInfo: localOnly, cacheDuration, timeout, cooldown; in a patch a
    null member is one to remove (merged member by member, decision 075)."""
    mgmt = require_dict(value, "management")
    unknown = set(mgmt) - {"localOnly", "timeout", "cooldown", "cacheDuration"}
    if unknown:  # a misspelt member was kept and shown as if it applied
        raise BadRequestData(f"unknown member(s) {', '.join(sorted(unknown))} in management")
    for key, raw in mgmt.items():
        if raw is None and patch:
            continue
        if key == "localOnly":
            require_bool(raw, "management.localOnly")
        elif key in ("timeout", "cooldown"):
            positive_number(raw, f"management.{key}")
        elif key == "cacheDuration":
            _duration(raw, "management.cacheDuration")
    return dict(mgmt)


def _duration(value: Any, what: str) -> str:
    """An ISO 8601 duration (PT5M), as Table 5.2.34-1 types cacheDuration and 5.2.9-1
    refreshRate."""
    try:
        parse_duration(require_str(value, what))
    except BadRequestData:
        raise BadRequestData(f"{what} must be an ISO 8601 duration, got {shown(value)}") from None
    return str(value)


def _member(key: str, raw: Any, tm: TermMap, *, patch: bool = False) -> Any:
    """One validated, expanded member defined by the spec."""
    if key == "type":
        if not isinstance(raw, str) or tm.expand(raw) not in (REGISTRATION, NGSI_LD + REGISTRATION):
            raise BadRequestData(f"type must be {REGISTRATION!r}, got {shown(raw)}")
        return REGISTRATION
    if key in ("registrationName", "description", "tenant"):
        return require_str(raw, key)
    if key == "refreshRate":
        return _duration(raw, key)
    if key == "information":
        return _information(raw, tm)
    if key in INTERVALS:
        return _interval(raw, key)
    if key in GEO_MEMBERS:
        return _geometry(raw, key)
    if key == "expiresAt":
        return future_datetime(raw, key)  # with its time zone, as a subscription's
    if key == "endpoint":
        return absolute_uri(raw, key, ENDPOINT_SCHEMES)
    if key == "contextSourceInfo":
        return key_values(raw, key)
    if key == "scope":
        expand_scope(raw)
        return raw
    if key == "mode":
        if raw not in MODES:
            raise BadRequestData(f"mode must be one of {', '.join(MODES)}")
        return raw
    if key == "operations":
        ops = require_list(raw, key)
        # an object or array is no operation name (and would fail the set lookup itself)
        bad = [op for op in ops if not isinstance(op, str) or op not in OPERATIONS]
        if bad:
            raise BadRequestData(f"unknown operation(s) {clipped(bad)}")
        return list(dict.fromkeys(ops))
    if key == "management":
        return _management(raw, patch=patch)
    raise AssertionError(key)  # pragma: no cover - _members only passes defined members


_DEFINED = frozenset(_ORDER) - {"id"}
# The IRIs of the members NGSI-LD defines for a registration: a context source property under
# one of them was shown in its place (a forged endpoint, an information that is no array).
CORE_IRIS = frozenset(NGSI_LD + name for name in _DEFINED | SYSTEM_MEMBERS | {"id", "type"})


def _property_iri(key: str, tm: TermMap) -> str:
    """A context source property's expanded name; a core member's IRI is refused."""
    iri = expand_name(key, tm, "context source property")
    if iri in CORE_IRIS:
        raise BadRequestData(
            f"{shown(key)} names the registration member {iri}; write it as "
            f"{iri.removeprefix(NGSI_LD)!r}, not as a context source property"
        )
    return iri


def _members(body: Mapping[str, Any], tm: TermMap, *, patch: bool) -> tuple[Doc, Doc]:
    """(defined members, context source properties by IRI); on a patch None means remove."""
    out: Doc = {}
    props: Doc = {}
    for key, raw in body.items():
        if key in SYSTEM_MEMBERS or key.startswith("_") or key == "id":
            continue
        if raw is None and not patch:
            continue  # a null member of a new registration is an absent one
        if key in _DEFINED:
            out[key] = None if raw is None else _member(key, raw, tm, patch=patch)
        else:
            props[_property_iri(key, tm)] = raw
    return out, props


def _check_whole(doc: Doc) -> None:
    for key in MANDATORY:
        if key not in doc:
            raise BadRequestData(f"a context source registration needs {key}")


def body_id(body: Any) -> str | None:
    """The id a create body names (validated), or None."""
    if isinstance(body, dict) and "id" in body:
        return check_uri(body["id"], "registration id")
    return None


def new_registration(body: Any, tm: TermMap, spec: Any, rid: str) -> Doc:
    """A create body as its stored form."""
    if not isinstance(body, dict) or not body:
        raise BadRequestData("a context source registration must be a non-empty JSON object")
    members, props = _members(body, tm, patch=False)
    doc: Doc = {"id": rid, **members}
    _check_whole(doc)
    check_mode(doc)
    if props:
        doc["props"] = props
    now = now_iso()
    doc["_ctx"] = spec
    doc["_sys"] = {"createdAt": now, "modifiedAt": now}
    return doc


def patch_members(fragment: Any, tm: TermMap, rid: str) -> tuple[Doc, Doc]:
    """A fragment's defined members and properties, validated (None: remove)."""
    if not isinstance(fragment, dict):
        raise BadRequestData("a registration fragment must be a JSON object")
    fid = fragment.get("id")
    if fid is not None and fid != rid:
        raise BadRequestData(
            f"the fragment's id {shown(fid)} is not the registration's {shown(rid)}"
        )
    members, props = _members(fragment, tm, patch=True)
    if not members and not props:
        raise BadRequestData("the fragment changes no member of the registration")
    for key in MANDATORY:
        if key in members and members[key] is None:
            raise BadRequestData(f"{key} is mandatory and cannot be removed")
    return members, props


def _merged_management(stored: Any, patch: Doc) -> Doc | None:
    """The stored management with a fragment's members replacing, or (null) removing, its
    own: they are independent settings, as a subscription's notification members are
    (decision 047); None when none is left."""
    merged = dict(stored) if isinstance(stored, dict) else {}
    merge_members(merged, patch)
    return merged or None


def apply_patch(stored: Doc, members: Doc, props: Doc) -> Doc:
    """The stored registration with a fragment's members replacing (or removing) its own;
    management is merged member by member. The mode rules are checked again when the
    fragment names a member they read (a registration stored before them stays patchable)."""
    doc = dict(stored)
    if members.get("management") is not None:
        members = {
            **members,
            "management": _merged_management(doc.get("management"), members["management"]),
        }
    merge_members(doc, members)
    merged = dict(doc.get("props") or {})
    merge_members(merged, props)
    doc.pop("props", None)
    if merged:
        doc["props"] = merged
    _check_whole(doc)
    if any(key in members for key in MODE_MEMBERS):
        check_mode(doc)
    sys = dict(doc.get("_sys") or {})
    sys["modifiedAt"] = now_iso()
    doc["_sys"] = sys
    return doc


def _render_information(items: list[dict[str, Any]], tm: TermMap) -> list[dict[str, Any]]:
    out = []
    for info in items:
        item: dict[str, Any] = {}
        for key, value in info.items():
            if key == "entities":
                item[key] = [
                    {
                        k: (
                            ([tm.compact(t) for t in v] if isinstance(v, list) else tm.compact(v))
                            if k == "type"
                            else v
                        )
                        for k, v in ent.items()
                    }
                    for ent in value
                ]
            else:
                item[key] = compact_names(value, tm)
        out.append(item)
    return out


def render_registration(doc: Doc, tm: TermMap, *, sys_attrs: bool = False) -> dict[str, Any]:
    """A stored registration in the caller's terms (mode and operations with their defaults)."""
    out: dict[str, Any] = {}
    for key in _ORDER:
        if key == "mode":
            out[key] = doc.get(key, DEFAULT_MODE)
        elif key == "operations":
            out[key] = list(doc.get(key, DEFAULT_OPERATIONS))
        elif key == "information" and key in doc:
            out[key] = _render_information(doc[key], tm)
        elif key in doc:
            out[key] = doc[key]
    for iri, value in (doc.get("props") or {}).items():
        out.setdefault(
            tm.compact(iri), value
        )  # stored before properties were checked: the member wins
    if sys_attrs:
        out.update(doc.get("_sys") or {})
    return out


# -- discovery ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegistrationQuery:
    """A csourceRegistrations query; names and types already IRIs."""

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    types: Any = None  # ast type node
    attrs: frozenset[str] | None = None
    q: Any = None  # ast q node over the registration's properties
    csf: Any = None  # likewise
    geo: GeoQuery | None = None
    scope: Any = None  # scopeQ node, matched against the registration's scope (5.10.2.4)
    timeproperty: str = "observationInterval"
    timerel: str | None = None
    time_at: str | None = None  # storage-form DateTimes
    end_time_at: str | None = None

    @cached_property
    def id_set(self) -> frozenset[str]:
        """The queried ids, looked up once per registered id (a tuple was scanned each time)."""
        return frozenset(self.ids or ())

    @cached_property
    def joined_ids(self) -> str:
        """The queried ids joined by newlines, which no id holds (`Pattern.search_any`)."""
        return "\n".join(self.ids or ())


# Registered idPatterns, compiled apart from query patterns: a scan of many registrations
# cycled the shared 512-entry cache, so every pattern was compiled again on every query. An
# RE2 program takes about 18 KB (165 KB for `(abc|def|ghi){300}N`, compiled in 0.9 ms).
_registered = lru_cache(maxsize=1_024)(compile_lines)


def registered_pattern(text: str) -> Pattern:
    """A stored idPattern, compiled once (it was validated when stored), so that it is
    searched once over all the queried ids (decision 071)."""
    try:
        return _registered(text)
    except PatternError:  # stored by a hub whose RE2 accepted it
        return compile_regex(text, bounded=False)


def _entity_matches(ent: Mapping[str, Any], query: RegistrationQuery) -> bool:
    types = ent["type"] if isinstance(ent["type"], list) else [ent["type"]]
    if query.types is not None and not matches_types(query.types, {"type": types}):
        return False
    if query.ids is not None:
        if "id" in ent:
            if ent["id"] not in query.id_set:
                return False
        elif "idPattern" in ent:
            pattern = registered_pattern(ent["idPattern"])
            if not pattern.search_any(query.ids, query.joined_ids):
                return False
    if query.id_pattern is not None and "id" in ent:
        return compile_regex(query.id_pattern).search(ent["id"]) is not None
    return True  # a registered idPattern may overlap the queried one: it is a candidate


def info_matches(info: Mapping[str, Any], query: RegistrationQuery) -> bool:
    """Whether one RegistrationInfo item answers a query's entities and attrs (notifications
    carry only the items that do)."""
    entities = info.get("entities")
    if entities is not None and not any(_entity_matches(e, query) for e in entities):
        return False
    if query.attrs is not None:
        names = set(info.get("propertyNames", ())) | set(info.get("relationshipNames", ()))
        if names and not names & query.attrs:
            return False
    return True


def _as_entity(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A registration's properties shaped like a stored entity, for q evaluation."""
    attrs: dict[str, list[dict[str, Any]]] = {}
    for iri, value in (doc.get("props") or {}).items():
        if isinstance(value, dict) and "value" in value:
            inst = {"type": "Property", "value": value["value"]}
        else:
            inst = {"type": "Property", "value": value}
        attrs[iri] = [inst]
    for key in ("endpoint", "mode", "registrationName", "tenant"):
        if key in doc:
            attrs[NGSI_LD + key] = [{"type": "Property", "value": doc[key]}]
    return {"id": doc["id"], "type": [REGISTRATION], "attrs": attrs}


def _interval_matches(doc: Mapping[str, Any], query: RegistrationQuery) -> bool:
    iv = doc.get(query.timeproperty)
    if not isinstance(iv, dict):
        return False
    start = norm_datetime(iv.get("startAt", "")) or ""
    end = norm_datetime(iv["endAt"]) if isinstance(iv.get("endAt"), str) else None
    at = query.time_at or ""
    if query.timerel == "before":
        return start < at
    if query.timerel == "after":
        return end is None or end > at
    until = query.end_time_at or ""
    return start < until and (end is None or end > at)


def matches(doc: Mapping[str, Any], query: RegistrationQuery) -> bool:
    """Whether a stored registration answers a discovery query; once its expiresAt has
    passed it is invalid (5.2.9) and answers none, though it can still be read by id."""
    if is_past(doc.get("expiresAt")):
        return False
    if not any(info_matches(info, query) for info in doc.get("information", ())):
        return False
    if query.scope is not None and not matches_scope(query.scope, doc):
        return False
    if query.q is not None and not matches_q(query.q, _as_entity(doc)):
        return False
    if query.csf is not None and not matches_q(query.csf, _as_entity(doc)):
        return False
    if query.geo is not None:
        prop = query.geo.geoproperty
        member = prop.removeprefix(NGSI_LD)
        geometry = doc.get(member) if member in GEO_MEMBERS else None
        if not isinstance(geometry, dict) or not geo_matches(query.geo, geometry):
            return False
    return query.timerel is None or _interval_matches(doc, query)


__all__ = [
    "REGISTRATION",
    "REGISTRATIONS",
    "TIMEPROPERTIES",
    "RegistrationQuery",
    "apply_patch",
    "body_id",
    "info_matches",
    "matches",
    "new_registration",
    "patch_members",
    "render_registration",
]
