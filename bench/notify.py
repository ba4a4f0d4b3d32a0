"""(h) Notification delivery to local HTTP receivers, beside a bare client posting to them.

A receiver process (bench/notify_sink.py) answers on 100 endpoint paths and counts what
arrives. The baseline is a bare aiohttp client that POSTs notification-sized bodies to the
same 100 paths, one request in flight per path (what one delivery queue per endpoint allows).
Then a real `cityhub serve` process on a fresh database holds 100 entities, each watched by
one subscription to its own endpoint, and bench/load.py PATCHes the entities round-robin on
32 connections: every acknowledged update is one notification.

- delivered/s: notifications received over the span from the first to the last arrival;
- all live vs 1 % dead: the same run with one of the 100 endpoints hung (it accepts and never
  answers, so every notification to it waits for the timeout); the update rate and the live
  notifications delivered/s are compared with the all-live run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.load import BASE
from bench.servers import ROOT, Server, free_port


@dataclass(frozen=True)
class NotifyPlan:
    """How much work (h) does."""

    endpoints: int
    duration: float
    warmup: float
    connections: int
    rounds: int  # pairs of runs (all live, one hung), alternating which goes first


FULL = NotifyPlan(endpoints=100, duration=8.0, warmup=1.0, connections=32, rounds=3)
QUICK = NotifyPlan(endpoints=100, duration=2.0, warmup=0.5, connections=32, rounds=1)
BODY_BYTES = 420  # about the size of one of these notifications


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Sink:
    """The receiver process."""

    def __init__(self, log: Path) -> None:
        self.port, self.hung_port = free_port(), free_port()
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.notify_sink",
                "serve",
                str(self.port),
                str(self.hung_port),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the receiver process did not start; see {log}")
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, float]:
        """Notifications received so far and the first/last arrival times."""
        result: dict[str, float] = httpx.get(self.url + "/stats").json()
        return result

    def reset(self) -> None:
        """Start counting from zero."""
        httpx.post(self.url + "/reset")

    def stop(self) -> None:
        """Stop the receivers."""
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()


def baseline(sink: Sink, plan: NotifyPlan) -> dict[str, float]:
    """The bare client's POST rate against the same receivers."""
    sink.reset()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.notify_sink",
            "blast",
            sink.url,
            str(plan.endpoints),
            str(plan.duration),
            str(BODY_BYTES),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        check=True,
        timeout=120,
    )
    res = json.loads(proc.stdout)
    return {"sent": res["sent"], "rate": res["sent"] / res["seconds"]}


def _setup(hub: Server, sink: Sink, plan: NotifyPlan, dead: int) -> list[str]:
    """Entities and one subscription per entity; the first `dead` endpoints hang."""
    ids = [f"urn:ngsi-ld:BenchRoom:n{n}" for n in range(plan.endpoints)]
    batch = [
        {"id": eid, "type": "BenchRoom", "temperature": {"type": "Property", "value": 0}}
        for eid in ids
    ]
    with httpx.Client(base_url=hub.url + BASE, timeout=30) as http:
        resp = http.post(
            "/entityOperations/upsert",
            content=orjson.dumps(batch),
            headers={"Content-Type": "application/json"},
        )
        resp.raise_for_status()
        for n, eid in enumerate(ids):
            uri = f"http://127.0.0.1:{sink.hung_port}/dead{n}" if n < dead else f"{sink.url}/r{n}"
            sub = {
                "type": "Subscription",
                "entities": [{"id": eid, "type": "BenchRoom"}],
                "notification": {"endpoint": {"uri": uri}},
            }
            http.post("/subscriptions", json=sub).raise_for_status()
    return ids


def _load(hub: Server, plan: NotifyPlan, ids: list[str]) -> dict[str, Any]:
    """PATCH the entities round-robin (bench/load.py); the acknowledged update rate."""
    from bench.run import drive  # bench.run imports this module

    job = {
        "scenario": {"kind": "patch_attrs", "ids": ids},
        "connections": plan.connections,
        "warmup": plan.warmup,
        "duration": plan.duration,
        "max_requests": 2_000_000,
    }
    return drive(hub, job)


