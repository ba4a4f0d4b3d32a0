"""Attribute names as small integers in the index tables (a dictionary encoding).

An expanded attribute name is a 40-60 byte IRI. Stored once in `attr_names` and referred to by
its integer id, it no longer fills every attr_index key: the index is a third of the size, and
a probe compares an integer instead of a long shared prefix (docs/decisions/010).

Ids are assigned by the writer inside its transaction. The writer remembers the ids it assigned
until the COMMIT (then they are read back and cached) or a rollback (then they are forgotten:
SQLite may hand a rolled-back id to another name). Only committed ids are cached: what the
writer reads inside its transaction may be its own, but what a reader connection reads (it is
query_only, registered with `reader`) is committed, also inside a read transaction.
"""

from __future__ import annotations

import sqlite3

MISSING = -1  # binds a name nothing was ever stored under: the comparison matches no row


class AttrNames:
    """The name ↔ id cache of one database, shared by the writer and the readers."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}  # committed ids only
        self._names: dict[int, str] = {}
        self._fresh: dict[str, int] = {}  # the writer's ids since the last COMMIT (its own)
        self._readers: set[sqlite3.Connection] = set()  # connections that never write

    def reader(self, conn: sqlite3.Connection) -> None:
        """Mark a query_only connection: the names it reads are committed, in a transaction
        too (a temporal read, a count=true query: one each), so they are cached."""
        self._readers.add(conn)

    def _committed(self, conn: sqlite3.Connection) -> bool:
        """Whether what conn reads now is committed (the writer's open transaction may not be)."""
        return not conn.in_transaction or conn in self._readers

    def lookup(self, conn: sqlite3.Connection, name: str) -> int:
        """The id of a name as `conn` sees it (readers: committed data), or MISSING."""
        nid = self._ids.get(name)
        if nid is None:
            nid = _select(conn, name)
            if nid is None:
                return MISSING
            if self._committed(conn):
                self._remember(name, nid)
        return nid

    def assign(self, conn: sqlite3.Connection, name: str) -> int:
        """The writer's id for a name, added to attr_names inside its transaction if new."""
        nid = self._ids.get(name) or self._fresh.get(name)
        if nid is None:
            nid = _select(conn, name)
            if nid is None:
                cur = conn.execute("INSERT INTO attr_names (name) VALUES (?)", (name,))
                nid = int(cur.lastrowid or 0)
            self._fresh[name] = nid
        return nid

    def memo(self, conn: sqlite3.Connection) -> Assigned:
        """The writer's ids of the names one bulk write uses, each assigned once and then read
        from a dict (a create of 32 entities of 6 attributes asked assign 576 times); kept for
        that write only, so a later rollback never leaves it an id SQLite took back."""
        return Assigned(self, conn)

    def name(self, conn: sqlite3.Connection, nid: int) -> str | None:
        """The name behind an id (discovery reads ids back)."""
        name = self._names.get(nid)
        if name is None:
            row = conn.execute("SELECT name FROM attr_names WHERE nid = ?", (nid,)).fetchone()
            if row is None:
                return None
            name = row[0]
            if self._committed(conn):  # keep it, as lookup() does
                self._remember(name, nid)
        return name

    def committed(self, conn: sqlite3.Connection) -> None:
        """After COMMIT: cache the ids the transaction assigned that are really stored."""
        fresh, self._fresh = self._fresh, {}
        for name in fresh:
            nid = _select(conn, name)
            if nid is not None:
                self._remember(name, nid)

    def rolled_back(self) -> None:
        """After a rollback (of the transaction or of a savepoint in it): forget the ids
        assigned since the last COMMIT; those still stored are read again when next needed."""
        self._fresh.clear()

    def _remember(self, name: str, nid: int) -> None:
        self._ids[name] = nid
        self._names[nid] = name


def _select(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT nid FROM attr_names WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else None


class Assigned(dict[str, int]):
    """AttrNames.memo's ids: a name missing is assigned (or found) by the writer."""

    def __init__(self, names: AttrNames, conn: sqlite3.Connection) -> None:
        super().__init__()
        self.names = names
        self.conn = conn

    def __missing__(self, name: str) -> int:
        nid = self[name] = self.names.assign(self.conn, name)
        return nid
