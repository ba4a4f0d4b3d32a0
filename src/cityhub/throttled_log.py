"""A log line for a failure that repeats many times a second (a full disk): one line per
interval, with how many were left out, so the log cannot flood the disk that is full; and the
same per key (a dead notification endpoint), so one key's lines never hide another's."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class _Throttle:
    """Where the lines go and how often one may: the settings both throttles share."""

    logger: logging.Logger
    every: float = 10.0
    clock: Callable[[], float] = time.monotonic


@dataclass
class ThrottledLog(_Throttle):
    """Logs at most one record per `every` seconds; the next one says how many it held back."""

    _last: float = field(default=-float("inf"), init=False)
    _held: int = field(default=0, init=False)

    def error(self, msg: str, *args: object) -> None:
        """Log msg % args as an error, unless one went out less than `every` seconds ago."""
        self._log(logging.ERROR, msg, args)

    def warning(self, msg: str, *args: object) -> None:
        """Log msg % args as a warning, unless one went out less than `every` seconds ago."""
        self._log(logging.WARNING, msg, args)

    def quiet(self) -> bool:
        """Whether the next record would be logged, holding none back (safe to forget)."""
        return self.clock() - self._last >= self.every and not self._held

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


@dataclass
class KeyedThrottledLog(_Throttle):
    """A ThrottledLog per key; those quiet for a whole interval are forgotten once many are
    kept, so the keys held are about those that logged within the last interval."""

    KEEP: ClassVar[int] = 1024  # keys kept before the quiet ones are forgotten
    _logs: dict[str, ThrottledLog] = field(default_factory=dict, init=False)

    def warning(self, key: str, msg: str, *args: object) -> None:
        """Log msg % args as a warning, unless one went out for key less than `every` ago."""
        throttled = self._logs.get(key)
        if throttled is None:
            if len(self._logs) >= self.KEEP:
                self._logs = {k: t for k, t in self._logs.items() if not t.quiet()}
            throttled = self._logs[key] = ThrottledLog(self.logger, self.every, self.clock)
        throttled.warning(msg, *args)

    def __len__(self) -> int:
        return len(self._logs)
