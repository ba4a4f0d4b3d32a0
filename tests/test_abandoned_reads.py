"""A read whose client has left is not started, or is stopped, so it holds no reader thread;
and a read's CITYHUB_QUERY_TIMEOUT counts from when it was queued.

On a real uvicorn server (the in-process transport cannot disconnect), with one reader
thread held inside the store by a SQL function that waits for the test.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from cityhub.api import protocol, readers
from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.reads import ReadLimit
from cityhub.store.sqlite import functions
from conftest import BASE
from served_hub import hub

HOLD = "^hold"  # the idPattern whose first row waits for the test


class Held:
    """SQL regexp() that records each pattern it is called with and holds the first call with
    HOLD until released."""

    def __init__(self) -> None:
        self.real = functions.regexp
        self.calls: list[str] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    def __call__(self, pattern: str, value: Any) -> bool:
        self.calls.append(pattern)
        if pattern == HOLD and not self.holding.is_set():
            self.holding.set()
            self.release.wait(30)
        return bool(self.real(pattern, value))


class Limits(ReadLimit):
    """ReadLimit that keeps each one made (one per read queued) and counts those whose
    client left."""

    made: list[Limits] = []
    left: list[Limits] = []

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout)
        Limits.made.append(self)

    def leave(self) -> None:
        super().leave()
        Limits.left.append(self)


def until(done: Callable[[], bool], what: str) -> None:
    """Wait for done() (10 s at most)."""
    end = time.monotonic() + 10
    while not done():
        assert time.monotonic() < end, what
        time.sleep(0.01)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Held:
    """regexp() held, registered on every connection opened from now on."""
    fn = Held()
    monkeypatch.setattr(functions, "regexp", fn)
    monkeypatch.setattr(readers, "ReadLimit", Limits)
    monkeypatch.setattr(Limits, "made", [])
    monkeypatch.setattr(Limits, "left", [])
    return fn


@pytest.fixture
def app(tmp_path: Path, held: Held) -> Starlette:
    """A hub with one reader thread."""
    return create_app(Settings(db=str(tmp_path / "hub.db"), query_threads=1))


@contextmanager
def client_of(tmp_path: Path, app: Starlette) -> Iterator[httpx.Client]:
    """A client of the app on a real server."""
    with hub(tmp_path, protocol.BoundedHttpTools, app) as (host, port):
        client = httpx.Client(base_url=f"http://{host}:{port}{BASE}", timeout=30)
        with client:
            yield client


@pytest.fixture
def served(tmp_path: Path, app: Starlette) -> Iterator[httpx.Client]:
    """A client of the app on a real server, with 50 sensors stored."""
    sensors = [
        {
            "id": f"urn:ngsi-ld:Sensor:s{i}",
            "type": "Sensor",
            "n": {"type": "Property", "value": i, "observedAt": "2026-01-01T00:00:00Z"},
        }
        for i in range(50)
    ]
    with client_of(tmp_path, app) as client:
        r = client.post("/entityOperations/create", json=sensors)
        assert r.status_code == 201, r.text
        yield client


def sent(client: httpx.Client, method: str, path: str, body: Any = None) -> socket.socket:
    """A raw connection that has sent one whole request and reads no answer."""
    url = client.base_url
    sock = socket.create_connection((url.host, url.port), timeout=5)
    data = b"" if body is None else orjson.dumps(body)
    head = (
        f"{method} {url.path.rstrip('/')}{path} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    return sock


def abort(sock: socket.socket) -> None:
    """Close with a reset, as a client that gives up does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def held_query(client: httpx.Client, held: Held) -> tuple[threading.Thread, list[int]]:
    """A connected query that holds the only reader thread until released: its thread, and
    the status it got (once answered)."""
    status: list[int] = []
    thread = threading.Thread(
        target=lambda: status.append(
            client.get("/entities", params={"type": "Sensor", "idPattern": HOLD}).status_code
        )
    )
    thread.start()
    assert held.holding.wait(10), "the held query did not start"
    return thread, status


