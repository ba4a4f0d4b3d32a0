"""How many bytes of large request bodies the hub holds at once (CITYHUB_BODY_MEMORY_MB).

Each body is bounded (CITYHUB_MAX_BODY, 64 MiB), but not how many arrive together: a 61 MB
batch upsert took the hub from 171 to 371 MB while it was read, parsed and written, and four
at once to 805 MB, with up to CITYHUB_MAX_CONNECTIONS clients allowed to send one. A body of
COUNTED bytes or more takes its length from this budget before it is read (or as it is read,
without a Content-Length) and gives it back when its request has been answered (`HubApp`);
one that does not fit is a 503 with Retry-After, before it is read, and stores nothing. One
body is always taken while no other is held, so CITYHUB_MAX_BODY stays what one may send.
Smaller bodies (device messages, entity writes) are not counted and cost nothing more.
"""

from __future__ import annotations

from starlette.types import Scope

from cityhub.bigjson import OFF_LOOP
from cityhub.ngsild.errors import Overloaded

COUNTED = OFF_LOOP  # bodies from this many bytes on are counted: those parsed off the loop
HELD = "cityhub.body_bytes"  # the scope key of the bytes a request holds


class BodyBudget:
    """The bytes of large bodies held by requests not yet answered, within `most`."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.held = 0

    def take(self, scope: Scope, size: int) -> None:
        """Hold `size` bytes more for this request, or Overloaded when they do not fit
        beside other requests' (its own, read so far without a Content-Length, are none)."""
        others = self.held - scope.get(HELD, 0)
        if others and self.held + size > self.most:
            raise Overloaded(
                f"the hub is reading {others / 2**20:,.1f} MiB of other large request "
                f"bodies; {size / 2**20:,.1f} MiB more would pass CITYHUB_BODY_MEMORY_MB "
                f"({self.most // 2**20:,} MiB): nothing was read or stored, try again shortly"
            )
        self.held += size
        scope[HELD] = scope.get(HELD, 0) + size

    def give_back(self, scope: Scope) -> None:
        """The request was answered: its bytes are free for others."""
        self.held -= scope.pop(HELD, 0)
