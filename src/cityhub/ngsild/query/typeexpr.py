"""Parser for entity type selections (`type=A,B`, `A|B`, `A;B`, `(A;B)|C`, clause 4.17)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeVar

from cityhub.ngsild.errors import BadRequestData, excerpt, shown
from cityhub.ngsild.query.ast import MAX_TERMS, TypeAnd, TypeName, TypeNode, TypeOr

N = TypeVar("N")
MAX_DEPTH = 32
_TOKEN_RE = re.compile(r"\s*(?:([(),|;])|([^\s(),|;]+))")
_OPERATORS = frozenset("(),|;")
_BAD_NAME_RE = re.compile(r"[<>\"'=\\\x00-\x1f\x7f]")
# Type selections kept parsed, of at most CACHED_TEXT characters each: at most ~1 MiB
CACHED, CACHED_TEXT = 1024, 1024


def parse_selection(
    text: str,
    leaf: Callable[[str], N],
    and_node: Callable[[tuple[N, ...]], N],
    or_node: Callable[[tuple[N, ...]], N],
    what: str,
) -> N:
    """Parse `a;b|(c,d)` (`;` AND binds tighter than `,`/`|` OR) with leaf() per bare term.

    Shared by type and scope selections, whose only difference is what a term may be.
    """
    if not isinstance(text, str) or not text.strip():
        raise BadRequestData(f"invalid {what}: empty expression")
    tokens: list[str] = []
    terms = 0  # every term is a leaf: past MAX_TERMS the rest of the text is not read
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN_RE.match(stripped, pos)
        if m is None:  # pragma: no cover - the pattern accepts every non-space character
            raise BadRequestData(f"invalid {what}: {excerpt(text)}")
        token = m.group(1) or m.group(2)
        if token not in _OPERATORS:
            terms += 1
            if terms > MAX_TERMS:
                raise BadRequestData(f"invalid {what}: more than {MAX_TERMS:,} terms")
        tokens.append(token)
        pos = m.end()
    at = 0

    def fail(msg: str) -> BadRequestData:
        return BadRequestData(f"invalid {what}: {msg} in {excerpt(text)}")

    def peek() -> str:
        return tokens[at] if at < len(tokens) else ""

    def disjunction(depth: int) -> N:
        nonlocal at
        items = [conjunction(depth)]
        while peek() in (",", "|"):
            at += 1
            items.append(conjunction(depth))
        return items[0] if len(items) == 1 else or_node(tuple(items))

    def conjunction(depth: int) -> N:
        nonlocal at
        items = [primary(depth)]
        while peek() == ";":
            at += 1
            items.append(primary(depth))
        return items[0] if len(items) == 1 else and_node(tuple(items))

    def primary(depth: int) -> N:
        nonlocal at
        token = peek()
        if token == "(":
            if depth >= MAX_DEPTH:
                raise fail(f"parentheses nested deeper than {MAX_DEPTH}")
            at += 1
            node = disjunction(depth + 1)
            if peek() != ")":
                raise fail("expected ')'")
            at += 1
            return node
        if token in ("", ")", ",", "|", ";"):
            raise fail(f"expected a term, got {shown(token or 'end of input')}")
        at += 1
        return leaf(token)

    node = disjunction(0)
    if at != len(tokens):
        raise fail(f"unexpected {shown(peek())}")
    return node


def _type_name(token: str) -> TypeNode:
    """A type term: a short name, compact IRI or full IRI, without characters NGSI-LD bans."""
    if _BAD_NAME_RE.search(token):
        raise BadRequestData(f"invalid entity type name {shown(token)}")
    return TypeName(token)


def parse_types(text: str) -> TypeNode:
    """Parse the `type` parameter into a TypeName/TypeAnd/TypeOr tree; a short one once
    (the trees are frozen): start-up parsed each stored subscription's few type names anew."""
    if isinstance(text, str) and len(text) <= CACHED_TEXT:
        return _parsed_types(text)
    return parse_selection(text, _type_name, _type_and, _type_or, "type selection")


@functools.lru_cache(maxsize=CACHED)
def _parsed_types(text: str) -> TypeNode:
    """parse_types of a short text, kept (an error is raised again each time, not kept)."""
    return parse_selection(text, _type_name, _type_and, _type_or, "type selection")


def _type_and(items: tuple[TypeNode, ...]) -> TypeNode:
    return TypeAnd(items)


def _type_or(items: tuple[TypeNode, ...]) -> TypeNode:
    return TypeOr(items)
