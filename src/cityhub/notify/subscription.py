"""A stored subscription compiled once for matching: selectors, q, geoQ and scopeQ parsed, its
@context resolved, so a change is checked against it without parsing anything again."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cityhub.ngsild import subscriptions as S
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.evaluate import matches_geo, matches_q, matches_scope, matches_types
from cityhub.ngsild.query.geo import GeoQuery
from cityhub.ngsild.query.pattern import Pattern
from cityhub.ngsild.query.qlang import compile_regex
from cityhub.ngsild.query.scope import parse_scope
from cityhub.ngsild.query.typeexpr import parse_types
from cityhub.ngsild.timeutil import parse_ts
from cityhub.store.base import OutboxItem

Doc = dict[str, Any]


@dataclass(frozen=True)
class Selector:
    """One EntitySelector: an id, an id pattern and a type selection (IRIs)."""

    id: str | None
    pattern: Pattern | None
    types: ast.TypeNode
    # the one type name when the selection is just that (most are): tested without the walk
    name: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if isinstance(self.types, ast.TypeName):
            object.__setattr__(self, "name", self.types.name)

    def matches(self, doc: Doc) -> bool:
        """Whether an entity is selected."""
        if self.id is not None and doc["id"] != self.id:
            return False
        if self.pattern is not None and not self.pattern.fullmatch(doc["id"]):
            return False
        name, types = self.name, doc.get("type")
        if name is not None and isinstance(types, list):
            return name in types
        return matches_types(self.types, doc)


@dataclass(frozen=True)
class Selection:
    """A subscription's EntitySelectors arranged for testing a change: those naming an id
    found by it, those of one type name and nothing else as a set of names, only the rest (an
    idPattern, a type selection with operators) tested one by one. Testing each of 1,000
    selectors of one subscription cost every change of their types about 0.3 ms."""

    by_id: dict[str, tuple[Selector, ...]]
    names: frozenset[str]
    named: tuple[Selector, ...]  # those names' selectors, for an entity whose type is no list
    scanned: tuple[Selector, ...]

    @classmethod
    def of(cls, selectors: list[Selector]) -> Selection:
        """The arrangement of a subscription's selectors (in their order within each part)."""
        by_id: dict[str, list[Selector]] = {}
        named: list[Selector] = []
        scanned: list[Selector] = []
        for sel in selectors:
            if sel.id is not None:
                by_id.setdefault(sel.id, []).append(sel)
            elif sel.pattern is None and sel.name is not None:
                named.append(sel)
            else:
                scanned.append(sel)
        return cls(
            {k: tuple(v) for k, v in by_id.items()},
            frozenset(sel.name for sel in named if sel.name is not None),
            tuple(named),
            tuple(scanned),
        )

    def selects(self, doc: Doc) -> bool:
        """Whether one of the selectors selects the entity (as Selector.matches has it)."""
        for sel in self.by_id.get(doc["id"], ()):
            if sel.matches(doc):
                return True
        if self.names:
            types = doc.get("type")
            if isinstance(types, list):
                if not self.names.isdisjoint(types):
                    return True
            elif any(sel.matches(doc) for sel in self.named):
                return True
        return any(sel.matches(doc) for sel in self.scanned)


