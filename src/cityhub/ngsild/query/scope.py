"""Parser for scope queries (`scopeQ=/Madrid/#,/Barcelona/+/Parks`, clause 4.19)."""

from __future__ import annotations

import re

from cityhub.ngsild.errors import BadRequestData, shown
from cityhub.ngsild.query.ast import ScopeAnd, ScopeNode, ScopeOr, ScopePattern
from cityhub.ngsild.query.typeexpr import parse_selection

_BAD_LEVEL_RE = re.compile(r"[<>\"'=\\\x00-\x1f\x7f#+]")


def _pattern(token: str) -> ScopeNode:
    """Validate one scope path: `/level/...`, `+` a whole level, `#` only as the last level."""
    levels = token.split("/")
    if levels[0] != "" or len(levels) < 2:
        raise BadRequestData(f"invalid scope {shown(token)}: must start with '/'")
    for n, level in enumerate(levels[1:], start=1):
        if level == "+" or (level == "#" and n == len(levels) - 1):
            continue
        if not level or _BAD_LEVEL_RE.search(level):
            raise BadRequestData(f"invalid scope level {shown(level)} in {shown(token)}")
    return ScopePattern(token)


def parse_scope(text: str) -> ScopeNode:
    """Parse the `scopeQ` parameter into a ScopePattern/ScopeAnd/ScopeOr tree."""
    return parse_selection(text, _pattern, _scope_and, _scope_or, "scopeQ")


def _scope_and(items: tuple[ScopeNode, ...]) -> ScopeNode:
    return ScopeAnd(items)


def _scope_or(items: tuple[ScopeNode, ...]) -> ScopeNode:
    return ScopeOr(items)
