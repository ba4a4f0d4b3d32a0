"""What exclusive and redirect registrations claim (clauses 4.3.6.3, 5.9.2.4, decision 084):
an exclusive registration holds named Attributes of single Entities for its context source, so
no second exclusive or redirect registration may name them, none may be made over data the hub
holds, and, since the hub forwards nothing, a local write of such an Attribute is refused
rather than kept as a second, stale copy.

The claims of every tenant are held in memory (loaded at start-up, changed with each
registration write inside its store group), so the check on an entity write is one dict
look-up, and a registration is checked against the others without a scan of the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from cityhub.ngsild.errors import Conflict
from cityhub.ngsild.query.ast import TypeName, TypeOr
from cityhub.ngsild.registrations import registered_pattern
from cityhub.ngsild.subscriptions import is_past
from cityhub.store.base import EntityQuery, WriteTx

Doc = dict[str, Any]
EXCLUSIVE, REDIRECT = "exclusive", "redirect"


@dataclass(frozen=True, slots=True)
class Claim:
    """One exclusive registration's hold on one Attribute of one Entity."""

    rid: str
    types: tuple[str, ...]  # the entity's types as registered (a redirect by type may cover it)
    expires: str | None  # expiresAt: past it the registration is invalid (5.2.9) and holds nothing


def _types(ent: Mapping[str, Any]) -> tuple[str, ...]:
    raw = ent["type"]
    return tuple(raw) if isinstance(raw, list) else (raw,)


def _names(info: Mapping[str, Any]) -> list[str]:
    return [*info.get("propertyNames", ()), *info.get("relationshipNames", ())]


def _live(doc: Mapping[str, Any] | None, mode: str) -> bool:
    return doc is not None and doc.get("mode") == mode and not is_past(doc.get("expiresAt"))


