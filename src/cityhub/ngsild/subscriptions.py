"""Subscriptions (clause 5.2.12), for entities and for context source registrations alike:
validate a request body, expand its names for storage, merge updates, render for output.

Stored form: the members of the request with every type and attribute name expanded to an IRI
(type selections keep their operators), plus bookkeeping the API never shows as such:

- ``_ctx``: the @context of the request that created the subscription (notifications use it
  when no jsonldContext is given); ``_qctx``: the @context q and csf were written in (they
  are kept as text, so their names expand with it when evaluated);
- ``_sys``: createdAt / modifiedAt (shown with options=sysAttrs);
- ``_base``: the hub's URL as the request that created or last updated it reached it (the
  Link of its notifications names a hub-served context under it);
- ``_inc``: the incarnation, a random number drawn at creation and kept by updates: the
  notifications queued for a subscription carry it, so that one deleted and made again under
  its id is not sent those of the one before;
- ``_notif``: delivery status (timesSent, timesFailed, lastNotification, lastSuccess,
  lastFailure, status), merged into ``notification`` on output once notifications are sent.

Framework-free: the API layer reads bodies and contexts, this module only checks and shapes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from cityhub.ngsild.context import TermMap, is_absolute_iri
from cityhub.ngsild.core_context import NGSI_LD
from cityhub.ngsild.entity import check_uri, expand_name
from cityhub.ngsild.errors import BadRequestData, clipped, shown
from cityhub.ngsild.linked import MAX_JOIN_LEVEL
from cityhub.ngsild.merge import merge_members
from cityhub.ngsild.mqtt_endpoint import check_mqtt
from cityhub.ngsild.notify_timeout import endpoint_timeout
from cityhub.ngsild.params import check_lang
from cityhub.ngsild.projection import Projection, parse_projection
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.geo import GeoQuery, check_geoq_members, parse_geoq
from cityhub.ngsild.query.qlang import compile_regex, norm_datetime, parse_q
from cityhub.ngsild.query.scope import parse_scope
from cityhub.ngsild.query.typeexpr import parse_types
from cityhub.ngsild.subscription_names import check_names
from cityhub.ngsild.subscription_selectors import check_selectors
from cityhub.ngsild.timeutil import now_iso

Doc = dict[str, Any]

SUBSCRIPTION = "Subscription"
TRIGGERS = (
    "entityCreated",
    "entityUpdated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
)
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
# "simplified" is the other name of keyValues (clause 4.5.3).
NOTIFY_FORMATS = ("normalized", "keyValues", "simplified", "concise")
ENDPOINT_SCHEMES = ("http", "https", "mqtt", "mqtts")
NOTIFY_ACCEPT = ("application/json", "application/ld+json", "application/geo+json")
JOINS = ("flat", "inline", "@none")
BASE_URL = "_base"  # the stored member holding the hub's URL the subscription was made through
INCARNATION = "_inc"  # the stored member telling this subscription from others of its id
MIN_TIME_INTERVAL = 1  # seconds: the shortest period a timeInterval subscription may ask for
TIMERELS = ("before", "after", "between")
# Members the system maintains: accepted in a body (a retrieved subscription can be sent back)
# but never taken from it.
SYSTEM_MEMBERS = frozenset({"status", "createdAt", "modifiedAt", "deletedAt", "@context"})
NOTIFY_STATUS = (
    "status",
    "timesSent",
    "timesFailed",
    "lastNotification",
    "lastSuccess",
    "lastFailure",
)
# A subscription's members in the order an answer shows them (5.2.12)
_ORDER = (
    "id",
    "type",
    "subscriptionName",
    "description",
    "entities",
    "watchedAttributes",
    "notificationTrigger",
    "timeInterval",
    "q",
    "geoQ",
    "csf",
    "scopeQ",
    "temporalQ",
    "isActive",
    "notification",
    "expiresAt",
    "throttling",
    "lang",
    "datasetId",
    "jsonldContext",
)
# Subscription members a client might put inside notification by mistake
SUBSCRIPTION_MEMBERS = frozenset(_ORDER) - {
    "id",
    "type",
    "subscriptionName",
    "description",
    "notification",
}
# Entity members (not attributes) a pick/omit may name: never expanded.
ENTITY_MEMBERS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt"})
_DELIMS = re.compile(r"([(),|;])")
_ZONE = re.compile(r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$")  # a DateTime's zone: Z, +hh, +hh:mm


# -- small shared checks (registrations use them too) -----------------------------------------
def require_dict(value: Any, what: str) -> dict[str, Any]:
    """A JSON object member."""
    if not isinstance(value, dict):
        raise BadRequestData(f"{what} must be a JSON object")
    return value


# Items one array member of a subscription or registration may hold (entities,
# watchedAttributes, notification.attributes ...): subscriptions are read, indexed and matched
# in memory on the event loop, and one of 200,000 entities held every request for 17 s.
MAX_LIST = 1_000


def require_list(
    value: Any, what: str, *, nonempty: bool = True, bounded: bool = True
) -> list[Any]:
    """A JSON array member (non-empty unless told), of at most MAX_LIST items unless told
    (a registration's `information`, which its InformationBudget counts across members)."""
    if not isinstance(value, list):
        raise BadRequestData(f"{what} must be a JSON array")
    if nonempty and not value:
        raise BadRequestData(f"{what} must not be empty")
    if bounded and len(value) > MAX_LIST:
        raise BadRequestData(
            f"{what} holds {len(value):,} items; the hub takes at most {MAX_LIST:,}"
        )
    return value


def require_str(value: Any, what: str) -> str:
    """A non-empty string member."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequestData(f"{what} must be a non-empty string")
    return value


def require_bool(value: Any, what: str) -> bool:
    """A true/false member."""
    if not isinstance(value, bool):
        raise BadRequestData(f"{what} must be true or false")
    return value


def positive_number(value: Any, what: str) -> float | int:
    """A number greater than zero."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequestData(f"{what} must be a number greater than 0")
    return value


def time_interval(value: Any) -> float | int:
    """A timeInterval of at least MIN_TIME_INTERVAL seconds: each period runs a query and
    sends what it finds, and 0.0001 s made about 1,000 notifications a second."""
    positive_number(value, "timeInterval")
    if value < MIN_TIME_INTERVAL:
        raise BadRequestData(
            f"timeInterval must be at least {MIN_TIME_INTERVAL} second(s), got {shown(value)}"
        )
    return value


def datetime_member(value: Any, what: str) -> str:
    """An ISO 8601 DateTime member, returned as given (its storage form is for comparison)."""
    if not isinstance(value, str) or norm_datetime(value) is None:
        raise BadRequestData(f"{what} must be an ISO 8601 DateTime, got {shown(value)}")
    return value


def zoned_datetime(value: Any, what: str) -> str:
    """A DateTime with its time zone (Z or an offset): without one, its instant is unknown
    (a naive time was read as UTC, hours off for a client that meant its local time)."""
    datetime_member(value, what)
    if not _ZONE.search(value):
        raise BadRequestData(f"{what} must give its time zone (Z or an offset), got {shown(value)}")
    return str(value)


def future_datetime(value: Any, what: str) -> str:
    """A DateTime with its time zone that has not passed yet (expiresAt)."""
    zoned_datetime(value, what)
    if (norm_datetime(value) or "") <= now_iso():
        raise BadRequestData(f"{what} must be in the future, got {shown(value)}")
    return str(value)


def is_past(value: Any) -> bool:
    """Whether a stored DateTime (expiresAt) has passed."""
    norm = norm_datetime(value) if isinstance(value, str) else None
    return norm is not None and norm <= now_iso()


def absolute_uri(value: Any, what: str, schemes: tuple[str, ...] | None = None) -> str:
    """An absolute URI (with a host for network schemes); optionally of given schemes."""
    if not isinstance(value, str) or not is_absolute_iri(value) or re.search(r"\s", value):
        raise BadRequestData(f"{what} must be an absolute URI, got {shown(value)}")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is no number 0-65535
    except ValueError as exc:  # an unclosed IPv6 host, a bad port: no client could send to it
        raise BadRequestData(f"{what} is not a valid URI ({exc}), got {shown(value)}") from None
    scheme = parts.scheme.lower()
    if schemes is not None and scheme not in schemes:
        raise BadRequestData(f"{what} must use one of the schemes {', '.join(schemes)}")
    if scheme in ENDPOINT_SCHEMES and not parts.hostname:  # `u@` or `:1883` is no host
        raise BadRequestData(f"{what} must name a host, got {shown(value)}")
    if scheme in ENDPOINT_SCHEMES and port == 0:  # stored, then every attempt was refused
        raise BadRequestData(
            f"{what} names port 0, which nothing can be reached on: {shown(value)}"
        )
    return value


def key_values(value: Any, what: str) -> list[dict[str, str]]:
    """A KeyValuePair array ([{"key": ..., "value": ...}]), e.g. receiverInfo."""
    for item in require_list(value, what):
        if (
            not isinstance(item, dict)
            or set(item) != {"key", "value"}
            or not all(isinstance(v, str) for v in item.values())
            or not item["key"]
        ):
            raise BadRequestData(f"{what} items must be {{'key': string, 'value': string}}")
    return list(value)


# headers a notification's receiverInfo cannot set: a receiver relies on them
RESERVED_HEADERS = frozenset(
    {"ngsild-tenant", "content-type", "link"}  # what a receiver reads the notification by
    | {"content-length", "transfer-encoding", "host", "connection", "te", "trailer", "upgrade"}
    | {"keep-alive", "proxy-connection", "expect"}  # HTTP's own framing: the client sets them
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 5.1: a field name


def _headers(pairs: list[dict[str, str]]) -> list[dict[str, str]]:
    """receiverInfo becomes request headers: a key that is no header name (or a value with a
    line break) was accepted, and then every delivery failed until it was given up."""
    for pair in pairs:
        if not _TOKEN.fullmatch(pair["key"]):
            raise BadRequestData(
                f"receiverInfo key {shown(pair['key'])} is not an HTTP header name"
            )
        if "\r" in pair["value"] or "\n" in pair["value"] or "\x00" in pair["value"]:
            raise BadRequestData(f"receiverInfo value of {shown(pair['key'])} holds a line break")
        if pair["key"].lower() in RESERVED_HEADERS:
            raise BadRequestData(
                f"receiverInfo cannot set {pair['key']}: the hub sets it (the notification's "
                "tenant, media type, @context and HTTP framing)"
            )
    return pairs


def expand_names(value: Any, tm: TermMap, what: str, *, bounded: bool = True) -> list[str]:
    """A non-empty array of attribute names, expanded (duplicates dropped, first order kept,
    in linear time: a list scan per name took 28 s for 40,000 names on the event loop); of at
    most MAX_LIST unless told (a subscription's names, which check_names bounds)."""
    out: dict[str, None] = {}
    for name in require_list(value, what, bounded=bounded):
        out.setdefault(expand_name(name, tm, what))
    return list(out)


def compact_names(names: list[str], tm: TermMap) -> list[str]:
    """Stored attribute IRIs in the caller's terms."""
    return [tm.compact(n) for n in names]


def map_type_expr(text: str, fn: Callable[[str], str]) -> str:
    """A type selection with every type name passed through fn, operators untouched."""
    parts = _DELIMS.split(text)
    return "".join(p if _DELIMS.fullmatch(p) or not p.strip() else fn(p.strip()) for p in parts)


def expand_type_expr(value: Any, tm: TermMap, what: str) -> str:
    """An entity type name or selection (A, A|B, (A;B),C), validated and expanded."""
    if not isinstance(value, str):
        raise BadRequestData(f"{what} must be a string")
    node = parse_types(value)

    def check(name: str) -> str:
        return expand_name(name, tm, what)

    ast.map_names(node, check)
    return map_type_expr(value, tm.expand)


def entity_selectors(value: Any, tm: TermMap, what: str = "entities") -> list[dict[str, Any]]:
    """EntitySelector array: type mandatory, id an URI, idPattern a valid regex."""
    out = []
    for item in require_list(value, what):
        if not isinstance(item, dict):
            raise BadRequestData(f"{what} items must be JSON objects")
        sel: dict[str, Any] = {}
        for key, raw in item.items():
            if key == "id":
                sel["id"] = check_uri(raw, f"{what} id")
            elif key == "idPattern":
                require_str(raw, f"{what} idPattern")
                try:
                    compile_regex(raw)
                except BadRequestData as exc:
                    raise BadRequestData(f"{what} idPattern: {exc.detail}") from None
                sel["idPattern"] = raw
            elif key == "type":
                sel["type"] = expand_type_expr(raw, tm, f"{what} type")
            else:
                raise BadRequestData(f"unknown member {shown(key)} in {what}")
        if "type" not in sel:
            raise BadRequestData(f"every item of {what} needs a type")
        out.append(sel)
    return out


def render_selectors(items: list[dict[str, Any]], tm: TermMap) -> list[dict[str, Any]]:
    """Stored EntitySelectors in the caller's terms."""
    return [
        {k: (map_type_expr(v, tm.compact) if k == "type" else v) for k, v in sel.items()}
        for sel in items
    ]


def geo_query(value: Any, tm: TermMap, what: str = "geoQ") -> dict[str, Any]:
    """A GeoQuery object, validated with the geoQ parser; geoproperty expanded."""
    geo = require_dict(value, what)
    check_geoq_members(geo, what)
    for key in ("georel", "geometry"):
        if not isinstance(geo.get(key), str):
            raise BadRequestData(f"{what}.{key} must be a string")
    coords = geo.get("coordinates")
    if not isinstance(coords, str | list):
        raise BadRequestData(f"{what}.coordinates must be an array (or its JSON text)")
    prop = geo.get("geoproperty")
    if prop is not None:
        require_str(prop, f"{what}.geoproperty")
    parsed = parse_geoq(geo["georel"], geo["geometry"], coords, prop)
    if parsed is None:
        raise BadRequestData(f"{what} needs georel, geometry and coordinates")
    out = {"georel": geo["georel"], "geometry": geo["geometry"], "coordinates": coords}
    if prop is not None:
        out["geoproperty"] = expand_name(prop, tm, f"{what}.geoproperty")
    return out


def parsed_geo(stored: Mapping[str, Any]) -> GeoQuery | None:
    """The GeoQuery of a stored geoQ member (geoproperty already an IRI), built once: a
    `replace` of its geoproperty afterwards drew a `near` reference's plane again."""
    geo = stored.get("geoQ")
    if not geo:
        return None
    prop = geo["geoproperty"] if "geoproperty" in geo else NGSI_LD + "location"
    return parse_geoq(geo["georel"], geo["geometry"], geo["coordinates"], prop, stored=True)


def render_geo(geo: dict[str, Any], tm: TermMap) -> dict[str, Any]:
    """A stored geoQ in the caller's terms."""
    out = dict(geo)
    if "geoproperty" in out:
        out["geoproperty"] = tm.compact(out["geoproperty"])
    return out


def q_text(value: Any, what: str = "q") -> str:
    """A q (or csf) expression, checked with the q parser as it will be read (stored_q);
    kept as text."""
    stored_q(require_str(value, what), bounded=True, what=what)
    return str(value)


def stored_q(text: str, *, bounded: bool = False, what: str = "q") -> ast.QNode:
    """A subscription's q (or csf) parsed. It may be percent-encoded as in a URL (the ETSI
    suite writes `name=="Eiffel%20Tower"`, 046_05): it is decoded at every reading, so the
    check at creation and the matching agree (they did not: `x%22y` passed the one and broke
    the other, and `a%41b` was checked raw but matched as `aAb`). Read again (not `bounded`),
    a pattern stored before MAX_PROGRAM is taken: its searches are bounded all the same."""
    return parse_q(unquote(text), bounded=bounded, what=what)


def temporal_query(value: Any, what: str = "temporalQ") -> dict[str, Any]:
    """A TemporalQuery object: timerel, timeAt, endTimeAt (for between), timeproperty."""
    tq = require_dict(value, what)
    rel = tq.get("timerel")
    if rel not in TIMERELS:
        raise BadRequestData(f"{what}.timerel must be one of {', '.join(TIMERELS)}")
    datetime_member(tq.get("timeAt"), f"{what}.timeAt")
    if rel == "between":
        end = datetime_member(tq.get("endTimeAt"), f"{what}.endTimeAt")
        if (norm_datetime(end) or "") <= (norm_datetime(tq["timeAt"]) or ""):
            raise BadRequestData(f"{what}.endTimeAt must be after timeAt")
    elif "endTimeAt" in tq:
        datetime_member(tq["endTimeAt"], f"{what}.endTimeAt")
    if "timeproperty" in tq:
        require_str(tq["timeproperty"], f"{what}.timeproperty")
    return dict(tq)


# -- pick / omit -----------------------------------------------------------------------------
def _map_projection(tree: Projection, fn: Callable[[str], str]) -> Projection:
    return {
        (n if n in ENTITY_MEMBERS else fn(n)): (_map_projection(s, fn) if s else s)
        for n, s in tree.items()
    }


def _serialize(tree: Projection) -> list[str]:
    return [n + ("{" + ",".join(_serialize(s)) + "}" if s else "") for n, s in tree.items()]


def projection(value: Any, tm: TermMap, what: str) -> tuple[Any, Projection]:
    """pick/omit: an array of members (or their comma-separated text), names expanded."""
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) and v for v in value):
            raise BadRequestData(f"{what} must be a non-empty array of names")
        text = ",".join(value)
    elif isinstance(value, str) and value:
        text = value
    else:
        raise BadRequestData(f"{what} must be an array of names")
    tree = parse_projection(text)
    for name in _walk_names(tree):
        if name not in ENTITY_MEMBERS:
            expand_name(name, tm, what)
    expanded = _map_projection(tree, tm.expand)
    items = _serialize(expanded)
    return (items if isinstance(value, list) else ",".join(items)), tree


