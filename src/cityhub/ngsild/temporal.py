"""Temporal use-cases: the evolution of attributes, with filters, formats, pagination of
instances (206 + Content-Range) and aggregation."""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from cityhub.ngsild import params as P
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import (
    CONTENT_KEY,
    ENTITY_KEYS,
    MAX_ATTRS,
    META_KEYS,
    NULL_URI,
    Budget,
    TooLarge,
    check_body_id,
    check_name,
    check_uri,
    expand_attribute,
    expand_entity,
    expand_instance,
    expand_name,
    expand_scope,
    expand_types,
    is_null_instance,
    naming,
    unaliased,
)
from cityhub.ngsild.errors import BadRequestData, InvalidRequest, ResourceNotFound, shown
from cityhub.ngsild.languages import pick_language
from cityhub.ngsild.merge import emptied, merge_instance, stamp
from cityhub.ngsild.render import RenderOptions, concise, key_value, render_instance
from cityhub.ngsild.timeutil import END_OF_TIME, epoch_iso, next_instant, now_iso, parse_ts
from cityhub.store.base import (
    RECORDED_AT,
    Aggregation,
    Doc,
    EntityQuery,
    Erasure,
    Store,
    TemporalQuery,
    WriteTx,
)

_CONTENT_MEMBERS = frozenset(CONTENT_KEY.values())
_INSTANCE_MEMBERS = _CONTENT_MEMBERS | {"type"}
AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
FORMATS = ("normalized", "concise", "temporalValues", "simplified", "keyValues", "aggregatedValues")
# Options a temporal request understands (format names, sysAttrs, count).
OPTIONS = frozenset(
    {
        "normalized",
        "concise",
        "temporalValues",
        "simplified",
        "keyValues",
        "aggregatedValues",
        "sysAttrs",
        "count",
    }
)
DEFAULT_INSTANCE_LIMIT = 1000
MAX_PERIODS = 10_000  # periods of one aggregated series an answer holds (then 206)
# Instances of one temporal write (POST /temporal/entities, .../attrs), sub-attributes
# counted: it is one transaction on the event loop, and 200,000 held every request for 8 s.
MAX_WRITE_INSTANCES = 10_000
_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = (7 * 86400, 86400, 3600, 60, 1)  # W, D, H, M, S: fixed lengths in UTC
# The time axis runs from year 1 to 9999: a longer period is no period (a run of digits
# parsed to inf, and its edges to NaN, so the attribute vanished from a 200).
_MAX_PERIOD_MONTHS = 10_000 * 12
_MAX_PERIOD_SECONDS = 10_000 * 366 * 86400.0
# temporalValues: the member that lists each attribute type's [content, time] pairs.
VALUES_KEY = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "VocabProperty": "vocabs",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
    "JsonProperty": "jsons",
}


@dataclass(frozen=True)
class TemporalResult:
    """Rendered temporal entities, the total when counted, and the instance range when cut."""

    entities: list[Doc]
    total: int | None = None
    content_range: str | None = None  # "date-time <start>-<end>/<size>" for a 206
    page: tuple[int, int] | None = None  # a query's (limit, offset) of entities, for its Links
    # a 206's next page of instances: its Link relation and the time window that replaces the
    # request's (decision 031)
    next_page: tuple[str, dict[str, str]] | None = None


def parse_duration(text: str) -> tuple[int, float]:
    """An ISO 8601 duration (P1M, P1D, PT1H, PT0S) as (calendar months, seconds): years and
    months follow the calendar, so they must be whole; weeks, days and times are exact."""
    m = _DURATION.match(text or "")
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise BadRequestData(f"aggrPeriodDuration is not an ISO 8601 duration: {shown(text)}")
    years, months, *rest = m.groups()
    calendar = [float(g) if g else 0.0 for g in (years, months)]
    seconds = sum(float(g) * u for g, u in zip(rest, _UNITS, strict=True) if g)
    if calendar[0] * 12 + calendar[1] > _MAX_PERIOD_MONTHS or seconds > _MAX_PERIOD_SECONDS:
        raise BadRequestData(
            f"aggrPeriodDuration {text[:40]!r}{'...' if len(text) > 40 else ''} is longer than "
            "the 10,000 years of the time axis (PT0S, or none, asks for one period over the "
            "whole span)"
        )
    if any(not v.is_integer() for v in calendar):
        raise BadRequestData(
            f"aggrPeriodDuration {shown(text)}: years and months must be whole numbers "
            "(give a fraction in weeks, days or hours)"
        )
    months = int(calendar[0]) * 12 + int(calendar[1])
    if not months and 0 < seconds < 1e-6:  # periods would start and end at one instant
        raise BadRequestData(
            f"aggrPeriodDuration {shown(text)} is shorter than a microsecond, the resolution of time "
            "in cityhub (PT0S asks for one period over the whole span)"
        )
    return months, seconds


