"""(g) IoT ingestion through the real Mosquitto at 127.0.0.1:1883, beside a bare subscriber.

Devices are simulated by bench/mqtt_load.py (raw MQTT 3.1.1, QoS 0, open loop). Two parts,
each run first against the baseline (bench/mqtt_sink.py: a bare aiomqtt subscriber on the
same shared subscription, discarding the messages) and then against the hub (a real
`cityhub serve --mqtt mqtt://127.0.0.1:1883` process on a fresh database):

- throughput: offered rates step up (each step its own publisher run); a step is kept up with
  when at least 99.5 % of its messages were stored (received, for the baseline) and the last
  one within a second of the publisher's end. The sustained figure is the stored rate of the
  highest step kept up with.
- latency at 1,000 messages/s: for the hub, modifiedAt minus observedAt of every stored
  instance (observedAt is the device's send time; both clocks are this machine's); for the
  baseline, receive time minus send time.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.mqtt_load import TOPIC_ROOT_ENV
from bench.servers import ROOT, free_port

BROKER = ("127.0.0.1", 1883)
KEEP_UP = 0.995  # share of a step's messages that must arrive
LAG_MAX = 1.0  # seconds after the publisher's end by which the last one must have arrived
MAPPING = {
    "attributes": {"t": {"name": "temperature", "type": "number", "unitCode": "CEL"}},
    "observedAt": "ts",
}


@dataclass(frozen=True)
class IotPlan:
    """How much work (g) does."""

    devices: int
    rates: tuple[int, ...]  # offered messages/s of the throughput steps
    step: float  # seconds each step publishes
    latency_rate: int
    latency_duration: float
    warmup: float  # seconds of the latency run not measured


FULL = IotPlan(
    devices=1000,
    rates=(5000, 6000, 7000, 8000, 10000, 12000),
    step=6.0,
    latency_rate=1000,
    latency_duration=15.0,
    warmup=2.0,
)
QUICK = IotPlan(
    devices=200, rates=(5000, 7000), step=2.0, latency_rate=1000, latency_duration=4.0, warmup=1.0
)


# this run's topic root: its devices, baseline and hub meet no other hub or test on the
# shared broker (and none of theirs), as the tests' roots of their own (iot_support.own_root)
RUN_ENV = {TOPIC_ROOT_ENV: f"bench-{secrets.token_hex(4)}/cityhub"}


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def broker_up() -> bool:
    """Whether Mosquitto answers on 127.0.0.1:1883."""
    try:
        with socket.create_connection(BROKER, timeout=1.0):
            return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds every process on the machine has used (/proc/stat): others' load skews."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def mosquitto_pid() -> int | None:
    """The broker's process, to report its CPU use (None when it is not visible)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "mosquitto":
                    return int(entry.name)
            except OSError:
                continue
    return None


def publish(devices: list[list[str]], rate: float, duration: float) -> dict[str, Any]:
    """One run of the simulated devices (its own process)."""
    job = {
        "host": BROKER[0],
        "port": BROKER[1],
        "rate": rate,
        "duration": duration,
        "connections": 2,
        "devices": devices,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench.mqtt_load"],
        input=json.dumps(job).encode(),
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **RUN_ENV},
        timeout=duration + 60,
        check=True,
    )
    res: dict[str, Any] = json.loads(proc.stdout)
    return res


