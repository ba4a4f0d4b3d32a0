"""`python -m bench.retention [N]`: how fast history retention deletes, and how long one step
holds the writer, beside a bare SQLite DELETE of the same rows.

Loads N temperature instances (default 200,000) of one entity through the temporal service,
ages them all past the cutoff, then runs the hub's pruner (steps of retention.STEP rows, each
its own transaction) and, on a copy of the same database, one `DELETE FROM history WHERE hid
<= max` as the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench import data
from cityhub import retention
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.temporal import TemporalService
from cityhub.store.sqlite import SqliteStore

CHUNK = 1000


def load(path: Path, n: int) -> None:
    """n instances of one attribute, written as the temporal API writes them."""
    store = SqliteStore(path)
    tm = asyncio.run(ContextCache().term_map(None))
    svc = TemporalService(store, 1000)
    first = orjson.loads(data.history_chunk(0, CHUNK, n))
    svc.create("", {"id": data.TEMPORAL_ID, "type": data.TEMPORAL_TYPE, **first}, tm)
    for start in range(CHUNK, n, CHUNK):
        body = orjson.loads(data.history_chunk(start, min(CHUNK, n - start), n))
        svc.append("", data.TEMPORAL_ID, body, tm)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE history SET t_modified = t_modified - 400 * 86400")
    conn.commit()
    conn.close()


async def prune(path: Path, days: float) -> tuple[int, float, list[float]]:
    """The hub's pruner over the whole table: (deleted, seconds, seconds per step)."""
    store = SqliteStore(path)
    steps: list[float] = []
    real = store.prune_history

    def timed(before: float, after: int = 0, limit: int = retention.STEP) -> tuple[int, int | None]:
        t0 = time.perf_counter()
        out = real(before, after, limit)
        steps.append(time.perf_counter() - t0)
        return out

    store.prune_history = timed  # type: ignore[method-assign]
    pruner = retention.HistoryPruner(store, days)
    t0 = time.perf_counter()
    deleted = await pruner.prune()
    elapsed = time.perf_counter() - t0
    store.close()
    return deleted, elapsed, steps


def bare(path: Path) -> tuple[int, float]:
    """One DELETE of the same rows, no steps: the baseline."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    # a WHERE clause: without one SQLite truncates the table instead of deleting rows
    n = conn.execute("DELETE FROM history WHERE t_modified < ?", (time.time(),)).rowcount
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return n, elapsed


def _count(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.retention",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "n", nargs="?", type=_count, default=200_000, help="instances to load (default 200000)"
    )
    n = ap.parse_args(argv).n
    tmp = Path(tempfile.mkdtemp(prefix="cityhub-retention-"))
    try:
        hub_db, bare_db = tmp / "hub.db", tmp / "bare.db"
        t0 = time.perf_counter()
        load(hub_db, n)
        print(f"loaded {n:,} instances in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{hub_db}{suffix}").exists():
                shutil.copy(f"{hub_db}{suffix}", f"{bare_db}{suffix}")
        deleted, elapsed, steps = asyncio.run(prune(hub_db, 365))
        base_n, base_s = bare(bare_db)
        steps.sort()
        p99 = steps[int(0.99 * (len(steps) - 1))]
        print(f"| retention, {n:,} instances | hub pruner | bare DELETE | hub / bare |")
        print("|---|---|---|---|")
        print(
            f"| instances deleted per second | {deleted / elapsed:,.0f} ({deleted:,} in "
            f"{elapsed:.2f} s, {len(steps)} steps of {retention.STEP:,}) | {base_n / base_s:,.0f} "
            f"({base_n:,} in {base_s:.2f} s, one transaction) | {base_n / base_s and (deleted / elapsed) / (base_n / base_s):.2f} |"
        )
        print(
            f"| the writer held per step | median {steps[len(steps) // 2] * 1000:.1f} ms, p99 "
            f"{p99 * 1000:.1f} ms, max {steps[-1] * 1000:.1f} ms | {base_s * 1000:,.0f} ms, all at once | |"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