@dataclass
class Compiled:
    """What matching and rendering need of one subscription."""

    tenant: str
    doc: Doc
    tm: TermMap  # renders notifications (jsonldContext, else the creating request's @context)
    context: Any  # the @context notifications name (Link header or in the body)
    link: str  # the Link header naming it in plain JSON notifications
    selectors: list[Selector]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    q: ast.QNode | None
    geo: GeoQuery | None
    scope: ast.ScopeNode | None
    # datasetId: the attribute instances it is about ("@none": the default one), or None
    datasets: frozenset[str] | None = None
    paused: bool = False  # isActive false
    expires: float | None = None  # expiresAt, epoch seconds
    status: dict[str, Any] = field(default_factory=dict)  # delivery status (notification.*)
    # when the last notification was queued (throttling; at start-up, its stored time)
    last_sent: float | None = None
    failed_at: float | None = None  # when a notification last failed (monotonic; cooldown)
    cooldown: float | None = None  # endpoint.cooldown in seconds, read once
    show_changes: bool = False  # notification.showChanges, read once
    # its incarnation (stored _inc), which the items made for it carry: one made again under
    # its id after a deletion is not sent what was queued for this one (0: stored before
    # incarnations were)
    inc: int = 0
    selection: Selection = field(init=False)  # the selectors arranged for testing changes

    def __post_init__(self) -> None:
        self.selection = Selection.of(self.selectors)

    @property
    def id(self) -> str:
        """The subscription id."""
        return str(self.doc["id"])

    def owns(self, item: OutboxItem) -> bool:
        """Whether an item was made for this incarnation of the subscription."""
        return item.inc == self.inc

    def carry_from(self, old: Compiled | None) -> None:
        """Keep the delivery status and throttling clock of the version this one replaces."""
        if old is not None:
            self.status = old.status
            if old.last_sent is not None:  # else: none since start-up, the stored one stands
                self.last_sent = old.last_sent
            self.failed_at = old.failed_at

    def due(self, clock: float) -> bool:
        """Whether throttling lets a notification go at clock (monotonic); the caller stamps
        last_sent through notify/throttle.Stamps, undone if its write rolls back."""
        throttle = self.doc.get("throttling")
        # the first one always goes: against 0.0, a throttling longer than the machine's
        # uptime (the monotonic clock's start) held back every notification
        return not (
            throttle and self.last_sent is not None and clock - self.last_sent < float(throttle)
        )

    def cooling(self, clock: float) -> bool:
        """Whether endpoint.cooldown (ms) holds notifications back at clock (monotonic): it
        has not passed since the last failure, so nothing is sent (5.2.15)."""
        failed, cooldown = self.failed_at, self.cooldown
        return failed is not None and cooldown is not None and clock - failed < cooldown

    @property
    def notification(self) -> dict[str, Any]:
        """The stored NotificationParams."""
        params: dict[str, Any] = self.doc["notification"]
        return params

    @property
    def endpoint(self) -> str:
        """The endpoint URI: notifications to one URI share one delivery queue."""
        return str(self.notification["endpoint"]["uri"])

    @property
    def periodic(self) -> float | None:
        """timeInterval in seconds, when the subscription notifies on a clock, not on change
        (one stored before the floor runs at the floor)."""
        value = self.doc.get("timeInterval")
        return max(float(value), S.MIN_TIME_INTERVAL) if value else None

    def expired(self) -> bool:
        """Past its expiresAt."""
        return self.expires is not None and time.time() >= self.expires

    def live(self, now: float | None = None) -> bool:
        """Active: not paused, not expired (now: epoch seconds, default the current time)."""
        if self.paused:
            return False
        return self.expires is None or (time.time() if now is None else now) < self.expires

    def selects(self, doc: Doc) -> bool:
        """Whether an entity is one this subscription is about (entities, q, geoQ, scopeQ)."""
        selectors = self.selectors
        if len(selectors) == 1:  # the usual case, without a generator
            if not selectors[0].matches(doc):
                return False
        elif selectors and not self.selection.selects(doc):
            return False
        if self.q is not None and not matches_q(self.q, doc):
            return False
        if self.geo is not None and not matches_geo(self.geo, doc):
            return False
        return self.scope is None or matches_scope(self.scope, doc)


def _datasets(value: Any) -> frozenset[str] | None:
    """A stored datasetId member (one URI, "@none", or an array of them) as a set."""
    if not value:
        return None
    return frozenset(value if isinstance(value, list) else [value])


def _last_sent(doc: Doc) -> float | None:
    """The throttling clock a stored subscription starts with: its last notification as it
    was stored (lastNotification), on the monotonic clock. It lived in memory only, so every
    restart opened a new window: with throttling 3600, a notification more per restart."""
    if not doc.get("throttling"):
        return None
    last = (doc.get("_notif") or {}).get("lastNotification")
    if not isinstance(last, str):
        return None
    try:
        ago = time.time() - parse_ts(last).timestamp()
    except NgsiLdError:  # not written by the hub: no window to keep
        return None
    return time.monotonic() - max(ago, 0.0)


def subscription_contexts(doc: Doc) -> tuple[Any, ...]:
    """Every @context a stored (csource) subscription compiles with: notification, request
    and q."""
    return doc.get("jsonldContext"), doc.get("_ctx"), doc.get("_qctx")


def compile_subscription(tenant: str, doc: Doc, tm_of: Any, link_of: Any) -> Compiled:
    """Compile a stored subscription; tm_of(spec) gives the term map of a @context and
    link_of(spec, base) the Link header that names it (base: the hub's URL the subscription
    was made through)."""
    context = doc.get("jsonldContext") or doc.get("_ctx")
    selectors = [
        Selector(
            id=sel.get("id"),
            pattern=(
                compile_regex(sel["idPattern"], bounded=False) if sel.get("idPattern") else None
            ),
            types=parse_types(sel["type"]),
        )
        for sel in doc.get("entities") or []
    ]
    watched = doc.get("watchedAttributes")
    q = None
    if doc.get("q"):  # written as in a query string, so it may be percent-encoded
        q = ast.expand_q(S.stored_q(doc["q"]), tm_of(S.query_context(doc)).expand)
    scope = parse_scope(doc["scopeQ"]) if doc.get("scopeQ") else None
    notification = doc["notification"]
    cooldown = notification["endpoint"].get("cooldown")
    return Compiled(
        tenant=tenant,
        doc=doc,
        tm=tm_of(context),
        context=context,
        link=link_of(context, doc.get(S.BASE_URL)),
        selectors=selectors,
        watched=frozenset(watched) if watched else None,
        triggers=frozenset(doc.get("notificationTrigger") or S.DEFAULT_TRIGGERS),
        q=q,
        geo=S.parsed_geo(doc),
        scope=scope,
        datasets=_datasets(doc.get("datasetId")),
        paused=doc.get("isActive") is False,
        expires=parse_ts(doc["expiresAt"]).timestamp() if doc.get("expiresAt") else None,
        status=dict(doc.get("_notif") or {}),
        last_sent=_last_sent(doc),
        cooldown=cooldown / 1000 if cooldown else None,
        show_changes=bool(notification.get("showChanges")),
        inc=int(doc.get(S.INCARNATION) or 0),
    )
