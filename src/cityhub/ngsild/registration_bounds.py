"""How much one context source registration may hold: every discovery query and every
csourceSubscription matches registrations in Python, entry by entry, so an unbounded one held
the hub (40,000 propertyNames took 28 s to store; 5,000 idPatterns, 10 s per query)."""

from __future__ import annotations

from typing import Any

from cityhub.ngsild.errors import BadRequestData

# information items, entities, entity types and attribute names of one registration, together
MAX_ENTRIES = 1_000
# idPatterns of one registration: each is a compiled RE2 program, matched against query ids
MAX_PATTERNS = 100


class InformationBudget:
    """Counts a registration's `information` while it is read, and refuses it at the bound
    before the rest is expanded."""

    def __init__(self) -> None:
        self.entries = 0
        self.patterns = 0

    def take(self, value: Any) -> None:
        """Count one entry, or each item of a list of them."""
        self.entries += len(value) if isinstance(value, list) else 1
        if self.entries > MAX_ENTRIES:
            raise BadRequestData(
                f"a registration's information may hold at most {MAX_ENTRIES:,} entries "
                "(information items, entities, entity types and attribute names together); "
                "split it into several registrations"
            )

    def pattern(self) -> None:
        """Count one idPattern."""
        self.patterns += 1
        if self.patterns > MAX_PATTERNS:
            raise BadRequestData(
                f"a registration may hold at most {MAX_PATTERNS} idPatterns; "
                "split it into several registrations"
            )


__all__ = ["MAX_ENTRIES", "MAX_PATTERNS", "InformationBudget"]
