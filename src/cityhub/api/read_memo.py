"""Rendered bodies of single-entity reads, reused while the stored JSON text is unchanged.

Dashboards poll the same entities again and again. A read still fetches the entity's stored
JSON text, so it always sees the latest write, by any process; the memo only skips parsing,
rendering and encoding when that text is exactly the text the body was rendered from.
"""

from __future__ import annotations

from collections.abc import Hashable

from cityhub.jsonbytes import kept
from cityhub.ngsild.context import TermMap

MEMO_SIZE = 4096  # entities; at ~2.5 KB per entry (text and body) about 10 MB


class ReadMemo:
    """A bounded map key -> (stored text, term map, encoded body); the oldest entry goes first.

    The term map is compared by identity: a context that changed at its URL compiles to a new
    one. The entry holds the map, so its id cannot be reused while the entry lives.
    """

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._entries: dict[Hashable, tuple[str, TermMap, bytes]] = {}

    def get(self, key: Hashable, text: str, tm: TermMap) -> bytes | None:
        """The body rendered from exactly this text with this term map, if it is still here."""
        entry = self._entries.get((key, id(tm)))
        if entry is None or entry[1] is not tm or entry[0] != text:
            return None
        return entry[2]

    def put(self, key: Hashable, text: str, tm: TermMap, body: bytes) -> None:
        """Remember the body rendered from text with tm (replacing what the key held)."""
        entries = self._entries
        full_key = (key, id(tm))
        entries.pop(full_key, None)
        if len(entries) >= self.size:
            del entries[next(iter(entries))]
        entries[full_key] = (text, tm, kept(body))

    def __len__(self) -> int:
        return len(self._entries)
