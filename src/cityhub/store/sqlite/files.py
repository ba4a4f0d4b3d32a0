"""Database files before SQLite opens them: their read-only URI, another application's file,
and why one cannot be opened or written (SQLite's own messages do not say)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from cityhub.store.base import StoreError

# SQLite's messages for a file it cannot open or write, whatever the cause
_VAGUE = ("unable to open database file", "attempt to write a readonly database", "disk I/O error")


def read_only(path: Path) -> str:
    """A read-only SQLite URI for exactly this file: unescaped, a '#', '?' or '%' in the name
    cut it short, and restore checked and copied another file ("nightly" for "nightly#1.db")."""
    return f"{path.resolve().as_uri()}?mode=ro"


def read_write(path: Path) -> str:
    """A read-write SQLite URI for exactly this file, which must exist: opening it never
    creates an empty database where the hub's was deleted."""
    return f"{path.resolve().as_uri()}?mode=rw"


def free_name(db: Path, suffix: str) -> Path:
    """db's name with suffix, numbered when taken: two restores in one second each keep
    the database they replaced."""
    kept = db.with_name(db.name + suffix)
    n = 1
    while kept.exists():
        n += 1
        kept = db.with_name(f"{db.name}{suffix}-{n}")
    return kept


def created_like(path: Path, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Create path empty with the permission bits of the database it will copy (and its owner,
    where this process may give it): SQLite made each copy under the umask, so a 0600 database
    of personal data had 0644 backups, and a restore run as root left a root-owned file that the
    hub's own user could no longer write. Created before SQLite writes a byte, never wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with contextlib.suppress(PermissionError):  # a FAT disk: the mount's permissions
            os.fchmod(fd, mode)
        if owner is not None:
            with contextlib.suppress(PermissionError):  # only root gives files away
                os.fchown(fd, *owner)
    finally:
        os.close(fd)


@contextlib.contextmanager
def removed_on_failure(db: str | Path) -> Iterator[None]:
    """Delete the database file, -wal and -shm the block created when it fails: a first start
    that failed partway left a file later starts refused, and the promise is that a database
    that cannot be opened is neither created nor changed."""
    files = [Path(f"{db}{suffix}") for suffix in ("", "-wal", "-shm")]
    new = [file for file in files if not file.exists()]
    try:
        yield
    except BaseException:
        if files[0] in new:  # only a database this block made, never one that was there
            for file in new:
                with contextlib.suppress(OSError):
                    file.unlink(missing_ok=True)
        raise


def refuse_foreign(path: str | Path) -> None:
    """StoreError for another application's SQLite database, read before anything is written
    to it: serve and import added cityhub's tables to it (and switched it to WAL)."""
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        return
    try:
        with contextlib.closing(sqlite3.connect(read_only(file), uri=True)) as c:
            names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return  # not a database at all: the connection below says so
    if names and "meta" not in names:
        raise StoreError(f"{path} is a SQLite database, but not a cityhub one")


def unopenable(db: str | Path, exc: Exception) -> str:
    """Why db could not be opened or written: what the file system has against it (see
    file_trouble), else the error's own message."""
    said = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
    return file_trouble(db, exc) or said


def file_trouble(db: str | Path, exc: Exception) -> str | None:
    """What in the file system kept db from being opened or written, None when nothing did:
    SQLite's "unable to open database file" (and an OSError's errno) says nothing of a
    missing folder, a directory, a read-only file system or a missing permission."""
    if not isinstance(exc, OSError) and not any(vague in str(exc) for vague in _VAGUE):
        return None
    path = Path(db)
    folder = path.parent
    if path.is_dir():
        return "it is a directory; give a file in it, e.g. --db " + str(path / "cityhub.db")
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return f"{folder} is on a read-only file system"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return "no permission to read and write it"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write in {folder}, where SQLite keeps its -wal and -shm files"
    return None
