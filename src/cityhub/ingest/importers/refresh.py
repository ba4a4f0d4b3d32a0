"""What a (re-)import asks of the hub: only what the file changes (docs/decisions/028).

An entity from a file is compared with the stored one, both expanded: attributes whose every
instance is already stored as it is (system members aside) are not sent, so an unchanged
file writes no temporal instance. An attribute the file gives as None (an emptied CSV cell, a
null GeoJSON property) is deleted; with replace, so is every attribute the file does not give.
Both sinks carry out the same plan: an upsert (options=update) of what changed, then a merge
whose null fragments delete what went.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cityhub.ingest.importers.records import Entity
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
from cityhub.store.base import Doc

# what a merge body holds to delete one instance, per content member (see service.deletion)
_NULLS: dict[str, Any] = {
    "languageMap": {"@none": NULL_URI},
    "valueList": [NULL_URI],
    "objectList": [NULL_URI],
}


@dataclass
class Step:
    """One file entity's writes: the upsert (id, type, changed attributes) and the merge
    deleting attributes; both None when the hub already holds what the file says."""

    index: int  # in the chunk
    eid: str
    upsert: Entity | None = None
    delete: Entity | None = None
    error: NgsiLdError | None = None
    whole: Entity | None = None  # all the file gives, when upsert holds only the changes


def given(entity: Entity) -> Entity:
    """The entity without the attributes the file says have no value (None)."""
    return {k: v for k, v in entity.items() if v is not None}


class Planner:
    """Compares a chunk of file entities with the stored ones, in file order."""

    def __init__(self, tm: TermMap, replace: bool = False) -> None:
        self.tm = tm
        self.replace = replace

    def plan(self, entities: list[Entity], stored: dict[str, Doc]) -> list[Step]:
        """One step per entity; a repeated id is compared with what its earlier row wrote."""
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
                    docs[key] = self._compare(step, entity, old)
                    created.pop(key, None)
                except NgsiLdError as err:
                    step.error = err
            steps.append(step)
        return steps

    def _expanded(self, entity: Entity) -> Doc | None:
        try:
            return expand_entity(entity, self.tm)
        except NgsiLdError:
            return None  # that row is rejected; the repeat is then sent whole

    def _compare(self, step: Step, entity: Entity, old: Doc) -> Doc:
        """Fill the step from the differences; return the entity as the hub will hold it."""
        present = given(entity)
        new = expand_entity(present, self.tm)
        attrs = {name: list(instances) for name, instances in old["attrs"].items()}
        changed: Entity = {}
        for name, raw in present.items():
            if name in ENTITY_KEYS:
                continue
            iri = expand_name(name, self.tm)
            if not _held(new["attrs"][iri], attrs.get(iri, [])):
                changed[name] = raw
                attrs[iri] = _put(attrs.get(iri, []), new["attrs"][iri])
        gone = self._gone(entity, new, attrs)
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
        a cleared attribute's, datasetId ones too)."""
        out: Entity = {}
        cleared = {expand_name(k, self.tm): k for k, v in entity.items() if v is None}
        for iri, instances in attrs.items():
            if self.replace:  # a cleared attribute is not in new: nothing of it is kept
                given_ids = {i.get("datasetId") for i in new["attrs"].get(iri, [])}
                kept = [i for i in instances if i.get("datasetId") in given_ids]
            elif iri in cleared:
                kept = [i for i in instances if "datasetId" in i]
            else:
                continue
            fragments = [_null(i) for i in instances if i not in kept]
            if fragments:
                out[cleared.get(iri) or self.tm.compact(iri)] = fragments
                attrs[iri] = kept
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
