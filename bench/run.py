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
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson

from bench import data
from bench.load import BASE, summarise
from bench.servers import ROOT, Server

RESULTS = ROOT / "bench" / "results"
FIGURES = "abcdef"
UPSERT_BATCH = 1000
HISTORY_CHUNK = 1000


@dataclass(frozen=True)
class Plan:
    """How much work each figure does (full run or --quick)."""

    duration: float  # seconds measured per throughput figure
    warmup: float  # seconds of warm-up before measuring
    connections: int  # concurrent keep-alive connections for (a)-(c)
    ids: int  # entities (b) and (c) cycle over
    city: int  # entities loaded for (d)/(e)
    history: int  # instances loaded for (f)
    samples: int  # sequential requests per latency variant


FULL = Plan(duration=6.0, warmup=1.5, connections=32, ids=1000, city=100_000, history=100_000, samples=300)
QUICK = Plan(duration=1.5, warmup=0.5, connections=32, ids=200, city=10_000, history=10_000, samples=40)


# -- helpers -------------------------------------------------------------------------------------
def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def drive(server: Server, job: dict[str, Any]) -> dict[str, Any]:
    """Run one load-generator process against a server; add the server's CPU use."""
    job = {"port": server.port, **job}
    cpu0 = server.cpu_seconds()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.load"],
        input=json.dumps(job).encode(),
        stdout=subprocess.PIPE,
        cwd=ROOT,
        timeout=400,
        check=True,
    )
    res: dict[str, Any] = json.loads(proc.stdout)
    res["server_cpu"] = (server.cpu_seconds() - cpu0) / max(res["wall_s"], 1e-9)
    res["load_cpu"] = res["cpu_s"] / max(res["wall_s"], 1e-9)
    if res["ok"] < res["requests"]:
        say(f"    ! {res['requests'] - res['ok']} non-2xx answers: {res['status']} {res['error_sample'][:1]}")
    return res


def throughput(server: Server, plan: Plan, scenario: dict[str, Any], conns: int | None = None) -> dict[str, Any]:
    return drive(
        server,
        {
            "scenario": scenario,
            "connections": conns or plan.connections,
            "warmup": plan.warmup,
            "duration": plan.duration,
            "max_requests": 2_000_000,
        },
    )


