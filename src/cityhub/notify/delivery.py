"""Delivery: one queue and one worker per endpoint, so a dead or slow receiver only ever
delays its own notifications.

A worker sends its queue's items in order, one at a time, each with the endpoint's timeout,
and retries a failure with exponential backoff. An item leaves the outbox when it was
delivered, when its subscription is gone, or when it was given up (attempts spent, or pushed
out of a queue that reached its bound); acknowledgements are batched into one delete. An item
of a paused subscription is held, in the outbox and here, until the subscription resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from cityhub.notify.outcome import RetryLater
from cityhub.store.base import OutboxItem
from cityhub.throttled_log import KeyedThrottledLog, ThrottledLog

log = logging.getLogger("cityhub.notify")
HOLD: Final = "hold"  # deliver's answer for an item to keep until its subscription resumes
# True: delivered; False or RetryLater: failed; None: nothing to deliver any more; HOLD
Deliver = Callable[[OutboxItem, int], Awaitable[bool | RetryLater | Literal["hold"] | None]]
ACK_EVERY = 0.2  # seconds between batched outbox deletes
# Delivered items whose outbox delete failed (a full disk), kept to be deleted at a later
# flush: about 4 MB. Beyond them the oldest are left in the outbox, sent again after a restart.
ACKS_KEPT = 100_000
ITEM_OVERHEAD = 256  # bytes a waiting item costs beside its payload (object, deque slot)
# Seconds between "gave up" lines for one endpoint: a dead one gives up an item every ~15 s
# (5 attempts with backoff) for as long as its queue holds any, hours for a full queue.
GIVE_UP_LOG_EVERY = 600.0


@dataclass
class Policy:
    """How hard delivery tries: per-attempt timeout, attempts, backoff and queue bounds."""

    timeout: float = 5.0
    attempts: int = 5
    backoff: float = 1.0  # first retry delay in seconds; doubles up to backoff_max
    backoff_max: float = 60.0
    queue_max: int = 10_000  # items waiting for one endpoint
    memory: int = 128 * 2**20  # bytes of items queued over all endpoints


@dataclass
class Counters:
    """Delivery totals since start (reported by /health)."""

    delivered: int = 0  # notifications a receiver took
    failed_attempts: int = 0  # attempts that failed (each retry counts)
    given_up: int = 0  # notifications abandoned after their last attempt
    dropped_full: int = 0  # oldest notifications dropped: a full endpoint queue, or memory

    def report(self) -> dict[str, int]:
        """The counters as /health shows them."""
        return {
            "delivered": self.delivered,
            "failedAttempts": self.failed_attempts,
            "givenUp": self.given_up,
            "droppedQueueFull": self.dropped_full,
        }


@dataclass
class EndpointQueue:
    """The pending items of one endpoint and the task draining them."""

    items: deque[OutboxItem] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    size: int = 0  # bytes its items would cost alone (_cost: a shared body counted in each)


class Dispatcher:
    """Per-endpoint queues over a deliver(item, attempt) callable (True: delivered, False:
    failed, None: nothing to deliver any more, HOLD: not now)."""

    def __init__(self, deliver: Deliver, ack: Callable[[list[int]], None], policy: Policy) -> None:
        self.deliver = deliver
        self.ack = ack
        self.policy = policy
        self.counters = Counters()
        self.queues: dict[str, EndpointQueue] = {}
        # bytes of every queued or held item, over all endpoints: a body items of one change
        # share (OutboxItem.body) counts once, as it is in memory once
        self.size = 0
        self._bodies: dict[int, int] = {}  # id of each shared body held here: items holding it
        self._charged = 0  # the sizes of the queues and held items (_cost: bodies in each)
        # items of paused subscriptions, by (tenant, subscription id): still in the outbox
        self.held: dict[tuple[str, str], list[OutboxItem]] = {}
        self._held_size: dict[tuple[str, str], int] = {}  # bytes each of those would alone
        self._acks: list[int] = []
        self._ack_log = ThrottledLog(log)  # a full disk fails every flush, 5 a second
        self._give_up_log = KeyedThrottledLog(log, GIVE_UP_LOG_EVERY)  # by endpoint
        self._ack_task: asyncio.Task[None] | None = None
        self._closing = False

    def pending(self) -> int:
        """Items waiting in memory, over all endpoints."""
        return sum(len(q.items) for q in self.queues.values())

    def submit(self, items: list[OutboxItem]) -> None:
        """Queue committed items on their endpoints (call on the event loop)."""
        for item in items:
            queue = self.queues.get(item.endpoint)
            if queue is None:
                queue = self.queues[item.endpoint] = EndpointQueue()
            if len(queue.items) - _in_flight(queue) >= self.policy.queue_max:
                self._drop_oldest(queue)  # the bound is on waiting items
            queue.items.append(item)
            queue.size += _cost(item)
            self._count(item)
            if queue.task is None and not self._closing:
                queue.task = asyncio.get_running_loop().create_task(
                    self._drain(item.endpoint, queue), name=f"notify {item.endpoint}"
                )
            self._within_memory(queue)
        if self._ack_task is None and not self._closing:
            self._ack_task = asyncio.get_running_loop().create_task(self._ack_loop())

    def _drop_oldest(self, queue: EndpointQueue) -> OutboxItem | None:
        """Drop a queue's oldest waiting item (never the one in flight); None if none."""
        at = _in_flight(queue)
        if len(queue.items) <= at:
            return None
        dropped = queue.items[at]
        del queue.items[at]
        self._forget(queue, dropped)
        self.counters.dropped_full += 1
        self._done(dropped)
        return dropped

    def _within_memory(self, queue: EndpointQueue | None) -> None:
        """Past the memory bound, drop the oldest waiting items of the queue just appended to
        while it holds at least its share, else of the largest queue or paused subscription's
        held items: dead receivers hold the longest queues, and each may hold queue_max items,
        as may each paused subscription. Shares and sizes count a shared body in each of its
        items; dropping one drops its fellows too (_drop_alike), as only the last frees it."""
        while self.size > self.policy.memory:
            holders = len(self.queues) + len(self.held)
            share = queue is not None and queue.size * holders >= self._charged
            if queue is not None and share and self._drop_alike(self._drop_oldest(queue)):
                continue
            waiting = [q for q in self.queues.values() if len(q.items) > _in_flight(q)]
            largest = max(waiting, key=lambda q: q.size) if waiting else None
            paused = max(self._held_size, key=self._held_size.__getitem__, default=None)
            if paused is not None and (largest is None or self._held_size[paused] > largest.size):
                self._drop_alike(self._drop_held(paused))
            elif largest is not None:
                self._drop_alike(self._drop_oldest(largest))
            else:
                return  # only items in flight are left

    def _drop_alike(self, dropped: OutboxItem | None) -> OutboxItem | None:
        """After dropping an item whose shared body others still hold, drop those of them that
        are the oldest waiting of their queue or paused subscription (the items of one change
        are queued together, so they are mostly found there): the body's bytes come back only
        with the last of them, and dropping other items of other changes instead would free
        nothing more. Returns dropped."""
        body = dropped.body if dropped is not None else None
        if body is None or id(body) not in self._bodies:
            return dropped
        for queue in self.queues.values():
            at = _in_flight(queue)
            while len(queue.items) > at and queue.items[at].body is body:
                self._drop_oldest(queue)
        for key in [k for k, kept in self.held.items() if kept[0].body is body]:
            while key in self.held and self.held[key][0].body is body:
                self._drop_held(key)
        return dropped

    def _forget(self, queue: EndpointQueue, item: OutboxItem) -> None:
        queue.size -= _cost(item)
        self._uncount(item)

    def _count(self, item: OutboxItem) -> None:
        """An item comes in: its bytes, and its shared body's if no other item here holds it."""
        own = len(item.payload) + ITEM_OVERHEAD
        self.size += own
        body = item.body
        if body is None:
            self._charged += own
            return
        self._charged += own + len(body)
        holding = self._bodies.get(id(body), 0)
        self._bodies[id(body)] = holding + 1
        if not holding:
            self.size += len(body)

    def _uncount(self, item: OutboxItem) -> None:
        """An item leaves: its bytes, and its shared body's if it was the last to hold it."""
        own = len(item.payload) + ITEM_OVERHEAD
        self.size -= own
        body = item.body
        if body is None:
            self._charged -= own
            return
        self._charged -= own + len(body)
        holding = self._bodies.pop(id(body)) - 1
        if holding:
            self._bodies[id(body)] = holding
        else:
            self.size -= len(body)

    def _done(self, item: OutboxItem) -> None:
        if item.seq:
            self._acks.append(item.seq)

    async def _drain(self, endpoint: str, queue: EndpointQueue) -> None:
        """Send the queue's items in order until it is empty."""
        try:
            while queue.items:
                item = queue.items[0]
                done = True
                try:
                    done = await self._send(item)
                except Exception:  # an item that cannot be rendered would fail forever
                    self.counters.given_up += 1
                    log.exception("dropped a notification of %s to %s", item.sub_id, endpoint)
                if queue.items and queue.items[0] is item:
                    queue.items.popleft()
                    self._forget(queue, item)
                if done:
                    self._done(item)
                else:  # held: counted once, after it left the queue
                    self.hold([item])
        finally:
            queue.task = None
            if not queue.items:
                self.queues.pop(endpoint, None)

    async def _send(self, item: OutboxItem) -> bool:
        """One item: attempts with backoff until delivered or given up (True), or to be held
        (False: it stays in the outbox)."""
        delay = self.policy.backoff
        for attempt in range(self.policy.attempts):
            ok = await self.deliver(item, attempt)
            if ok == HOLD:
                return False
            if ok is None:
                return True
            if ok:
                self.counters.delivered += 1
                return True
            self.counters.failed_attempts += 1
            if attempt + 1 < self.policy.attempts:
                await asyncio.sleep(_pause(delay, ok, self.policy.backoff_max))
                delay = min(delay * 2, self.policy.backoff_max)
        self.counters.given_up += 1  # /health counts every one; the log, one per endpoint
        self._give_up_log.warning(
            item.endpoint,
            "gave up a notification of %s to %s after %d attempts",
            item.sub_id,
            item.endpoint,
            self.policy.attempts,
        )
        return True

    def hold(self, items: list[OutboxItem]) -> None:
        """Keep items of a paused subscription aside (they stay in the outbox), at most
        queue_max per subscription, and within the memory bound with the queued ones: beyond
        either, the oldest are dropped as from a full queue."""
        for item in items:
            key = (item.tenant, item.sub_id)
            self.held.setdefault(key, []).append(item)
            self._held_size[key] = self._held_size.get(key, 0) + _cost(item)
            self._count(item)
            if len(self.held[key]) > self.policy.queue_max:
                self._drop_held(key)
        if items:
            self._within_memory(None)

    def _drop_held(self, key: tuple[str, str]) -> OutboxItem:
        """Drop the oldest item held for a paused subscription (from the outbox too)."""
        kept = self.held[key]
        item = kept.pop(0)
        self._unhold(key, item)
        if not kept:
            del self.held[key]
        self.counters.dropped_full += 1
        self._done(item)
        return item

    def _unhold(self, key: tuple[str, str], item: OutboxItem) -> None:
        self._uncount(item)
        left = self._held_size[key] - _cost(item)
        if left > 0:
            self._held_size[key] = left
        else:
            del self._held_size[key]

    def _take_held(self, key: tuple[str, str]) -> list[OutboxItem]:
        """Every item held for a subscription, no longer counted as held."""
        items = self.held.pop(key, [])
        self._held_size.pop(key, None)
        for item in items:
            self._uncount(item)
        return items

    def held_count(self) -> int:
        """Items held for paused subscriptions, over all of them."""
        return sum(len(items) for items in self.held.values())

    def release(self, tenant: str, sub_id: str, endpoint: str) -> None:
        """Queue again, in their order and on the subscription's endpoint now, the items held
        for a subscription that resumed, with its items still waiting in a queue (those came
        later, and would otherwise be sent before the held ones)."""
        items = self._take_held((tenant, sub_id))
        if not items:  # nothing held: nothing to put back in order (a PATCH of an active one)
            return
        for queue in self.queues.values():
            at = _in_flight(queue)
            waiting = list(queue.items)[at:]
            mine = [i for i in waiting if i.tenant == tenant and i.sub_id == sub_id]
            for item in mine:
                queue.items.remove(item)
                self._forget(queue, item)
            items += mine
        items.sort(key=lambda i: i.seq)
        self.submit([replace(i, endpoint=endpoint) for i in items])

    def discard(self, tenant: str, sub_id: str) -> None:
        """Drop the items held for a subscription that is gone (from the outbox too)."""
        for item in self._take_held((tenant, sub_id)):
            self._done(item)

    async def _ack_loop(self) -> None:
        """Delete delivered items from the outbox in batches."""
        while not self._closing:
            await asyncio.sleep(ACK_EVERY)
            self.flush_acks()

    def flush_acks(self) -> None:
        """Delete the acknowledged items now; if the delete fails (a full disk), keep them
        for the next flush (at most ACKS_KEPT): dropped, they were all sent again at the next
        restart, though nothing had crashed."""
        acks, self._acks = self._acks, []
        if not acks:
            return
        try:
            self.ack(acks)
        except Exception as exc:
            kept = acks[-ACKS_KEPT:]
            self._acks = kept + self._acks
            left = len(acks) - len(kept)
            self._ack_log.error(
                "could not remove %d delivered notifications from the outbox (%s); retrying%s",
                len(acks),
                exc,
                f", {left} left to be sent again after a restart" if left else "",
            )

    async def close(self, grace: float = 2.0) -> None:
        """Give in-flight deliveries a moment, stop the workers, record what was delivered."""
        tasks = [q.task for q in self.queues.values() if q.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        self._closing = True
        for task in [*tasks, self._ack_task]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self.flush_acks()


def _cost(item: OutboxItem) -> int:
    """Bytes an item would cost alone: its shared body counted in full."""
    return len(item.payload) + ITEM_OVERHEAD + (len(item.body) if item.body is not None else 0)


def _pause(delay: float, failed: bool | RetryLater, most: float) -> float:
    """Seconds before the next attempt: the backoff's, or longer when the receiver asked
    for it (429/503 Retry-After), up to the backoff's bound."""
    if isinstance(failed, RetryLater):
        return max(delay, min(failed.seconds, most))
    return delay


def _in_flight(queue: EndpointQueue) -> int:
    """1 while the queue's worker is sending items[0], else 0."""
    return 1 if queue.task is not None and queue.items else 0


__all__ = ["HOLD", "Counters", "Dispatcher", "EndpointQueue", "Policy"]
