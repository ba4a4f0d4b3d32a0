"""The copies the hub makes of its database (a backup, a restored database, a rescued copy) are
no more readable than the database, and a restore leaves the hub's user able to write it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cityhub.cli import main
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore

NOBODY = 65534  # the uid and gid a root test gives the database, as a hub's own user


def _database(path: Path, mode: int) -> Path:
    """A closed cityhub database holding one entity, with these permissions."""
    store = SqliteStore(path)
    EntityService(store).batch_upsert(
        "", [{"id": "urn:ngsi-ld:Meter:1", "type": "Meter"}], ContextCache().core, "replace"
    )
    store.close()
    path.chmod(mode)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> object:
    """The usual umask 022, under which a new file is readable by every local user."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("loose_umask")
def test_a_backup_of_a_private_database_is_private(tmp_path: Path) -> None:
    """A 0600 database (personal data) was copied to a 0644 backup, readable by every user."""
    db = _database(tmp_path / "city.db", 0o600)
    dest = tmp_path / "monday.db"
    assert main(["backup", str(dest), "--db", str(db), "--no-progress"]) == 0
    assert _mode(dest) == 0o600


@pytest.mark.usefixtures("loose_umask")
def test_a_backup_keeps_what_the_database_lets_its_group_read(tmp_path: Path) -> None:
    db = _database(tmp_path / "city.db", 0o640)
    dest = tmp_path / "monday.db"
    assert main(["backup", str(dest), "--db", str(db), "--no-progress"]) == 0
    assert _mode(dest) == 0o640


def test_a_backup_onto_a_disk_without_permissions_is_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FAT-formatted USB disk refuses chmod (EPERM): its files have the mount's permissions."""

    def refused(fd: int, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    db = _database(tmp_path / "city.db", 0o600)
    monkeypatch.setattr(os, "fchmod", refused)
    dest = tmp_path / "usb.db"
    assert main(["backup", str(dest), "--db", str(db), "--no-progress"]) == 0
    assert dest.is_file()


@pytest.mark.usefixtures("loose_umask")
def test_a_restored_database_keeps_the_permissions_of_the_one_it_replaces(
    tmp_path: Path,
) -> None:
    db = _database(tmp_path / "city.db", 0o600)
    copy = tmp_path / "monday.db"
    assert main(["backup", str(copy), "--db", str(db), "--no-progress"]) == 0
    copy.chmod(0o644)  # a backup copied around by hand
    assert main(["restore", str(copy), "--db", str(db), "--no-progress"]) == 0
    assert _mode(db) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file another owner")
def test_a_restore_run_as_root_leaves_the_database_to_the_hubs_user(tmp_path: Path) -> None:
    """README's `systemctl stop; cityhub restore; systemctl start`, run as root, left a
    root-owned database that the hub's own user (User=cityhub) could no longer write."""
    db = _database(tmp_path / "city.db", 0o600)
    copy = tmp_path / "monday.db"
    assert main(["backup", str(copy), "--db", str(db), "--no-progress"]) == 0
    os.chown(db, NOBODY, NOBODY)
    assert main(["restore", str(copy), "--db", str(db), "--no-progress"]) == 0
    found = db.stat()
    assert (found.st_uid, found.st_gid) == (NOBODY, NOBODY)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file another owner")
def test_a_database_restored_as_root_into_an_empty_folder_belongs_to_the_folders_owner(
    tmp_path: Path,
) -> None:
    """A new machine: the backup (root's, 0600) went into the hub's folder as root's file,
    which the hub's user could not even read."""
    db = _database(tmp_path / "city.db", 0o600)
    copy = tmp_path / "monday.db"
    assert main(["backup", str(copy), "--db", str(db), "--no-progress"]) == 0
    home = tmp_path / "var-lib-cityhub"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    target = home / "cityhub.db"
    assert main(["restore", str(copy), "--db", str(target), "--no-progress"]) == 0
    found = target.stat()
    assert (found.st_uid, found.st_gid) == (NOBODY, NOBODY)
    assert _mode(target) == 0o600


@pytest.mark.usefixtures("loose_umask")
def test_a_rescued_copy_is_as_private_as_the_database_it_saves(tmp_path: Path) -> None:
    """The copy a hub saves of a database deleted under it (decision 044)."""
    db = _database(tmp_path / "city.db", 0o600)
    store = SqliteStore(db)
    try:
        for name in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):  # rm -f city.db*
            name.unlink(missing_ok=True)
        assert store._watch.look()
    finally:
        store.close()  # saves the copy, if the checkpointer has not yet
    (copy,) = tmp_path.glob("city.db.rescued-*")
    assert _mode(copy) == 0o600
