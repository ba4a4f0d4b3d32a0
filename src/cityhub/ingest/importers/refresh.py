"""What a (re-)import asks of the hub: only what the file changes (docs/decisions/028).

An entity from a file is compared with the stored one, both expanded: attributes whose every
instance is already stored as it is (system members aside) are not sent, so an unchanged
file writes no temporal instance. An attribute the file gives as None (an emptied CSV cell, a
null GeoJSON property) is deleted; with replace, so is every attribute the file does not give.
Both sinks carry out the same plan: an upsert (options=update) of what changed, then a merge
whose null fragments delete what went.

A time series (an id on several rows, each with its observedAt) is compared with the history
too: a row whose instances the entity's history already holds at that observedAt is not
written again. A reading observed before the one the entity holds (a late or corrected row)
goes into the history only (the temporal API), so the entity keeps its latest reading, and a
row deletes nothing observed after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cityhub.ingest.importers.records import ROW_TIME, Entity
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import (
    CONTENT_KEY,
    ENTITY_KEYS,
    NULL_URI,
    SYS_KEYS,
    Instance,
    expand_entity,
    expand_name,
)
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.timeutil import parse_ts
from cityhub.store.base import Doc

# what a merge body holds to delete one instance, per content member (see service.deletion)
_NULLS: dict[str, Any] = {
    "languageMap": {"@none": NULL_URI},
    "valueList": [NULL_URI],
    "objectList": [NULL_URI],
}


# eid -> attribute IRI -> the instances its history holds in the span read (Span)
History = dict[str, dict[str, list[Instance]]]
SPAN_IDS = 1000  # ids per history read (the hub's largest page)
# Entities whose rows fall in about the same time go in one history read: a span is widened
# for another entity while it stays within twice the longest of theirs (or of a day).
SPAN_FLOOR = 86400.0


@dataclass(frozen=True)
class Span:
    """A history read a chunk needs: these entities' instances of these attributes observed
    from start to end (epoch seconds, both included)."""

    ids: tuple[str, ...]
    attrs: tuple[str, ...]
    start: float
    end: float


HistoryReader = Callable[[list[Span]], History]


@dataclass
class Step:
    """One file entity's writes: the upsert (id, type, changed attributes), the merge
    deleting attributes and the readings for its history only; all None when the hub already
    holds what the file says."""

    index: int  # in the chunk
    eid: str
    upsert: Entity | None = None
    delete: Entity | None = None
    error: NgsiLdError | None = None
    whole: Entity | None = None  # all the file gives, when upsert holds only the changes
    late: Entity | None = None  # attributes observed before the entity's: history only

    @property
    def unchanged(self) -> bool:
        """Nothing to write: the hub holds what the file says."""
        return self.upsert is None and self.delete is None and self.late is None


def given(entity: Entity) -> Entity:
    """The entity without the attributes the file says have no value (None), nor its row's
    time (ROW_TIME): what is written."""
    return {k: v for k, v in entity.items() if v is not None and k != ROW_TIME}


class Planner:
    """Compares a chunk of file entities with the stored ones, in file order."""

    def __init__(self, tm: TermMap, replace: bool = False) -> None:
        self.tm = tm
        self.replace = replace

    def plan(
        self, entities: list[Entity], stored: dict[str, Doc], read: HistoryReader | None = None
    ) -> list[Step]:
        """One step per entity; a repeated id is compared with what its earlier row wrote.
        `read` fetches the history the chunk's observed rows are compared with (None: none)."""
        expanded: dict[int, Doc] = {}  # rows expanded while looking for the history they need
        past: dict[str, _Recorded] = {}
        if read is not None and (spans := self._spans(entities, stored, expanded)):
            past = {eid: _Recorded(attrs) for eid, attrs in read(spans).items()}
        docs = dict(stored)  # expanded: stored, or as a compared row left it
        created: dict[str, Entity] = {}  # unexpanded: sent whole by an earlier row of the chunk
        steps = []
        for i, entity in enumerate(entities):
            eid = entity.get("id")
            key = eid if isinstance(eid, str) else ""
            old = self._expanded(created[key]) if key in created else docs.get(key)
            step = Step(i, key)
            if old is None:
                step.upsert = given(entity)  # new: sent whole, validated by the write itself
                if key:
                    created[key] = step.upsert
            else:
                try:
                    new = expanded.get(i) or expand_entity(given(entity), self.tm)
                    docs[key] = self._compare(step, entity, new, old, past.get(key))
                    created.pop(key, None)
                except NgsiLdError as err:
                    step.error = err
            steps.append(step)
        return steps

    def _spans(
        self, entities: list[Entity], stored: dict[str, Doc], expanded: dict[int, Doc]
    ) -> list[Span]:
        """The history reads a chunk needs: of each stored entity with a row observed at a time
        its current state does not hold as the row has it, and not after the reading it holds,
        those rows' span of observedAt. Rows without observedAt (most files) need none, nor do
        unchanged single rows or new readings."""
        wanted: dict[str, tuple[float, float, set[str]]] = {}
        for i, entity in enumerate(entities):
            eid = entity.get("id")
            if not isinstance(eid, str) or eid not in stored or not _observes(entity):
                continue
            old = stored[eid]
            try:
                new = expanded[i] = expand_entity(given(entity), self.tm)
            except NgsiLdError:
                continue  # rejected when planned
            for iri, instances in new["attrs"].items():
                for inst in instances:
                    t = _observed(inst)
                    current = old["attrs"].get(iri, [])
                    if t is None or _held([inst], current):
                        continue
                    if (latest := _latest(inst, current)) is not None and t > latest:
                        continue  # a new reading: no history holds it
                    start, end, attrs = wanted.get(eid, (t, t, set()))
                    attrs.add(iri)
                    wanted[eid] = (min(start, t), max(end, t), attrs)
        return _windows(wanted)

    def _expanded(self, entity: Entity) -> Doc | None:
        try:
            return expand_entity(entity, self.tm)
        except NgsiLdError:
            return None  # that row is rejected; the repeat is then sent whole

    def _compare(
        self,
        step: Step,
        entity: Entity,
        new: Doc,
        old: Doc,
        past: _Recorded | None,
    ) -> Doc:
        """Fill the step from the differences; return the entity as the hub will hold it."""
        present = given(entity)
        attrs = {name: list(instances) for name, instances in old["attrs"].items()}
        changed: Entity = {}
        late: Entity = {}
        for name, raw in present.items():
            if name in ENTITY_KEYS:
                continue
            iri = expand_name(name, self.tm)
            incoming = new["attrs"][iri]
            current = attrs.get(iri, [])
            if _held(incoming, current) or (past is not None and past.holds(iri, incoming)):
                continue
            if _behind(incoming, current):
                late[name] = raw
                continue
            changed[name] = raw
            attrs[iri] = _put(current, incoming)
        gone = self._gone(entity, new, attrs)
        if late:
            step.late = late
        if changed or not set(new["type"]) <= set(old["type"]):
            step.upsert = {"id": step.eid, "type": present.get("type"), **changed}
            step.whole = present
        if gone:
            step.delete = {"id": step.eid, **gone}
        types = list(dict.fromkeys(old["type"] + new["type"]))
        return {"id": step.eid, "type": types, "attrs": {k: v for k, v in attrs.items() if v}}

    def _gone(self, entity: Entity, new: Doc, attrs: dict[str, list[Instance]]) -> Entity:
        """Null fragments for what the file takes away (removed from attrs too): the default
        instance of an attribute given as None; with replace, every instance not given (all of
        a cleared attribute's, datasetId ones too). An instance observed after the row (a time
        series' later reading) is never taken away."""
        out: Entity = {}
        cleared = {expand_name(k, self.tm): k for k, v in entity.items() if v is None}
        at = _row_time(entity, new) if cleared or self.replace else None
        for iri, instances in attrs.items():
            if self.replace:  # a cleared attribute is not in new: nothing of it is kept
                given_ids = {i.get("datasetId") for i in new["attrs"].get(iri, [])}
                kept = [i for i in instances if i.get("datasetId") in given_ids or _after(i, at)]
            elif iri in cleared:
                kept = [i for i in instances if "datasetId" in i or _after(i, at)]
            else:
                continue
            fragments = [_null(i) for i in instances if i not in kept]
            if fragments:
                out[cleared.get(iri) or self.tm.compact(iri)] = fragments
                attrs[iri] = kept
        return out


