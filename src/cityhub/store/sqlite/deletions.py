"""An entity's deletion in its temporal representation: `tentities.deleted_at` (decision 100).

An entity DELETE (one by id, a batch delete, a purge) records its attributes' markers and
the time the entity went, which the temporal read shows as the entity's deletedAt and the
deletedAt axis selects. A create or any other entity write clears it (the upserts'
`ON CONFLICT` clause, `temporal.CLEARS_DELETION`); temporal API writes leave it.
"""

from __future__ import annotations

import sqlite3

import orjson


def add_column(conn: sqlite3.Connection) -> None:
    """21 -> 22, before its transaction: the deleted_at column (NULL in the rows there: no
    time was kept). Idempotent, as a file marked older than it is may already have it."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tentities)")}
    if "deleted_at" not in columns:
        conn.execute("ALTER TABLE tentities ADD COLUMN deleted_at TEXT")


def record(conn: sqlite3.Connection, tenant: str, eid: str, types: list[str], at: str) -> None:
    """Mark a temporal entity deleted at `at`, making it when the entity had no history left
    (none written, or erased), so that even an entity without attributes leaves its
    deletion."""
    conn.execute(
        "INSERT INTO tentities (tenant, id, types, created_at, modified_at, deleted_at) "
        "VALUES (?1, ?2, ?3, ?4, ?4, ?4) ON CONFLICT (tenant, id) DO UPDATE SET "
        "modified_at = excluded.modified_at, deleted_at = excluded.deleted_at, "
        "types = types_union(tentities.types, excluded.types)",
        (tenant, eid, orjson.dumps(types).decode(), at),
    )
