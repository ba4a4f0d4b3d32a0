"""`python -m bench.run [--quick] [--only a,b,...] [--profile]`: the hub beside a bare baseline.

One run starts real uvicorn processes on free loopback ports (the hub on a fresh temporary
database, and a bare Starlette app with the same server settings), drives them from a
separate load-generator process (bench/load.py), and prints every figure beside its
baseline. The table also goes to bench/results/latest.md (raw numbers: latest.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson

from bench import data, iot, notify, temporal_path
from bench.load import BASE
from bench.servers import ROOT, Server

RESULTS = ROOT / "bench" / "results"
FIGURES = "abcdefghijklm"
LATENCY_FIGURES = "jklm"  # reads over the (d) city without a target: one client, sequential
UPSERT_BATCH = 1000
HISTORY_CHUNK = 1000
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Plan:
    """How much work each figure does (full run or --quick)."""

    duration: float  # seconds measured per throughput figure
    warmup: float  # seconds of warm-up before measuring
    connections: int  # concurrent keep-alive connections for (a)-(c)
    ids: int  # entities (b) and (c) cycle over
    city: int  # entities loaded for (d)/(e)
    history: int  # instances loaded for (f)
    samples: int  # sequential requests per (e) variant (f takes a third, at least 20)
    budget: float  # seconds a latency variant may take before it is cut short


FULL = Plan(
    duration=6.0,
    warmup=1.5,
    connections=32,
    ids=1000,
    city=100_000,
    history=100_000,
    samples=300,
    budget=20.0,
)
QUICK = Plan(
    duration=1.5,
    warmup=0.5,
    connections=32,
    ids=200,
    city=10_000,
    history=10_000,
    samples=40,
    budget=3.0,
)


# -- driving the load generator -----------------------------------------------------------------
def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def drive(server: Server, job: dict[str, Any]) -> dict[str, Any]:
    """Run one load-generator process against a server; add the CPU use of the server, of the
    load generator, and of everything else on the machine (a shared machine skews figures)."""
    job = {"port": server.port, **job}
    busy0 = machine_busy_seconds()
    cpu0 = server.cpu_seconds()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.load"],
        input=json.dumps(job).encode(),
        stdout=subprocess.PIPE,
        cwd=ROOT,
        timeout=400,
        check=True,
    )
    elapsed = time.perf_counter() - t0  # the whole load-generator process, start-up included
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = server.cpu_seconds()
    busy1 = machine_busy_seconds()
    res: dict[str, Any] = json.loads(proc.stdout)
    load = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    res["server_cpu"] = (cpu1 - cpu0) / max(res["wall_s"], 1e-9)  # the server idles during start-up
    res["load_cpu"] = load / elapsed
    res["other_cpu"] = max(0.0, busy1 - busy0 - (cpu1 - cpu0) - load) / elapsed
    if res["ok"] < res["requests"]:
        say(
            f"    ! {res['requests'] - res['ok']} non-2xx answers: {res['status']} {res['error_sample'][:1]}"
        )
    return res


def throughput(server: Server, plan: Plan, scenario: dict[str, Any]) -> dict[str, Any]:
    """Closed loop on plan.connections connections: requests/s after a warm-up."""
    job = {
        "scenario": scenario,
        "connections": plan.connections,
        "warmup": plan.warmup,
        "duration": plan.duration,
        "max_requests": 2_000_000,
    }
    return drive(server, job)


def sequential(server: Server, plan: Plan, paths: list[str], n: int) -> dict[str, Any]:
    """One client, one request at a time: latency percentiles. Bounded by plan.budget: no new
    request after it, and a request still unanswered budget seconds later is counted with
    its elapsed time (so the percentiles are then lower bounds)."""
    warm = max(3, n // 10)
    job = {
        "scenario": {"kind": "get", "paths": paths},
        "connections": 1,
        "skip": warm,
        "duration": plan.budget,
        "grace": plan.budget,
        "max_requests": n + warm,
    }
    return drive(server, job)


def fmt_rate(x: float, unit: str = "req/s") -> str:
    return f"{x:,.0f} {unit}"


def fmt_lat(res: dict[str, Any]) -> str:
    lat = res["lat_ms"]
    ge = "≥ " if res.get("unanswered") else ""
    return f"p50 {ge}{lat['p50']:,.2f} / p95 {ge}{lat['p95']:,.2f} / p99 {ge}{lat['p99']:,.2f} ms"


def entity_path(eid: str) -> str:
    return f"{BASE}/entities/{quote(eid, safe=':')}"


# -- the (d) baseline: raw SQLite ---------------------------------------------------------------
def sqlite_baseline(tmp: Path, n: int) -> dict[str, Any]:
    """executemany of the same JSON documents, 1,000 per transaction, the hub's pragmas."""
    from cityhub.store.sqlite.schema import PRAGMAS

    conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    conn.execute(
        "CREATE TABLE entities (pk INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)"
    )
    batches = []
    for start in range(0, n, UPSERT_BATCH):
        ents = (data.city_entity(i) for i in range(start, min(n, start + UPSERT_BATCH)))
        batches.append([(e["id"], orjson.dumps(e).decode()) for e in ents])
    t0 = time.perf_counter()
    for rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO entities (id, doc) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return {"entities": n, "elapsed": elapsed, "rate": n / elapsed}


