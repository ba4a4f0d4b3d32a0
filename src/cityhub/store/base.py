"""The storage contract every backend implements; SQL never leaves a backend."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.timeutil import END_OF_TIME, add_months

Doc = dict[str, Any]
# (id, types, instances per attribute, scope or None) of one entity a bulk creation records
HistoryEntry = tuple[str, list[str], dict[str, list[Doc]], list[str] | None]
_MEAN_MONTH = 365.2425 / 12 * 86400  # seconds: a first guess of a month's length
# The time an instance without observedAt was recorded at, when a PATCH has changed its
# modifiedAt since: its place on the observedAt axis (decision 024). A temporal read sets it
# on such an instance; it is never stored in the instance nor shown ('@' names no member).
RECORDED_AT = "@recordedAt"


class StoreError(Exception):
    """Base of the typed errors a store raises; the service maps them to NGSI-LD errors."""


class StoreFull(StoreError):
    """The database cannot grow: its disk is full (or a size limit was reached). Nothing of
    the failed write was kept."""

    def __init__(self, message: str, limit: str = "") -> None:
        super().__init__(message)
        self.limit = limit  # the size limit or quota that refused it, '' for a full disk


class StoreBusy(StoreError):
    """Another process (`cityhub import --db`, a restore) holds the database's write lock;
    nothing of the write was stored, and it may be tried again shortly."""


class StoreLost(StoreError):
    """The database file was deleted or replaced while the store had it open: what it would
    write goes into a file no one can open again, so it writes and reads nothing more."""

    def __init__(self) -> None:
        super().__init__(
            "the hub's database file was deleted or replaced while the hub ran: it stores and "
            "reads nothing until its operator restarts it (see /health); nothing of this "
            "request was stored"
        )


class QueryTimeout(StoreError):
    """A read ran past the store's time limit and was stopped; it changed nothing. The limit
    counts from when the read was queued: `waited` seconds of it went waiting for a reader
    thread, and when that was all of them the read never started (`never_started`)."""

    def __init__(self, seconds: float, waited: float = 0.0) -> None:
        self.seconds = seconds
        self.waited = waited
        self.never_started = waited >= seconds
        if self.never_started:
            said = f"the query waited {seconds:g} s for a reader thread and was not started"
        else:
            said = f"the query did not finish within {seconds:g} s"
            if waited >= 0.05:
                said += f" ({waited:.1f} s of them waiting for a reader thread)"
        super().__init__(said)


class ClientGone(StoreError):
    """The read's client left before the answer: the read was not started, or was stopped,
    and changed nothing."""


@dataclass(frozen=True)
class Erasure:
    """A temporal DELETE whose history rows are still being removed, a step at a time
    (Store.erase_history): the backend's job and where its walk stands."""

    job: int
    tpk: int  # the temporal entity's row
    nid: int | None  # the attribute's name id; None: the whole temporal entity
    every_dataset: bool
    dataset_id: str | None  # the one datasetId (None: the default instances) unless every
    upto: int  # rows written after it began (a higher row id, or a later time) stay
    before: float
    cursor: tuple[float, int] | None = None  # (t_observed, row id) last looked at

    def at(self, cursor: tuple[float, int]) -> Erasure:
        """The same job, gone on to cursor."""
        return replace(self, cursor=cursor)


class EntityNotFound(StoreError):
    """No entity with that id in that tenant."""


class EntityExists(StoreError):
    """An entity with that id already exists in that tenant."""


class TenantNotFound(StoreError):
    """The tenant has never stored anything."""


@dataclass(frozen=True)
class EntitySelector:
    """One EntitySelector of a Query body: an entity matches when it meets all three."""

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    types: Any = None  # ngsild.query.ast type node


@dataclass(frozen=True)
class OrderKey:
    """One orderBy key (clause 4.23): an entity member, or an attribute path and the trailing
    path into its value; names are IRIs."""

    # "id", "type", "scope", "createdAt" or "modifiedAt"; or (attribute IRI, *sub-attribute
    # IRIs or createdAt/modifiedAt/observedAt)
    path: tuple[str, ...]
    desc: bool = False
    keys: tuple[str, ...] = ()  # the trailing path, address[city]: ("city",)


