"""An endpoint's own `timeout`: bounded like the hub-wide CITYHUB_NOTIFY_TIMEOUT.

A tenant's queue for an endpoint URI is shared by every subscription of the tenant naming it, and
holds one notification in flight: an unbounded timeout (1e308 ms was accepted) let one
subscription stop that queue for every other until a restart (probe 2, finding 3).
"""

from __future__ import annotations

from typing import Any

from cityhub.ngsild.errors import BadRequestData

MAX_SECONDS = 300.0  # the most an attempt may take: CITYHUB_NOTIFY_TIMEOUT's bound too
MAX_MS = int(MAX_SECONDS * 1000)


def endpoint_timeout(value: Any, what: str = "notification.endpoint.timeout") -> float | int:
    """A valid endpoint timeout in milliseconds: a number above 0, at most MAX_MS."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise BadRequestData(f"{what} must be a number greater than 0")
    if not value <= MAX_MS:
        raise BadRequestData(f"{what} must be at most {MAX_MS} ms ({MAX_SECONDS:g} s)")
    return value


def attempt_seconds(endpoint: dict[str, Any], default: float) -> float:
    """Seconds one attempt to this endpoint may take: its own timeout or the hub's, and never
    past MAX_SECONDS (a subscription stored before the bound may hold any number)."""
    own = endpoint.get("timeout")
    seconds = float(own) / 1000 if own else default
    return min(seconds, MAX_SECONDS)


__all__ = ["MAX_MS", "MAX_SECONDS", "attempt_seconds", "endpoint_timeout"]
