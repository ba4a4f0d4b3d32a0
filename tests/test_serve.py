"""`cityhub serve` as a real process: health, a create and a read over real HTTP, restart."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import BASE, free_port

pytestmark = pytest.mark.server

EID = "urn:ngsi-ld:Lamp:served"


@contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`cityhub <args>` as a real process, stopped (SIGTERM, then SIGKILL) when the block ends."""
    env = {**os.environ, "CITYHUB_LOG_LEVEL": "warning", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cityhub.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if shutdown hangs
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float = 15) -> None:
    """Poll url/health until it answers; fail with the process's output if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"cityhub serve exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(url + "/health", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"cityhub serve did not answer /health within {timeout:g} s")
        time.sleep(0.05)


@contextmanager
def serving(db: Path, port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `cityhub serve` until the block ends; yields its base URL once /health answers."""
    with process(["serve", "--port", str(port), "--db", str(db)], env) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(proc, url)
        yield url


def test_serve_create_and_read_then_restart(tmp_path: Path) -> None:
    db = tmp_path / "served.db"
    with serving(db, free_port()) as url:
        health = httpx.get(url + "/health", timeout=5)
        assert health.json()["status"] == "ok", health.text
        entity = {"id": EID, "type": "Lamp", "lux": {"type": "Property", "value": 300}}
        resp = httpx.post(url + BASE + "/entities", json=entity, timeout=5)
        assert resp.status_code == 201, resp.text
        assert resp.headers["location"] == f"{BASE}/entities/{EID}"
        resp = httpx.get(url + resp.headers["location"], timeout=5)
        assert resp.status_code == 200, resp.text
        assert resp.json() == entity
        resp = httpx.get(url + BASE + "/entities", params={"type": "Lamp"}, timeout=5)
        assert [e["id"] for e in resp.json()] == [EID]
        problem = httpx.get(url + BASE + "/entities/urn:ngsi-ld:Lamp:none", timeout=5)
        assert problem.status_code == 404
        assert problem.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    # The data is on disk: a new process on the same database still has it.
    with serving(db, free_port()) as url:
        resp = httpx.get(url + BASE + f"/entities/{EID}", timeout=5)
        assert resp.status_code == 200, resp.text
        assert resp.json()["lux"]["value"] == 300


def test_serve_on_a_busy_port_fails_cleanly(tmp_path: Path) -> None:
    port = free_port()
    with serving(tmp_path / "a.db", port):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "cityhub.cli",
                "serve",
                "--port",
                str(port),
                "--db",
                str(tmp_path / "b.db"),
            ],
            capture_output=True,
            timeout=20,
            env={**os.environ, "CITYHUB_LOG_LEVEL": "warning"},
        )
    assert proc.returncode == 2, "a second server on the same port must fail"
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert not (tmp_path / "b.db").exists(), "a hub that cannot listen creates no database"


def test_a_second_serve_of_the_same_database_is_refused(tmp_path: Path) -> None:
    """It was accepted, and changes written through it notified none of the subscriptions
    the first hub had loaded."""
    db = tmp_path / "city.db"
    with serving(db, free_port()) as url:
        second = ["serve", "--port", str(free_port()), "--db", str(db)]
        proc = subprocess.run(
            [sys.executable, "-m", "cityhub.cli", *second],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "CITYHUB_LOG_LEVEL": "warning"},
        )
        assert proc.returncode == 2, proc.stderr
        assert f"another cityhub serve is using {db}" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert httpx.get(url + "/health", timeout=5).status_code == 200, "the first one serves on"
    with serving(db, free_port()) as url:  # the lock went with the first hub
        assert httpx.get(url + "/health", timeout=5).status_code == 200


