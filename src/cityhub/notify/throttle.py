"""Throttling clocks of the open write transaction: stamped as its changes are matched, undone
if it (or the savepoint that made them) rolls back, so a refused write uses up no window."""

from __future__ import annotations

from cityhub.notify.subscription import Compiled
from cityhub.store.base import OutboxItem


class Stamps:
    """The `last_sent` stamps made since the last COMMIT, each with the value it replaced.

    A stamp is set at once, so a later change in the same transaction is throttled by it
    (GS CIM 009 5.2.12: `throttling` is the least time between two notifications). If the
    transaction rolls back (a full disk, a group run again job by job), the stamps of the
    items it dropped are undone: those notifications were never sent, and the next
    acknowledged change must not wait for them. All calls come under the store's write lock.
    """

    def __init__(self) -> None:
        self._undo: list[tuple[OutboxItem, Compiled, float | None]] = []

    def stamp(self, sub: Compiled, clock: float, item: OutboxItem) -> None:
        """Set sub's throttling clock for the item it is about to queue."""
        self._undo.append((item, sub, sub.last_sent))
        sub.last_sent = clock

    def committed(self) -> None:
        """The transaction committed: its stamps stand."""
        self._undo.clear()

    def rolled_back(self, items: list[OutboxItem]) -> None:
        """Undo the stamps of dropped items, newest first (the rest of the transaction's stay)."""
        if not self._undo or not items:
            return
        gone = {id(item) for item in items}
        kept = []
        for entry in reversed(self._undo):
            item, sub, before = entry
            if id(item) in gone:
                sub.last_sent = before
            else:
                kept.append(entry)
        kept.reverse()
        self._undo = kept


__all__ = ["Stamps"]
