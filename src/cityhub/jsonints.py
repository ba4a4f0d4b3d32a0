"""Integers a JSON document may hold: those the store keeps exactly (decision 053).

orjson turns an integer past 64 bits into the nearest double without a word, and SQLite's
JSON functions read one past 2^63 as a REAL: an ICCID of 20 digits came back with its last
four changed. A document holding such an integer is refused, with the path of the first.
"""

from __future__ import annotations

import json
from typing import Any

INT_MIN = -(2**63)  # SQLite's INTEGER, which its JSON functions read integers into
INT_MAX = 2**63 - 1
# every integer past the range has at least 19 digits: a document without such a run is
# not parsed again. Digits turned to "0" and the rest to " ", a run is found by bytes search
# (3 µs over 1 KB; the regex [0-9]{19} took 20 µs, trying a match at every digit)
_DIGITS = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))
_RUN = b"0" * 19


class _Huge:
    """An integer token past the range, kept as its text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _integer(text: str) -> Any:
    """parse_int for the second reading: only whether the integer fits matters."""
    digits = len(text) - text.startswith("-")
    if digits < 19:
        return 0
    if digits <= 20 and INT_MIN <= int(text) <= INT_MAX:
        return 0
    return _Huge(text)


def huge_integer(raw: bytes | memoryview, at: str = "") -> tuple[str, str] | None:
    """(path, text) of the first integer in a valid JSON document that lies outside
    INT_MIN..INT_MAX, or None; the path as `name.member[2]` from the top (from `at`, the
    document's own path in a larger one)."""
    if _RUN not in bytes(raw).translate(_DIGITS):
        return None
    try:
        value = json.loads(bytes(raw), parse_int=_integer, parse_float=lambda _: 0.0)
    except RecursionError:  # nested past Python's stack: refused for its depth where it counts
        return None
    return _find(value, at)


def _find(value: Any, path: str) -> tuple[str, str] | None:
    if type(value) is _Huge:
        return path or "the document", value.text
    if type(value) is dict:
        for key, item in value.items():
            found = _find(item, f"{path}.{key}" if path else key)
            if found:
                return found
    elif type(value) is list:
        for i, item in enumerate(value):
            found = _find(item, f"{path}[{i}]")
            if found:
                return found
    return None


def huge_integer_detail(found: tuple[str, str]) -> str:
    """What to tell the client who sent it."""
    path, text = found
    shown = text if len(text) <= 40 else text[:40] + "..."
    return (
        f"{path}: the integer {shown} is outside the range the hub keeps exactly "
        "(-2^63 to 2^63-1), and would be rounded; send it as a string, or as a number with a "
        "decimal point or an exponent (a double) where rounding is acceptable"
    )
