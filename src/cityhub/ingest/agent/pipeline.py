"""The message path: look the device up, map the payload, batch the writes, dead-letter refusals.

Messages that arrive within `window` seconds (or until `max_batch` of them are waiting) are
written together: one EntityService.batch_upsert(mode="update") per tenant and @context,
all through the app's group committer, so validation, history and notifications are those
of the API. One bad message never costs the others in its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cityhub.api.commit import batch_weigher, between_slices
from cityhub.ingest.agent.deadletters import DeadLetters, Letter
from cityhub.ingest.agent.mapping import device_zone
from cityhub.ingest.agent.payload import Raw, decode
from cityhub.ingest.agent.reasons import (
    BAD_VALUE,
    CONTEXT_UNAVAILABLE,
    INVALID_ENTITY,
    STORE_ERROR,
    WRONG_PROTOCOL,
    Rejected,
)
from cityhub.ingest.agent.registry import Registry, Target
from cityhub.ingest.agent.slices import message_slices
from cityhub.ingest.agent.stats import Stats
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import expand_entity
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.service import BatchOutcome
from cityhub.store.base import StoreBusy, StoreFull, StoreLost
from cityhub.throttled_log import ThrottledLog

log = logging.getLogger("cityhub.iot")

Doc = dict[str, Any]

# the store's refusals that pass (another process's lock, a full disk, a deleted file that a
# restart replaces): an MQTT message is tried again rather than acknowledged unstored
PASSING = (StoreFull, StoreBusy, StoreLost)
RETRY_FIRST = 0.5  # seconds before the first retry of a refused slice; doubled each time ...
RETRY_MOST = 5.0  # ... up to this


def _wrong_protocol(raw: Raw, provisioned: str, tenant: str) -> str:
    """The refusal of a message on the other protocol, with the command that changes it."""
    tenant_flag = f" --tenant {shlex.quote(tenant)}" if tenant else ""
    return (
        f"device {raw.device!r} is provisioned for {provisioned}, not {raw.protocol} (change "
        f"it with `cityhub iot devices update {shlex.quote(raw.device)} --protocol "
        f"{raw.protocol}{tenant_flag}`)"
    )


@dataclass(slots=True)
class Pending:
    """A mapped message waiting for its batch: its entity fragments and who waits for it."""

    target: Target
    items: list[Doc]
    raw: Raw
    waiter: asyncio.Future[None] | None
    kept: bool = False  # left unacknowledged with the broker, which sends it again


class Ingestor:
    """Accepts raw device messages and stores them in batches."""

    def __init__(
        self,
        registry: Registry,
        letters: DeadLetters,
        stats: Stats,
        app_state: Any,
        window: float,
        max_batch: int,
        max_ahead: float = 600.0,
        zone: str | None = None,
    ) -> None:
        self.registry = registry
        self.letters = letters
        self.stats = stats
        self.state = app_state  # entities, committer, contexts: the API's own
        self._full_log = ThrottledLog(log)  # a full disk fails every batch: one line per 10 s
        self.window = window
        self.max_ahead = max_ahead  # seconds an observedAt may be past the receipt
        self.zone = device_zone(zone) if zone else None  # of zone-less device times
        self.max_batch = max_batch
        self.max_backlog = 4 * max_batch
        self._pending: list[Pending] = []
        self._refused: list[Letter] = []  # (tenant, dead letter) not yet written
        self._settle: list[Callable[[], None]] = []  # PUBACKs of _refused's messages
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # messages handed to a write that has not finished
        self._room: list[asyncio.Future[None]] = []
        self._stopping = asyncio.Event()  # a stop began: a refused write is not tried again
        self._refusal: Exception | None = None  # the store's passing refusal of the last slice
        self._gate = asyncio.Lock()  # refused slices, tried again one at a time, in order

    # -- intake ------------------------------------------------------------------------------------
    def submit(self, raw: Raw, waiter: asyncio.Future[None] | None = None) -> None:
        """Take one message; waiter (HTTP) learns whether it was stored."""
        self._count(raw)
        try:
            target = self.registry.lookup(raw.apikey, raw.device)
        except Rejected as rej:
            self._refuse(raw, rej, None, waiter)
            self._schedule()
            return
        self.take(raw, target, waiter)

    def take(self, raw: Raw, target: Target, waiter: asyncio.Future[None] | None = None) -> None:
        """Map and queue a message of a known device (a retried dead letter starts here)."""
        try:
            if target.protocol != raw.protocol:
                raise Rejected(WRONG_PROTOCOL, _wrong_protocol(raw, target.protocol, target.tenant))
            measures, textual = decode(raw.payload, raw.form)
            apply = target.mapping.apply
            eid, etype = target.entity_id, target.entity_type
            latest = raw.received + self.max_ahead
            items = [
                {"id": eid, "type": etype, **apply(m, textual, latest, self.zone)} for m in measures
            ]
        except Rejected as rej:
            self._refuse(raw, rej, target.tenant, waiter)
        except Exception as exc:  # a mapping bug must cost one message, never the agent
            log.exception("mapping a message of device %r failed", raw.device)
            bug = Rejected(BAD_VALUE, f"the payload could not be mapped: {type(exc).__name__}")
            self._refuse(raw, bug, target.tenant, waiter)
        else:
            self._pending.append(Pending(target, items, raw, waiter))
        self._schedule()

    def refuse(self, raw: Raw, rej: Rejected) -> Rejected:
        """Count and dead-letter a message refused before it could be submitted: in its
        device's tenant when the key and id name one (as MQTT files them), else unrouted."""
        self._count(raw)
        try:
            tenant: str | None = self.registry.lookup(raw.apikey, raw.device).tenant
        except Rejected:
            tenant = None
        self._refuse(raw, rej, tenant, None)
        self._schedule()
        return rej

    def busy(self) -> bool:
        """Whether the writes lag so far behind that intake should pause."""
        return self._in_flight + len(self._pending) >= self.max_backlog

    async def room(self) -> None:
        """Wait until the backlog has shrunk below its bound (MQTT stops reading meanwhile)."""
        while self.busy():
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._room.append(fut)
            await fut

    def _count(self, raw: Raw) -> None:
        self.stats.received += 1
        self.stats.by_protocol[raw.protocol] += 1

    def _refuse(
        self,
        raw: Raw,
        rej: Rejected,
        tenant: str | None,
        waiter: asyncio.Future[None] | None,
        into: list[Letter] | None = None,
    ) -> None:
        """Count a refusal, keep its dead letter (in `into`, else the pending letters) and
        tell the waiter; a retried letter is neither counted nor lettered again (its letter
        stays)."""
        if not raw.replay:
            self.stats.rejected[rej.reason] += 1
            letter = self.letters.letter(raw, rej)
            (self._refused if into is None else into).append((tenant, letter))
        if into is None and raw.ack is not None:
            self._settle.append(raw.ack)
        if waiter is not None and not waiter.done():
            waiter.set_exception(rej)

    # -- batching ----------------------------------------------------------------------------------
    def _schedule(self) -> None:
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        refused, self._refused = self._refused, []
        settle, self._settle = self._settle, []
        if not batch and not refused:
            return
        self._in_flight += len(batch)
        task = asyncio.get_running_loop().create_task(self._write(batch, refused, settle))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Write everything received so far (shutdown); what the store refuses now is not
        tried again (a QoS 1 message stays with the broker)."""
        self._stopping.set()
        self._flush()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._flush()

    async def _write(
        self, batch: list[Pending], refused: list[Letter], settle: list[Callable[[], None]]
    ) -> None:
        """Store one batch: a group per tenant and @context, all in one committer round; then
        acknowledge its MQTT messages (and settle's), each stored or dead-lettered by then,
        or given up when both writes failed."""
        t0 = time.perf_counter()
        try:
            groups: dict[tuple[str, str | None], list[Pending]] = {}
            for p in batch:
                groups.setdefault((p.target.tenant, p.target.context), []).append(p)
            outcomes = await asyncio.gather(
                *(self._write_group(t, c, ps) for (t, c), ps in groups.items())
            )
            for failed in outcomes:
                refused += failed
            if batch:
                self.stats.batch(time.perf_counter() - t0)
            if refused:
                await self._write_letters(refused)
        finally:
            for p in batch:
                if p.raw.ack is not None and not p.kept:
                    p.raw.ack()
            for ack in settle:
                ack()
            self._in_flight -= len(batch)
            self._wake()

    async def _write_group(
        self, tenant: str, context: str | None, batch: list[Pending]
    ) -> list[Letter]:
        """batch_upsert one group's fragments; answers waiters; returns the new dead letters."""
        refused: list[Letter] = []

        def fail(p: Pending, rej: Rejected) -> None:
            self._refuse(p.raw, rej, tenant, p.waiter, into=refused)

        try:
            tm = await self.state.contexts.term_map(context, count=False)
        except NgsiLdError as exc:
            for p in batch:
                fail(p, Rejected(CONTEXT_UNAVAILABLE, exc.detail))
            return refused
        weigh = batch_weigher(self.state, tenant, tm)
        for n, (part, size) in enumerate(message_slices(batch, weigh)):
            if n:
                await between_slices()
            await self._write_slice(
                tenant, tm, [p for p in part if _whole(p, tm, fail)], size, fail
            )
        return refused

    async def _write_slice(
        self,
        tenant: str,
        tm: TermMap,
        batch: list[Pending],
        size: int,
        fail: Callable[[Pending, Rejected], None],
    ) -> None:
        """One committer job for a slice of a group's messages; answers their waiters. While
        the store refuses for a passing cause, MQTT messages are tried again, backing off, in
        the order they came, and stay in flight meanwhile, so intake pauses and the broker
        keeps the rest: acknowledged and dead-lettered instead, they were lost, as the
        letter's write failed too (decision 089)."""
        refusal = self._refusal
        if self._gate.locked():  # slices before it wait, or are being written: it goes after
            if refusal is not None:  # an HTTP device gets its 503 now
                batch = self._refused_slice(batch, refusal, fail)
        else:
            batch = await self._attempt(tenant, tm, batch, size, fail)
        if not batch:
            return
        held = len(batch)
        self.stats.waiting += held
        try:
            async with self._gate:
                delay = RETRY_FIRST
                while batch:
                    refusal = self._refusal
                    if refusal is not None and self._stopping.is_set():
                        batch = self._refused_slice(batch, refusal, fail)
                        break
                    if refusal is not None:  # else the slice before it was just stored
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stopping.wait(), delay)
                        delay = min(2 * delay, RETRY_MOST)
                    batch = await self._attempt(tenant, tm, batch, size, fail)
        finally:
            self.stats.waiting -= held

    async def _attempt(
        self,
        tenant: str,
        tm: TermMap,
        batch: list[Pending],
        size: int,
        fail: Callable[[Pending, Rejected], None],
    ) -> list[Pending]:
        """Write a slice once; the messages to try again (none once it is stored or settled)."""
        try:
            outcome = await self.state.committer.run(self._job(tenant, tm, batch), size=size)
        except Exception as exc:  # the transaction failed: nothing of this slice is stored
            self._write_failed(exc, "storing %d device messages failed", len(batch))
            self._refusal = exc if isinstance(exc, PASSING) else self._refusal
            return self._refused_slice(batch, exc, fail)
        self._refusal = None
        self._stored(batch, outcome, fail)
        return []

    def _job(self, tenant: str, tm: TermMap, batch: list[Pending]) -> Callable[[], BatchOutcome]:
        """The committer job that upserts a slice's fragments, then the statics of the
        entities it created."""
        items = [item for p in batch for item in p.items]
        entities = self.state.entities

        def job() -> BatchOutcome:
            out: BatchOutcome = entities.batch_upsert(tenant, items, tm, mode="update", late=True)
            again = _statics(batch, out.created)
            if again:  # in the same transaction: the entity is never seen without them
                redone = entities.batch_upsert(tenant, again, tm, mode="update")
                for eid, err in redone.errors:
                    log.warning("static attributes of %s not written: %s", eid, err.detail)
            return out

        return job

    def _refused_slice(
        self, batch: list[Pending], exc: Exception, fail: Callable[[Pending, Rejected], None]
    ) -> list[Pending]:
        """Settle a slice the store refused; the MQTT messages to try again. An HTTP device
        gets its 503 (it sends again); once a stop began, a QoS 1 message is left with the
        broker, unacknowledged, and the others are dead-lettered, as after any other failure."""
        passing = isinstance(exc, PASSING)
        again: list[Pending] = []
        for p in batch:
            if passing and p.waiter is None and not self._stopping.is_set():
                again.append(p)
            elif passing and p.raw.ack is not None:
                p.kept = True
            else:
                fail(p, Rejected(STORE_ERROR, f"the write failed: {type(exc).__name__}", exc))
        return again

    def _stored(
        self, batch: list[Pending], outcome: BatchOutcome, fail: Callable[[Pending, Rejected], None]
    ) -> None:
        """Count a written slice; dead-letter its messages the batch refused."""
        bad = _failures(outcome, batch)
        for p in batch:
            err = bad.get(id(p))
            if err is not None:
                fail(p, Rejected(INVALID_ENTITY, err.detail))
                continue
            if p.raw.replay:
                self.stats.retried += 1
            else:
                self.stats.stored += 1
            if p.waiter is not None and not p.waiter.done():
                p.waiter.set_result(None)

    async def _write_letters(self, refused: list[Letter]) -> None:
        try:
            await self.state.committer.run(lambda: self.letters.write(refused))
        except Exception as exc:  # losing a dead letter must not stop the agent
            self._write_failed(exc, "storing %d dead letters failed", len(refused))
            self.letters.recount()

    def _write_failed(self, exc: Exception, what: str, count: int) -> None:
        """Log a failed write: a full disk, another process's lock or a deleted database file
        as one line per 10 s, anything else in full."""
        if isinstance(exc, StoreFull | StoreBusy | StoreLost):
            self._full_log.error(what + ": %s", count, exc)
        else:
            log.exception(what, count)

    def _wake(self) -> None:
        if self.busy():
            return
        waiting, self._room = self._room, []
        for fut in waiting:
            if not fut.done():
                fut.set_result(None)


