"""What one entity change means to one subscription: which trigger fired, and the entity a
notification carries (stored form, with deletion markers and previous values for showChanges).

An event entity is a stored entity whose instances may carry two extra members, read back
by ``payload.py``: ``_prev`` (the content before the change) and ``deletedAt``.
"""

from __future__ import annotations

from typing import Any

from cityhub.ngsild.entity import CONTENT_KEY, NULL_URI
from cityhub.notify.subscription import Compiled

Doc = dict[str, Any]
Instance = dict[str, Any]
# When one change fires several triggers, the notification names the first of these.
PRIORITY = (
    "entityCreated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
    "entityUpdated",
)
_DELETED_CONTENT: dict[str, Any] = {
    "languageMap": {"@none": NULL_URI},
    "valueList": [NULL_URI],
    "objectList": [NULL_URI],
}


def _by_dataset(instances: list[Instance]) -> dict[str, Instance]:
    return {i.get("datasetId", "@none"): i for i in instances}


def attribute_changes(before: Doc, after: Doc) -> dict[str, list[tuple[str, str]]]:
    """Per attribute IRI, (kind, datasetId) of each instance created, updated or deleted."""
    out: dict[str, list[tuple[str, str]]] = {}
    old_attrs, new_attrs = before["attrs"], after["attrs"]
    for name in old_attrs.keys() | new_attrs.keys():
        old = _by_dataset(old_attrs.get(name, []))
        new = _by_dataset(new_attrs.get(name, []))
        kinds = [("deleted", d) for d in old if d not in new]
        kinds += [("created", d) for d in new if d not in old]
        kinds += [("updated", d) for d in new if d in old and new[d] != old[d]]
        if kinds:
            out[name] = kinds
    return out


def _marker(old: Instance, deleted_at: str, show: bool, plain: bool) -> Instance:
    """A deleted instance as a notification shows it: its type and content urn:ngsi-ld:null."""
    typ = old["type"]
    key = CONTENT_KEY[typ]
    out: Instance = {"type": typ, key: NULL_URI if plain else _DELETED_CONTENT.get(key, NULL_URI)}
    for meta in ("datasetId", "createdAt", "modifiedAt"):
        if meta in old:
            out[meta] = old[meta]
    out["deletedAt"] = deleted_at
    if show:
        out["_prev"] = old[key]
    return out


def _deleted_entity(sub: Compiled, before: Doc, now: str, trigger: str) -> Doc:
    """An entity deletion: id, type and deletedAt, plus the attributes that went with it when
    the trigger is about attributes (the watched ones) or showChanges asks for them."""
    show = bool(sub.notification.get("showChanges"))
    event: Doc = {"id": before["id"], "type": before["type"], "attrs": {}, "deletedAt": now}
    for meta in ("scope", "createdAt", "modifiedAt"):
        if meta in before:
            event[meta] = before[meta]
    if trigger == "attributeDeleted" or show:
        plain = trigger == "entityDeleted"
        for name, instances in before["attrs"].items():
            if trigger == "attributeDeleted" and sub.watched and name not in sub.watched:
                continue
            event["attrs"][name] = [_marker(_default(instances), now, show, plain)]
    return event


def _default(instances: list[Instance]) -> Instance:
    """The instance that stands for a whole attribute that is gone: the default one, without
    its datasetId when it had none."""
    chosen = next((i for i in instances if "datasetId" not in i), None)
    if chosen is None:
        chosen = {k: v for k, v in instances[0].items() if k != "datasetId"}
    return chosen


def _updated_entity(
    sub: Compiled, before: Doc | None, after: Doc, changes: dict[str, list[tuple[str, str]]]
) -> Doc:
    """The entity after the change, with deleted instances as markers and, for showChanges,
    the previous content of each updated instance."""
    show = bool(sub.notification.get("showChanges"))
    attrs = dict(after["attrs"])
    event = {**after, "attrs": attrs}
    if before is None:
        return event
    for name, kinds in changes.items():
        old = _by_dataset(before["attrs"].get(name, []))
        instances = list(attrs.get(name, []))
        if name not in attrs and len(old) > 1:  # every instance deleted: the attribute is gone
            attrs[name] = [_marker(_default(list(old.values())), after["modifiedAt"], show, False)]
            continue
        for kind, dsid in kinds:
            if kind == "deleted":
                instances.append(_marker(old[dsid], after["modifiedAt"], show, plain=False))
            elif kind == "updated" and show:
                at = next(
                    i for i, inst in enumerate(instances) if inst.get("datasetId", "@none") == dsid
                )
                prev = old[dsid]
                instances[at] = {**instances[at], "_prev": prev[CONTENT_KEY[prev["type"]]]}
        attrs[name] = instances
    return event


def event_for(sub: Compiled, before: Doc | None, after: Doc | None, now: str) -> Doc | None:
    """The notification event ({"trigger", "entity"}) a change gives sub, or None."""
    fired: set[str] = set()
    changes: dict[str, list[tuple[str, str]]] = {}
    watched = sub.watched
    if after is None:
        assert before is not None
        if not sub.selects(before):
            return None
        fired.add("entityDeleted")
        if watched is None or watched & before["attrs"].keys():
            fired.add("attributeDeleted")
    elif before is None:
        if not sub.selects(after):
            return None
        fired.add("entityCreated")
        if watched is None or watched & after["attrs"].keys():
            fired.add("attributeCreated")
    else:
        if not sub.selects(after):
            return None
        changes = attribute_changes(before, after)
        if watched is not None:
            changes = {n: k for n, k in changes.items() if n in watched}
        for kinds in changes.values():
            fired.update("attribute" + kind.capitalize() for kind, _ in kinds)
        other = before["type"] != after["type"] or before.get("scope") != after.get("scope")
        if changes or (other and watched is None):
            fired.add("entityUpdated")
    trigger = next((t for t in PRIORITY if t in fired and t in sub.triggers), None)
    if trigger is None:
        return None
    if after is None:
        assert before is not None
        entity = _deleted_entity(sub, before, now, trigger)
    else:
        entity = _updated_entity(sub, before, after, changes)
    return {"trigger": trigger, "entity": entity}
