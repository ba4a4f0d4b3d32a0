"""Online backups: a consistent copy of a database while the hub keeps serving.

Copying `cityhub.db` with `cp` while the hub runs can miss the pages still in `-wal`, or catch
them half-written. `VACUUM INTO` reads one snapshot (a WAL reader never blocks the writer), and
writes it compacted to a new file, which is then checked before it is called a backup.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from cityhub.store.base import StoreError


@dataclass(frozen=True)
class Backup:
    """What a backup wrote."""

    path: Path
    size: int  # bytes
    entities: int
    seconds: float


def backup(source: Path, dest: Path) -> Backup:
    """Write a checked snapshot of `source` to `dest`, which must not exist yet."""
    if not source.is_file():
        raise StoreError(f"{source} is not a database file")
    if dest.exists():
        raise StoreError(f"{dest} already exists; name a new file")
    if not dest.parent.is_dir():
        raise StoreError(f"{dest.parent} is not a directory")
    started = time.monotonic()
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("VACUUM INTO ?", (str(dest),))
    except sqlite3.Error as exc:
        dest.unlink(missing_ok=True)
        raise StoreError(f"cannot back up {source}: {exc}") from exc
    finally:
        conn.close()
    check = sqlite3.connect(dest)
    try:
        verdict = check.execute("PRAGMA quick_check").fetchone()[0]
        entities = check.execute("SELECT count(*) FROM entities").fetchone()[0]
    except sqlite3.Error as exc:
        verdict, entities = str(exc), 0
    finally:
        check.close()
    if verdict != "ok":
        dest.unlink(missing_ok=True)
        raise StoreError(f"the copy of {source} failed its check ({verdict}); nothing was kept")
    return Backup(dest, dest.stat().st_size, entities, time.monotonic() - started)