def percentiles(ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of latencies in milliseconds."""
    if not ms:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan, "n": 0}
    ms = sorted(ms)

    def q(p: float) -> float:
        return ms[min(len(ms) - 1, math.ceil(p * len(ms)) - 1)]

    return {"p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": ms[-1], "n": len(ms)}


# -- the baseline ---------------------------------------------------------------------------
def sink_run(
    devices: list[list[str]], rate: float, duration: float, latency: bool
) -> dict[str, Any]:
    """The bare subscriber receiving one publisher run."""
    out_file = Path(tempfile.mkdtemp(prefix="cityhub-sink-")) / "result.json"
    job = {
        "host": BROKER[0],
        "port": BROKER[1],
        "group": f"bench-bare-{secrets.token_hex(3)}",
        "client_id": f"bench-bare-{secrets.token_hex(3)}",
        "latency": latency,
        "idle": 1.5,
        "deadline": duration + 60,
        "out": str(out_file),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.mqtt_sink"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **RUN_ENV},
        text=True,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(json.dumps(job) + "\n")
    proc.stdin.flush()
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the baseline subscriber did not subscribe")
    pub = publish(devices, rate, duration)
    proc.communicate(timeout=duration + 90)
    if proc.returncode:
        raise RuntimeError(f"the baseline subscriber exited with {proc.returncode}")
    res: dict[str, Any] = json.loads(out_file.read_text(encoding="utf-8"))
    shutil.rmtree(out_file.parent, ignore_errors=True)
    res["sent"], res["pub"] = pub["sent"], pub
    res["lag"] = res["last"] - pub["end"] if res["received"] else math.nan
    return res


def run_baseline(plan: IotPlan, devices: list[list[str]]) -> dict[str, Any]:
    """Throughput steps and the latency run against the bare subscriber."""
    steps = []
    mosq = mosquitto_pid()
    for rate in plan.rates:
        busy0, mq0 = machine_busy(), cpu_seconds(mosq) if mosq else 0.0
        res = sink_run(devices, rate, plan.step, latency=False)
        busy = machine_busy() - busy0
        mq = cpu_seconds(mosq) - mq0 if mosq else 0.0
        window = max(res["last"] - res["pub"]["start"], plan.step)
        step = {
            "offered": rate,
            "sent": res["sent"],
            "arrived": res["received"],
            "rate": res["received"] / window,
            "lag": res["lag"],
            "kept_up": res["received"] >= KEEP_UP * res["sent"] and res["lag"] < LAG_MAX,
            "cpu": res["cpu_s"] / window,
            "publisher_cpu": res["pub"]["cpu_s"] / window,
            "other_cpu": max(0.0, busy - res["cpu_s"] - mq - res["pub"]["cpu_s"]) / window,
        }
        steps.append(step)
        say(f"    bare: offered {rate:,}/s -> {step['rate']:,.0f}/s received{_flag(step)}")
    lat = sink_run(devices, plan.latency_rate, plan.latency_duration, latency=True)
    skip = int(plan.warmup * plan.latency_rate)
    latency = percentiles(lat["lat_ms"][skip:])
    say(f"    bare: latency at {plan.latency_rate:,}/s: {fmt_lat(latency)}")
    return {"steps": steps, "latency": latency, "latency_received": lat["received"]}


def _flag(step: dict[str, Any]) -> str:
    if step["kept_up"]:
        return ""
    return f" (fell behind: {step['arrived']:,} of {step['sent']:,}, lag {step['lag']:.1f} s)"


def fmt_lat(lat: dict[str, float]) -> str:
    return f"p50 {lat['p50']:,.2f} / p95 {lat['p95']:,.2f} / p99 {lat['p99']:,.2f} ms"


# -- the hub ----------------------------------------------------------------------------------
class Hub:
    """`cityhub serve --mqtt mqtt://127.0.0.1:1883` on a fresh database."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = tmp / "iot.db"
        self.cmd = [
            sys.executable,
            "-m",
            "cityhub.cli",
            "serve",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--mqtt",
            f"mqtt://{BROKER[0]}:{BROKER[1]}",
        ]
        env = {
            **os.environ,
            "CITYHUB_LOG_LEVEL": "warning",
            "CITYHUB_MQTT_GROUP": f"bench-hub-{secrets.token_hex(3)}",
            **RUN_ENV,
        }
        self._log = open(tmp / "iot-hub.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the hub exited early; see iot-hub.log in the temp dir")
            try:
                if self.client.get("/iot/v1/stats").json()["mqtt"]["connected"]:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the hub did not connect to Mosquitto within {timeout:g} s")

    def stats(self) -> dict[str, Any]:
        resp = self.client.get("/iot/v1/stats")
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def provision(self, key: str, n: int) -> list[list[str]]:
        """One source holding the key and mapping, n devices of it."""
        body = {"id": "bench", "apikey": key, "entityType": "BenchSensor", "mapping": MAPPING}
        self.client.post("/iot/v1/sources", json=body).raise_for_status()
        for i in range(n):
            self.client.post(
                "/iot/v1/devices", json={"id": f"dev{i}", "source": "bench"}
            ).raise_for_status()
        return [[key, f"dev{i}"] for i in range(n)]

    def settle(self, target: int, since: float, timeout: float = 60.0) -> tuple[int, float]:
        """Poll until `stored` reaches target or stops moving; (stored, time it last moved)."""
        last_value, last_move = self.stats()["stored"], time.time()
        deadline = time.time() + timeout
        while time.time() < deadline:
            time.sleep(0.05)
            value = self.stats()["stored"]
            now = time.time()
            if value != last_value:
                last_value, last_move = value, now
            if value >= target or now - last_move > 1.5:
                break
        return last_value, max(last_move, since)

    def peak_rss_kib(self) -> int:
        """VmHWM of the hub process."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def run_hub(plan: IotPlan, tmp: Path, key: str) -> dict[str, Any]:
    """Throughput steps and the latency run against the hub."""
    hub = Hub(tmp)
    mosq = mosquitto_pid()
    try:
        hub.wait_ready()
        devices = hub.provision(key, plan.devices)
        steps = []
        for rate in plan.rates:
            before = hub.stats()
            cpu0, mq0 = cpu_seconds(hub.proc.pid), cpu_seconds(mosq) if mosq else 0.0
            busy0 = machine_busy()
            pub = publish(devices, rate, plan.step)
            stored, t_last = hub.settle(before["stored"] + pub["sent"], pub["end"])
            after = hub.stats()
            busy = machine_busy() - busy0
            hub_cpu = cpu_seconds(hub.proc.pid) - cpu0
            mq = cpu_seconds(mosq) - mq0 if mosq else 0.0
            window = max(t_last - pub["start"], plan.step)
            n = stored - before["stored"]
            step = {
                "offered": rate,
                "sent": pub["sent"],
                "arrived": n,
                "received": after["received"] - before["received"],
                "rate": n / window,
                "lag": t_last - pub["end"],
                "kept_up": n >= KEEP_UP * pub["sent"] and t_last - pub["end"] < LAG_MAX,
                "cpu": hub_cpu / window,
                "mosquitto_cpu": mq / window if mosq else None,
                "publisher_cpu": pub["cpu_s"] / window,
                "other_cpu": max(0.0, busy - hub_cpu - mq - pub["cpu_s"]) / window,
            }
            steps.append(step)
            say(f"    hub:  offered {rate:,}/s -> {step['rate']:,.0f}/s stored{_flag(step)}")
        latency = hub_latency(hub, plan, devices)
        say(f"    hub:  latency at {plan.latency_rate:,}/s: {fmt_lat(latency)}")
        final = hub.stats()
        rss = hub.peak_rss_kib()
    finally:
        hub.stop()
    return {
        "steps": steps,
        "latency": latency,
        "stats": final,
        "peak_rss_kib": rss,
        "cmd": " ".join(hub.cmd[2:]),
    }


def hub_latency(hub: Hub, plan: IotPlan, devices: list[list[str]]) -> dict[str, float]:
    """modifiedAt - observedAt of every instance the latency run stored (after warm-up)."""
    with sqlite3.connect(f"file:{hub.db}?mode=ro", uri=True) as conn:
        (mark,) = conn.execute("SELECT coalesce(max(hid), 0) FROM history").fetchone()
    before = hub.stats()["stored"]
    pub = publish(devices, plan.latency_rate, plan.latency_duration)
    hub.settle(before + pub["sent"], pub["end"])
    with sqlite3.connect(f"file:{hub.db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT (t_modified - t_observed) * 1000 FROM history "
            "WHERE hid > ? AND t_observed >= ? ORDER BY hid",
            (mark, pub["start"] + plan.warmup),
        ).fetchall()
    return percentiles([r[0] for r in rows])


# -- the part ---------------------------------------------------------------------------------
def sustained(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The highest step kept up with."""
    kept = [s for s in steps if s["kept_up"]]
    return kept[-1] if kept else None


def measure(quick: bool, tmp: Path) -> dict[str, Any]:
    """Run (g): baseline first (the hub is not running then), then the hub."""
    plan = QUICK if quick else FULL
    if not broker_up():
        raise RuntimeError(
            f"(g) needs Mosquitto on {BROKER[0]}:{BROKER[1]}; start it (e.g. `mosquitto -d`)"
        )
    key = secrets.token_urlsafe(24)
    devices = [[key, f"dev{i}"] for i in range(plan.devices)]
    say(f"  (g) IoT ingestion through Mosquitto {BROKER[0]}:{BROKER[1]}, {plan.devices:,} devices")
    base = run_baseline(plan, devices)
    hub = run_hub(plan, tmp, key)
    return {"plan": asdict(plan), "baseline": base, "hub": hub}


def render_rows(g: dict[str, Any]) -> list[str]:
    """The (g) rows of the results table (same columns as a-f)."""
    plan, hub, base = g["plan"], g["hub"], g["baseline"]
    rows = []
    h, b = sustained(hub["steps"]), sustained(base["steps"])
    h_rate = h["rate"] if h else 0.0
    b_rate = b["rate"] if b else math.nan
    top = max(plan["rates"])
    b_txt = f"{'≥ ' if b and b['offered'] == top else ''}{b_rate:,.0f} msg/s"
    h_txt = f"{'≥ ' if h and h['offered'] == top else ''}{h_rate:,.0f} msg/s"
    if h is None:  # no step kept up: say how much the lowest one stored
        low = min(hub["steps"], key=lambda s: s["offered"])
        h_rate = low["rate"]
        h_txt = f"< {low['offered']:,} msg/s (stored {low['rate']:,.0f}/s of {low['offered']:,}/s offered)"
    rows.append(
        f"| (g) | MQTT ingestion through Mosquitto, {plan['devices']:,} devices, QoS 0: sustained "
        f"messages/s stored (highest offered rate kept up with) | {h_txt} | {b_txt} received "
        f"(bare aiomqtt subscriber) | {h_rate / b_rate:.2f} | ≥ 5,000 msg/s | "
        f"{'PASS' if h_rate >= 5000 else '**FAIL**'} |"
    )
    hl, bl = hub["latency"], base["latency"]
    rows.append(
        f"| (g) | device-to-stored latency at {plan['latency_rate']:,} msg/s ({hl['n']:,} messages) | "
        f"{fmt_lat(hl)} | {fmt_lat(bl)} (publish to receive, bare subscriber) | "
        f"{hl['p99'] / bl['p99']:.1f} | p99 ≤ 100 ms | {'PASS' if hl['p99'] <= 100 else '**FAIL**'} |"
    )
    return rows


def render_notes(g: dict[str, Any]) -> list[str]:
    """Per-step details of (g)."""
    lines = [
        "",
        "(g) throughput steps (offered rate → arrived rate; kept up = ≥ 99.5 % arrived and the last "
        "within 1 s of the publisher's end; CPU in cores):",
        "",
        "| offered msg/s | bare received/s | bare CPU | other CPU (bare run) | hub stored/s | "
        "hub lag s | hub CPU | Mosquitto CPU | publisher CPU | other CPU (hub run) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b, h in zip(g["baseline"]["steps"], g["hub"]["steps"], strict=True):
        mq = h["mosquitto_cpu"]
        lines.append(
            f"| {h['offered']:,} | {b['rate']:,.0f}{'' if b['kept_up'] else ' (behind)'} | "
            f"{b['cpu']:.2f} | {b['other_cpu']:.2f} | "
            f"{h['rate']:,.0f}{'' if h['kept_up'] else ' (behind)'} | {h['lag']:.2f} | "
            f"{h['cpu']:.2f} | {'?' if mq is None else f'{mq:.2f}'} | {h['publisher_cpu']:.2f} | "
            f"{h['other_cpu']:.2f} |"
        )
    lines.append(f"- (g) hub: longest batch write {g['hub']['stats']['maxBatchMs']:,.0f} ms")
    lines.append(f"- (g) hub command: `python -m {g['hub']['cmd']}`")
    lines.append(f"- (g) hub peak RSS (VmHWM): {g['hub']['peak_rss_kib'] / 1024:,.0f} MiB")
    return lines
