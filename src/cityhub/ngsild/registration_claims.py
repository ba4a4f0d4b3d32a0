"""What exclusive and redirect registrations claim (clauses 4.3.6.3, 5.9.2.4, decision 083):
an exclusive registration holds named Attributes of single Entities for its context source, so
no second exclusive or redirect registration may name them, none may be made over data the hub
holds, and, since the hub forwards nothing, a local write of such an Attribute is refused
rather than kept as a second, stale copy.

The claims of every tenant are held in memory (loaded at start-up, changed with each
registration write inside its store group), so the check on an entity write is one dict
look-up, and a registration is checked against the others without a scan of the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from cityhub.ngsild.errors import ClaimedAttribute, Conflict
from cityhub.ngsild.query.ast import TypeName, TypeOr
from cityhub.ngsild.registration_redirects import Redirects
from cityhub.ngsild.registrations import REGISTRATIONS, registered_pattern
from cityhub.ngsild.subscriptions import is_past
from cityhub.store.base import EntityQuery, WriteTx

Doc = dict[str, Any]
EXCLUSIVE, REDIRECT = "exclusive", "redirect"


@dataclass(frozen=True, slots=True)
class Claim:
    """One exclusive registration's hold on Attributes of one Entity (one per registration
    and entity, not per attribute: a registration may name 500 ids by 500 names)."""

    rid: str
    types: frozenset[str]  # the entity's types as registered (a redirect by type may cover it)
    names: frozenset[str]  # the Attributes held
    expires: str | None  # expiresAt: past it the registration is invalid (5.2.9) and holds nothing

    def live(self) -> bool:
        """Whether the registration still holds anything."""
        return not is_past(self.expires)


def _types(ent: Mapping[str, Any]) -> frozenset[str]:
    raw = ent["type"]
    return frozenset(raw) if isinstance(raw, list) else frozenset((raw,))


def _names(info: Mapping[str, Any]) -> frozenset[str]:
    return frozenset((*info.get("propertyNames", ()), *info.get("relationshipNames", ())))


def _live(doc: Mapping[str, Any] | None, mode: str) -> bool:
    return doc is not None and doc.get("mode") == mode and not is_past(doc.get("expiresAt"))


def claimed(doc: Mapping[str, Any]) -> dict[str, Claim]:
    """What an exclusive registration holds, by entity id (items naming one id are joined)."""
    out: dict[str, Claim] = {}
    for info in doc.get("information", ()):
        names = _names(info)
        for ent in info.get("entities", ()):
            if "id" not in ent or not names:
                continue
            eid, types = ent["id"], _types(ent)
            had = out.get(eid)
            held = names if had is None else had.names | names
            types = types if had is None else had.types | types
            out[eid] = Claim(doc["id"], types, held, doc.get("expiresAt"))
    return out


@dataclass
class Held:
    """Claims to test a registration against, by entity id, with what every search of them
    needs once: the ids joined by newlines for a registered idPattern (one search over all of
    them, decision 071), and every type and name they hold, to pass over a selector that can
    meet none of them without looking at each."""

    by_id: Mapping[str, Iterable[Claim]]
    ids: tuple[str, ...] = ()
    joined: str = ""
    types: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, by_id: Mapping[str, Iterable[Claim]]) -> Held:
        """The claims of these entities (those of expired registrations left out)."""
        live = {eid: [c for c in claims if c.live()] for eid, claims in by_id.items()}
        live = {eid: claims for eid, claims in live.items() if claims}
        every = [c for claims in live.values() for c in claims]
        return cls(
            live,
            tuple(live),
            "\n".join(live),
            frozenset().union(*(c.types for c in every)),
            frozenset().union(*(c.names for c in every)),
        )


def covered(doc: Mapping[str, Any], held: Held) -> tuple[Claim, str, str] | None:
    """The first held (claim, entity id, Attribute) a registration's information selects (an
    item without attribute names selects every Attribute, one without entities every
    Entity), or None."""
    if not held.ids:
        return None
    for info in doc.get("information", ()):
        selected = _names(info)
        if selected and not selected & held.names:
            continue
        for types, eids in _selected_ids(info, held):
            for eid in eids:
                for claim in held.by_id.get(eid, ()):
                    common = claim.names & selected if selected else claim.names
                    if common and (types is None or types & claim.types):
                        return claim, eid, min(common)
    return None


def _selected_ids(
    info: Mapping[str, Any], held: Held
) -> Iterator[tuple[frozenset[str] | None, Iterable[str]]]:
    """(types, held ids) each EntityInfo of an information item may select (types None: any)."""
    entities = info.get("entities")
    if not entities:
        yield None, held.ids
        return
    for ent in entities:
        types = _types(ent)
        if not types & held.types:
            continue
        if "id" in ent:
            yield types, (ent["id"],) if ent["id"] in held.by_id else ()
        elif "idPattern" in ent:
            pattern = registered_pattern(ent["idPattern"])
            if pattern.search_any(held.ids, held.joined):
                yield types, (eid for eid in held.ids if pattern.search(eid) is not None)
        else:
            yield types, held.ids


@dataclass
class RegistrationClaims:
    """The live exclusive claims and redirect registrations of every tenant."""

    # tenant → entity id → registration id → claim (registrations stored before this check
    # may overlap, so one entity can have several holders of one Attribute)
    exclusive: dict[str, dict[str, dict[str, Claim]]] = field(default_factory=dict)
    redirect: dict[str, dict[str, Doc]] = field(default_factory=dict)  # tenant → id → doc
    # tenant → its redirect registrations indexed for entity writes, made again after a change
    _covers: dict[str, Redirects] = field(default_factory=dict)

    @classmethod
    def guarding(cls, store: Any) -> RegistrationClaims:
        """The claims of a store's registrations, made its write guard (the hub, and
        `cityhub import` beside it)."""
        claims = cls.of(store.resource_every_tenant(REGISTRATIONS))
        store.guard = claims
        return claims

    @classmethod
    def of(cls, stored: Iterable[tuple[str, Doc]]) -> RegistrationClaims:
        """The claims of stored registrations, (tenant, document) pairs."""
        claims = cls()
        for tenant, doc in stored:
            claims.replace(tenant, None, doc)
        return claims

    def replace(self, tenant: str, before: Doc | None, after: Doc | None) -> None:
        """Take one registration write into account (before/after: None when absent)."""
        self._covers.pop(tenant, None)
        if before is not None:
            self._drop(tenant, before)
        if after is None:
            return
        if after.get("mode") == REDIRECT:
            self.redirect.setdefault(tenant, {})[after["id"]] = after
        elif after.get("mode") == EXCLUSIVE:
            held = self.exclusive.setdefault(tenant, {})
            for eid, claim in claimed(after).items():
                held.setdefault(eid, {})[claim.rid] = claim

    def _drop(self, tenant: str, doc: Doc) -> None:
        rid = doc["id"]
        self.redirect.get(tenant, {}).pop(rid, None)
        held = self.exclusive.get(tenant, {})
        for eid in claimed(doc):
            holders = held.get(eid, {})
            holders.pop(rid, None)
            if not holders:
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
    def check_registration(
        self, tenant: str, doc: Doc, tx: WriteTx, compact: Callable[[str], str] = str
    ) -> None:
        """Conflict when an exclusive or redirect registration (as it is to be stored) meets
        another registration's exclusive claim or, for an exclusive one, an exclusive or
        redirect one over its Attributes (4.3.6.3), or data the hub holds (5.9.2.4)."""
        if _live(doc, EXCLUSIVE):
            self._check_exclusive(tenant, doc, tx, compact)
        elif _live(doc, REDIRECT):
            self._check_redirect(tenant, doc, tx, compact)

    def _check_exclusive(
        self, tenant: str, doc: Doc, tx: WriteTx, compact: Callable[[str], str]
    ) -> None:
        rid = doc["id"]
        held = self.exclusive.get(tenant, {})
        mine = claimed(doc)
        for eid, claim in mine.items():
            for other in held.get(eid, {}).values():
                common = claim.names & other.names
                if other.rid != rid and common and other.live():
                    raise _overlap(rid, other.rid, eid, compact(min(common)))
        if self.redirect.get(tenant):
            wanted = Held.of({eid: (claim,) for eid, claim in mine.items()})
            for r in self.redirect[tenant].values():
                hit = covered(r, wanted) if r["id"] != rid and _live(r, REDIRECT) else None
                if hit is not None:
                    raise _overlap(rid, r["id"], hit[1], compact(hit[2]))
        for eid, claim in mine.items():
            entity = tx.get(eid)
            local = claim.names & entity["attrs"].keys() if entity is not None else None
            if local:
                raise Conflict(
                    f"entity {eid} already holds {compact(min(local))} here; an exclusive "
                    "registration of it would leave two copies (clause 5.9.2): delete the "
                    "attribute first"
                )

    def _check_redirect(
        self, tenant: str, doc: Doc, tx: WriteTx, compact: Callable[[str], str]
    ) -> None:
        rid = doc["id"]
        others = {
            eid: [c for c in holders.values() if c.rid != rid]
            for eid, holders in self.exclusive.get(tenant, {}).items()
        }
        hit = covered(doc, Held.of(others))
        if hit is not None:
            raise _overlap(rid, hit[0].rid, hit[1], compact(hit[2]))
        for query in _local_queries(doc):
            found = tx.matching(query, limit=1)
            if found:
                raise Conflict(
                    f"entity {next(iter(found))} held here matches this redirect registration, "
                    "whose context sources hold the data it names (clause 5.9.2): delete it first"
                )

    # -- entity writes ---------------------------------------------------------------------
    def check_write(
        self, tenant: str, doc: Doc, before: str | None = None, changed: set[str] | None = None
    ) -> None:
        """Conflict when an entity write (doc: the entity as it is to be stored) writes an
        Attribute an exclusive registration holds, or data a redirect one covers (decision
        098); `changed`: the Attributes the write rewrites, when known, else `before` (the
        stored JSON) tells which differ."""
        self._check_exclusive_write(tenant, doc, before, changed)
        if self.redirect.get(tenant):
            covers = self._covers.get(tenant)
            if covers is None:
                covers = self._covers[tenant] = Redirects.of(self.redirect[tenant].values())
            covers.check_write(doc, before, changed)

    def _check_exclusive_write(
        self, tenant: str, doc: Doc, before: str | None, changed: set[str] | None
    ) -> None:
        held = self.exclusive.get(tenant)
        holders = held.get(doc["id"]) if held else None
        if not holders:
            return
        attrs = doc["attrs"]
        old: Doc | None = None
        for claim in holders.values():
            written = claim.names & attrs.keys()
            if changed is not None:
                written &= changed
            if not written or not claim.live():
                continue
            if changed is None and before is not None:
                old = old if old is not None else orjson.loads(before)
                was = old["attrs"]
                written = {a for a in written if was.get(a) != attrs[a]}
                if not written:
                    continue
            raise ClaimedAttribute(
                min(written),
                f" of entity {doc['id']} is registered exclusively by {claim.rid}: its context "
                "source holds it, and this hub forwards no write to it (clause 4.3.6.3); "
                "nothing of this write was stored",
            )


def _overlap(rid: str, other: str, eid: str, attr: str) -> Conflict:
    return Conflict(
        f"registration {other} already registers {attr} of entity {eid} exclusively or by "
        f"redirect; {rid} cannot register it exclusively or by redirect too (clause 4.3.6.3)"
    )


def _local_queries(doc: Doc) -> Iterator[EntityQuery]:
    """The entity selections of a redirect registration's information items."""
    for info in doc.get("information", ()):
        names = tuple(sorted(_names(info))) or None
        entities = info.get("entities")
        if not entities:
            yield EntityQuery(attrs=names)
            continue
        for ent in entities:
            types = TypeOr(tuple(TypeName(t) for t in sorted(_types(ent))))
            yield EntityQuery(
                ids=(ent["id"],) if "id" in ent else None,
                id_pattern=ent.get("idPattern") if "id" not in ent else None,
                types=types,
                attrs=names,
            )


__all__ = ["Claim", "Held", "RegistrationClaims", "claimed", "covered"]
