"""References a GTFS feed makes to rows it does not have: a stop time's stop_id that stops.txt
lacks, a trip's shape_id without a shape. Each such row is stored (the hub checks no
Relationship's object), but its Relationship points at no entity, so the import says so.

The tables are read in an order where what is referred to comes first (gtfs.GtfsSource), so
each record is checked as it passes; stop times are referred to by nothing, and their ids are
not kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from cityhub.ingest.importers.ledger import BATCH, Ledger
from cityhub.ingest.importers.records import Record

# relationship -> the table and column whose rows make the entities it points at
TARGETS = {
    "hasRoute": ("routes.txt", "route_id"),
    "hasService": ("calendar.txt or calendar_dates.txt", "service_id"),
    "hasShape": ("shapes.txt", "shape_id"),
    "hasTrip": ("trips.txt", "trip_id"),
    "hasStop": ("stops.txt", "stop_id"),
}
SHOWN = 3  # examples named per kind of dangling reference


@dataclass
class References:
    """The ids the feed's rows named so far (in a Ledger once there are BATCH of them: a
    country's feed has millions of trips, decision 092), and the references to ids none
    named."""

    dangling: Counter[tuple[str, str]] = field(default_factory=Counter)  # (table, relationship)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _pending: set[str] = field(default_factory=set)  # known, not yet in the ledger
    _ledger: Ledger | None = None
    _last: dict[str, str] = field(default_factory=dict)  # relationship -> last target found

    def knows(self, eid: str) -> bool:
        """Whether a row named this id (stop times are not kept: nothing refers to them)."""
        if eid in self._pending:
            return True
        if self._ledger is None:
            return False
        return self._ledger.one("SELECT 1 FROM known WHERE id = ?", (eid,)) is not None

    def _know(self, eid: str) -> None:
        self._pending.add(eid)
        if len(self._pending) >= BATCH:
            if self._ledger is None:
                self._ledger = Ledger()
                self._ledger.script("CREATE TABLE known (id TEXT PRIMARY KEY) WITHOUT ROWID")
            rows = [(k,) for k in self._pending]
            self._ledger.many("INSERT OR IGNORE INTO known VALUES (?)", rows)
            self._pending.clear()

    def close(self) -> None:
        """Drop what was kept of the ids (the dangling counts stay for lines())."""
        self._pending.clear()
        self._last.clear()
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def note(self, record: Record) -> None:
        """Take in a record: its id (rejected rows' too), then its references checked."""
        if record.eid and not record.eid.startswith("urn:ngsi-ld:GtfsStopTime:"):
            self._know(record.eid)
        if record.entity is None:
            return
        table = record.where.split(" line ", 1)[0]
        for name in TARGETS:
            attr = record.entity.get(name)
            target = attr.get("object") if isinstance(attr, dict) else None
            if not isinstance(target, str) or self._last.get(name) == target:
                continue  # a trip's stop times name it one after another
            if self.knows(target):
                self._last[name] = target
            else:
                key = (table, name)
                self.dangling[key] += 1
                shown = self.examples.setdefault(key, [])
                if len(shown) < SHOWN:
                    key_part = target.split(":", 3)[-1]  # urn:ngsi-ld:<Type>:<GTFS id>
                    shown.append(f"{record.where.split(' ', 1)[-1]}: {key_part}")

    def lines(self) -> list[str]:
        """One warning per kind of dangling reference, naming where to look first."""
        out = []
        for (table, name), count in sorted(self.dangling.items()):
            source, column = TARGETS[name]
            out.append(
                f"cityhub import: {table}: {count:,} {'rows name' if count > 1 else 'row names'}"
                f" a {column} that {source} does not have ("
                f"{'; '.join(self.examples[table, name])}{'; ...' if count > SHOWN else ''}): "
                f"{'their' if count > 1 else 'its'} {name} points at no entity"
            )
        return out
