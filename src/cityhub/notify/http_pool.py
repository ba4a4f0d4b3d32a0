"""The notification sender's connection pool: a bound on its sockets, idle ones included.

aiohttp bounds only the connections in use (`limit`) and keeps an idle one per host and port
for `keepalive_timeout`, however many there are. Notifying 3,000 distinct endpoints took
every descriptor under a limit of 1,536: the hub's own listener refused clients and SQLite
could not open a reader (probe 2, finding 4). Here the sockets in use and idle together stay
within the pool's `limit`: the idle one unused the longest is closed to make room.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ClientRequest, ConnectionKey
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace


class BoundedConnector(aiohttp.TCPConnector):
    """A TCPConnector whose open sockets, in use and idle, number at most `limit` (> 0)."""

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        """Make room before a connection that no idle one of its host and port can serve."""
        if not self._conns.get(req.connection_key):
            self._make_room(1)
        return await super().connect(req, traces, timeout)

    def _release(
        self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False
    ) -> None:
        """A connection kept for reuse may leave too many open: close the oldest idle ones."""
        super()._release(key, protocol, should_close=should_close)
        self._make_room(0)

    def idle(self) -> int:
        """Idle sockets kept for reuse, over all hosts."""
        return sum(len(conns) for conns in self._conns.values())

    def _make_room(self, coming: int) -> None:
        """Close idle sockets, longest unused first, until those in use, idle and `coming`
        fit within the limit (or none is idle)."""
        idle = self.idle()
        while idle and idle + len(self._acquired) + coming > self.limit:
            key = min(self._conns, key=lambda k: self._conns[k][0][1] if self._conns[k] else 0.0)
            conns = self._conns[key]
            if conns:
                protocol, _ = conns.popleft()
                protocol.close()
                idle -= 1
            if not conns:
                del self._conns[key]


__all__ = ["BoundedConnector"]