@dataclass(frozen=True)
class EntityQuery:
    """A backend-neutral entity selection; names and types are already IRIs."""

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    types: Any = None  # ngsild.query.ast type node
    # Several EntitySelectors that cannot be folded into ids/id_pattern/types: an entity
    # matches when it meets any of them (and every other condition).
    selectors: tuple[EntitySelector, ...] | None = None
    q: Any = None  # ngsild.query.ast q node
    scope: Any = None  # ngsild.query.ast scope node
    geo: Any = None  # ngsild.query.geo.GeoQuery with an expanded geoproperty
    attrs: tuple[str, ...] | None = None  # entity must have at least one of these
    # an omit of id and type: the entity must have a scope or an attribute not among these
    beyond: tuple[str, ...] | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False
    order: tuple[OrderKey, ...] = ()  # orderBy


@dataclass(frozen=True)
class TemporalQuery:
    """Which attribute instances a temporal request wants."""

    entities: EntityQuery = field(default_factory=EntityQuery)
    attrs: tuple[str, ...] | None = None
    timeproperty: str = "observedAt"
    timerel: str | None = None  # before | after | between
    time_at: float | None = None  # epoch seconds
    end_time_at: float | None = None
    last_n: int | None = None  # the newest N instances of each attribute
    first_n: int | None = None  # the oldest N instances of each attribute
    # with last_n/first_n, a page: instances at the same time as the Nth come too, so a
    # page never ends partway through one instant (the next page starts at another)
    whole_instants: bool = False
    # lastN over pages (decision 058): last_n is then one page's worth of the request's lastN,
    # `newest`, which still counts each series' newest instances in the whole window, and a
    # page after the first holds those older than `page_before` (its previous page's cut)
    newest: int | None = None
    page_before: float | None = None
    dataset_ids: tuple[str, ...] | None = None  # "@none" stands for the default instance
    with_instances: bool = False  # only entities with at least one selected instance
    # pick/omit that also keep an entity member (id, type, scope): the attributes read, which
    # select no entity, unlike `attrs` (None: every one), and those left unread
    picked: tuple[str, ...] | None = None
    omitted: tuple[str, ...] = ()


@dataclass(frozen=True)
class Aggregation:
    """aggregatedValues: which methods, over which period (none given: the whole range).

    A period is `months` calendar months plus `seconds`. Period i starts at the query's start
    moved by i * months (the same day and time of the month, the 31st clamped to a shorter
    month's last day) plus i * seconds, so monthly periods follow the calendar without drifting.
    """

    methods: tuple[str, ...]
    seconds: float = 0.0
    months: int = 0
    # the first `limit` non-empty periods of each series are enough (0: all of them): the
    # answer keeps a page of periods, and building the rest cost seconds
    limit: int = 0
    # The store answers, per attribute, {method: [[value, startAt, endAt], ...]}.

    @property
    def whole(self) -> bool:
        """One period over the whole range (no duration, or a zero one)."""
        return not self.months and not self.seconds

    def edge(self, start: float, i: int) -> float:
        """Where period i begins (epoch seconds)."""
        return period_edge(start, i, self.months, self.seconds)

    def index(self, start: float, t: float) -> int:
        """The period that time t falls in."""
        return period_index(start, t, self.months, self.seconds)


def period_edge(start: float, i: int, months: int, seconds: float) -> float:
    """Where period i of (months, seconds) periods from start begins (see Aggregation)."""
    return min(add_months(start, i * months) + i * seconds, END_OF_TIME)


