"""The Notification a receiver gets (clause 5.3.1): the event entity rendered in the
subscription's format and @context, with the headers its endpoint asks for."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from cityhub.ngsild import subscriptions as S
from cityhub.ngsild.core_context import CORE_CONTEXT_URL, NGSI_LD
from cityhub.ngsild.geojson import Geometries, collection, stored_geometries
from cityhub.ngsild.linked import MAX_JOIN_LEVEL, TooManyLinked, listed_once, render_joined
from cityhub.ngsild.projection import Projection, parse_projection
from cityhub.ngsild.render import RenderOptions, dataset_positions, shown_content
from cityhub.ngsild.timeutil import now_iso
from cityhub.notify.pieces import Pieces
from cityhub.notify.subscription import Compiled

log = logging.getLogger("cityhub.notify")
Doc = dict[str, Any]
Fetch = Callable[[list[str]], dict[str, Doc]]
JSON = "application/json"
JSONLD = "application/ld+json"
GEOJSON = "application/geo+json"
LOCATION = NGSI_LD + "location"  # the GeoProperty a GeoJSON notification's geometry is
_EXTRAS = ("_prev", "deletedAt")


def render_options(sub: Compiled) -> RenderOptions:
    """The RenderOptions a subscription's NotificationParams ask for."""
    params = sub.notification
    fmt = params.get("format", "normalized")
    fmt = "keyValues" if fmt in ("keyValues", "simplified") else fmt
    ds = sub.doc.get("datasetId")
    opts = RenderOptions(
        format=fmt,
        sys_attrs=bool(params.get("sysAttrs")),
        lang=sub.doc.get("lang"),
        dataset_ids=frozenset(ds if isinstance(ds, list) else [ds]) if ds else None,
    )
    return opts


def _projections(sub: Compiled) -> tuple[Projection | None, Projection | None]:
    """pick and omit trees in the subscription's terms; notification.attributes is a pick of
    the notified entity alone (linked entities keep all their attributes)."""
    params = sub.notification
    pick = omit = None
    if "pick" in params:
        pick = parse_projection(_text(S.render_projection(params["pick"], sub.tm)))
    if "omit" in params:
        omit = parse_projection(_text(S.render_projection(params["omit"], sub.tm)))
    if params.get("attributes"):
        # a filter of attributes: the entity's members stay (its times with sysAttrs)
        pick = dict.fromkeys(("id", "type", "scope", "createdAt", "modifiedAt"))
        pick.update({sub.tm.compact(a): None for a in params["attributes"]})
    return pick, omit


def _text(projection: str | list[str]) -> str:
    """pick/omit are stored as given: an array of members or their comma-separated text."""
    return projection if isinstance(projection, str) else ",".join(projection)


def _strip(entity: Doc) -> tuple[Doc, dict[tuple[str, int], dict[str, Any]]]:
    """The entity without event extras, and the extras by (attribute, instance position)."""
    extras: dict[tuple[str, int], dict[str, Any]] = {}
    attrs: dict[str, list[Doc]] = {}
    for name, instances in entity["attrs"].items():
        clean = []
        for i, inst in enumerate(instances):
            found = {k: inst[k] for k in _EXTRAS if k in inst}
            if found:
                extras[(name, i)] = found
                inst = {k: v for k, v in inst.items() if k not in _EXTRAS}
            clean.append(inst)
        attrs[name] = clean
    return {**entity, "attrs": attrs}, extras