def _walk_names(tree: Projection) -> list[str]:
    out = []
    for name, sub in tree.items():
        out.append(name)
        if sub:
            out += _walk_names(sub)
    return out


def render_projection(value: Any, tm: TermMap) -> Any:
    """A stored pick/omit in the caller's terms."""
    text = ",".join(value) if isinstance(value, list) else value
    items = _serialize(_map_projection(parse_projection(text), tm.compact))
    return items if isinstance(value, list) else ",".join(items)


# -- notification parameters -------------------------------------------------------------------
def _endpoint_member(key: str, raw: Any) -> Any:
    """One validated member of an Endpoint (not null)."""
    if key == "uri":
        return absolute_uri(raw, "notification.endpoint.uri", ENDPOINT_SCHEMES)
    if key == "accept":
        if raw not in NOTIFY_ACCEPT:
            raise BadRequestData(
                f"notification.endpoint.accept must be one of {', '.join(NOTIFY_ACCEPT)}"
            )
        return raw
    if key == "receiverInfo":
        return _headers(key_values(raw, "notification.endpoint.receiverInfo"))
    if key == "notifierInfo":
        return key_values(raw, f"notification.endpoint.{key}")
    if key == "timeout":
        return endpoint_timeout(raw)
    if key == "cooldown":
        return positive_number(raw, f"notification.endpoint.{key}")
    return raw


