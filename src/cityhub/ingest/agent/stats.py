"""Counters of the message path, as GET /iot/v1/stats shows them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cityhub.ingest.agent.reasons import REASONS


@dataclass
class Stats:
    """What the agent received, stored and refused since the hub started (this process)."""

    received: int = 0
    stored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    by_protocol: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    last_batch_ms: float = 0.0
    max_batch_ms: float = 0.0
    waiting: int = 0  # MQTT messages the store refused for now, to be tried again
    retried: int = 0  # dead letters stored by a retry (not counted as received or stored)

    def batch(self, seconds: float) -> None:
        """One write transaction of device messages took this long."""
        self.batches += 1
        self.last_batch_ms = seconds * 1000
        self.max_batch_ms = max(self.max_batch_ms, self.last_batch_ms)

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON (every reason listed, zero or not)."""
        return {
            "received": self.received,
            "stored": self.stored,
            "rejected": sum(self.rejected.values()),
            "rejectedByReason": {r: self.rejected.get(r, 0) for r in REASONS},
            "receivedByProtocol": {p: self.by_protocol.get(p, 0) for p in ("mqtt", "http")},
            "batches": self.batches,
            "lastBatchMs": round(self.last_batch_ms, 3),
            "maxBatchMs": round(self.max_batch_ms, 3),
            "waitingForStore": self.waiting,
            "retried": self.retried,
        }
