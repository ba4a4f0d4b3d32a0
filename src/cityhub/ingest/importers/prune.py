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

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from tqdm import tqdm

from cityhub.ingest.importers.ledger import BATCH, Ledger
from cityhub.ingest.importers.records import Record
from cityhub.ingest.importers.stopping import deferred

SHOWN_STALE = 10  # ids a summary line names; the rest are counted
DELETE_SLICE = 1_000  # stale ids read from the ledger and deleted at a time

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
    """What the file gave: the ids its records named with their types, the ids rejected, and
    how many rejected rows named no id; the ids are kept in a Ledger (decision 092)."""

    ledger: Ledger = field(default_factory=Ledger)
    unnamed: int = 0
    typeset: set[str] = field(default_factory=set)  # the entity types the file's entities had

    def __post_init__(self) -> None:
        self.ledger.script(
            "CREATE TABLE seen (id TEXT NOT NULL, type TEXT NOT NULL, PRIMARY KEY (id, type))"
            " WITHOUT ROWID;"
            "CREATE TABLE rejected (id TEXT PRIMARY KEY) WITHOUT ROWID;"
        )
        self._seen: list[tuple[str, str]] = []
        self._rejected: list[tuple[str]] = []
        self._settled: dict[str | None, dict[str, int]] = {}

    def note(self, record: Record) -> None:
        """Take one record in, entity or rejection."""
        entity = record.entity or {}
        eid = record.eid or entity.get("id")
        if not isinstance(eid, str) or not eid:
            if record.entity is None:
                self.unnamed += record.rows
            return
        kinds = entity.get("type")
        typed = [k for k in (kinds if isinstance(kinds, list) else [kinds]) if isinstance(k, str)]
        self.typeset.update(typed)
        self._seen += [(eid, kind) for kind in typed] or [(eid, "")]
        if len(self._seen) >= BATCH:
            self.flush()

    def reject(self, record: Record) -> None:
        """A record the source or the hub refused: its entity may not be stored."""
        if record.eid:
            self._rejected.append((record.eid,))
            if len(self._rejected) >= BATCH:
                self.flush()

    def flush(self) -> None:
        """Write what is buffered to the ledger."""
        self.ledger.many("INSERT OR IGNORE INTO seen VALUES (?, ?)", self._seen)
        self.ledger.many("INSERT OR IGNORE INTO rejected VALUES (?)", self._rejected)
        self._settled.clear()

    def __contains__(self, eid: str) -> bool:
        """Whether a record of the file named this id."""
        self.flush()
        return bool(self.ledger.one("SELECT 1 FROM seen WHERE id = ?", (eid,)))

    def settled(self, etype: str, prefix: str | None) -> int:
        """How many distinct entities of a type the file stored or found stored."""
        self.flush()
        if prefix not in self._settled:  # one pass over the ledger for every type
            self._settled[prefix] = dict(
                self.ledger.rows(
                    "SELECT type, count(*) FROM seen WHERE type != '' AND id NOT IN rejected"
                    " AND (?1 IS NULL OR substr(id, 1, length(?1)) = ?1) GROUP BY type",
                    (prefix,),
                )
            )
        return self._settled[prefix].get(etype, 0)

    def close(self) -> None:
        """Drop the ledger."""
        self.ledger.close()


class Scope(Protocol):
    """Which stored entities a file answers for."""

    @property
    def prefix(self) -> str | None:
        """Only ids that start with it (None: any id)."""
        ...

    def types(self, seen: Seen) -> list[str]:
        """The entity types in scope."""
        ...

    def stale(self, stored: Stored, seen: Seen) -> int:
        """How many stored entities in scope the file no longer gives; their ids go to the
        ledger's `stale` table, in listing order."""
        ...


