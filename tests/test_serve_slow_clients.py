"""Slow clients against a real `cityhub serve`: a body must keep up CITYHUB_CLIENT_MIN_RATE
over each CITYHUB_CLIENT_TIMEOUT, an answer nobody reads does not hold its connection, and
connections waiting on slow clients make room past CITYHUB_MAX_CONNECTIONS. Before, a body
trickled a byte every 30 s held its connection for ever, and 20 such sockets on a hub bound to
20 connections answered every other client 503 (/health included) for as long as they went on.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from conftest import BASE, free_port
from test_serve import serving

pytestmark = pytest.mark.server

HEAD = (
    f"POST {BASE}/entities HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
    "Content-Length: {}\r\n\r\n"
)


def health_answers_within(url: str, seconds: float, pause: float) -> None:
    """Poll /health until it answers 200, which it must within `seconds`."""
    statuses: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        statuses.append(httpx.get(url + "/health", timeout=5).status_code)
        if statuses[-1] == 200:
            return
        time.sleep(pause)
    raise AssertionError(f"/health never answered 200 in {seconds} s: {statuses}")


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def until_closed(sock: socket.socket, bound: float = 20.0) -> bytes:
    """Everything the hub sends until it closes the connection, within a generous bound."""
    sock.settimeout(bound)
    answer = b""
    try:
        while chunk := sock.recv(65536):  # socket.timeout (a failure) if it stays open
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


@contextmanager
def trickling(socks: list[socket.socket], every: float = 0.3) -> Iterator[None]:
    """Send one space on each socket every `every` seconds until the block ends."""
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(every):
            for sock in socks:
                with suppress(OSError):  # the hub closed it
                    sock.sendall(b" ")

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        yield
    finally:
        stop.set()
        dripper.join()


def test_a_trickled_body_is_408_and_closed(tmp_path: Path) -> None:
    """Three bytes a second never stall, but stay under the least rate: cut after a window."""
    env = {"CITYHUB_CLIENT_TIMEOUT": "1", "CITYHUB_CLIENT_MIN_RATE": "1024"}
    with (
        serving(tmp_path / "t.db", free_port(), env) as url,
        socket.create_connection(address(url), timeout=5) as sock,
    ):
        sock.sendall(HEAD.format(100_000).encode() + b"{")
        with trickling([sock]):
            answer = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer and b"too slowly" in answer, answer


def test_a_slow_steady_upload_above_the_least_rate_is_read(tmp_path: Path) -> None:
    """48 KiB at 16 KiB/s spans three windows of 1 s at a least rate of 1 KiB/s."""
    env = {"CITYHUB_CLIENT_TIMEOUT": "1", "CITYHUB_CLIENT_MIN_RATE": "1024"}
    eid = "urn:ngsi-ld:T:steady"
    body = f'{{"id": "{eid}", "type": "T"'.encode().ljust(48 * 1024 - 1) + b"}"
    with serving(tmp_path / "t.db", free_port(), env) as url:
        with socket.create_connection(address(url), timeout=10) as sock:
            sock.sendall(HEAD.format(len(body)).encode())
            for i in range(0, len(body), 2048):
                time.sleep(0.125)
                sock.sendall(body[i : i + 2048])
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]
        assert httpx.get(f"{url}{BASE}/entities/{eid}", timeout=5).status_code == 200


def test_health_answers_while_slow_clients_hold_every_connection(tmp_path: Path) -> None:
    """Five connections on a hub bound to five: three trickle bodies, two half a head. The
    window (30 s) outlasts the test, so only making room lets /health in (before: 503 for
    as long as they went on)."""
    env = {"CITYHUB_CLIENT_TIMEOUT": "30", "CITYHUB_MAX_CONNECTIONS": "5"}
    with serving(tmp_path / "t.db", free_port(), env) as url:
        time.sleep(0.5)  # wait_healthy's connections are gone
        bodies = [socket.create_connection(address(url), timeout=5) for _ in range(3)]
        heads = [socket.create_connection(address(url), timeout=5) for _ in range(2)]
        for sock in bodies:
            sock.sendall(HEAD.format(100_000).encode() + b"{")
        for sock in heads:
            sock.sendall(f"GET {BASE}/entities?type=T HTTP/1.1\r\nHost: hub\r\n".encode())
        with trickling(bodies):
            health_answers_within(url, 20, 0.3)
            answers = [until_closed(sock) for sock in bodies + heads]
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"waited on its client" in answer, answer
    for sock in bodies + heads:
        sock.close()


def test_an_answer_nobody_reads_does_not_hold_its_connection(tmp_path: Path) -> None:
    """A client asks for 24 MB and reads none of it: before, its connection stayed open (a
    close waits for the answer to drain) and held the only one the hub allows."""
    # 3 s, so on a loaded machine the connection is still held when /health is asked at 1 s
    env = {"CITYHUB_CLIENT_TIMEOUT": "3", "CITYHUB_MAX_CONNECTIONS": "1"}
    value = "x" * 1_000_000
    with serving(tmp_path / "t.db", free_port(), env) as url:
        with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=1)) as http:
            for i in range(24):
                entity = {"id": f"urn:ngsi-ld:Big:{i}", "type": "Big", "v": value}
                assert http.post(f"{url}{BASE}/entities", json=entity).status_code == 201
        time.sleep(6)  # the client's kept-alive connection is closed
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        sock.connect(address(url))
        sock.sendall(f"GET {BASE}/entities?type=Big&limit=100 HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        time.sleep(1)
        assert httpx.get(url + "/health", timeout=5).status_code == 503  # it holds the one
        health_answers_within(url, 30, 0.5)
        got = len(until_closed(sock))
        sock.close()
    assert got < 24_000_000, got  # it was dropped, not sent whole
