"""An outbox in memory for Dispatcher tests: what the dispatcher leaves on disk past its
bounds is read back from here, and acknowledged items leave it."""

from __future__ import annotations

from cityhub.store.base import OutboxItem


class MemoryOutbox:
    """Items by seq: ack deletes them, backlog reads a subscription's from a seq on."""

    def __init__(self) -> None:
        self.items: dict[int, OutboxItem] = {}
        self.acked: list[int] = []

    def add(self, items: list[OutboxItem]) -> list[OutboxItem]:
        """Keep items, as a commit does before they are submitted."""
        self.items.update((i.seq, i) for i in items)
        return items

    def ack(self, seqs: list[int]) -> None:
        """Delete delivered (or given up) items."""
        self.acked += seqs
        for seq in seqs:
            self.items.pop(seq, None)

    def backlog(self, tenant: str, sub_id: str, seq: int, limit: int) -> list[OutboxItem]:
        """A subscription's items from seq on, oldest first."""
        mine = [
            i
            for s, i in sorted(self.items.items())
            if s >= seq and i.tenant == tenant and i.sub_id == sub_id
        ]
        return mine[:limit]
