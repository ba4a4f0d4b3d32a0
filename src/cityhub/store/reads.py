"""What a read on a reader thread brings from its request: the time it must end by, counted
from when it was queued, and whether its client is still there to take the answer.

The event loop writes a ReadLimit (when the read is queued, and when its client leaves); the
store only reads it, on the reader thread, so a float and a bool need no lock.
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar

from cityhub.store.base import ClientGone, QueryTimeout, StoreError


class ReadLimit:
    """One read's deadline (CITYHUB_QUERY_TIMEOUT from when it was queued) and its client."""

    __slots__ = ("deadline", "gone", "queued", "started", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.queued = time.monotonic()
        self.started = self.queued  # when a reader thread took it up
        self.deadline = self.queued + timeout if timeout else math.inf
        self.gone = False

    def leave(self) -> None:
        """Its client has gone: the read is not started, or stops at the store's next check
        (which looks at the deadline only, so this costs the checks nothing)."""
        self.gone = True
        self.deadline = -math.inf

    def stop(self) -> StoreError:
        """Why the read ends early: its client left, or it ran (or waited) past the timeout."""
        if self.gone:
            return ClientGone()
        return QueryTimeout(self.timeout, waited=self.started - self.queued)


# The limit of the read running in this context (api/readers.py sets it on the reader thread).
current: ContextVar[ReadLimit | None] = ContextVar("cityhub_read_limit", default=None)
