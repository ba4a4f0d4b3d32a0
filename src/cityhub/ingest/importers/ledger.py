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
