"""`python -m bench.soak`: a real `cityhub serve` under a mixed load for minutes, sampled.

What a city's hub meets over a day, compressed: creates, attribute updates that notify
subscribers, reads by id, queries and temporal reads, all at once. Every `--every` seconds it
prints the hub's anonymous and file-backed memory, the sizes of the database and its WAL,
how long `/health` took and how many notifications arrived. At the end: each load's rate,
errors and latency, and the hub's `/health`. A figure that keeps growing is a leak or an
unbounded queue; a `/health` that slows down is work that grows with the data.

    python -m bench.soak --seconds 300                 # mixed load, 20 live subscribers
    python -m bench.soak --seconds 60 --dead 20 --only-patch   # 20 subscribers that are down

Found with it (2026-12-03): the WAL never restarting under steady writes (decision 006), a
`/health` that scanned every entity, and notification queues of dead receivers that held
4 KB per item without a bound over all endpoints (decision 008).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import data
from bench.servers import ROOT, free_port

BASE = "/ngsi-ld/v1"


def _memory(pid: int) -> tuple[int, int]:
    """(anonymous, file-backed) resident MiB of a process."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("RssAnon", "RssFile")):
            fields[line.split(":")[0]] = int(line.split()[1]) // 1024
    return fields.get("RssAnon", 0), fields.get("RssFile", 0)


def _mib(path: Path) -> float:
    return path.stat().st_size / 2**20 if path.exists() else 0.0


def _wait_up(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the hub did not answer at {url}")


def _setup(client: httpx.Client, subs: int, dead: int, sink_port: int) -> list[str]:
    """1,000 city entities and the subscriptions (each on one type, watching temperature)."""
    resp = client.post(
        f"{BASE}/entityOperations/upsert",
        content=data.city_batch(0, 1000),
        headers={"Content-Type": "application/json"},
    )
    resp.raise_for_status()
    for i in range(subs + dead):
        uri = f"http://127.0.0.1:{sink_port}/n{i}" if i < subs else f"http://127.0.0.1:{1 + i}/"
        body = {
            "type": "Subscription",
            "entities": [{"type": data.TYPES[i % len(data.TYPES)]}],
            "watchedAttributes": ["temperature"],
            "notification": {"endpoint": {"uri": uri, "accept": "application/json"}},
        }
        client.post(f"{BASE}/subscriptions", json=body).raise_for_status()
    return [data.city_entity(i)["id"] for i in range(1000)]


def _jobs(ids: list[str], only_patch: bool) -> list[dict[str, Any]]:
    queries = [f"{BASE}/entities?type={t}&q=temperature%3E30&limit=50" for t in data.TYPES]
    jobs: list[dict[str, Any]] = [
        {"scenario": {"kind": "patch_attrs", "ids": ids}, "connections": 8}
    ]
    if not only_patch:
        jobs += [
            {"scenario": {"kind": "post_entity", "prefix": "soak"}, "connections": 4},
            {
                "scenario": {"kind": "get", "paths": [f"{BASE}/entities/{e}" for e in ids]},
                "connections": 4,
            },
            {
                "scenario": {
                    "kind": "get",
                    "paths": [*queries, f"{BASE}/temporal/entities/{ids[0]}?lastN=50"],
                },
                "connections": 2,
            },
        ]
    return jobs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    ap.add_argument("--seconds", type=float, default=300, help="how long the load runs")
    ap.add_argument("--every", type=float, default=10, help="seconds between samples")
    ap.add_argument("--subs", type=int, default=20, help="subscriptions with a live receiver")
    ap.add_argument("--dead", type=int, default=0, help="subscriptions whose receiver is down")
    ap.add_argument("--only-patch", action="store_true", help="attribute updates alone")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="cityhub-soak-"))
    db = tmp / "hub.db"
    port, sink_port, hung_port = free_port(), free_port(), free_port()
    bin_dir = Path(sys.executable).parent
    with open(tmp / "hub.log", "wb") as log:
        hub = subprocess.Popen(
            [bin_dir / "cityhub", "serve", "--port", str(port), "--db", str(db)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.notify_sink", "serve", str(sink_port), str(hung_port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    loads: list[subprocess.Popen[bytes]] = []
    try:
        assert sink.stdout is not None
        sink.stdout.readline()
        _wait_up(f"http://127.0.0.1:{port}/health")
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        ids = _setup(client, args.subs, args.dead, sink_port)
        jobs = _jobs(ids, args.only_patch)
        for job in jobs:
            job.update(port=port, duration=args.seconds, warmup=0, max_requests=10**9)
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.load"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
            loads.append(proc)
        print(f"cityhub soak: {args.seconds:.0f} s on {db} (log: {tmp / 'hub.log'})")
        print("     s  anon MiB  file MiB  db MiB  wal MiB  /health ms  notified")
        started = time.monotonic()
        health: dict[str, Any] = {}
        while any(p.poll() is None for p in loads):
            time.sleep(args.every)
            anon, file = _memory(hub.pid)
            t0 = time.perf_counter()
            health = client.get("/health").json()
            took = (time.perf_counter() - t0) * 1e3
            got = httpx.get(f"http://127.0.0.1:{sink_port}/stats").json()["total"]
            print(
                f"{time.monotonic() - started:6.0f}  {anon:8d}  {file:8d}  {_mib(db):6.0f}  "
                f"{_mib(Path(f'{db}-wal')):7.0f}  {took:10.1f}  {got:8d}",
                flush=True,
            )
        for proc, job in zip(loads, jobs, strict=True):
            assert proc.stdout is not None
            out = json.loads(proc.stdout.read())
            lat = out.get("lat_ms", {})
            print(
                f"{job['scenario']['kind']:12s} {out['rate']:9,.0f}/s  {out['ok']:,} of "
                f"{out['requests']:,} ok  p50 {lat.get('p50', 0):.2f}  p99 {lat.get('p99', 0):.2f} ms"
            )
        print("/health:", json.dumps(health))
    finally:
        for proc in loads:
            proc.kill()
        hub.send_signal(signal.SIGTERM)
        hub.wait(30)
        sink.kill()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
