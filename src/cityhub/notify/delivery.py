"""Delivery: one queue and one worker per tenant and endpoint, so a dead or slow receiver
only ever delays its own notifications, and only those of one tenant.

A worker sends its queue's items in order, one at a time, each with the endpoint's timeout,
and retries a failure with exponential backoff. An item leaves the outbox only when it was
delivered, when its subscription is gone, or when it was given up after its attempts;
acknowledgements are batched into one delete. An item of a paused subscription is held, in
the outbox and here, until the subscription resumes. The outbox is the source of truth: past
a queue's or the memory's bound, the newest items leave memory only, and their subscription's
later items wait on disk behind them, read back in order when the queue has room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from cityhub.masked_url import masked_url
from cityhub.notify.outbox_bound import DiskBacklog, levelled
from cityhub.notify.outcome import Outcome, RetryLater, why
from cityhub.store.base import OutboxItem
from cityhub.throttled_log import KeyedThrottledLog, ThrottledLog

log = logging.getLogger("cityhub.notify")
HOLD: Final = "hold"  # deliver's answer for an item to keep until its subscription resumes
# True: delivered; False, Failed or RetryLater: failed; None: nothing to deliver any more; HOLD
Deliver = Callable[[OutboxItem, int], Awaitable[Outcome | Literal["hold"] | None]]
# (tenant, subscription id, first seq, limit) -> the subscription's outbox items from that seq
Backlog = Callable[[str, str, int, int], list[OutboxItem]]
# (tenant, endpoint URI): one queue each (decision 039), so a receiver slow for one tenant's
# notifications does not hold back another's; a subscription is of one tenant, so its order
# is kept
Where = tuple[str, str]
ACK_EVERY = 0.2  # seconds between batched outbox deletes
# Delivered items whose outbox delete failed (a full disk), kept to be deleted at a later
# flush: about 4 MB. Beyond them the oldest are left in the outbox, sent again after a restart.
ACKS_KEPT = 100_000
# (tenant, subscription id, from seq, up to seq, limit, incarnation or None for any) -> how
# many of its outbox rows went
Purge = Callable[[str, str, int, int, int, int | None], int]
# Rows of deleted subscriptions deleted at each acknowledgement flush (every ACK_EVERY s):
# a dead receiver's backlog goes in steps short enough for the event loop.
PURGE_EVERY = 2_000
# (tenant, subscription id, keep) -> the seq of the newest of its outbox rows beyond the
# newest keep, 0 if it has no more than keep
Cut = Callable[[str, str, int], int]
# seconds between checks of the backlogs on disk against Policy.outbox_max and outbox_total
TRIM_EVERY = 10.0
# Items read back from the outbox at a time, one statement per subscription on the loop.
RELOAD_MAX = 1_000
RETRY_RELOAD = 1.0  # seconds before reading back again when the memory bound left no room
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
    queue_max: int = 10_000  # items waiting for one tenant's endpoint
    memory: int = 128 * 2**20  # bytes of items queued over all endpoints
    # outbox rows one subscription may keep once its backlog outgrew memory (0: no bound);
    # past it its oldest are given up, so a dead receiver cannot fill the disk
    outbox_max: int = 0
    # outbox rows over all subscriptions (0: no bound); past it the oldest rows on disk of the
    # largest backlogs are given up (decision 090)
    outbox_total: int = 0


@dataclass
class Counters:
    """Delivery totals since start (reported by /health)."""

    delivered: int = 0  # notifications a receiver took
    failed_attempts: int = 0  # attempts that failed (each retry counts)
    given_up: int = 0  # notifications abandoned after their last attempt
    # timeInterval notifications (never in the outbox) dropped past a queue's or memory's bound
    dropped_full: int = 0
    spilled: int = 0  # items past a bound left in the outbox only, to be read back later
    # items given up unsent past Policy.outbox_max or outbox_total, oldest first
    outbox_full: int = 0

    def report(self) -> dict[str, int]:
        """The counters as /health shows them."""
        return {
            "delivered": self.delivered,
            "failedAttempts": self.failed_attempts,
            "givenUp": self.given_up,
            "droppedQueueFull": self.dropped_full,
            "spilledToOutbox": self.spilled,
            "droppedOutboxFull": self.outbox_full,
        }


@dataclass
class EndpointQueue:
    """The pending items of one endpoint and the task draining them."""

    items: deque[OutboxItem] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    size: int = 0  # bytes its items would cost alone (_cost: a shared body counted in each)
    # (tenant, subscription) -> the seq from which its items are only in the outbox: its later
    # items wait there too, so each subscription's notifications keep their order
    spilled: dict[tuple[str, str], int] = field(default_factory=dict)


class Dispatcher:
    """Per-(tenant, endpoint) queues over a deliver(item, attempt) callable (True: delivered, False:
    failed, None: nothing to deliver any more, HOLD: not now), reading back from the outbox
    (backlog) what its bounds left there; without a backlog such items wait for a restart."""

    def __init__(
        self,
        deliver: Deliver,
        ack: Callable[[list[int]], None],
        policy: Policy,
        backlog: Backlog | None = None,
        released: Callable[[bytes], None] | None = None,
        purge: Purge | None = None,
        cut: Cut | None = None,
        disk: DiskBacklog | None = None,
    ) -> None:
        self.deliver = deliver
        self.released = released  # told of a shared body once no item here holds it
        self.ack = ack
        self.policy = policy
        self.backlog = backlog
        self.purge = purge
        # deleted subscriptions whose outbox rows up to that seq (of that incarnation, if
        # known) are still to be deleted
        self._purges: dict[tuple[str, str], tuple[int, int, int | None]] = {}
        self.cut = cut
        self.disk = disk  # measures the outbox on disk for Policy.outbox_total (None: no bound)
        # subscriptions past Policy.outbox_max: the seqs from and up to which their rows only
        # on disk are to be given up (of any incarnation: None)
        self._trims: dict[tuple[str, str], tuple[int, int, int | None]] = {}
        self._trimmed_at = 0.0  # monotonic time of the last check
        self.counters = Counters()
        self.queues: dict[Where, EndpointQueue] = {}
        # bytes of every queued or held item, over all endpoints: a body items of one change
        # share (OutboxItem.body) counts once, as it is in memory once
        self.size = 0
        self._bodies: dict[int, int] = {}  # id of each shared body held here: items holding it
        self._charged = 0  # the sizes of the queues and held items (_cost: bodies in each)
        # items of paused subscriptions, by (tenant, subscription id): still in the outbox
        self.held: dict[tuple[str, str], list[OutboxItem]] = {}
        self._held_size: dict[tuple[str, str], int] = {}  # bytes each of those would alone
        # paused subscriptions whose held items from that seq on are only in the outbox
        self._held_spilled: dict[tuple[str, str], int] = {}
        # seqs read back from the outbox and not yet done: a committed item handed over from
        # another thread after the read is the same notification, not a new one
        self._reloaded: set[int] = set()
        self._acks: list[int] = []
        self._ack_log = ThrottledLog(log)  # a full disk fails every flush, 5 a second
        self._give_up_log = KeyedThrottledLog(log, GIVE_UP_LOG_EVERY)  # by endpoint
        self._trim_log = KeyedThrottledLog(log, GIVE_UP_LOG_EVERY)  # by subscription
        self._ack_task: asyncio.Task[None] | None = None
        self._closing = False

    def pending(self) -> int:
        """Items waiting in memory, over all endpoints."""
        return sum(len(q.items) for q in self.queues.values())

    def submit(self, items: list[OutboxItem]) -> None:
        """Queue committed items on their endpoints (call on the event loop)."""
        for item in items:
            if item.seq and item.seq in self._reloaded:
                continue  # already read back from the outbox
            where = (item.tenant, item.endpoint)
            queue = self.queues.get(where)
            if queue is None:
                queue = self.queues[where] = EndpointQueue()
            mark = queue.spilled.get((item.tenant, item.sub_id))
            if item.seq and mark is not None and item.seq >= mark:
                self.counters.spilled += 1  # behind its subscription's items on disk
                continue
            if len(queue.items) - _in_flight(queue) >= self.policy.queue_max:
                self._spill(queue, item)  # the bound is on waiting items
                continue
            queue.items.append(item)
            queue.size += _cost(item)
            self._count(item)
            self._wake(where, queue)
            self._within_memory(queue)
        self._start_acks()

    def _start_acks(self) -> None:
        if self._ack_task is None and not self._closing:
            self._ack_task = asyncio.get_running_loop().create_task(self._ack_loop())

    def left_on_disk(self, tenant: str, sub_id: str, endpoint: str, seq: int, held: bool) -> None:
        """A subscription's items from seq on stayed in the outbox at start-up: read back in
        order behind what was queued (or, held for a paused one, once it resumes), so a
        backlog of any length costs no more memory than the bounds allow."""
        key = (tenant, sub_id)
        if held:
            self._held_spilled[key] = min(self._held_spilled.get(key, seq), seq)
            return
        queue = self.queues.setdefault((tenant, endpoint), EndpointQueue())
        queue.spilled[key] = min(queue.spilled.get(key, seq), seq)
        self._wake((tenant, endpoint), queue)
        self._start_acks()

    def _wake(self, where: Where, queue: EndpointQueue) -> None:
        """Start the queue's worker if it has none."""
        if queue.task is None and not self._closing:
            queue.task = asyncio.get_running_loop().create_task(
                self._drain(where, queue), name=f"notify {where[1]} ({where[0] or 'default'})"
            )

    def _spill(self, queue: EndpointQueue, item: OutboxItem) -> None:
        """An item past a bound leaves memory: in the outbox it waits to be read back, with its
        subscription's later items; one of no outbox row (timeInterval) is dropped."""
        if not item.seq:
            self.counters.dropped_full += 1
            return
        key = (item.tenant, item.sub_id)
        queue.spilled[key] = min(queue.spilled.get(key, item.seq), item.seq)
        self.counters.spilled += 1
        self._reloaded.discard(item.seq)

    def _drop_newest(self, queue: EndpointQueue) -> OutboxItem | None:
        """Take a queue's newest waiting item out of memory (never the one in flight): the
        oldest stay, so what is read back later comes after them; None if none."""
        if len(queue.items) <= _in_flight(queue):
            return None
        dropped = queue.items.pop()
        self._forget(queue, dropped)
        self._spill(queue, dropped)
        return dropped

    def _refill(self, where: Where, queue: EndpointQueue) -> None:
        """Read back from the outbox, oldest first, what the queue's bounds left there, up to
        its room (at most RELOAD_MAX), leaving out what is in memory or acknowledged."""
        if self.backlog is None:
            queue.spilled.clear()  # nothing to read them back from: sent after a restart
            return
        room = min(RELOAD_MAX, self.policy.queue_max - len(queue.items))
        known = self._known()
        loaded: list[OutboxItem] = []
        for key, mark in sorted(queue.spilled.items(), key=lambda kv: kv[1]):
            if room <= 0:
                break
            rows = self.backlog(key[0], key[1], mark, room)
            if len(rows) < room:
                del queue.spilled[key]
            else:
                queue.spilled[key] = rows[-1].seq + 1
            room -= len(rows)
            loaded += [r for r in rows if r.seq not in known]
        for item in sorted(loaded, key=lambda i: i.seq):
            fits = self.size + _cost(item) <= self.policy.memory
            if not fits and not self._below_share(queue):  # no room: it stays on disk
                key = (item.tenant, item.sub_id)
                queue.spilled[key] = min(queue.spilled.get(key, item.seq), item.seq)
                continue
            item = replace(item, endpoint=where[1])
            queue.items.append(item)
            queue.size += _cost(item)
            self._count(item)
            self._reloaded.add(item.seq)
            if not fits:  # below its share: the largest queue gives way, as in submit
                self._within_memory(queue)

    def _below_share(self, queue: EndpointQueue) -> bool:
        """Whether a queue holds less than its share of the memory bound's bytes."""
        return queue.size * (len(self.queues) + len(self.held)) < self._charged

    def _may_refill(self, queue: EndpointQueue) -> bool:
        """Whether a queue should read back what it left on disk now: it is half empty,
        and memory has room or the queue is below its share (a dead receiver's long queue
        then gives way, so a live one is not kept waiting behind it)."""
        return (
            bool(queue.spilled)
            and len(queue.items) <= self.policy.queue_max // 2
            and (self.size < self.policy.memory or self._below_share(queue))
        )

    def in_memory(self) -> Iterator[OutboxItem]:
        """Every item queued (in flight too) or held, over all endpoints."""
        for queue in self.queues.values():
            yield from queue.items
        for kept in self.held.values():
            yield from kept

    def _known(self) -> set[int]:
        """Seqs of the items in memory or acknowledged and not yet deleted."""
        seqs = set(self._acks)
        for queue in self.queues.values():
            seqs.update(i.seq for i in queue.items)
        for kept in self.held.values():
            seqs.update(i.seq for i in kept)
        return seqs

    def _within_memory(self, queue: EndpointQueue | None) -> None:
        """Past the memory bound, take out of memory the newest waiting items of the queue just
        appended to
        while it holds at least its share, else of the largest queue or paused subscription's
        held items: dead receivers hold the longest queues, and each may hold queue_max items,
        as may each paused subscription. Shares and sizes count a shared body in each of its
        items; dropping one drops its fellows too (_drop_alike), as only the last frees it."""
        while self.size > self.policy.memory:
            holders = len(self.queues) + len(self.held)
            share = queue is not None and queue.size * holders >= self._charged
            if queue is not None and share and self._drop_alike(self._drop_newest(queue)):
                continue
            waiting = [q for q in self.queues.values() if len(q.items) > _in_flight(q)]
            largest = max(waiting, key=lambda q: q.size) if waiting else None
            paused = max(self._held_size, key=self._held_size.__getitem__, default=None)
            if paused is not None and (largest is None or self._held_size[paused] > largest.size):
                self._drop_alike(self._drop_held(paused))
            elif largest is not None:
                self._drop_alike(self._drop_newest(largest))
            else:
                return  # only items in flight are left

    def _drop_alike(self, dropped: OutboxItem | None) -> OutboxItem | None:
        """After dropping an item whose shared body others still hold, drop those of them that
        are the newest waiting of their queue or paused subscription (the items of one change
        are queued together, so they are mostly found there): the body's bytes come back only
        with the last of them, and dropping other items of other changes instead would free
        nothing more. Returns dropped."""
        body = dropped.body if dropped is not None else None
        if body is None or id(body) not in self._bodies:
            return dropped
        for queue in self.queues.values():
            while len(queue.items) > _in_flight(queue) and queue.items[-1].body is body:
                self._drop_newest(queue)
        for key in [k for k, kept in self.held.items() if kept[-1].body is body]:
            while key in self.held and self.held[key][-1].body is body:
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
            if self.released is not None:
                self.released(body)

    def _done(self, item: OutboxItem) -> None:
        if item.seq:
            self._acks.append(item.seq)
            self._reloaded.discard(item.seq)

    async def _drain(self, where: Where, queue: EndpointQueue) -> None:
        """Send the queue's items in order until it is empty."""
        try:
            while True:
                if self._may_refill(queue):
                    self._refill(where, queue)
                if not queue.items:
                    if not queue.spilled:
                        break
                    await asyncio.sleep(RETRY_RELOAD)  # the memory bound left no room
                    continue
                item = queue.items[0]
                done = True
                try:
                    done = await self._send(item)
                except Exception:  # an item that cannot be rendered would fail forever
                    self.counters.given_up += 1
                    log.exception(
                        "dropped a notification of %s to %s", item.sub_id, masked_url(where[1])
                    )
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
                self.queues.pop(where, None)

    async def _send(self, item: OutboxItem) -> bool:
        """One item: attempts with backoff until delivered or given up (True), or to be held
        (False: it stays in the outbox)."""
        delay = self.policy.backoff
        last: Outcome = False
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
            last = ok
            if attempt + 1 < self.policy.attempts:
                await asyncio.sleep(_pause(delay, ok, self.policy.backoff_max))
                delay = min(delay * 2, self.policy.backoff_max)
        self.counters.given_up += 1  # /health counts every one; the log, one per endpoint
        self._give_up_log.warning(
            item.endpoint,
            "gave up a notification of %s to %s after %d attempts (the last: %s)",
            item.sub_id,
            masked_url(item.endpoint),
            self.policy.attempts,
            why(last),
        )
        return True

    def hold(self, items: list[OutboxItem]) -> None:
        """Keep items of a paused subscription aside (they stay in the outbox), at most
        queue_max per subscription, and within the memory bound with the queued ones: beyond
        either, the newest leave memory, read back from the outbox when it resumes."""
        for item in items:
            key = (item.tenant, item.sub_id)
            mark = self._held_spilled.get(key)
            if item.seq and mark is not None and item.seq >= mark:
                self.counters.spilled += 1
                continue
            self.held.setdefault(key, []).append(item)
            self._held_size[key] = self._held_size.get(key, 0) + _cost(item)
            self._count(item)
            if len(self.held[key]) > self.policy.queue_max:
                self._drop_held(key)
        if items:
            self._within_memory(None)

    def _drop_held(self, key: tuple[str, str]) -> OutboxItem:
        """Take the newest item held for a paused subscription out of memory (it stays in the
        outbox, with the later ones)."""
        kept = self.held[key]
        item = kept.pop()
        self._unhold(key, item)
        if not kept:
            del self.held[key]
        if item.seq:
            mark = self._held_spilled.get(key, item.seq)
            self._held_spilled[key] = min(mark, item.seq)
            self.counters.spilled += 1
            self._reloaded.discard(item.seq)
        else:
            self.counters.dropped_full += 1
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
        later, and would otherwise be sent before the held ones); those the bounds left in
        the outbox are read back there, after the ones in memory."""
        key = (tenant, sub_id)
        items = self._take_held(key)
        mark = self._held_spilled.pop(key, None)
        if not items and mark is None:  # nothing held, nothing to reorder: a PATCH
            return
        for queue in self.queues.values():
            at = _in_flight(queue)
            waiting = list(queue.items)[at:]
            mine = [i for i in waiting if i.tenant == tenant and i.sub_id == sub_id]
            for item in mine:
                queue.items.remove(item)
                self._forget(queue, item)
            items += mine
            left = queue.spilled.pop(key, None)
            if left is not None:
                mark = left if mark is None else min(mark, left)
        items.sort(key=lambda i: i.seq)
        self._reloaded.difference_update(i.seq for i in items)
        if mark is not None:  # later ones than what is on disk are read back with it
            items = [i for i in items if not i.seq or i.seq < mark]
        self.submit([replace(i, endpoint=endpoint) for i in items])
        if mark is not None:
            target = self.queues.setdefault((tenant, endpoint), EndpointQueue())
            target.spilled[key] = min(target.spilled.get(key, mark), mark)
            self._wake((tenant, endpoint), target)

    def discard(self, tenant: str, sub_id: str, upto: int = 0, inc: int | None = None) -> None:
        """Drop the items held for a subscription that is gone, forget where its items left
        on disk begin, and delete its outbox rows up to seq upto (of its incarnation inc, when
        known) a step at a time: a paused one's left only on disk are never read back, and a
        dead receiver's backlog would otherwise wait to be given up item by item. Its items
        waiting in a queue are dropped when reached (deliver answers None)."""
        key = (tenant, sub_id)
        self._held_spilled.pop(key, None)
        for queue in self.queues.values():
            queue.spilled.pop(key, None)
        for item in self._take_held(key):
            self._done(item)
        if self.purge is not None and upto:
            self._purges[key] = (0, upto, inc)
            self._start_acks()

    def _purge_some(self) -> None:
        """Delete up to PURGE_EVERY rows of deleted subscriptions (kept for the next flush
        if the delete fails)."""
        room = PURGE_EVERY
        for book in (self._purges, self._trims):
            for key, (since, upto, inc) in list(book.items()):
                if room <= 0 or self.purge is None:
                    return
                try:
                    gone = self.purge(key[0], key[1], since, upto, room, inc)
                except Exception as exc:
                    self._ack_log.error("could not delete items from the outbox (%s)", exc)
                    return
                room -= gone
                if book is self._trims:
                    self.counters.outbox_full += gone
                if room > 0:  # fewer than asked: none left
                    del book[key]

    async def _ack_loop(self) -> None:
        """Delete delivered items from the outbox in batches."""
        while not self._closing:
            await asyncio.sleep(ACK_EVERY)
            now = asyncio.get_running_loop().time()
            if now - self._trimmed_at >= TRIM_EVERY:
                self._trimmed_at = now
                self._find_trims()
            self.flush_acks()

    def _find_trims(self) -> None:
        """Note the subscriptions whose backlog on disk passed Policy.outbox_max, then, past
        Policy.outbox_total, the largest backlogs: only those with items past a memory bound
        can be cut (the rest are all in memory, queue_max at most, and are sent)."""
        if self.purge is None:
            return
        marks = dict(self._held_spilled)
        for queue in self.queues.values():
            marks.update(queue.spilled)
        # rows being given up, or deleted with their subscription, still count in the total:
        # it is measured again at the next check, once they are gone
        pending = bool(self._trims or self._purges)
        try:
            self._trim_each(marks)
            if not pending:
                self._trim_total(marks)
        except Exception as exc:
            self._ack_log.error("could not measure a backlog in the outbox (%s)", exc)

    def _trim_each(self, marks: dict[tuple[str, str], int]) -> None:
        """Past Policy.outbox_max rows, a subscription's oldest rows on disk are given up."""
        keep = self.policy.outbox_max
        if not keep or self.cut is None:
            return
        for key, mark in marks.items():
            cut = self.cut(key[0], key[1], keep)
            if cut >= mark:  # the rows in memory, before the mark, are sent
                self._trim(key, mark, cut, f"it holds more than {keep}")

    def _trim_total(self, marks: dict[tuple[str, str], int]) -> None:
        """Past Policy.outbox_total rows over all, the largest backlogs on disk give up their
        oldest rows there, cut down to one level, until the outbox is back within the bound
        (those outbox_max just gave up count as gone). Each check walks the index entries
        of those backlogs once, twice for one outbox_max cut."""
        bound, disk = self.policy.outbox_total, self.disk
        if not bound or disk is None or not marks:
            return
        excess = disk.total() - bound
        if excess <= 0:
            return
        sizes: dict[tuple[str, str], int] = {}
        starts: dict[tuple[str, str], int] = {}
        for key, mark in marks.items():
            starts[key] = mark
            if key in self._trims:  # rows up to the trim's end are going already
                starts[key] = self._trims[key][1] + 1
                excess -= disk.on_disk(key[0], key[1], mark)
                sizes[key] = disk.on_disk(key[0], key[1], starts[key])
                excess += sizes[key]
            else:
                sizes[key] = disk.on_disk(key[0], key[1], mark)
        for key, drop in levelled(sizes, excess).items():
            cut = disk.nth(key[0], key[1], starts[key], drop)
            if cut:
                self._trim(key, marks[key], cut, f"the outbox holds more than {bound} in all")

    def _trim(self, key: tuple[str, str], mark: int, cut: int, why: str) -> None:
        """Give up a subscription's rows on disk from mark up to cut (logged once per
        subscription every GIVE_UP_LOG_EVERY s)."""
        since, upto, _ = self._trims.get(key, (mark, cut, None))
        self._trims[key] = (min(since, mark), max(upto, cut), None)
        self._trim_log.warning(
            f"{key[0]}/{key[1]}",
            "giving up the oldest notifications of %s left in the outbox: %s",
            key[1],
            why,
        )

    def flush_acks(self) -> None:
        """Delete the acknowledged items now; if the delete fails (a full disk), keep them
        for the next flush (at most ACKS_KEPT): dropped, they were all sent again at the next
        restart, though nothing had crashed."""
        if self._purges or self._trims:
            self._purge_some()
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