def period_index(start: float, t: float, months: int, seconds: float) -> int:
    """The period i with period_edge(i) <= t < period_edge(i + 1); the last DateTime, which
    rounds to END_OF_TIME, in the last period that starts before it."""
    if not months:
        i = math.floor((t - start) / seconds)
    else:
        i = math.floor((t - start) / (months * _MEAN_MONTH + seconds))
        while period_edge(start, i, months, seconds) > t:
            i -= 1
        while (nxt := period_edge(start, i + 1, months, seconds)) <= t and nxt < END_OF_TIME:
            i += 1
    if t >= END_OF_TIME:
        while i > 0 and period_edge(start, i, months, seconds) >= END_OF_TIME:
            i -= 1
    return i


@dataclass
class Change:
    """One entity's change inside a write: its stored JSON before and after (None: absent),
    and every type it had in either, when the writer knew them without parsing (else None)."""

    eid: str
    before: str | None
    after: str | None
    types: frozenset[str] | None = None


# The payload of an outbox row an erasure emptied (decision 095): nothing is sent for it.
WITHDRAWN = b"withdrawn"


@dataclass
class OutboxItem:
    """A notification to deliver: kept in the store until its endpoint has taken it."""

    tenant: str
    sub_id: str
    endpoint: str
    payload: bytes
    seq: int = 0  # assigned by the store when the item is written
    kind: str = "entity"  # which notifier delivers it: "entity" or "csource" (registrations)
    # What items of one change share (notify/events.py: the change's record), stored once for
    # all the items that hold this same object; payload is then the item's own part.
    body: bytes | None = None
    # The incarnation of the subscription it was made for (its stored ``_inc``): a
    # subscription deleted and made again under its id must not send the old one's items.
    inc: int = 0
    # Set on the loop when an erasure or retention emptied this item's row while it waits in
    # memory: passed by unsent (decision 095). On the object, not by seq: seqs are reused.
    withdrawn: bool = field(default=False, compare=False)


@dataclass
class LeftOnDisk:
    """Where a subscription's outbox rows that start-up left on disk begin."""

    tenant: str
    sub_id: str
    endpoint: str  # the first left row's: the queue that reads them back
    seq: int


@dataclass
class OutboxHeads:
    """What start-up reads of the outbox: the items to queue, and what stays on disk."""

    items: list[OutboxItem] = field(default_factory=list)
    rest: list[LeftOnDisk] = field(default_factory=list)


class WriteGuard(Protocol):
    """Refuses an entity write that must not be stored here (an Attribute a context source
    holds exclusively, ngsild/registration_claims.py), before anything of it is written."""

    def check_write(
        self, tenant: str, doc: Doc, before: str | None = None, changed: set[str] | None = None
    ) -> None: ...


class ChangeSink(Protocol):
    """Turns a write's changes into outbox items inside the same transaction (notify/); the
    items come back through committed after COMMIT, or rolled_back when they were dropped.
    An erasure asks it which stored items carry the erased entity's values (erases) and, after
    COMMIT, tells it the seqs of those it deleted (withdrawn)."""

    def wants(self, tenant: str) -> bool: ...
    def outbox_items(self, tenant: str, changes: list[Change]) -> list[OutboxItem]: ...
    def committed(self, items: list[OutboxItem]) -> None: ...
    def rolled_back(self, items: list[OutboxItem]) -> None: ...
    def erases(self, eid: str, payload: bytes, body: bytes | None) -> bool: ...
    def withdrawn(self, seqs: list[int]) -> None: ...


