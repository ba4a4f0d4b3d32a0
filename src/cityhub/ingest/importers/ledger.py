"""An import's id bookkeeping in a temporary SQLite file, not in Python sets (decision 092).

Pruning and a GTFS feed's repeated-id check need every id a file names; in sets and dicts
those took about 2-3 GB at 10 million GTFS stop times. SQLite's own temporary database (the
empty file name) lives in TMPDIR (SQLITE_TMPDIR first), is deleted when closed or when the
process dies, and keeps at most CACHE_KIB of its pages in memory.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterable, Iterator
from itertools import repeat
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
RUN = 4_096  # a shape's consecutive points packed into one ledger row at most


class _Run:
    """Consecutive points of one shape, packed: sequences as 64-bit integers, lon/lat pairs
    and distances as doubles (NaN for a blank one: `gtfs._parse` refuses NaN itself)."""

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.seqs = array("q")
        self.coords = array("d")
        self.dists = array("d")
        self.measured = False  # some point has a distance

    def add(self, point: Point) -> None:
        """One more point (its sequence must fit 64 bits)."""
        seq, lon, lat, dist = point
        self.seqs.append(seq)
        self.coords.extend((lon, lat))
        if dist is None:
            self.dists.append(_BLANK)
        else:
            self.dists.append(dist)
            self.measured = True

    def row(self) -> tuple[str, bytes, bytes, bytes | None]:
        """The run as a ledger row; distances left out when the run has none."""
        dists = self.dists.tobytes() if self.measured else None
        return self.sid, self.seqs.tobytes(), self.coords.tobytes(), dists


_BLANK = float("nan")


def _unpacked(seqs: bytes, coords: bytes, dists: bytes | None) -> Iterator[Point]:
    """A run's points as they were added."""
    s, c = array("q"), array("d")
    s.frombytes(seqs)
    c.frombytes(coords)
    if dists is None:
        return zip(s, c[0::2], c[1::2], repeat(None))
    d = array("d")
    d.frombytes(dists)
    return zip(s, c[0::2], c[1::2], (None if x != x else x for x in d), strict=True)


class ShapePoints:
    """shapes.txt points by shape in a ledger, not in lists: a country's feed has tens of
    millions of them, some 150 bytes each in Python (decision 092). A shape's consecutive
    points go in as one packed row (a row per point cost a third more CPU than the rest of
    reading the table); at most RUN points, and BATCH buffered, are in memory."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.ledger.script(
            "CREATE TABLE shapes (sid TEXT PRIMARY KEY, line INT, bad TEXT) WITHOUT ROWID;"
            "CREATE TABLE runs (sid TEXT, seqs BLOB, coords BLOB, dists BLOB)"
        )
        self._run: _Run | None = None
        self._rows: list[tuple[str, bytes, bytes, bytes | None]] = []
        self._buffered = 0  # points in _rows
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
        """Keep one usable point of a shape (its sequence must fit 64 bits)."""
        run = self._run
        if run is None or run.sid != sid or len(run.seqs) >= RUN:
            self._ended()
            run = self._run = _Run(sid)
        run.add(point)

    def _ended(self) -> None:
        """The run in progress into the buffer, the buffer into the ledger once it is full."""
        if self._run is not None:
            self._rows.append(self._run.row())
            self._buffered += len(self._run.seqs)
            self._run = None
        if self._buffered >= BATCH:
            self._flush()

    def _flush(self) -> None:
        self.ledger.many("INSERT INTO runs VALUES (?, ?, ?, ?)", self._rows)
        self._buffered = 0

    def count(self) -> int:
        """How many shapes the file names."""
        return int(self.ledger.one("SELECT count(*) FROM shapes"))

    def shapes(self) -> Iterator[tuple[str, int, str | None, list[Point]]]:
        """(shape_id, line of its first point, why it is bad or None, its points in file
        order) in the order of their first lines; one shape in memory."""
        self._ended()
        self._flush()
        if not self._indexed:  # built once, after the inserts: cheaper than kept up
            self.ledger.script("CREATE INDEX runs_of ON runs (sid)")
            self._indexed = True
        for sid, line, bad in self.ledger.rows("SELECT sid, line, bad FROM shapes ORDER BY line"):
            runs = self.ledger.db.execute(
                "SELECT seqs, coords, dists FROM runs WHERE sid = ? ORDER BY rowid", (sid,)
            )
            points = [p for run in runs for p in _unpacked(*run)]
            yield sid, line, bad, points

    def close(self) -> None:
        """Drop the ledger."""
        self.ledger.close()
