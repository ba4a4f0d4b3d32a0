"""A large request body is parsed in pieces on a thread, so a small read is answered meanwhile.

The timing tests (here and in test_notify_big_changes.py) hold the large work on its thread
until the small read has been answered (or 5 s passed): on the loop, the read could not be
answered before the work ended, so the check does not depend on how fast the host is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cityhub import bigjson
from cityhub.api import http
from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE, create, problem
from receivers import wait_for

SMALL = {"id": "urn:ngsi-ld:Small:1", "type": "Small", "p": {"type": "Property", "value": 1}}


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h")


def _big_entity(n: int, size: int = 400_000) -> dict[str, Any]:
    """A valid entity of over OFF_LOOP bytes."""
    return {
        "id": f"urn:ngsi-ld:Big:{n}",
        "type": "Big",
        "p": {"type": "Property", "value": "x" * size},
    }


class Held:
    """Wraps fn: a call on large input waits until release() (at most 5 s) and records its
    thread and whether it was released in time."""

    def __init__(self, fn: Callable[..., Any], large: Callable[..., bool]) -> None:
        self.fn, self.large = fn, large
        self.released = threading.Event()
        self.started = threading.Event()
        self.threads: list[str] = []
        self.in_time: list[bool] = []

    def __call__(self, *args: Any) -> Any:
        if self.large(*args):
            self.threads.append(threading.current_thread().name)
            self.started.set()
            self.in_time.append(self.released.wait(timeout=5))
        return self.fn(*args)


async def _started(held: Held) -> None:
    """Wait (yielding to the app) until the held work began."""
    await wait_for(held.started.is_set, timeout=10, what="the large work to start")


async def test_a_read_is_answered_while_a_large_body_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(http.too_deep, lambda raw, body: len(raw) >= bigjson.OFF_LOOP)
    monkeypatch.setattr(http, "too_deep", held)
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    async with _client(app) as c:
        await create(c, SMALL)
        big = asyncio.create_task(
            c.post(
                f"{BASE}/entities",
                content=orjson.dumps(_big_entity(1)),
                headers={"Content-Type": "application/json"},
            )
        )
        await _started(held)
        read = await c.get(f"{BASE}/entities/{SMALL['id']}")
        held.released.set()
        assert read.status_code == 200
        assert (await big).status_code == 201
    assert held.in_time == [True], "the read waited for the large body's parse"
    assert held.threads[0].startswith("cityhub-json")


async def test_a_small_body_is_parsed_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = http.too_deep

    def spy(raw: bytes, body: Any) -> bool:
        seen.append(threading.current_thread().name)
        return real(raw, body)

    monkeypatch.setattr(http, "too_deep", spy)
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    async with _client(app) as c:
        await create(c, SMALL)
    assert seen == [threading.current_thread().name]


async def test_a_large_body_that_is_no_json_or_nests_too_deep_is_refused(tmp_path: Path) -> None:
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    big = orjson.dumps(_big_entity(1))
    deep = orjson.dumps({**_big_entity(2), "q": {"type": "Property", "value": _nest(60)}})
    async with _client(app) as c:
        for body, kind in (
            (big[:-1], "InvalidRequest"),
            (big + b"]", "InvalidRequest"),
            (deep, "BadRequestData"),
        ):
            resp = await c.post(
                f"{BASE}/entities", content=body, headers={"Content-Type": "application/json"}
            )
            problem(resp, 400, kind)


def _nest(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "doc",
    [
        [{"a": i, "b": ["é" * 20, None, True, 1.5e300, -(2**63)]} for i in range(3000)],
        {"k" + str(i): {"v": list(range(50)), "s": "\u2028\ud7ff"} for i in range(2000)},
        {"one": [[{"x": "y" * 100}] * 40] * 40, "two": "z" * 200_000},
        [[[[list(range(10_000))]]]],
        "a lone string " * 10_000,
    ],
    ids=["array", "object", "nested", "deep", "scalar"],
)
def test_a_document_parsed_in_pieces_is_what_orjson_reads(
    doc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bigjson, "PIECE", 1024)
    raw = b" \n" + orjson.dumps(doc) + b"\t"
    assert bigjson.loads(raw) == orjson.loads(raw)


def test_repeated_keys_keep_the_last_value_in_the_first_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bigjson, "PIECE", 8)
    raw = b'{"a": [1, 2, 3, 4, 5], "b": "bbbbbbbbbb", "a": {"c": [6, 7, 8, 9]}}'
    parsed = bigjson.loads(raw)
    assert parsed == orjson.loads(raw)
    assert list(parsed) == list(orjson.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2",
        b"[1, 2,]",
        b"[NaN, 1111111]",
        b"[1111111111] x",
        b'["\xff\xfe", "aaaaaaaaaa"]',
        b'{"a": 1111111111, }',
        b'{"a"  1111111111}',
        b"[" * 2000 + b"]" * 2000,
    ],
)
def test_what_orjson_refuses_is_refused_in_pieces(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bigjson, "PIECE", 4)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    with pytest.raises(bigjson.InvalidJson):
        bigjson.loads(raw)
