"""`python -m bench.write_path post|patch|get N [--bare] [--profile FILE]`: bench (a)'s, (c)'s
or (b)'s requests, N of them, sent straight into the hub's ASGI app in this process, 32 at a time.

No sockets and no load generator: what it runs is the hub's own work per request (routing,
parsing, expansion, group commit, SQL), so its instruction count does not depend on the
machine's other load. Under callgrind with BENCH_CALLGRIND=1, only the requests are counted
(the driver turns instrumentation on and off around them); run two N and divide the difference
by the difference of N, and what is left is instructions per request:

    BENCH_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \\
        python -m bench.write_path post 1024

With --bare the same requests go to bench (b)'s baseline (bench/baseline_app.py), answering
with the body the hub gave for the first entity, so the two counts' ratio is the handlers'.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from bench import data

BASE = "/ngsi-ld/v1"
CLIENTS = 32  # as bench (a), (b) and (c)
IDS = 1000  # the entities (b) reads and (c) patches, as the full bench
HOST = (b"host", b"127.0.0.1")  # a GET carries this header alone, as bench/load.py sends it
JSON_BODY = (b"content-type", b"application/json")
OK = {"post": 201, "patch": 204, "get": 200}

Message = dict[str, Any]


def post_bodies() -> Callable[[int], tuple[str, str, bytes]]:
    """(a): one entity template, only the id varies (as bench/load.py builds it)."""
    marker = "@@ID@@"
    tmpl = orjson.dumps({**data.city_entity(1, "x"), "id": marker, "type": "BenchSensor"})
    left, right = tmpl.split(marker.encode())

    def make(i: int) -> tuple[str, str, bytes]:
        return "POST", f"{BASE}/entities", left + b"urn:ngsi-ld:BenchSensor:hub-%d" % i + right

    return make


def patch_bodies() -> Callable[[int], tuple[str, str, bytes]]:
    """(c): a new temperature on one of the IDS entities, in turn."""
    ids = [data.city_entity(i, "getset")["id"] for i in range(IDS)]

    def make(i: int) -> tuple[str, str, bytes]:
        body = b'{"temperature":{"type":"Property","value":%d.5,"unitCode":"CEL"}}' % (i % 40)
        return "PATCH", f"{BASE}/entities/{ids[i % IDS]}/attrs", body

    return make


def get_paths() -> Callable[[int], tuple[str, str, bytes]]:
    """(b): one of the IDS entities, in turn, by the path bench/run.py asks for."""
    paths = [
        f"{BASE}/entities/{quote(data.city_entity(i, 'getset')['id'], safe=':')}"
        for i in range(IDS)
    ]

    def make(i: int) -> tuple[str, str, bytes]:
        return "GET", paths[i % IDS], b""

    return make


REQUESTS = {"post": post_bodies, "patch": patch_bodies, "get": get_paths}


async def call(app: Any, method: str, path: str, body: bytes) -> int:
    """One request through the ASGI app, as uvicorn hands it over; the answer's status."""
    status, _ = await exchange(app, method, path, body)
    return status


def http_scope(
    method: str, path: str, headers: list[tuple[bytes, bytes]], query: bytes = b""
) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it; `path` is the raw one (a %2F stays in raw_path)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 18650),
        "client": ("127.0.0.1", 40000),
        "root_path": "",
        "method": method,
        "path": path.replace("%2F", "/"),
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
    }


async def messages(app: Any, scope: dict[str, Any], body: bytes = b"") -> list[Message]:
    """Every message the app sends for one request whose client then stays connected."""
    sent = False
    out: list[Message] = []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        out.append(message)

    await app(scope, receive, send)
    return out


async def exchange(app: Any, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    """One request through the ASGI app, as uvicorn hands it over; the answer's status and body."""
    headers = [HOST, JSON_BODY, (b"content-length", str(len(body)).encode())] if body else [HOST]
    sent = await messages(app, http_scope(method, path, headers), body)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[Message]]:
    """Start the app's lifespan (notifier, pruner...) as uvicorn does; returns its task."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    msg = await outbox.get()
    assert msg["type"] == "lifespan.startup.complete", msg
    return task, inbox


def instrument(state: str) -> None:
    """Under `valgrind --tool=callgrind --instr-atstart=no`, count only the requests."""
    if os.environ.get("BENCH_CALLGRIND"):
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True)


def bare_app(sample: bytes, tmp: Path) -> Any:
    """Bench (b)'s baseline app, answering GETs with the hub's sample body (as bench/run.py)."""
    from bench import baseline_app

    (tmp / "get_body.json").write_bytes(sample)
    os.environ["BENCH_GET_BODY"] = str(tmp / "get_body.json")
    return baseline_app.create()


async def drive(
    kind: str, n: int, tmp: Path, prof: cProfile.Profile | None, *, bare: bool = False
) -> tuple[Counter[int], float]:
    """Set the hub up, then send n requests of kind from CLIENTS concurrent clients (to the
    bare baseline instead with bare, once the hub has given its sample body and stopped);
    the answers' statuses and the seconds the requests took."""
    from cityhub.api.app import create_app
    from cityhub.cli import tune_runtime
    from cityhub.settings import Settings

    app = create_app(Settings(db=str(tmp / "hub.db"), log_level="warning"))
    tune_runtime()
    task, inbox = await lifespan(app)
    setup = data.city_batch(0, IDS, "getset")
    assert await call(app, "POST", f"{BASE}/entityOperations/upsert", setup) in (201, 204)
    make = REQUESTS[kind]()
    if bare:
        status, sample = await exchange(app, *get_paths()(0))
        assert status == 200, status
        await inbox.put({"type": "lifespan.shutdown"})
        await task
        app = bare_app(sample, tmp)
        task, inbox = await lifespan(app)
    if kind == "get":  # as bench.run's warm-up: every entity read once before the count
        for i in range(IDS):
            assert await call(app, *make(i)) == 200
    statuses: Counter[int] = Counter()
    counter = iter(range(n))

    async def client() -> None:
        for i in counter:
            statuses[await call(app, *make(i))] += 1

    instrument("on")
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    took = time.perf_counter() - t0
    if prof:
        prof.disable()
    instrument("off")
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    return statuses, took


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run on uvloop as the server does, print the statuses and rate."""
    import uvloop

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=sorted(REQUESTS))
    ap.add_argument("n", type=int)
    ap.add_argument("--bare", action="store_true", help="send them to the bare baseline app")
    ap.add_argument("--profile", help="write cProfile stats of the requests to this file")
    args = ap.parse_args(argv)
    prof = cProfile.Profile(time.process_time) if args.profile else None
    with tempfile.TemporaryDirectory(prefix="cityhub-write-path-") as tmp:
        t0 = time.perf_counter()
        statuses, took = uvloop.run(drive(args.kind, args.n, Path(tmp), prof, bare=args.bare))
        total = time.perf_counter() - t0
    if prof:
        prof.dump_stats(args.profile)
    app = "bare" if args.bare else "hub"
    print(
        f"{args.kind} {args.n} ({app}): statuses {dict(statuses)}, {took:.2f} s "
        f"({took / max(args.n, 1) * 1e6:.1f} µs a request), {total:.2f} s with set-up",
        flush=True,
    )
    return 0 if statuses[OK[args.kind]] == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
