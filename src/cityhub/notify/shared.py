"""A change notified to many subscriptions: its record parsed once, and its notification data
rendered once per rendering they share, kept while their items wait.

The items of a change that notifies several subscriptions share its record's bytes (one
`OutboxItem.body` object). Parsing and rendering it again for each item made one 5 MB change
cost 200 subscriptions 200 parses and renders. Here an entry holds the parsed record and the
`data` member of each rendering asked for (`payload.rendering_key`), and each notification is
only its envelope around those bytes. Entries are bounded by bytes (`LIMIT`: the parse as
`parsed_size` estimates it, renderings by their length), the least recently used first out;
a change larger than the bound alone is parsed per item, as before. The dispatcher lets an
entry go when the last item sharing its body leaves (`forget`).

Every rendering reads the one parsed record, so none may change it: the renderers copy what
they add to (tests/test_notify_shared_change.py renders every option against a deep copy).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from cityhub import bigjson
from cityhub.notify.events import ChangeEvents

LIMIT = 64 * 2**20  # bytes of parsed changes and rendered data kept at most
# Python's objects over their JSON text, an upper estimate: a container ~64 bytes, a member
# or item ~48 (its slot and a number or key), a string ~48 (its header)
CONTAINER, MEMBER, STRING = 64, 48, 24  # STRING: per quote, two per string


def parsed_size(raw: bytes) -> int:
    """About the bytes raw's parsed value takes (over, not under: strings count their
    quotes and commas too); about 2 ms a MB."""
    containers = raw.count(b"{") + raw.count(b"[")
    return len(raw) + CONTAINER * containers + MEMBER * raw.count(b",") + STRING * raw.count(b'"')


@dataclass
class Entry:
    """One shared change: its parse and the data of each rendering made of it."""

    body: bytes  # held, so that no other body gets this one's id while the entry lives
    change: ChangeEvents
    cost: int
    # rendering key -> (what the key names by identity, held for the same reason; data)
    rendered: dict[Hashable, tuple[Any, bytes]] = field(default_factory=dict)


class SharedChanges:
    """Parsed shared changes and their renderings, by body, within `limit` bytes (used from
    the event loop and the large-JSON thread)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.entries: OrderedDict[int, Entry] = OrderedDict()  # by id(body), oldest use first
        self.size = 0
        self._lock = threading.Lock()

    def change(self, body: bytes) -> ChangeEvents:
        """The change a shared body records, parsed on first use."""
        with self._lock:
            entry = self._entry(body)
            if entry is not None:
                return entry.change
        change = ChangeEvents.from_record(bigjson.loads(body))
        cost = parsed_size(body)
        with self._lock:
            if cost <= self.limit and self._entry(body) is None:
                self.entries[id(body)] = Entry(body, change, cost)
                self.size += cost
                self._within(id(body))
        return change

    def data(self, body: bytes, key: Hashable, pin: Any, make: Callable[[], bytes]) -> bytes:
        """The data a rendering (key) gives of a shared change, made once: make() the first
        time. pin: an object the key names by its id, kept with it."""
        with self._lock:
            entry = self._entry(body)
            found = entry.rendered.get(key) if entry is not None else None
        if found is not None:
            return found[1]
        data = make()
        with self._lock:
            entry = self._entry(body)
            if (
                entry is not None
                and key not in entry.rendered
                and entry.cost + len(data) <= self.limit
            ):
                entry.rendered[key] = (pin, data)
                entry.cost += len(data)
                self.size += len(data)
                self._within(id(body))
        return data

    def forget(self, body: bytes) -> None:
        """No item shares this body any more: its entry goes."""
        with self._lock:
            if self._entry(body) is not None:
                self.size -= self.entries.pop(id(body)).cost

    def _entry(self, body: bytes) -> Entry | None:
        """body's entry, marked as the latest used (under the lock)."""
        entry = self.entries.get(id(body))
        if entry is None or entry.body is not body:
            return None
        self.entries.move_to_end(id(body))
        return entry

    def _within(self, keep: int) -> None:
        """Drop the least recently used entries, never keep's, until within the limit."""
        while self.size > self.limit:
            oldest = next(iter(self.entries))
            if oldest == keep:
                return  # keep alone is within the limit: the others went first
            self.size -= self.entries.pop(oldest).cost
