"""The IoT benchmark's devices (bench/mqtt_load.py) and baseline subscriber
(bench/mqtt_sink.py) publish and subscribe under the run's CITYHUB_MQTT_TOPIC_ROOT, so a bench
run on the shared Mosquitto neither counts another hub's or test's messages nor sends its own
to them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from bench.mqtt_load import run_job

from iot_support import MOSQUITTO, own_root, require_mosquitto

REPO = Path(__file__).resolve().parent.parent
TOPIC_ROOT_ENV = "CITYHUB_MQTT_TOPIC_ROOT"  # the hub's own setting, which the bench reads too


async def _publish(monkeypatch: pytest.MonkeyPatch, root: str) -> int:
    """How many messages one short run of the simulated devices sent under root."""
    monkeypatch.setenv(TOPIC_ROOT_ENV, root)
    job = {
        "host": MOSQUITTO[0],
        "port": MOSQUITTO[1],
        "rate": 200,
        "duration": 0.3,
        "connections": 1,
        "devices": [["k", "d1"], ["k", "d2"]],
    }
    sent: int = (await run_job(job))["sent"]
    assert sent > 0
    return sent


async def test_the_baseline_counts_only_its_run_s_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_mosquitto()
    mine, other = own_root(), own_root()
    out = tmp_path / "result.json"
    job = {
        "host": MOSQUITTO[0],
        "port": MOSQUITTO[1],
        "group": f"test-{uuid.uuid4().hex[:8]}",
        "client_id": f"test-sink-{uuid.uuid4().hex[:8]}",
        "idle": 1.0,
        "deadline": 30,
        "out": str(out),
    }
    env = {**os.environ, TOPIC_ROOT_ENV: mine, "PYTHONPATH": os.pathsep.join(sys.path)}
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.mqtt_sink"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=env,
        text=True,
    )
    try:
        assert sink.stdin and sink.stdout
        sink.stdin.write(json.dumps(job) + "\n")
        sink.stdin.flush()
        assert sink.stdout.readline().strip() == "ready"
        await _publish(monkeypatch, other)  # another run (or hub) on the same broker
        sent = await _publish(monkeypatch, mine)
        sink.communicate(timeout=40)
    finally:
        if sink.poll() is None:
            sink.kill()
    assert sink.returncode == 0
    assert json.loads(out.read_text())["received"] == sent
