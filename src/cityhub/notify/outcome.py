"""What a failed attempt carries besides failing: why (refused, timed out, HTTP 500), for the
line that gives a notification up, and the receiver's word on when to try again.

A receiver that is overloaded answers 429 (or 503) with `Retry-After` (RFC 9110 10.2.3);
retrying sooner only adds to its load and spends the notification's attempts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Failed:
    """A failed attempt (falsy, like False) and why, as a log line may show it."""

    why: str

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True)
class RetryLater:
    """A failed attempt (falsy, like False) whose receiver asked for `seconds` of rest."""

    seconds: float
    why: str = "asked to wait"

    def __bool__(self) -> bool:
        return False


# an attempt's outcome: True delivered; False (no reason known), Failed or RetryLater failed
Outcome = bool | Failed | RetryLater


def why(outcome: Outcome) -> str:
    """The cause of a failed attempt, for the log."""
    return outcome.why if isinstance(outcome, Failed | RetryLater) else "failed"


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


__all__ = ["Failed", "Outcome", "RetryLater", "retry_after", "why"]