def sequential(server: Server, plan: Plan, paths: list[str], n: int | None = None) -> dict[str, Any]:
    """One client, one request at a time: latency percentiles."""
    n = n or plan.samples
    warm = max(5, n // 10)
    return drive(
        server,
        {
            "scenario": {"kind": "get", "paths": paths},
            "connections": 1,
            "warmup": 0.0,
            "skip": warm,
            "duration": 120.0,
            "max_requests": n + warm,
        },
    )


def fmt_rate(x: float, unit: str = "req/s") -> str:
    return f"{x:,.0f} {unit}"


def fmt_lat(lat: dict[str, float]) -> str:
    return f"p50 {lat['p50']:.2f} / p95 {lat['p95']:.2f} / p99 {lat['p99']:.2f} ms"


def entity_path(eid: str) -> str:
    return f"{BASE}/entities/{quote(eid, safe=':')}"


# -- the (d) baseline: raw SQLite ---------------------------------------------------------------
def sqlite_baseline(tmp: Path, n: int) -> dict[str, Any]:
    """executemany of the same JSON documents, 1,000 per transaction, hub pragmas."""
    from cityhub.store.sqlite.schema import PRAGMAS

    conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    conn.execute(
        "CREATE TABLE entities (pk INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)"
    )
    batches = [
        [(e["id"], orjson.dumps(e).decode()) for e in (data.city_entity(i) for i in range(s, min(n, s + UPSERT_BATCH)))]
        for s in range(0, n, UPSERT_BATCH)
    ]
    t0 = time.perf_counter()
    for rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO entities (id, doc) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return {"entities": n, "elapsed": elapsed, "rate": n / elapsed}


# -- the run ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small N: a sanity run in under a minute")
    ap.add_argument("--only", default=FIGURES, help="comma-separated figures to run, e.g. a,b (default all)")
    ap.add_argument("--profile", action="store_true", help="run the hub under cProfile; print its hot spots")
    ap.add_argument("--keep", action="store_true", help="keep the temporary database directory")
    args = ap.parse_args(argv)
    only = {ch for tok in args.only.replace(",", " ").split() for ch in tok.strip().lower()}
    if not only or only - set(FIGURES):
        ap.error(f"--only takes letters among {','.join(FIGURES)}")
    plan = QUICK if args.quick else FULL
    command = "python -m bench.run" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    t_start = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="cityhub-bench-"))
    out: dict[str, Any] = {"plan": plan.__dict__, "only": sorted(only), "command": command}

    say(f"cityhub bench ({'quick' if args.quick else 'full'}; figures {','.join(sorted(only))}); temp dir {tmp}")
    hub_env = {"BENCH_HUB_DB": str(tmp / "hub.db")}
    prof_path = RESULTS / "hub.prof"
    # --profile: the same server command under cProfile (slower; for hot spots, not for figures)
    wrap = ["-m", "cProfile", "-o", str(prof_path)] if args.profile else None
    hub = Server("hub", "bench.servers:hub_app", hub_env, tmp / "hub.log", wrap)
    hub.wait_ready()
    out["server_cmd"] = " ".join(shlex.quote(c) for c in hub.args)
    client = httpx.Client(base_url=hub.url, timeout=120.0)
    try:
        # Entities that (b) and (c) read and patch; also the body the bare GET answers with.
        ids = [data.city_entity(i, "getset")["id"] for i in range(plan.ids)]
        r = client.post(f"{BASE}/entityOperations/upsert", content=data.city_batch(0, plan.ids, "getset"),
                        headers={"Content-Type": "application/json"})
        r.raise_for_status()
        sample = client.get(entity_path(ids[0]))
        sample.raise_for_status()
        (tmp / "get_body.json").write_bytes(sample.content)
        get_paths = [entity_path(e) for e in ids]

        bare_stats: dict[str, Any] = {}
        if only & set("abcef"):
            say("  baseline: bare Starlette on the same uvicorn settings")
            bare = Server("bare", "bench.baseline_app:create", {"BENCH_GET_BODY": str(tmp / "get_body.json")},
                          tmp / "bare.log")
            try:
                bare.wait_ready()
                if "a" in only:
                    bare_stats["a"] = throughput(bare, plan, {"kind": "post_entity", "prefix": "bare"})
                    say(f"    POST  {fmt_rate(bare_stats['a']['ok_rate'])}")
                if "b" in only:
                    bare_stats["b"] = throughput(bare, plan, {"kind": "get", "paths": get_paths})
                    say(f"    GET   {fmt_rate(bare_stats['b']['ok_rate'])}")
                if "c" in only:
                    bare_stats["c"] = throughput(bare, plan, {"kind": "patch_attrs", "ids": ids})
                    say(f"    PATCH {fmt_rate(bare_stats['c']['ok_rate'])}")
                if only & set("ef"):
                    bare_stats["seq"] = sequential(bare, plan, get_paths, plan.samples * 2)
                    say(f"    GET sequential {fmt_lat(bare_stats['seq']['lat_ms'])}")
            finally:
                bare.stop()
        out["bare"] = bare_stats

        hub_stats: dict[str, Any] = {}
        say("  hub")
        if "a" in only:
            hub_stats["a"] = throughput(hub, plan, {"kind": "post_entity", "prefix": "hub"})
            say(f"    (a) POST /entities         {fmt_rate(hub_stats['a']['ok_rate'])}")
        if "b" in only:
            hub_stats["b"] = throughput(hub, plan, {"kind": "get", "paths": get_paths})
            say(f"    (b) GET /entities/{{id}}     {fmt_rate(hub_stats['b']['ok_rate'])}")
        if "c" in only:
            hub_stats["c"] = throughput(hub, plan, {"kind": "patch_attrs", "ids": ids})
            say(f"    (c) PATCH /entities/{{id}}/attrs {fmt_rate(hub_stats['c']['ok_rate'])}")
        if only & set("de"):
            hub_stats["d"] = _load_city(hub, plan)
            say(f"    (d) batch upsert           {fmt_rate(hub_stats['d']['entities_per_s'], 'entities/s')}")
            if "d" in only:
                hub_stats["d_raw"] = sqlite_baseline(tmp, plan.city)
                say(f"    (d) raw SQLite baseline    {fmt_rate(hub_stats['d_raw']['rate'], 'entities/s')}")
        if "e" in only:
            hub_stats["e"] = _queries(hub, client, plan)
        if "f" in only:
            hub_stats["f"] = _temporal(hub, client, plan)
        out["hub"] = hub_stats
        out["entities"] = client.get(f"{BASE}/entities", params={"type": ",".join(data.TYPES), "count": "true",
                                                                   "limit": "0"}).headers.get("NGSILD-Results-Count")
        out["memory_kib"] = hub.memory_kib()
    finally:
        client.close()
        hub.stop()
    out["wall_s"] = time.perf_counter() - t_start
    out["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out["machine"] = machine()
    table = render(out, only)
    print(table)
    (RESULTS / "latest.md").write_text(table + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    if args.profile:
        print(profile_report(prof_path))
    if not args.keep:
        for p in sorted(tmp.iterdir()):
            p.unlink()
        tmp.rmdir()
    return 0


def _load_city(hub: Server, plan: Plan) -> dict[str, Any]:
    """(d): batch upserts of 1,000 city entities each, two connections, until plan.city loaded."""
    n_req = math.ceil(plan.city / UPSERT_BATCH)
    res = drive(
        hub,
        {
            "scenario": {"kind": "upsert", "start": 0, "batch": UPSERT_BATCH, "prefix": "city"},
            "connections": 2,
            "warmup": 0.0,
            "duration": 280.0,
            "max_requests": n_req,
            "progress": {"label": "(d) loading city", "per_request": UPSERT_BATCH, "total": plan.city,
                         "unit": "entities"},
        },
    )
    res["entities_per_s"] = res["ok_rate"] * UPSERT_BATCH
    return res


def query_variants() -> list[tuple[str, dict[str, str]]]:
    """(e): type + q, selective and unselective, with and without count=true."""
    sel = 'temperature>38;status=="alarm"'
    unsel = 'temperature>5;status=="ok"'
    return [
        ("selective", {"q": sel, "limit": "20"}),
        ("unselective", {"q": unsel, "limit": "20"}),
        ("selective, count=true", {"q": sel, "limit": "20", "count": "true"}),
        ("unselective, count=true", {"q": unsel, "limit": "20", "count": "true"}),
    ]


def _queries(hub: Server, client: httpx.Client, plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for label, params in query_variants():
        paths = [f"{BASE}/entities?" + urlencode({"type": t, **params}) for t in data.TYPES]
        probe = client.get(paths[0].replace("&count=true", "") + "&count=true")
        probe.raise_for_status()
        res = sequential(hub, plan, paths)
        res["label"] = label
        res["query"] = "type=T&" + "&".join(f"{k}={v}" for k, v in params.items())
        res["matches"] = int(probe.headers.get("NGSILD-Results-Count", "0"))
        res["returned"] = len(probe.json())
        rows.append(res)
        say(f"    (e) {label:24} {fmt_lat(res['lat_ms'])}  ({res['matches']:,} matches of type {data.TYPES[0]})")
    return rows


def _temporal(hub: Server, client: httpx.Client, plan: Plan) -> dict[str, Any]:
    """(f): plan.history instances of one attribute, then aggregatedValues queries."""
    first = orjson.loads(data.history_chunk(0, HISTORY_CHUNK, plan.history))
    r = client.post(f"{BASE}/temporal/entities", content=orjson.dumps(
        {"id": data.TEMPORAL_ID, "type": data.TEMPORAL_TYPE, **first}), headers={"Content-Type": "application/json"})
    r.raise_for_status()
    rest = math.ceil(plan.history / HISTORY_CHUNK) - 1
    load = drive(
        hub,
        {
            "scenario": {"kind": "temporal_append", "eid": data.TEMPORAL_ID, "start": HISTORY_CHUNK,
                         "chunk": HISTORY_CHUNK, "total": plan.history},
            "connections": 2,
            "warmup": 0.0,
            "duration": 280.0,
            "max_requests": rest,
            "progress": {"label": "(f) loading history", "per_request": HISTORY_CHUNK,
                         "total": plan.history - HISTORY_CHUNK, "unit": "instances"},
        },
    )
    load["instances_per_s"] = load["ok_rate"] * HISTORY_CHUNK
    t_at, t_end = data.temporal_window()
    rows = []
    for label, period in (("PT1H buckets (~2,400)", "PT1H"), ("P1D buckets (~100)", "P1D")):
        path = f"{BASE}/temporal/entities/{quote(data.TEMPORAL_ID, safe=':')}?" + urlencode(
            {
                "format": "aggregatedValues",
                "aggrMethods": "avg,max,min,sum",
                "aggrPeriodDuration": period,
                "attrs": "temperature",
                "timerel": "between",
                "timeAt": t_at,
                "endTimeAt": t_end,
            }
        )
        probe = client.get(path)
        probe.raise_for_status()
        body = probe.json()
        res = sequential(hub, plan, [path], max(20, plan.samples // 3))
        res["label"] = label
        res["buckets"] = len(body.get("temperature", {}).get("avg", []))
        res["bytes"] = len(probe.content)
        rows.append(res)
        say(f"    (f) {label:24} {fmt_lat(res['lat_ms'])}  ({res['buckets']:,} buckets, {res['bytes']:,} bytes)")
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
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "**FAIL**"


def render(out: dict[str, Any], only: set[str]) -> str:
    hub, bare = out.get("hub", {}), out.get("bare", {})
    m = out["machine"]
    lines = [
        f"# cityhub bench: {out['date']}",
        "",
        f"- command: `{out['command']}` (plan: {_plan_text(out['plan'])})",
        f"- machine: {m['nproc']} cores ({m['cpu']}), Python {m['python']}, Linux {m['kernel']}",
        f"- servers: `uvicorn {out.get('server_cmd', '')}` for both hub and bare baseline",
        "",
        "| | figure | hub | baseline | hub / baseline | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, what, target in (
        ("a", "POST /ngsi-ld/v1/entities", 5000.0),
        ("b", "GET /ngsi-ld/v1/entities/{id}", None),
        ("c", "PATCH /ngsi-ld/v1/entities/{id}/attrs", 5000.0),
    ):
        if key not in only:
            continue
        h, b = hub[key]["ok_rate"], bare[key]["ok_rate"]
        ratio = h / b if b else math.nan
        if target is None:
            tgt, ok = "≥ 0.5 × bare", ratio >= 0.5
        else:
            tgt, ok = f"≥ {target:,.0f} req/s", h >= target
        lines.append(
            f"| ({key}) | {what} | {fmt_rate(h)} | {fmt_rate(b)} (bare Starlette) | {ratio:.2f} | {tgt} | {verdict(ok)} |"
        )
    if "d" in only:
        d, raw = hub["d"]["entities_per_s"], hub["d_raw"]["rate"]
        lines.append(
            f"| (d) | batch upsert, {UPSERT_BATCH:,} entities/request ({out['plan']['city']:,} new entities) | "
            f"{fmt_rate(d, 'entities/s')} | {fmt_rate(raw, 'entities/s')} (raw SQLite executemany) | "
            f"{d / raw:.3f} | ≥ 50,000 entities/s | {verdict(d >= 50_000)} |"
        )
    seq = bare.get("seq", {}).get("lat_ms", {}).get("p95", math.nan)
    base_txt = f"p95 {seq:.2f} ms (bare GET, sequential)"
    if "e" in only:
        for row in hub["e"]:
            lat = row["lat_ms"]
            lines.append(
                f"| (e) | `{row['query']}` ({row['label']}; {row['matches']:,} matches/type) | {fmt_lat(lat)} | "
                f"{base_txt} | {lat['p95'] / seq:.1f} | p95 ≤ 20 ms | {verdict(lat['p95'] <= 20)} |"
            )
    if "f" in only:
        for row in hub["f"]["queries"]:
            lat = row["lat_ms"]
            lines.append(
                f"| (f) | aggregatedValues avg,max,min,sum over {out['plan']['history']:,} instances, "
                f"{row['label']} | {fmt_lat(lat)} | {base_txt} | {lat['p95'] / seq:.1f} | p95 ≤ 50 ms | "
                f"{verdict(lat['p95'] <= 50)} |"
            )
    mem = out.get("memory_kib", {})
    lines += [
        "",
        f"- hub peak RSS (VmHWM): {mem.get('VmHWM', 0) / 1024:,.0f} MiB (RSS at end {mem.get('VmRSS', 0) / 1024:,.0f} MiB)",
        f"- total wall time: {out['wall_s']:,.0f} s; city entities in the hub at the end: {out.get('entities')}",
    ]
    if "f" in only:
        ld = hub["f"]["load"]
        lines.append(
            f"- (f) history loading: {fmt_rate(ld['instances_per_s'], 'instances/s')} "
            f"(POST /temporal/entities/{{id}}/attrs, {HISTORY_CHUNK:,} instances per request)"
        )
    lines += ["", "Details (who was busy: CPU use of the hub/bare server and of the load generator):", ""]
    lines += ["| run | requests | non-2xx | p50 ms | p99 ms | server CPU | load-gen CPU |", "|---|---|---|---|---|---|---|"]
    for name, res in _all_runs(out):
        lat = res["lat_ms"]
        lines.append(
            f"| {name} | {res['requests']:,} | {res['requests'] - res['ok']:,} | {lat['p50']:.2f} | {lat['p99']:.2f} | "
            f"{res['server_cpu']:.0%} | {res['load_cpu']:.0%} |"
        )
    return "\n".join(lines)


def _all_runs(out: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    runs = []
    for k, v in out.get("bare", {}).items():
        runs.append((f"bare {k}", v))
    hub = out.get("hub", {})
    for k in "abcd":
        if k in hub:
            runs.append((f"hub {k}", hub[k]))
    for row in hub.get("e", []):
        runs.append((f"hub e {row['label']}", row))
    if "f" in hub:
        runs.append(("hub f load", hub["f"]["load"]))
        for row in hub["f"]["queries"]:
            runs.append((f"hub f {row['label']}", row))
    return runs


def _plan_text(plan: dict[str, Any]) -> str:
    return (
        f"{plan['duration']:g} s measured after {plan['warmup']:g} s warm-up, {plan['connections']} connections "
        f"for (a)-(c); {plan['city']:,} entities for (d)/(e); {plan['history']:,} instances for (f); "
        f"{plan['samples']} sequential requests per latency variant"
    )


def profile_report(path: Path, top: int = 30) -> str:
    """The hub's hottest functions (cProfile: tottime and cumtime)."""
    import io
    import pstats

    if not path.exists():
        return f"(no profile at {path})"
    buf = io.StringIO()
    st = pstats.Stats(str(path), stream=buf)
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats(r"cityhub", top)
    return buf.getvalue()


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = ["main", "summarise"]
