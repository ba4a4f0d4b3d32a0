"""pick/omit projections, with braces for members of linked entities: `id,locatedAt{name}`."""

from __future__ import annotations

import re

from cityhub.ngsild.errors import BadRequestData, excerpt

Projection = dict[str, "Projection | None"]
_NAME = re.compile(r"[^,{}\s;]+")
# Names one pick, omit or attrs may hold, counted as read: an entity holds at most 2,000
# attributes (entity.MAX_ATTRS), and an omit of 1,000,000 names took 3.4 s of CPU for a 200.
MAX_NAMES = 2_000


def check_names(count: int, what: str) -> None:
    """A 400 when a list of attribute names is longer than any entity could use."""
    if count > MAX_NAMES:
        raise BadRequestData(f"{what} names more than {MAX_NAMES:,} members")


def parse_projection(text: str) -> Projection:
    """Parse a pick/omit value into {name: nested projection or None}."""
    tree, pos = _members(text, 0, depth=0, seen=[0])
    if pos != len(text):
        raise BadRequestData(f"unexpected {text[pos]!r} at position {pos} in {excerpt(text)}")
    return tree


def _members(text: str, pos: int, depth: int, seen: list[int]) -> tuple[Projection, int]:
    if depth > 8:
        raise BadRequestData("projection nests too deeply")
    out: Projection = {}
    while True:
        m = _NAME.match(text, pos)
        if not m:
            raise BadRequestData(f"expected an attribute name at position {pos} in {excerpt(text)}")
        seen[0] += 1
        check_names(seen[0], "a projection")
        name, pos = m.group(), m.end()
        sub: Projection | None = None
        if pos < len(text) and text[pos] == "{":
            sub, pos = _members(text, pos + 1, depth + 1, seen)
            if pos >= len(text) or text[pos] != "}":
                raise BadRequestData(f"unclosed '{{' in {excerpt(text)}")
            pos += 1
        out[name] = sub
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        return out, pos
