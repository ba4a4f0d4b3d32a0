"""What one entity change means to one subscription: which trigger fired, and the entity a
notification carries (stored form, with deletion markers and previous values for showChanges).

An event entity is a stored entity whose instances may carry two extra members, read back
by ``payload.py``: ``_prev`` (the content before the change) and ``deletedAt``.

A subscription's event of a change depends on the subscription only through its ``Shape``
(the trigger fired, showChanges, watchedAttributes), so a change that notifies several
subscriptions is stored once (``ChangeEvents.record``) with one small shape per
subscription, and each event is built from the two when it is delivered.
"""

from __future__ import annotations

from typing import Any

import orjson

from cityhub import bigjson
from cityhub.jsonbytes import dumps_kept
from cityhub.ngsild.entity import CONTENT_KEY, NULL_URI
from cityhub.notify.subscription import Compiled

Doc = dict[str, Any]
Instance = dict[str, Any]
Changes = dict[str, list[tuple[str, str]]]  # per attribute IRI: (kind, datasetId) of each instance
# When one change fires several triggers, the notification names the first of these; but an
# update firing several of the attribute ones a subscription asks for is notified once for
# each (ChangeEvents.shapes), so that each notification's triggerReason says what happened.
PRIORITY = (
    "entityCreated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
    "entityUpdated",
)
ATTRIBUTE_TRIGGERS = frozenset({"attributeCreated", "attributeUpdated", "attributeDeleted"})
_DELETED_CONTENT: dict[str, Any] = {
    "languageMap": {"@none": NULL_URI},
    "valueList": [NULL_URI],
    "objectList": [NULL_URI],
}


def _by_dataset(instances: list[Instance]) -> dict[str, Instance]:
    return {i.get("datasetId", "@none"): i for i in instances}


def _plain(instance: Instance) -> bool:
    """Whether an instance is the default one (no datasetId)."""
    return "datasetId" not in instance


def attribute_changes(before: Doc, after: Doc) -> Changes:
    """Per attribute IRI, (kind, datasetId) of each instance created, updated or deleted."""
    out: Changes = {}
    old_attrs, new_attrs = before["attrs"], after["attrs"]
    for name in old_attrs.keys() | new_attrs.keys():
        was, now = old_attrs.get(name), new_attrs.get(name)
        if was == now:  # untouched, as most attributes of an update are: one C comparison
            continue
        if was and now and len(was) == len(now) == 1 and _plain(was[0]) and _plain(now[0]):
            out[name] = [("updated", "@none")]  # one default instance, changed: the most common
            continue
        old = _by_dataset(was or [])
        new = _by_dataset(now or [])
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


def _deleted_entity(before: Doc, now: str, shape: Shape) -> Doc:
    """An entity deletion: id, type and deletedAt, plus the attributes that went with it when
    the trigger is about attributes (the watched ones) or showChanges asks for them."""
    trigger, show, watched = shape
    event: Doc = {"id": before["id"], "type": before["type"], "attrs": {}, "deletedAt": now}
    for meta in ("scope", "createdAt", "modifiedAt"):
        if meta in before:
            event[meta] = before[meta]
    if _shows_attrs(shape):
        plain = trigger == "entityDeleted"
        for name, instances in before["attrs"].items():
            if trigger == "attributeDeleted" and watched and name not in watched:
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


def _updated_entity(before: Doc | None, after: Doc, changes: Changes, show: bool) -> Doc:
    """The entity after the change, with deleted instances as markers and, for showChanges,
    the previous content of each updated instance."""
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


def _watched(changes: Changes, watched: frozenset[str] | None) -> Changes:
    """The attribute changes a subscription watches."""
    return changes if watched is None else {n: k for n, k in changes.items() if n in watched}


def _of_datasets(changes: Changes, datasets: frozenset[str] | None) -> Changes:
    """The attribute changes to instances of the datasetIds a subscription selects: a change
    to others' instances notified an update in which nothing it shows had changed."""
    if datasets is None:
        return changes
    out: Changes = {}
    for name, kinds in changes.items():
        kept = [(kind, dsid) for kind, dsid in kinds if dsid in datasets]
        if kept:
            out[name] = kept
    return out


def _with_datasets(doc: Doc, names: Any, datasets: frozenset[str] | None) -> bool:
    """Whether any of these attributes of doc has an instance of the selected datasetIds."""
    if datasets is None:
        return True
    attrs = doc["attrs"]
    return any(inst.get("datasetId", "@none") in datasets for name in names for inst in attrs[name])


def _shows_attrs(shape: Shape) -> bool:
    """Whether a deletion's event carries the attributes that went with the entity."""
    trigger, show, _ = shape
    return trigger == "attributeDeleted" or show


# What a subscription's event of a change depends on, beside the change itself: the trigger
# fired, showChanges and watchedAttributes (a plain tuple: one is made per notification).
Shape = tuple[str, bool, frozenset[str] | None]


def dump_shape(shape: Shape) -> bytes:
    """A shape as an outbox item stores it (a JSON array)."""
    trigger, show, watched = shape
    return dumps_kept([trigger, show, sorted(watched) if watched is not None else None])


def load_shape(raw: bytes) -> Shape:
    """A shape as dump_shape stored it."""
    trigger, show, watched = orjson.loads(raw)
    return trigger, show, frozenset(watched) if watched is not None else None


