"""A notification body sent in parts: the envelope of one notification around the data that
the notifications of one change share.

Notifications of a shared change differ only in their envelope (id, subscriptionId,
notifiedAt, ...). Joined into one bytes object each, 200 of a 5 MB change in flight at once
held 1.2 GB (peak RSS); as parts, they hold the one copy of the data and a few hundred bytes
each, and the HTTP sender writes the data a slice at a time with its Content-Length.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

SLICE = 64 * 1024  # bytes handed to the connection at once (it drains past 64 KiB)


@dataclass(frozen=True)
class Pieces:
    """JSON bytes in parts, in order."""

    parts: tuple[bytes, ...]

    def __len__(self) -> int:
        """The bytes of the whole body (its Content-Length)."""
        return sum(len(part) for part in self.parts)

    def joined(self) -> bytes:
        """The whole body as one bytes object (a copy)."""
        return b"".join(self.parts)

    async def slices(self) -> AsyncIterator[memoryview]:
        """The body a slice at a time, without copying the parts, handing the loop over
        between slices: a write the socket takes at once does not suspend, and the 200
        notifications of a change, ready together, held the loop for their whole bodies."""
        for part in self.parts:
            view = memoryview(part)
            for at in range(0, len(view), SLICE):
                yield view[at : at + SLICE]
                await asyncio.sleep(0)


def as_bytes(body: bytes | Pieces) -> bytes:
    """A body whole, as senders without a streaming write need it."""
    return body.joined() if isinstance(body, Pieces) else body