def temporal_query(
    params: Mapping[str, str], tm: TermMap, *, one_entity: str | None = None, selectors: Any = None
) -> TemporalQuery:
    """timerel/timeAt/endTimeAt/timeproperty/lastN/datasetId plus the entity selection.

    A query (not a retrieval) needs type, attrs, q, geoQ or scopeQ (ids alone are not enough)
    and returns only entities with at least one instance in the selection.
    """
    if one_entity is not None:
        entities = EntityQuery(ids=(one_entity,), limit=1)
    else:
        entities = P.entity_query(params, tm, selectors=selectors)
    timerel = params.get("timerel")
    time_at = end_at = None
    if timerel is not None:
        if timerel not in ("before", "after", "between"):
            raise BadRequestData("timerel must be before, after or between")
        if "timeAt" not in params:
            raise BadRequestData("timerel needs timeAt")
        time_at = parse_ts(params["timeAt"], "timeAt").timestamp()
        # read whatever the timerel: ignored with after/before, but no DateTime is a mistake
        given_end = params.get("endTimeAt")
        end = None if given_end is None else parse_ts(given_end, "endTimeAt").timestamp()
        if timerel == "between":
            if end is None:
                raise BadRequestData("timerel=between needs endTimeAt")
            if end <= time_at:
                raise BadRequestData("endTimeAt must be after timeAt")
            end_at = end
    elif "timeAt" in params or "endTimeAt" in params:
        raise BadRequestData("timeAt needs timerel")
    prop = params.get("timeproperty", "observedAt")
    if prop not in TIME_PROPERTIES:
        raise BadRequestData(f"timeproperty must be one of {', '.join(TIME_PROPERTIES)}")
    last_n = P.integer(params, "lastN", 0, 1, 10**6) if "lastN" in params else None
    page_before = None
    if "pageBefore" in params:  # the next page of a lastN answer (decision 058)
        if last_n is None:
            raise BadRequestData("pageBefore pages a lastN answer: give lastN too")
        page_before = parse_ts(params["pageBefore"], "pageBefore").timestamp()
    attrs = tuple(expand_name(a, tm) for a in P.csv(params.get("attrs"), "attrs")) or None
    dataset_ids = None
    if params.get("datasetId") is not None:
        dataset_ids = tuple(
            d if d == "@none" else check_uri(d, "datasetId")
            for d in P.csv(params["datasetId"], "datasetId")
        )
    return TemporalQuery(
        entities=entities,
        attrs=attrs,
        timeproperty=prop,
        timerel=timerel,
        time_at=time_at,
        end_time_at=end_at,
        last_n=last_n,
        page_before=page_before,
        dataset_ids=dataset_ids,
        with_instances=one_entity is None,
    )


def temporal_format(params: Mapping[str, str]) -> str:
    """normalized, concise, temporalValues or aggregatedValues; format= wins over options=."""
    opts = set(P.csv(params.get("options"), "options"))
    unknown = opts - OPTIONS
    if unknown:
        raise InvalidRequest(
            f"unknown option(s) for a temporal request: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(OPTIONS))}"
        )
    fmt = params.get("format")
    if fmt is not None:
        if fmt not in FORMATS:
            raise InvalidRequest(f"unknown format {shown(fmt)}; use one of {', '.join(FORMATS)}")
        return "temporalValues" if fmt in ("simplified", "keyValues") else fmt
    if "aggregatedValues" in opts:
        return "aggregatedValues"
    if opts & {"temporalValues", "simplified", "keyValues"}:
        return "temporalValues"
    if "concise" in opts:
        return "concise"
    return "normalized"


def aggregation(params: Mapping[str, str], *, required: bool = True) -> Aggregation:
    """aggrMethods and aggrPeriodDuration. Not `required` (another format), each one given
    is still checked: a malformed one was silently ignored."""
    methods = tuple(dict.fromkeys(P.csv(params.get("aggrMethods"), "aggrMethods")))
    if not methods and required:
        raise BadRequestData("aggregatedValues needs aggrMethods")
    bad = [m for m in methods if m not in AGGR_METHODS]
    if bad:
        raise BadRequestData(
            f"unknown aggrMethods: {', '.join(bad)}; use {', '.join(AGGR_METHODS)}"
        )
    raw = params.get("aggrPeriodDuration")
    months, seconds = parse_duration(raw) if raw else (0, 0.0)
    return Aggregation(methods=methods, seconds=seconds, months=months)


@dataclass(frozen=True)
class _Members:
    """pick/omit as sets of entity members: 'id', 'type' and attribute IRIs."""

    pick: frozenset[str] | None
    omit: frozenset[str]

    def keep(self, member: str) -> bool:
        if self.pick is not None and member not in self.pick:
            return False
        return member not in self.omit

    @property
    def given(self) -> bool:
        return self.pick is not None or bool(self.omit)


