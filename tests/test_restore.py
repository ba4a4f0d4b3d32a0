"""`cityhub restore`: a checked backup replaces the database; the old one is kept aside."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from cityhub.cli import main
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore
from cityhub.store.sqlite.schema import SCHEMA_VERSION


def _write(db: Path, ids: range) -> None:
    """Store meters with these numbers and close the store."""
    store = SqliteStore(db)
    items = [{"id": f"urn:ngsi-ld:Meter:{n}", "type": "Meter"} for n in ids]
    EntityService(store).batch_upsert("", items, ContextCache().core, "replace")
    store.close()


def _ids(db: Path) -> list[str]:
    store = SqliteStore(db)
    try:
        rows = store._reader().execute("SELECT id FROM entities ORDER BY pk").fetchall()
        return [r[0] for r in rows]
    finally:
        store.close()


def _meters(ids: range) -> list[str]:
    return [f"urn:ngsi-ld:Meter:{n}" for n in ids]


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[Path, Path]:
    """A database with meters 0-4 backed up, then meters 5-9 added."""
    db, copy = tmp_path / "hub.db", tmp_path / "monday.db"
    _write(db, range(5))
    assert main(["backup", str(copy), "--db", str(db), "--no-progress"]) == 0
    _write(db, range(5, 10))
    return db, copy


def test_restore_puts_the_backup_in_place_and_keeps_the_old(
    backed_up: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, copy = backed_up
    assert main(["restore", str(copy), "--db", str(db)]) == 0
    assert _ids(db) == _meters(range(5))
    [kept] = db.parent.glob("hub.db.before-restore-*")
    assert _ids(kept) == _meters(range(10))
    printed = capsys.readouterr()
    assert "5 entities" in printed.out and kept.name in printed.out
    assert "restore: 100%" in printed.err  # the progress bar reached the whole copy


def test_restore_refuses_while_the_database_is_open(
    backed_up: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A hub (here: a store in this process) has it open: nothing changes."""
    db, copy = backed_up
    store = SqliteStore(db)
    try:
        assert main(["restore", str(copy), "--db", str(db)]) == 2
        assert "in use" in capsys.readouterr().err
        assert not list(db.parent.glob("hub.db.before-restore-*"))
    finally:
        store.close()
    assert _ids(db) == _meters(range(10))


