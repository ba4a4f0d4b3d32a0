"""An import's id bookkeeping in a temporary SQLite file, not in Python sets (decision 092).

Pruning and a GTFS feed's repeated-id check need every id a file names; in sets and dicts
those took about 2-3 GB at 10 million GTFS stop times. SQLite's own temporary database (the
empty file name) lives in TMPDIR (SQLITE_TMPDIR first), is deleted when closed or when the
process dies, and keeps at most CACHE_KIB of its pages in memory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

CACHE_KIB = 16 * 1024  # pages a ledger keeps in memory; the rest stay in its file
BATCH = 10_000  # rows buffered in Python before one executemany


class Ledger:
    """A private temporary SQLite database: tables of ids, written in batches."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("", isolation_level=None)
        self.db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self.db.execute("PRAGMA journal_mode = OFF")  # nothing to roll back: it dies with us
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("PRAGMA temp_store = FILE")
        self._begun()

    def _begun(self) -> None:
        """Keep one transaction open: a statement committed on its own cost 20 times more."""
        if not self.db.in_transaction:
            self.db.execute("BEGIN")

    def script(self, sql: str) -> None:
        """Run statements that return nothing (tables, indexes, set-wide inserts)."""
        self.db.executescript(sql)  # commits first
        self._begun()

    def run(self, sql: str, params: dict[str, Any]) -> None:
        """Run statements (one per line ending in ';') with named parameters."""
        for statement in sql.split(";\n"):
            if statement.strip():
                self.db.execute(statement, params)

    def one(self, sql: str, args: Iterable[Any] = ()) -> Any:
        """The first column of the first row (None when there is none)."""
        row = self.db.execute(sql, tuple(args)).fetchone()
        return None if row is None else row[0]

    def rows(self, sql: str, args: Iterable[Any] = (), size: int = BATCH) -> Iterator[Any]:
        """Every row, fetched `size` at a time."""
        cur = self.db.execute(sql, tuple(args))
        while batch := cur.fetchmany(size):
            yield from batch

    def inserted(self, sql: str, args: Iterable[Any]) -> bool:
        """Run one INSERT OR IGNORE: whether it added a row."""
        return self.db.execute(sql, tuple(args)).rowcount > 0

    def many(self, sql: str, rows: list[Any]) -> None:
        """Run one statement over buffered rows, then empty the buffer."""
        if rows:
            self.db.executemany(sql, rows)
            rows.clear()

    def close(self) -> None:
        """Close, which deletes the file."""
        self.db.close()


class FirstLines:
    """The line each id was first given on (a GTFS table's repeated-id check)."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.ledger.script("CREATE TABLE first (id TEXT PRIMARY KEY, line INT) WITHOUT ROWID")

    def first(self, eid: str, line: int) -> int:
        """The line `eid` was first given on: `line` itself when this is the first time."""
        if self.ledger.inserted("INSERT OR IGNORE INTO first VALUES (?, ?)", (eid, line)):
            return line
        return int(self.ledger.one("SELECT line FROM first WHERE id = ?", (eid,)))

    def close(self) -> None:
        """Drop the ledger."""
        self.ledger.close()


Point = tuple[int, float, float, float | None]  # shape_pt_sequence, lon, lat, distance


class ShapePoints:
    """shapes.txt points by shape in a ledger, not in lists: a country's feed has tens of
    millions of them, some 150 bytes each in Python (decision 092)."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.ledger.script(
            "CREATE TABLE shapes (sid TEXT PRIMARY KEY, line INT, bad TEXT) WITHOUT ROWID;"
            "CREATE TABLE points (sid TEXT, seq INT, lon REAL, lat REAL, dist REAL)"
        )
        self._points: list[tuple[str, *Point]] = []
        self._indexed = False

    def first(self, sid: str, line: int) -> None:
        """Note the line a shape is first named on (later ones keep the first)."""
        self.ledger.inserted("INSERT OR IGNORE INTO shapes VALUES (?, ?, NULL)", (sid, line))

    def bad(self, sid: str, why: str) -> None:
        """Note why one of the shape's points is unusable (the first reason stays)."""
        self.ledger.run(
            "UPDATE shapes SET bad = :why WHERE sid = :sid AND bad IS NULL",
            {"sid": sid, "why": why},
        )

    def add(self, sid: str, point: Point) -> None:
        """Keep one usable point of a shape."""
        self._points.append((sid, *point))
        if len(self._points) >= BATCH:
            self.ledger.many("INSERT INTO points VALUES (?, ?, ?, ?, ?)", self._points)

    def count(self) -> int:
        """How many shapes the file names."""
        return int(self.ledger.one("SELECT count(*) FROM shapes"))

    def shapes(self) -> Iterator[tuple[str, int, str | None, list[Point]]]:
        """(shape_id, line of its first point, why it is bad or None, its points in sequence
        order, ties in file order) in the order of their first lines; one shape in memory."""
        self.ledger.many("INSERT INTO points VALUES (?, ?, ?, ?, ?)", self._points)
        if not self._indexed:  # built once, after the inserts: cheaper than kept up
            self.ledger.script("CREATE INDEX points_of ON points (sid, seq)")
            self._indexed = True
        for sid, line, bad in self.ledger.rows("SELECT sid, line, bad FROM shapes ORDER BY line"):
            points = self.ledger.db.execute(
                "SELECT seq, lon, lat, dist FROM points WHERE sid = ? ORDER BY seq, rowid", (sid,)
            ).fetchall()
            yield sid, line, bad, points

    def close(self) -> None:
        """Drop the ledger."""
        self.ledger.close()
