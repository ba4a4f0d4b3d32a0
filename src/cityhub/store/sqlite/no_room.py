"""Which SQLite errors mean the database could not grow, and what stopped it.

SQLite reports a full disk (ENOSPC) as SQLITE_FULL, but a file size limit (`ulimit -f`,
systemd's `LimitFSIZE=`, EFBIG), a disk quota (EDQUOT) or the file system's largest file as
SQLITE_IOERR_WRITE, "disk I/O error": the hub answered those with a 500 and a traceback per
request, on a disk that takes no more log either. Both refuse the write whole (the
transaction is rolled back), so both are the store's StoreFull.
"""

from __future__ import annotations

import resource
import sqlite3


def no_room(exc: BaseException) -> tuple[str, str] | None:
    """Why a write failed for want of room, and the limit that refused it ('' for a full
    disk: "database or disk is full"); None for any other error."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return str(exc), ""
    if code != sqlite3.SQLITE_IOERR_WRITE:
        return None
    limit = write_limit()
    return f"{exc}: the disk refused a write ({limit})", limit


def write_limit() -> str:
    """What most likely refused a write: this process's file size limit when it has one,
    else a disk quota, the file system's largest file, or a failing disk."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        return (
            f"this process may write files of at most {soft:,} bytes: raise `ulimit -f` "
            "or systemd's LimitFSIZE="
        )
    return "a disk quota, the file system's largest file size, or a failing disk; see dmesg"