def _members(params: Mapping[str, str], tm: TermMap) -> _Members:
    if params.get("attrs") is None:
        pick, omit = P.projections(params)
    else:  # attrs selects instances in the store; it only excludes pick and omit here
        P.projections(params)
        pick, omit = None, None

    def names(tree: Mapping[str, Any] | None) -> frozenset[str] | None:
        if tree is None:
            return None
        return frozenset(n if n in ("id", "type", "scope") else expand_name(n, tm) for n in tree)

    return _Members(pick=names(pick), omit=names(omit) or frozenset())


_HEADER_MEMBERS = frozenset({"id", "type", "scope"})


def _read_as_projected(tq: TemporalQuery, members: _Members) -> TemporalQuery:
    """pick/omit push their attributes into what the store reads, so the page cut (206) and
    the work follow what the answer shows: a pick of attributes alone is `attrs` (it also
    selects the entities that have one, as on GET /entities); one that keeps an entity member
    too, or an omit, shapes only what is read. id, type and scope stay render-time."""
    if members.pick is not None:
        attrs = tuple(sorted(members.pick - _HEADER_MEMBERS))
        if members.pick & _HEADER_MEMBERS:
            return replace(tq, picked=attrs)
        return replace(tq, attrs=attrs)
    if members.omit:
        return replace(tq, omitted=tuple(sorted(members.omit - _HEADER_MEMBERS)))
    return tq


def _start_of(period: list[Any]) -> float:
    """The startAt of an aggregated [value, startAt, endAt] period, in epoch seconds."""
    return parse_ts(period[1]).timestamp()


def _when(inst: Doc, prop: str) -> float | None:
    """An instance's time on the requested time property, as a number."""
    raw = _time_of(inst, prop)
    return parse_ts(raw).timestamp() if isinstance(raw, str) else None


def _time_of(inst: Doc, prop: str) -> Any:
    """An instance's time on the requested time property; one never observed sits on the
    observedAt axis at the time it was recorded, its modifiedAt unless a PATCH has changed
    that since, as the store orders and filters it (decision 024)."""
    raw = inst.get(prop)
    if raw is None and prop == "observedAt":
        raw = inst.get(RECORDED_AT) or inst.get("modifiedAt")
    return raw


