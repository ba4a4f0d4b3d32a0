"""Temporal deletes in steps: the history goes STEP rows per transaction (decision 040).

One DELETE of a sensor's whole history held the event loop 1.5 s per million instances. A
temporal entity's DELETE therefore hides it at once (its `tentities` row moves under the
ERASING tenant, which no request can name, and keeps its tpk, so no new temporal entity gets
that tpk while rows of it are left) and removes STEP rows in the same transaction; what is
left is a job in `history_erasures`, removed a step at a time, the event loop free between
steps. An attribute's DELETE removes its instances the same way, but is answered only once
they are all gone. The job survives a crash: the hub resumes it when it starts.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import orjson

from cityhub.store.base import Erasure
from cityhub.store.sqlite.names import AttrNames

STEP = 2000  # history rows looked at per step at most (the eraser sizes them: pacing.py)
# The tenant of a temporal entity being erased: no request names it (tenant names hold no
# control character, ngsild/tenant.py), so every read and write passes it by; its id is its
# tpk, so that any number of them fit UNIQUE (tenant, id).
ERASING = "\x1ferasing"

DDL = """
-- Temporal deletes whose history rows are still being removed, STEP at a time
-- (store/sqlite/erasures.py): a whole temporal entity (nid NULL; its tentities row sits under
-- the ERASING tenant until the last step) or one attribute's instances (every datasetId, or
-- the one in dataset_id) written up to row upto, at t_modified before.
CREATE TABLE IF NOT EXISTS history_erasures (
    job INTEGER PRIMARY KEY, tpk INTEGER NOT NULL, nid INTEGER,
    every_dataset INTEGER NOT NULL, dataset_id TEXT, upto INTEGER NOT NULL, before REAL NOT NULL
);
"""


def delete_entity(conn: sqlite3.Connection, tpk: int) -> Erasure | None:
    """Delete a temporal entity: gone for readers when this transaction commits; the rows
    past the first STEP are left to a job (returned), None when none were left."""
    if _entity_rows(conn, tpk, STEP) < STEP:
        _entity_gone(conn, tpk)
        return None
    conn.execute(
        "UPDATE tentities SET tenant = ?, id = CAST(tpk AS TEXT) WHERE tpk = ?", (ERASING, tpk)
    )
    # an attribute's erasure of this entity is done: its rows go with the entity's
    conn.execute("DELETE FROM history_erasures WHERE tpk = ?", (tpk,))
    return _job(conn, tpk, None, True, None)


def delete_attribute(
    conn: sqlite3.Connection,
    names: AttrNames,
    tpk: int,
    attr: str,
    dataset_id: Any,
) -> tuple[bool, Erasure | None]:
    """Delete an attribute's instances (of one datasetId unless dataset_id is ...): whether
    it had any, and the job left when STEP rows did not reach them all."""
    nid = names.lookup(conn, attr)
    if nid is None:
        return False, None
    every = dataset_id is ...
    ds = None if every else dataset_id
    upto = conn.execute("SELECT max(hid) FROM history").fetchone()[0] or 0
    first = Erasure(0, tpk, nid, every, ds, upto, time.time())
    deleted, cursor = _attribute_rows(conn, first, STEP)
    if cursor is None:
        return deleted > 0, None
    if not deleted and not _has_instances(conn, first):
        return False, None
    job = _job(conn, tpk, nid, every, ds, upto, first.before)
    return True, Erasure(job.job, tpk, nid, every, ds, upto, first.before, cursor)


def step(conn: sqlite3.Connection, erasure: Erasure, limit: int) -> tuple[int, Erasure | None]:
    """One step of a job, `limit` rows at most: how many it deleted, and the job as it goes on
    (None: done, or no longer there: an entity's erasure took an attribute's over)."""
    if not conn.execute("SELECT 1 FROM history_erasures WHERE job = ?", (erasure.job,)).fetchone():
        return 0, None
    if erasure.nid is None:
        if not conn.execute(
            "SELECT 1 FROM tentities WHERE tpk = ? AND tenant = ?", (erasure.tpk, ERASING)
        ).fetchone():  # never so (its row stays until the last step), but never a live one's
            conn.execute("DELETE FROM history_erasures WHERE job = ?", (erasure.job,))
            return 0, None
        deleted = _entity_rows(conn, erasure.tpk, limit)
        if deleted < limit:
            _entity_gone(conn, erasure.tpk)
            return deleted, None
        return deleted, erasure
    deleted, cursor = _attribute_rows(conn, erasure, limit)
    if cursor is None:
        conn.execute("DELETE FROM history_erasures WHERE job = ?", (erasure.job,))
        return deleted, None
    return deleted, erasure.at(cursor)


def pending(conn: sqlite3.Connection) -> list[Erasure]:
    """The jobs left to do, oldest first (at start-up: a crash or a stop cut them short)."""
    rows = conn.execute(
        "SELECT job, tpk, nid, every_dataset, dataset_id, upto, before "
        "FROM history_erasures ORDER BY job"
    ).fetchall()
    return [Erasure(j, t, n, bool(e), d, u, b) for j, t, n, e, d, u, b in rows]


def _job(
    conn: sqlite3.Connection,
    tpk: int,
    nid: int | None,
    every: bool,
    ds: str | None,
    upto: int | None = None,
    before: float | None = None,
) -> Erasure:
    upto = upto if upto is not None else conn.execute("SELECT max(hid) FROM history").fetchone()[0]
    before = time.time() if before is None else before
    cur = conn.execute(
        "INSERT INTO history_erasures (tpk, nid, every_dataset, dataset_id, upto, before) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (tpk, nid, every, ds, upto or 0, before),
    )
    assert cur.lastrowid is not None
    return Erasure(cur.lastrowid, tpk, nid, every, ds, upto or 0, before)


def _entity_rows(conn: sqlite3.Connection, tpk: int, limit: int) -> int:
    """Delete up to `limit` rows of a temporal entity (hidden, or about to go)."""
    return conn.execute(
        "DELETE FROM history WHERE hid IN (SELECT hid FROM history WHERE tpk = ? LIMIT ?)",
        (tpk, limit),
    ).rowcount


def _entity_gone(conn: sqlite3.Connection, tpk: int) -> None:
    """The last step of a temporal entity's deletion: it has no rows left."""
    conn.execute("DELETE FROM history_datasets WHERE tpk = ?", (tpk,))
    conn.execute("DELETE FROM tentities WHERE tpk = ?", (tpk,))
    conn.execute("DELETE FROM history_erasures WHERE tpk = ?", (tpk,))