class WriteTx(Protocol):
    """One write transaction on the single writer; commits on clean exit."""

    def get(self, eid: str) -> Doc | None: ...
    def insert(self, doc: Doc) -> None: ...
    def insert_many(self, docs: list[Doc]) -> dict[int, NgsiLdError]: ...
    def existing_ids(self, ids: list[str]) -> set[str]: ...
    def matching(self, query: EntityQuery, limit: int | None = None) -> set[str]: ...
    def add_history_bulk(self, entries: list[HistoryEntry]) -> None: ...
    def update(self, doc: Doc, changed: set[str] | None = None) -> None: ...
    def delete(self, eid: str) -> Doc | None: ...
    def add_history(
        self, eid: str, types: list[str], attr: str, instances: list[Doc], scope: Any = ...
    ) -> None: ...
    def add_history_many(
        self, eid: str, types: list[str], attrs: dict[str, list[Doc]], scope: Any = ...
    ) -> None: ...
    def history_in_one_round(self) -> AbstractContextManager[None]: ...
    def record_deletion(self, eid: str, types: list[str], at: str) -> None: ...
    def delete_history(
        self, eid: str, attr: str | None = None, dataset_id: str | None = ...
    ) -> tuple[bool, Erasure | None]: ...
    def update_instance(self, eid: str, attr: str, instance_id: str, instance: Doc) -> bool: ...
    def delete_instance(self, eid: str, attr: str, instance_id: str) -> bool: ...
    def instance(self, eid: str, attr: str, instance_id: str) -> Doc | None: ...
    def history_kind(self, eid: str, attr: str) -> str | None: ...
    def temporal_exists(self, eid: str) -> bool: ...
    def temporal_types(self, eid: str) -> list[str] | None: ...


class Store(Protocol):
    """What the NGSI-LD service needs from storage."""

    driver_error: type[Exception]  # the driver's own error class, for the API's last handler

    def damaged(self, exc: BaseException) -> bool: ...

    def write(self, tenant: str) -> AbstractContextManager[WriteTx]: ...
    def get(self, tenant: str, eid: str) -> Doc | None: ...
    def get_json(self, tenant: str, eid: str) -> str | None: ...
    def storage(self) -> dict[str, int]: ...
    def write_refused(self) -> float | None: ...
    def write_refused_cause(self) -> str: ...
    def lost(self) -> str | None: ...
    def checkpoint_failed(self) -> tuple[float, str] | None: ...
    def checkpoint_starved(self) -> tuple[float, int] | None: ...
    def prune_history(
        self, before: float, after: int = 0, limit: int = 2000
    ) -> tuple[int, int | None]: ...
    def erase_history(self, erasure: Erasure, limit: int = 2000) -> tuple[int, Erasure | None]: ...
    def erasures(self) -> list[Erasure]: ...
    def query(self, tenant: str, query: EntityQuery) -> tuple[list[Doc], int | None]: ...
    def entity_types(
        self, tenant: str, *, names: bool = True, only: str | None = None
    ) -> list[tuple[str, list[str], int]]: ...
    def attribute_names(self, tenant: str) -> list[str]: ...
    def attribute_info(self, tenant: str, name: str) -> tuple[list[str], list[str], int] | None: ...
    def attribute_stats(self, tenant: str) -> list[tuple[str, list[str], list[str], int]]: ...
    def type_info(
        self, tenant: str, typ: str
    ) -> tuple[int, list[tuple[str, list[str]]]] | None: ...
    def read_snapshot(self) -> AbstractContextManager[None]: ...
    def temporal(
        self, tenant: str, query: TemporalQuery
    ) -> tuple[list[tuple[Doc, dict[str, list[Doc]]]], int | None]: ...
    def aggregate(
        self, tenant: str, query: TemporalQuery, aggr: Aggregation
    ) -> tuple[list[tuple[Doc, dict[str, list[Doc]]]], int | None]: ...
    def has_history(self, tenant: str, eid: str) -> bool: ...
    def tenants(self) -> list[str]: ...
    def answers(self) -> None: ...
    def has_tenant(self, tenant: str) -> bool: ...
    def contexts(self) -> Iterator[tuple[str, Any, str, str]]: ...
    def context(self, url: str, kind: str) -> Any | None: ...
    def put_context(
        self, url: str, document: Any, kind: str, created_at: str | None = None
    ) -> None: ...
    def delete_context(self, url: str) -> bool: ...
    def context_usage(self) -> dict[str, tuple[int, str | None]]: ...
    def save_context_usage(self, rows: Iterable[tuple[str, int, str | None]]) -> None: ...
    def close(self) -> None: ...