def _put_extras(
    out: Doc, entity: Doc, extras: dict[tuple[str, int], dict[str, Any]], sub: Compiled, opts: Any
) -> None:
    """Previous values (previousValue, previousObject, ...) and deletedAt beside each instance.

    The rendered attribute holds only the instances of the datasetIds asked for, so an extra
    goes to its instance's place among those (by stored position it landed on another
    instance); and a concise instance that stands as a bare value (or geometry) is put back
    under "value" to carry it (concise Properties lost their previousValue)."""
    for (name, i), found in extras.items():
        key = sub.tm.compact(name)
        rendered = out.get(key)
        if opts.format == "keyValues" or rendered is None:
            continue
        instances = entity["attrs"][name]
        shown = dataset_positions(instances, opts.dataset_ids)
        if i not in shown:
            continue
        at = shown.index(i)
        items = rendered if isinstance(rendered, list) else [rendered]
        if at >= len(items):
            continue
        inst = instances[i]
        target = items[at]
        if opts.format == "concise" and _stands_alone(target, inst):
            target = {"value": target}
            if isinstance(rendered, list):
                rendered[at] = target
            else:
                out[key] = target
        if not isinstance(target, dict):
            continue
        if "_prev" in found:  # in the form the instance shows (lang=: the chosen string)
            member, prev = shown_content(inst["type"], found["_prev"], sub.tm, opts.lang)
            target["previous" + member[0].upper() + member[1:]] = prev
        if "deletedAt" in found and opts.sys_attrs:
            target["deletedAt"] = found["deletedAt"]


def _stands_alone(rendered: Any, inst: Doc) -> bool:
    """Whether a concise instance was rendered as its bare value (or GeoJSON geometry)."""
    if not isinstance(rendered, dict):
        return True
    geometry = inst.get("value")  # a deletion's marker is a string
    return (
        inst["type"] == "GeoProperty"
        and isinstance(geometry, dict)
        and rendered.get("type") == geometry.get("type")
    )


def joins(sub: Compiled) -> bool:
    """Whether the subscription's notifications fetch and render linked entities."""
    params = sub.notification
    return params.get("join") in ("inline", "flat") and int(params.get("joinLevel", 1)) > 0


def render_event_entity(sub: Compiled, entity: Doc, fetch: Fetch) -> list[Doc]:
    """The event entity as the subscription wants to see it (plus flat-joined targets, each
    named by its id); the first is the event entity's, whose id a pick may hide."""
    opts = render_options(sub)
    params = sub.notification
    pick, omit = _projections(sub)
    join = params.get("join")
    join = None if join == "@none" else join
    # one stored before joinLevel was bounded recursed past the stack: it joins to the bound
    level = min(int(params.get("joinLevel", 1)), MAX_JOIN_LEVEL) if join else 0
    clean, extras = _strip(entity)
    try:
        rendered, extra = render_joined([clean], sub.tm, opts, pick, omit, join, level, fetch)
    except TooManyLinked as exc:  # the change is still worth telling, without its links
        log.warning("subscription %s: %s; notified without the join", sub.id, exc.detail)
        rendered, extra = render_joined([clean], sub.tm, opts, pick, omit, None, 0, fetch)
    out = rendered[0]
    _put_extras(out, clean, extras, sub, opts)
    if "deletedAt" in entity:
        out["deletedAt"] = entity["deletedAt"]  # a deletion always says when
    if join == "flat":
        return [e for _, e in listed_once([(entity["id"], out), *((e["id"], e) for e in extra)])]
    return [out]


