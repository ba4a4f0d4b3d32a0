"""orderBy's sort keys (clause 4.23): one byte string per entity and key, compared bytewise.

A key holds its group (a value, then null, then no value: 4.23.2 puts both last in either
direction), the datatype's rank in 4.23.2's order (numbers, strings, objects, arrays, booleans,
Times, Dates, DateTimes) and the value encoded so that bytes compare as values do. A
descending key inverts the rank and value bytes, so SQLite sorts every key ascending and calls
the function once per row and key. Strings compare by Unicode code point (UTF-8 bytes), not by
ICU root collation (README).
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

import orjson

from cityhub.ngsild.query.evaluate import MISSING, instance_target
from cityhub.ngsild.query.qlang import norm_date, norm_datetime, norm_time

NULL = b"\x01"  # the path reaches a JSON null
ABSENT = b"\x02"  # no default instance, or the path reaches nothing in it
_NUMBER, _STRING, _OBJECT, _ARRAY, _BOOLEAN, _TIME, _DATE, _DATETIME = range(8)
_TYPED = {"Time": (_TIME, norm_time), "Date": (_DATE, norm_date), "DateTime": (_DATETIME, None)}
_TIMES = frozenset({"createdAt", "modifiedAt", "observedAt"})  # DateTimes written as strings


def order_key(instance: str | None, spec: str) -> bytes:
    """The sort key of the default instance (JSON text) of an attribute for one orderBy key;
    `spec` is the JSON of [sub-attribute path, trailing keys, descending]."""
    if instance is None:
        return ABSENT
    subs, keys, desc = _spec(spec)
    target = instance_target(orjson.loads(instance), subs, keys)
    if isinstance(target, dict) and target.get("@type") == "@json" and "@value" in target:
        target = target["@value"]  # a JSON literal is its value
    if target is MISSING:
        return ABSENT
    if target is None:
        return NULL
    rank, value = _ranked(target, bool(subs) and subs[-1] in _TIMES and not keys)
    body = bytes([rank]) + _escaped(value)
    if desc:
        body = bytes(255 - b for b in body)
    return b"\x00" + body


@lru_cache(maxsize=256)
def _spec(spec: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    subs, keys, desc = orjson.loads(spec)
    return tuple(subs), tuple(keys), bool(desc)


def _ranked(value: Any, is_time: bool) -> tuple[int, bytes]:
    """4.23.2's rank of a value's datatype, and its bytes in that type's order."""
    if isinstance(value, bool):
        return _BOOLEAN, bytes([value])
    if isinstance(value, int | float):
        return _NUMBER, _number(value)
    if isinstance(value, str):
        normed = norm_datetime(value) if is_time else None
        if normed is not None:
            return _DATETIME, normed.encode()
        return _STRING, value.encode()
    if isinstance(value, dict) and set(value) == {"@type", "@value"}:
        kind, norm = _TYPED.get(str(value["@type"]), (None, None))
        normed = None if kind is None else (norm or norm_datetime)(value["@value"])
        if kind is not None and normed is not None:
            return kind, normed.encode()
    if isinstance(value, list):  # item by item, a shorter array first: [1] < [1, 5] < [2]
        items = (_ranked(item, False) for item in value)
        return _ARRAY, b"".join(bytes([rank]) + _escaped(item) for rank, item in items)
    return _OBJECT, orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _number(value: float) -> bytes:
    """A double's bytes in numeric order: the sign bit flipped, and every bit of a negative."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", float(value)))
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63
    return struct.pack(">Q", bits)


def _escaped(value: bytes) -> bytes:
    """value, ended so that no key is a prefix of another (a prefix sorts first ascending but
    would sort first descending too once inverted): NUL is written NUL 0xFF, then NUL NUL."""
    return value.replace(b"\x00", b"\x00\xff") + b"\x00\x00"
