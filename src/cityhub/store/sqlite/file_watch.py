"""The database file the store has open, watched: deleted or replaced while the hub runs (an
`rm -rf` of its folder, a cleanup job, a `mv` of the wrong file, a volume remounted), the hub
still holds the old file open, and every write it acknowledged would go into a file that no one
can open again once the hub stops. The checkpointer looks every tick; from then on the store
refuses writes and reads, and saves what it holds to a copy beside the path (decision 044)."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from cityhub.ngsild.timeutil import format_ts
from cityhub.store.sqlite.files import created_like, file_trouble, free_name

log = logging.getLogger("cityhub.store")
SAVE_EVERY = 10.0  # seconds between attempts to save the copy (a full disk, a missing folder)


class FileWatch:
    """Whether the file at a path is still the one opened, and where what it held was saved
    once it is not."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        found = os.stat(path)
        self._opened = (found.st_dev, found.st_ino)
        self._mode = stat.S_IMODE(found.st_mode)  # the copy is no more readable than it
        self.what = ""  # "deleted" or "replaced by another file", once it was
        self.lost_at: float | None = None  # epoch seconds it was first noticed
        self.copy: Path | None = None  # where what the store held was saved
        self.copy_failed = ""  # why the last attempt to save it failed
        self._next_save = 0.0

    def look(self) -> bool:
        """Whether the file was deleted or replaced (noted, and logged, the first time)."""
        if self.lost_at is not None:
            return True
        try:
            found = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            self.what = "deleted"
        except OSError:  # no permission to look, for one: no sign that it changed
            return False
        else:
            if (found.st_dev, found.st_ino) == self._opened:
                return False
            self.what = "replaced by another file"
        self.lost_at = time.time()
        log.error(
            "the database file %s was %s while the hub ran: writes and reads are refused from "
            "now on, and what the hub holds is saved beside it",
            self.path,
            self.what,
        )
        return True

    def save(self, conn: sqlite3.Connection, lock: threading.RLock, now: bool = False) -> None:
        """Copy what the store holds, through its writer (WAL included), to a new file beside
        the path, under the write lock so no write is half in it; tried again every SAVE_EVERY
        seconds (`now`: at once) until it is saved."""
        if self.lost_at is None or self.copy is not None:
            return
        if not now and time.monotonic() < self._next_save:
            return
        self._next_save = time.monotonic() + SAVE_EVERY
        dest = free_name(self.path, ".rescued-" + time.strftime("%Y%m%dT%H%M%S"))
        part = dest.with_name(dest.name + ".partial")
        try:
            part.unlink(missing_ok=True)  # what a hub killed while saving left
            created_like(part, self._mode)
            with lock, contextlib.closing(sqlite3.connect(part)) as out:
                conn.backup(out)
                out.execute("PRAGMA journal_mode=DELETE")  # one file, as a backup is
            part.replace(dest)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                part.unlink()
            self.copy_failed = file_trouble(part, exc) or str(exc)
            log.error("could not save what the hub holds to %s: %s", dest, self.copy_failed)
            return
        self.copy = dest
        log.error(
            "saved what the hub held to %s: stop the hub and `cityhub restore %s --db %s`",
            dest,
            dest,
            self.path,
        )

    def reason(self) -> str | None:
        """What happened and what to do, for /health; None while the file is the one opened."""
        if self.lost_at is None:
            return None
        when = format_ts(datetime.fromtimestamp(self.lost_at, UTC))
        said = (
            f"the database file {self.path} was {self.what} while the hub ran (noticed at "
            f"{when}); writes and reads are refused since"
        )
        if self.copy is not None:
            return (
                f"{said}. Everything the hub held is saved in {self.copy}: stop the hub and "
                f"`cityhub restore {self.copy} --db {self.path}`, or restart it as it is to "
                f"serve the file now at {self.path}"
            )
        if self.copy_failed:
            return (
                f"{said}, and saving what the hub holds beside it failed ({self.copy_failed}); "
                f"it is tried again every {SAVE_EVERY:g} s. Keep the hub running until it is "
                "saved: stopping it loses what it held"
            )
        return f"{said}; saving what the hub holds beside it"
