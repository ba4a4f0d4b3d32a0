"""The bounded dead-letter store: refused device messages, kept for an operator to inspect.

Letters are resources of kind iot-deadletter in the tenant of their device ('' when the device
is unknown). The bound counts all tenants together; past it the oldest letters go first.
"""

from __future__ import annotations

import base64
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from cityhub.ingest.agent.payload import Raw
from cityhub.ingest.agent.reasons import Rejected
from cityhub.ngsild.timeutil import format_ts

KIND = "iot-deadletter"
KEEP_BYTES = 16 * 1024  # of a refused payload; the rest is cut (and the letter says so)

Doc = dict[str, Any]


def _redacted(raw: Raw) -> str:
    """The MQTT topic without its API key (letters must not hold keys): the level after
    `cityhub/` is the key even when the rest of the topic is malformed."""
    if not raw.topic:
        return ""
    levels = raw.topic.split("/")
    if len(levels) >= 2 and levels[0] == "cityhub":
        levels[1] = "<apikey>"
        return "/".join(levels)
    if raw.apikey and raw.apikey in raw.topic:
        return raw.topic.replace(raw.apikey, "<apikey>", 1)
    return raw.topic


class DeadLetters:
    """Refused messages in the store, at most `bound` of them (all tenants together)."""

    def __init__(self, store: Any, bound: int) -> None:
        self.store = store
        self.bound = bound
        self.held = store.resource_count_all(KIND)
        self.dropped = 0  # oldest letters dropped to keep the bound, since start
        self._seq = itertools.count(1)

    def letter(self, raw: Raw, rej: Rejected) -> Doc:
        """The record of one refused message (the payload as text when it is UTF-8)."""
        body = raw.payload[:KEEP_BYTES]
        try:
            payload, encoding = body.decode(), "utf-8"
        except UnicodeDecodeError:
            payload, encoding = base64.b64encode(body).decode(), "base64"
        doc: Doc = {
            "id": f"{time.time_ns():x}-{next(self._seq)}",
            "receivedAt": format_ts(datetime.fromtimestamp(raw.received, UTC)),
            "reason": rej.reason,
            "detail": rej.detail,
            "protocol": raw.protocol,
            "device": raw.device,
            "payload": payload,
            "payloadEncoding": encoding,
            "payloadBytes": len(raw.payload),
        }
        if len(raw.payload) > KEEP_BYTES:
            doc["truncated"] = True
        topic = _redacted(raw)
        if topic:
            doc["topic"] = topic
        return doc

    def write(self, letters: list[tuple[str, Doc]]) -> None:
        """Store (tenant, letter) pairs and trim to the bound: run it as one committer job."""
        for tenant, doc in letters:
            self.store.resource_create(KIND, tenant, doc["id"], doc)
        self.held += len(letters)
        if self.held > self.bound:
            gone = self.store.resource_trim(KIND, self.bound)
            self.held -= gone
            self.dropped += gone

    def recount(self) -> None:
        """Re-read how many letters are held (after a failed write)."""
        self.held = self.store.resource_count_all(KIND)

    def page(self, tenant: str, limit: int, offset: int) -> tuple[list[Doc], int]:
        """A tenant's letters, oldest first, and how many it has."""
        page: tuple[list[Doc], int] = self.store.resource_list(KIND, tenant, limit, offset)
        return page

    def clear(self, tenant: str) -> int:
        """Delete a tenant's letters; how many went."""
        gone = int(self.store.resource_clear(KIND, tenant))
        self.held = max(0, self.held - gone)
        return gone
