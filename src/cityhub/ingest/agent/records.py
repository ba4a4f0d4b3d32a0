"""Provisioning bodies → stored records of data sources and devices (keys only as digests)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cityhub.ingest.agent.keys import check_id, check_key, key_hash, new_key
from cityhub.ingest.agent.mapping import check_mapping
from cityhub.ngsild.entity import check_name, check_uri
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.timeutil import now_iso

Doc = dict[str, Any]

SOURCE_MEMBERS = ("id", "apikey", "entityType", "mapping", "ldContext", "description")
DEVICE_MEMBERS = (
    "id",
    "entityId",
    "entityType",
    "protocol",
    "apikey",
    "source",
    "mapping",
    "ldContext",
    "description",
)
PROTOCOLS = ("mqtt", "http")
SECRET = "apikeyHash"  # the member views never show


def _object(body: Any, allowed: tuple[str, ...], what: str) -> Doc:
    if not isinstance(body, dict):
        raise BadRequestData(f"a {what} must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequestData(f"unknown {what} member(s) {unknown}; allowed: {', '.join(allowed)}")
    return body


def _context(value: Any) -> str:
    """A device's JSON-LD @context: one http(s) URL (its terms name the attributes)."""
    try:
        scheme = urlsplit(value).scheme if isinstance(value, str) else ""
    except ValueError:  # e.g. an unclosed IPv6 host
        scheme = ""
    if scheme not in ("http", "https"):
        raise BadRequestData(f"ldContext must be an http(s) URL, got {value!r}")
    return value


def _description(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 1000:
        raise BadRequestData("description must be a string of at most 1,000 characters")
    return value


def _common(doc: Doc, body: Doc) -> None:
    """Members sources and devices share: mapping, ldContext, description (null removes)."""
    for key, check in (
        ("mapping", check_mapping),
        ("ldContext", _context),
        ("description", _description),
    ):
        if key not in body:
            continue
        if body[key] is None:
            doc.pop(key, None)
        else:
            doc[key] = check(body[key])


def _entity_type(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequestData(f"entityType must be a type name, got {value!r}")
    return check_name(value, "entityType")


def new_source(body: Any) -> tuple[Doc, str | None]:
    """A source record from a create body, and its API key when the hub generated it."""
    body = _object(body, SOURCE_MEMBERS, "source")
    doc: Doc = {"id": check_id(body.get("id"), "source id")}
    generated = None
    key = body.get("apikey")
    if key is None:
        key = generated = new_key()
    doc[SECRET] = key_hash(check_key(key))
    if body.get("entityType") is not None:
        doc["entityType"] = _entity_type(body["entityType"])
    _common(doc, body)
    doc["createdAt"] = doc["modifiedAt"] = now_iso()
    return doc, generated


def changed_source(old: Doc, body: Any) -> Doc:
    """A source record after a PATCH (id and key digest cannot be read back, only replaced)."""
    body = _object(body, SOURCE_MEMBERS, "source")
    if body.get("id", old["id"]) != old["id"]:
        raise BadRequestData("the body's id does not match the path")
    doc = dict(old)
    if "apikey" in body:
        if body["apikey"] is None:
            raise BadRequestData("a source always has an API key; give a new one to rotate it")
        doc[SECRET] = key_hash(check_key(body["apikey"]))
    if "entityType" in body:
        if body["entityType"] is None:
            doc.pop("entityType", None)
        else:
            doc["entityType"] = _entity_type(body["entityType"])
    _common(doc, body)
    return _touched(old, doc)


def _touched(old: Doc, doc: Doc) -> Doc:
    """A changed record with its new modifiedAt; a PATCH of nothing new keeps the old one."""
    if doc != old:
        doc["modifiedAt"] = now_iso()
    return doc


def new_device(body: Any, source: Doc | None) -> tuple[Doc, str | None]:
    """A device record from a create body (defaults from its source), and a generated key."""
    body = _object(body, DEVICE_MEMBERS, "device")
    did = check_id(body.get("id"), "device id")
    doc: Doc = {"id": did}
    if body.get("source") is not None:
        doc["source"] = check_id(body["source"], "source")
    etype = body.get("entityType")  # "" is a bad type, not an omitted one
    if etype is None:
        etype = (source or {}).get("entityType")
    if etype is None:
        raise BadRequestData("entityType is required (on the device or on its source)")
    doc["entityType"] = _entity_type(etype)
    eid = body.get("entityId")
    doc["entityId"] = check_uri(
        default_entity_id(doc["entityType"], did) if eid is None else eid, "entityId"
    )
    doc["protocol"] = _protocol(body.get("protocol", "mqtt"))
    generated = None
    key = body.get("apikey")
    if key is None and "source" not in doc:
        key = generated = new_key()
    if key is not None:
        doc[SECRET] = key_hash(check_key(key))
    _common(doc, body)
    doc["createdAt"] = doc["modifiedAt"] = now_iso()
    return doc, generated


def changed_device(old: Doc, body: Any) -> Doc:
    """A device record after a PATCH; `apikey: null` falls back to the source's key."""
    body = _object(body, DEVICE_MEMBERS, "device")
    if body.get("id", old["id"]) != old["id"]:
        raise BadRequestData("the body's id does not match the path")
    doc = dict(old)
    if "source" in body:
        if body["source"] is None:
            doc.pop("source", None)
        else:
            doc["source"] = check_id(body["source"], "source")
    if body.get("entityType") is not None:
        doc["entityType"] = _entity_type(body["entityType"])
        _retyped(old, doc["entityType"], body.get("entityId"))
    if body.get("entityId") is not None:
        doc["entityId"] = check_uri(body["entityId"], "entityId")
    if body.get("protocol") is not None:
        doc["protocol"] = _protocol(body["protocol"])
    if "apikey" in body:
        if body["apikey"] is None:
            doc.pop(SECRET, None)
        else:
            doc[SECRET] = key_hash(check_key(body["apikey"]))
    _common(doc, body)
    return _touched(old, doc)


def default_entity_id(etype: str, did: str) -> str:
    """The entity id of a device created without one."""
    return f"urn:ngsi-ld:{etype}:{did}"


def _retyped(old: Doc, etype: str, entity_id: Any) -> None:
    """Refuse a new type for an entity whose id was made from the old one, unless the PATCH
    names the entity too: the entity kept its id and gained the type, so it had both types
    and an id that named the wrong one."""
    if etype == old["entityType"] or entity_id is not None:
        return
    if old["entityId"] != default_entity_id(old["entityType"], old["id"]):
        return  # an id of the operator's own choosing: that entity gains the type
    raise BadRequestData(
        f"entityType {etype!r} would be added to entity {old['entityId']!r}, whose id was made "
        f"from the type {old['entityType']!r}; give entityId as well (e.g. "
        f"{default_entity_id(etype, old['id'])!r}: a new entity, the old one and its history "
        "stay until deleted)"
    )


def _protocol(value: Any) -> str:
    if value not in PROTOCOLS:
        raise BadRequestData(f"protocol must be one of {', '.join(PROTOCOLS)}, got {value!r}")
    return str(value)


def view(doc: Doc, tenant: str) -> Doc:
    """What the API shows of a record: everything but the key digest, plus the tenant."""
    out = {k: v for k, v in doc.items() if k != SECRET}
    out["tenant"] = tenant
    return out
