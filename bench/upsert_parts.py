"""`python -m bench.upsert_parts [BATCHES] [--creates GROUP]`: where the time of a write goes,
in-process.

Default: upserts BATCHES (default 20) batches of 1,000 bench entities through `EntityService`,
one group transaction per batch as the API runs them. With `--creates GROUP` it instead
creates the same number of entities GROUP at a time through `EntityService.create_many`, as
the group committer runs concurrent `POST /entities` (figure (a): 32 connections make groups of
32). Every SQL statement the store runs is timed by kind. Prints µs per entity for the whole,
for the SQL (per statement kind) and for the Python around it, beside bench.run's (d)
baseline: raw SQLite `executemany` of the same documents. The SQL part is the floor of this
storage layout (decision 018).

It then writes one more batch with the checkpointer stopped and counts the WAL frames (whole
pages) its COMMITs wrote, by the table or index each page belongs to: a COMMIT writes every
page its transaction changed, so an index whose entries land at random places costs about
one 4 KiB frame per entry.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bench import data
from bench.run import UPSERT_BATCH, sqlite_baseline
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.entity import expand_entity
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore

_KIND = re.compile(r"\s*(INSERT INTO|SELECT .*? FROM|DELETE FROM|UPDATE|\w+)\s*(\w*)")
WAL_HEADER, FRAME_HEADER = 32, 24


class TimedConnection:
    """The writer connection with each execute/executemany timed by statement kind."""

    def __init__(self, conn: sqlite3.Connection, spent: Counter[str]) -> None:
        self._conn = conn
        self._spent = spent

    def _timed(self, fn: Any, sql: str, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(sql, *args)
        finally:
            m = _KIND.match(sql)
            kind = f"{m.group(1).split()[0]} {m.group(2)}".strip() if m else sql[:30]
            self._spent[kind] += time.perf_counter() - started

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed(self._conn.execute, sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed(self._conn.executemany, sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def wal_pages(db: Path) -> list[int]:
    """The page number of every frame in the database's WAL, in order."""
    raw = (db.parent / (db.name + "-wal")).read_bytes()
    page_size = struct.unpack(">I", raw[8:12])[0]
    step = FRAME_HEADER + page_size
    return [
        struct.unpack(">I", raw[off : off + 4])[0]
        for off in range(WAL_HEADER, len(raw) - step + 1, step)
    ]


def frames_by_btree(db: Path, pages: list[int]) -> Counter[str]:
    """WAL frames per table or index (SQLite's dbstat names each page's owner)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    return Counter(owner.get(p, "(free or new)") for p in pages)


def _write(service: EntityService, items: list[Any], tm: Any, group: int | None) -> int:
    """Write one batch of bench entities as the API would; returns the COMMITs it took."""
    store = service.store
    if group is None:
        with store.group(savepoints=False):
            if service.batch_upsert("", items, tm, "replace").errors:
                raise RuntimeError("the bench entities were refused")
        return 1
    for start in range(0, len(items), group):  # the API expands a body before it queues it
        docs = [expand_entity(item, tm) for item in items[start : start + group]]
        with store.group(savepoints=False):
            if not all(ok for ok, _ in service.create_many("", docs)):
                raise RuntimeError("the bench entities were refused")
    return -(-len(items) // group)


def measure(tmp: Path, batches: int, group: int | None) -> dict[str, Any]:
    """Seconds for the whole write and per statement kind; then WAL frames per B-tree for
    one more batch, written with the checkpointer stopped (untimed: without checkpoints the
    WAL grows and every COMMIT slows down)."""
    db = tmp / "hub.db"
    store = SqliteStore(db)
    spent: Counter[str] = Counter()
    store._writer = TimedConnection(store._writer, spent)  # type: ignore[assignment]
    service = EntityService(store)
    tm = ContextCache().core
    bodies = [
        orjson.loads(data.city_batch(i * UPSERT_BATCH, UPSERT_BATCH)) for i in range(batches + 1)
    ]
    try:
        started = time.perf_counter()
        for items in bodies[:-1]:
            _write(service, items, tm, group)
        elapsed = time.perf_counter() - started
        timed = spent.copy()
        store._stop.set()
        store._checkpointer.join()
        store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        commits = _write(service, bodies[-1], tm, group)
        pages = wal_pages(db)
    finally:
        store._writer = store._writer._conn  # the real connection, for close()
        store.close()
    return {"elapsed": elapsed, "spent": timed, "commits": commits, "pages": pages, "db": db}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upsert_parts")
    parser.add_argument("batches", nargs="?", type=int, default=20, help="1,000 entities each")
    parser.add_argument("--creates", type=int, metavar="GROUP", help="creates, GROUP per commit")
    args = parser.parse_args(argv)
    if args.creates is not None and args.creates < 1:
        parser.error("--creates needs a group of at least 1")
    n = args.batches * UPSERT_BATCH
    with tempfile.TemporaryDirectory(prefix="cityhub-upsert-") as tmp:
        raw = sqlite_baseline(Path(tmp), n)
        out = measure(Path(tmp), args.batches, args.creates)
        frames = frames_by_btree(out["db"], out["pages"])
    total, spent, commits = out["elapsed"], out["spent"], out["commits"]
    sql = sum(spent.values())

    def us(seconds: float) -> str:
        return f"{seconds / n * 1e6:7.1f} µs"

    what = (
        f"creates of {n:,} bench entities, {args.creates:,} per transaction (create_many)"
        if args.creates
        else f"batch upsert of {n:,} bench entities, {UPSERT_BATCH:,} per transaction"
    )
    print(f"{what}, in-process")
    print(f"  raw SQLite executemany  {us(raw['elapsed'])}  ({raw['rate']:,.0f}/s, the baseline)")
    ratio = raw["elapsed"] / total
    print(f"  hub, whole              {us(total)}  ({n / total:,.0f}/s, {ratio:.3f} of raw)")
    print(f"  hub, SQL only           {us(sql)}  (at most {n / sql:,.0f}/s with no Python)")
    print(f"  hub, Python             {us(total - sql)}")
    for kind, seconds in spent.most_common():
        if seconds / n >= 0.05e-6:
            print(f"    {us(seconds)}  {kind}")
    count = sum(frames.values())
    print(
        f"  WAL frames (one more batch, checkpoints stopped): {count / commits:,.1f} per "
        f"commit, {count / UPSERT_BATCH:.2f} per entity"
    )
    for name, k in frames.most_common():
        if k / commits >= 0.5:
            print(f"    {k / commits:9.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
