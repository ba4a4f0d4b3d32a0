"""How deep a parsed JSON document nests, so deep documents are refused before they are stored.

orjson parses 1,024 levels but writes at most 254. Stored, an attribute's sub-attribute
level takes four levels (attrs, name, instances, sub), and a notification wraps the entity in
three more, so a body nested 253 levels deep failed in the store with a 500.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 48  # deepest nesting of objects and arrays a request body or device message may hold


def too_deep(raw: bytes, value: Any) -> bool:
    """Whether value (parsed from raw) nests objects and arrays deeper than MAX_DEPTH."""
    # only a document with that many objects and arrays can nest that deep (a C-speed count)
    if raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH or not isinstance(value, dict | list):
        return False
    return not _shallow(value, MAX_DEPTH)


def _shallow(value: Any, levels: int) -> bool:
    """Whether value nests objects and arrays at most `levels` deep."""
    if levels == 0:
        return False
    for item in value.values() if type(value) is dict else value:
        if (type(item) is dict or type(item) is list) and not _shallow(item, levels - 1):
            return False
    return True


def nests_deeper(value: Any, levels: int) -> bool:
    """Whether a parsed value nests objects and arrays deeper than `levels` (for documents
    that arrive without their raw bytes, such as imported rows)."""
    return isinstance(value, dict | list) and not _shallow(value, levels)
