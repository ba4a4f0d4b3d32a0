"""How many attribute names one subscription may list (watchedAttributes, and the attributes,
pick and omit of its notification): each name is expanded at create and update, filed in the
matching index, and projected in every notification, on the event loop. 200,000
watchedAttributes (a 2.7 MB body) held the loop 4-5 s to be created; as many
notification.attributes made every notification rebuild a pick of 200,000 names."""

from __future__ import annotations

from typing import Any

from cityhub.ngsild.entity import MAX_ATTRS
from cityhub.ngsild.errors import BadRequestData

# names one member may list: as many attributes as one entity write may carry
MAX_NAMES = MAX_ATTRS


def names_in(value: Any) -> int:
    """How many names a member lists: an array's items, and in a pick or omit (an array of
    members or their text, `a,b{c}`) every name, at any depth (each comma or brace adds one)."""
    if isinstance(value, list):
        if all(isinstance(item, str) and "," not in item and "{" not in item for item in value):
            return len(value)
        value = ",".join(item for item in value if isinstance(item, str))
    if isinstance(value, str):
        return value.count(",") + value.count("{") + 1
    return 0


def check_names(value: Any, what: str) -> None:
    """Refuse a member listing more than MAX_NAMES names, before any is expanded."""
    count = names_in(value)
    if count > MAX_NAMES:
        raise BadRequestData(
            f"{what} may list at most {MAX_NAMES:,} attribute names, got {count:,}"
        )


__all__ = ["MAX_NAMES", "check_names", "names_in"]