def test_restore_refuses_what_is_no_sound_cityhub_database(
    backed_up: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, copy = backed_up
    junk = db.parent / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    assert main(["restore", str(junk), "--db", str(db)]) == 2
    assert "not a cityhub database" in capsys.readouterr().err
    data = bytearray(copy.read_bytes())  # a torn copy: its second half is gone
    torn = db.parent / "torn.db"
    torn.write_bytes(bytes(data[: len(data) // 2]))
    assert main(["restore", str(torn), "--db", str(db)]) == 2
    assert main(["restore", str(db.parent / "none.db"), "--db", str(db)]) == 2
    assert _ids(db) == _meters(range(10))
    assert not list(db.parent.glob("hub.db.before-restore-*"))


def test_restore_refuses_a_backup_from_a_newer_cityhub(
    backed_up: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Restored, it left a database no hub of this version could open, the old one moved aside."""
    db, copy = backed_up
    conn = sqlite3.connect(copy)
    with conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    conn.close()
    assert main(["restore", str(copy), "--db", str(db), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"written by cityhub schema {SCHEMA_VERSION + 1}" in err and "cannot open" in err
    assert _ids(db) == _meters(range(10))
    assert not list(db.parent.glob("hub.db.before-restore-*"))


def test_a_crashed_hubs_wal_is_not_replayed_onto_the_backup(tmp_path: Path) -> None:
    """A hub killed with writes still in -wal: the restore folds them into the kept database,
    and the restored file holds the backup alone (a `cp` of the backup would have had the old
    WAL replayed onto it)."""
    db, copy = tmp_path / "hub.db", tmp_path / "monday.db"
    _write(db, range(3))
    assert main(["backup", str(copy), "--db", str(db), "--no-progress"]) == 0
    store = SqliteStore(db)
    items = [{"id": f"urn:ngsi-ld:Meter:{n}", "type": "Meter"} for n in range(3, 6)]
    EntityService(store).batch_upsert("", items, ContextCache().core, "replace")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for suffix in ("", "-wal", "-shm"):  # the files as a kill -9 leaves them
        shutil.copy(f"{db}{suffix}", crashed / f"hub.db{suffix}")
    store.close()
    assert (crashed / "hub.db-wal").stat().st_size > 0

    target = crashed / "hub.db"
    assert main(["restore", str(copy), "--db", str(target)]) == 0
    assert not (crashed / "hub.db-wal").exists()
    assert _ids(target) == _meters(range(3))
    [kept] = crashed.glob("hub.db.before-restore-*")
    assert _ids(kept) == _meters(range(6))


def test_restore_into_a_new_place(tmp_path: Path) -> None:
    db, copy = tmp_path / "hub.db", tmp_path / "monday.db"
    _write(db, range(2))
    assert main(["backup", str(copy), "--db", str(db), "--no-progress"]) == 0
    fresh = tmp_path / "new" / "city.db"
    fresh.parent.mkdir()
    assert main(["restore", str(copy), "--db", str(fresh)]) == 0
    assert _ids(fresh) == _meters(range(2))
    assert list(fresh.parent.iterdir()) == [fresh]


def test_restore_onto_a_directory_is_a_clear_error(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, copy = backed_up
    folder = tmp_path / "not-a-db"
    folder.mkdir()
    assert main(["restore", str(copy), "--db", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot be opened as a database" in err and "Traceback" not in err
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_a_bad_setting_is_named_not_a_traceback(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CITYHUB_PORT", "abc")  # without --db the command reads CITYHUB_*
    assert main([command, str(tmp_path / "copy.db"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bad setting port (CITYHUB_PORT)" in err, err
    assert not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize(
    "argv", [["serve", "--port", "1"], ["import", "csv", "none.csv", "--type", "T"], ["backup"]]
)
def test_settings_that_do_not_parse_are_one_line_not_a_traceback(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A CITYHUB_CONTEXT_MIRRORS that is not JSON raised pydantic's SettingsError."""
    monkeypatch.setenv("CITYHUB_CONTEXT_MIRRORS", "not json")
    if argv == ["backup"]:
        argv = ["backup", str(tmp_path / "copy.db")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        "cityhub: bad setting context_mirrors (CITYHUB_CONTEXT_MIRRORS) = 'not json': not JSON "
        "(Expecting value: line 1 column 1 (char 0))\n"
    )


def test_a_source_with_writes_in_its_wal_is_restored_whole(tmp_path: Path) -> None:
    """A database copied after a crash still holds writes in its -wal: a byte copy of the
    main file restored none of the 1,000 entities the check counted."""
    src, db = tmp_path / "crashed.db", tmp_path / "hub.db"
    store = SqliteStore(src)
    items = [{"id": f"urn:ngsi-ld:Meter:{n}", "type": "Meter"} for n in range(1000)]
    EntityService(store).batch_upsert("", items, ContextCache().core, "replace")
    shutil.copyfile(src, tmp_path / "main-only.db")
    shutil.copyfile(str(src) + "-wal", str(tmp_path / "main-only.db") + "-wal")
    store.close()  # (the copies are what a kill -9 leaves: a main file and its -wal)
    crashed = tmp_path / "main-only.db"
    assert main(["restore", str(crashed), "--db", str(db), "--no-progress"]) == 0
    assert _ids(db) == _meters(range(1000))


def test_two_restores_in_one_second_each_keep_what_they_replaced(
    backed_up: tuple[Path, Path],
) -> None:
    db, copy = backed_up
    for _ in range(2):
        assert main(["restore", str(copy), "--db", str(db), "--no-progress"]) == 0
    kept = sorted(db.parent.glob("hub.db.before-restore-*"))
    assert len(kept) == 2
    assert sorted(len(_ids(k)) for k in kept) == [5, 10], "the original is still kept"


@pytest.mark.parametrize("name", ["nightly#1.db", "bk?x.db", "bk%20.db"])
def test_paths_with_uri_characters_name_exactly_their_file(tmp_path: Path, name: str) -> None:
    """Unescaped in SQLite's file URI, 'nightly#1.db' opened 'nightly': a restore checked and
    put an unrelated database in place, and a database so named could not be backed up."""
    db, other = tmp_path / f"live{name}", tmp_path / name.split("#")[0].split("?")[0]
    _write(db, range(3))
    _write(other, range(7, 8))  # the file an unescaped URI would have reached
    copy = tmp_path / f"copy-{name}"
    assert main(["backup", str(copy), "--db", str(db), "--no-progress"]) == 0
    _write(db, range(3, 5))
    assert main(["restore", str(copy), "--db", str(db), "--no-progress"]) == 0
    assert _ids(db) == _meters(range(3))


def test_restore_mistakes_are_one_line_and_change_nothing(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing folder for --db, or the database as its own backup, ended in a traceback."""
    db, copy = backed_up
    missing = tmp_path / "no" / "such" / "hub.db"
    assert main(["restore", str(copy), "--db", str(missing), "--no-progress"]) == 2
    assert main(["restore", str(db), "--db", str(db), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "the database itself" in err, err
    assert _ids(db) == _meters(range(10))
    assert not list(tmp_path.glob("hub.db.before-restore-*"))


@pytest.mark.parametrize("moment", ["during the copy", "after the copy"])
def test_a_restore_killed_midway_leaves_the_database_in_place(
    backed_up: tuple[Path, Path], moment: str
) -> None:
    """The old database was moved aside before the copy began: a restore killed (kill -9, or
    the TERM of a timeout) during the copy left nothing at --db, and the next `serve` started
    an empty city there."""
    import os
    import signal
    import subprocess
    import sys
    import time

    db, copy = backed_up
    stall = "time.sleep(60)"
    script = f"""
import sys, time
from pathlib import Path
import cityhub.store.sqlite.snapshot as s
real = s._copy
def slow(source, dest, progress, pages=1024):
    {"real(source, dest, progress, pages=1); " if moment == "after the copy" else ""}dest.touch(); {stall}
s._copy = slow
s.restore(Path(sys.argv[1]), Path(sys.argv[2]))
"""
    proc = subprocess.Popen([sys.executable, "-c", script, str(copy), str(db)])
    part = db.with_name(db.name + ".restoring")
    deadline = time.monotonic() + 30
    while not part.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert part.exists(), "the restore never began its copy"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _ids(db) == _meters(range(10)), "the database it was replacing is still in place"
    assert main(["restore", str(copy), "--db", str(db)]) == 0, "a later restore goes through"
    assert _ids(db) == _meters(range(5))
    assert not part.exists()


def test_a_database_reached_through_a_link_is_restored_where_the_link_leads(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/var/lib/cityhub/cityhub.db -> /data/cityhub.db: the link stays a link, and the restored
    database, the file it replaced and the copy's working name are all on the data volume."""
    db, copy = backed_up
    (tmp_path / "etc").mkdir()
    link = tmp_path / "etc" / "cityhub.db"
    link.symlink_to(db)
    assert main(["restore", str(copy), "--db", str(link), "--no-progress"]) == 0
    assert link.is_symlink() and link.resolve() == db.resolve()
    assert _ids(link) == _meters(range(5))
    assert list((tmp_path / "etc").iterdir()) == [link]  # nothing beside the link
    (kept,) = tmp_path.glob("hub.db.before-restore-*")
    assert not kept.is_symlink() and _ids(kept) == _meters(range(10))
    out = capsys.readouterr().out
    assert f"restored {db.resolve()} (where {link} leads)" in out
    assert f"kept as {kept}" in out
