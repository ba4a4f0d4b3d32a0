"""Large JSON parsed in pieces on a thread of its own, so the event loop keeps serving.

orjson holds the GIL for a whole document: a 15 MB batch body held every other request for
0.4-0.9 s, on a thread as much as on the loop. msgspec splits a document into its members'
raw bytes (`msgspec.Raw`) at C speed without building them, and each member is then parsed on
its own: between members the interpreter hands the GIL to the loop (every 1 ms, `cli.py`
`tune_runtime`). A body under `OFF_LOOP` bytes is parsed at once, on the loop, as before.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import msgspec
import orjson

T = TypeVar("T")
OFF_LOOP = 256 * 1024  # bytes of JSON from which it is parsed (or a notification rendered) here
PIECE = 64 * 1024  # a member larger than this is split into its own members in turn
SPLIT_LEVELS = 4  # levels split at most: deeper, the rest of a member is parsed at once
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_BLANK = re.compile(rb"[ \t\r\n]*")
_pool: ThreadPoolExecutor | None = None


class InvalidJson(ValueError):
    """A document split in pieces is not valid JSON (orjson's or msgspec's reason)."""


def loads(raw: bytes | memoryview | str) -> Any:
    """The value of a JSON document, parsed in pieces when it is large (on any thread)."""
    if isinstance(raw, str):
        raw = raw.encode()
    try:
        return _parse(raw, SPLIT_LEVELS)
    except (msgspec.DecodeError, orjson.JSONDecodeError, RecursionError) as exc:
        raise InvalidJson(str(exc)) from exc


def _parse(raw: Any, levels: int) -> Any:
    """raw's value: an array or object larger than PIECE member by member, the rest at once."""
    if len(raw) <= PIECE or levels == 0:
        return orjson.loads(raw if isinstance(raw, bytes | memoryview) else memoryview(raw))
    view = memoryview(raw)
    blank = _BLANK.match(view)
    head = view[blank.end() : blank.end() + 1].tobytes() if blank else b""
    if head == b"[":
        return [_parse(part, levels - 1) for part in _ARRAY.decode(view)]
    if head == b"{":
        return {key: _parse(part, levels - 1) for key, part in _OBJECT.decode(view).items()}
    return orjson.loads(view)  # a scalar: one string, however long, is one copy


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) on the large-JSON thread (one: large bodies take turns, never both cores)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cityhub-json")
    return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