class TemporalService:
    """Write and read the temporal evolution of entities."""

    def __init__(
        self,
        store: Store,
        instance_limit: int = DEFAULT_INSTANCE_LIMIT,
        period_limit: int = MAX_PERIODS,
    ) -> None:
        self.store = store
        self.instance_limit = max(1, instance_limit)
        self.period_limit = max(1, period_limit)

    # -- writing ---------------------------------------------------------------------------
    def _instances(self, body: Any, tm: TermMap) -> dict[str, list[Doc]]:
        if not isinstance(body, dict):
            raise BadRequestData("a temporal entity must be a JSON object")
        budget = Budget(
            MAX_WRITE_INSTANCES,
            what="a temporal write",
            unit="instances, each sub-attribute counted",
            advice="send a long history in several requests",
        )
        names = sum(1 for name in body if name not in ENTITY_KEYS)
        if names > MAX_ATTRS:  # each name is a round of statements; the instances are not
            raise TooLarge(
                f"a temporal write holds at most {MAX_ATTRS:,} attributes, as an entity does; "
                "send the others in further requests"
            )
        budget.check_attrs(  # refused before any of it is expanded
            sum(
                len(raw) if isinstance(raw, list) else 1
                for name, raw in body.items()
                if name not in ENTITY_KEYS
            )
        )
        out: dict[str, list[Doc]] = {}
        now = now_iso()
        for name, raw in body.items():
            if name in ENTITY_KEYS:
                continue
            iri = tm.expand(check_name(name))
            items = raw if isinstance(raw, list) else [raw]
            insts: list[Doc] = []
            for item in items:  # each item one instance; datasetIds may repeat over time
                try:
                    insts += _with_deletion_time(
                        expand_attribute(iri, item, tm, budget=budget, history=True), item, now
                    )
                except BadRequestData as exc:
                    raise naming(exc, "attribute", name) from None
            for inst in insts:  # the store gives each its instanceId
                stamp(inst, now)
            out.setdefault(iri, []).extend(insts)  # a term and its IRI name one attribute
        return {iri: _one_per_time(insts) for iri, insts in out.items()}

    def _guarded(
        self, tenant: str, eid: str, attrs: dict[str, list[Doc]], types: list[str] | None = None
    ) -> None:
        """Conflict for instances of an Attribute a context source holds exclusively, or of
        an entity a redirect registration covers by these types, as for an entity write (the
        store's guard, ngsild/registration_claims.py)."""
        guard = getattr(self.store, "guard", None)
        if guard is not None:
            guard.check_write(tenant, {"id": eid, "type": types or [], "attrs": attrs})

    def create(self, tenant: str, body: Any, tm: TermMap) -> bool:
        """POST /temporal/entities: True when the temporal entity is new. A scope given is
        the temporal entity's from then on, for scopeQ and its representation (decision
        029); without one it keeps the scope it has."""
        doc = (
            expand_entity({k: v for k, v in body.items() if k in ENTITY_KEYS}, tm)
            if isinstance(body, dict)
            else None
        )
        if doc is None:
            raise BadRequestData("a temporal entity must be a JSON object")
        attrs = self._instances(body, tm)
        self._guarded(tenant, doc["id"], attrs, doc["type"])
        scope = doc.get("scope", ...)  # ...: keep the stored one
        with self.store.write(tenant) as tx:
            created = not tx.temporal_exists(doc["id"])
            for name, insts in attrs.items():
                _same_kind(tx, doc["id"], name, insts, tm)
                tx.add_history(doc["id"], doc["type"], name, insts, scope)
            if not attrs:  # a new temporal entity, or more types (or a scope) for one
                tx.add_history(doc["id"], doc["type"], "", [], scope)
        return created

    def append(self, tenant: str, eid: str, body: Any, tm: TermMap) -> None:
        """POST /temporal/entities/{id}/attrs; the types the fragment names are added to the
        temporal entity's and its scope replaces the stored one, as a second temporal create
        does (decision 101: both were dropped, and the 204 told the client they were kept)."""
        check_body_id(body, eid)
        body = unaliased(body)
        given = body if isinstance(body, dict) else {}
        added = expand_types(given["type"], tm) if "type" in given else []
        scope = expand_scope(given["scope"]) if "scope" in given else ...  # ...: keep it
        attrs = self._instances(body, tm)
        with self.store.write(tenant) as tx:
            types = tx.temporal_types(eid)
            if types is None:
                raise ResourceNotFound(f"temporal entity {eid} not found")
            # the types a redirect may cover it by, those it gains too
            self._guarded(tenant, eid, attrs, list(dict.fromkeys(types + added)))
            for name, insts in attrs.items():
                _same_kind(tx, eid, name, insts, tm)
                tx.add_history(eid, added, name, insts, scope)
            if not attrs and (added or scope is not ...):  # only types or a scope
                tx.add_history(eid, added, "", [], scope)

    def delete(self, tenant: str, eid: str) -> Erasure | None:
        """DELETE /temporal/entities/{id}: gone for readers once this commits; the history
        rows past the first few thousand are left to a job (Store.erase_history)."""
        with self.store.write(tenant) as tx:
            found, rest = tx.delete_history(eid)
            if not found:
                raise ResourceNotFound(f"temporal entity {eid} not found")
        return rest

    def delete_attribute(
        self,
        tenant: str,
        eid: str,
        attr: str,
        tm: TermMap,
        dataset_id: str | None,
        delete_all: bool,
    ) -> Erasure | None:
        """DELETE /temporal/entities/{id}/attrs/{attr}: the instances past the first few
        thousand are left to a job (Store.erase_history), which the answer waits for."""
        name = tm.expand(check_name(attr))
        with self.store.write(tenant) as tx:
            if not tx.temporal_exists(eid):
                raise ResourceNotFound(f"temporal entity {eid} not found")
            if delete_all:
                found, rest = tx.delete_history(eid, name)
            else:
                found, rest = tx.delete_history(eid, name, dataset_id)
            if not found:
                raise ResourceNotFound(f"attribute {attr} has no instances in {eid}")
        return rest

    def modify_instance(
        self, tenant: str, eid: str, attr: str, iid: str, body: Any, tm: TermMap
    ) -> None:
        """PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}: the body (bare, or under the
        attribute's name) is merged into the instance, as a partial update is: members it
        leaves out (observedAt, unitCode, sub-attributes) stay, and so does createdAt."""
        name = expand_name(attr, tm)
        check_uri(iid, "instanceId")
        if not isinstance(body, dict):
            raise BadRequestData("the body must be an attribute instance")
        raw = {k: v for k, v in body.items() if k != "@context"}
        if len(raw) == 1 and _names(next(iter(raw)), name, tm):  # under its name, any form
            raw = next(iter(raw.values()))
        if not raw or not isinstance(raw, dict):  # {} would replace the instance with nothing
            raise BadRequestData("the body must be a non-empty attribute instance")
        with self.store.write(tenant) as tx:
            types = tx.temporal_types(eid)
            if types is None:
                raise ResourceNotFound(f"temporal entity {eid} not found")
            self._guarded(tenant, eid, {name: []}, types)  # a new value, as an append's
            stored = tx.instance(eid, name, iid)
            if stored is None:
                raise ResourceNotFound(f"attribute {attr} has no instance {iid}")
            if "deletedAt" in stored:  # merged, it became half a deletion, half a reading
                raise BadRequestData(
                    f"instance {iid} records the attribute's deletion, which has no value to "
                    "change; DELETE it, or POST a new instance"
                )
            _other_attribute(tx, eid, attr, raw, stored, tm)
            _fits(stored["type"], raw, iid)
            # a fragment of this instance: `{"observedAt": ...}` alone moves it in time
            fragment = raw if "type" in raw else {**raw, "type": stored["type"]}
            if raw.get("observedAt", ...) in (None, NULL_URI):  # decision 024; JSON null too
                raise BadRequestData(
                    "an instance's observedAt places it in time and cannot be removed; give "
                    "another observedAt, or DELETE the instance"
                )
            change = expand_instance(fragment, tm, nulls=True, fragment=True)
            if change.get("null"):
                raise BadRequestData("delete an instance with DELETE, not a null value")
            if change["type"] != stored["type"]:
                raise BadRequestData(
                    f"instance {iid} is a {stored['type']}, not a {change['type']}"
                )
            inst = merge_instance(stored, change, now_iso())
            if emptied(inst):
                raise BadRequestData("delete an instance with DELETE, not by nulling its languages")
            inst["instanceId"] = iid
            tx.update_instance(eid, name, iid, inst)

    def delete_instance(self, tenant: str, eid: str, attr: str, iid: str, tm: TermMap) -> None:
        """DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}: not refused for an
        exclusively registered Attribute, whose instances here are a copy the registration
        says the hub should not hold (decision 083), so taking one away leaves no second one."""
        name = expand_name(attr, tm)
        check_uri(iid, "instanceId")
        with self.store.write(tenant) as tx:
            if not tx.temporal_exists(eid):
                raise ResourceNotFound(f"temporal entity {eid} not found")
            if not tx.delete_instance(eid, name, iid):
                raise ResourceNotFound(f"instance {iid} not found")

    # -- reading ---------------------------------------------------------------------------
    def query(
        self,
        tenant: str,
        params: Mapping[str, str],
        tm: TermMap,
        one_entity: str | None = None,
        selectors: Any = None,
    ) -> TemporalResult:
        """Temporal entities rendered in the requested format (one entity: 404 when absent);
        `selectors` are the EntitySelectors of a Query body."""
        fmt = temporal_format(params)
        members = _members(params, tm)
        base = P.render_options({k: v for k, v in params.items() if k != "format"}, tm)
        opts = RenderOptions(
            format="concise" if fmt == "concise" else "normalized",
            sys_attrs=base.sys_attrs,
            lang=base.lang,
        )
        tq = _read_as_projected(
            temporal_query(params, tm, one_entity=one_entity, selectors=selectors), members
        )
        if fmt != "aggregatedValues":
            aggregation(params, required=False)
        elif tq.page_before is not None:
            raise BadRequestData("pageBefore pages instances, not aggregated periods")
        else:
            aggr = replace(aggregation(params), limit=self.period_limit + 1)  # +1: cut or not
            aggs, total = self.store.aggregate(tenant, tq, aggr)
            if one_entity is not None and not aggs:
                self._not_found(tenant, one_entity, tq, tm)
            content_range = self._cut_periods(aggs)
            out = [self._render_aggr(h, a, tm, members) for h, a in aggs]
            found = self._found(out, members, one_entity)
            return TemporalResult(found, total, content_range, _page(tq, one_entity))
        limited, descending = self._limited(tq)
        rows, total = self.store.temporal(tenant, limited)
        if one_entity is not None and not rows:
            self._not_found(tenant, one_entity, tq, tm)
        kinds = {
            name: insts[0]["type"] for _, attrs in rows for name, insts in attrs.items() if insts
        }
        content_range, cut = self._cut(rows, tq, descending)
        out = [self._render(h, a, tm, opts, fmt, members, kinds, tq.timeproperty) for h, a in rows]
        found = self._found(out, members, one_entity)
        following = None if cut is None else next_page(tq, cut, descending)
        return TemporalResult(found, total, content_range, _page(tq, one_entity), following)

    def _not_found(self, tenant: str, eid: str, tq: TemporalQuery, tm: TermMap) -> NoReturn:
        """The 404 of a retrieval that found nothing: an entity whose history exists but holds
        none of the attributes asked for was said not to exist."""
        if tq.attrs and self.store.has_history(tenant, eid):
            names = ", ".join(tm.compact(a) for a in tq.attrs)
            raise ResourceNotFound(f"temporal entity {eid} has no instance of {names}")
        raise ResourceNotFound(f"temporal entity {eid} not found")

    @staticmethod
    def _found(out: list[Doc], members: _Members, one_entity: str | None) -> list[Doc]:
        """A retrieval whose pick/omit leaves nothing to show is a 404."""
        if one_entity is not None and members.given and not out[0]:
            raise ResourceNotFound(f"nothing of {one_entity} is left after pick/omit")
        return out

    def _limited(self, tq: TemporalQuery) -> tuple[TemporalQuery, bool]:
        """Ask the store for one instance more than the page holds, to see what was cut; a
        lastN over several pages stays the store's count of each series' newest (`newest`)."""
        limit = self.instance_limit
        if tq.last_n is not None:
            if tq.last_n <= limit and tq.page_before is None:
                return tq, True
            return replace(tq, last_n=limit + 1, whole_instants=True, newest=tq.last_n), True
        return replace(tq, first_n=limit + 1, whole_instants=True), False

    def _cut(
        self, rows: list[tuple[Doc, dict[str, list[Doc]]]], tq: TemporalQuery, descending: bool
    ) -> tuple[str | None, float | None]:
        """Temporal pagination: when an attribute (one datasetId of it, as lastN counts) has
        more instances than a page holds, every attribute of every entity is cut at the same
        time, so the page covers one time range.

        A page never ends partway through one instant: the instances at the same time as the
        last one that fits come too (the store fetched them), since the next page starts past
        that time (`before` it, newest first) or at it (`after`, which includes it). Returns
        the Content-Range and the time of the cut."""
        limit = self.instance_limit
        prop = tq.timeproperty
        edges: list[float] = []
        for _, attrs in rows:
            for insts in attrs.values():
                for series in _by_dataset(insts):  # the limit is per series, as lastN
                    if len(series) > limit:
                        ordered = series[::-1] if descending else series
                        edge = _when(ordered[limit - 1], prop)
                        if edge is not None:
                            edges.append(edge)
        if not edges:
            return None, None
        cut = max(edges) if descending else min(edges)
        if not descending and cut >= END_OF_TIME:  # nothing lies after the last instant
            return None, None
        times: list[float] = []
        for _, attrs in rows:
            for name, insts in attrs.items():
                kept = []
                for inst in insts:
                    t = _when(inst, prop)
                    if t is None or (t >= cut if descending else t <= cut):
                        kept.append(inst)
                        if t is not None:
                            times.append(t)
                attrs[name] = kept
        start: float | None
        if descending:
            if tq.page_before is not None:
                start = tq.page_before
            elif tq.timerel == "between":
                start = tq.end_time_at
            elif tq.timerel == "before":
                start = tq.time_at
            else:
                start = max(times, default=cut)
        else:
            start = tq.time_at if tq.timerel in ("after", "between") else min(times, default=cut)
        if start is None:
            start = cut
        end = cut
        if not descending and start == cut:
            # one instant fills the page, and the next page (`after`, inclusive) would be this
            # one again: it is whole, so the range ends just past it
            end = next_instant(cut)
        size = str(tq.last_n) if tq.last_n is not None else "*"
        return f"date-time {epoch_iso(start)}-{epoch_iso(end)}/{size}", cut  # 0.0 is a start

    def _cut_periods(self, aggs: list[tuple[Doc, dict[str, list[Doc]]]]) -> str | None:
        """At most MAX_PERIODS periods per series, every series cut at one time (206 +
        Content-Range, as for instances): a tiny aggrPeriodDuration gave one period per
        instance, 84 MB for 200,000 of them. The store gives at most one period more than
        that per series (Aggregation.limit); the methods of a series share their periods."""
        limit = self.period_limit
        records = [
            (one, [m for m, periods in one.items() if isinstance(periods, list)])
            for _, attrs in aggs
            for series in attrs.values()
            for one in series
        ]
        edges = [
            _start_of(one[methods[0]][limit])
            for one, methods in records
            if methods and len(one[methods[0]]) > limit
        ]
        if not edges:
            return None
        cut = min(edges)
        first = cut
        for one, methods in records:
            if not methods:
                continue
            periods = one[methods[0]]
            kept = bisect.bisect_left(periods, cut, hi=min(len(periods), limit + 1), key=_start_of)
            for method in methods:
                one[method] = one[method][:kept]
            if kept:
                first = min(first, _start_of(periods[0]))
        return f"date-time {epoch_iso(first)}-{epoch_iso(cut)}/*"

    @staticmethod
    def _header(header: Doc, tm: TermMap, members: _Members) -> Doc:
        out: Doc = {}
        if members.keep("id"):
            out["id"] = header["id"]
        if members.keep("type"):
            types = [tm.compact(t) for t in header["type"]]
            out["type"] = types[0] if len(types) == 1 else types
        if "scope" in header and members.keep("scope"):  # as GET /entities shows it
            scope = header["scope"]
            out["scope"] = scope[0] if len(scope) == 1 else scope
        return out

    def _render(
        self,
        header: Doc,
        attrs: dict[str, list[Doc]],
        tm: TermMap,
        opts: RenderOptions,
        fmt: str,
        members: _Members,
        kinds: dict[str, str],
        prop: str,
    ) -> Doc:
        out = self._header(header, tm, members)
        normalized = replace(opts, format="normalized")
        for name, insts in attrs.items():
            if not name or not members.keep(name):
                continue
            if fmt == "temporalValues":
                kind = kinds.get(name, "Property")
                out[tm.compact(name)] = _values(insts, kind, tm, opts, prop)
                continue
            rendered = []
            for inst in insts:
                if RECORDED_AT in inst:  # a time of the axis, not a member
                    inst = {k: v for k, v in inst.items() if k != RECORDED_AT}
                # every instance keeps its instanceId: made concise after it was added, a bare
                # value lost it, and a geometry got it inside
                r = {**render_instance(inst, tm, normalized), "instanceId": inst["instanceId"]}
                if "deletedAt" in inst:
                    r["deletedAt"] = inst["deletedAt"]
                rendered.append(concise(r) if opts.format == "concise" else r)
            out[tm.compact(name)] = rendered
        if opts.sys_attrs:
            out["createdAt"], out["modifiedAt"] = header["createdAt"], header["modifiedAt"]
            if "deletedAt" in header:  # its entity stays deleted (decision 100)
                out["deletedAt"] = header["deletedAt"]
        return out

    def _render_aggr(
        self, header: Doc, attrs: dict[str, list[Doc]], tm: TermMap, members: _Members
    ) -> Doc:
        """One record per attribute, or a list with one per datasetId (as temporalValues)."""
        out = self._header(header, tm, members)
        kinds = header.get("attrTypes", {})
        for name, series in attrs.items():
            if not name or not members.keep(name):
                continue
            kind = kinds.get(name, "Property")  # a series may name its own (store.aggregate)
            records = [{"type": kind, **one} for one in series]
            out[tm.compact(name)] = records[0] if len(records) == 1 else records
        return out


