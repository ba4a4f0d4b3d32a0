"""The pk span a split count walks is read with two index seeks: `SELECT min(pk), max(pk)`
read every row of the type (2 ms for 20,000) or of the table (7 ms for 100,000) first."""

from __future__ import annotations

from pathlib import Path

from cityhub.store.sqlite import SqliteStore, backend


def test_the_spans_seek_their_ends(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    try:
        conn = store._reader()
        for sql, args in ((backend.TYPE_SPAN, ["", "T"]), (backend.ALL_SPAN, [])):
            plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
            assert [p for p in plan if p.startswith("SCAN") and p != "SCAN CONSTANT ROW"] == []
            assert conn.execute(sql, args).fetchone() == (None, None)
    finally:
        store.close()