class _Recorded:
    """An entity's history in a span, by (attribute, datasetId, observedAt)."""

    def __init__(self, attrs: dict[str, list[Instance]]) -> None:
        self.at: dict[tuple[str, Any, Any], list[Instance]] = {}
        for iri, instances in attrs.items():
            for inst in instances:
                if "observedAt" in inst and "deletedAt" not in inst:  # not a deletion's record
                    key = (iri, inst.get("datasetId"), inst["observedAt"])
                    self.at.setdefault(key, []).append(_bare(inst))

    def holds(self, iri: str, incoming: list[Instance]) -> bool:
        """Every incoming instance is observed, and recorded as it is at its observedAt."""
        for inst in incoming:
            if "observedAt" not in inst:
                return False
            bare = _bare(inst)
            found = self.at.get((iri, inst.get("datasetId"), inst["observedAt"]), [])
            if not any(_same(h, bare) for h in found):
                return False
        return True


def _observes(entity: Entity) -> bool:
    """Whether a file entity gives an observedAt (cheap: read before expanding)."""
    for name, raw in entity.items():
        if name in ENTITY_KEYS:
            continue
        items = raw if isinstance(raw, list) else [raw]
        if any(isinstance(i, dict) and "observedAt" in i for i in items):
            return True
    return False