def _with_deletion_time(insts: list[Doc], item: Any, now: str) -> list[Doc]:
    """An instance of temporal input whose content is the NGSI-LD Null is the record of a
    deletion (4.5.7, 5.2.1; decision 059): it is stored as the hub records its own, with a
    deletedAt, which every reader tells markers by. Stored without one, as deletedAt is a
    member the hub sets, it was counted, matched by q and invisible on the deletedAt axis.
    The deletedAt given is kept (history imported from another broker), else its observedAt,
    else the time of the write."""
    for inst in insts:
        if is_null_instance(inst["type"], inst):
            given = item.get("deletedAt") if isinstance(item, dict) else None
            if given is not None:
                parse_ts(given, "deletedAt")
            inst["deletedAt"] = given or inst.get("observedAt") or now
    return insts


def _one_per_time(insts: list[Doc]) -> list[Doc]:
    """One body's instances as the store keeps them across requests: an observation of the
    same datasetId and time as an earlier one in the body replaces it (both were stored)."""
    observed = [i for i, inst in enumerate(insts) if inst.get("observedAt") is not None]
    last = {
        (insts[i].get("datasetId"), parse_ts(insts[i]["observedAt"]).timestamp()): i
        for i in observed
    }
    if len(last) == len(observed):
        return insts  # no time twice (most bodies)
    dropped = set(observed) - set(last.values())
    return [inst for i, inst in enumerate(insts) if i not in dropped]


