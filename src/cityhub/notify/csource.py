"""Context source registration subscriptions at work (clause 5.11): which csourceSubscriptions
a registration change concerns, the ContextSourceNotification each gets, delivery and status.

Registrations are written through the store's ``resource_*`` methods, not the entity write
transaction, so the API writes each registration inside ``store.group()`` and, in the same
group, hands the registration before and after to ``CsourceNotifier.registration_changed``,
which stages the notifications in the outbox (``kind`` "csource"): as for entities (decision
008), an acknowledged registration change is notified even after a crash. After COMMIT the
store hands them to the entity notifier, which routes them to this notifier's own
``Dispatcher``. The notifications sent when a subscription is created or on a
``timeInterval`` tick are not stored: they describe the current state, sent again anyway.

Matching reuses the discovery rules of ``ngsild/registrations.py``: each entity selector of a
subscription becomes one ``RegistrationQuery`` (types, id, idPattern against the registration's
``information[].entities``; ``watchedAttributes`` against its property and relationship names;
``q`` and ``csf`` against its own properties; ``geoQ`` against ``location`` unless it names
another geoproperty; ``temporalQ`` against ``observationInterval``, or ``managementInterval`` for
createdAt/modifiedAt). A registration matches when any of them answers; a notification carries
it with only the RegistrationInfo items that matched.

Triggers: a registration that starts to match is ``newlyMatching``, one that still matches after
an update is ``updated``, one that matched before an update or deletion and no longer does is
``noLongerMatching``. The notification on creating or updating a subscription, and every tick of
a ``timeInterval`` one, carry all registrations matching at that moment as ``newlyMatching``:
for the receiver each is the full current set, just as if it had subscribed anew.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import orjson

from cityhub.jsonbytes import dumps_kept
from cityhub.ngsild import registrations as R
from cityhub.ngsild import subscriptions as S
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.query.evaluate import matches_scope
from cityhub.ngsild.query.qlang import norm_datetime
from cityhub.notify import status
from cityhub.notify.delivery import HOLD, Dispatcher, backlog_of, cut_of, last_seq, purge_of
from cityhub.notify.outcome import Outcome
from cityhub.notify.payload import envelope
from cityhub.notify.subscription import Compiled, compile_subscription, subscription_contexts
from cityhub.store.base import OutboxItem

if TYPE_CHECKING:
    from cityhub.notify.notifier import Notifier

log = logging.getLogger("cityhub.notify")
KIND = "csourceSubscription"  # the resources kind /csourceSubscriptions stores
REGISTRATIONS = R.REGISTRATIONS  # the resources kind /csourceRegistrations stores
NOTIFICATION = "ContextSourceNotification"
NEWLY, UPDATED, GONE = "newlyMatching", "updated", "noLongerMatching"
# Registrations in one ContextSourceNotification of the current matching set.
PER_NOTIFICATION = 1_000

Doc = dict[str, Any]


@dataclass
class CsourceSub:
    """A csourceSubscription ready for matching: the shared compiled form plus one registration
    query per entity selector."""

    sub: Compiled
    queries: tuple[R.RegistrationQuery, ...]

    def matches(self, reg: Doc) -> bool:
        """Whether a stored registration is one this subscription is about."""
        if self.sub.scope is not None and not matches_scope(self.sub.scope, reg):
            return False
        return any(R.matches(reg, q) for q in self.queries)

    def relevant(self, reg: Doc) -> Doc:
        """The registration with only the RegistrationInfo items this subscription selects
        (all of them when none does, as for a registration that no longer matches)."""
        infos = [
            info
            for info in reg.get("information", ())
            if any(R.info_matches(info, q) for q in self.queries)
        ]
        return {**reg, "information": infos} if infos else reg


def registration_queries(sub: Compiled, csf: Any) -> tuple[R.RegistrationQuery, ...]:
    """The discovery queries a compiled csourceSubscription stands for (csf: its parsed csf)."""
    base = R.RegistrationQuery(attrs=sub.watched, q=sub.q, csf=csf, geo=sub.geo)
    base = _with_temporal(base, sub.doc.get("temporalQ"))
    if not sub.selectors:
        return (base,)
    return tuple(
        replace(
            base,
            ids=(sel.id,) if sel.id is not None else None,
            id_pattern=sel.pattern.pattern if sel.pattern is not None else None,
            types=sel.types,
        )
        for sel in sub.selectors
    )


def _with_temporal(query: R.RegistrationQuery, tq: Doc | None) -> R.RegistrationQuery:
    """A query with a subscription's temporalQ (already validated when it was stored)."""
    if not tq:
        return query
    end = tq.get("endTimeAt")
    default = R.TIMEPROPERTIES["observedAt"]  # stored before timeproperty was checked
    return replace(
        query,
        timeproperty=R.TIMEPROPERTIES.get(tq.get("timeproperty", "observedAt"), default),
        timerel=tq["timerel"],
        time_at=norm_datetime(tq["timeAt"]),
        end_time_at=norm_datetime(end) if isinstance(end, str) else None,
    )


