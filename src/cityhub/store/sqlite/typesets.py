"""Type sets: an id (tid) per distinct set of types the entities of a tenant have.

Every attr_index row carries its entity's tid, and the value indexes lead with (nid, tid,
value): "type T and temperature > 5" is one index range per type set that holds T, not a
walk of every entity of T with a look-up each (docs/decisions/067). An entity of types
{A, B} has one tid whose members (type_set_members) are A and B; a query for A reads the
ranges of every tid that has A as a member.

`n` counts the entities of each set; a set whose count reaches 0 is deleted with its members,
so a tenant keeps only the sets its entities have now. Ids are assigned by the writer inside
its transaction and cached as AttrNames caches name ids: those of the open transaction apart
until its COMMIT, forgotten on a rollback. Readers never cache them (queries name the sets
by a subquery on type_set_members).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable

import orjson

DDL = """
CREATE TABLE IF NOT EXISTS type_sets (
    tid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, types TEXT NOT NULL, n INTEGER NOT NULL,
    UNIQUE (tenant, types)
);
CREATE TABLE IF NOT EXISTS type_set_members (
    tenant TEXT NOT NULL, type TEXT NOT NULL, tid INTEGER NOT NULL,
    PRIMARY KEY (tenant, type, tid)
) WITHOUT ROWID;
"""

# 17 -> 18: the sets of the entities there are, and every attr_index row's tid (the table is
# rebuilt, so a database marked older than it is upgrades the same way); type_set_key is
# key() as an SQL function (functions.register), so SQL and Python name a set alike.
MIGRATION = (
    DDL
    + """
DELETE FROM type_sets;
DELETE FROM type_set_members;
CREATE TEMP TABLE entity_sets (pk INTEGER PRIMARY KEY, tenant TEXT NOT NULL, types TEXT NOT NULL);
INSERT INTO temp.entity_sets (pk, tenant, types)
    SELECT pk, tenant, type_set_key(doc -> '$.type') FROM entities;
INSERT INTO type_sets (tenant, types, n)
    SELECT tenant, types, count(*) FROM temp.entity_sets GROUP BY tenant, types;
INSERT INTO type_set_members (tenant, type, tid)
    SELECT DISTINCT s.tenant, j.value, s.tid FROM type_sets s, json_each(s.types) j;
CREATE TABLE attr_index_v18 (
    pk INTEGER NOT NULL, nid INTEGER NOT NULL, seq INTEGER NOT NULL, num REAL, txt TEXT, ts TEXT,
    tid INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pk, nid, seq)
) WITHOUT ROWID;
INSERT INTO attr_index_v18 (pk, nid, seq, num, txt, ts, tid)
    SELECT a.pk, a.nid, a.seq, a.num, a.txt, a.ts, s.tid
    FROM attr_index a JOIN temp.entity_sets x ON x.pk = a.pk
    JOIN type_sets s ON s.tenant = x.tenant AND s.types = x.types
    ORDER BY a.pk, a.nid, a.seq;
DROP TABLE attr_index;
ALTER TABLE attr_index_v18 RENAME TO attr_index;
DROP TABLE temp.entity_sets;
"""
)


def key(types: Iterable[str]) -> str:
    """A set of types as type_sets.types: its distinct members sorted, as a JSON array."""
    return orjson.dumps(sorted(set(types))).decode()


def sql_key(types_json: str | None) -> str:
    """key() of a stored document's `type` member (a JSON array, or one type as a string)."""
    if types_json is None:
        return key(())
    found = orjson.loads(types_json)
    return key([found] if isinstance(found, str) else found)


Memo = tuple[str, tuple[str, ...]]  # (tenant, a document's types in its order)
# committed sets kept in memory, about 190 bytes each: past it the oldest go (a miss is one
# primary-key read of type_sets), so a hub many tenants write to does not grow for good
CACHED = 65_536


class TypeSets:
    """The (tenant, types) -> tid cache of one database, the writer's only."""

    def __init__(self) -> None:
        self._ids: dict[Memo, int] = {}  # committed sets, the oldest first
        self._memos: dict[int, list[Memo]] = {}  # tid -> its keys in _ids (types' orders)
        self._fresh: dict[Memo, int] = {}  # this transaction's

    def assign(self, conn: sqlite3.Connection, tenant: str, types: Iterable[str]) -> int:
        """The tid of a set of types in a tenant, made (with no entities yet) if new."""
        memo: Memo = (tenant, tuple(types))  # a document's types, in its order: no sort per write
        tid = self._ids.get(memo) or self._fresh.get(memo)
        if tid is not None:
            return tid
        text = key(memo[1])
        row = conn.execute(
            "SELECT tid FROM type_sets WHERE tenant = ? AND types = ?", (tenant, text)
        ).fetchone()
        if row is None:
            cur = conn.execute(
                "INSERT INTO type_sets (tenant, types, n) VALUES (?, ?, 0)", (tenant, text)
            )
            tid = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO type_set_members (tenant, type, tid) VALUES (?, ?, ?)",
                [(tenant, t, tid) for t in orjson.loads(text)],
            )
        else:
            tid = int(row[0])
        self._fresh[memo] = tid
        return tid

    def count(self, conn: sqlite3.Connection, delta: Counter[int]) -> None:
        """Add to the entity counts of sets; delete the sets left with none."""
        rows = [(n, tid) for tid, n in delta.items() if n]
        if not rows:
            return
        if len(rows) == 1:  # a write of one entity
            conn.execute("UPDATE type_sets SET n = n + ? WHERE tid = ?", rows[0])
        else:
            conn.executemany("UPDATE type_sets SET n = n + ? WHERE tid = ?", rows)
        emptied = []
        for n, tid in rows:
            if n >= 0:
                continue
            tenant, types, left = conn.execute(
                "SELECT tenant, types, n FROM type_sets WHERE tid = ?", (tid,)
            ).fetchone()
            if left <= 0:
                emptied.append(tid)
                conn.executemany(
                    "DELETE FROM type_set_members WHERE tenant = ? AND type = ? AND tid = ?",
                    [(tenant, t, tid) for t in orjson.loads(types)],
                )
                conn.execute("DELETE FROM type_sets WHERE tid = ?", (tid,))
        if not emptied:
            return
        dropped = set(emptied)  # a later set may be given the same tid
        for tid in dropped:  # by tid, not a scan of every tenant's sets (4 ms at 50,000)
            for memo in self._memos.pop(tid, ()):
                self._ids.pop(memo, None)
        for memo in [m for m, tid in self._fresh.items() if tid in dropped]:
            del self._fresh[memo]

    def committed(self) -> None:
        """After COMMIT: the transaction's sets are stored (those it deleted are gone from
        both caches already); past CACHED the oldest leave memory."""
        for memo, tid in self._fresh.items():
            old = self._ids.get(memo)
            if old != tid:
                if old is not None:
                    self._unlist(memo, old)
                self._memos.setdefault(tid, []).append(memo)
                self._ids[memo] = tid
        self._fresh.clear()
        while len(self._ids) > CACHED:
            memo = next(iter(self._ids))
            self._unlist(memo, self._ids.pop(memo))

    def _unlist(self, memo: Memo, tid: int) -> None:
        """memo no longer in _ids: off its tid's list too."""
        memos = self._memos.get(tid)
        if memos is not None and memo in memos:
            memos.remove(memo)
            if not memos:
                del self._memos[tid]

    def rolled_back(self) -> None:
        """After a rollback (of the transaction or a savepoint in it): forget the sets seen
        since the last COMMIT, and any committed one the rollback may have brought back under
        another id is read again when next needed."""
        self._fresh.clear()