# -- the run ---------------------------------------------------------------------------------------
def parse_only(text: str) -> set[str]:
    """`a,b` or `ab` or `a b` -> {'a', 'b'}."""
    return {ch for tok in text.replace(",", " ").split() for ch in tok.strip().lower()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.run", description=(__doc__ or "").split("\n")[0]
    )
    ap.add_argument("--quick", action="store_true", help="small N: a sanity run in under a minute")
    ap.add_argument(
        "--only", default=FIGURES, help="figures to run, e.g. a,b (default: all of a-m)"
    )
    ap.add_argument(
        "--profile", action="store_true", help="run the hub under cProfile and print its hot spots"
    )
    ap.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (databases, logs)"
    )
    args = ap.parse_args(argv)
    only = parse_only(args.only)
    if not only or only - set(FIGURES):
        ap.error(f"--only takes letters among {','.join(FIGURES)}")
    plan = QUICK if args.quick else FULL
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python -m bench.run", *given])
    t_start = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="cityhub-bench-"))
    out: dict[str, Any] = {"plan": asdict(plan), "only": sorted(only), "command": command}
    say(
        f"cityhub bench ({'quick' if args.quick else 'full'}; figures {','.join(sorted(only))}); temp dir {tmp}"
    )

    prof_path = RESULTS / "hub.prof"
    try:
        if only - {"g", "h"}:
            out.update(measure(plan, only, tmp, prof_path if args.profile else None))
        if "h" in only:
            out["notify"] = notify.measure(args.quick, tmp)
        if "g" in only:
            try:
                out["iot"] = iot.measure(args.quick, tmp)
            except RuntimeError as exc:  # no broker: the other figures still count
                say(f"  (g) skipped: {exc}")
                out["iot_error"] = str(exc)
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    out["wall_s"] = time.perf_counter() - t_start
    out["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out["machine"] = machine()
    table = render(out, only)
    print(table)
    (RESULTS / "latest.md").write_text(table + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    if args.profile:
        print(profile_report(prof_path))
    return 0


def measure(plan: Plan, only: set[str], tmp: Path, prof_path: Path | None) -> dict[str, Any]:
    """Start the hub, measure the bare baseline and then the hub; the hub is always stopped."""
    out: dict[str, Any] = {}
    hub_env = {"BENCH_HUB_DB": str(tmp / "hub.db")}
    if prof_path:  # the same server with cProfile inside (slower: for hot spots, not figures)
        prof_path.unlink(missing_ok=True)
        hub_env["BENCH_PROFILE"] = str(prof_path)
    hub = Server("hub", "bench.servers:hub_app", hub_env, tmp / "hub.log")
    try:
        hub.wait_ready()
        out["server_cmd"] = " ".join(shlex.quote(c) for c in hub.args)
        ids = [data.city_entity(i, "getset")["id"] for i in range(plan.ids)]
        get_paths = [entity_path(e) for e in ids]
        with httpx.Client(base_url=hub.url, timeout=60.0) as client:
            # The entities (b) and (c) read and patch, and the body the bare GET answers with.
            batch = data.city_batch(0, plan.ids, "getset")
            client.post(
                f"{BASE}/entityOperations/upsert", content=batch, headers=JSON_HEADERS
            ).raise_for_status()
            sample = client.get(get_paths[0])
            sample.raise_for_status()
            (tmp / "get_body.json").write_bytes(sample.content)
        out["bare"] = run_bare(plan, only, tmp, get_paths)
        out["hub"] = run_hub(hub, plan, only, tmp, ids, get_paths)
        out["hub_restarts"] = hub.restarts
    finally:
        hub.stop()
        out["memory_kib"] = {**hub.last_memory, "VmHWM": hub.memory_kib()["VmHWM"]}
    return out


def run_bare(plan: Plan, only: set[str], tmp: Path, get_paths: list[str]) -> dict[str, Any]:
    """The bare Starlette baseline: the same routes, no NGSI-LD work."""
    stats: dict[str, Any] = {}
    if not only & set("abcef" + LATENCY_FIGURES):
        return stats
    say("  baseline: bare Starlette, same uvicorn settings")
    env = {"BENCH_GET_BODY": str(tmp / "get_body.json")}
    bare = Server("bare", "bench.baseline_app:create", env, tmp / "bare.log")
    try:
        bare.wait_ready()
        if "a" in only:
            stats["a"] = throughput(bare, plan, {"kind": "post_entity", "prefix": "bare"})
            say(f"    POST  {fmt_rate(stats['a']['ok_rate'])}")
        if "b" in only:
            stats["b"] = throughput(bare, plan, {"kind": "get", "paths": get_paths})
            say(f"    GET   {fmt_rate(stats['b']['ok_rate'])}")
        if "c" in only:
            ids = [p.rsplit("/", 1)[1] for p in get_paths]
            stats["c"] = throughput(bare, plan, {"kind": "patch_attrs", "ids": ids})
            say(f"    PATCH {fmt_rate(stats['c']['ok_rate'])}")
        if only & set("ef" + LATENCY_FIGURES):
            stats["seq"] = sequential(bare, plan, get_paths, 2000)
            say(f"    GET, one client, sequential: {fmt_lat(stats['seq'])}")
    finally:
        bare.stop()
    return stats


def run_hub(
    hub: Server, plan: Plan, only: set[str], tmp: Path, ids: list[str], get_paths: list[str]
) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    say("  hub")
    if "a" in only:
        stats["a"] = throughput(hub, plan, {"kind": "post_entity", "prefix": "hub"})
        say(f"    (a) POST /entities               {fmt_rate(stats['a']['ok_rate'])}")
    if "b" in only:
        stats["b"] = throughput(hub, plan, {"kind": "get", "paths": get_paths})
        say(f"    (b) GET /entities/{{id}}           {fmt_rate(stats['b']['ok_rate'])}")
    if "c" in only:
        stats["c"] = throughput(
            hub, plan, {"kind": "patch_attrs", "ids": [quote(i, safe=":") for i in ids]}
        )
        say(f"    (c) PATCH /entities/{{id}}/attrs   {fmt_rate(stats['c']['ok_rate'])}")
    if only & set("dei" + LATENCY_FIGURES):
        stats["d"] = load_city(hub, plan)
        say(
            f"    (d) batch upsert                 {fmt_rate(stats['d']['entities_per_s'], 'entities/s')}"
        )
        if "d" in only:
            stats["d_raw"] = sqlite_baseline(tmp, plan.city)
            say(
                f"    (d) raw SQLite executemany       {fmt_rate(stats['d_raw']['rate'], 'entities/s')}"
            )
    if "e" in only:
        stats["e"] = queries(hub, plan)
    if "f" in only:
        stats["f"] = temporal(hub, plan)
    if "i" in only:
        stats["i"] = under_queries(hub, plan, get_paths)
    if "j" in only:
        stats["j"] = latencies(hub, plan, "j", discovery_paths())
    if "k" in only:
        stats["k"] = latencies(hub, plan, "k", temporal_paths())
    if "l" in only:
        stats["l"] = latencies(hub, plan, "l", untyped_paths())
    if "m" in only:
        stats["m"] = latencies(hub, plan, "m", geo_paths())
    with httpx.Client(base_url=hub.url, timeout=10.0) as client:
        r = client.get(f"{BASE}/types")
        stats["types"] = r.json() if r.status_code == 200 else None
    return stats


def load_city(hub: Server, plan: Plan) -> dict[str, Any]:
    """(d): new city entities by batch upsert, 1,000 per request, two connections."""
    job = {
        "scenario": {"kind": "upsert", "start": 0, "batch": UPSERT_BATCH, "prefix": "city"},
        "connections": 2,
        "duration": 280.0,
        "max_requests": math.ceil(plan.city / UPSERT_BATCH),
        "progress": {
            "label": "(d) loading",
            "per_request": UPSERT_BATCH,
            "total": plan.city,
            "unit": "entities",
        },
    }
    res = drive(hub, job)
    res["entities_per_s"] = res["ok_rate"] * UPSERT_BATCH
    return res


SELECTIVE = 'temperature>38;status=="alarm"'
UNSELECTIVE = 'temperature>5;status=="ok"'


def query_variants() -> list[tuple[str, dict[str, str]]]:
    """(e): type + q, selective and unselective, with and without count=true."""
    return [
        ("selective", {"q": SELECTIVE, "limit": "20"}),
        ("unselective", {"q": UNSELECTIVE, "limit": "20"}),
        ("selective, count=true", {"q": SELECTIVE, "limit": "20", "count": "true"}),
        ("unselective, count=true", {"q": UNSELECTIVE, "limit": "20", "count": "true"}),
    ]


def expected_matches(n: int) -> dict[str, int]:
    """How many of the n city entities of one type (the first) each q matches."""
    sel = unsel = 0
    for i in range(0, n, len(data.TYPES)):
        e = data.city_entity(i)
        t, s = e["temperature"]["value"], e["status"]["value"]
        sel += t > 38 and s == "alarm"
        unsel += t > 5 and s == "ok"
    return {SELECTIVE: sel, UNSELECTIVE: unsel}


def queries(hub: Server, plan: Plan) -> list[dict[str, Any]]:
    """(e): each variant cycles over the five types, one client, sequential."""
    matches = expected_matches(plan.city)
    rows = []
    for label, params in query_variants():
        paths = [f"{BASE}/entities?" + urlencode({"type": t, **params}) for t in data.TYPES]
        res = sequential(hub, plan, paths, plan.samples)
        res.update(label=label, matches=matches[params["q"]])
        res["query"] = "type=T&" + "&".join(f"{k}={v}" for k, v in params.items())
        rows.append(res)
        say(f"    (e) {label:24} {fmt_lat(res)}  (~{res['matches']:,} matches per type)")
        if res["unanswered"]:
            say(
                f"        cut short after {plan.budget:g} s + {plan.budget:g} s; restarting the stuck hub"
            )
            hub.restart()
    return rows


def broad_queries() -> list[str]:
    """(i): what a dashboard asks for: a thousand entities of a type, and the type overview."""
    paths = [
        f"{BASE}/entities?" + urlencode({"type": t, "limit": "1000", "options": "keyValues"})
        for t in data.TYPES
    ]
    return [*paths, f"{BASE}/types?details=true"]


def under_queries(hub: Server, plan: Plan, get_paths: list[str]) -> dict[str, Any]:
    """(i): reads by id from one client, alone and then while two clients run broad queries
    over the (d) city: how much a long read holds up the others."""
    n = max(100, plan.samples)
    alone = sequential(hub, plan, get_paths, n)
    job = {
        "scenario": {"kind": "get", "paths": broad_queries()},
        "connections": 2,
        "warmup": 1.0,
        "duration": plan.budget * 1.5,
        "max_requests": 1_000_000,
    }
    with ThreadPoolExecutor(1) as pool:
        background = pool.submit(drive, hub, job)
        time.sleep(1.5)  # the load generator is up and the first broad queries run
        busy = sequential(hub, plan, get_paths, n)
        broad = background.result()
    say(f"    (i) GET by id alone              {fmt_lat(alone)}")
    say(
        f"    (i) GET by id under queries      {fmt_lat(busy)}  ({broad['ok_rate']:,.1f} broad queries/s)"
    )
    return {"alone": alone, "busy": busy, "broad": broad}


def discovery_paths() -> list[tuple[str, list[str]]]:
    """(j): what a data catalogue or a dashboard's type picker asks first."""
    return [
        ("/types?details=true", [f"{BASE}/types?details=true"]),
        ("/attributes?details=true", [f"{BASE}/attributes?details=true"]),
        ("/types/{T}", [f"{BASE}/types/{t}" for t in data.TYPES]),
        ("/attributes/{A}", [f"{BASE}/attributes/{a}" for a in ("temperature", "status")]),
    ]


def _variants(
    path: str, variants: list[tuple[dict[str, str], list[dict[str, str]]]]
) -> list[tuple[str, list[str]]]:
    """(label, URLs) per variant: the label shows its parameters, and each URL overrides some
    of them (a real type for the placeholder T)."""
    return [
        (
            f"{path}?" + "&".join(f"{k}={v}" for k, v in params.items()),
            [f"{BASE}{path}?" + urlencode({**params, **o}) for o in overrides],
        )
        for params, overrides in variants
    ]


def temporal_paths() -> list[tuple[str, list[str]]]:
    """(k): the history of a type over the (d) city (every created entity has one)."""
    each_type = [{"type": t} for t in data.TYPES]
    return _variants(
        "/temporal/entities",
        [
            ({"type": "T", "lastN": "1", "limit": "20"}, each_type),
            ({"type": "T", "lastN": "1", "limit": "20", "count": "true"}, each_type),
            ({"type": "T", "q": "temperature>38", "limit": "20"}, each_type),
            ({"type": "T", "q": "temperature>38", "limit": "20", "count": "true"}, each_type),
        ],
    )


def untyped_paths() -> list[tuple[str, list[str]]]:
    """(l): queries that no single type drives: no type, or a list of types."""
    pairs = [{"type": ",".join(data.TYPES[i : i + 2])} for i in range(len(data.TYPES) - 1)]
    return _variants(
        "/entities",
        [
            ({"q": "temperature>38", "limit": "20", "count": "true"}, [{}]),
            ({"attrs": "status", "limit": "20", "count": "true"}, [{}]),
            ({"type": "T1,T2", "limit": "20"}, pairs),
            ({"type": "T1,T2", "q": 'status=="alarm"', "limit": "20", "count": "true"}, pairs),
        ],
    )


# the (d) city's points lie in [2.25, 2.45] x [48.8, 48.9]
CITY_POLYGON = "[[[2.2,48.75],[2.5,48.75],[2.5,48.95],[2.2,48.95],[2.2,48.75]]]"
BLOCK_POLYGON = "[[[2.34,48.84],[2.36,48.84],[2.36,48.86],[2.34,48.86],[2.34,48.84]]]"


def geo_paths() -> list[tuple[str, list[str]]]:
    """(m): geoQ over the (d) city: a map of a whole town (every point of a type inside the
    boundary), a block, and what is near a place."""
    each_type = [{"type": t} for t in data.TYPES]
    within = {"geometry": "Polygon", "georel": "within"}
    near = {"geometry": "Point", "georel": "near;maxDistance==500", "coordinates": "[2.35,48.85]"}
    return _variants(
        "/entities",
        [
            ({"type": "T", **within, "coordinates": CITY_POLYGON, "limit": "20"}, each_type),
            (
                {
                    "type": "T",
                    **within,
                    "coordinates": CITY_POLYGON,
                    "limit": "20",
                    "count": "true",
                },
                each_type,
            ),
            ({**within, "coordinates": BLOCK_POLYGON, "limit": "20", "count": "true"}, [{}]),
            ({"type": "T", **near, "limit": "20", "count": "true"}, each_type),
        ],
    )


def latencies(
    hub: Server, plan: Plan, figure: str, variants: list[tuple[str, list[str]]]
) -> list[dict[str, Any]]:
    """(j)-(m): reads over the (d) city, one client, sequential, each variant on its own."""
    rows = []
    for label, paths in variants:
        res = sequential(hub, plan, paths, plan.samples)
        res["label"] = label
        rows.append(res)
        say(f"    ({figure}) {label:24} {fmt_lat(res)}")
    return rows


def temporal(hub: Server, plan: Plan) -> dict[str, Any]:
    """(f): plan.history instances of one attribute, then aggregatedValues queries."""
    first = orjson.loads(data.history_chunk(0, HISTORY_CHUNK, plan.history))
    body = orjson.dumps({"id": data.TEMPORAL_ID, "type": data.TEMPORAL_TYPE, **first})
    with httpx.Client(base_url=hub.url, timeout=60.0) as client:
        client.post(
            f"{BASE}/temporal/entities", content=body, headers=JSON_HEADERS
        ).raise_for_status()
    rest = math.ceil(plan.history / HISTORY_CHUNK) - 1
    job = {
        "scenario": {
            "kind": "temporal_append",
            "eid": quote(data.TEMPORAL_ID, safe=":"),
            "start": HISTORY_CHUNK,
            "chunk": HISTORY_CHUNK,
            "total": plan.history,
        },
        "connections": 2,
        "duration": 280.0,
        "max_requests": rest,
        "progress": {
            "label": "(f) loading",
            "per_request": HISTORY_CHUNK,
            "total": rest * HISTORY_CHUNK,
            "unit": "instances",
        },
    }
    load = drive(hub, job)
    load["instances_per_s"] = load["ok_rate"] * HISTORY_CHUNK
    say(f"    (f) history loading              {fmt_rate(load['instances_per_s'], 'instances/s')}")
    rows = []
    for label, period in (("PT1H periods", "PT1H"), ("P1D periods", "P1D")):
        where, query = temporal_path.query_path(period)
        path = f"{where}?{query.decode()}"
        with httpx.Client(base_url=hub.url, timeout=60.0) as client:
            probe = client.get(path)
        probe.raise_for_status()
        res = sequential(hub, plan, [path], max(20, plan.samples // 3))
        res.update(label=label, buckets=len(probe.json().get("temperature", {}).get("avg", [])))
        res["bytes"] = len(probe.content)
        rows.append(res)
        say(
            f"    (f) {label:24} {fmt_lat(res)}  ({res['buckets']:,} periods, {res['bytes']:,} bytes)"
        )
        if res["unanswered"]:
            hub.restart()
    return {"load": load, "queries": rows}


# -- report ----------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": nproc or str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git": git or "?",
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "**FAIL**"


def render(out: dict[str, Any], only: set[str]) -> str:
    hub, bare, plan = out.get("hub", {}), out.get("bare", {}), out["plan"]
    m = out["machine"]
    lines = [
        f"# cityhub bench: {out['date']}",
        "",
        f"- command: `{out['command']}`",
        f"- plan: {plan_text(plan)}",
        f"- machine: `nproc` = {m['nproc']}, {m['cpu']}, Python {m['python']}, Linux {m['kernel']}",
        f"- code: `git describe --always --dirty` = {m.get('git', '?')}",
        f"- servers (hub and bare baseline alike): `python -m bench.launch {out.get('server_cmd', '')}`",
        "",
        "| | figure | hub | baseline | hub / baseline | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, what, target in (
        ("a", "POST /ngsi-ld/v1/entities", 5000.0),
        ("b", "GET /ngsi-ld/v1/entities/{id}", None),
        ("c", "PATCH /ngsi-ld/v1/entities/{id}/attrs", 5000.0),
    ):
        if key not in only or key not in hub:
            continue
        h, b = hub[key]["ok_rate"], bare[key]["ok_rate"]
        ratio = h / b if b else math.nan
        tgt, ok = (
            ("≥ 0.5 of bare", ratio >= 0.5)
            if target is None
            else (f"≥ {target:,.0f} req/s", h >= target)
        )
        lines.append(
            f"| ({key}) | {what} | {fmt_rate(h)} | {fmt_rate(b)} (bare Starlette) | {ratio:.2f} | {tgt} | "
            f"{verdict(ok)} |"
        )
    if "d" in only and "d_raw" in hub:
        d, raw = hub["d"]["entities_per_s"], hub["d_raw"]["rate"]
        lines.append(
            f"| (d) | POST /ngsi-ld/v1/entityOperations/upsert, {UPSERT_BATCH:,} new entities per request | "
            f"{fmt_rate(d, 'entities/s')} | {fmt_rate(raw, 'entities/s')} (raw SQLite executemany) | "
            f"{d / raw:.3f} | ≥ 50,000 entities/s | {verdict(d >= 50_000)} |"
        )
    seq = bare.get("seq", {}).get("lat_ms", {}).get("p95", math.nan)
    base_txt = f"p95 {seq:.3f} ms (bare GET)"
    if "e" in only:
        for row in hub["e"]:
            p95 = row["lat_ms"]["p95"]
            lines.append(
                f"| (e) | `{row['query']}` at {plan['city']:,} entities ({row['label']}; ~{row['matches']:,} matches "
                f"per type) | {fmt_lat(row)} | {base_txt} | {p95 / seq:,.0f} | p95 ≤ 20 ms | {verdict(p95 <= 20)} |"
            )
    if "f" in only:
        for row in hub["f"]["queries"]:
            p95 = row["lat_ms"]["p95"]
            lines.append(
                f"| (f) | aggregatedValues avg,max,min,sum over {plan['history']:,} instances, {row['label']} "
                f"({row['buckets']:,} periods, {row['bytes'] / 1024:,.0f} KiB) | {fmt_lat(row)} | {base_txt} | "
                f"{p95 / seq:,.0f} | p95 ≤ 50 ms | {verdict(p95 <= 50)} |"
            )
    if "i" in only and "i" in hub:
        alone, busy = hub["i"]["alone"]["lat_ms"]["p99"], hub["i"]["busy"]["lat_ms"]["p99"]
        lines.append(
            f"| (i) | GET /ngsi-ld/v1/entities/{{id}}, one client, while 2 clients run broad queries "
            f"({hub['i']['broad']['ok_rate']:,.1f}/s: 1,000 entities of a type, /types?details=true) | "
            f"{fmt_lat(hub['i']['busy'])} | p99 {alone:,.2f} ms (the same reads alone) | {busy / alone:,.1f} | — | — |"
        )
    for fig in LATENCY_FIGURES:
        for row in hub.get(fig, []) if fig in only else []:
            p95 = row["lat_ms"]["p95"]
            lines.append(
                f"| ({fig}) | GET /ngsi-ld/v1{row['label']} at {plan['city']:,} entities | {fmt_lat(row)} | "
                f"{base_txt} | {p95 / seq:,.0f} | — | — |"
            )
    if "g" in only and "iot" in out:
        lines += iot.render_rows(out["iot"])
    elif "g" in only:
        lines.append(f"| (g) | IoT ingestion | not measured: {out.get('iot_error', '?')} | | | | |")
    if "h" in only and "notify" in out:
        lines += notify.render_rows(out["notify"])
    mem = out.get("memory_kib", {})
    lines.append("")
    if mem:
        lines.append(
            f"- hub peak RSS (VmHWM of the server process): {mem.get('VmHWM', 0) / 1024:,.0f} MiB; at the end "
            f"{mem.get('RssAnon', 0) / 1024:,.0f} MiB anonymous + {mem.get('RssFile', 0) / 1024:,.0f} MiB file-backed "
            "(SQLite mmap of the database)"
        )
    lines.append(f"- total wall time: {out['wall_s']:,.0f} s")
    if out.get("hub_restarts"):
        lines.append(
            f"- the hub was restarted {out['hub_restarts']} time(s) after latency runs cut short "
            f"(≥: a request still unanswered after {plan['budget'] * 2:g} s counts with its elapsed time)"
        )
    if "d" in only and "d" in hub:
        lines.append(f"- (d) loaded {plan['city']:,} entities in {hub['d']['window_s']:,.1f} s")
    if "f" in only:
        ld = hub["f"]["load"]
        lines.append(
            f"- (f) history loading: {fmt_rate(ld['instances_per_s'], 'instances/s')} "
            f"(POST /temporal/entities/{{id}}/attrs, {HISTORY_CHUNK:,} instances per request, 2 connections)"
        )
    lines += [
        "",
        "Each run: CPU use of the server (hub or bare), of the load generator, and of any other process on the "
        "machine (1.00 = one core busy; 2 cores in all).",
        "",
        "| run | requests | non-2xx | p50 ms | p99 ms | server CPU | load-gen CPU | other CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, res in all_runs(out):
        lat = res["lat_ms"]
        lines.append(
            f"| {name} | {res['requests']:,} | {res['requests'] - res['ok']:,} | {lat['p50']:,.2f} | "
            f"{lat['p99']:,.2f} | {res['server_cpu']:.2f} | {res['load_cpu']:.2f} | {res['other_cpu']:.2f} |"
        )
    if "g" in only and "iot" in out:
        lines += iot.render_notes(out["iot"])
    return "\n".join(lines)


def all_runs(out: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    runs = [(f"bare {k}", v) for k, v in out.get("bare", {}).items()]
    hub = out.get("hub", {})
    runs += [(f"hub {k}", hub[k]) for k in "abcd" if k in hub]
    runs += [(f"hub e {row['label']}", row) for row in hub.get("e", [])]
    if "f" in hub:
        runs.append(("hub f loading", hub["f"]["load"]))
        runs += [(f"hub f {row['label']}", row) for row in hub["f"]["queries"]]
    if "i" in hub:
        runs += [(f"hub i {k}", hub["i"][k]) for k in ("alone", "busy", "broad")]
    runs += [
        (f"hub {fig} {row['label']}", row) for fig in LATENCY_FIGURES for row in hub.get(fig, [])
    ]
    return runs


def plan_text(plan: dict[str, Any]) -> str:
    return (
        f"(a)-(c) {plan['duration']:g} s measured after {plan['warmup']:g} s warm-up on {plan['connections']} "
        f"keep-alive connections; (d)/(e) {plan['city']:,} city entities (5 types); (f) {plan['history']:,} "
        f"instances; latency: one client, {plan['samples']} sequential requests per (e) variant, "
        f"cut at {plan['budget']:g} s"
    )


def profile_report(path: Path, top: int = 30) -> str:
    """The hub's hottest functions (cProfile: by own time, then cumulative within cityhub)."""
    import io
    import pstats

    if not path.exists():
        return f"(no profile at {path}: a hub killed after a timeout writes none)"
    buf = io.StringIO()
    stats = pstats.Stats(str(path), stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats("cityhub", top)
    return buf.getvalue()


if __name__ == "__main__":
    raise SystemExit(main())