class ChangeEvents:
    """One change and the events it gives: its attribute changes are worked out once for
    every subscription it concerns (and only if one selects the entity)."""

    __slots__ = ("_changes", "_triggers", "after", "before", "now")

    def __init__(
        self, before: Doc | None, after: Doc | None, now: str, changes: Changes | None = None
    ) -> None:
        self.before, self.after, self.now = before, after, now
        self._changes = changes
        # (watched, datasets, triggers) -> the triggers fired, each notified (none: empty)
        self._triggers: dict[Any, tuple[str, ...]] = {}

    @property
    def changes(self) -> Changes:
        """Per attribute, the instances the change created, updated or deleted."""
        if self._changes is None:
            before, after = self.before, self.after
            self._changes = {}
            if before is not None and after is not None:
                self._changes = attribute_changes(before, after)
        return self._changes

    def shape(self, sub: Compiled) -> Shape | None:
        """What sub's first event of this change depends on, or None: it does not notify sub."""
        shapes = self.shapes(sub)
        return shapes[0] if shapes else None

    def shapes(self, sub: Compiled) -> list[Shape]:
        """What each of sub's events of this change depends on (none: it does not notify sub):
        one per trigger it fires, an update firing several attribute triggers sub asks for
        giving one event each (GS CIM 009 5.2.12; the Notification names one triggerReason).

        The trigger depends on the subscription only through its watchedAttributes, datasetId
        and notificationTrigger, so it is worked out once per distinct three of them, and the
        subscription's selection (entities, q, geoQ, scopeQ: the costly part) is tested only
        when a trigger it asks for fired."""
        key = (sub.watched, sub.datasets, sub.triggers)
        fired = self._triggers.get(key)
        if fired is None:
            fired = self._triggers[key] = self._fired(*key)
        if not fired:
            return []
        doc = self.after if self.after is not None else self.before
        assert doc is not None
        if not sub.selects(doc):
            return []
        return [(trigger, sub.show_changes, sub.watched) for trigger in fired]

    def _fired(
        self, watched: frozenset[str] | None, datasets: frozenset[str] | None, triggers: Any
    ) -> tuple[str, ...]:
        """The triggers this change notifies a subscription that selects the entity of, among
        those it asks for (triggers): the first by PRIORITY, and of an update every attribute
        trigger it fires."""
        before, after = self.before, self.after
        fired: set[str] = set()
        if after is None:
            assert before is not None
            fired.add("entityDeleted")
            names = before["attrs"].keys() if watched is None else watched & before["attrs"].keys()
            if (watched is None or names) and _with_datasets(before, names, datasets):
                fired.add("attributeDeleted")
        elif before is None:
            fired.add("entityCreated")
            names = after["attrs"].keys() if watched is None else watched & after["attrs"].keys()
            if (watched is None or names) and _with_datasets(after, names, datasets):
                fired.add("attributeCreated")
        else:
            changes = _of_datasets(_watched(self.changes, watched), datasets)
            for kinds in changes.values():
                fired.update("attribute" + kind.capitalize() for kind, _ in kinds)
            other = before["type"] != after["type"] or before.get("scope") != after.get("scope")
            if changes or (other and watched is None):
                fired.add("entityUpdated")
        asked = [t for t in PRIORITY if t in fired and t in triggers]
        if (
            before is not None
            and after is not None
            and asked[0:1]
            and asked[0] in ATTRIBUTE_TRIGGERS
        ):
            return tuple(t for t in asked if t in ATTRIBUTE_TRIGGERS)
        return tuple(asked[:1])

    def event(self, shape: Shape) -> Doc:
        """The notification event ({"trigger", "entity"}) of a subscription of this shape."""
        trigger, show, watched = shape
        if self.after is None:
            assert self.before is not None
            entity = _deleted_entity(self.before, self.now, shape)
        else:
            changes = _watched(self.changes, watched)
            entity = _updated_entity(self.before, self.after, changes, show)
        return {"trigger": trigger, "entity": entity}

    def record(self, shapes: list[Shape]) -> Doc:
        """The change as the outbox stores it once for subscriptions of these shapes: what
        their events are built from, no more (of an update, the changed attributes as they
        were; of a deletion, the attributes only if an event shows them)."""
        before = self.before
        if before is not None and self.after is not None:
            old = before["attrs"]
            before = {"attrs": {n: old[n] for n in self.changes if n in old}}
        elif before is not None and not any(_shows_attrs(s) for s in shapes):
            before = {**before, "attrs": {}}
        return {"before": before, "after": self.after, "now": self.now, "changes": self.changes}

    @classmethod
    def from_record(cls, record: Doc) -> ChangeEvents:
        """The change a record holds."""
        return cls(record["before"], record["after"], record["now"], record["changes"])


def stored_events(payload: bytes, body: bytes | None) -> list[Doc]:
    """The events an outbox item carries: its payload, or, when the item shares its change
    with other items (body: the change's record), the event its shape gives."""
    if body is None:
        events: list[Doc] = bigjson.loads(payload)
        return events
    return [ChangeEvents.from_record(bigjson.loads(body)).event(load_shape(payload))]


def event_for(sub: Compiled, before: Doc | None, after: Doc | None, now: str) -> Doc | None:
    """The notification event ({"trigger", "entity"}) a change gives sub, or None."""
    change = ChangeEvents(before, after, now)
    shape = change.shape(sub)
    return None if shape is None else change.event(shape)


def erased_with(eid: str, payload: bytes, body: bytes | None) -> bool:
    """Whether an outbox item carries values of entity eid, which its erasure takes back: any
    event about it but a deletion notice that shows no attribute (that one still tells the
    receiver to drop its copy, decision 095)."""
    for event in stored_events(payload, body):
        entity = event["entity"]
        if entity["id"] == eid and ("deletedAt" not in entity or entity["attrs"]):
            return True
    return False