def test_serve_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("not a database")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cityhub.cli",
            "serve",
            "--db",
            str(bad),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "cannot open the database" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_acknowledged_write_survives_a_kill_9_under_load(tmp_path: Path) -> None:
    """Eight clients create entities (with history) until the hub is killed mid-stream: after
    a restart every create that got its 201 is there, whole, and the database is sound."""
    db = tmp_path / "crash.db"
    port = free_port()
    acked: list[str] = []
    stop = threading.Event()

    def client(n: int, url: str) -> None:
        with httpx.Client(base_url=url + BASE, timeout=5) as http:
            for i in range(100_000):
                if stop.is_set():
                    return
                eid = f"urn:ngsi-ld:Meter:c{n}-{i}"
                body = {"id": eid, "type": "Meter", "kwh": {"type": "Property", "value": i}}
                try:
                    if http.post("/entities", json=body).status_code == 201:
                        acked.append(eid)
                except httpx.TransportError:  # the hub died under this request
                    return

    with process(["serve", "--port", str(port), "--db", str(db)]) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(proc, url)
        threads = [threading.Thread(target=client, args=(n, url)) for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # mid-stream: groups are being written and answered
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    assert len(acked) >= 300, f"only {len(acked)} creates were acknowledged in 20 s"
    with sqlite3.connect(db) as conn:  # WAL recovery on open, then a full check
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with serving(db, free_port()) as url:
        query = {"type": "Meter", "limit": 1000, "count": "true", "attrs": "kwh"}
        resp = httpx.get(url + BASE + "/entities", params=query, timeout=10)
        stored = int(resp.headers["NGSILD-Results-Count"])
        missing = [e for e in acked if httpx.get(url + BASE + f"/entities/{e}").status_code != 200]
        assert not missing, f"{len(missing)} acknowledged creates were lost, e.g. {missing[:3]}"
        assert stored >= len(acked)  # an unanswered create may have committed too
        sample = acked[len(acked) // 2]
        temporal = httpx.get(url + BASE + f"/temporal/entities/{sample}", timeout=5)
        assert temporal.status_code == 200 and len(temporal.json()["kwh"]) == 1, temporal.text


def _send_head(url: str, line: bytes, header_bytes: int) -> tuple[bytes, int]:
    """Send a request head with one header of header_bytes, in 64 KiB chunks, until the
    server answers; return the answer and how much had been sent when it came."""
    import select
    import socket

    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(line + b"Host: hub\r\nX-Filler: ")
        while sent < header_bytes and not select.select([sock], [], [], 0)[0]:
            chunk = b"a" * min(65536, header_bytes - sent)
            sock.sendall(chunk)
            sent += len(chunk)
        if sent >= header_bytes:
            sock.sendall(b"\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"}"):
                break
    return answer, sent


def test_an_oversized_request_head_is_431_and_bounded(tmp_path: Path) -> None:
    """A request line and headers over 256 KiB: 431 with a ProblemDetails, and the server
    stops reading (httptools alone buffered an endless header without limit)."""
    with serving(tmp_path / "head.db", free_port()) as url:
        answer, sent = _send_head(url, b"GET /health HTTP/1.1\r\n", 8 * 1024 * 1024)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b'"status":431' in answer and b"POST /ngsi-ld/v1/entityOperations/query" in answer
        assert sent < 4 * 1024 * 1024, f"no answer until {sent:,} bytes of header were sent"
        # a long but allowed head still answers, and the server is well
        answer, _ = _send_head(url, b"GET /health HTTP/1.1\r\n", 200 * 1024)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        ids = ",".join(f"urn:ngsi-ld:Lamp:{i}" for i in range(2000))  # a 56 KB query string
        resp = httpx.get(url + BASE + "/entities", params={"id": ids, "type": "Lamp"}, timeout=10)
        assert resp.status_code == 200 and resp.json() == []


def test_a_head_over_the_bound_in_its_first_read_is_431_too(tmp_path: Path) -> None:
    """The bytes of the read that began a request were not counted (the count restarted when
    the parser began the message), so a 300 KiB head sent at once got through; and what the
    parser refuses was plain text."""
    import socket

    with serving(tmp_path / "first.db", free_port()) as url:
        host, port = url.removeprefix("http://").split(":")
        head = b"GET /health HTTP/1.1\r\nHost: hub\r\nX-Filler: " + b"a" * (300 * 1024)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head + b"\r\n\r\n")
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b"/errors/InvalidRequest" in answer, answer
        assert httpx.get(url + "/health", timeout=5).status_code == 200
        # a request line the HTTP parser refuses (over 64 KiB) gets a ProblemDetails too
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET " + BASE.encode() + b"/entities?q=" + b"x" * 70_000 + b" HTTP/1.1")
            sock.sendall(b"\r\nHost: hub\r\n\r\n")
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        assert b"/errors/InvalidRequest" in answer and b"POST" in answer, answer


def test_serve_shows_the_hubs_own_log_lines(tmp_path: Path) -> None:
    """At info, the hub's own messages appear beside uvicorn's (before, Python dropped them
    for want of a handler), starting with the settings an operator checks first."""
    port = free_port()
    env = {"CITYHUB_LOG_LEVEL": "info", "CITYHUB_HISTORY_DAYS": "30"}
    with process(["serve", "--port", str(port), "--db", str(tmp_path / "h.db")], env) as proc:
        wait_healthy(proc, f"http://127.0.0.1:{port}")
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert "cityhub: serving" in out and "history kept: 30 days" in out, out
    assert "4 reader threads" in out and "sync normal" in out, out
    assert "WARNING" not in out, "127.0.0.1 is this machine only"


def test_serving_every_interface_warns_that_the_api_has_no_authentication(
    tmp_path: Path,
) -> None:
    """`--host 0.0.0.0` put the unauthenticated API (purges included) on the network without
    a word in the log, while README says to keep it on 127.0.0.1 behind a proxy."""
    port = free_port()
    args = ["serve", "--host", "0.0.0.0", "--port", str(port), "--db", str(tmp_path / "h.db")]
    with process(args) as proc:
        wait_healthy(proc, f"http://127.0.0.1:{port}")
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert "WARNING:  cityhub: 0.0.0.0 lets other machines reach the API" in out, out
    assert "no authentication" in out and "reverse proxy" in out, out


def _sigterm_while(port: int, proc: subprocess.Popen[bytes], trickle: bool) -> float:
    """Begin a POST whose body stops (or trickles a byte every 0.3 s), send SIGTERM, and
    return how long the hub took to exit."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {BASE}/entities HTTP/1.1\r\nHost: hub\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
        )
        stop = threading.Event()

        def drip() -> None:
            while trickle and not stop.wait(0.3):
                try:
                    sock.sendall(b" ")
                except OSError:  # the hub closed the connection
                    return

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        time.sleep(0.5)  # the handler is waiting for the rest of the body
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("serve did not stop within 15 s of SIGTERM")
        finally:
            stop.set()
            dripper.join()
        return time.monotonic() - started


def test_sigterm_stops_within_the_shutdown_timeout_whatever_a_client_does(
    tmp_path: Path,
) -> None:
    """uvicorn waited for a request in progress as long as its client kept the connection
    open (88 s in the probe), with the listener already closed: the hub was down all along."""
    port = free_port()
    env = {"CITYHUB_SHUTDOWN_TIMEOUT": "2"}
    with process(["serve", "--port", str(port), "--db", str(tmp_path / "t.db")], env) as proc:
        wait_healthy(proc, f"http://127.0.0.1:{port}")
        took = _sigterm_while(port, proc, trickle=True)  # progress: only the timeout ends it
    assert 1.5 < took < 6, took


def test_sigterm_cuts_a_stalled_body_at_once_without_a_traceback(tmp_path: Path) -> None:
    """A body that makes no progress gets a second once the shutdown began; before, it held
    the exit until its client left, then logged two ERROR tracebacks."""
    port = free_port()
    with process(["serve", "--port", str(port), "--db", str(tmp_path / "t.db")]) as proc:
        wait_healthy(proc, f"http://127.0.0.1:{port}")
        took = _sigterm_while(port, proc, trickle=False)
        out = proc.stdout.read().decode() if proc.stdout else ""
    assert took < 5, took
    assert "Traceback" not in out and "ERROR" not in out, out
