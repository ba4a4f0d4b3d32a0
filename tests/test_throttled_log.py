"""A failure that repeats many times a second logs one line per interval, not one per event."""

from __future__ import annotations

import logging

import pytest

from cityhub.throttled_log import KeyedThrottledLog, ThrottledLog


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


def test_per_key_one_line_per_interval_and_quiet_keys_are_forgotten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    throttled = KeyedThrottledLog(logging.getLogger("test.keyed"), every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.keyed"):
        for _ in range(100):
            throttled.warning("a", "gave up on %s", "a")
            throttled.warning("b", "gave up on %s", "b")
    assert [r.getMessage() for r in caplog.records] == ["gave up on a", "gave up on b"]
    now[0] += 10.0
    for n in range(KeyedThrottledLog.KEEP * 2):  # endpoints come and go
        throttled.warning(f"e{n}", "gave up")
        now[0] += 10.0
    assert len(throttled) <= KeyedThrottledLog.KEEP