def _attribute_rows(
    conn: sqlite3.Connection, erasure: Erasure, limit: int
) -> tuple[int, tuple[float, int] | None]:
    """Look at the attribute's next `limit` rows in index order (observedAt axis, then row
    id), from the cursor on, and delete those the job covers: written before it began (row
    id and time both: SQLite hands a freed highest row id out again) and of its datasetId.
    Returns how many went and where to go on (None: the attribute's rows are all seen)."""
    sql = (
        "SELECT hid, t_observed, hid <= ? AND t_modified <= ?"
        + ("" if erasure.every_dataset else " AND dataset_id IS ?")
        + " FROM history WHERE tpk = ? AND nid = ?"
    )
    params: list[Any] = [erasure.upto, erasure.before]
    if not erasure.every_dataset:
        params.append(erasure.dataset_id)
    params += [erasure.tpk, erasure.nid]
    if erasure.cursor is not None:
        t, hid = erasure.cursor
        sql += " AND t_observed >= ? AND (t_observed > ? OR hid > ?)"
        params += [t, t, hid]
    rows = conn.execute(sql + " ORDER BY t_observed, hid LIMIT ?", [*params, limit]).fetchall()
    gone = [hid for hid, _, covered in rows if covered]
    if gone:
        conn.execute(
            "DELETE FROM history WHERE hid IN (SELECT value FROM json_each(?))",
            (orjson.dumps(gone).decode(),),
        )
    cursor = (rows[-1][1], rows[-1][0]) if len(rows) == limit else None
    return len(gone), cursor


def _has_instances(conn: sqlite3.Connection, erasure: Erasure) -> bool:
    """Whether the attribute has an instance of the job's datasetId (when its first rows had
    none: one pass over the attribute, as the one DELETE made before)."""
    return (
        conn.execute(
            "SELECT 1 FROM history WHERE tpk = ? AND nid = ? AND dataset_id IS ? LIMIT 1",
            (erasure.tpk, erasure.nid, erasure.dataset_id),
        ).fetchone()
        is not None
    )