def _listed(stored: Stored, seen: Seen, types: list[str], links: Callable[[str], Ups]) -> None:
    """Every stored entity of these types into the ledger's `listed` table (in listing
    order), and its relationships into `link` (source, target, up): appended, never looked up
    while they are written."""
    seen.flush()
    seen.ledger.script(
        "DROP TABLE IF EXISTS listed; DROP TABLE IF EXISTS link; DROP TABLE IF EXISTS stale;"
        "CREATE TABLE listed (n INTEGER PRIMARY KEY, id TEXT NOT NULL);"
        "CREATE TABLE link (s TEXT, t TEXT, up INT);"
        "CREATE TABLE stale (n INTEGER PRIMARY KEY, id TEXT);"
    )
    ids: list[tuple[str]] = []
    edges: list[tuple[str, str, bool]] = []
    for etype in types:
        up, down = links(etype)
        for eid, objects in stored.listing(etype, up + down):
            ids.append((eid,))
            edges += [(eid, t, name in up) for name, targets in objects.items() for t in targets]
            if len(ids) >= BATCH or len(edges) >= BATCH:
                seen.ledger.many("INSERT INTO listed (id) VALUES (?)", ids)
                seen.ledger.many("INSERT INTO link VALUES (?, ?, ?)", edges)
    seen.ledger.many("INSERT INTO listed (id) VALUES (?)", ids)
    seen.ledger.many("INSERT INTO link VALUES (?, ?, ?)", edges)


# The stale ids, each once, in the order they were first listed.
_STALE_ORDER = " GROUP BY listed.id ORDER BY min(listed.n)"


@dataclass(frozen=True)
class TypeScope:
    """CSV and GeoJSON: every stored entity of the file's types (and id prefix, if given)."""

    prefix: str | None = None

    def types(self, seen: Seen) -> list[str]:
        return sorted(seen.typeset)

    def stale(self, stored: Stored, seen: Seen) -> int:
        _listed(stored, seen, self.types(seen), lambda _: ((), ()))
        seen.ledger.run(
            "INSERT INTO stale SELECT min(n), id FROM listed WHERE NOT EXISTS"
            " (SELECT 1 FROM seen WHERE seen.id = listed.id)"
            " AND (:prefix IS NULL OR substr(id, 1, length(:prefix)) = :prefix)" + _STALE_ORDER,
            {"prefix": self.prefix},
        )
        return int(seen.ledger.one("SELECT count(*) FROM stale"))


# A feed's graph in the ledger: `link` (s, t): s refers to t; `walk` (a, b): b hangs off a
# (a route off its agency: an up link reversed; a stop off the stop time using it).
_GRAPH = """
CREATE INDEX link_s ON link (s);
CREATE INDEX link_t ON link (t);
CREATE TABLE walk AS SELECT t AS a, s AS b FROM link WHERE up
  UNION ALL SELECT s, t FROM link WHERE NOT up;
CREATE INDEX walk_a ON walk (a);
"""
# What hangs off the feed's agencies and is not in the file; then what of that an entity
# outside it refers to, however indirectly, is kept.
_STALE = (
    """
CREATE TABLE member (id TEXT PRIMARY KEY) WITHOUT ROWID;
WITH RECURSIVE m (id) AS (
  SELECT value FROM json_each(:agencies)
  UNION SELECT walk.b FROM walk JOIN m ON walk.a = m.id)
INSERT INTO member SELECT id FROM m WHERE NOT EXISTS (SELECT 1 FROM seen WHERE seen.id = m.id);
CREATE TABLE kept (id TEXT PRIMARY KEY) WITHOUT ROWID;
WITH RECURSIVE k (id) AS (
  SELECT link.t FROM member JOIN link ON link.t = member.id WHERE link.s NOT IN member
  UNION SELECT link.t FROM k JOIN link ON link.s = k.id JOIN member ON member.id = link.t)
INSERT INTO kept SELECT id FROM k;
INSERT INTO stale SELECT min(listed.n), listed.id FROM listed JOIN member USING (id)
  WHERE listed.id NOT IN kept"""
    + _STALE_ORDER
    + """;
DROP TABLE link;
DROP TABLE walk;
DROP TABLE member;
DROP TABLE kept;
"""
)