def claimed(doc: Mapping[str, Any]) -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(entity id, its types, Attribute) of each pair an exclusive registration names."""
    for info in doc.get("information", ()):
        names = _names(info)
        for ent in info.get("entities", ()):
            if "id" in ent:
                for name in names:
                    yield ent["id"], _types(ent), name


def covers(doc: Mapping[str, Any], eid: str, types: Iterable[str], attr: str) -> bool:
    """Whether a registration's information selects this Attribute of this Entity (an item
    without attribute names selects every Attribute, one without entities every Entity)."""
    for info in doc.get("information", ()):
        names = _names(info)
        if names and attr not in names:
            continue
        entities = info.get("entities")
        if not entities:
            return True
        for ent in entities:
            if not set(_types(ent)) & set(types):
                continue
            if "id" in ent:
                if ent["id"] == eid:
                    return True
            elif "idPattern" in ent:
                if registered_pattern(ent["idPattern"]).search(eid) is not None:
                    return True
            else:
                return True
    return False


@dataclass
class RegistrationClaims:
    """The live exclusive claims and redirect registrations of every tenant."""

    # tenant → entity id → Attribute IRI → registration id → claim (registrations stored
    # before this check may overlap, so one pair can have several holders)
    exclusive: dict[str, dict[str, dict[str, dict[str, Claim]]]] = field(default_factory=dict)
    redirect: dict[str, dict[str, Doc]] = field(default_factory=dict)  # tenant → id → doc

    @classmethod
    def of(cls, stored: Iterable[tuple[str, Doc]]) -> RegistrationClaims:
        """The claims of stored registrations, (tenant, document) pairs."""
        claims = cls()
        for tenant, doc in stored:
            claims.replace(tenant, None, doc)
        return claims

    def replace(self, tenant: str, before: Doc | None, after: Doc | None) -> None:
        """Take one registration write into account (before/after: None when absent)."""
        if before is not None:
            self._drop(tenant, before)
        if after is None:
            return
        rid = after["id"]
        if after.get("mode") == REDIRECT:
            self.redirect.setdefault(tenant, {})[rid] = after
        elif after.get("mode") == EXCLUSIVE:
            held = self.exclusive.setdefault(tenant, {})
            for eid, types, attr in claimed(after):
                claim = Claim(rid, types, after.get("expiresAt"))
                held.setdefault(eid, {}).setdefault(attr, {})[rid] = claim

    def _drop(self, tenant: str, doc: Doc) -> None:
        rid = doc["id"]
        self.redirect.get(tenant, {}).pop(rid, None)
        held = self.exclusive.get(tenant, {})
        for eid, _, attr in claimed(doc):
            attrs = held.get(eid, {})
            holders = attrs.get(attr, {})
            holders.pop(rid, None)
            if not holders:
                attrs.pop(attr, None)
            if not attrs:
                held.pop(eid, None)

    @contextmanager
    def changing(self) -> Iterator[RegistrationClaims.Undo]:
        """A block whose replace() calls are undone if it raises (a registration write whose
        group rolled back leaves the claims as they were)."""
        undo = RegistrationClaims.Undo(self)
        try:
            yield undo
        except BaseException:
            for tenant, before, after in reversed(undo.done):
                self.replace(tenant, after, before)
            raise

    class Undo:
        """replace() calls made inside RegistrationClaims.changing()."""

        def __init__(self, claims: RegistrationClaims) -> None:
            self.claims = claims
            self.done: list[tuple[str, Doc | None, Doc | None]] = []

        def replace(self, tenant: str, before: Doc | None, after: Doc | None) -> None:
            """RegistrationClaims.replace, undone if the block raises."""
            self.claims.replace(tenant, before, after)
            self.done.append((tenant, before, after))

    # -- registrations ---------------------------------------------------------------------
    def check_registration(self, tenant: str, doc: Doc, tx: WriteTx) -> None:
        """Conflict when an exclusive or redirect registration (as it is to be stored) meets
        another registration's exclusive claim or, for an exclusive one, an exclusive or
        redirect one over its Attributes (4.3.6.3), or data the hub holds (5.9.2.4)."""
        if _live(doc, EXCLUSIVE):
            self._check_exclusive(tenant, doc, tx)
        elif _live(doc, REDIRECT):
            self._check_redirect(tenant, doc, tx)

    def _check_exclusive(self, tenant: str, doc: Doc, tx: WriteTx) -> None:
        rid = doc["id"]
        held = self.exclusive.get(tenant, {})
        redirects = [r for r in self.redirect.get(tenant, {}).values() if r["id"] != rid]
        local: dict[str, Doc | None] = {}
        for eid, types, attr in claimed(doc):
            for other in held.get(eid, {}).get(attr, {}).values():
                if other.rid != rid and not is_past(other.expires):
                    raise _overlap(rid, other.rid, eid, attr)
            for r in redirects:
                if _live(r, REDIRECT) and covers(r, eid, types, attr):
                    raise _overlap(rid, r["id"], eid, attr)
            if eid not in local:
                local[eid] = tx.get(eid)
            entity = local[eid]
            if entity is not None and attr in entity["attrs"]:
                raise Conflict(
                    f"entity {eid} already holds {attr} here; an exclusive registration of it "
                    f"would leave two copies (clause 5.9.2): delete the attribute first"
                )

    def _check_redirect(self, tenant: str, doc: Doc, tx: WriteTx) -> None:
        rid = doc["id"]
        for eid, attrs in self.exclusive.get(tenant, {}).items():
            for attr, holders in attrs.items():
                for other in holders.values():
                    if (
                        other.rid != rid
                        and not is_past(other.expires)
                        and covers(doc, eid, other.types, attr)
                    ):
                        raise _overlap(rid, other.rid, eid, attr)
        for query in _local_queries(doc):
            found = tx.matching(query, limit=1)
            if found:
                raise Conflict(
                    f"entity {next(iter(found))} held here matches this redirect registration, whose "
                    "context sources hold the data it names (clause 5.9.2): delete it first"
                )

    # -- entity writes ---------------------------------------------------------------------
    def check_write(
        self, tenant: str, doc: Doc, before: str | None = None, changed: set[str] | None = None
    ) -> None:
        """Conflict when an entity write (doc: the entity as it is to be stored) writes an
        Attribute an exclusive registration holds; `changed`: the Attributes the write
        rewrites, when known, else `before` (the stored JSON) tells which differ."""
        held = self.exclusive.get(tenant)
        attrs_held = held.get(doc["id"]) if held else None
        if not attrs_held:
            return
        attrs = doc["attrs"]
        old: Doc | None = None
        for attr, holders in attrs_held.items():
            if attr not in attrs or (changed is not None and attr not in changed):
                continue
            live = [c.rid for c in holders.values() if not is_past(c.expires)]
            if not live:
                continue
            if changed is None and before is not None:
                old = old if old is not None else orjson.loads(before)
                if old["attrs"].get(attr) == attrs[attr]:
                    continue
            raise Conflict(
                f"{attr} of entity {doc['id']} is registered exclusively by {live[0]}: its "
                "context source holds it, and this hub forwards no write to it (clause "
                "4.3.6.3); nothing of this write was stored"
            )


def _overlap(rid: str, other: str, eid: str, attr: str) -> Conflict:
    return Conflict(
        f"registration {other} already registers {attr} of entity {eid} exclusively or by "
        f"redirect; {rid} cannot register it exclusively or by redirect too (clause 4.3.6.3)"
    )


def _local_queries(doc: Doc) -> Iterator[EntityQuery]:
    """The entity selections of a redirect registration's information items."""
    for info in doc.get("information", ()):
        names = tuple(_names(info)) or None
        entities = info.get("entities")
        if not entities:
            yield EntityQuery(attrs=names)
            continue
        for ent in entities:
            types = TypeOr(tuple(TypeName(t) for t in _types(ent)))
            yield EntityQuery(
                ids=(ent["id"],) if "id" in ent else None,
                id_pattern=ent.get("idPattern") if "id" not in ent else None,
                types=types,
                attrs=names,
            )


__all__ = ["Claim", "RegistrationClaims", "claimed", "covers"]