def _statics(batch: list[Pending], created: list[str]) -> list[Doc]:
    """The static attributes of the entities a slice created: provisioning writes them, so an
    entity deleted since (DELETE /entities/{id}) came back without its name or location, and
    fell out of the map's geo-queries until the device was changed."""
    made = set(created)
    out: dict[str, Doc] = {}
    for p in batch:
        t = p.target
        if t.entity_id in made and t.mapping.static and t.entity_id not in out:
            out[t.entity_id] = {"id": t.entity_id, "type": t.entity_type, **t.mapping.static}
    return list(out.values())


def _whole(p: Pending, tm: TermMap, fail: Callable[[Pending, Rejected], None]) -> bool:
    """Whether every measurement of a message is valid NGSI-LD; if not, the message is
    refused before any of it is written (an array with one bad measurement was answered 400
    while its good ones were stored, so a retry stored them twice). One measurement needs
    no check here: the upsert refuses it whole."""
    if len(p.items) < 2:
        return True
    try:
        for item in p.items:
            expand_entity(item, tm)
    except NgsiLdError as exc:
        fail(p, Rejected(INVALID_ENTITY, exc.detail))
        return False
    return True


def _failures(outcome: BatchOutcome, batch: list[Pending]) -> dict[int, NgsiLdError]:
    """Which messages of a batch failed: each item error placed by its index in the batch."""
    owner = [id(p) for p in batch for _ in p.items]
    out: dict[int, NgsiLdError] = {}
    for i, (_, err) in zip(outcome.failed, outcome.errors, strict=True):
        out.setdefault(owner[i], err)
    return out
