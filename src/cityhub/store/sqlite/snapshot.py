"""Online backups (a consistent copy while the hub keeps serving) and restores.

Copying `cityhub.db` with `cp` while the hub runs can miss the pages still in `-wal`, or catch
them half-written. `VACUUM INTO` reads one snapshot (a WAL reader never blocks the writer), and
writes it compacted to a new file, which is then checked before it is called a backup.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cityhub.store.base import StoreError
from cityhub.store.sqlite.files import (
    created_like,
    file_trouble,
    free_name,
    read_only,
    refuse_foreign,
    unopenable,
)
from cityhub.store.sqlite.schema import SCHEMA_VERSION, opens


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
    hears how far the copy is every POLL seconds (a large city database takes minutes).

    The copy is written under another name and takes `dest`'s only once checked: a backup
    killed midway left a half-written `dest` that blocked the next run of the same command."""
    if not source.exists():
        raise StoreError(f"there is no database at {source}; name it with --db or CITYHUB_DB")
    if not source.is_file():
        raise StoreError(f"{source} is not a database file")
    refuse_foreign(source)  # its copy would fail the check as if it were damaged
    if dest.exists():
        raise StoreError(f"{dest} already exists; name a new file")
    if not dest.parent.is_dir():
        raise StoreError(f"{dest.parent} is not a directory")
    started = time.monotonic()
    _discard_dead(dest.parent)
    part = dest.with_name(f"{dest.name}.cityhub-{os.getpid()}.partial")
    try:
        entities = _checked_copy(source, part, progress)
        part.replace(dest)
    except OSError as exc:  # e.g. a backup disk remounted read-only after I/O errors
        _forget(part)
        raise StoreError(
            f"cannot write {dest}: {unopenable(part, exc)}; nothing was written"
        ) from None
    return Backup(dest, dest.stat().st_size, entities, time.monotonic() - started)


