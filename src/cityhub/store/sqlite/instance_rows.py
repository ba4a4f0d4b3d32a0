"""Finding the history row of one temporal instance by its instanceId (a PATCH or DELETE of
one instance, 5.6.14/5.6.15) without reading the attribute's history (decision 060).

An instanceId the hub makes names the instance's time on the observedAt axis
(ngsild/instance_id.py), and the row keeps that time in `id_time`: `history_obs` then finds
the row with one seek at (tpk, nid, t_observed). The rows it cannot find that way, those whose
`t_observed` is no longer their `id_time` (a PATCH moved the instance in time) and those
written before schema 16 (`id_time` NULL), are the only ones `history_moved` indexes, so
every other write adds no index entry. Reading the whole attribute took 0.3-0.5 s at 300,000
instances, under the write lock."""

from __future__ import annotations

import sqlite3

from cityhub.ngsild.instance_id import time_of

# A partial index: a row enters it when its time leaves the one its id names.
MOVED_DDL = """
CREATE INDEX IF NOT EXISTS history_moved ON history (instance_id)
    WHERE id_time IS NOT t_observed;
"""


def add_id_time(conn: sqlite3.Connection) -> None:
    """15 -> 16, before its transaction: the id_time column (NULL in the rows already there,
    which history_moved then indexes). Idempotent, as a file marked older than it is may
    already have it."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(history)")}
    if "id_time" not in columns:
        conn.execute("ALTER TABLE history ADD COLUMN id_time REAL")


def locate(conn: sqlite3.Connection, tpk: int, nid: int, instance_id: str) -> list[tuple[int, str]]:
    """(hid, stored JSON) of the rows of an attribute's instance (one, unless an old database
    repeats an id): a seek at the time its id names, else a look-up in history_moved."""
    at = time_of(instance_id)
    if at is not None:
        rows = conn.execute(
            "SELECT hid, inst FROM history INDEXED BY history_obs "
            "WHERE tpk = ? AND nid = ? AND t_observed = ? AND instance_id = ?",
            (tpk, nid, at, instance_id),
        ).fetchall()
        if rows:
            return rows
    return conn.execute(
        "SELECT hid, inst FROM history INDEXED BY history_moved "
        "WHERE instance_id = ? AND id_time IS NOT t_observed AND tpk = ? AND nid = ?",
        (instance_id, tpk, nid),
    ).fetchall()
