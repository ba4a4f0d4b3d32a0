"""What a failed attempt may carry besides failing: the receiver's word on when to try again.

A receiver that is overloaded answers 429 (or 503) with `Retry-After` (RFC 9110 10.2.3);
retrying sooner only adds to its load and spends the notification's attempts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryLater:
    """A failed attempt (falsy, like False) whose receiver asked for `seconds` of rest."""

    seconds: float

    def __bool__(self) -> bool:
        return False


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After value asks for (delay-seconds or an HTTP-date, read at `now`,
    epoch seconds); None when it is missing or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


__all__ = ["RetryLater", "retry_after"]
