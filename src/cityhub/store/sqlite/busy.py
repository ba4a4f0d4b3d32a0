"""Taking the write lock next to another process (`cityhub import --db`): SQLite waits for a
lock by sleeping in the calling thread, so on the event loop it must not wait at all (every
request would wait with it; the group committer waits asynchronously, api/commit.py), while
elsewhere it waits up to WAIT_MS. A lock not had is StoreBusy, which the API answers 503."""

from __future__ import annotations

import asyncio
import sqlite3

from cityhub.store.base import StoreBusy

WAIT_MS = 5000  # off the loop: how long BEGIN IMMEDIATE waits for another process's lock


def on_loop() -> bool:
    """Whether this thread is running an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE: at once on the event loop, else waiting up to WAIT_MS; StoreBusy if
    another connection keeps the write lock."""
    conn.execute(f"PRAGMA busy_timeout={0 if on_loop() else WAIT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if not locked(exc):
            raise
        raise StoreBusy(
            "the database is locked by another process (such as `cityhub import --db`); "
            "nothing was stored: try again shortly"
        ) from exc


def locked(exc: BaseException) -> bool:
    """Whether a driver error is SQLITE_BUSY: another connection holds the lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "database is locked" in str(exc)
