"""`cityhub backup`: a checked, consistent copy of a database that a running hub keeps writing."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cityhub.cli import main
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore
from cityhub.store.sqlite.snapshot import backup
from conftest import BASE, free_port
from test_serve import serving


def _entity(n: int) -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:Meter:{n}",
        "type": "Meter",
        "kwh": {"type": "Property", "value": n},
    }


@pytest.mark.server
def test_a_backup_taken_under_writes_is_consistent_and_opens(tmp_path: Path) -> None:
    db, dest = tmp_path / "live.db", tmp_path / "copy.db"
    with serving(db, free_port()) as url:
        client = httpx.Client(base_url=url + BASE, timeout=10)
        for n in range(200):
            assert client.post("/entities", json=_entity(n)).status_code == 201
        stop = threading.Event()
        written: list[int] = []

        def keep_writing() -> None:
            with httpx.Client(base_url=url + BASE, timeout=10) as other:
                n = 1000
                while not stop.is_set():
                    if other.post("/entities", json=_entity(n)).status_code == 201:
                        written.append(n)
                    n += 1

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            _until(lambda: len(written) >= 20)
            before = list(written)  # acknowledged before the backup started
            assert main(["backup", str(dest), "--db", str(db)]) == 0
            after = len(written)
            _until(lambda: len(written) >= after + 20)  # the hub still takes writes
        finally:
            stop.set()
            writer.join()
        client.close()
    check = sqlite3.connect(dest)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # a snapshot: every entity has its history header, whatever moment the copy was taken at
    orphans = check.execute(
        "SELECT count(*) FROM entities e WHERE NOT EXISTS "
        "(SELECT 1 FROM tentities t WHERE t.tenant = e.tenant AND t.id = e.id)"
    ).fetchone()[0]
    check.close()
    assert orphans == 0
    copy = SqliteStore(dest)
    for n in (0, 199, *before):
        assert copy.get("", f"urn:ngsi-ld:Meter:{n}") is not None, n
    copy.close()


def _until(done: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_backup_never_overwrites_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, dest = tmp_path / "hub.db", tmp_path / "taken.db"
    SqliteStore(db).close()
    dest.write_text("an older backup")
    assert main(["backup", str(dest), "--db", str(db)]) == 2
    assert dest.read_text() == "an older backup"
    err = capsys.readouterr().err
    assert "already exists" in err
    assert "backing up" not in err, "a refused backup announced a copy it never started"
    for flags in ([], ["--no-progress"]):  # a copy that starts says so, bar or not
        assert main(["backup", str(tmp_path / f"new{len(flags)}.db"), "--db", str(db), *flags]) == 0
        assert f"cityhub: backing up {db} to " in capsys.readouterr().err


def test_a_missing_database_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "copy.db"
    assert main(["backup", str(dest), "--db", str(tmp_path / "nothere.db")]) == 2
    assert not dest.exists()
    assert f"there is no database at {tmp_path / 'nothere.db'}" in capsys.readouterr().err
    assert main(["backup", str(dest), "--db", str(tmp_path)]) == 2  # a folder
    assert "is not a database file" in capsys.readouterr().err


def test_progress_is_reported_up_to_the_whole_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    EntityService(store).batch_upsert(
        "", [_entity(n) for n in range(2000)], ContextCache().core, "replace"
    )
    store.close()
    reports: list[tuple[int, int]] = []
    done = backup(db, tmp_path / "copy.db", lambda n, total: reports.append((n, total)))
    assert done.entities == 2000
    expected = reports[-1][1]
    assert reports[-1] == (expected, expected), "the last report says the copy is whole"
    assert [n for n, _ in reports] == sorted(n for n, _ in reports), "never goes backwards"
    assert expected >= done.size * 0.9, "measured against the pages in use"
    # the command shows it as a bar on stderr, or not at all with --no-progress
    assert main(["backup", str(tmp_path / "bar.db"), "--db", str(db)]) == 0
    assert "backup: 100%" in capsys.readouterr().err
    assert main(["backup", str(tmp_path / "quiet.db"), "--db", str(db), "--no-progress"]) == 0
    assert "backup:" not in capsys.readouterr().err


def test_a_stopped_backup_leaves_no_file(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    items = [_entity(n) for n in range(3000)]
    EntityService(store).batch_upsert("", items, ContextCache().core, "replace")
    store.close()

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt  # what Ctrl-C raises in the reporting loop

    with pytest.raises(KeyboardInterrupt):
        backup(db, tmp_path / "copy.db", stop)
    assert not (tmp_path / "copy.db").exists()
    assert not list(tmp_path.glob("copy.db*")), "nor a partial copy or its journal"


def test_a_killed_backup_leaves_no_file_and_the_same_command_runs_again(tmp_path: Path) -> None:
    """VACUUM INTO wrote straight into DEST: a backup killed (kill -9, a timeout's TERM) left
    a half-written DEST, and the next run of the same command said it already existed."""
    import os
    import signal
    import subprocess
    import sys

    db, dest = tmp_path / "hub.db", tmp_path / "nightly.db"
    store = SqliteStore(db)
    EntityService(store).batch_upsert(
        "", [_entity(n) for n in range(50)], ContextCache().core, "replace"
    )
    store.close()
    script = """
import sys, time
from pathlib import Path
import cityhub.store.sqlite.snapshot as s
def stalled(conn, path, progress):
    path.write_bytes(b"half a database")
    time.sleep(60)
s._vacuum_into = stalled
s.backup(Path(sys.argv[1]), Path(sys.argv[2]))
"""
    proc = subprocess.Popen([sys.executable, "-c", script, str(db), str(dest)])
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("nightly.db*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not dest.exists(), "no half-written backup under the name asked for"
    assert main(["backup", str(dest), "--db", str(db), "--no-progress"]) == 0
    assert sqlite3.connect(dest).execute("SELECT count(*) FROM entities").fetchone()[0] == 50
    assert sorted(p.name for p in tmp_path.glob("nightly.db*")) == ["nightly.db"]


def test_another_applications_database_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "the copy of other.db failed its check (no such table: entities)", which reads
    as a damaged copy; serve and import say what it is."""
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (a)")
    conn.commit()
    conn.close()
    dest = tmp_path / "copy.db"
    assert main(["backup", str(dest), "--db", str(other), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"cityhub: {other} is a SQLite database, but not a cityhub one\n"
    )
    assert not list(tmp_path.glob("copy.db*"))


def _killed_backup(tmp_path: Path, db: Path, dest: Path) -> None:
    """A backup to dest killed (kill -9) while it writes its copy."""
    import os
    import signal
    import subprocess
    import sys

    script = """
import sys, time
from pathlib import Path
import cityhub.store.sqlite.snapshot as s
def stalled(conn, path, progress):
    path.write_bytes(b"half a database")
    Path(str(path) + "-journal").write_bytes(b"journal")
    time.sleep(60)
s._vacuum_into = stalled
s.backup(Path(sys.argv[1]), Path(sys.argv[2]))
"""
    proc = subprocess.Popen([sys.executable, "-c", script, str(db), str(dest)])
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob(dest.name + "*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_backup_removes_what_a_killed_one_to_another_name_left(tmp_path: Path) -> None:
    """With a new name per run (README: $(date +%F).db), a backup killed midway left
    DEST.partial and DEST.partial-journal, the size of the database, for ever (probe 5 F4)."""
    import os

    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    EntityService(store).batch_upsert(
        "", [_entity(n) for n in range(50)], ContextCache().core, "replace"
    )
    store.close()
    _killed_backup(tmp_path, db, tmp_path / "monday.db")
    assert list(tmp_path.glob("monday.db*")), "the killed one left its partial copy"
    running = tmp_path / f"other.db.cityhub-{os.getpid()}.partial"  # a backup still running
    running.write_bytes(b"in progress")
    assert main(["backup", str(tmp_path / "tuesday.db"), "--db", str(db), "--no-progress"]) == 0
    assert not list(tmp_path.glob("monday.db*")), "the dead backup's files are gone"
    assert running.exists(), "a live backup's partial copy is left alone"
    assert sorted(p.name for p in tmp_path.glob("tuesday.db*")) == ["tuesday.db"]


def test_a_database_on_a_read_only_file_system_is_named_as_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said only "unable to open database file" (probe 5 F5: the source on a tmpfs
    remounted read-only, where WAL mode cannot make its -shm); serve names the cause."""
    import os

    from cityhub.store.sqlite import files

    source_dir = tmp_path / "ro"
    source_dir.mkdir()
    db = source_dir / "hub.db"
    SqliteStore(db).close()
    real_statvfs = os.statvfs

    class ReadOnly:
        def __init__(self, found: os.statvfs_result) -> None:
            self.f_flag = found.f_flag | os.ST_RDONLY

    def statvfs(path: str | Path) -> object:
        found = real_statvfs(path)
        return ReadOnly(found) if Path(path) == source_dir else found

    real_connect = sqlite3.connect

    def connect(target: str, *args: object, **kwargs: object) -> sqlite3.Connection:
        if "/ro/" in str(target):
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(target, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files.os, "statvfs", statvfs)
    monkeypatch.setattr(sqlite3, "connect", connect)
    dest = tmp_path / "copy.db"
    assert main(["backup", str(dest), "--db", str(db), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{source_dir} is on a read-only file system" in err, err
    assert not list(tmp_path.glob("copy.db*"))