def endpoint(value: Any, *, patch: bool = False) -> dict[str, Any]:
    """An Endpoint: uri (absolute, http/https/mqtt), accept, receiverInfo, notifierInfo; of a
    patch (merged into the stored one), a member may be null to remove it, uri aside."""
    ep = require_dict(value, "notification.endpoint")
    if "uri" not in ep and not patch:
        raise BadRequestData("notification.endpoint needs a uri")
    out: dict[str, Any] = {}
    for key, raw in ep.items():
        if raw is None and (not patch or key == "uri"):
            raise BadRequestData(f"notification.endpoint.{key} must not be null")
        out[key] = None if raw is None else _endpoint_member(key, raw)
    if not patch:
        check_mqtt(out["uri"], out.get("notifierInfo"))
    return out


def _notification_member(key: str, raw: Any, tm: TermMap, trees: dict[str, Projection]) -> Any:
    """One validated, expanded member of NotificationParams other than endpoint (not null);
    the parsed tree of a pick or omit goes into trees."""
    if key == "format":
        if raw not in NOTIFY_FORMATS:
            raise BadRequestData(f"notification.format must be one of {', '.join(NOTIFY_FORMATS)}")
        return raw
    if key == "attributes":
        check_names(raw, "notification.attributes")
        return expand_names(raw, tm, "notification.attributes", bounded=False)
    if key in ("pick", "omit"):
        check_names(raw, f"notification.{key}")
        value, trees[key] = projection(raw, tm, f"notification.{key}")
        return value
    if key in ("sysAttrs", "showChanges"):
        return require_bool(raw, f"notification.{key}")
    if key == "join":
        if raw not in JOINS:
            raise BadRequestData(f"notification.join must be one of {', '.join(JOINS)}")
        return raw
    if key == "joinLevel":
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_JOIN_LEVEL:
            raise BadRequestData(
                f"notification.joinLevel must be a whole number from 1 to {MAX_JOIN_LEVEL}"
            )
        return raw
    # NotificationParams is a closed type, as EntitySelector and GeoQuery are
    raise BadRequestData(_unknown_notification_member(key))


