"""Online backups: a consistent copy of a database while the hub keeps serving.

Copying `cityhub.db` with `cp` while the hub runs can miss the pages still in `-wal`, or catch
them half-written. `VACUUM INTO` reads one snapshot (a WAL reader never blocks the writer), and
writes it compacted to a new file, which is then checked before it is called a backup.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
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


Progress = Callable[[int, int], None]  # (bytes written so far, bytes expected)
POLL = 0.2  # seconds between progress reports


def backup(source: Path, dest: Path, progress: Progress | None = None) -> Backup:
    """Write a checked snapshot of `source` to `dest`, which must not exist yet; `progress`
    hears how far the copy is every POLL seconds (a large city database takes minutes)."""
    if not source.is_file():
        raise StoreError(f"{source} is not a database file")
    if dest.exists():
        raise StoreError(f"{dest} already exists; name a new file")
    if not dest.parent.is_dir():
        raise StoreError(f"{dest.parent} is not a directory")
    started = time.monotonic()
    conn = sqlite3.connect(
        f"file:{source}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        _vacuum_into(conn, dest, progress)
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


def _vacuum_into(conn: sqlite3.Connection, dest: Path, progress: Progress | None) -> None:
    """VACUUM INTO dest; with `progress`, on a thread while the file's growth is reported
    against the pages in use (the copy leaves free pages out, so it ends near 100 %)."""
    if progress is None:
        conn.execute("VACUUM INTO ?", (str(dest),))
        return
    page_size, pages, free = (
        conn.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("page_size", "page_count", "freelist_count")
    )
    expected = max(1, (pages - free) * page_size)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            conn.execute("VACUUM INTO ?", (str(dest),))
        except BaseException as exc:  # re-raised on the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="cityhub-backup", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(POLL)
            progress(min(_size(dest), expected), expected)
    except BaseException:  # Ctrl-C (or the reporter failed): stop, leave no half-written file
        conn.interrupt()
        worker.join()
        dest.unlink(missing_ok=True)
        raise
    if failure:
        raise failure[0]
    progress(expected, expected)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # not created yet
        return 0