def notification(
    sub: Compiled, events: list[Doc], fetch: Fetch, tenant: str
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one notification carrying events (in order)."""
    trigger = events[0].get("trigger") if events else None
    return envelope(sub, "Notification", notification_data(sub, events, fetch), trigger, tenant)


def notification_data(sub: Compiled, events: list[Doc], fetch: Fetch) -> list[Doc] | Doc:
    """A notification's data: the rendered entities (JSON-LD: each with the @context), or
    their FeatureCollection (GeoJSON)."""
    rendered: list[tuple[Doc, list[tuple[str, Doc]]]] = []  # each event with its entities
    accept = sub.notification["endpoint"].get("accept")
    geo = accept == GEOJSON
    linked: Geometries = {}  # of flat-joined entities: their documents are not kept

    def fetch_kept(ids: list[str]) -> dict[str, Doc]:
        found = fetch(ids)
        if geo:  # datasetId picks the event entity's instances only, as in its rendering
            linked.update(stored_geometries(list(found.values()), LOCATION, None))
        return found

    for event in events:
        entity = event["entity"]
        first, *more = render_event_entity(sub, entity, fetch_kept)
        ids = [entity["id"], *(e["id"] for e in more)]
        rendered.append((entity, list(zip(ids, [first, *more], strict=True))))
    if geo:
        return _features(sub, rendered, linked)
    data = [e for _, pairs in rendered for _, e in pairs]
    if accept == JSONLD:
        context = _notified_context(sub)
        for item in data:
            item["@context"] = context
    return data


def rendering_key(sub: Compiled) -> tuple[Any, ...] | None:
    """All notification_data takes from sub (but its term map, by identity), so that
    subscriptions alike render a change they share once; None when the data depends on more:
    a join reads the linked entities as they are when each notification is sent."""
    if joins(sub):
        return None
    params = sub.notification
    accept = params["endpoint"].get("accept")
    members = [params.get(k) for k in ("attributes", "pick", "omit")]
    context = _notified_context(sub) if accept == JSONLD else None
    return (id(sub.tm), render_options(sub), accept, orjson.dumps([members, context]))


def _features(
    sub: Compiled, rendered: list[tuple[Doc, list[tuple[str, Doc]]]], linked: Geometries
) -> Doc:
    """The rendered entities as a FeatureCollection: each one's geometry is its location
    GeoProperty, read from the stored entity by its stored id (a keyValues or concise
    rendering no longer says which attribute is a GeoProperty, and a pick may hide the id):
    an event entity's as it was at its event, a flat-joined one's as it was fetched."""
    prop = sub.tm.compact(LOCATION)
    features: list[Doc] = []
    for entity, pairs in rendered:
        own = stored_geometries([entity], LOCATION, render_options(sub).dataset_ids)
        ids = [i for i, _ in pairs]
        part = collection([e for _, e in pairs], prop, None, {**linked, **own}, ids)
        features += part["features"]
    return {"type": "FeatureCollection", "features": features}


def envelope(
    sub: Compiled,
    kind: str,
    data: list[Doc] | Doc,
    trigger: str | None,
    tenant: str,
) -> tuple[bytes, dict[str, str]]:
    """A notification of either kind around its rendered data: JSON with a Link header, or
    JSON-LD or GeoJSON (data a FeatureCollection) with the @context in the body; the tenant
    and the endpoint's receiverInfo headers."""
    body, headers = _envelope(sub, kind, trigger, tenant)
    return orjson.dumps({**body, "data": data}), headers


def envelope_around(
    sub: Compiled, kind: str, data: bytes, trigger: str | None, tenant: str
) -> tuple[Pieces, dict[str, str]]:
    """envelope around data already in JSON, left in its bytes (notifications of one
    change share them): the envelope's members, then data."""
    body, headers = _envelope(sub, kind, trigger, tenant)
    head = orjson.dumps(body)
    return Pieces((head[:-1], b',"data":', data, b"}")), headers


def _envelope(
    sub: Compiled, kind: str, trigger: str | None, tenant: str
) -> tuple[Doc, dict[str, str]]:
    """A notification's members but data, and its headers."""
    body: Doc = {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "type": kind,
        "subscriptionId": sub.id,
        "notifiedAt": now_iso(),
    }
    if trigger:
        body["triggerReason"] = trigger
    endpoint = sub.notification["endpoint"]
    headers: dict[str, str] = {}
    accept = endpoint.get("accept")
    if accept in (JSONLD, GEOJSON):
        body["@context"] = _notified_context(sub)
        headers["Content-Type"] = accept
    else:
        headers["Content-Type"] = JSON
        headers["Link"] = sub.link
    for item in endpoint.get("receiverInfo") or []:
        if item["key"].lower() not in S.RESERVED_HEADERS:  # a stored one from before the check
            headers[item["key"]] = item["value"]
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    return body, headers


def _notified_context(sub: Compiled) -> Any:
    """The @context a JSON-LD or GeoJSON notification carries in its body."""
    context = sub.context if sub.context is not None else CORE_CONTEXT_URL
    if isinstance(context, list) and len(context) == 1:
        return context[0]
    return context