def notification_params(value: Any, tm: TermMap) -> dict[str, Any]:
    """NotificationParams (5.2.14): endpoint mandatory, format, attributes, pick/omit..."""
    params = require_dict(value, "notification")
    out: dict[str, Any] = {}
    trees: dict[str, Projection] = {}
    for key, raw in params.items():
        if key in NOTIFY_STATUS:
            continue  # system-maintained delivery status
        if raw is None:
            raise BadRequestData(f"notification.{key} must not be null")
        if key == "endpoint":
            out[key] = endpoint(raw)
        else:
            out[key] = _notification_member(key, raw, tm, trees)
    check_notification(out, trees)
    return out


def notification_patch(value: Any, tm: TermMap, *, merge_patch: bool) -> NotificationPatch:
    """The notification of a subscription fragment, validated member by member, to be merged
    into the stored one (None: remove the member; decision 047). Unless it is sent as
    application/merge-patch+json it must name its endpoint and uri, as NotificationParams
    must (the ETSI suite refuses `{"notification": {"format": "keyValues"}}`, 029_03)."""
    params = require_dict(value, "notification")
    out: dict[str, Any] = {}
    trees: dict[str, Projection] = {}
    for key, raw in params.items():
        if key in NOTIFY_STATUS:
            continue
        if raw is None:
            if key == "endpoint":
                raise BadRequestData("notification.endpoint is mandatory and cannot be removed")
            out[key] = None
        elif key == "endpoint":
            out[key] = endpoint(raw, patch=True)
            if not merge_patch and "uri" not in out[key]:
                raise BadRequestData("notification.endpoint needs a uri")
        else:
            out[key] = _notification_member(key, raw, tm, trees)
    if not merge_patch and "endpoint" not in out:
        raise BadRequestData("notification needs an endpoint")
    return NotificationPatch(out, trees)


