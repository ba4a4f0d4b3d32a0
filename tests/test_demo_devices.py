"""The device steps `cityhub demo` prints work when pasted: a newcomer was told "run `cityhub
demo --mqtt embedded`" (a rebuild on port 1026, whatever --port and --db were) and nothing of
the mapping, API key, topic and hub URL that `cityhub iot` and a device need."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from cityhub.demo.devices import READING, device_steps
from cityhub.demo.run import prepare_demo
from cityhub.settings import Settings
from conftest import free_port

MQTT = ("--mqtt", "embedded", "--log-level", "warning")


def _shim(folder: Path) -> Path:
    """A `cityhub` on PATH that runs this checkout's code, as the installed command does."""
    folder.mkdir()
    cmd = folder / "cityhub"
    cmd.write_text(
        f'#!/bin/sh\nexec {sys.executable} -c "from cityhub.cli import main; '
        f'raise SystemExit(main())" "$@"\n'
    )
    cmd.chmod(0o755)
    return folder


def _steps(out: list[str]) -> str:
    """The printed device block: from its heading to the blank line after it."""
    start = next(i for i, line in enumerate(out) if line.startswith("Feed it from a device"))
    block = []
    for line in out[start + 1 :]:
        if not line.strip():
            break
        block.append(line)
    return "\n".join(block[:-1])  # the last step is the curl that reads the entity back


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto_pub")
def test_the_printed_device_steps_feed_the_demo(tmp_path: Path) -> None:
    port, broker = free_port(), free_port()
    env = {
        **os.environ,
        "PATH": f"{_shim(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}",
        "CITYHUB_MQTT_EMBEDDED_PORT": str(broker),
        "CITYHUB_MQTT_TOPIC_ROOT": f"test-demo-{uuid.uuid4().hex[:8]}/cityhub",
    }
    demo = subprocess.Popen(
        ["cityhub", "demo", "--port", str(port), "--db", str(tmp_path / "demo.db"), *MQTT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert demo.stdout is not None
        out = []
        for line in demo.stdout:
            out.append(line.rstrip("\n"))
            if line.startswith("Health:"):
                break
        script = _steps(out)
        assert f"CITYHUB_URL=http://127.0.0.1:{port} cityhub iot devices create" in script
        assert f"-p {broker}" in script
        entity = next(w for w in script.split() if w.startswith("urn:ngsi-ld:WeatherObserved:"))
        _wait_for(f"http://127.0.0.1:{port}/health")
        done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        url = f"http://127.0.0.1:{port}/ngsi-ld/v1/entities/{entity}?format=simplified"
        deadline = time.monotonic() + 20
        while (now := _get(url))["temperature"] != READING["t"] and time.monotonic() < deadline:
            time.sleep(0.1)  # the message goes through the broker and the agent's batch
        assert now["temperature"] == READING["t"]
        assert now["relativeHumidity"] == READING["h"]
    finally:
        demo.terminate()
        demo.wait(20)


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as r:
        body: dict[str, object] = json.load(r)
        return body


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            _get(url)
            return
        except OSError:
            assert time.monotonic() < deadline, "the demo did not serve"
            time.sleep(0.1)


def test_without_a_broker_it_says_how_to_start_this_demo_with_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "my demo.db"
    assert prepare_demo(Settings(db=str(db), port=18899))
    out = capsys.readouterr().out
    assert f"cityhub demo --keep --mqtt embedded --port 18899 --db '{db}'" in out


def test_an_external_broker_s_password_is_not_printed() -> None:
    from cityhub.demo import build_city

    settings = Settings(mqtt="mqtts://ops:s3cret@broker.example:8883")
    lines = "\n".join(device_steps(settings, build_city()))
    assert "s3cret" not in lines
    assert "-h broker.example -p 8883" in lines
