"""Temporal use-cases: the evolution of attributes, with filters, formats and aggregation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cityhub.ngsild import params as P
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import (
    ENTITY_KEYS,
    check_name,
    check_uri,
    expand_attribute,
    expand_entity,
    expand_name,
)
from cityhub.ngsild.errors import BadRequestData, ResourceNotFound
from cityhub.ngsild.merge import stamp
from cityhub.ngsild.render import RenderOptions, render_instance
from cityhub.ngsild.service import new_instance_id
from cityhub.ngsild.timeutil import now_iso, parse_ts
from cityhub.store.base import Aggregation, Doc, Store, TemporalQuery

AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)
_VALUES_KEY = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "VocabProperty": "vocabs",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
    "JsonProperty": "jsons",
}


def duration_seconds(text: str) -> float:
    """An ISO 8601 duration (P1D, PT1H, PT0S) in seconds (months as 30 days)."""
    m = _DURATION.match(text or "")
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise BadRequestData(f"aggrPeriodDuration is not an ISO 8601 duration: {text!r}")
    return sum(float(g) * u for g, u in zip(m.groups(), _UNITS, strict=True) if g)


def temporal_query(
    params: Mapping[str, str], tm: TermMap, *, one_entity: str | None = None
) -> TemporalQuery:
    """timerel/timeAt/endTimeAt/timeproperty/lastN plus the entity selection."""
    if one_entity is not None:
        from cityhub.store.base import EntityQuery

        entities = EntityQuery(ids=(one_entity,), limit=1)
    else:
        entities = P.entity_query(params, tm)
    timerel = params.get("timerel")
    time_at = end_at = None
    if timerel is not None:
        if timerel not in ("before", "after", "between"):
            raise BadRequestData("timerel must be before, after or between")
        if "timeAt" not in params:
            raise BadRequestData("timerel needs timeAt")
        time_at = parse_ts(params["timeAt"], "timeAt").timestamp()
        if timerel == "between":
            if "endTimeAt" not in params:
                raise BadRequestData("timerel=between needs endTimeAt")
            end_at = parse_ts(params["endTimeAt"], "endTimeAt").timestamp()
            if end_at <= time_at:
                raise BadRequestData("endTimeAt must be after timeAt")
    elif "timeAt" in params or "endTimeAt" in params:
        raise BadRequestData("timeAt needs timerel")
    prop = params.get("timeproperty", "observedAt")
    if prop not in ("observedAt", "createdAt", "modifiedAt"):
        raise BadRequestData("timeproperty must be observedAt, createdAt or modifiedAt")
    last_n = P.integer(params, "lastN", 0, 1, 10**6) if "lastN" in params else None
    attrs = tuple(tm.expand(check_name(a)) for a in P.csv(params.get("attrs"))) or None
    return TemporalQuery(
        entities=entities,
        attrs=attrs,
        timeproperty=prop,
        timerel=timerel,
        time_at=time_at,
        end_time_at=end_at,
        last_n=last_n,
    )


def temporal_format(params: Mapping[str, str]) -> str:
    """normalized, temporalValues or aggregatedValues (format= or options=)."""
    opts = P.options(params)
    fmt = params.get("format")
    if fmt is not None and fmt not in (
        "normalized",
        "temporalValues",
        "aggregatedValues",
        "simplified",
        "concise",
    ):
        raise BadRequestData(f"unknown format {fmt!r}")
    if (
        fmt == "simplified"
        or "temporalValues" in opts
        or "keyValues" in opts
        or "simplified" in opts
    ):
        fmt = fmt or "temporalValues"
    if "aggregatedValues" in opts:
        fmt = "aggregatedValues"
    return {"simplified": "temporalValues"}.get(fmt or "", fmt or "normalized")


def aggregation(params: Mapping[str, str]) -> Aggregation:
    """aggrMethods and aggrPeriodDuration."""
    methods = tuple(P.csv(params.get("aggrMethods")))
    if not methods:
        raise BadRequestData("aggregatedValues needs aggrMethods")
    bad = [m for m in methods if m not in AGGR_METHODS]
    if bad:
        raise BadRequestData(f"unknown aggrMethods: {', '.join(bad)}")
    raw = params.get("aggrPeriodDuration")
    period = duration_seconds(raw) if raw else None
    return Aggregation(methods=methods, period=period or None)


class TemporalService:
    """Write and read the temporal evolution of entities."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _instances(self, body: Any, tm: TermMap) -> dict[str, list[Doc]]:
        if not isinstance(body, dict):
            raise BadRequestData("a temporal entity must be a JSON object")
        out: dict[str, list[Doc]] = {}
        now = now_iso()
        for name, raw in body.items():
            if name in ENTITY_KEYS:
                continue
            iri = tm.expand(check_name(name))
            items = raw if isinstance(raw, list) else [raw]
            insts: list[Doc] = []
            for item in items:
                insts += expand_attribute(iri, [item] if isinstance(item, dict) else item, tm)
            for inst in insts:
                stamp(inst, now)
                inst["instanceId"] = new_instance_id()
            out[iri] = insts
        return out

    def create(self, tenant: str, body: Any, tm: TermMap) -> bool:
        """POST /temporal/entities: True when the temporal entity is new."""
        doc = (
            expand_entity({k: v for k, v in body.items() if k in ENTITY_KEYS}, tm)
            if isinstance(body, dict)
            else None
        )
        if doc is None:
            raise BadRequestData("a temporal entity must be a JSON object")
        attrs = self._instances(body, tm)
        with self.store.write(tenant) as tx:
            created = not tx.temporal_exists(doc["id"])
            for name, insts in attrs.items():
                tx.add_history(doc["id"], doc["type"], name, insts)
            if not attrs and created:
                tx.add_history(doc["id"], doc["type"], "", [])
        return created

    def append(self, tenant: str, eid: str, body: Any, tm: TermMap) -> None:
        """POST /temporal/entities/{id}/attrs."""
        attrs = self._instances(body, tm)
        with self.store.write(tenant) as tx:
            types = self._types(tenant, eid)
            for name, insts in attrs.items():
                tx.add_history(eid, types, name, insts)

    def _types(self, tenant: str, eid: str) -> list[str]:
        rows, _ = self.store.temporal(tenant, temporal_query({}, TermMap(), one_entity=eid))
        if not rows:
            raise ResourceNotFound(f"temporal entity {eid} not found")
        return list(rows[0][0]["type"])

    def delete(self, tenant: str, eid: str) -> None:
        """DELETE /temporal/entities/{id}."""
        with self.store.write(tenant) as tx:
            if not tx.delete_history(eid):
                raise ResourceNotFound(f"temporal entity {eid} not found")

    def delete_attribute(
        self,
        tenant: str,
        eid: str,
        attr: str,
        tm: TermMap,
        dataset_id: str | None,
        delete_all: bool,
    ) -> None:
        """DELETE /temporal/entities/{id}/attrs/{attr}."""
        self._types(tenant, eid)
        name = tm.expand(check_name(attr))
        with self.store.write(tenant) as tx:
            n = tx.delete_history(eid, name, ... if delete_all else dataset_id)
            if not n:
                raise ResourceNotFound(f"attribute {attr} has no instances in {eid}")

    def modify_instance(self, tenant: str, eid: str, attr: str, iid: str, body: Any, tm: TermMap) -> None:
        """PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}: the body is the new instance
        (bare, or under the attribute's name)."""
        name = expand_name(attr, tm)
        check_uri(iid, "instanceId")
        self._types(tenant, eid)
        if not isinstance(body, dict):
            raise BadRequestData("the body must be an attribute instance")
        raw = {k: v for k, v in body.items() if k != "@context"}
        if attr in raw and len(raw) == 1:
            raw = raw[attr]
        with self.store.write(tenant) as tx:
            if not tx.has_instance(eid, name, iid):
                raise ResourceNotFound(f"attribute {attr} has no instance {iid}")
            insts = expand_attribute(name, raw, tm)
            if len(insts) != 1:
                raise BadRequestData("exactly one instance can be modified")
            inst = stamp(insts[0], now_iso())
            inst["instanceId"] = iid
            tx.update_instance(eid, name, iid, inst)

    def delete_instance(self, tenant: str, eid: str, attr: str, iid: str, tm: TermMap) -> None:
        """DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}."""
        name = expand_name(attr, tm)
        check_uri(iid, "instanceId")
        self._types(tenant, eid)
        with self.store.write(tenant) as tx:
            if not tx.delete_instance(eid, name, iid):
                raise ResourceNotFound(f"instance {iid} not found")

    def query(
        self, tenant: str, params: Mapping[str, str], tm: TermMap, one_entity: str | None = None
    ) -> tuple[list[Doc], int | None]:
        """Temporal entities rendered in the requested format."""
        tq = temporal_query(params, tm, one_entity=one_entity)
        fmt = temporal_format(params)
        opts = P.render_options({k: v for k, v in params.items() if k not in ("format",)}, tm)
        opts = RenderOptions(format="normalized", sys_attrs=opts.sys_attrs, lang=opts.lang)
        if fmt == "aggregatedValues":
            rows, total = self.store.aggregate(tenant, tq, aggregation(params))
            return [self._render_aggr(h, a, tm) for h, a in rows], total
        rows, total = self.store.temporal(tenant, tq)
        if one_entity is not None and not rows:
            raise ResourceNotFound(f"temporal entity {one_entity} not found")
        return [self._render(h, a, tm, opts, fmt) for h, a in rows], total

    @staticmethod
    def _header(header: Doc, tm: TermMap) -> Doc:
        types = [tm.compact(t) for t in header["type"]]
        return {"id": header["id"], "type": types[0] if len(types) == 1 else types}

    def _render(
        self, header: Doc, attrs: dict[str, list[Doc]], tm: TermMap, opts: RenderOptions, fmt: str
    ) -> Doc:
        out = self._header(header, tm)
        for name, insts in attrs.items():
            if not name:
                continue
            if fmt == "temporalValues":
                out[tm.compact(name)] = _values(insts, tm)
                continue
            rendered = []
            for inst in insts:
                r = render_instance(inst, tm, opts)
                r["instanceId"] = inst["instanceId"]
                rendered.append(r)
            out[tm.compact(name)] = rendered
        if opts.sys_attrs:
            out["createdAt"], out["modifiedAt"] = header["createdAt"], header["modifiedAt"]
        return out

    def _render_aggr(self, header: Doc, attrs: dict[str, list[Doc]], tm: TermMap) -> Doc:
        out = self._header(header, tm)
        for name, buckets in attrs.items():
            if not name:
                continue
            rec: Doc = {"type": "Property"}
            for b in buckets:
                for method, value in b["values"].items():
                    rec.setdefault(method, []).append([value, b["start"], b["end"]])
            out[tm.compact(name)] = rec
        return out


def _values(insts: list[Doc], tm: TermMap) -> Doc | list[Doc]:
    """temporalValues: [[value, observedAt], ...] per datasetId."""
    groups: dict[Any, list[Doc]] = {}
    for inst in insts:
        groups.setdefault(inst.get("datasetId"), []).append(inst)
    out = []
    for ds, items in groups.items():
        typ = items[0]["type"]
        key = _VALUES_KEY[typ]
        content = {
            "Relationship": "object",
            "LanguageProperty": "languageMap",
            "VocabProperty": "vocab",
            "ListProperty": "valueList",
            "ListRelationship": "objectList",
            "JsonProperty": "json",
        }.get(typ, "value")
        rec: Doc = {
            "type": typ,
            key: [[i.get(content), i.get("observedAt") or i.get("modifiedAt")] for i in items],
        }
        if ds is not None:
            rec["datasetId"] = ds
        out.append(rec)
    return out[0] if len(out) == 1 else out
