"""Who may use the notification pool's sockets: each receiver its share, and receivers whose
last attempt got no answer half the pool between them.

A receiver that never answers holds a socket for each attempt's timeout. Endpoints of one
host are bounded by the receiver's share (`host`); hung receivers spread over many hosts are
bounded, from their second attempt on, by the half of the pool that receivers without an
answer share (`silent`): the other half stays for those that answer. A receiver leaves the
silent ones with its next answer, whatever its status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

SILENT_KEPT = 100_000  # receivers remembered as silent at most (the oldest forgotten first)


@dataclass
class HostSlots:
    """The sockets one receiver may use at once, and the sends using or awaiting them."""

    free: asyncio.Semaphore
    users: int = 0


def receiver(uri: str) -> tuple[str, str]:
    """Whom a URI's notifications go to: scheme and host:port as written (redirect hops count
    to the endpoint's)."""
    parts = urlsplit(uri)
    return parts.scheme.lower(), parts.netloc.rpartition("@")[2].lower()


class PoolShares:
    """Per-receiver shares of a pool of `connections` sockets (on one event loop)."""

    def __init__(self, connections: int, host: int) -> None:
        self.connections = connections
        self.host = host
        self._pool = asyncio.Semaphore(connections)
        self._silent_slots = asyncio.Semaphore(max(1, connections // 2))
        self._hosts: dict[tuple[str, str], HostSlots] = {}  # receivers with sends under way
        self.silent: OrderedDict[tuple[str, str], None] = OrderedDict()

    @contextlib.asynccontextmanager
    async def slot(self, key: tuple[str, str]) -> AsyncIterator[None]:
        """A socket for one send to a receiver: its own share first, then, if its last attempt
        got no answer, the silent ones' half, then the pool's."""
        slots = self._hosts.get(key)
        if slots is None:
            slots = self._hosts[key] = HostSlots(asyncio.Semaphore(self.host))
        slots.users += 1
        try:
            async with slots.free:
                if key in self.silent:
                    async with self._silent_slots, self._pool:
                        yield
                else:
                    async with self._pool:
                        yield
        finally:
            slots.users -= 1
            if not slots.users:
                del self._hosts[key]

    def answered(self, key: tuple[str, str]) -> None:
        """The receiver answered (any status)."""
        self.silent.pop(key, None)

    def unanswered(self, key: tuple[str, str]) -> None:
        """The receiver gave no answer: timed out, refused or reset the connection."""
        self.silent[key] = None
        self.silent.move_to_end(key)
        if len(self.silent) > SILENT_KEPT:
            self.silent.popitem(last=False)
