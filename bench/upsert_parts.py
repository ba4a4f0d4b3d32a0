"""`python -m bench.upsert_parts [BATCHES]`: where the time of a batch upsert goes, in-process.

Upserts BATCHES (default 20) batches of 1,000 bench entities through `EntityService`, one
group transaction per batch as the API runs them, with every SQL statement the store runs
timed by kind. Prints µs per entity for the whole, for the SQL (per statement kind) and for
the Python around it, beside bench.run's (d) baseline: raw SQLite `executemany` of the same
documents. The SQL part is the floor of figure (d) for this storage layout (decision 018).
"""

from __future__ import annotations

import re
import sqlite3
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
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore

_KIND = re.compile(r"\s*(INSERT INTO|SELECT .*? FROM|DELETE FROM|UPDATE|\w+)\s*(\w*)")


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


def measure(tmp: Path, batches: int) -> tuple[float, Counter[str]]:
    """Seconds for the whole upsert and seconds per statement kind."""
    store = SqliteStore(tmp / "hub.db")
    spent: Counter[str] = Counter()
    store._writer = TimedConnection(store._writer, spent)  # type: ignore[assignment]
    service = EntityService(store)
    tm = ContextCache().core
    bodies = [orjson.loads(data.city_batch(i * UPSERT_BATCH, UPSERT_BATCH)) for i in range(batches)]
    started = time.perf_counter()
    try:
        for items in bodies:
            with store.group(savepoints=False):
                if service.batch_upsert("", items, tm, "replace").errors:
                    raise RuntimeError("the bench entities were refused")
        return time.perf_counter() - started, spent.copy()  # not close()'s checkpoint
    finally:
        store.close()


def main(argv: list[str]) -> int:
    batches = int(argv[0]) if argv else 20
    n = batches * UPSERT_BATCH
    with tempfile.TemporaryDirectory(prefix="cityhub-upsert-") as tmp:
        raw = sqlite_baseline(Path(tmp), n)
        total, spent = measure(Path(tmp), batches)
    sql = sum(spent.values())

    def us(seconds: float) -> str:
        return f"{seconds / n * 1e6:7.1f} µs"

    print(f"batch upsert of {n:,} bench entities, {UPSERT_BATCH:,} per transaction, in-process")
    print(f"  raw SQLite executemany  {us(raw['elapsed'])}  ({raw['rate']:,.0f}/s, the baseline)")
    ratio = raw["elapsed"] / total
    print(f"  hub, whole              {us(total)}  ({n / total:,.0f}/s, {ratio:.3f} of raw)")
    print(f"  hub, SQL only           {us(sql)}  (at most {n / sql:,.0f}/s with no Python)")
    print(f"  hub, Python             {us(total - sql)}")
    for kind, seconds in spent.most_common():
        if seconds / n >= 0.05e-6:
            print(f"    {us(seconds)}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
