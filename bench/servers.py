"""Start and stop real server processes (hub and baseline) with identical uvicorn settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# The same server settings for hub and baseline (bench/launch.py): one uvicorn worker,
# uvloop, the hub's httptools protocol, no access log, log level warning.
WORKERS = os.environ.get("BENCH_WORKERS", "1")


def hub_app() -> Any:
    """uvicorn --factory target: the hub on the database named by BENCH_HUB_DB.

    With BENCH_PROFILE=path the app runs under cProfile (in-process, event-loop thread) and
    the stats are written to path at lifespan shutdown (uvicorn re-raises SIGTERM after a
    graceful shutdown, so a `python -m cProfile` wrapper would never get to write them)."""
    from cityhub.api.app import create_app
    from cityhub.cli import tune_runtime
    from cityhub.settings import Settings

    app = create_app(Settings(db=os.environ["BENCH_HUB_DB"], log_level="warning"))
    tune_runtime()  # as `cityhub serve` does
    out = os.environ.get("BENCH_PROFILE")
    if not out:
        return app
    import cProfile
    import time

    # CPU time, not wall time: on a shared machine wall time blames whoever was preempted.
    prof = cProfile.Profile(time.process_time)

    async def profiled(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)

        async def on_send(message: Any) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                prof.disable()
                prof.dump_stats(out)
            await send(message)

        prof.enable()
        await app(scope, receive, on_send)

    return profiled


_TAKEN: set[int] = set()  # ports handed out already (a server may not have bound it yet)


def free_port() -> int:
    """A free TCP port on the loopback interface; within BENCH_PORTS (`lo-hi`) when set, for
    a shared machine whose users each keep to their own range."""
    span = os.environ.get("BENCH_PORTS")
    if not span:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            return int(s.getsockname()[1])
    lo, hi = (int(p) for p in span.split("-"))
    for port in range(lo, hi + 1):
        if port in _TAKEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        _TAKEN.add(port)
        return port
    raise RuntimeError(f"no free port in BENCH_PORTS={span}")


class Server:
    """One uvicorn process serving a factory on a free loopback port (restartable)."""

    def __init__(self, name: str, factory: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.factory = factory
        self.env = env
        self.log_path = log
        self.restarts = 0
        self._peak_kib = 0
        self.last_memory: dict[str, int] = {}
        self._start()

    def _start(self) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.args = [self.factory, HOST, str(self.port), WORKERS]
        self.cmd = [sys.executable, "-m", "bench.launch", *self.args]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll /health until the server answers (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s; see {self.log_path}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_kib(self) -> dict[str, int]:
        """VmHWM (peak RSS, the max over restarts too), VmRSS, RssAnon and RssFile in KiB."""
        out = {"VmHWM": self._peak_kib, "VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        if self.proc.poll() is None:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in out:
                    out[key] = max(out[key], int(value.split()[0]))
        self._peak_kib = out["VmHWM"]
        return out

    def restart(self) -> None:
        """Kill a server stuck in a request (same database) and start it again."""
        self.stop(grace=3.0)
        self.restarts += 1
        self._start()
        self.wait_ready()

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (graceful, so a profiler can write its output), then SIGKILL after grace."""
        if self.proc.poll() is None:
            self.last_memory = self.memory_kib()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
