"""A database or a disk the command cannot use is one line on stderr that says why, exit 2:
never a traceback, never SQLite's bare "unable to open database file"."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from cityhub.cli import main
from cityhub.store.sqlite import SqliteStore
from cityhub.store.sqlite.schema import SCHEMA_VERSION
from conftest import free_port
from readonly_support import cityhub_read_only

CSV = "id,name\ns1,Corner Shop\n"


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "shops.csv"
    path.write_text(CSV)
    return path


@pytest.mark.parametrize("command", ["serve", "import", "demo"])
def test_a_database_in_a_missing_folder_names_the_folder(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """import and demo said only "unable to open database file", serve the same."""
    db = tmp_path / "nodir" / "hub.db"
    argv = {
        "serve": ["serve", "--port", str(free_port()), "--db", str(db)],
        "import": ["import", "csv", str(_csv(tmp_path)), "--type", "Shop", "--db", str(db)],
        "demo": ["demo", "--port", str(free_port()), "--db", str(db)],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"{db}: the folder {db.parent} does not exist\n"), err
    assert len(err.splitlines()) == 1, err
    assert not db.parent.exists()


def test_import_into_a_directory_says_it_is_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    argv = ["import", "csv", str(_csv(tmp_path)), "--type", "Shop", "--db", str(folder)]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"cityhub import: cannot open the database {folder}: it is a directory; give a file in "
        f"it, e.g. --db {folder / 'cityhub.db'}\n"
    )


@pytest.mark.parametrize("command", ["import", "demo"])
def test_a_database_on_a_read_only_disk_says_so(command: str, tmp_path: Path) -> None:
    """import said "attempt to write a readonly database"; demo ended in an OSError traceback."""
    disk = tmp_path / "ro"
    disk.mkdir()
    db = disk / "hub.db"
    argv = {
        "import": ["import", "csv", str(_csv(tmp_path)), "--type", "Shop", "--db", str(db)],
        "demo": ["demo", "--port", str(free_port()), "--db", str(db)],
    }[command]
    done = cityhub_read_only(disk, *argv)
    assert done.returncode == 2, done.stderr
    assert done.stderr.endswith(f"{db}: {disk} is on a read-only file system\n"), done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[Path, Path]:
    """A database, its backup, and an empty folder "disk" beside them."""
    db, copy = tmp_path / "hub.db", tmp_path / "monday.db"
    SqliteStore(db).close()
    assert main(["backup", str(copy), "--db", str(db), "--no-progress"]) == 0
    (tmp_path / "disk").mkdir()
    return db, copy


def test_a_backup_to_a_read_only_disk_is_one_line(backed_up: tuple[Path, Path]) -> None:
    """It was an OSError traceback (exit 1) from removing a DEST.partial that was not there."""
    db, _ = backed_up
    disk = db.parent / "disk"
    done = cityhub_read_only(disk, "backup", str(disk / "b.db"), "--db", str(db))
    assert (done.returncode, done.stderr) == (
        2,
        f"cityhub: cannot write {disk / 'b.db'}: {disk} is on a read-only file system; "
        "nothing was written\n",
    )


def test_a_restore_onto_a_read_only_disk_is_one_line(backed_up: tuple[Path, Path]) -> None:
    """A new database there was an OSError traceback; an existing one was "in use (disk I/O
    error): stop the hub", sending the operator after a hub that was not running."""
    db, copy = backed_up
    disk = db.parent / "disk"
    shutil.copy(db, disk / "hub.db")
    for target, said in (
        (disk / "new.db", f"cannot copy {copy} to {disk / 'new.db'}"),
        (disk / "hub.db", f"cannot change {disk / 'hub.db'}"),
    ):
        done = cityhub_read_only(disk, "restore", str(copy), "--db", str(target))
        assert (done.returncode, done.stderr) == (
            2,
            f"cityhub: {said}: {disk} is on a read-only file system; nothing was changed\n",
        )
    assert sorted(p.name for p in disk.iterdir()) == ["hub.db"]


def _versioned(tmp_path: Path, version: str) -> Path:
    """A cityhub database whose meta.schema_version reads version."""
    db = tmp_path / "hub.db"
    SqliteStore(db).close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    conn.close()
    return db


@pytest.mark.parametrize("command", ["serve", "import"])
def test_a_database_from_a_newer_cityhub_is_kept_not_thrown_away(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone who put back an older cityhub after an upgrade was told to "Create a new
    database", that is, to throw the city's data away."""
    db = _versioned(tmp_path, str(SCHEMA_VERSION + 1))
    argv = {
        "serve": ["serve", "--port", str(free_port()), "--db", str(db)],
        "import": ["import", "csv", str(_csv(tmp_path)), "--type", "Shop", "--db", str(db)],
    }[command]
    before = db.read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith(
        f"{db} was written by a newer cityhub (schema {SCHEMA_VERSION + 1}; this one knows up "
        f"to {SCHEMA_VERSION}): run that cityhub, or restore a backup taken before the "
        "upgrade\n"
    ), err
    assert "new database" not in err and len(err.splitlines()) == 1
    assert db.read_bytes() == before


@pytest.mark.parametrize("command", ["serve", "import", "restore"])
def test_a_garbled_schema_version_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """meta.schema_version = 'abc' ended serve and import in a ValueError traceback."""
    db = _versioned(tmp_path, "abc")
    argv = {
        "serve": ["serve", "--port", str(free_port()), "--db", str(db)],
        "import": ["import", "csv", str(_csv(tmp_path)), "--type", "Shop", "--db", str(db)],
        "restore": ["restore", str(db), "--db", str(tmp_path / "new.db"), "--no-progress"],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{db} holds schema version 'abc', which no cityhub writes" in err, err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("keep", [False, True])
def test_a_demo_database_on_a_read_only_disk_is_not_called_someone_elses(
    keep: bool, tmp_path: Path
) -> None:
    """Its demo mark could not be read there (a WAL database needs its -shm), so the demo
    said "not a demo database; … remove it yourself" of its own database."""
    from cityhub.demo.run import DEMO_MARK

    disk = tmp_path / "ro"
    disk.mkdir()
    db = disk / "demo.db"
    SqliteStore(db).close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, '2026-01-01T00:00:00Z')", (DEMO_MARK,)
        )
    conn.close()
    argv = ["demo", "--port", str(free_port()), "--db", str(db), *(["--keep"] if keep else [])]
    done = cityhub_read_only(disk, *argv)
    assert (done.returncode, done.stderr) == (
        2,
        f"cityhub demo: cannot read {db}: {disk} is on a read-only file system; nothing was "
        "changed\n",
    )
