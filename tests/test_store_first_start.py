"""A first start that fails while it creates the database leaves nothing a later start refuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cityhub.cli import main
from cityhub.store.sqlite import SqliteStore, backend
from cityhub.store.sqlite.schema import SCHEMA_VERSION
from conftest import free_port


@pytest.fixture
def failing_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Creation fails after the tables, before the schema version is written (as a full disk
    or a kill there did)."""
    monkeypatch.setattr(
        backend.outbox, "DDL", backend.outbox.DDL + "INSERT INTO no_such_table VALUES (1);"
    )


def _version(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(
            conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        )
    finally:
        conn.close()


def test_the_tables_and_the_version_are_written_together(
    tmp_path: Path, failing_creation: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tables were committed before the version: the next start read "schema 1"."""
    db = tmp_path / "hub.db"
    with pytest.raises(sqlite3.OperationalError):
        SqliteStore(db)
    monkeypatch.undo()  # the disk has been freed
    store = SqliteStore(db)
    store.close()
    assert _version(db) == str(SCHEMA_VERSION)


def test_serve_removes_the_database_it_failed_to_create(
    tmp_path: Path, failing_creation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: a database serve cannot open stops it with one line, neither created nor
    changed."""
    db = tmp_path / "hub.db"
    assert main(["serve", "--port", str(free_port()), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cityhub: cannot open the database {db}: ") and "no_such_table" in err
    assert len(err.splitlines()) == 1, err
    assert sorted(tmp_path.iterdir()) == []


def test_serve_keeps_a_database_that_was_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what serve made itself goes: an existing database that fails to open stays."""
    db = tmp_path / "hub.db"
    SqliteStore(db).close()
    failing = backend.outbox.DDL + "INSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(backend.outbox, "DDL", failing)
    assert main(["serve", "--port", str(free_port()), "--db", str(db)]) == 2
    assert _version(db) == str(SCHEMA_VERSION)


def test_import_removes_the_database_it_failed_to_create(
    tmp_path: Path, failing_creation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`import --db` creates a new database as serve does, and leaves none behind either."""
    rows = tmp_path / "rows.csv"
    rows.write_text("id,x\n1,2\n")
    db = tmp_path / "out" / "imp.db"
    db.parent.mkdir()
    argv = ["import", "csv", str(rows), "--type", "T", "--db", str(db), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot open the database" in err and len(err.splitlines()) == 1, err
    assert list(db.parent.iterdir()) == []
