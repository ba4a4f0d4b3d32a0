"""Client regular expressions (idPattern, q's `~=`) on RE2, whose matching is linear in the
input: with Python's backtracking `re`, one request with `(.*)*Z` stalls the hub for seconds
per entity (docs/decisions/014)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a client's bad pattern is its error, not a line in the hub's log


class Pattern(Protocol):
    """What the hub uses of a compiled pattern (re2's and re's alike)."""

    pattern: str

    def search(self, text: str) -> Any: ...

    def fullmatch(self, text: str) -> Any: ...


class PatternError(ValueError):
    """A pattern RE2 refuses: bad syntax, or what POSIX lacks (back-references, look-around)."""


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Pattern:
    """Compile a client pattern once."""
    try:
        compiled: Pattern = re2.compile(pattern, options=_OPTIONS)
    except (re2.error, UnicodeError, TypeError) as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise PatternError(str(reason)) from None
    return compiled