@dataclass(frozen=True)
class NotificationPatch:
    """A fragment's notification members (None: remove), with its parsed pick/omit trees."""

    members: dict[str, Any]
    trees: dict[str, Projection]


def merged_notification(stored: Mapping[str, Any], patch: NotificationPatch) -> dict[str, Any]:
    """The stored NotificationParams with a fragment's merged in, member by member and
    endpoint's too (None removes one), checked whole (RFC 7396 for these two objects)."""
    out = dict(stored)
    for key, value in patch.members.items():
        if value is None:
            out.pop(key, None)
        elif key == "endpoint":
            ep = dict(out.get("endpoint") or {})
            merge_members(ep, value)
            out[key] = ep
        else:
            out[key] = value
    check_notification(out, patch.trees)
    return out


def check_notification(params: Mapping[str, Any], trees: Mapping[str, Projection]) -> None:
    """The rules of NotificationParams that span members: an endpoint with a uri (and its
    MQTT settings right), pick or omit alone and never with attributes."""
    ep = params.get("endpoint")
    if ep is None:
        raise BadRequestData("notification needs an endpoint")
    if "uri" not in ep:
        raise BadRequestData("notification.endpoint needs a uri")
    check_mqtt(ep["uri"], ep.get("notifierInfo"))
    if "pick" in params and "omit" in params:
        same = set(trees.get("pick") or ()) & set(trees.get("omit") or ())
        detail = f" (both name {', '.join(sorted(same))})" if same else ""
        raise BadRequestData(f"notification.pick and notification.omit cannot be combined{detail}")
    for key in ("pick", "omit"):
        if key in params and "attributes" in params:
            raise BadRequestData(
                f"notification.{key} and notification.attributes cannot be combined"
            )


