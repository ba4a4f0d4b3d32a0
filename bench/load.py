"""A small, fast HTTP/1.1 load generator on raw asyncio streams (uvloop when available).

It runs as its own process: `python -m bench.load` reads one job (JSON) on stdin and writes
one result (JSON) on stdout. Each of `connections` keep-alive connections sends a request,
reads the whole response, and sends the next (closed loop, no pipelining). Every run is
bounded by a request count and by a deadline; only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from bench import data

HOST = "127.0.0.1"
BASE = "/ngsi-ld/v1"
HARD_TIMEOUT = 300.0  # seconds any single job may take, whatever it asks for

RequestFactory = Callable[[int], bytes]


def _request(method: str, path: str, body: bytes | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def factory(scn: dict[str, Any]) -> RequestFactory:
    """The request builder of a scenario: request number i -> raw HTTP bytes."""
    kind = scn["kind"]
    if kind == "post_entity":
        # One template, only the id varies: building the request must cost (almost) nothing.
        marker = "@@ID@@"
        tmpl = orjson.dumps({**data.city_entity(1, "x"), "id": marker, "type": "BenchSensor"})
        left, right = tmpl.split(marker.encode())
        prefix = f"urn:ngsi-ld:BenchSensor:{scn['prefix']}-".encode()
        path = f"{BASE}/entities"

        def post(i: int) -> bytes:
            return _request("POST", path, left + prefix + str(i).encode() + right)

        return post
    if kind == "get":
        reqs = [_request("GET", p) for p in scn["paths"]]
        n = len(reqs)
        return lambda i: reqs[i % n]
    if kind == "patch_attrs":
        paths = [f"{BASE}/entities/{eid}/attrs" for eid in scn["ids"]]
        n = len(paths)

        def patch(i: int) -> bytes:
            body = b'{"temperature":{"type":"Property","value":%d.5,"unitCode":"CEL"}}' % (i % 40)
            return _request("PATCH", paths[i % n], body)

        return patch
    if kind == "upsert":
        start, size, prefix = scn["start"], scn["batch"], scn.get("prefix", "city")
        path = f"{BASE}/entityOperations/upsert"
        return lambda i: _request("POST", path, data.city_batch(start + i * size, size, prefix))
    if kind == "temporal_append":
        start, size, total = scn["start"], scn["chunk"], scn["total"]
        path = f"{BASE}/temporal/entities/{scn['eid']}/attrs"
        return lambda i: _request("POST", path, data.history_chunk(start + i * size, size, total))
    raise ValueError(f"unknown scenario {kind!r}")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    low = head.lower()
    k = low.find(b"\r\ncontent-length:")
    if k >= 0:
        n = int(low[k + 17 : low.index(b"\r\n", k + 2)])
        return status, (await reader.readexactly(n)) if n else b""
    if b"\r\ntransfer-encoding: chunked" in low:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, body
            body += chunk[:-2]
    return status, b""


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one closed-loop job and summarise it."""
    make = factory(job["scenario"])
    conns = int(job.get("connections", 32))
    warmup = float(job.get("warmup", 0.0))
    duration = float(job.get("duration", 5.0))
    max_requests = int(job.get("max_requests", 1_000_000))
    port = int(job["port"])
    counter = itertools.count()
    done_t: list[float] = []
    lat: list[float] = []
    ok: list[bool] = []
    statuses: Counter[int] = Counter()
    sample: list[str] = []
    in_flight: dict[int, float] = {}  # worker -> send time of its unanswered request
    cpu0 = time.process_time()
    t_begin = time.perf_counter()
    deadline = t_begin + warmup + duration
    progress = job.get("progress")

    async def worker(w: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while True:
                i = next(counter)
                if i >= max_requests or time.perf_counter() >= deadline:
                    return
                req = make(i)
                t0 = in_flight[w] = time.perf_counter()
                writer.write(req)
                status, body = await _read_response(reader)
                t1 = time.perf_counter()
                del in_flight[w]
                done_t.append(t1)
                lat.append(t1 - t0)
                good = 200 <= status < 300
                ok.append(good)
                statuses[status] += 1
                if not good and len(sample) < 3:
                    sample.append(f"{status} {body[:300].decode(errors='replace')}")
        finally:
            writer.close()

    async def report() -> None:
        assert progress is not None
        per, total, unit = progress["per_request"], progress["total"], progress["unit"]
        tty = sys.stderr.isatty()
        last = 0.0
        while True:
            await asyncio.sleep(0.5)
            now = time.perf_counter()
            if (
                not tty and now - last < 10
            ):  # a log file gets a line every 10 s, a terminal one line
                continue
            last = now
            n = len(done_t) * per
            line = f"    {progress['label']}: {n:,}/{total:,} {unit} ({n / max(now - t_begin, 1e-9):,.0f}/s)"
            sys.stderr.write(f"\r{line}   " if tty else line + "\n")
            sys.stderr.flush()

    reporter = asyncio.ensure_future(report()) if progress else None
    timed_out = False
    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker(w) for w in range(conns))),
            timeout=min(HARD_TIMEOUT, warmup + duration + float(job.get("grace", 60.0))),
        )
    except TimeoutError:
        # A request outlived the grace period: stop waiting, keep what was measured and
        # count each unanswered request with its elapsed time (a lower bound).
        timed_out = True
    finally:
        if reporter and progress:
            reporter.cancel()
            n = len(done_t) * progress["per_request"]
            cr = "\r" if sys.stderr.isatty() else ""
            sys.stderr.write(
                f"{cr}    {progress['label']}: {n:,} {progress['unit']} done{' ' * 30}\n"
            )
    t_end = time.perf_counter()
    unanswered = [t_end - t0 for t0 in in_flight.values()]
    w0 = t_begin + warmup
    skip = int(job.get("skip", 0))  # warm-up by count: the first `skip` answers are not measured
    if skip and len(done_t) > skip:
        w0 = max(w0, done_t[skip - 1])
    idx = [k for k, t in enumerate(done_t) if t > w0 or (not skip and t >= w0)]
    if not idx:  # a job shorter than its warm-up: measure everything
        idx, w0 = list(range(len(done_t))), t_begin
    window = max((done_t[idx[-1]] if idx else t_end) - w0, 1e-9)
    ms = sorted([*(lat[k] * 1000 for k in idx), *(u * 1000 for u in unanswered)])
    return {
        "timed_out": timed_out,
        "unanswered": len(unanswered),
        "requests": len(idx),
        "ok": sum(1 for k in idx if ok[k]),
        "window_s": window,
        "rate": len(idx) / window,
        "ok_rate": sum(1 for k in idx if ok[k]) / window,
        "lat_ms": summarise(ms),
        "status": {str(k): v for k, v in sorted(statuses.items())},
        "error_sample": sample,
        "cpu_s": time.process_time() - cpu0,
        "wall_s": t_end - t_begin,
    }


def pct(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_ms:
        return math.nan
    return sorted_ms[max(0, min(len(sorted_ms) - 1, math.ceil(q * len(sorted_ms)) - 1))]


def summarise(ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean of ascending latencies (ms)."""
    return {
        "p50": pct(ms, 0.50),
        "p95": pct(ms, 0.95),
        "p99": pct(ms, 0.99),
        "max": ms[-1] if ms else math.nan,
        "mean": sum(ms) / len(ms) if ms else math.nan,
    }


def main() -> int:
    job = json.loads(sys.stdin.read())
    try:
        import uvloop

        result = uvloop.run(run_job(job))
    except ImportError:  # pragma: no cover - plain asyncio is only slower
        result = asyncio.run(run_job(job))
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
