"""Which subscriptions a change can concern, without testing every one of them: by entity id,
by entity type, and a short list of the rest (id patterns, type expressions, no selector)."""

from __future__ import annotations

from typing import Any

from cityhub.ngsild.query import ast
from cityhub.notify.subscription import Compiled


class SubscriptionIndex:
    """The change-driven subscriptions of one tenant, looked up by what an entity is."""

    def __init__(self, subs: list[Compiled]) -> None:
        self.by_id: dict[str, list[Compiled]] = {}
        self.by_type: dict[str, list[Compiled]] = {}
        self.scan: list[Compiled] = []
        for sub in subs:
            keys: list[tuple[dict[str, list[Compiled]], str]] = []
            for sel in sub.selectors:
                if sel.id is not None:
                    keys.append((self.by_id, sel.id))
                elif sel.pattern is None and isinstance(sel.types, ast.TypeName):
                    keys.append((self.by_type, sel.types.name))
                else:
                    keys = []
                    break
            if not keys:
                self.scan.append(sub)
                continue
            for table, key in keys:
                table.setdefault(key, []).append(sub)

    def __bool__(self) -> bool:
        return bool(self.by_id or self.by_type or self.scan)

    def may_concern(self, eid: str, types: frozenset[str]) -> bool:
        """Whether any subscription may select an entity with this id and these types:
        False spares parsing the documents of a change no subscription is about."""
        return bool(self.scan) or eid in self.by_id or not self.by_type.keys().isdisjoint(types)

    def candidates(self, *docs: dict[str, Any] | None) -> list[Compiled]:
        """Subscriptions that may select any of these entity states, each once."""
        found: dict[int, Compiled] = {}
        for doc in docs:
            if doc is None:
                continue
            for sub in self.by_id.get(doc["id"], ()):
                found.setdefault(id(sub), sub)
            for typ in doc["type"]:
                for sub in self.by_type.get(typ, ()):
                    found.setdefault(id(sub), sub)
        for sub in self.scan:
            found.setdefault(id(sub), sub)
        return list(found.values())