def backlog_of(store: Any, kind: str) -> Backlog | None:
    """What a dispatcher reads its left-behind items back through: the store's outbox rows of
    its kind (None for a store without them)."""
    outbox_of = getattr(store, "outbox_of", None)
    if outbox_of is None:
        return None
    return lambda tenant, sub_id, seq, limit: list(outbox_of(kind, tenant, sub_id, seq, limit))


def purge_of(store: Any, kind: str) -> Purge | None:
    """How a dispatcher deletes a deleted subscription's rows of its kind (None for a store
    without an outbox)."""
    purge = getattr(store, "outbox_purge", None)
    if purge is None:
        return None
    return lambda tenant, sub_id, since, upto, limit, inc: int(
        purge(kind, tenant, sub_id, since, upto, limit, inc)
    )


def cut_of(store: Any) -> Cut | None:
    """How a dispatcher finds where a subscription's rows past Policy.outbox_max end (None
    for a store without an outbox)."""
    cut = getattr(store, "outbox_cut", None)
    if cut is None:
        return None
    return lambda tenant, sub_id, keep: int(cut(tenant, sub_id, keep))


def last_seq(store: Any) -> int:
    """The store's highest outbox seq (0 without an outbox): a deleted subscription's rows
    end there, whatever one made again under its id adds later."""
    last = getattr(store, "outbox_last", None)
    return int(last()) if last is not None else 0


def _cost(item: OutboxItem) -> int:
    """Bytes an item would cost alone: its shared body counted in full."""
    return len(item.payload) + ITEM_OVERHEAD + (len(item.body) if item.body is not None else 0)


def _pause(delay: float, failed: Outcome, most: float) -> float:
    """Seconds before the next attempt: the backoff's, or longer when the receiver asked
    for it (429/503 Retry-After), up to the backoff's bound."""
    if isinstance(failed, RetryLater):
        return max(delay, min(failed.seconds, most))
    return delay


def _in_flight(queue: EndpointQueue) -> int:
    """1 while the queue's worker is sending items[0], else 0."""
    return 1 if queue.task is not None and queue.items else 0


__all__ = [
    "HOLD",
    "Backlog",
    "Counters",
    "Dispatcher",
    "EndpointQueue",
    "Policy",
    "Purge",
    "backlog_of",
    "cut_of",
    "last_seq",
    "purge_of",
]
