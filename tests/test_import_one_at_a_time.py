"""Two `cityhub import --db` of one feed into one database at once both exited 0, each having
rewritten what the other wrote (history instances and notifications twice over). A second
import now stops before it writes, naming the first; a killed import lets go of its lock; an
import beside a running `cityhub serve` goes on as before (decision 093)."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cityhub.cli import main
from cityhub.ingest.importers.importlock import lock_path
from conftest import free_port
from test_serve import serving

ROWS = 20_000  # long enough an import to be caught holding its lock


def feed(tmp_path: Path, rows: int = ROWS) -> Path:
    """A CSV of rows readings, each with its own observedAt (so each write is history)."""
    path = tmp_path / "feed.csv"
    lines = ["id,t,at"] + [f"r{n},{n % 40},2024-05-01T10:00:00Z" for n in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def argv(csv: Path, db: Path) -> list[str]:
    """`cityhub import` of the feed into db."""
    flags = ["--type", "Reading", "--observed-at", "at", "--no-progress", "--db", str(db)]
    return ["import", "csv", str(csv), *flags]


def history_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM history").fetchone()[0])


def held_by_another(db: Path) -> bool:
    """Whether some process holds db's import lock (probed without taking it for long)."""
    try:
        fd = os.open(lock_path(str(db)), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # a lock this probe got goes with the descriptor
    return False


def importing(csv: Path, db: Path) -> subprocess.Popen[bytes]:
    """`cityhub import` as a real process, caught (SIGSTOP) while it holds the lock."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cityhub.cli", *argv(csv, db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not held_by_another(db):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0].decode()
            pytest.fail(f"the first import never held the database's import lock: {out}")
        time.sleep(0.002)
    proc.send_signal(signal.SIGSTOP)
    return proc


def test_a_second_import_into_one_database_stops_before_it_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv, db = feed(tmp_path), tmp_path / "hub.db"
    first = importing(csv, db)
    try:
        before = history_rows(db) if db.exists() else None
        assert main(argv(csv, db)) == 2
        err = capsys.readouterr().err
        assert f"another cityhub import (pid {first.pid}) is writing into {db}" in err, err
        assert (history_rows(db) if db.exists() else None) == before  # it wrote nothing
    finally:
        first.send_signal(signal.SIGCONT)
    out = first.communicate(timeout=120)[0].decode()
    assert first.returncode == 0, out
    assert history_rows(db) == ROWS  # each reading once, from the one import
    assert main(argv(csv, db)) == 0  # once it has ended, the next one runs


def test_a_killed_import_lets_the_next_one_run(tmp_path: Path) -> None:
    csv, db = feed(tmp_path), tmp_path / "hub.db"
    first = importing(csv, db)
    first.kill()
    first.communicate(timeout=30)
    assert main(argv(csv, db)) == 0
    assert history_rows(db) >= ROWS


def test_an_import_beside_a_running_hub_still_runs(tmp_path: Path) -> None:
    """`cityhub serve` holds its database against a second hub, not against an import."""
    csv, db = feed(tmp_path, rows=50), tmp_path / "hub.db"
    with serving(db, free_port()):
        assert main(argv(csv, db)) == 0
    assert history_rows(db) == 50