def _unknown_notification_member(key: str) -> str:
    """Why a member is refused in notification: stored, it would never be applied."""
    detail = f"unknown member {shown(key)} in notification (NotificationParams, 5.2.14)"
    if key in SUBSCRIPTION_MEMBERS:
        detail += f"; {key} is a member of the Subscription itself"
    return detail


def render_notification(
    stored: dict[str, Any], status: dict[str, Any], tm: TermMap
) -> dict[str, Any]:
    """Stored NotificationParams (plus delivery status) in the caller's terms."""
    out: dict[str, Any] = {}
    for key, value in stored.items():
        if key == "attributes":
            out[key] = compact_names(value, tm)
        elif key in ("pick", "omit"):
            out[key] = render_projection(value, tm)
        else:
            out[key] = value
    for key in NOTIFY_STATUS:
        if key in status:
            out[key] = status[key]
    return out


# -- the subscription as a whole -------------------------------------------------------------
def _member(key: str, raw: Any, tm: TermMap) -> Any:
    """One validated, expanded top-level member."""
    if key == "type":
        if not isinstance(raw, str) or tm.expand(raw) not in (SUBSCRIPTION, NGSI_LD + SUBSCRIPTION):
            raise BadRequestData(f"type must be {SUBSCRIPTION!r}, got {shown(raw)}")
        return SUBSCRIPTION
    if key in ("subscriptionName", "description"):
        if not isinstance(raw, str):
            raise BadRequestData(f"{key} must be a string")
        return raw
    if key == "entities":
        check_selectors(raw)
        return entity_selectors(raw, tm)
    if key == "watchedAttributes":
        check_names(raw, "watchedAttributes")
        return expand_names(raw, tm, "watchedAttributes", bounded=False)
    if key == "notificationTrigger":
        triggers = require_list(raw, key)
        bad = [t for t in triggers if t not in TRIGGERS]
        if bad:
            raise BadRequestData(
                f"unknown notificationTrigger value(s) {clipped(bad)}; expected {', '.join(TRIGGERS)}"
            )
        return list(dict.fromkeys(triggers))
    if key == "timeInterval":
        return time_interval(raw)
    if key == "throttling":
        return positive_number(raw, key)
    if key in ("q", "csf"):
        return q_text(raw, key)
    if key == "geoQ":
        return geo_query(raw, tm)
    if key == "scopeQ":
        parse_scope(require_str(raw, key))
        return raw
    if key == "temporalQ":
        return temporal_query(raw)
    if key == "isActive":
        return require_bool(raw, key)
    if key == "notification":
        return notification_params(raw, tm)
    if key == "expiresAt":
        return future_datetime(raw, key)
    if key == "lang":  # the grammar of lang= (4.15): it picks languages the same way
        return check_lang(require_str(raw, key))
    if key == "datasetId":
        items = raw if isinstance(raw, list) else [raw]
        require_list(items, key)
        for item in items:
            if item != "@none":
                check_uri(item, "datasetId")
        return raw
    if key == "jsonldContext":
        return absolute_uri(raw, key)
    return raw  # members this hub does not interpret are kept as they are