def test_reads_whose_clients_left_are_not_started(
    served: httpx.Client, held: Held, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five reads queued behind a running one (a query, a POSTed query, a temporal read and
    two discovery reads), whose clients then leave, never run; a connected one after them
    answers."""
    store = app.state.store
    ran: list[str] = []
    for method in ("entity_types", "attribute_stats", "temporal"):
        real = getattr(store, method)
        monkeypatch.setattr(
            store, method, lambda *a, _m=method, _r=real, **k: ran.append(_m) or _r(*a, **k)
        )
    first, status = held_query(served, held)
    query = {"type": "Query", "entities": [{"idPattern": "^gone2", "type": "Sensor"}]}
    gone = [
        sent(served, "GET", "/entities?type=Sensor&idPattern=%5Egone1"),
        sent(served, "POST", "/entityOperations/query", query),
        sent(served, "GET", "/temporal/entities?type=Sensor&idPattern=%5Egone3"),
        sent(served, "GET", "/types?details=true"),
        sent(served, "GET", "/attributes?details=true"),
    ]
    until(lambda: len(Limits.made) == 6, "the five reads were not all queued")
    for sock in gone:
        abort(sock)
    until(lambda: len(Limits.left) == 5, "the hub did not see the five clients leave")
    held.release.set()
    first.join(10)
    assert status == [200]
    r = served.get("/entities", params={"type": "Sensor", "idPattern": "^urn:ngsi-ld:Sensor:s7$"})
    assert r.status_code == 200 and [e["id"] for e in r.json()] == ["urn:ngsi-ld:Sensor:s7"]
    assert sorted(set(held.calls)) == [HOLD, "^urn:ngsi-ld:Sensor:s7$"]
    assert ran == []


def test_a_running_read_stops_when_its_client_leaves(served: httpx.Client, held: Held) -> None:
    """The read stops at its next row, and the thread is free for the next client."""
    sock = sent(served, "GET", "/entities?type=Sensor&idPattern=%5Ehold&limit=1000")
    assert held.holding.wait(10), "the read did not start"
    abort(sock)
    until(lambda: len(Limits.left) == 1, "the hub did not see the client leave")
    held.release.set()
    r = served.get("/entities", params={"type": "Sensor", "idPattern": "^urn:ngsi-ld:Sensor:s7$"})
    assert r.status_code == 200 and len(r.json()) == 1
    assert held.calls.count(HOLD) == 1  # of the 50 rows it would have read


def test_a_purge_runs_though_its_client_left(served: httpx.Client, held: Held) -> None:
    """A purge's selection is part of a write: like any write that arrived whole, it is
    carried out whether or not its client waits for the answer."""
    first, status = held_query(served, held)
    sock = sent(served, "DELETE", "/entities?type=Sensor&q=n%3C10")
    until(lambda: len(Limits.made) == 2, "the purge was not queued")
    abort(sock)
    time.sleep(0.2)  # the hub sees the reset (nothing to wait on: a purge does not watch)
    held.release.set()
    first.join(10)
    assert status == [200]
    until(
        lambda: served.get("/entities/urn:ngsi-ld:Sensor:s3").status_code == 404,
        "the purge was not carried out",
    )
    assert served.get("/entities/urn:ngsi-ld:Sensor:s12").status_code == 200


def test_a_read_that_waited_its_whole_timeout_is_not_started(tmp_path: Path, held: Held) -> None:
    """CITYHUB_QUERY_TIMEOUT counts from when the read is queued: one that spent all of it
    waiting for a thread is answered 503 with Retry-After and never runs."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), query_threads=1, query_timeout=0.3))
    with client_of(tmp_path, app) as client:
        r = client.post("/entities", json={"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor"})
        assert r.status_code == 201, r.text
        first, _ = held_query(client, held)
        answer: list[httpx.Response] = []
        late = threading.Thread(
            target=lambda: answer.append(
                client.get("/entities", params={"type": "Sensor", "idPattern": "^late"})
            )
        )
        late.start()
        until(lambda: len(Limits.made) == 2, "the second read was not queued")
        until(lambda: time.monotonic() > Limits.made[1].deadline, "")
        held.release.set()
        first.join(10)
        late.join(10)
    r = answer[0]
    assert r.status_code == 503 and r.headers["Retry-After"]
    detail = r.json()["detail"]
    assert "waited" in detail and "CITYHUB_QUERY_THREADS" in detail
    assert "^late" not in held.calls
