"""Rendered bodies of single-entity reads, reused while the stored JSON text is unchanged.

Dashboards poll the same entities again and again. A read still fetches the entity's stored
JSON text, so it always sees the latest write, by any process; the memo only skips parsing,
rendering and encoding when that text is exactly the text the body was rendered from.

The memo is bounded by bytes as well as entries: 4,096 entries of any size let 100 reads of
entities with a 4 MB string take the hub from 263 to 1,107 MB RSS (4,096 would hold 32 GB).
"""

from __future__ import annotations

import sys
from collections.abc import Hashable

from cityhub.jsonbytes import kept
from cityhub.ngsild.context import TermMap

MEMO_SIZE = 4096  # entities; at ~2.5 KB per entry (text and body) about 10 MB
MEMO_BYTES = 32 * 1024 * 1024  # texts and bodies held at most
# An entry larger than this is not kept: a few large entities would push every small one out.
MEMO_ENTRY_MAX = MEMO_BYTES // 16


class ReadMemo:
    """A bounded map key -> (stored text, term map, encoded body); the oldest entry goes first.

    The term map is compared by identity: a context that changed at its URL compiles to a new
    one. The entry holds the map, so its id cannot be reused while the entry lives.
    """

    def __init__(
        self, size: int = MEMO_SIZE, max_bytes: int = MEMO_BYTES, entry_max: int = MEMO_ENTRY_MAX
    ) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.entry_max = entry_max
        self.bytes = 0  # the texts' and bodies' sizes, summed over the entries
        self._entries: dict[Hashable, tuple[str, TermMap, bytes]] = {}

    def get(self, key: Hashable, text: str, tm: TermMap) -> bytes | None:
        """The body rendered from exactly this text with this term map, if it is still here."""
        entry = self._entries.get((key, id(tm)))
        if entry is None or entry[1] is not tm or entry[0] != text:
            return None
        return entry[2]

    def put(self, key: Hashable, text: str, tm: TermMap, body: bytes) -> None:
        """Remember the body rendered from text with tm (replacing what the key held), unless
        it alone takes more than entry_max bytes."""
        entries = self._entries
        full_key = (key, id(tm))
        old = entries.pop(full_key, None)
        if old is not None:
            self.bytes -= _weight(old[0], old[2])
        weight = _weight(text, body)
        if weight > self.entry_max:
            return
        while entries and (len(entries) >= self.size or self.bytes + weight > self.max_bytes):
            gone = entries.pop(next(iter(entries)))
            self.bytes -= _weight(gone[0], gone[2])
        entries[full_key] = (text, tm, kept(body))
        self.bytes += weight

    def __len__(self) -> int:
        return len(self._entries)


def _weight(text: str, body: bytes) -> int:
    """What an entry holds: its text's object and its body's bytes."""
    return sys.getsizeof(text) + len(body)
