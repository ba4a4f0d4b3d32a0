"""Python functions the SQL calls: regular expressions, scope patterns, timestamps."""

from __future__ import annotations

import sqlite3
from typing import Any

from cityhub.ngsild.query.pattern import PatternError, compile_pattern
from cityhub.store.base import period_index
from cityhub.store.sqlite.index import norm_datetime


def regexp(pattern: str, value: Any) -> bool:
    """SQL regexp(pattern, value): search semantics, False on non-strings."""
    if not isinstance(value, str):
        return False
    try:
        return compile_pattern(pattern).search(value) is not None
    except PatternError:
        return False


def scope_match(pattern: str, scope: Any) -> bool:
    """scopeQ: `/a/b` exact, `/a/#` itself or any descendant, `+` one level, `/#` all."""
    if not isinstance(scope, str):
        return False
    if pattern == "/#":
        return True
    pat = pattern.strip("/").split("/")
    got = scope.strip("/").split("/")
    for i, seg in enumerate(pat):
        if seg == "#":
            return len(got) >= i
        if i >= len(got) or (seg != "+" and seg != got[i]):
            return False
    return len(got) == len(pat)


def register(conn: sqlite3.Connection) -> None:
    """Install the functions every connection needs."""
    conn.create_function("regexp", 2, regexp, deterministic=True)
    conn.create_function("scope_match", 2, scope_match, deterministic=True)
    conn.create_function(
        "period_index",
        4,
        lambda start, t, months, seconds: (
            None if t is None else period_index(start, t, months, seconds)
        ),
        deterministic=True,
    )
    conn.create_function(
        "norm_ts", 1, lambda v: norm_datetime(v) if isinstance(v, str) else v, deterministic=True
    )
