"""Remote @contexts that did not answer in time, remembered for a short while (decision 084):
each request naming one would otherwise wait the whole CITYHUB_CONTEXT_TIMEOUT again."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from cityhub.ngsild.errors import LdContextNotAvailable

REMEMBERED = 30.0  # seconds a timed-out URL is answered 503 at once before it is tried again
MOST = 1000  # URLs remembered; beyond, the oldest is forgotten (a flood of new URLs)


class TimedOut:
    """URL -> when its download timed out and what the answer said."""

    def __init__(self) -> None:
        self._urls: dict[str, tuple[float, str]] = {}

    def __len__(self) -> int:
        return len(self._urls)

    def check(self, url: str) -> None:
        """Raise the remembered 503 while url is remembered; forget it once the while passed."""
        noted = self._urls.get(url)
        if noted is None:
            return
        left = REMEMBERED - (time.monotonic() - noted[0])
        if left <= 0:
            del self._urls[url]
            return
        retry = (datetime.now(UTC) + timedelta(seconds=left)).strftime("%H:%M:%SZ")
        raise LdContextNotAvailable(f"{noted[1]}; not tried again before {retry}")

    def note(self, url: str, detail: str) -> None:
        """Remember that url timed out (the oldest goes beyond MOST)."""
        self._urls.pop(url, None)
        self._urls[url] = (time.monotonic(), detail)
        while len(self._urls) > MOST:
            del self._urls[next(iter(self._urls))]

    def forget(self, url: str) -> None:
        """url answered (a reload): no longer remembered."""
        self._urls.pop(url, None)
