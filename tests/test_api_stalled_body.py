"""A request body that stops arriving: 408 and the connection closed after a window without
progress (uvicorn waited as long as the client kept its connection open)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cityhub.api import protocol
from conftest import BASE
from served_hub import hub

HEAD = (
    f"POST {BASE}/entities HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
    "Content-Length: {}\r\n\r\n"
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The hub on uvicorn with the hub's protocol, in this process, a window of 0.5 s and no
    least rate (any progress will do)."""
    bounded = protocol.BoundedHttpTools.capped(protocol.MAX_CONNECTIONS, 0.5, 0)
    with hub(tmp_path, bounded) as address:
        yield address


def test_a_stalled_body_is_408_and_closed(served: tuple[str, int]) -> None:
    body = b'{"id": "urn:ngsi-ld:T:1", "type": "T"}'
    with socket.create_connection(served, timeout=5) as sock:
        sock.sendall(HEAD.format(len(body)).encode() + body[:7])
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer and b"too slowly" in answer, answer
    assert 0.4 < waited < 3, waited


def test_a_slow_body_that_keeps_coming_is_read(served: tuple[str, int]) -> None:
    body = b'{"id": "urn:ngsi-ld:T:2", "type": "T"}'
    with socket.create_connection(served, timeout=5) as sock:
        sock.sendall(HEAD.format(len(body)).encode())
        for i in range(0, len(body), 5):  # 1.6 s in all, never 0.5 s without a byte
            time.sleep(0.2)
            sock.sendall(body[i : i + 5])
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]
    host, port = served
    resp = httpx.get(f"http://{host}:{port}{BASE}/entities/urn:ngsi-ld:T:2", timeout=5)
    assert resp.status_code == 200