def notification(
    sub: Compiled, trigger: str, regs: list[Doc], tenant: str
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one ContextSourceNotification (clause 5.3.2): the registrations
    in the subscription's @context, with the headers its endpoint asks for."""
    sys_attrs = bool(sub.notification.get("sysAttrs"))
    data = [R.render_registration(reg, sub.tm, sys_attrs=sys_attrs) for reg in regs]
    return envelope(sub, NOTIFICATION, data, trigger, tenant)


class CsourceNotifier:
    """The csourceSubscriptions of one hub: registry, matching, delivery and status."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier  # the entity notifier: store, @contexts, senders, policy
        self.store = notifier.store
        self.subs: dict[str, dict[str, CsourceSub]] = {}
        self.dispatcher = Dispatcher(
            self._deliver,
            notifier.store.outbox_done,
            notifier.dispatcher.policy,
            backlog_of(notifier.store, "csource"),
            purge=purge_of(notifier.store, "csource"),
            cut=cut_of(notifier.store),
        )
        self._unresolved: list[tuple[str, str]] = []
        self.resolved = asyncio.Event()  # set once start-up @contexts are fetched (or failed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        # throttled subscriptions' timers that release their held notifications
        self._releases: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._status_task: asyncio.Task[None] | None = None
        self.statuses = status.StatusBook(self.store, KIND)

    # -- the registry ------------------------------------------------------------------------
    def load(self) -> None:
        """Compile every stored csourceSubscription (those whose @context is not at hand wait)."""
        for tenant, doc in self.store.resource_every_tenant(KIND):
            self.notifier.names(KIND, tenant, doc["id"], doc)
            if self._install(tenant, doc) is None:
                self._unresolved.append((tenant, doc["id"]))

    def _install(self, tenant: str, doc: Doc) -> CsourceSub | None:
        """Compile and register one csourceSubscription; None when its @context is not loaded."""
        contexts = self.notifier.contexts
        try:
            sub = compile_subscription(tenant, doc, contexts.compile_kept, self.notifier.link)
            csf = S.parsed_q(doc, contexts.compile_kept(S.query_context(doc)), "csf")
        except NgsiLdError:
            return None
        old = self.get(tenant, sub.id)
        sub.carry_from(old.sub if old is not None else None)
        cs = CsourceSub(sub, registration_queries(sub, csf))
        self.subs.setdefault(tenant, {})[sub.id] = cs
        self._schedule(cs)
        return cs

    def remove(self, tenant: str, sid: str) -> None:
        """Forget a deleted csourceSubscription (its queued notifications are dropped: they
        carry its incarnation, which one made again under its id does not have)."""
        gone = self.subs.get(tenant, {}).pop(sid, None)
        inc = gone.sub.inc if gone is not None else None  # None: not compiled, any
        self.dispatcher.discard(tenant, sid, last_seq(self.store), inc)
        self.statuses.forget(tenant, sid)
        self.notifier.names(KIND, tenant, sid, None)
        for tasks in (self._tasks, self._releases):
            task = tasks.pop((tenant, sid), None)
            if task is not None:
                task.cancel()

    async def refresh(self, tenant: str, sid: str, *, initial: bool = True) -> None:
        """Take a created or updated csourceSubscription as stored (or its deletion) into
        account; an active one is sent every registration it matches now."""
        self.notifier.start()
        doc = self.store.resource_get(KIND, tenant, sid)
        task = self._tasks.pop((tenant, sid), None)
        if task is not None:
            task.cancel()
        if doc is None:
            self.remove(tenant, sid)
            return
        self.notifier.names(KIND, tenant, sid, doc)
        await self.notifier.contexts.prefetch_each(subscription_contexts(doc))
        cs = self._install(tenant, doc)
        if cs is None:
            log.warning("csourceSubscription %s waits for its @context", sid)
            return
        if not cs.sub.paused:  # what it owed from before a pause goes first
            self.dispatcher.release(tenant, sid, cs.sub.endpoint)
        if initial:
            await self._notify_matching(cs)

    def get(self, tenant: str, sid: str) -> CsourceSub | None:
        """A compiled csourceSubscription."""
        return self.subs.get(tenant, {}).get(sid)

    def status(self, tenant: str, doc: Doc) -> Doc:
        """A stored csourceSubscription with its live delivery status (for the API)."""
        cs = self.get(tenant, doc.get("id", ""))
        return status.shown(doc, cs.sub if cs is not None else None)

    # -- registration changes ------------------------------------------------------------------
    def registration_changed(self, tenant: str, before: Doc | None, after: Doc | None) -> None:
        """Stage in the outbox what one registration write means to each change-driven
        csourceSubscription of its tenant (before/after: the stored registration, None when
        absent); called inside the store group that writes the registration."""
        subs = self.subs.get(tenant)
        if not subs:
            return
        wall = time.time()
        items: list[OutboxItem] = []
        for cs in list(subs.values()):
            sub = cs.sub
            if sub.periodic is not None or not sub.live(wall):
                continue
            try:
                was = before is not None and cs.matches(before)
                now = after is not None and cs.matches(after)
            except Exception:  # the registration is stored: its write must not fail now
                log.exception("csourceSubscription %s could not match a registration", sub.id)
                continue
            if not (was or now):
                continue
            trigger = UPDATED if was and now else NEWLY if now else GONE
            reg = after if after is not None else before
            assert reg is not None
            # throttled when sent (_deliver), not dropped here: each notification is about
            # one registration, and one dropped was never learnt of by the receiver
            items.append(_item(sub, trigger, [cs.relevant(reg)]))
        self.store.outbox_stage(items)

    async def _notify_matching(self, cs: CsourceSub) -> None:
        """Send an active subscription every registration it matches now, if there is one,
        1,000 to a notification; the tenant's registrations are scanned on a thread, under
        the query deadline."""
        if not cs.sub.live():
            return
        try:
            docs, _ = await asyncio.to_thread(
                self.store.resource_scan, REGISTRATIONS, cs.sub.tenant, cs.matches, _ALL, 0
            )
            regs = [cs.relevant(doc) for doc in docs]
        except Exception:  # the subscription is stored: its write must not fail now
            log.exception("csourceSubscription %s could not match the registrations", cs.sub.id)
            return
        if regs:
            self.dispatcher.submit(
                [
                    _item(cs.sub, NEWLY, regs[i : i + PER_NOTIFICATION])
                    for i in range(0, len(regs), PER_NOTIFICATION)
                ]
            )

    # -- running -----------------------------------------------------------------------------
    def start(self) -> None:
        """Begin on the running loop: clocks, status writes, pending @contexts (idempotent)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        for tenant_subs in self.subs.values():
            for cs in tenant_subs.values():
                self._schedule(cs)
        self._status_task = self._loop.create_task(self.statuses.run())
        if self._unresolved:
            self._loop.create_task(self._resolve())
        else:
            self.resolved.set()

    def waiting(self) -> set[tuple[str, str]]:
        """(tenant, id) of the subscriptions still waiting for their @context."""
        return set(self._unresolved)

    async def _resolve(self) -> None:
        """Fetch the @contexts that subscriptions loaded at start-up still need."""
        waiting, self._unresolved = self._unresolved, []
        try:
            for tenant, sid in waiting:
                await self.refresh(tenant, sid, initial=False)
        finally:
            self.resolved.set()

    async def close(self) -> None:
        """Stop delivering and write the last delivery status (the senders are the notifier's)."""
        for task in [*self._tasks.values(), *self._releases.values(), self._status_task]:
            if task is not None:
                task.cancel()
        self._tasks.clear()
        self._releases.clear()
        await self.dispatcher.close()
        self.statuses.flush()

    # -- delivery ------------------------------------------------------------------------------
    async def _deliver(self, item: OutboxItem, attempt: int) -> Outcome | Literal["hold"] | None:
        """Send one notification (True/False); None when its subscription no longer wants it
        or it was made for an earlier one of its id; HOLD while it is paused (as for entity
        subscriptions: sent when it resumes)."""
        cs = self.get(item.tenant, item.sub_id)
        if cs is None or not cs.sub.owns(item):
            return None
        if cs.sub.paused and not cs.sub.expired():
            return HOLD
        if not cs.sub.live():
            return None
        clock = time.monotonic()
        if cs.sub.cooling(clock):  # endpoint.cooldown, as for entity subscriptions
            self.notifier.cooldown_skipped += 1
            if attempt:
                self.dispatcher.counters.given_up += 1
            return None
        if not attempt and not cs.sub.due(clock):  # throttling: held, sent once it has passed
            self._release_after(cs, clock)
            return HOLD
        if not attempt:
            cs.sub.last_sent = clock
        event = orjson.loads(item.payload)
        body, headers = notification(cs.sub, event["trigger"], event["data"], item.tenant)
        ok = await self.notifier.send(cs.sub, cs.sub.endpoint, body, headers)
        now = self.get(item.tenant, item.sub_id)  # deleted, or made again, while it was sent:
        if now is not None and now.sub.owns(item):  # the new one's status is not this one's
            self.statuses.record(now.sub, bool(ok))
            if not ok:
                now.sub.failed_at = time.monotonic()
        return ok

    def _release_after(self, cs: CsourceSub, clock: float) -> None:
        """Queue a throttled subscription's held notifications again when its throttling
        period has passed (one timer per subscription; each release sends the first and
        holds the rest for the next period)."""
        key = (cs.sub.tenant, cs.sub.id)
        if key in self._releases or self._loop is None or cs.sub.last_sent is None:
            return
        wait = cs.sub.last_sent + float(cs.sub.doc.get("throttling") or 0) - clock
        self._releases[key] = self._loop.create_task(self._release(key, max(wait, 0.0)))

    async def _release(self, key: tuple[str, str], wait: float) -> None:
        """Sleep out a throttling period, then release what it held."""
        await asyncio.sleep(wait)
        self._releases.pop(key, None)
        cs = self.get(*key)
        if cs is not None and not cs.sub.paused:
            self.dispatcher.release(*key, cs.sub.endpoint)

    # -- timeInterval subscriptions --------------------------------------------------------------
    def _schedule(self, cs: CsourceSub) -> None:
        """Start the clock of a periodic subscription (once the loop runs)."""
        interval = cs.sub.periodic
        key = (cs.sub.tenant, cs.sub.id)
        if interval is None or self._loop is None or key in self._tasks:
            return
        # at least S.MIN_TIME_INTERVAL (Compiled.periodic): each tick scans the tenant's
        # registrations (0.01 s over 20,000 held every request 0.3-0.5 s)
        self._tasks[key] = self._loop.create_task(self._every(key, interval))

    async def _every(self, key: tuple[str, str], interval: float) -> None:
        """Send the matching registrations every interval seconds, changed or not."""
        while True:
            await asyncio.sleep(interval)
            cs = self.get(*key)
            if cs is None:
                return
            await self._notify_matching(cs)


_ALL = 1 << 62  # a scan's limit that keeps every match


def _item(sub: Compiled, trigger: str, regs: list[Doc]) -> OutboxItem:
    """A queue item: the trigger and the registrations in stored form (rendered in the
    subscription's @context when sent)."""
    payload = dumps_kept({"trigger": trigger, "data": regs})
    return OutboxItem(sub.tenant, sub.id, sub.endpoint, payload, kind="csource", inc=sub.inc)


__all__ = [
    "KIND",
    "CsourceNotifier",
    "CsourceSub",
    "notification",
    "registration_queries",
]
