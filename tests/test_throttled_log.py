"""A failure that repeats many times a second logs one line per interval, not one per event."""

from __future__ import annotations

import logging

import pytest

from cityhub.throttled_log import ThrottledLog


def test_one_line_per_interval_then_how_many_were_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    throttled = ThrottledLog(logging.getLogger("test.full"), every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="test.full"):
        for _ in range(500):  # a burst within one interval
            throttled.error("write refused: %s", "disk full")
        assert [r.getMessage() for r in caplog.records] == ["write refused: disk full"]
        now[0] += 10.0
        throttled.error("write refused: %s", "disk full")
        now[0] += 10.0
        throttled.error("write refused: %s", "disk full")
    assert [r.getMessage() for r in caplog.records] == [
        "write refused: disk full",
        "write refused: disk full (and 499 more like it since the last such line)",
        "write refused: disk full",
    ]
