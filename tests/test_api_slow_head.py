"""Connections that never finish a request head are closed after a window (408 when part
of one came), and past the bound on open connections a new one is answered 503 at once: idle
and half-sent connections held for ever took every file descriptor of the hub."""

from __future__ import annotations

import logging
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.api import protocol
from cityhub.ngsild.service import EntityService
from conftest import BASE
from served_hub import hub

GET = f"GET {BASE}/entities?type=T HTTP/1.1\r\nHost: hub\r\n\r\n".encode()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The hub with a window of 0.5 s for a request head."""
    with hub(tmp_path, protocol.BoundedHttpTools.capped(protocol.MAX_CONNECTIONS, 0.5)) as address:
        yield address


def until_closed(sock: socket.socket, bound: float = 10.0) -> bytes:
    """Everything the hub sends until it closes the connection, within a generous bound."""
    sock.settimeout(bound)
    answer = b""
    while chunk := sock.recv(65536):  # socket.timeout (a failure) if it stays open
        answer += chunk
    return answer


def response(sock: socket.socket) -> bytes:
    """One whole response (headers and a Content-Length body) on a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_connection_that_sends_nothing_is_closed(served: tuple[str, int]) -> None:
    with socket.create_connection(served, timeout=5) as sock:
        assert until_closed(sock) == b""  # nothing was asked: nothing is answered


def test_an_incomplete_head_is_408_and_closed(served: tuple[str, int]) -> None:
    with socket.create_connection(served, timeout=5) as sock:
        sock.sendall(b"GET /ngsi-ld/v1/entities?type=T HTTP/1.1\r\nHost: x\r\n")
        answer = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer and b"request head was not complete" in answer


def test_a_head_that_keeps_trickling_is_cut_too(served: tuple[str, int]) -> None:
    """The bound is on the whole head, not on a pause: a byte every 0.1 s does not hold it."""
    with socket.create_connection(served, timeout=5) as sock:
        sock.sendall(b"GET /ngsi-ld/v1/entities?type=T HTTP/1.1\r\nX")
        sock.setblocking(False)
        for _ in range(200):  # 20 s of trickle at most
            time.sleep(0.1)
            try:
                if sock.recv(65536) == b"":
                    break  # closed, after its 408
            except BlockingIOError:
                pass
            except ConnectionResetError:
                break  # closed while a byte was on its way
            try:
                sock.sendall(b"X")  # one more character of a header name
            except OSError:
                break
        else:
            pytest.fail("a head trickled for 20 s was never cut")


def test_the_next_head_after_a_response_is_bound_too(served: tuple[str, int]) -> None:
    """uvicorn's keep-alive clock stops at the next byte: half a second head was held for ever."""
    with socket.create_connection(served, timeout=5) as sock:
        sock.sendall(GET)
        assert response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /ngsi-ld/v1/entities?type=T HTTP/1.1\r\n")
        answer = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


def test_an_idle_kept_alive_connection_is_closed(served: tuple[str, int]) -> None:
    """Between requests an idle connection is uvicorn's keep-alive's (5 s under serve)."""
    with socket.create_connection(served, timeout=5) as sock:
        sock.sendall(GET)
        assert response(sock).startswith(b"HTTP/1.1 200 ")
        assert until_closed(sock) == b""


def test_a_slow_answer_is_not_cut(served: tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """The head clock waits while a request is being answered (a query on a reader thread
    that takes longer than the window), and the connection serves the next one."""
    query = EntityService.query

    def slow(self: EntityService, *args: Any) -> Any:
        time.sleep(1.5)
        return query(self, *args)

    monkeypatch.setattr(EntityService, "query", slow)
    with socket.create_connection(served, timeout=10) as sock:
        sock.sendall(GET)
        assert response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(GET)
        assert response(sock).startswith(b"HTTP/1.1 200 ")


def test_past_the_bound_a_connection_is_503_and_closed(tmp_path: Path) -> None:
    with hub(tmp_path, protocol.BoundedHttpTools.capped(2)) as address:
        held = [socket.create_connection(address, timeout=5) for _ in range(2)]
        time.sleep(0.2)  # both accepted before the third
        with socket.create_connection(address, timeout=5) as sock:
            answer = until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert b"CITYHUB_MAX_CONNECTIONS" in answer
        held[0].sendall(GET)  # those held are served
        assert response(held[0]).startswith(b"HTTP/1.1 200 ")
        held.pop().close()
        time.sleep(0.2)  # the hub saw it go
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(GET)
            assert response(sock).startswith(b"HTTP/1.1 200 ")
        for sock in held:
            sock.close()


def test_the_open_file_limit_makes_room_for_the_connections(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """systemd's soft limit (1,024) is raised within the hard one; a hard limit too low for
    the bound lowers the bound, and the log says so."""
    limits = [(1024, 4096)]
    monkeypatch.setattr(resource, "getrlimit", lambda _: limits[-1])
    monkeypatch.setattr(resource, "setrlimit", lambda _, pair: limits.append(pair))
    assert protocol.open_files_for(1000) == 1000
    assert limits[-1] == (1000 + protocol.SPARE_FILES, 4096)
    limits[:] = [(1024, 1024)]
    with caplog.at_level(logging.WARNING, "cityhub"):
        assert protocol.open_files_for(1000) == 1024 - protocol.SPARE_FILES
    assert "CITYHUB_MAX_CONNECTIONS=1000" in caplog.text
