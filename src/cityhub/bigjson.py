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
from collections.abc import Callable, Iterator
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
        parts = _ARRAY.decode(view)
        items: list[Any] = []
        for run in _runs(parts):
            if len(run) == 1 and len(parts[run[0]]) > PIECE:
                items.append(_parse(parts[run[0]], levels - 1))
            else:
                items += orjson.loads(b"[%b]" % b",".join(parts[i] for i in run))
        return items
    if head == b"{":
        members = _OBJECT.decode(view)
        keys, values = list(members), list(members.values())
        found: dict[str, Any] = {}
        for run in _runs(values):
            if len(run) == 1 and len(values[run[0]]) > PIECE:
                found[keys[run[0]]] = _parse(values[run[0]], levels - 1)
            else:
                text = b",".join(orjson.dumps(keys[i]) + b":" + values[i] for i in run)
                found.update(orjson.loads(b"{%b}" % text))
        return found
    return orjson.loads(view)  # a scalar: one string, however long, is one copy


def _runs(parts: list[Any]) -> Iterator[list[int]]:
    """The positions of parts in runs parsed in one call each: a part larger than PIECE
    alone, smaller ones together up to about PIECE bytes (a call per member cost 3-4 times
    the whole parse)."""
    run: list[int] = []
    size = 0
    for i, part in enumerate(parts):
        if len(part) > PIECE:
            if run:
                yield run
                run, size = [], 0
            yield [i]
            continue
        run.append(i)
        size += len(part)
        if size >= PIECE:
            yield run
            run, size = [], 0
    if run:
        yield run


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) on the large-JSON thread (one: large bodies take turns, never both cores)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cityhub-json")
    return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