def _by_dataset(insts: list[Doc]) -> list[list[Doc]]:
    """An attribute's instances split into one series per datasetId, each in its order."""
    groups: dict[Any, list[Doc]] = {}
    for inst in insts:
        groups.setdefault(inst.get("datasetId"), []).append(inst)
    return list(groups.values())


def next_page(tq: TemporalQuery, cut: float, descending: bool) -> tuple[str, dict[str, str]]:
    """The Link relation and time window of the page after one cut at `cut` (decision 031).

    Oldest first, the page holds every instance up to `cut`, which its Content-Range ends at
    (ETSI 020_13); `after` includes its timeAt, so the next page starts a microsecond later,
    the hub's resolution of time. Newest first (lastN), the request's own window stays, so
    that lastN still counts each series' newest in it, and the next page holds those of them
    `pageBefore` the cut, which excludes it (decision 058): with the window moved before the
    cut instead, each page's lastN counted anew, and the pages held the whole history.
    """
    if descending:
        window = {"pageBefore": epoch_iso(cut)}
        if tq.timerel is not None and tq.time_at is not None:
            window.update(timerel=tq.timerel, timeAt=epoch_iso(tq.time_at))
        if tq.timerel == "between" and tq.end_time_at is not None:
            window["endTimeAt"] = epoch_iso(tq.end_time_at)
        return "intervalbefore", window
    start = epoch_iso(next_instant(cut))
    end = tq.end_time_at if tq.timerel == "between" else tq.time_at
    if tq.timerel in ("before", "between") and end is not None:
        return "intervalafter", {"timerel": "between", "timeAt": start, "endTimeAt": epoch_iso(end)}
    return "intervalafter", {"timerel": "after", "timeAt": start}


