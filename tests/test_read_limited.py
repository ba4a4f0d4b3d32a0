"""api/http.py::read_limited reads a body from the ASGI messages themselves (decision 068):
every chunk in order, the bound counted across chunks, a client that leaves mid-body."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import ClientDisconnect, Request

from cityhub.api.http import read_limited
from cityhub.ngsild.errors import RequestTooLarge


def request(*messages: dict[str, Any], length: bytes | None = None) -> Request:
    """A POST whose receive hands over these messages in turn."""
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    headers = [(b"content-length", length)] if length is not None else []
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


def part(body: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_chunks_are_joined_in_order() -> None:
    req = request(part(b'{"a":'), part(b""), part(b"1}", more=False))
    assert await read_limited(req, 100) == b'{"a":1}'


async def test_one_chunk_is_the_body() -> None:
    assert await read_limited(request(part(b"{}", more=False)), 2) == b"{}"


async def test_the_bound_counts_every_chunk() -> None:
    with pytest.raises(RequestTooLarge, match="more than 4 bytes"):
        await read_limited(request(part(b"abc"), part(b"de", more=False)), 4)


async def test_a_declared_length_past_the_bound_reads_nothing() -> None:
    with pytest.raises(RequestTooLarge, match="10 bytes; at most 4"):
        await read_limited(request(length=b"10"), 4)


async def test_a_client_that_leaves_mid_body() -> None:
    with pytest.raises(ClientDisconnect):
        await read_limited(request(part(b"ab"), {"type": "http.disconnect"}), 100)
