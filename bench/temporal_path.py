"""`python -m bench.temporal_path PT1H|P1D N [--history H] [--profile FILE]`: bench (f)'s
aggregatedValues query, N times, sent straight into the hub's ASGI app in this process.

(f) appends H (100,000) temperature instances to one entity, then asks for avg,max,min,sum
over the whole window in PT1H or P1D periods, one request at a time. Without sockets or a
load generator, what is measured is the hub's own work per request (SQL aggregation,
building the periods, JSON encoding), so its instruction count does not depend on the
machine's other load. `--db FILE` keeps the loaded database for the next run (loading under
callgrind takes minutes). Under callgrind with BENCH_CALLGRIND=1 only the requests are counted;
run two N and divide the differences to get instructions per request:

    BENCH_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \\
        python -m bench.temporal_path PT1H 20
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from bench import data
from bench.write_path import BASE, HOST, exchange, http_scope, instrument, lifespan, messages

CHUNK = 1000  # instances per append, as bench/run.py loads them


def query_path(period: str) -> tuple[str, bytes]:
    """The path and query string of the GET bench/run.py sends for (f) with this
    aggrPeriodDuration."""
    t_at, t_end = data.temporal_window()
    query = {
        "format": "aggregatedValues",
        "aggrMethods": "avg,max,min,sum",
        "aggrPeriodDuration": period,
        "attrs": "temperature",
        "timerel": "between",
        "timeAt": t_at,
        "endTimeAt": t_end,
    }
    path = f"{BASE}/temporal/entities/{quote(data.TEMPORAL_ID, safe=':')}"
    return path, urlencode(query).encode()


async def get(app: Any, path: str, query: bytes) -> tuple[int, bytes]:
    """One GET through the ASGI app; the answer's status and body."""
    sent = await messages(app, http_scope("GET", path, [HOST], query))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def load(app: Any, history: int) -> None:
    """The entity and its history, in appends of CHUNK instances, as bench/run.py."""
    first = orjson.loads(data.history_chunk(0, CHUNK, history))
    body = orjson.dumps({"id": data.TEMPORAL_ID, "type": data.TEMPORAL_TYPE, **first})
    status, _ = await exchange(app, "POST", f"{BASE}/temporal/entities", body)
    assert status == 201, status
    eid = quote(data.TEMPORAL_ID, safe=":")
    for k in range(1, math.ceil(history / CHUNK)):
        body = data.history_chunk(k * CHUNK, CHUNK, history)
        status, _ = await exchange(app, "POST", f"{BASE}/temporal/entities/{eid}/attrs", body)
        assert status == 204, status


def profile_reads(prof: cProfile.Profile) -> None:
    """Profile what runs on the reader threads (the store's read and the rendering) into
    `prof`; a profiler counts only the thread that enabled it, and the loop has its own."""
    from cityhub.api import readers

    run = readers._run

    def profiled(*args: Any) -> Any:
        prof.enable()
        try:
            return run(*args)
        finally:
            prof.disable()

    readers._run = profiled  # type: ignore[assignment]


async def drive(
    period: str, n: int, history: int, db: Path, profile: str | None
) -> tuple[list[float], bytes]:
    """Load the history (unless the database file exists), read the answer once, then time n
    sequential requests; the seconds each took and the (first) answer's body. With `profile`,
    cProfile stats of the loop's work go to that file, of the reader threads' to FILE.reads."""
    from cityhub.api.app import create_app
    from cityhub.cli import tune_runtime
    from cityhub.settings import Settings

    loaded = db.exists()
    app = create_app(Settings(db=str(db), log_level="warning"))
    tune_runtime()
    task, inbox = await lifespan(app)
    if not loaded:
        await load(app, history)
    path, query = query_path(period)
    status, sample = await get(app, path, query)  # warm-up, and the answer
    assert status == 200, (status, sample[:300])
    took: list[float] = []
    prof = cProfile.Profile(time.process_time) if profile else None
    reads = cProfile.Profile(time.process_time) if profile else None
    if reads:
        profile_reads(reads)
    instrument("on")
    if prof:
        prof.enable()
    for _ in range(n):
        t0 = time.perf_counter()
        status, body = await get(app, path, query)
        took.append(time.perf_counter() - t0)
        assert status == 200 and body == sample, status
    if prof:
        prof.disable()
    instrument("off")
    if profile and prof and reads:
        prof.dump_stats(profile)
        reads.dump_stats(f"{profile}.reads")
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    return took, sample


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run on uvloop as the server does, print the times and the answer's
    size and digest (the same digest before and after a change: the same answer)."""
    import uvloop

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("period", help="aggrPeriodDuration, e.g. PT1H or P1D")
    ap.add_argument("n", type=int)
    ap.add_argument("--history", type=int, default=100_000, help="instances loaded (100,000)")
    ap.add_argument(
        "--profile",
        help="cProfile stats of the requests: the loop's to this file, the reader threads' to FILE.reads",
    )
    ap.add_argument("--db", help="database file to reuse (loaded first when it does not exist)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cityhub-temporal-path-") as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "hub.db"
        took, sample = uvloop.run(drive(args.period, args.n, args.history, db, args.profile))
    ms = sorted(t * 1e3 for t in took)
    p95 = ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)] if ms else math.nan
    print(
        f"{args.period} x{args.n}: median {statistics.median(ms) if ms else math.nan:.2f} ms, "
        f"p95 {p95:.2f} ms, min {ms[0] if ms else math.nan:.2f} ms; answer {len(sample):,} "
        f"bytes, sha256 {hashlib.sha256(sample).hexdigest()[:16]}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