def _page(tq: TemporalQuery, one_entity: str | None) -> tuple[int, int] | None:
    """The entity page of a query (a retrieval has none)."""
    return None if one_entity is not None else (tq.entities.limit, tq.entities.offset)


def _other_attribute(tx: WriteTx, eid: str, attr: str, raw: Doc, stored: Doc, tm: TermMap) -> None:
    """A body that is one instance under another attribute's name is refused (it would
    have been merged into this one as a sub-attribute); a lone member that names a
    sub-attribute of the instance, or no attribute of the entity, is a sub-attribute
    fragment of the instance."""
    if len(raw) != 1 or _INSTANCE_MEMBERS & raw.keys():
        return
    ((other, value),) = raw.items()
    if not isinstance(value, dict) or other in META_KEYS:
        return
    iri = expand_name(other, tm)
    if iri in stored.get("sub", {}) or tx.history_kind(eid, iri) is None:
        return
    raise BadRequestData(f"the body names attribute {shown(other)}, the path {shown(attr)}")


def _names(key: str, iri: str, tm: TermMap) -> bool:
    """Whether a body's key names the attribute (as a term, a compact IRI or the IRI)."""
    try:
        return expand_name(key, tm) == iri
    except BadRequestData:
        return False


def _fits(kind: str, raw: Doc, iid: str) -> None:
    """A content member of another attribute type (`value` on a Relationship) cannot apply
    to the instance: merged, it was dropped and the PATCH answered 204 unchanged."""
    own = CONTENT_KEY.get(kind)
    foreign = sorted(k for k in raw if k in _CONTENT_MEMBERS and k != own)
    if foreign:
        raise BadRequestData(
            f"instance {iid} is a {kind}: {', '.join(repr(k) for k in foreign)} does not fit it"
            f" (its content is {shown(own)})"
        )


