"""The notification outbox: items written in the same transaction as the change they report.

A change that was acknowledged to its writer is in the outbox too, so it is delivered even if
the hub crashes before the notification leaves (at least once). Delivered items are deleted in
batches; whatever is left at start-up is delivered again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from cityhub.store.base import OutboxItem

DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL, sub_id TEXT NOT NULL, endpoint TEXT NOT NULL,
    payload BLOB NOT NULL, created REAL NOT NULL, kind TEXT NOT NULL DEFAULT 'entity'
);
"""


def migrate(conn: sqlite3.Connection) -> None:
    """Outboxes written before registration notifications had no kind: all were entity ones."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    if "kind" not in columns:
        conn.execute("ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'entity'")


def add(conn: sqlite3.Connection, items: list[OutboxItem]) -> None:
    """Write items and give each its sequence number."""
    now = time.time()
    for item in items:
        cur = conn.execute(
            "INSERT INTO outbox (tenant, sub_id, endpoint, payload, created, kind) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (item.tenant, item.sub_id, item.endpoint, item.payload, now, item.kind),
        )
        item.seq = int(cur.lastrowid or 0)


def remove(conn: sqlite3.Connection, seqs: Iterable[int]) -> int:
    """Forget delivered (or abandoned) items."""
    rows = [(s,) for s in seqs]
    conn.executemany("DELETE FROM outbox WHERE seq = ?", rows)
    return len(rows)


def pending(conn: sqlite3.Connection) -> list[OutboxItem]:
    """Every item not yet delivered, oldest first."""
    rows = conn.execute(
        "SELECT seq, tenant, sub_id, endpoint, payload, kind FROM outbox ORDER BY seq"
    ).fetchall()
    return [OutboxItem(t, s, e, bytes(p), seq, k) for seq, t, s, e, p, k in rows]
