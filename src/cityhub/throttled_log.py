"""A log line for a failure that repeats many times a second (a full disk): one line per
interval, with how many were left out, so the log cannot flood the disk that is full."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class ThrottledLog:
    """Logs at most one record per `every` seconds; the next one says how many it held back."""

    def __init__(
        self,
        logger: logging.Logger,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.every = every
        self.clock = clock
        self._last = -float("inf")
        self._held = 0

    def error(self, msg: str, *args: object) -> None:
        """Log msg % args as an error, unless one went out less than `every` seconds ago."""
        self._log(logging.ERROR, msg, args)

    def warning(self, msg: str, *args: object) -> None:
        """Log msg % args as a warning, unless one went out less than `every` seconds ago."""
        self._log(logging.WARNING, msg, args)

    def _log(self, level: int, msg: str, args: tuple[object, ...]) -> None:
        """One record per interval; the first after a quiet spell says how many were held."""
        now = self.clock()
        if now - self._last < self.every:
            self._held += 1
            return
        if self._held:
            msg += f" (and {self._held} more like it since the last such line)"
        self._last, self._held = now, 0
        self.logger.log(level, msg, *args)
