"""The notification outbox: items written in the same transaction as the change they report.

A change that was acknowledged to its writer is in the outbox too, so it is delivered even if
the hub crashes before the notification leaves (at least once). Delivered items are deleted in
batches; whatever is left at start-up is delivered again.

Items of one change that share a body (``OutboxItem.body``: one change notifying many
subscriptions) store it once, in ``outbox_bodies``; each row names it in ``body`` and keeps
only its own part in ``payload``. A trigger deletes a body with the last row naming it, on
every path that deletes rows. Rows of one subscription alone hold everything in ``payload``,
as before schema 11.

``outbox_rows`` counts the rows, kept in the same transactions that add and delete them (so a
rollback undoes both): /health reads it in one step, right after a restart too (schema 17).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from cityhub.store.base import WITHDRAWN, LeftOnDisk, OutboxHeads, OutboxItem

# The outbox as schema 10 and earlier left it: ``before_upgrade`` makes sure the 10 -> 11
# migration finds it so (a database from before the outbox, or before its kind column).
V10_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL, sub_id TEXT NOT NULL, endpoint TEXT NOT NULL,
    payload BLOB NOT NULL, created REAL NOT NULL, kind TEXT NOT NULL DEFAULT 'entity'
);
"""
# The outbox as schemas 11 to 13 left it (the 10 -> 11 migration builds it so).
V11_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL, sub_id TEXT NOT NULL, endpoint TEXT NOT NULL,
    payload BLOB NOT NULL, created REAL NOT NULL, kind TEXT NOT NULL DEFAULT 'entity',
    body INTEGER  -- the outbox_bodies row this row shares with others of its change, if any
);
"""
# inc: the incarnation of the subscription the row was made for (OutboxItem.inc); 0 for rows
# written before schema 15, and for subscriptions made before it, which have none.
TABLE_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL, sub_id TEXT NOT NULL, endpoint TEXT NOT NULL,
    payload BLOB NOT NULL, created REAL NOT NULL, kind TEXT NOT NULL DEFAULT 'entity',
    body INTEGER,  -- the outbox_bodies row this row shares with others of its change, if any
    inc INTEGER NOT NULL DEFAULT 0
);
"""
BODIES_DDL = """
CREATE TABLE IF NOT EXISTS outbox_bodies (bid INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_body ON outbox (body) WHERE body IS NOT NULL;
-- a subscription's rows in order: read back a backlog that did not fit in memory (of_subscription)
CREATE INDEX IF NOT EXISTS outbox_sub ON outbox (tenant, sub_id, seq);
CREATE TRIGGER IF NOT EXISTS outbox_body_unused AFTER DELETE ON outbox
WHEN old.body IS NOT NULL BEGIN
    DELETE FROM outbox_bodies WHERE bid = old.body
        AND NOT EXISTS (SELECT 1 FROM outbox WHERE body = old.body);
END;
"""
# How many rows the outbox holds: one row, kept by add, remove and purge (schema 17; a
# database from before it is counted once by its migration, COUNT_MIGRATION).
COUNT_DDL = """
CREATE TABLE IF NOT EXISTS outbox_rows (one INTEGER PRIMARY KEY CHECK (one = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO outbox_rows (one, n) VALUES (1, 0);
"""
COUNT_MIGRATION = COUNT_DDL + "UPDATE outbox_rows SET n = (SELECT count(*) FROM outbox);"
DDL = TABLE_DDL + BODIES_DDL + COUNT_DDL


def before_upgrade(conn: sqlite3.Connection) -> None:
    """Give a database of schema 10 or older the outbox that schema had, for the upgrade:
    outboxes written before registration notifications had no kind (all were entity ones)."""
    conn.executescript(V10_DDL)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    if "kind" not in columns:
        conn.execute("ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'entity'")


# 10 -> 11: bodies shared by the rows of one change. The rows are copied as they are (each
# holds its whole payload, as one subscription's rows still do), into a table rebuilt
# rather than altered, so that a database marked older than it is upgrades the same way.
MIGRATION = (
    V11_DDL.replace("EXISTS outbox (", "EXISTS outbox_v11 (")
    + """INSERT INTO outbox_v11 (seq, tenant, sub_id, endpoint, payload, created, kind)
    SELECT seq, tenant, sub_id, endpoint, payload, created, kind FROM outbox ORDER BY seq;
DROP TABLE outbox;
ALTER TABLE outbox_v11 RENAME TO outbox;
"""
    + BODIES_DDL
)


