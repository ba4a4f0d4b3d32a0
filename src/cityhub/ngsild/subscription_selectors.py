"""How many EntitySelectors one subscription may hold: every change of an entity is tested
against them on the event loop, inside its write transaction. One subscription of 20,000
idPatterns (a 1 MB body) held the loop 3.4 s to be created, 0.1 s for each entity written of
its type, and 11 s for a batch of 100 of them (batches are sliced by subscriptions, not by
their selectors)."""

from __future__ import annotations

import re
from typing import Any

from cityhub.ngsild.errors import BadRequestData

# EntitySelectors of one subscription (those with an id or a single type name are looked up,
# not tested one by one: notify/subscription.py::Selection)
MAX_SELECTORS = 1_000
# EntitySelectors tested one by one against each change: an idPattern (an RE2 program) or a
# type selection of more than one name; as many as the idPatterns of one registration
MAX_SCANNED = 100
_TYPE_OPERATORS = re.compile(r"[(),|;]")


def scanned(item: Any) -> bool:
    """Whether a (raw) EntitySelector is tested on its own against each change: no id, and an
    idPattern or a type selection with operators."""
    if not isinstance(item, dict) or "id" in item:
        return False
    kind = item.get("type")
    return "idPattern" in item or (isinstance(kind, str) and bool(_TYPE_OPERATORS.search(kind)))


def check_selectors(value: Any, what: str = "entities") -> None:
    """Refuse a subscription's entities past the bounds, before any of them is compiled (the
    array itself is checked item by item afterwards)."""
    if not isinstance(value, list):
        return
    if len(value) > MAX_SELECTORS:
        raise BadRequestData(
            f"{what} may hold at most {MAX_SELECTORS:,} EntitySelectors, got {len(value):,}; "
            "split the subscription, or select by type and q"
        )
    tested = sum(1 for item in value if scanned(item))
    if tested > MAX_SCANNED:
        raise BadRequestData(
            f"{what} may hold at most {MAX_SCANNED} EntitySelectors with an idPattern or a type "
            f"selection of several names (each is tested against every change), got {tested}"
        )


__all__ = ["MAX_SCANNED", "MAX_SELECTORS", "check_selectors", "scanned"]
