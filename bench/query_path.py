"""`python -m bench.query_path build DB [N]` then `python -m bench.query_path run DB [REQUESTS]`:
bench (e)'s four queries (type + q, selective and unselective, with and without count=true)
sent straight into the hub's ASGI app in this process, over the city of bench/data.py.

`build` loads N city entities (default 100,000, as the full bench) into a new database at DB
through the hub's own upsert, 1,000 per request, as bench.run loads them. `run` opens a copy
of it and sends each variant REQUESTS times (default 20), cycling over the five types as
bench.run does, after one warm-up round. Each variant is counted apart: under callgrind with
BENCH_CALLGRIND=1 the driver turns instrumentation on around its requests and dumps the
counts after them, so each dump file holds one variant's instructions (divide by REQUESTS):

    .venv/bin/python -m bench.query_path build /tmp/city.db
    BENCH_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \\
        .venv/bin/python -m bench.query_path run /tmp/city.db 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import data
from bench.run import UPSERT_BATCH, query_variants
from bench.write_path import HOST, call, http_scope, instrument, lifespan, messages

BASE = "/ngsi-ld/v1"


def dump(label: str) -> None:
    """Under callgrind, write the counts since the last dump to a file of their own."""
    if os.environ.get("BENCH_CALLGRIND"):
        subprocess.run(["callgrind_control", "-d", label, str(os.getpid())], check=True)


async def get(app: Any, path: str, query: str) -> tuple[int, str | None, bytes]:
    """One GET with a query string through the ASGI app: its status, its
    NGSILD-Results-Count (None without count=true) and its body."""
    sent = await messages(app, http_scope("GET", path, [HOST], query.encode()))
    start = next(m for m in sent if m["type"] == "http.response.start")
    count = dict(start["headers"]).get(b"ngsild-results-count")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], None if count is None else count.decode(), body


def _app(db: Path) -> Any:
    from cityhub.api.app import create_app
    from cityhub.cli import tune_runtime
    from cityhub.settings import Settings

    app = create_app(Settings(db=str(db), log_level="warning"))
    tune_runtime()
    return app


async def build(db: Path, n: int) -> None:
    """Load n city entities through the hub's upsert, UPSERT_BATCH per request."""
    app = _app(db)
    task, inbox = await lifespan(app)
    for start in range(0, n, UPSERT_BATCH):
        body = data.city_batch(start, min(UPSERT_BATCH, n - start))
        status = await call(app, "POST", f"{BASE}/entityOperations/upsert", body)
        assert status in (201, 204), status
    await inbox.put({"type": "lifespan.shutdown"})
    await task


async def run(db: Path, requests: int) -> list[tuple[str, float, str]]:
    """Each (e) variant `requests` times after a warm-up round: (label, ms a request, the
    last answer's count and size)."""
    app = _app(db)
    task, inbox = await lifespan(app)
    out = []
    for label, params in query_variants():
        queries = [urlencode({"type": t, **params}) for t in data.TYPES]
        for q in queries:  # warm-up: statement and name caches, pages in memory
            status, _, _ = await get(app, f"{BASE}/entities", q)
            assert status == 200, status
        instrument("on")
        t0 = time.perf_counter()
        for i in range(requests):
            status, count, body = await get(app, f"{BASE}/entities", queries[i % len(queries)])
            assert status == 200, (status, body[:200])
        took = time.perf_counter() - t0
        instrument("off")
        dump(label.replace(" ", "").replace(",", "-").replace("=", ""))
        counted = "" if count is None else f"count {count}, "
        out.append((label, took / requests * 1000, f"{counted}{len(body):,} bytes"))
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    return out


def main(argv: list[str] | None = None) -> int:
    """Build the city database, or run the (e) queries on a copy of it."""
    import uvloop

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("build", "run"))
    ap.add_argument("db", type=Path)
    ap.add_argument("n", type=int, nargs="?", help="build: entities (100,000); run: requests (20)")
    args = ap.parse_args(argv)
    if args.action == "build":
        if args.db.exists():
            print(f"{args.db} exists: remove it first", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        uvloop.run(build(args.db, args.n or 100_000))
        print(f"built {args.db} in {time.perf_counter() - t0:.1f} s", flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="cityhub-query-path-") as tmp:
        copy = Path(tmp) / "city.db"
        shutil.copyfile(args.db, copy)  # the hub checkpointed and truncated its WAL on close
        for label, ms, size in uvloop.run(run(copy, args.n or 20)):
            print(f"{label:26} {ms:8.2f} ms a request (last answer {size})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