def add_incarnations(conn: sqlite3.Connection) -> None:
    """13 -> 14, before its (empty) transaction: each row names the incarnation of its
    subscription (rows already there: 0). Idempotent, as a file marked older than it is
    may already have the column."""
    conn.executescript(V11_DDL)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    if "inc" not in columns:
        conn.execute("ALTER TABLE outbox ADD COLUMN inc INTEGER NOT NULL DEFAULT 0")


def add(conn: sqlite3.Connection, items: list[OutboxItem]) -> None:
    """Write items and give each its sequence number; a body several items hold (the same
    object) is written once."""
    now = time.time()
    bodies: dict[int, int] = {}  # id(item.body) -> its outbox_bodies row
    for item in items:
        bid = None
        if item.body is not None:
            bid = bodies.get(id(item.body))
            if bid is None:
                cur = conn.execute("INSERT INTO outbox_bodies (body) VALUES (?)", (item.body,))
                bid = bodies[id(item.body)] = int(cur.lastrowid or 0)
        cur = conn.execute(
            "INSERT INTO outbox (tenant, sub_id, endpoint, payload, created, kind, body, inc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (item.tenant, item.sub_id, item.endpoint, item.payload, now, item.kind, bid, item.inc),
        )
        item.seq = int(cur.lastrowid or 0)
    _counted(conn, len(items))


def _counted(conn: sqlite3.Connection, change: int) -> None:
    """Keep outbox_rows in step with rows added (or, negative, deleted)."""
    if change:
        conn.execute("UPDATE outbox_rows SET n = n + ?", (change,))


def remove(conn: sqlite3.Connection, seqs: Iterable[int]) -> int:
    """Forget delivered (or abandoned) items (and, by the trigger, bodies no row names);
    how many were still there (a purge may have taken some)."""
    rows = [(s,) for s in seqs]
    gone = conn.executemany("DELETE FROM outbox WHERE seq = ?", rows).rowcount
    _counted(conn, -gone)
    return gone


def backlog(conn: sqlite3.Connection) -> tuple[int, float | None]:
    """The rows the outbox holds, and when its oldest was written (None: it is empty): an
    index lookup each, however long a dead receiver's backlog."""
    row = conn.execute("SELECT n FROM outbox_rows").fetchone()
    oldest = conn.execute("SELECT created FROM outbox ORDER BY seq LIMIT 1").fetchone()
    return (int(row[0]) if row else 0), (float(oldest[0]) if oldest else None)


def pending(conn: sqlite3.Connection) -> list[OutboxItem]:
    """Every item not yet delivered, oldest first; items of one body share one bytes object."""
    rows = conn.execute(
        "SELECT seq, tenant, sub_id, endpoint, payload, kind, body, inc FROM outbox ORDER BY seq"
    ).fetchall()
    return _items(conn, rows)


def last(conn: sqlite3.Connection) -> int:
    """The highest seq given so far (0 for an empty outbox)."""
    row = conn.execute("SELECT MAX(seq) FROM outbox").fetchone()
    return int(row[0] or 0)


def kept(conn: sqlite3.Connection, seqs: list[int]) -> set[int]:
    """Those of seqs whose rows still hold a notification (not emptied, not deleted)."""
    found: set[int] = set()
    for at in range(0, len(seqs), 500):
        part = seqs[at : at + 500]
        marks = ",".join("?" * len(part))
        rows = conn.execute(
            f"SELECT seq FROM outbox WHERE seq IN ({marks}) AND (payload != ? OR body IS NOT NULL)",
            [*part, WITHDRAWN],
        )
        found.update(int(r[0]) for r in rows)
    return found


def purge(
    conn: sqlite3.Connection,
    kind: str,
    tenant: str,
    sub_id: str,
    seqs: tuple[int, int],
    limit: int,
    inc: int | None = None,
) -> int:
    """Delete at most limit of a subscription's rows with seqs in a range: a deleted one's up
    to the last when it went, of its incarnation inc when known (a seq is given again once
    the rows above it are deleted, so one made again under its id may have rows in that
    range too), or those past its bound on disk (inc None); how many went."""
    cur = conn.execute(
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE tenant = ? AND "
        "sub_id = ? AND seq >= ? AND seq <= ? AND kind = ? AND (? IS NULL OR inc = ?) "
        "ORDER BY seq LIMIT ?)",
        (tenant, sub_id, seqs[0], seqs[1], kind, inc, inc, limit),
    )
    _counted(conn, -cur.rowcount)
    return cur.rowcount


