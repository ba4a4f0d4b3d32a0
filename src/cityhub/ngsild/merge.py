"""Pure functions that combine stored attributes with incoming ones."""

from __future__ import annotations

from typing import Any

from cityhub.ngsild.entity import Attrs, Instance


def stamp(inst: Instance, now: str, created: str | None = None) -> Instance:
    """Set createdAt/modifiedAt on an instance (keeping an older createdAt), and on each
    sub-attribute that has none yet: a sub-attribute is written when its instance is."""
    inst["createdAt"] = created or now
    inst["modifiedAt"] = now
    for sub in inst.get("sub", {}).values():
        if "createdAt" not in sub:
            stamp(sub, now)
    return inst


def without_nulls(inst: Instance) -> Instance:
    """An instance as written whole (new, or replacing one): a null sub-attribute or member
    (observedAt, unitCode, objectType) means "not there", so it is left out rather than
    stored as the marker."""
    for key in [k for k, v in inst.items() if v is None]:
        del inst[key]
    subs = inst.get("sub")
    if subs:
        kept = {name: without_nulls(sub) for name, sub in subs.items() if not sub.get("null")}
        if kept:
            inst["sub"] = kept
        else:
            del inst["sub"]
    return inst


def find(instances: list[Instance], dataset_id: str | None) -> int | None:
    """Index of the instance with this datasetId (None = the default instance)."""
    for i, inst in enumerate(instances):
        if inst.get("datasetId") == dataset_id:
            return i
    return None


def put_instances(stored: Attrs, name: str, incoming: list[Instance], now: str) -> list[Instance]:
    """Add or replace instances by datasetId; return what was written (for history)."""
    current = stored.setdefault(name, [])
    for inst in incoming:
        i = find(current, inst.get("datasetId"))
        if i is None:
            current.append(stamp(inst, now))
        else:
            current[i] = stamp(inst, now, current[i].get("createdAt"))
    return incoming


def merge_members(doc: dict[str, Any], members: dict[str, Any]) -> None:
    """Merge-patch top-level members in place: a None value removes the member."""
    for key, value in members.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value


_CONTENT_MEMBERS = ("value", "object", "languageMap", "vocab", "valueList", "objectList", "json")
# members only some attribute types carry
_TYPED_MEMBERS = {
    "unitCode": ("Property", "ListProperty"),
    "objectType": ("Relationship", "ListRelationship"),
}


def merge_instance(old: Instance, new: Instance, now: str) -> Instance:
    """Merge-patch one instance: given members replace, absent ones stay, null ones (None,
    from the null marker) go, subs merge."""
    merged = {k: v for k, v in old.items() if k != "sub"}
    for key, value in new.items():
        if key == "sub":
            continue
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if new["type"] != old["type"]:  # a new type keeps no member only the old one could have
        for key in (*_CONTENT_MEMBERS, *_TYPED_MEMBERS):
            if key in merged and key not in new and new["type"] not in _TYPED_MEMBERS.get(key, ()):
                del merged[key]
    subs = dict(old.get("sub", {}))
    for name, sub in new.get("sub", {}).items():
        if sub.get("null"):
            subs.pop(name, None)
        elif name in subs:
            subs[name] = merge_instance(subs[name], sub, now)
        else:
            subs[name] = without_nulls(sub)
    if subs:
        merged["sub"] = subs
    return stamp(merged, now, old.get("createdAt"))
