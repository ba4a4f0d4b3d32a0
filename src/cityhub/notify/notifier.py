"""The notifier: keeps every subscription compiled, turns committed changes into outbox items
(inside the writing transaction), and delivers them through per-endpoint queues.

Flow: a write block ends → the store hands its changes to ``outbox_items`` (same
transaction) → after COMMIT the store calls ``committed`` → the dispatcher sends each item
and acknowledges it → delivered items are deleted from the outbox in batches. Items left in
the outbox by a crash are queued again at start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from cityhub.bigjson import OFF_LOOP, in_thread
from cityhub.gcpause import collector_paused
from cityhub.jsonbytes import dumps_kept
from cityhub.ngsild.context import (
    ContextCache,
    core_link,
    is_compound,
    link_for,
    named_local_ids,
    url_local_ids,
)
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.notify_timeout import attempt_seconds
from cityhub.ngsild.timeutil import now_iso
from cityhub.notify import payload, status
from cityhub.notify.csource import CsourceNotifier
from cityhub.notify.delivery import HOLD, Dispatcher, Policy, backlog_of, cut_of, last_seq, purge_of
from cityhub.notify.events import (
    ChangeEvents,
    Shape,
    dump_shape,
    erased_with,
    load_shape,
    stored_events,
)
from cityhub.notify.index import SubscriptionIndex
from cityhub.notify.outbox_bound import disk_of
from cityhub.notify.outcome import Outcome
from cityhub.notify.pieces import Pieces
from cityhub.notify.senders import HttpSender, MqttSender
from cityhub.notify.shared import SharedChanges
from cityhub.notify.subscription import (
    Compiled,
    compile_subscription,
    subscription_contexts,
)
from cityhub.notify.throttle import Stamps
from cityhub.store.base import (
    WITHDRAWN,
    Change,
    EntityQuery,
    EntitySelector,
    LeftOnDisk,
    OrderKey,
    OutboxItem,
)
from cityhub.throttled_log import KeyedThrottledLog

log = logging.getLogger("cityhub.notify")
KIND = "subscription"  # the resources kind /subscriptions stores
PERIODIC_PAGE = 1000  # most entities one timeInterval notification carries (more: more of them)
PERIOD_LOG_EVERY = 600.0  # seconds between log lines of one subscription's failing periods

Doc = dict[str, Any]


class Notifier:
    """Subscriptions, matching and delivery for one store (the store's change sink)."""

    def __init__(
        self,
        store: Any,
        contexts: ContextCache,
        policy: Policy,
        base_url: str,
        http: HttpSender | None = None,
    ) -> None:
        self.store = store
        self.contexts = contexts
        self.base_url = base_url
        self.subs: dict[str, dict[str, Compiled]] = {}
        self._on_change: dict[str, SubscriptionIndex] = {}
        self._unresolved: list[tuple[str, Doc]] = []
        # hub-served context local id -> the stored (csource) subscriptions naming it by URL
        self._by_url: dict[str, set[tuple[str, str, str]]] = {}
        self._urls_of: dict[tuple[str, str, str], set[str]] = {}
        self.shared = SharedChanges()  # changes several subscriptions share, parsed once
        self.dispatcher = Dispatcher(
            self._deliver,
            store.outbox_done,
            policy,
            backlog_of(store, "entity"),
            released=self.shared.forget,
            purge=purge_of(store, "entity"),
            cut=cut_of(store),
            disk=disk_of(store),
        )
        self.stamps = Stamps()  # throttling clocks of the open transaction (csource's too)
        self.http = http if http is not None else HttpSender()
        self.mqtt = MqttSender(guard=self.http.guard)  # brokers as receivers: decision 033
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        # items read at start-up that wait for their subscription's @context (_resolve)
        self._awaiting: list[OutboxItem] = []
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._status_task: asyncio.Task[None] | None = None
        # a period whose query failed: one line per subscription per PERIOD_LOG_EVERY
        self._period_log = KeyedThrottledLog(log, PERIOD_LOG_EVERY)
        self.statuses = status.StatusBook(self.store, KIND)
        self.render_failed = 0  # notifications that could not be rendered (/health)
        self.cooldown_skipped = 0  # not sent: due within their endpoint's cooldown (/health)
        self.csource = CsourceNotifier(self)  # /csourceSubscriptions (in-memory queues)

    # -- the registry ------------------------------------------------------------------------
    def load(self) -> None:
        """Compile every stored subscription (those whose @context is not at hand wait),
        with the cyclic collector held off: what is built here stays alive."""
        with collector_paused():
            for tenant, doc in self.store.resource_every_tenant(KIND):
                self.names(KIND, tenant, doc["id"], doc)
                if not self._install(tenant, doc):
                    self._unresolved.append((tenant, doc))
            self.csource.load()
        self.contexts.settle()  # every name is known: what nothing names may go

    def names(self, kind: str, tenant: str, sid: str, doc: Doc | None) -> None:
        """Tell the @context cache which hub-served contexts a stored (csource) subscription
        names (doc None: it is deleted), so none of them is evicted while it does."""
        specs = subscription_contexts(doc) if doc is not None else ()
        owner = (kind, tenant, sid)
        self.contexts.name(owner, named_local_ids(specs))
        urls, old = url_local_ids(specs), self._urls_of.pop(owner, set())
        if urls:
            self._urls_of[owner] = urls
        for lid in urls - old:
            self._by_url.setdefault(lid, set()).add(owner)
        for lid in old - urls:
            owners = self._by_url.get(lid)
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    del self._by_url[lid]

    def link(self, spec: Any, base: str | None = None) -> str:
        """The Link header naming a subscription's @context; a hub-served one under base, the
        hub's URL the subscription was made through (else the one it was started with)."""
        if not is_compound(spec):
            single = spec[0] if isinstance(spec, list) else spec
            return core_link() if single is None else link_for(single)
        entry = self.contexts.implicit(spec)
        if not entry.stored:
            self.store.put_context(entry.url, entry.document, entry.kind, entry.created_at)
            entry.stored = True
        return link_for((base or self.base_url) + entry.url_path)

    def _install(self, tenant: str, doc: Doc) -> bool:
        """Compile and register one subscription; False when its @context is not loaded."""
        try:
            sub = compile_subscription(tenant, doc, self.contexts.compile_kept, self.link)
        except NgsiLdError:
            return False
        sub.carry_from(self.subs.setdefault(tenant, {}).get(sub.id))
        self.subs[tenant][sub.id] = sub
        index = self._on_change.setdefault(tenant, SubscriptionIndex())
        if sub.periodic is None:  # filed in place of its earlier version: not a rebuild
            index.add(sub)
        else:
            index.remove(sub.id)
        self._schedule(sub)
        return True

    def remove(self, tenant: str, sid: str) -> None:
        """Forget a deleted subscription (its queued items are dropped when reached: they
        carry its incarnation, which one made again under its id does not have)."""
        gone = self.subs.get(tenant, {}).pop(sid, None)
        inc = gone.inc if gone is not None else None  # None: not compiled, any incarnation
        self.dispatcher.discard(tenant, sid, last_seq(self.store), inc)
        self.statuses.forget(tenant, sid)
        self.names(KIND, tenant, sid, None)
        index = self._on_change.get(tenant)
        if index is not None:
            index.remove(sid)
        task = self._tasks.pop((tenant, sid), None)
        if task is not None:
            task.cancel()

    async def refresh(self, tenant: str, sid: str) -> None:
        """Take a created or updated subscription as stored (or its deletion) into account."""
        self.start()
        doc = self.store.resource_get(KIND, tenant, sid)
        if doc is None:
            self.remove(tenant, sid)
            return
        self.names(KIND, tenant, sid, doc)
        await self.contexts.prefetch_each(subscription_contexts(doc))
        task = self._tasks.pop((tenant, sid), None)
        if task is not None:
            task.cancel()
        if not self._install(tenant, doc):
            log.warning("subscription %s waits for its @context", sid)
            return
        sub = self.get(tenant, sid)
        if sub is not None and not sub.paused:
            self.dispatcher.release(tenant, sid, sub.endpoint)

    def names_context(self, local_id: str) -> bool:
        """Whether a stored subscription or csourceSubscription of any tenant compiles with
        the hub-served @context of this local id by URL (deleting it must not break them):
        from what names() recorded, not by reading every stored subscription on the loop."""
        return local_id in self._by_url

    def change_index(self, tenant: str) -> SubscriptionIndex | None:
        """The tenant's change-driven subscriptions, as matching looks them up (to weigh a
        batch's matching work before it is written)."""
        return self._on_change.get(tenant)

    def get(self, tenant: str, sid: str) -> Compiled | None:
        """A compiled subscription."""
        return self.subs.get(tenant, {}).get(sid)

    def status(self, tenant: str, doc: Doc) -> Doc:
        """A stored subscription with its live delivery status (for the API)."""
        return status.shown(doc, self.get(tenant, doc.get("id", "")))

    # -- the change sink (called by the store inside the write transaction) --------------------
    def wants(self, tenant: str) -> bool:
        """Whether changes in this tenant can notify anyone."""
        return bool(self._on_change.get(tenant))

    def outbox_items(self, tenant: str, changes: list[Change]) -> list[OutboxItem]:
        """The notifications a write's changes give, to be written with them."""
        index = self._on_change.get(tenant)
        if not index:
            return []
        now, clock, wall = now_iso(), time.monotonic(), time.time()
        items: list[OutboxItem] = []
        try:
            for change in changes:
                if change.types is not None and not index.may_concern(change.eid, change.types):
                    continue
                before = orjson.loads(change.before) if change.before else None
                after = orjson.loads(change.after) if change.after else None
                events = ChangeEvents(before, after, now)
                # of an update, only the subscriptions watching a changed attribute (or all)
                changed = events.changes if before is not None and after is not None else None
                notified: list[tuple[Compiled, Shape]] = []
                for sub in index.candidates(before, after, changed=changed):
                    if not sub.live(wall):
                        continue
                    if sub.failed_at is not None and sub.cooling(clock):
                        self.cooldown_skipped += 1
                        continue
                    shapes = events.shapes(sub)
                    if not shapes or not sub.due(clock):
                        continue
                    if sub.doc.get("throttling"):  # two at once would break its least time
                        shapes = shapes[:1]
                    notified += [(sub, shape) for shape in shapes]
                if notified:
                    self._add(items, tenant, events, notified, clock)
        except BaseException:  # none of these items is written: neither are their stamps
            self.stamps.rolled_back(items)
            raise
        return items

    def _add(
        self,
        items: list[OutboxItem],
        tenant: str,
        events: ChangeEvents,
        notified: list[tuple[Compiled, Shape]],
        clock: float,
    ) -> None:
        """Add the outbox items of one change, stamped: one subscription's holds its event;
        those of several share the change's record (stored once) and each holds its shape,
        so that the bytes a change costs do not grow with the subscriptions it notifies."""
        if len(notified) == 1:
            sub, shape = notified[0]
            item = OutboxItem(
                tenant, sub.id, sub.endpoint, dumps_kept([events.event(shape)]), inc=sub.inc
            )
            self.stamps.stamp(sub, clock, item)
            items.append(item)
            return
        body = dumps_kept(events.record([shape for _, shape in notified]))
        shapes: dict[Shape, bytes] = {}  # subscriptions alike share their shape's bytes too
        for sub, shape in notified:
            own = shapes.get(shape)
            if own is None:
                own = shapes[shape] = dump_shape(shape)
            item = OutboxItem(tenant, sub.id, sub.endpoint, own, body=body, inc=sub.inc)
            self.stamps.stamp(sub, clock, item)
            items.append(item)

    def rolled_back(self, items: list[OutboxItem]) -> None:
        """Items of a transaction (or savepoint) that rolled back: their throttling stamps go
        (called by the store under its write lock)."""
        self.stamps.rolled_back(items)

    def erases(self, eid: str, payload: bytes, body: bytes | None) -> bool:
        """Whether a stored item carries values of an entity being erased."""
        return erased_with(eid, payload, body)

    def withdrawn(self, seqs: list[int]) -> None:
        """Rows an erasure or retention emptied in the outbox (from any thread, under the
        store's write lock, before the committed items of its transaction): their items
        waiting in memory are never sent (before start() none is: it reads them emptied)."""
        if self._loop is not None:  # queued behind the items committed before (FIFO)
            self._loop.call_soon_threadsafe(self._withdraw, seqs)

    def _withdraw(self, seqs: list[int]) -> None:
        """On the loop: mark the items in memory whose rows are emptied. Only the item
        objects are marked, never a seq (a deleted row's seq is given to the next row), and
        only of seqs whose rows are emptied or gone now: rows are deleted on the loop only,
        so none of those seqs was given to a new item since (decision 095, addendum)."""
        kept = getattr(self.store, "outbox_kept", None)
        gone = set(seqs) - (kept(seqs) if kept is not None else set())
        if not gone:
            return
        for item in (*self.dispatcher.in_memory(), *self._awaiting):
            if item.seq in gone:
                item.withdrawn = True

    def committed(self, items: list[OutboxItem]) -> None:
        """Committed items go to their endpoint queues (from any thread)."""
        self.stamps.committed()  # under the store's write lock, right after COMMIT
        if self._loop is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: start() takes them from the outbox
            self.start()  # loads the outbox, these items included
            return
        if threading.get_ident() == self._thread:
            self._route(items)
        else:
            self._loop.call_soon_threadsafe(self._route, items)

    def _route(self, items: list[OutboxItem]) -> None:
        """Entity notifications to this notifier's queues, registration ones to csource's."""
        mine = [i for i in items if i.kind != "csource"]
        theirs = [i for i in items if i.kind == "csource"]
        held = [i for i in mine if self._holds(i)]  # a paused one's, e.g. after a restart:
        if held:  # aside at once, never through a queue's bounds, which would drop them
            self.dispatcher.hold(held)
            mine = [i for i in mine if not self._holds(i)]
        if mine:
            self.dispatcher.submit(mine)
        if theirs:
            self.csource.dispatcher.submit(theirs)

    # -- running -----------------------------------------------------------------------------
    def start(self) -> None:
        """Begin delivering on the running loop: what the outbox holds first (idempotent)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        policy = self.dispatcher.policy
        heads = self.store.outbox_heads(policy.queue_max, policy.memory)
        backlog, rest = heads.items, heads.rest
        # a subscription still waiting for its @context would drop its items as unwanted
        waiting = {(t, doc["id"]) for t, doc in self._unresolved} | self.csource.waiting()
        held = self._awaiting = [i for i in backlog if (i.tenant, i.sub_id) in waiting]
        if backlog or rest:
            log.info(
                "delivering %d notifications left from before the restart, and the rest of"
                " %d subscriptions' backlogs from disk as they drain",
                len(backlog),
                len(rest),
            )
            self._route([i for i in backlog if (i.tenant, i.sub_id) not in waiting])
            self._left_on_disk([r for r in rest if (r.tenant, r.sub_id) not in waiting])
        for tenant_subs in self.subs.values():
            for sub in tenant_subs.values():
                self._schedule(sub)
        self._status_task = self._loop.create_task(self.statuses.run())
        self.csource.start()
        if waiting:
            self._loop.create_task(
                self._resolve(held, [r for r in rest if (r.tenant, r.sub_id) in waiting])
            )

    def _left_on_disk(self, rest: list[LeftOnDisk]) -> None:
        """Tell the dispatcher of each subscription's kind which of its items start-up left on
        disk (both, for a subscription that is gone: each reads back and drops its own)."""
        for r in rest:
            sub = self.get(r.tenant, r.sub_id)
            csource = self.csource.get(r.tenant, r.sub_id) is not None
            if sub is not None or not csource:
                paused = sub is not None and sub.paused and not sub.expired()
                self.dispatcher.left_on_disk(r.tenant, r.sub_id, r.endpoint, r.seq, paused)
            if csource or sub is None:
                self.csource.dispatcher.left_on_disk(r.tenant, r.sub_id, r.endpoint, r.seq, False)

    async def _resolve(self, held: list[OutboxItem], rest: list[LeftOnDisk]) -> None:
        """Fetch the @contexts that subscriptions loaded at start-up still need, then deliver
        the backlog that waited for them; items of a subscription still unresolved stay in
        the outbox for the next start."""
        waiting, self._unresolved = self._unresolved, []
        for tenant, doc in waiting:
            await self.refresh(tenant, doc["id"])
        await self.csource.resolved.wait()
        self._awaiting = []
        ready = [
            i
            for i in held
            if (self.csource if i.kind == "csource" else self).get(i.tenant, i.sub_id)
        ]
        if ready:
            self._route(ready)
        self._left_on_disk(
            [
                r
                for r in rest
                if self.get(r.tenant, r.sub_id) or self.csource.get(r.tenant, r.sub_id)
            ]
        )

    async def close(self) -> None:
        """Stop delivering: flush acknowledgements and status, close connections."""
        for task in [*self._tasks.values(), self._status_task]:
            if task is not None:
                task.cancel()
        await self.dispatcher.close()
        self.statuses.flush()
        await self.csource.close()
        await self.http.close()
        await self.mqtt.close()

    # -- delivery ------------------------------------------------------------------------------
    def _holds(self, item: OutboxItem) -> bool:
        """Whether an item waits for its subscription to resume: paused, not expired (and
        made for it, not for one deleted before it under its id)."""
        sub = self.get(item.tenant, item.sub_id)
        return sub is not None and sub.paused and not sub.expired() and sub.owns(item)

    async def _deliver(self, item: OutboxItem, attempt: int) -> Outcome | Literal["hold"] | None:
        """Send one item (True/False) to the subscription's endpoint as it is now; None when
        the subscription is gone or expired, or the item was made for an earlier one of its
        id; HOLD while it is paused (a change made while it was active is notified once it
        resumes); None too for an item an erasure withdrew (decision 095)."""
        if item.withdrawn or (item.body is None and item.payload == WITHDRAWN):
            return None
        if self._holds(item):
            return HOLD
        sub = self.get(item.tenant, item.sub_id)
        if sub is None or not sub.owns(item) or not sub.live():
            return None
        if sub.cooling(time.monotonic()):  # a retry, or an item queued before the failure
            self.cooldown_skipped += 1
            if attempt:
                self.dispatcher.counters.given_up += 1
            return None
        try:
            if len(item.payload) + len(item.body or b"") >= OFF_LOOP or payload.joins(sub):
                # a large change, or a join (up to MAX_LINKED fetches and renders however
                # small the change): rendered on a thread (one item at a time, so in order)
                body, headers = await in_thread(self._render, sub, item)
            else:
                body, headers = self._render(sub, item)
        except Exception:  # the dispatcher logs and gives it up: its owner must see it too
            self.render_failed += 1
            owner = self._owner(item)
            if owner is not None:
                self.statuses.unsent(owner)
            raise
        ok = await self.send(sub, sub.endpoint, body, headers)
        owner = self._owner(item)
        if owner is not None:
            self.statuses.record(owner, bool(ok))
            if not ok:
                owner.failed_at = time.monotonic()
        return ok

    def _owner(self, item: OutboxItem) -> Compiled | None:
        """The subscription an item was made for, as it is now (after the send's awaits): None
        once it is deleted, or made again under its id, whose status it is not (the old one's
        timesSent was written onto the new one)."""
        sub = self.get(item.tenant, item.sub_id)
        return sub if sub is not None and sub.owns(item) else None

    def _render(self, sub: Compiled, item: OutboxItem) -> tuple[bytes | Pieces, dict[str, str]]:
        """The body and headers of an item's notification (on the loop, or a thread): of a
        change several subscriptions share, from its parse and rendering made once."""

        def fetch(ids: list[str]) -> dict[str, Doc]:
            found, _ = self.store.query(
                item.tenant, EntityQuery(ids=tuple(dict.fromkeys(ids)), limit=len(ids))
            )
            return {d["id"]: d for d in found}

        body = item.body
        if body is None:
            return payload.notification(sub, stored_events(item.payload, None), fetch, item.tenant)
        shape = load_shape(item.payload)
        events = [self.shared.change(body).event(shape)]
        key = payload.rendering_key(sub)
        if key is None:
            return payload.notification(sub, events, fetch, item.tenant)
        data = self.shared.data(
            body,
            (shape, key),
            sub.tm,
            lambda: orjson.dumps(payload.notification_data(sub, events, fetch)),
        )
        return payload.envelope_around(sub, "Notification", data, shape[0], item.tenant)

    async def send(
        self, sub: Compiled, uri: str, body: bytes | Pieces, headers: dict[str, str]
    ) -> Outcome:
        """Put one rendered notification on the wire (HTTP or MQTT) with its endpoint's timeout
        (csourceSubscriptions send through here too)."""
        endpoint = sub.notification["endpoint"]
        timeout = attempt_seconds(endpoint, self.dispatcher.policy.timeout)
        if urlsplit(uri).scheme.lower() in ("mqtt", "mqtts"):
            return await self.mqtt.send(uri, body, headers, timeout, endpoint.get("notifierInfo"))
        return await self.http.send(uri, body, headers, timeout)

    # -- timeInterval subscriptions --------------------------------------------------------------
    def _schedule(self, sub: Compiled) -> None:
        """Start the clock of a periodic subscription (once the loop runs)."""
        interval = sub.periodic
        key = (sub.tenant, sub.id)
        if interval is None or self._loop is None or key in self._tasks:
            return
        self._tasks[key] = self._loop.create_task(self._every(sub.tenant, sub.id, interval))

    async def _every(self, tenant: str, sid: str, interval: float) -> None:
        """Notify the matching entities every interval seconds, changed or not: all of them,
        PERIODIC_PAGE to a notification (one notification used to carry the first 1,000
        and leave the rest out, every period)."""
        while True:
            await asyncio.sleep(interval)
            sub = self.get(tenant, sid)
            if sub is None:
                return
            if not sub.live() or sub.cooling(time.monotonic()):
                continue
            try:
                await self._period(sub)
            except Exception as exc:  # one period is lost, never the timer
                # a query stopped at CITYHUB_QUERY_TIMEOUT, or a database error, ended the
                # task: the subscription never notified again, and still showed as active
                self._period_log.warning(
                    f"{tenant}\x00{sid}",
                    "timeInterval subscription %s skipped a period: %s (%s)",
                    sid,
                    type(exc).__name__,
                    exc,
                )

    async def _period(self, sub: Compiled) -> None:
        """One period's notifications of a timeInterval subscription: every matching entity,
        PERIODIC_PAGE to a notification, each page queried off the loop."""
        offset = 0
        while True:
            docs = await asyncio.to_thread(self._select, sub, offset)
            if docs:
                events = [{"trigger": None, "entity": d} for d in docs]
                item = OutboxItem(sub.tenant, sub.id, sub.endpoint, dumps_kept(events), inc=sub.inc)
                self.dispatcher.submit([item])
            if len(docs) < PERIODIC_PAGE:
                return
            offset += PERIODIC_PAGE

    def _select(self, sub: Compiled, offset: int = 0) -> list[Doc]:
        """One page of the entities a periodic subscription is about right now, in id
        order (an entity its EntitySelectors select twice comes once)."""
        selectors = [
            EntitySelector(
                ids=(sel.id,) if sel.id else None,
                id_pattern=sel.pattern.pattern if sel.pattern else None,
                types=sel.types,
            )
            for sel in sub.selectors
        ]
        one = selectors[0] if len(selectors) == 1 else EntitySelector()
        query = EntityQuery(
            ids=one.ids,
            id_pattern=one.id_pattern,
            types=one.types,
            selectors=tuple(selectors) if len(selectors) > 1 else None,
            q=sub.q,
            geo=sub.geo,
            scope=sub.scope,
            limit=PERIODIC_PAGE,
            offset=offset,
            order=(OrderKey(("id",)),),
        )
        docs, _ = self.store.query(sub.tenant, query)
        return list(docs)