# A tenant's entity notifications naming an id's JSON: a scan of bytes, not of JSON
_ABOUT = (
    "SELECT o.seq, o.payload, b.body, o.body FROM outbox o "
    "LEFT JOIN outbox_bodies b ON b.bid = o.body WHERE o.tenant = ? AND o.kind = 'entity' "
    "AND (instr(o.payload, ?) OR instr(b.body, ?))"
)

Takes = Callable[[bytes, bytes | None], bool]


def about(conn: sqlite3.Connection, tenant: str, eid: str, takes: Takes) -> tuple[list[int], int]:
    """Read before an erasure, off the writer: the seqs of the rows withdraw would empty, and
    the highest seq the read saw (0: none)."""
    # the bound first: a row committed between the two reads is then found, or looked at again
    upto = conn.execute("SELECT MAX(seq) FROM outbox").fetchone()[0] or 0
    needle = orjson.dumps(eid)
    rows = conn.execute(_ABOUT, (tenant, needle, needle)).fetchall()
    return [int(seq) for seq, payload, body, _ in rows if takes(payload, body)], int(upto)


def withdraw(
    conn: sqlite3.Connection,
    tenant: str,
    eid: str,
    takes: Takes,
    read: tuple[list[int], int] | None = None,
) -> list[int]:
    """Empty a tenant's entity notifications that takes (given an item's payload and shared
    body) says an erasure of eid takes back; their seqs. Each row stays, as WITHDRAWN without
    a body, until the notifier passes it by: deleting it would let a new row take its seq
    while the notifier may still hold the old item. With what `about` read before, only the
    rows it found (checked again: one may have been sent and its seq given to another) and
    those written since are looked at, so the writer does not scan a long backlog."""
    needle = orjson.dumps(eid)
    if read is None:
        rows = conn.execute(_ABOUT, (tenant, needle, needle)).fetchall()
    else:
        found, upto = read
        rows = conn.execute(f"{_ABOUT} AND o.seq > ?", (tenant, needle, needle, upto)).fetchall()
        for start in range(0, len(found), 500):
            part = found[start : start + 500]
            marks = ",".join("?" * len(part))
            rows += conn.execute(
                f"{_ABOUT} AND o.seq IN ({marks})", (tenant, needle, needle, *part)
            ).fetchall()
    taken = [(int(seq), bid) for seq, payload, body, bid in rows if takes(payload, body)]
    _empty(conn, taken)
    return [seq for seq, _ in taken]


def _empty(conn: sqlite3.Connection, rows: list[tuple[int, int | None]]) -> None:
    """Make (seq, body) rows WITHDRAWN, without a body, and delete the bodies no row names
    any more."""
    bodies = {bid for _, bid in rows if bid is not None}
    conn.executemany(
        "UPDATE outbox SET payload = ?, body = NULL WHERE seq = ?",
        [(WITHDRAWN, seq) for seq, _ in rows],
    )
    conn.executemany(
        "DELETE FROM outbox_bodies WHERE bid = ? AND NOT EXISTS "
        "(SELECT 1 FROM outbox WHERE body = ?)",
        [(bid, bid) for bid in bodies],
    )


def expire(conn: sqlite3.Connection, before: float) -> list[int]:
    """Empty the entity notifications written before `before` (epoch seconds) and not yet
    sent, as withdraw does: history retention's bound applies to the values they carry;
    their seqs."""
    rows = conn.execute(
        "SELECT seq, body FROM outbox WHERE created < ? AND kind = 'entity' AND payload != ?",
        (before, WITHDRAWN),
    ).fetchall()
    _empty(conn, rows)
    return [int(seq) for seq, _ in rows]


def cut(conn: sqlite3.Connection, tenant: str, sub_id: str, keep: int) -> int:
    """The seq of the newest of a subscription's rows beyond its newest keep (0 if it has no
    more): one walk of keep entries of the outbox_sub index (rows of both kinds counted)."""
    row = conn.execute(
        "SELECT seq FROM outbox WHERE tenant = ? AND sub_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
        (tenant, sub_id, keep),
    ).fetchone()
    return int(row[0]) if row else 0


def on_disk(conn: sqlite3.Connection, tenant: str, sub_id: str, since: int) -> int:
    """How many of a subscription's rows have seqs from since on: one walk of that many
    outbox_sub entries (the part of a backlog past the memory bounds)."""
    row = conn.execute(
        "SELECT count(*) FROM outbox WHERE tenant = ? AND sub_id = ? AND seq >= ?",
        (tenant, sub_id, since),
    ).fetchone()
    return int(row[0])