Ups = tuple[tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True)
class FeedScope:
    """A GTFS feed: its agencies, what points up to them (a route's operatedBy, a trip's
    hasRoute, ...) and what those use (a trip's hasShape, a stop time's hasStop, ...). A stale
    entity that one still in the tenant refers to (another feed's stop time, a trip the feed
    still has) is kept. Walked in the ledger, not in memory (decision 092)."""

    agencies: tuple[str, ...]
    # type -> (links to what owns it, links to what it uses)
    links: dict[str, Ups]
    prefix: str | None = None

    def types(self, seen: Seen) -> list[str]:
        return list(self.links)

    def stale(self, stored: Stored, seen: Seen) -> int:
        _listed(stored, seen, self.types(seen), self.links.__getitem__)
        seen.ledger.run(_GRAPH + _STALE, {"agencies": json.dumps(self.agencies)})
        return int(seen.ledger.one("SELECT count(*) FROM stale"))


@dataclass
class Pruning:
    """What a finished import found stale, and what --prune did with it."""

    count: int = 0  # stored entities the file no longer gives
    named: list[str] = field(default_factory=list)  # the first SHOWN_STALE of them
    asked: bool = False  # --prune was given
    held_back: str = ""  # why --prune deleted nothing
    deleted: int = 0
    refused: list[str] = field(default_factory=list)  # "id: title: detail" per refusal
    stopped: str = ""  # the signal that stopped the deletions midway (a re-run finishes them)

    def lines(self) -> list[str]:
        """The summary's lines about stale entities (none when there are none)."""
        if not self.count:
            return []
        named = ", ".join(self.named)
        more = self.count - len(self.named)
        if more > 0:
            named += f" and {more:,} more"
        count = f"{self.count:,} stored entit{'y' if self.count == 1 else 'ies'}"
        if not self.asked:
            return [
                f"  stale: {count} the file no longer gives: {named}; "
                "they stay stored (--prune deletes them)"
            ]
        if self.held_back:
            return [f"  stale: {count} the file no longer gives: {named}; {self.held_back}"]
        out = [f"  pruned: {self.deleted:,} of {count} the file no longer gives: {named}"]
        return out + [f"  not pruned: {why}" for why in self.refused]

    def stop_line(self) -> str:
        """What a prune stopped by a signal did, and how to finish it."""
        return (
            f"prune stopped: {self.deleted:,} of {self.count:,} stale entities deleted; the rest "
            "stay stored: the same import run again with --prune deletes them"
        )


def settle(
    stored: Stored,
    seen: Seen,
    scope: Scope,
    prune: bool,
    progress: bool = False,
    err: TextIO | None = None,
) -> Pruning:
    """Find the stale entities of a finished import; delete them when asked and safe, a
    slice at a time, with a bar on `err`; Ctrl-C or SIGTERM ends them after the slice in
    flight (Pruning.stopped)."""
    out = Pruning(asked=prune)
    pattern = None if scope.prefix is None else "^" + re.escape(scope.prefix)
    # what the file stored of a type is stored: as many in all means none stale
    if any(stored.count(t, pattern) > seen.settled(t, scope.prefix) for t in scope.types(seen)):
        out.count = scope.stale(stored, seen)
        out.named = [
            row[0]
            for row in seen.ledger.rows("SELECT id FROM stale ORDER BY n LIMIT ?", (SHOWN_STALE,))
        ]
    if not (prune and out.count):
        return out
    if seen.unnamed:
        out.held_back = (
            f"nothing pruned: {seen.unnamed:,} rejected rows name no entity, and may be any of "
            "them (fix those rows, then import with --prune again)"
        )
        return out
    # deleted a slice at a time, read from the ledger: never the whole list at once
    bar = tqdm(total=out.count, desc="pruning", unit=" entities", file=err, disable=not progress)
    with bar, deferred() as stop:
        part: list[str] = []
        for (eid,) in seen.ledger.rows("SELECT id FROM stale ORDER BY n"):
            part.append(eid)
            if len(part) >= DELETE_SLICE:
                _deleted(stored, part, out, bar)
                if stop.asked:
                    out.stopped = stop.asked
                    return out
        _deleted(stored, part, out, bar)
    return out


def _deleted(stored: Stored, ids: list[str], out: Pruning, bar: tqdm) -> None:
    """Delete a slice of stale ids: those deleted counted in `out`, the refusals noted."""
    if not ids:
        return
    refusals = stored.delete(ids)
    out.refused += [f"{ids[i]}: {title}: {detail}" for i, title, detail in refusals]
    out.deleted += len(ids) - len(refusals)
    bar.update(len(ids))
    ids.clear()
