"""What redirect registrations cover of local entity writes (clause 4.3.6.3, decision 098):
their context sources hold the data they name and the hub forwards nothing, so a write of it
here would be a copy no reader of the source sees, and data the hub itself refuses a redirect
registration over (5.9.2.4). An entity write finds the registrations that may cover it by its
id and types, not by trying every registration."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson

from cityhub.ngsild.errors import ClaimedAttribute, Conflict
from cityhub.ngsild.registrations import registered_pattern
from cityhub.ngsild.subscriptions import is_past

Doc = dict[str, Any]
TYPE_CHANGE = "@type"  # what the store's `changed` names for a change of the entity's types


@dataclass(frozen=True, slots=True)
class Cover:
    """One EntityInfo of a redirect registration's information item, with that item's names."""

    rid: str
    types: frozenset[str]  # empty: an item without entities, which covers every entity
    names: frozenset[str]  # empty: every Attribute, and the entity itself
    expires: str | None  # past its expiresAt a registration is invalid (5.2.9), covers nothing
    eid: str | None = None
    pattern: str | None = None

    def selects(self, eid: str, types: Iterable[str]) -> bool:
        """Whether the entity with this id and these types is one this item names."""
        if self.types and self.types.isdisjoint(types):
            return False
        if self.eid is not None:
            return self.eid == eid
        return self.pattern is None or registered_pattern(self.pattern).search(eid) is not None


def covers_of(doc: Mapping[str, Any]) -> Iterator[Cover]:
    """The covers of one redirect registration."""
    rid, expires = doc["id"], doc.get("expiresAt")
    for info in doc.get("information", ()):
        names = frozenset((*info.get("propertyNames", ()), *info.get("relationshipNames", ())))
        entities = info.get("entities")
        if not entities:
            yield Cover(rid, frozenset(), names, expires)
            continue
        for ent in entities:
            raw = ent["type"]
            types = frozenset(raw) if isinstance(raw, list) else frozenset((raw,))
            yield Cover(rid, types, names, expires, ent.get("id"), ent.get("idPattern"))


@dataclass
class Redirects:
    """One tenant's redirect registrations, by what an entity write finds them by."""

    by_id: dict[str, list[Cover]] = field(default_factory=dict)
    by_type: dict[str, list[Cover]] = field(default_factory=dict)  # by type or idPattern
    every: list[Cover] = field(default_factory=list)  # items without entities

    @classmethod
    def of(cls, docs: Iterable[Mapping[str, Any]]) -> Redirects:
        """The index of these redirect registrations."""
        out = cls()
        for doc in docs:
            for cover in covers_of(doc):
                if cover.eid is not None:
                    out.by_id.setdefault(cover.eid, []).append(cover)
                elif cover.types:
                    for t in cover.types:
                        out.by_type.setdefault(t, []).append(cover)
                else:
                    out.every.append(cover)
        return out

    def covering(self, eid: str, types: list[str]) -> list[Cover]:
        """The live covers that name this entity (each at most once)."""
        found = [*self.by_id.get(eid, ()), *self.every]
        for t in types:
            found += self.by_type.get(t, ())
        out: list[Cover] = []
        for cover in found:
            if cover.selects(eid, types) and cover not in out and not is_past(cover.expires):
                out.append(cover)
        return out

    def check_write(
        self, doc: Doc, before: str | None = None, changed: set[str] | None = None
    ) -> None:
        """Conflict when an entity write (doc as it is to be stored; before: the stored JSON;
        changed: the Attributes it rewrites, when known) writes data a redirect covers."""
        types = _types_of(doc)
        covers = self.covering(doc["id"], types)
        if not covers:
            return
        old: Doc | None = orjson.loads(before) if before is not None else None
        attrs = doc["attrs"]
        for cover in covers:
            written = set(attrs) if not cover.names else cover.names & attrs.keys()
            if old is None or not cover.selects(old["id"], _types_of(old)):
                if cover.names and not written:
                    continue  # a new entity's other Attributes are the hub's own
                _refuse(cover, doc["id"], written)
            if changed is not None:
                retyped = TYPE_CHANGE in changed
                written &= changed
            else:
                retyped = _types_of(old) != types
                was = old["attrs"]
                written = {a for a in written if was.get(a) != attrs[a]}
            if written or (retyped and not cover.names):
                _refuse(cover, doc["id"], written)


def _types_of(doc: Mapping[str, Any]) -> list[str]:
    raw = doc.get("type", ())
    return [raw] if isinstance(raw, str) else list(raw)


def _refuse(cover: Cover, eid: str, written: set[str]) -> NoReturn:
    why = (
        f"is registered by redirect by {cover.rid}: its context sources hold it, and this hub "
        "forwards no write to them (clause 4.3.6.3); nothing of this write was stored"
    )
    if written:
        raise ClaimedAttribute(min(written), f" of entity {eid} {why}")
    raise Conflict(f"entity {eid} {why}")


__all__ = ["Cover", "Redirects", "covers_of"]
