"""Retrying a dead letter: its payload through the message path again, as of its receipt,
once the device that refused it was fixed (or, for a letter no device took, provisioned).

Stored, the letter is deleted after; refused again, it stays, with the new refusal. A letter
of a device's tenant goes to the device of that id now; an unrouted one only to a device its
message's key and id name now, as a live message would (decision 096).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from cityhub.ingest.agent.deadletters import DIGEST, KEEP_BYTES, DeadLetters
from cityhub.ingest.agent.payload import Raw
from cityhub.ingest.agent.pipeline import Ingestor
from cityhub.ingest.agent.reasons import Rejected, as_error
from cityhub.ingest.agent.registry import Registry, Target
from cityhub.ngsild.errors import Conflict, ResourceNotFound
from cityhub.ngsild.timeutil import parse_ts

Doc = dict[str, Any]


class Retries:
    """Dead letters sent through the message path again, each by one retry at a time."""

    def __init__(
        self, letters: DeadLetters, registry: Registry, ingestor: Ingestor, committer: Any
    ) -> None:
        self.letters = letters
        self.registry = registry
        self.ingestor = ingestor
        self.committer = committer
        self._running: set[tuple[str | None, str]] = set()

    async def retry(self, tenant: str | None, lid: str) -> None:
        """Store one letter's message (tenant None: an unrouted letter) and delete the letter;
        the error the device would get when it is refused again (the letter then stays)."""
        key = (tenant, lid)
        if key in self._running:  # two at once both stored it
            raise Conflict(f"dead letter {lid!r} is being retried already")
        self._running.add(key)
        try:
            doc = self.letters.get(tenant, lid)
            if doc is None:
                raise ResourceNotFound(f"no dead letter {lid!r} here")
            raw, target = _raw(doc), self._target(tenant, doc)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.ingestor.take(raw, target, done)
            letters = self.letters
            try:
                await done
            except Rejected as rej:
                refusal = rej
                await self.committer.run(lambda: letters.refused_again(tenant, lid, refusal))
                raise as_error(refusal) from None
            await self.committer.run(lambda: letters.remove(tenant, lid))
        finally:
            self._running.discard(key)

    def _target(self, tenant: str | None, doc: Doc) -> Target:
        """The device a letter goes to now: in its tenant by id, or, unrouted, by key and id."""
        device = doc.get("device") or ""
        if tenant is not None:
            target = self.registry.target(tenant, device)
            if target is None:
                raise Conflict(
                    f"device {device!r} is not provisioned in this tenant; provision it, "
                    "then retry the letter"
                )
            return target
        digest = doc.get(DIGEST)
        if not digest or not device:
            raise Conflict(
                "this letter names no device and API key (a message of another shape, or a "
                "letter kept before cityhub recorded them), so it cannot be routed"
            )
        target = self.registry.by_digest(digest, device)
        if target is None:
            raise Conflict(
                f"no device {device!r} with this letter's API key is provisioned; provision "
                "it with that key, then retry the letter"
            )
        return target


def _raw(doc: Doc) -> Raw:
    """A letter's message as it arrived (its time too, for the device-clock checks)."""
    if doc.get("truncated"):
        raise Conflict(
            f"the letter keeps only the first {KEEP_BYTES // 1024} KiB of its "
            f"{doc.get('payloadBytes', 0):,}-byte payload, so it cannot be retried"
        )
    text = str(doc.get("payload", ""))
    payload = base64.b64decode(text) if doc.get("payloadEncoding") == "base64" else text.encode()
    received = parse_ts(str(doc["receivedAt"])).timestamp()
    protocol = str(doc.get("protocol", "mqtt"))
    return Raw(protocol, "", str(doc["device"]), payload, received=received, replay=True)