def _check_whole(doc: Doc) -> None:
    """The rules that span members (5.2.12 / 5.8.1)."""
    if "notification" not in doc:
        raise BadRequestData("a subscription needs a notification member")
    if "entities" not in doc and "watchedAttributes" not in doc:
        raise BadRequestData("a subscription needs entities or watchedAttributes (or both)")
    if "timeInterval" in doc and "watchedAttributes" in doc:
        raise BadRequestData("timeInterval cannot be combined with watchedAttributes")
    if "timeInterval" in doc and "throttling" in doc:
        raise BadRequestData("timeInterval cannot be combined with throttling")


def _members(
    body: Mapping[str, Any], tm: TermMap, *, patch: bool, merge_patch: bool = False
) -> Doc:
    """Every member of a body, validated and expanded; on a patch None means "remove", and
    notification is a NotificationPatch, merged into the stored one."""
    out: Doc = {}
    for key, raw in body.items():
        if key in SYSTEM_MEMBERS or key.startswith("_") or key == "id":
            continue
        if raw is None:
            if patch:
                out[key] = None  # remove the member
            continue  # a null member of a new subscription is an absent one
        if patch and key == "notification":
            out[key] = notification_patch(raw, tm, merge_patch=merge_patch)
        else:
            out[key] = _member(key, raw, tm)
    return out


def new_subscription(body: Any, tm: TermMap, spec: Any, rid: str) -> Doc:
    """A create body as its stored form (rid: the body's id or a generated one)."""
    if not isinstance(body, dict) or not body:
        raise BadRequestData("a subscription must be a non-empty JSON object")
    if "type" not in body:
        raise BadRequestData(f"a subscription needs type {SUBSCRIPTION!r}")
    doc: Doc = {"id": rid}
    doc.update(_members(body, tm, patch=False))
    _check_whole(doc)
    now = now_iso()
    doc["_ctx"] = spec
    if "q" in doc or "csf" in doc:
        doc["_qctx"] = spec
    doc["_sys"] = {"createdAt": now, "modifiedAt": now}
    doc[INCARNATION] = secrets.randbits(62) + 1  # never 0, the incarnation of older ones
    return doc


