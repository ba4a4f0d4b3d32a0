"""A `cityhub import --prune` stopped by Ctrl-C or SIGTERM while it deletes: the slices
committed stay deleted, the rest stays stored, it says so, and the same import run again
finishes the prune."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

# the real import, whose first prune slice, once deleted, signals the process itself
_STOPPED = """
import os, signal, sys
from cityhub.cli import main
from cityhub.ingest.importers.dbsink import DbSink
deleted = DbSink.delete
def delete(self, ids):
    out = deleted(self, ids)
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    return out
DbSink.delete = delete
sys.exit(main(sys.argv[2:]))
"""


def _ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {eid for (eid,) in conn.execute("SELECT id FROM entities")}


def _import(
    *args: str, signame: str | None = None, ignored: bool = False
) -> subprocess.CompletedProcess[str]:
    command = ["-c", _STOPPED, signame] if signame else ["-m", "cityhub.cli"]
    return subprocess.run(
        [sys.executable, *command, "import", *args, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=(lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN)) if ignored else None,
    )


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_prune_stopped_midway_keeps_whole_slices_says_so_and_a_rerun_finishes(
    tmp_path: Path, signame: str
) -> None:
    db = tmp_path / "city.db"
    every = tmp_path / "every.csv"
    every.write_text("id,name\n" + "".join(f"p{i},P\n" for i in range(2_500)))
    assert _import("csv", str(every), "--type", "Park", "--db", str(db)).returncode == 0
    one = tmp_path / "one.csv"
    one.write_text("id,name\np0,P\n")
    stopped = _import(
        "csv", str(one), "--type", "Park", "--db", str(db), "--prune", signame=signame
    )
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert (
        "prune stopped: 1,000 of 2,499 stale entities deleted; the rest stay stored: "
        "the same import run again with --prune deletes them"
    ) in stopped.stderr
    assert len(_ids(db)) == 1_500  # one whole slice deleted, nothing of the next
    again = _import("csv", str(one), "--type", "Park", "--db", str(db), "--prune")
    assert again.returncode == 0, again.stderr
    assert "pruned: 1,499 of 1,499 stored entities" in again.stdout
    assert _ids(db) == {"urn:ngsi-ld:Park:p0"}


def test_a_prune_started_to_ignore_sigterm_still_ignores_it(tmp_path: Path) -> None:
    """nohup and a shell's `&` start a command with signals ignored: it runs to the end."""
    db = tmp_path / "city.db"
    every = tmp_path / "every.csv"
    every.write_text("id\n" + "".join(f"p{i}\n" for i in range(1_500)))
    assert _import("csv", str(every), "--type", "Park", "--db", str(db)).returncode == 0
    one = tmp_path / "one.csv"
    one.write_text("id\np0\n")
    args = ("csv", str(one), "--type", "Park", "--db", str(db), "--prune")
    done = _import(*args, signame="SIGTERM", ignored=True)
    assert done.returncode == 0, done.stderr
    assert _ids(db) == {"urn:ngsi-ld:Park:p0"}