def _checked_copy(source: Path, part: Path, progress: Progress | None) -> int:
    """VACUUM INTO part, then check the copy; the entities it holds."""
    _discard(part)  # what a backup killed earlier left
    created_like(part, stat.S_IMODE(source.stat().st_mode))  # no more readable than source
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(
            read_only(source), uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout=5000")
        _vacuum_into(conn, part, progress)
    except sqlite3.Error as exc:
        _forget(part)
        # the copy's folder, else the database's (a read-only file system: WAL mode needs
        # to write its -shm even to read), as serve says it
        why = file_trouble(part, exc) or unopenable(source, exc)
        raise StoreError(f"cannot back up {source}: {why}") from exc
    finally:
        if conn is not None:
            conn.close()
    check = sqlite3.connect(part)
    try:
        verdict = check.execute("PRAGMA quick_check").fetchone()[0]
        entities = int(check.execute("SELECT count(*) FROM entities").fetchone()[0])
    except sqlite3.Error as exc:
        verdict, entities = str(exc), 0
    finally:
        check.close()
    if verdict != "ok":
        _forget(part)
        raise StoreError(f"the copy of {source} failed its check ({verdict}); nothing was kept")
    return entities


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
        _forget(dest)
        raise
    if failure:
        raise failure[0]
    progress(expected, expected)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # not created yet
        return 0


@dataclass(frozen=True)
class Restored:
    """What a restore did."""

    path: Path
    entities: int
    kept: Path | None  # where the database it replaced was moved (None: there was none)


def restore(source: Path, db: Path, progress: Progress | None = None) -> Restored:
    """Put the backup `source` in place of the database `db`, which no process may have open.

    The backup is checked first, then copied beside the database; only a complete copy
    replaces it, in one rename, so a restore cut short at any point (even by kill -9) leaves
    the database as it was. The database it replaces is folded back from its WAL into one
    file and kept under another name, never deleted. Restoring by hand can go wrong in one
    quiet way: an old `-wal` left beside the copied file is replayed onto it. `progress`
    hears the bytes copied so far. A `db` reached through a symbolic link is restored where the
    link leads: the copy, the rename and the kept file all sit beside the real file (on its
    volume), and the link stays a link.
    """
    db = _followed(db)
    if not source.is_file():
        raise StoreError(f"{source} is not a file")
    if not db.parent.is_dir():
        raise StoreError(f"{db.parent} is not a directory; nothing was changed")
    if db.exists() and source.samefile(db):
        raise StoreError(f"{source} is the database itself; nothing was changed")
    entities = _check_backup(source)
    if db.exists():
        _fold(db)  # refuses a database in use before the long copy
    part = db.with_name(db.name + ".restoring")
    kept = None
    try:
        _discard(part)  # what a restore killed earlier left
        _created_for(part, db, source)
        _copy(source, part, progress)
        if db.exists():
            _fold(db)
            kept = free_name(db, f".before-restore-{time.strftime('%Y%m%dT%H%M%S')}")
            _keep(db, kept)
        part.replace(db)
    except BaseException as exc:  # a full or read-only disk, Ctrl-C: the database stays as it was
        _forget(part)
        if kept is not None and not db.exists():
            kept.replace(db)
        elif kept is not None and kept.exists() and kept.samefile(db):
            kept.unlink()
        if isinstance(exc, OSError | sqlite3.Error):
            raise StoreError(
                f"cannot copy {source} to {db}: {unopenable(part, exc)}; nothing was changed"
            ) from exc
        raise
    return Restored(db, entities, kept)


def _created_for(part: Path, db: Path, source: Path) -> None:
    """The restored copy, made with the permissions and owner of the database it replaces, so
    the hub's user still writes it after a restore run as root; a new database takes the
    backup's permissions and its folder's owner, who runs the hub (SQLite writes its -wal and
    -shm there)."""
    if db.exists():
        found = db.stat()
        mode, owner = found.st_mode, (found.st_uid, found.st_gid)
    else:
        folder = db.parent.stat()
        mode, owner = source.stat().st_mode, (folder.st_uid, folder.st_gid)
    created_like(part, stat.S_IMODE(mode), owner)


def _followed(db: Path) -> Path:
    """The file a path leads to through its symbolic links (the path as given when none):
    renaming the copy over the link replaced it with a file on the link's volume, and left
    the database it led to orphaned."""
    real = Path(os.path.realpath(db))
    return real if real != Path(os.path.abspath(db)) else db


def _keep(db: Path, kept: Path) -> None:
    """A second name for the database about to be replaced; it stays in place meanwhile (a
    hard link), or, where the file system has none, moves just before the copy takes its
    place."""
    try:
        os.link(db, kept)
    except OSError:
        db.replace(kept)


# DEST.cityhub-<pid>.partial: the copy a backup writes before it is checked, and its journal
_PARTIAL_NAME = re.compile(r".+\.cityhub-(\d+)\.partial(-journal)?")


def _discard_dead(folder: Path) -> None:
    """Remove the partial copies (and journals) that backups no longer running left in
    folder: killed midway (kill -9, a timer, a reboot), each left a file the size of the
    database that no later run, under another name, removed. A live one's pid runs."""
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            found = _PARTIAL_NAME.fullmatch(path.name)
            if found and not _running(int(found.group(1))):
                with contextlib.suppress(OSError):
                    path.unlink()


def _running(pid: int) -> bool:
    """Whether a process with this id runs (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _discard(part: Path) -> None:
    """Remove a partial copy and the rollback journal its writer may have left."""
    for path in (part, part.with_name(part.name + "-journal")):
        path.unlink(missing_ok=True)


def _forget(part: Path) -> None:
    """_discard on the way out of a failure, which it must not hide: on a read-only file
    system even removing a file that is not there fails."""
    with contextlib.suppress(OSError):
        _discard(part)


def _copy(source: Path, dest: Path, progress: Progress | None, pages: int = 1024) -> None:
    """Copy a database through SQLite's backup API, 4 MiB at a time at the default page size,
    reporting each step in bytes, and make it durable before it is used. A byte copy of the
    file missed what a backup still held in its -wal (a database copied after a crash): the
    check counted 1,000 entities, the restored file held none."""
    src = sqlite3.connect(read_only(source), uri=True)
    out = sqlite3.connect(dest)
    try:
        size = int(src.execute("PRAGMA page_size").fetchone()[0])

        def step(_status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress((total - remaining) * size, total * size)

        src.backup(out, pages=pages, progress=step)
    finally:
        out.close()
        src.close()
    with dest.open("rb") as written:
        os.fsync(written.fileno())


def _check_backup(source: Path) -> int:
    """How many entities a sound cityhub database holds; StoreError for anything else."""
    try:
        conn = sqlite3.connect(read_only(source), uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            entities = int(conn.execute("SELECT count(*) FROM entities").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{source} is not a cityhub database ({exc})") from None
    if verdict != "ok":
        raise StoreError(f"{source} failed its check ({verdict})")
    if row and not str(row[0]).isdigit():
        raise StoreError(f"{source} holds schema version {row[0]!r}, which no cityhub writes")
    version = int(row[0]) if row else 1
    if not opens(version):  # restored, it would leave a database no hub here can open
        raise StoreError(
            f"{source} was written by cityhub schema {version}, which this cityhub (schema "
            f"{SCHEMA_VERSION}) cannot open; restore it with the cityhub that wrote it"
        )
    return entities


def _fold(db: Path) -> None:
    """Fold the database's WAL into its file and drop the WAL, which SQLite does only when no
    other connection is open: so this also tells that no hub or import is using it."""
    try:
        conn = sqlite3.connect(db, timeout=0.5, isolation_level=None)
    except sqlite3.Error as exc:  # e.g. --db names a directory
        raise StoreError(
            f"{db} cannot be opened as a database ({exc}); nothing was changed"
        ) from None
    try:
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.Error as exc:
        mode = str(exc)
        trouble = file_trouble(db, exc)
        if trouble:  # e.g. a read-only file system, not a hub: say so, not "in use"
            raise StoreError(f"cannot change {db}: {trouble}; nothing was changed") from None
    finally:
        conn.close()
    if mode != "delete":
        raise StoreError(
            f"{db} is in use ({mode}): stop the hub and any import using it first; "
            "nothing was changed"
        )
