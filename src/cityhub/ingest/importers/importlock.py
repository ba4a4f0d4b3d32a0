"""One `cityhub import --db` at a time on a database: two at once both ended well, each having
rewritten what the other wrote (a second history instance and notification of every entity).
A lock file beside the database, flock'ed for the import's life; the kernel lets it go when
the importer ends, killed too (decision 093). `cityhub serve` locks the database file itself,
not this one, so an import beside a running hub goes on as before."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from cityhub.ingest.importers.records import ImportFailed

SUFFIX = ".import-lock"  # beside the database (where a --db symbolic link leads)


def lock_path(db: str) -> str:
    """The import lock of the database at db."""
    return os.path.realpath(db) + SUFFIX


@contextmanager
def one_import(db: str) -> Iterator[None]:
    """Hold db's import lock while the block runs; ImportFailed, before anything is written,
    when another import holds it. Where no lock file can be made (no such folder, one that
    cannot be written) the database cannot be written either: the store says why."""
    if os.path.isdir(db):
        yield  # not a database: the store names the problem, and no file is left beside it
        return
    path = lock_path(db)
    created = not os.path.exists(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ImportFailed(
                f"another cityhub import{_holder(fd)} is writing into {db}; nothing was "
                "written: run this one again once that one has ended"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            if created and not os.path.exists(db):  # a database it failed to create
                os.unlink(path)  # leaves nothing either
    finally:
        os.close(fd)  # lets the lock go


def _holder(fd: int) -> str:
    """' (pid N)' of the import holding the lock, as it wrote it ('' while it has not yet)."""
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return f" (pid {text})" if text.isdigit() else ""
