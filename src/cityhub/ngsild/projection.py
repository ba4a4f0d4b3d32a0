"""pick/omit projections, with braces for members of linked entities: `id,locatedAt{name}`."""

from __future__ import annotations

import re

from cityhub.ngsild.errors import BadRequestData

Projection = dict[str, "Projection | None"]
_NAME = re.compile(r"[^,{}\s;]+")


def parse_projection(text: str) -> Projection:
    """Parse a pick/omit value into {name: nested projection or None}."""
    tree, pos = _members(text, 0, depth=0)
    if pos != len(text):
        raise BadRequestData(f"unexpected {text[pos]!r} at position {pos} in {text!r}")
    return tree


def _members(text: str, pos: int, depth: int) -> tuple[Projection, int]:
    if depth > 8:
        raise BadRequestData("projection nests too deeply")
    out: Projection = {}
    while True:
        m = _NAME.match(text, pos)
        if not m:
            raise BadRequestData(f"expected an attribute name at position {pos} in {text!r}")
        name, pos = m.group(), m.end()
        sub: Projection | None = None
        if pos < len(text) and text[pos] == "{":
            sub, pos = _members(text, pos + 1, depth + 1)
            if pos >= len(text) or text[pos] != "}":
                raise BadRequestData(f"unclosed '{{' in {text!r}")
            pos += 1
        out[name] = sub
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        return out, pos