def _observed(instance: Instance) -> float | None:
    """An instance's observedAt in epoch seconds (None: it has none)."""
    at = instance.get("observedAt")
    return parse_ts(at).timestamp() if isinstance(at, str) else None


def _row_time(entity: Entity, new: Doc) -> float | None:
    """When a row was observed: its ROW_TIME, else the latest observedAt it gives (None: it
    gives none)."""
    if isinstance(entity.get(ROW_TIME), str):
        return parse_ts(entity[ROW_TIME]).timestamp()
    times = [t for insts in new["attrs"].values() for i in insts if (t := _observed(i)) is not None]
    return max(times, default=None)


def _latest(instance: Instance, current: list[Instance]) -> float | None:
    """When the current instance of the same datasetId was observed (None: there is none, or
    it has no observedAt)."""
    now = next((i for i in current if i.get("datasetId") == instance.get("datasetId")), None)
    return _observed(now) if now is not None else None


def _behind(incoming: list[Instance], current: list[Instance]) -> bool:
    """Every incoming instance is observed before the current one of its datasetId: a late or
    corrected reading, which must not take the latest one's place."""
    for inst in incoming:
        t, latest = _observed(inst), _latest(inst, current)
        if t is None or latest is None or t >= latest:
            return False
    return bool(incoming)


def _after(instance: Instance, at: float | None) -> bool:
    """A stored instance observed after the row's time."""
    if at is None:
        return False
    t = _observed(instance)
    return t is not None and t > at


def _windows(wanted: dict[str, tuple[float, float, set[str]]]) -> list[Span]:
    """Group entities by time so that about the same span is one read, at most SPAN_IDS ids."""
    out: list[Span] = []
    group: list[str] = []
    attrs: set[str] = set()
    start = end = longest = 0.0
    for eid, (s, e, names) in sorted(wanted.items(), key=lambda kv: kv[1][0]):
        widest = max(longest, e - s, SPAN_FLOOR)
        if group and (len(group) >= SPAN_IDS or max(end, e) - start > 2 * widest):
            out.append(Span(tuple(group), tuple(sorted(attrs)), start, end))
            group, attrs = [], set()
        if not group:
            start, end, longest = s, e, 0.0
        group.append(eid)
        attrs |= names
        end = max(end, e)
        longest = max(longest, e - s)
    if group:
        out.append(Span(tuple(group), tuple(sorted(attrs)), start, end))
    return out


def _bare(instance: Instance) -> Instance:
    """An instance without the members the hub sets (createdAt, instanceId, ...)."""
    out = {k: v for k, v in instance.items() if k not in SYS_KEYS}
    if "sub" in out:
        out["sub"] = {name: _bare(sub) for name, sub in out["sub"].items()}
    return out


def _held(incoming: list[Instance], stored: list[Instance]) -> bool:
    """Every incoming instance is stored as it is, under its datasetId."""
    by_dataset = {i.get("datasetId"): _bare(i) for i in stored}
    return all(_same(by_dataset.get(i.get("datasetId")), _bare(i)) for i in incoming)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python's ==, true is not 1 and false is not 0 (1 is 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _put(stored: list[Instance], incoming: list[Instance]) -> list[Instance]:
    """The instances after an update: incoming ones replace those of their datasetId."""
    out = {i.get("datasetId"): i for i in stored}
    out.update((i.get("datasetId"), i) for i in incoming)
    return list(out.values())


def _null(instance: Instance) -> Instance:
    """The merge fragment that deletes this instance."""
    key = CONTENT_KEY[instance["type"]]
    out: Instance = {"type": instance["type"], key: _NULLS.get(key, NULL_URI)}
    if "datasetId" in instance:
        out["datasetId"] = instance["datasetId"]
    return out


def rounds(steps: list[Step]) -> Iterator[list[Step]]:
    """The steps in runs without a repeated id, so each run's upserts then deletions keep the
    file's order (a row that empties a cell, then one that fills it again)."""
    run: list[Step] = []
    ids: set[str] = set()
    for step in steps:
        if step.eid and step.eid in ids:
            yield run
            run, ids = [], set()
        run.append(step)
        ids.add(step.eid)
    if run:
        yield run
