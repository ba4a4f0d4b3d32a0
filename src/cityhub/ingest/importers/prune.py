"""Stored entities a re-import's file no longer gives: listed after every import, deleted with
--prune (docs/decisions/064).

The scope is the tenant and the types the file wrote: for CSV and GeoJSON every stored entity
of those types (with --id-prefix, only ids that start with it); for a GTFS feed only what
hangs off the feed's own agencies, so two feeds in one tenant never prune each other. An
entity the file still names, even on a rejected row, is never stale; a rejected row that
names no id holds the prune back, since it may have been any entity. Stored entities are
listed only when a type's count says some are not the file's: a re-import of an unchanged
file reads one count per type.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from cityhub.ingest.importers.records import Record

SHOWN_STALE = 10  # ids a summary line names; the rest are counted

Links = dict[str, list[str]]  # relationship name -> the ids it points at


class Stored(Protocol):
    """What a sink offers a prune: a listing of stored entities and a batch delete."""

    def listing(self, etype: str, links: tuple[str, ...]) -> Iterator[tuple[str, Links]]:
        """(id, the objects of these relationships) of every stored entity of a type."""
        ...

    def count(self, etype: str, pattern: str | None) -> int:
        """How many stored entities have this type (and an id matching the pattern)."""
        ...

    def delete(self, ids: list[str]) -> list[tuple[int, str, str]]:
        """Delete these entities: (position, title, detail) of each the hub refused."""
        ...


@dataclass
class Seen:
    """What the file gave: the ids its records named, its entities' ids per type, the ids
    rejected, and how many rejected rows named no id."""

    ids: set[str] = field(default_factory=set)
    typed: dict[str, set[str]] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)
    unnamed: int = 0

    def note(self, record: Record) -> None:
        """Take one record in, entity or rejection."""
        entity = record.entity or {}
        eid = record.eid or entity.get("id")
        if not isinstance(eid, str) or not eid:
            if record.entity is None:
                self.unnamed += record.rows
            return
        self.ids.add(eid)
        kinds = entity.get("type")
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            if isinstance(kind, str):
                self.typed.setdefault(kind, set()).add(eid)

    def reject(self, record: Record) -> None:
        """A record the source or the hub refused: its entity may not be stored."""
        if record.eid:
            self.rejected.add(record.eid)

    def settled(self, etype: str, prefix: str | None) -> int:
        """How many distinct entities of a type the file stored or found stored."""
        ids = self.typed.get(etype, set()) - self.rejected
        return sum(1 for eid in ids if prefix is None or eid.startswith(prefix))


class Scope(Protocol):
    """Which stored entities a file answers for."""

    @property
    def prefix(self) -> str | None:
        """Only ids that start with it (None: any id)."""
        ...

    def types(self, seen: Seen) -> list[str]:
        """The entity types in scope."""
        ...

    def stale(self, stored: Stored, seen: Seen) -> list[str]:
        """The stored entities in scope that the file no longer gives, in listing order."""
        ...


@dataclass(frozen=True)
class TypeScope:
    """CSV and GeoJSON: every stored entity of the file's types (and id prefix, if given)."""

    prefix: str | None = None

    def types(self, seen: Seen) -> list[str]:
        return sorted(seen.typed)

    def stale(self, stored: Stored, seen: Seen) -> list[str]:
        out: dict[str, None] = {}
        for etype in self.types(seen):
            for eid, _ in stored.listing(etype, ()):
                if eid not in seen.ids and (self.prefix is None or eid.startswith(self.prefix)):
                    out[eid] = None
        return list(out)


@dataclass(frozen=True)
class FeedScope:
    """A GTFS feed: its agencies, what points up to them (a route's operatedBy, a trip's
    hasRoute, ...) and what those use (a trip's hasShape, a stop time's hasStop, ...). A stale
    entity that one still in the tenant refers to (another feed's stop time, a trip the feed
    still has) is kept."""

    agencies: tuple[str, ...]
    # type -> (links to what owns it, links to what it uses)
    links: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    prefix: str | None = None

    def types(self, seen: Seen) -> list[str]:
        return list(self.links)

    def stale(self, stored: Stored, seen: Seen) -> list[str]:
        owners: dict[str, list[str]] = {}  # owner -> the entities that point up to it
        uses: dict[str, list[str]] = {}
        refs: dict[str, set[str]] = {}  # target -> every entity that refers to it
        listed: list[str] = []
        for etype, (up, down) in self.links.items():
            for eid, links in stored.listing(etype, up + down):
                listed.append(eid)
                for name, targets in links.items():
                    for target in targets:
                        refs.setdefault(target, set()).add(eid)
                        if name in up:
                            owners.setdefault(target, []).append(eid)
                        else:
                            uses.setdefault(eid, []).append(target)
        members = set(self.agencies)
        todo = list(members)
        while todo:
            eid = todo.pop()
            for other in owners.get(eid, []) + uses.get(eid, []):
                if other not in members:
                    members.add(other)
                    todo.append(other)
        stale = {eid for eid in members if eid not in seen.ids}
        kept = True
        while kept:  # one kept entity keeps what it refers to
            kept = False
            for eid in list(stale):
                if any(src not in stale for src in refs.get(eid, ())):
                    stale.discard(eid)
                    kept = True
        return [eid for eid in dict.fromkeys(listed) if eid in stale]


@dataclass
class Pruning:
    """What a finished import found stale, and what --prune did with it."""

    stale: list[str] = field(default_factory=list)
    asked: bool = False  # --prune was given
    held_back: str = ""  # why --prune deleted nothing
    deleted: int = 0
    refused: list[str] = field(default_factory=list)  # "id: title: detail" per refusal

    def lines(self) -> list[str]:
        """The summary's lines about stale entities (none when there are none)."""
        if not self.stale:
            return []
        named = ", ".join(self.stale[:SHOWN_STALE])
        more = len(self.stale) - SHOWN_STALE
        if more > 0:
            named += f" and {more:,} more"
        count = f"{len(self.stale):,} stored entit{'y' if len(self.stale) == 1 else 'ies'}"
        if not self.asked:
            return [
                f"  stale: {count} the file no longer gives: {named}; "
                "they stay stored (--prune deletes them)"
            ]
        if self.held_back:
            return [f"  stale: {count} the file no longer gives: {named}; {self.held_back}"]
        out = [f"  pruned: {self.deleted:,} of {count} the file no longer gives: {named}"]
        return out + [f"  not pruned: {why}" for why in self.refused]


def settle(stored: Stored, seen: Seen, scope: Scope, prune: bool) -> Pruning:
    """Find the stale entities of a finished import; delete them when asked and safe."""
    out = Pruning(asked=prune)
    pattern = None if scope.prefix is None else "^" + re.escape(scope.prefix)
    # what the file stored of a type is stored: as many in all means none stale
    if any(stored.count(t, pattern) > seen.settled(t, scope.prefix) for t in scope.types(seen)):
        out.stale = scope.stale(stored, seen)
    if not (prune and out.stale):
        return out
    if seen.unnamed:
        out.held_back = (
            f"nothing pruned: {seen.unnamed:,} rejected rows name no entity, and may be any of "
            "them (fix those rows, then import with --prune again)"
        )
        return out
    refusals = stored.delete(out.stale)
    out.refused = [f"{out.stale[i]}: {title}: {detail}" for i, title, detail in refusals]
    out.deleted = len(out.stale) - len(refusals)
    return out