def _same_kind(tx: WriteTx, eid: str, name: str, insts: list[Doc], tm: TermMap) -> None:
    """Instances added through the temporal API have the type the attribute's history has:
    a Relationship among Properties was listed under the first one's type, its object as a
    value."""
    kinds = {i["type"] for i in insts}
    stored = tx.history_kind(eid, name) if insts else None
    if stored is not None:
        kinds.add(stored)
    if len(kinds) > 1:
        raise BadRequestData(
            f"attribute {tm.compact(name)} would hold {' and '.join(sorted(kinds))} instances"
        )


def _content(inst: Doc, tm: TermMap, lang: str | None) -> Any:
    """The first member of a temporalValues pair: Property values and Relationship objects
    bare, the other attribute types wrapped in their content member ({"languageMap": …})."""
    typ = inst["type"]
    if typ in ("Property", "GeoProperty"):
        return inst.get("value")
    if typ == "Relationship":
        return inst.get("object")
    if typ == "LanguageProperty":
        if lang is not None:
            return pick_language(inst.get("languageMap") or {}, lang)
        return {"languageMap": inst.get("languageMap")}
    if typ == "VocabProperty":
        return {"vocab": key_value(inst, tm, None)}
    member = {"ListProperty": "valueList", "ListRelationship": "objectList", "JsonProperty": "json"}
    key = member.get(typ, "value")
    return {key: inst.get(key)}


def _values(
    insts: list[Doc], kind: str, tm: TermMap, opts: RenderOptions, prop: str
) -> Doc | list[Doc]:
    """temporalValues of one attribute: [[content, time], ...], one record per datasetId and
    attribute type: an attribute that entity writes turned from a Property into a
    Relationship showed the object as a Property's value under its first type."""
    groups: dict[tuple[Any, str], list[Doc]] = {}
    for inst in insts:
        groups.setdefault((inst.get("datasetId"), inst["type"]), []).append(inst)
    if not groups:
        typ = "Property" if kind == "LanguageProperty" and opts.lang else kind
        return {"type": typ, VALUES_KEY.get(typ, "values"): []}
    out = []
    for (ds, typ), items in groups.items():
        if typ == "LanguageProperty" and opts.lang is not None:
            typ = "Property"
        pairs = []
        for i in items:
            when = _time_of(i, prop) or i.get("modifiedAt")
            pairs.append([_content(i, tm, opts.lang), when])
        rec: Doc = {"type": typ, VALUES_KEY.get(typ, "values"): pairs}
        if ds is not None:
            rec["datasetId"] = ds
        out.append(rec)
    return out[0] if len(out) == 1 else out