def nth(conn: sqlite3.Connection, tenant: str, sub_id: str, since: int, n: int) -> int:
    """The seq of a subscription's n-th row (1: the first) from since on, 0 if it has fewer."""
    row = conn.execute(
        "SELECT seq FROM outbox WHERE tenant = ? AND sub_id = ? AND seq >= ? "
        "ORDER BY seq LIMIT 1 OFFSET ?",
        (tenant, sub_id, since, n - 1),
    ).fetchone()
    return int(row[0]) if row else 0


def heads(conn: sqlite3.Connection, limit: int, budget: int) -> OutboxHeads:
    """What start-up reads: each subscription's oldest items, at most limit of them and
    budget bytes over all (older backlogs first); the rest stays on disk, each subscription's
    from a seq on, to be read back in order (a dead receiver's backlog has no bound there)."""
    found = OutboxHeads()
    spent = 0
    for tenant, sub_id, first in sorted(_firsts(conn), key=lambda r: r[2]):
        rows = []
        if spent < budget:
            rows = conn.execute(
                "SELECT seq, tenant, sub_id, endpoint, payload, kind, body, inc FROM outbox "
                "WHERE tenant = ? AND sub_id = ? ORDER BY seq LIMIT ?",
                (tenant, sub_id, limit + 1),
            ).fetchall()
            more = rows[limit:]
            items = _items(conn, rows[:limit])
            spent += sum(len(i.payload) + len(i.body or b"") for i in items)
            found.items += items
            if more:
                found.rest.append(LeftOnDisk(tenant, sub_id, more[0][3], more[0][0]))
        else:
            found.rest.append(LeftOnDisk(tenant, sub_id, _endpoint(conn, first), first))
    found.items.sort(key=lambda i: i.seq)
    return found


def _firsts(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(tenant, subscription, first seq) of every subscription with outbox rows: one index
    seek per subscription (outbox_sub), not a scan of every row."""
    found: list[tuple[str, str, int]] = []
    row = conn.execute(
        "SELECT tenant, sub_id, seq FROM outbox ORDER BY tenant, sub_id, seq LIMIT 1"
    ).fetchone()
    while row is not None:
        found.append((row[0], row[1], row[2]))
        tenant, sub_id = row[0], row[1]
        row = (
            conn.execute(  # (tenant, sub_id) > (?, ?) scans the tenant's every row
                "SELECT tenant, sub_id, seq FROM outbox WHERE tenant = ? AND sub_id > ? "
                "ORDER BY sub_id, seq LIMIT 1",
                (tenant, sub_id),
            ).fetchone()
            or conn.execute(
                "SELECT tenant, sub_id, seq FROM outbox WHERE tenant > ? "
                "ORDER BY tenant, sub_id, seq LIMIT 1",
                (tenant,),
            ).fetchone()
        )
    return found


def _endpoint(conn: sqlite3.Connection, seq: int) -> str:
    row = conn.execute("SELECT endpoint FROM outbox WHERE seq = ?", (seq,)).fetchone()
    return str(row[0]) if row else ""


def of_subscription(
    conn: sqlite3.Connection, kind: str, tenant: str, sub_id: str, seq: int, limit: int
) -> list[OutboxItem]:
    """A subscription's items from seq on, oldest first, at most limit: the part of its
    backlog the dispatcher left on disk when its memory bound was reached."""
    rows = conn.execute(
        "SELECT seq, tenant, sub_id, endpoint, payload, kind, body, inc FROM outbox "
        "WHERE tenant = ? AND sub_id = ? AND seq >= ? AND kind = ? ORDER BY seq LIMIT ?",
        (tenant, sub_id, seq, kind, limit),
    ).fetchall()
    return _items(conn, rows)


def _items(conn: sqlite3.Connection, rows: list[Any]) -> list[OutboxItem]:
    """Rows as items; rows naming one stored body share one bytes object."""
    bodies: dict[int, bytes] = {}
    for bid in {r[6] for r in rows if r[6] is not None}:
        found = conn.execute("SELECT body FROM outbox_bodies WHERE bid = ?", (bid,)).fetchone()
        bodies[bid] = bytes(found[0]) if found else b"null"  # cannot be: dropped at delivery
    return [
        OutboxItem(t, s, e, bytes(p), seq, k, bodies[b] if b is not None else None, i)
        for seq, t, s, e, p, k, b, i in rows
    ]