def scenario(tmp: Path, sink: Sink, plan: NotifyPlan, dead: int, run: int) -> dict[str, Any]:
    """One hub, 100 subscriptions (dead of them hung), PATCH load, then wait for delivery."""
    db = tmp / f"notify-{run}-{dead}.db"
    env = {"BENCH_HUB_DB": str(db), "CITYHUB_NOTIFY_TIMEOUT": "5"}
    hub = Server(f"hub-notify-{dead}", "bench.servers:hub_app", env, tmp / "hub-notify.log")
    try:
        hub.wait_ready()
        ids = _setup(hub, sink, plan, dead)
        sink.reset()
        load = _load(hub, plan, ids)
        load_end = time.time()
        # every acknowledged update of a live entity is one notification; wait for them all
        quiet_since, last_total = time.monotonic(), -1.0
        while time.monotonic() - quiet_since < 2.0:
            total = sink.stats()["total"]
            if total != last_total:
                quiet_since, last_total = time.monotonic(), total
            time.sleep(0.2)
        stats = sink.stats()
        span = max(stats["last"] - stats["first"], 1e-9)
    finally:
        hub.stop()
    return {
        "dead": dead,
        "updates_rate": load["ok_rate"],
        "updates_ok": load["ok"],
        "notified": stats["total"],
        "delivered_rate": stats["total"] / span,
        "lag_s": max(0.0, stats["last"] - load_end),
    }


def measure(quick: bool, tmp: Path) -> dict[str, Any]:
    """Baseline, then rounds of an all-live run and a run with 1 % of the endpoints hung.

    The two kinds of run alternate which goes first, and the figures are sums over the
    rounds: on a shared 2-core machine one run can be 20 % slower than the next for reasons
    of its own, and one pair of runs would mostly measure that.
    """
    plan = QUICK if quick else FULL
    sink = Sink(tmp / "notify-sink.log")
    dead_n = max(1, plan.endpoints // 100)
    runs: dict[str, list[dict[str, Any]]] = {"live": [], "dead": []}
    try:
        say("  (h) bare client → receivers")
        base = baseline(sink, plan)
        say(f"    {base['rate']:,.0f} POST/s")
        for n in range(plan.rounds):
            order = [("live", 0), ("dead", dead_n)]
            for kind, dead in order if n % 2 == 0 else order[::-1]:
                label = "all live" if not dead else f"{dead} of {plan.endpoints} hung"
                res = scenario(tmp, sink, plan, dead, n)
                runs[kind].append(res)
                say(
                    f"  (h) round {n + 1}, {label}: {res['updates_rate']:,.0f} updates/s, "
                    f"{res['delivered_rate']:,.0f} notifications/s"
                )
    finally:
        sink.stop()
    return {
        "plan": asdict(plan),
        "baseline": base,
        "live": _total(runs["live"]),
        "dead": _total(runs["dead"]),
        "runs": runs,
    }


def _total(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates over several runs: the sums of counts over the sums of their spans."""
    updates = sum(r["updates_ok"] for r in runs)
    update_s = sum(r["updates_ok"] / r["updates_rate"] for r in runs)
    notified = sum(r["notified"] for r in runs)
    notify_s = sum(r["notified"] / r["delivered_rate"] for r in runs)
    return {
        "updates_ok": updates,
        "updates_rate": updates / update_s,
        "notified": notified,
        "delivered_rate": notified / notify_s,
        "lag_s": max(r["lag_s"] for r in runs),
        "rounds": len(runs),
        "updates_rates": [round(r["updates_rate"]) for r in runs],
    }


def render_rows(res: dict[str, Any]) -> list[str]:
    """The (h) rows of bench/run.py's table (same columns as a-g)."""
    base, live, dead = res["baseline"], res["live"], res["dead"]
    ratio = dead["updates_rate"] / max(live["updates_rate"], 1e-9)
    rate = live["delivered_rate"]
    return [
        f"| (h) | notifications delivered/s to {res['plan']['endpoints']} local HTTP receivers "
        f"(one subscription each; PATCH load, one notification per update) | {rate:,.0f}/s "
        f"({live['notified']:,.0f} delivered) | {base['rate']:,.0f} POST/s (bare aiohttp client, "
        f"one request in flight per endpoint) | {rate / base['rate']:.2f} | ≥ 2,000/s | "
        f"{'PASS' if rate >= 2000 else '**FAIL**'} |",
        f"| (h) | update rate with 1 of {res['plan']['endpoints']} receivers hung (accepts, never "
        f"answers), {dead['rounds']} runs each, alternating | {dead['updates_rate']:,.0f} updates/s "
        f"(runs {', '.join(f'{r:,}' for r in dead['updates_rates'])}) | "
        f"{live['updates_rate']:,.0f} updates/s with all live (runs "
        f"{', '.join(f'{r:,}' for r in live['updates_rates'])}) | {ratio:.2f} | "
        f"≥ 0.9 | {'PASS' if ratio >= 0.9 else '**FAIL**'} |",
    ]


if __name__ == "__main__":
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        out = measure(args.quick, Path(d))
    print(json.dumps(out, indent=1))
    print("\n".join(render_rows(out)))
