"""The bounded dead-letter store: refused device messages, kept for an operator to inspect.

Letters are resources of kind iot-deadletter in the tenant of their device; the bound counts
all tenants together, and past it the oldest letters go first. Messages no device took (an
unknown id or key, a malformed topic or query) are *unrouted*: kind iot-deadletter-unrouted,
under a bound of their own, so anyone who can reach the broker cannot flood out a tenant's
letters.
"""

from __future__ import annotations

import base64
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from cityhub.ingest.agent.keys import key_hash
from cityhub.ingest.agent.mqtt import ROOT
from cityhub.ingest.agent.payload import Raw
from cityhub.ingest.agent.reasons import Rejected
from cityhub.ngsild.timeutil import format_ts

KIND = "iot-deadletter"
DIGEST = "keyDigest"  # sha256 of the key a message came with: an unrouted retry checks it
UNROUTED = "iot-deadletter-unrouted"  # in tenant '': messages no device took
KEEP_BYTES = 16 * 1024  # of a refused payload; the rest is cut (and the letter says so)
# Characters kept of what a sender chose besides the payload: a topic level may be 64 KiB, and
# an unknown device id was kept three times over (device, topic, detail), 180 KB a letter.
KEEP_DEVICE, KEEP_TOPIC, KEEP_DETAIL = 256, 512, 1024

Doc = dict[str, Any]
Letter = tuple[str | None, Doc]  # (the device's tenant, or None when unrouted; the letter)


def _cut(text: str, keep: int) -> str:
    """At most `keep` characters of text, an ellipsis saying where it was cut."""
    return text if len(text) <= keep else text[:keep] + "…"


def _redacted(raw: Raw, root: str = ROOT) -> str:
    """The MQTT topic without its API key (letters must not hold keys): the level after
    `{root}/` is the key even when the rest of the topic is malformed."""
    if not raw.topic:
        return ""
    if raw.topic.startswith(root + "/"):
        levels = raw.topic[len(root) + 1 :].split("/")
        levels[0] = "<apikey>"
        return "/".join([root, *levels])
    if raw.apikey and raw.apikey in raw.topic:
        return raw.topic.replace(raw.apikey, "<apikey>", 1)
    return raw.topic


class DeadLetters:
    """Refused messages in the store: at most `bound` of devices (all tenants together), and
    as many again unrouted."""

    def __init__(self, store: Any, bound: int, root: str = ROOT) -> None:
        self.store = store
        self.bound = bound
        self.root = root  # the MQTT topic root, after which a topic's level is its key
        self._held = {kind: store.resource_count_all(kind) for kind in (KIND, UNROUTED)}
        self.dropped = 0  # oldest letters dropped to keep the bounds, since start
        self._seq = itertools.count(1)

    @property
    def held(self) -> int:
        """Letters kept, unrouted ones included."""
        return sum(self._held.values())

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
            "detail": _cut(rej.detail, KEEP_DETAIL),
            "protocol": raw.protocol,
            "device": _cut(raw.device, KEEP_DEVICE),
            "payload": payload,
            "payloadEncoding": encoding,
            "payloadBytes": len(raw.payload),
        }
        if len(raw.payload) > KEEP_BYTES:
            doc["truncated"] = True
        if raw.apikey:  # never shown (view); the key itself is never kept
            doc[DIGEST] = key_hash(raw.apikey)
        topic = _redacted(raw, self.root)
        if topic:
            doc["topic"] = _cut(topic, KEEP_TOPIC)
        return doc

    def write(self, letters: list[Letter]) -> None:
        """Store (tenant or None, letter) pairs and trim each kind to its bound: run it as one
        committer job."""
        for tenant, doc in letters:
            kind = _kind(tenant)
            self.store.resource_create(kind, tenant or "", doc["id"], doc)
            self._held[kind] += 1
        for kind, held in self._held.items():
            if held > self.bound:
                gone = self.store.resource_trim(kind, self.bound)
                self._held[kind] -= gone
                self.dropped += gone

    def recount(self) -> None:
        """Re-read how many letters are held (after a failed write)."""
        self._held = {kind: self.store.resource_count_all(kind) for kind in self._held}

    def expire(self, before: float) -> int:
        """Delete the letters received before `before` (epoch seconds): history retention's
        bound applies to them too, since a letter keeps a device's raw payload, a
        resident's reading among them (run it as a committer job); how many went."""
        cutoff = format_ts(datetime.fromtimestamp(before, UTC))
        gone = 0
        for kind in self._held:
            expired = int(self.store.resource_expire(kind, "receivedAt", cutoff))
            self._held[kind] = max(0, self._held[kind] - expired)
            gone += expired
        return gone

    def page(self, tenant: str | None, limit: int, offset: int) -> tuple[list[Doc], int]:
        """A tenant's letters (None: the unrouted ones), oldest first, and how many."""
        docs, total = self.store.resource_list(_kind(tenant), tenant or "", limit, offset)
        return [view(doc) for doc in docs], total

    def get(self, tenant: str | None, lid: str) -> Doc | None:
        """One letter as stored (None: the unrouted ones), key digest included."""
        doc: Doc | None = self.store.resource_get(_kind(tenant), tenant or "", lid)
        return doc

    def remove(self, tenant: str | None, lid: str) -> bool:
        """Delete one letter, its payload scrubbed from the files (a committer job)."""
        kind = _kind(tenant)
        gone = bool(self.store.resource_delete(kind, tenant or "", lid, scrub=True))
        self._held[kind] = max(0, self._held[kind] - gone)
        return gone

    def refused_again(self, tenant: str | None, lid: str, rej: Rejected) -> None:
        """A retried letter's new refusal, in place of the old one (a committer job)."""

        def change(old: Doc) -> Doc:
            new = {**old, "reason": rej.reason, "detail": _cut(rej.detail, KEEP_DETAIL)}
            return {**new, "retriedAt": format_ts(datetime.now(UTC))}

        self.store.resource_update(_kind(tenant), tenant or "", lid, change)

    def clear(self, tenant: str | None, device: str | None = None) -> int:
        """Delete a tenant's letters (None: the unrouted ones), or only those of one device
        (erasing what a resident's device sent); how many went."""
        kind = _kind(tenant)
        where = None if device is None else ("device", device)
        gone = int(self.store.resource_clear(kind, tenant or "", where))
        self._held[kind] = max(0, self._held[kind] - gone)
        return gone


def _kind(tenant: str | None) -> str:
    return KIND if tenant is not None else UNROUTED


def view(doc: Doc) -> Doc:
    """What the API shows of a letter: all but the key digest."""
    return {k: v for k, v in doc.items() if k != DIGEST}