def body_id(body: Any, what: str = "subscription id") -> str | None:
    """The id a create body names (validated), or None."""
    if isinstance(body, dict) and "id" in body:
        return check_uri(body["id"], what)
    return None


def patch_members(fragment: Any, tm: TermMap, rid: str, *, merge_patch: bool = False) -> Doc:
    """A patch fragment's members, validated and expanded (None: remove the member);
    merge_patch: it came as application/merge-patch+json."""
    if not isinstance(fragment, dict):
        raise BadRequestData("a subscription fragment must be a JSON object")
    fid = fragment.get("id")
    if fid is not None and fid != rid:
        raise BadRequestData(
            f"the fragment's id {shown(fid)} is not the subscription's {shown(rid)}"
        )
    members = _members(fragment, tm, patch=True, merge_patch=merge_patch)
    if not members:
        raise BadRequestData("the fragment changes no member of the subscription")
    for key in ("type", "notification"):
        if key in members and members[key] is None:
            raise BadRequestData(f"{key} is mandatory and cannot be removed")
    return members


def apply_patch(stored: Doc, members: Doc, spec: Any) -> Doc:
    """The stored subscription with a fragment's members replacing (or removing) its own;
    notification is merged into the stored one, member by member (decision 047)."""
    doc = dict(stored)
    patch = members.get("notification")
    if isinstance(patch, NotificationPatch):
        members = {**members, "notification": merged_notification(stored["notification"], patch)}
    merge_members(doc, members)
    _check_whole(doc)
    if "q" in members or "csf" in members:
        doc["_qctx"] = spec
    sys = dict(doc.get("_sys") or {})
    sys["modifiedAt"] = now_iso()
    doc["_sys"] = sys
    return doc


def status_of(doc: Mapping[str, Any]) -> str:
    """active, paused (isActive false) or expired (expiresAt passed)."""
    if is_past(doc.get("expiresAt")):
        return "expired"
    if doc.get("isActive") is False:
        return "paused"
    return "active"


def render_subscription(
    doc: Doc, tm: TermMap, *, csource: bool = False, sys_attrs: bool = False
) -> dict[str, Any]:
    """A stored subscription in the caller's terms, with its status.

    A subscription shows its notificationTrigger, the default one when none was given; a
    context source registration subscription has none.
    """
    out: dict[str, Any] = {}
    extra = [k for k in doc if k not in _ORDER and not k.startswith("_")]
    for key in (*_ORDER, *extra):
        value: Any = doc.get(key)
        if key == "notificationTrigger" and value is None and not csource:
            out[key] = list(DEFAULT_TRIGGERS)
        elif key not in doc:
            continue
        elif key == "entities":
            out[key] = render_selectors(value, tm)
        elif key == "watchedAttributes":
            out[key] = compact_names(value, tm)
        elif key == "geoQ":
            out[key] = render_geo(value, tm)
        elif key == "notification":
            out[key] = render_notification(value, doc.get("_notif") or {}, tm)
        else:
            out[key] = value
    out["status"] = status_of(doc)
    if sys_attrs:
        out.update(doc.get("_sys") or {})
    return out


def query_context(doc: Mapping[str, Any]) -> Any:
    """The @context q and csf of a stored subscription are written in."""
    return doc.get("_qctx", doc.get("_ctx"))


def parsed_q(doc: Mapping[str, Any], tm: TermMap, key: str = "q") -> ast.QNode | None:
    """A stored q (or csf) parsed, names expanded with tm (the query_context's term map)."""
    text = doc.get(key)
    if not text:
        return None
    return ast.expand_q(stored_q(text), tm.expand)


__all__ = [
    "DEFAULT_TRIGGERS",
    "SUBSCRIPTION",
    "TRIGGERS",
    "apply_patch",
    "body_id",
    "new_subscription",
    "parsed_geo",
    "parsed_q",
    "patch_members",
    "query_context",
    "render_subscription",
    "status_of",
]
