"""`cityhub iot` as a real process: its output to a reader that stops early, and the hub URL
it is given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

DEVICES = [{"id": f"d{n}", "entityType": "T", "protocol": "mqtt"} for n in range(50)]


class _Hub(BaseHTTPRequestHandler):
    """Answers GET /iot/v1/devices as a hub would."""

    def do_GET(self) -> None:
        body = json.dumps(DEVICES).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        """A created device with the key the hub generated."""
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"id": "q3", "entityType": "T", "apikey": "k" * 20}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def hub_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_reader_that_stops_early_gets_no_traceback(hub_url: str) -> None:
    """`cityhub iot devices list | head` printed a BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: EPIPE every time
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cityhub.cli", "iot", "devices", "list", "--url", hub_url],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == b"", proc.stderr.decode(errors="replace")
    assert proc.returncode == 1


def test_a_lost_key_is_replaced_in_the_tenant_it_was_made_in(hub_url: str) -> None:
    """The advice after an answer cut short names the tenant: without it, following it
    changed the default tenant's device of that id (or found none)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    command = ["iot", "devices", "create", "q3", "--entity-type", "T", "--tenant", "north"]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cityhub.cli", *command, "--url", hub_url],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    advice = "`cityhub iot devices update q3 --apikey KEY --tenant north`"
    assert advice in proc.stderr.decode(), proc.stderr


def test_the_answer_is_printed_as_json(hub_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cityhub.cli", "iot", "devices", "list", "--url", hub_url],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == DEVICES


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:abc", "Invalid port: 'abc'"),
        ("http://[::1", "Invalid port: ':1'"),
        ("http://127.0.0.1:99999", "port 99999 is beyond 65535"),
        ("http:///iot", "it names no host"),
        ("127.0.0.1:1026", "it must start with http:// or https://"),
    ],
)
@pytest.mark.parametrize("where", ["--url", "CITYHUB_URL"])
def test_a_url_that_names_no_hub_is_one_line_and_exit_2(
    where: str,
    url: str,
    reason: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """httpx's InvalidURL is no HTTPError: a port of 'abc' was a traceback, exit 1."""
    from cityhub.cli import main

    argv = ["iot", "devices", "list"]
    if where == "--url":
        argv += ["--url", url]
    else:
        monkeypatch.setenv("CITYHUB_URL", url)
    assert main(argv) == 2
    assert capsys.readouterr() == ("", f"cityhub iot: bad {where} {url!r}: {reason}\n")
