"""What both sinks share: a chunk's outcome, the Sink protocol, and the Writer that carries out
refresh.py's plan through the primitives each sink implements."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from cityhub.ingest.importers.prune import Links
from cityhub.ingest.importers.records import Entity
from cityhub.ingest.importers.refresh import History, Planner, Span, Step, rounds
from cityhub.ngsild.entity import ENTITY_KEYS
from cityhub.store.base import Doc

READ_SLICE = 1000  # ids per read of the stored entities (the hub's largest page)
LATE_SLICE = 5000  # instances per history-only write (a temporal write takes 10,000)
# Between two writes of one chunk the write lock is left free GAP seconds, for a hub serving
# the same file (`import --db`), which tries it every 20 ms, to get in.
GAP = 0.005


@dataclass
class ChunkResult:
    """What happened to one chunk: counts, and (index in chunk, error title, detail) per reject."""

    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)  # indexes: stored as the file has them


class Sink(Protocol):
    """Takes chunks of entities; a failure that stops the import raises ImportFailed."""

    def send(self, entities: list[Entity]) -> ChunkResult:
        """Write what one chunk changes (an attribute given as None is deleted)."""
        ...

    def listing(self, etype: str, links: tuple[str, ...]) -> Iterator[tuple[str, Links]]:
        """(id, the objects of these relationships) of every stored entity of a type."""
        ...

    def count(self, etype: str, pattern: str | None) -> int:
        """How many stored entities have this type (and an id matching the pattern)."""
        ...

    def delete(self, ids: list[str]) -> Rejects:
        """Delete these entities (a prune): the refusals."""
        ...

    def close(self) -> None:
        """Release the database or the connection."""
        ...


Rejects = list[tuple[int, str, str]]  # (position in the list sent, title, detail)


class Writer:
    """The plan of refresh.py carried out by the primitives a sink implements."""

    planner: Planner

    def _stored(self, ids: list[str]) -> dict[str, Doc]:
        """The stored entities of these ids, whatever their types, expanded (absent ones left
        out)."""
        raise NotImplementedError

    def _history(self, spans: list[Span]) -> History:
        """The instances observed in each span, of its entities and attributes, expanded."""
        raise NotImplementedError

    def _upsert(self, entities: list[Entity]) -> tuple[list[str], Rejects]:
        """Upsert with options=update: the ids it created, and the rejections."""
        raise NotImplementedError

    def _append(self, eid: str, body: Entity) -> tuple[str, str] | None:
        """Add instances to an entity's history only: the rejection's title and detail."""
        raise NotImplementedError

    def _merge(self, entities: list[Entity]) -> Rejects:
        """Merge (null fragments delete): the rejections."""
        raise NotImplementedError

    def _write(self, entities: list[Entity], result: ChunkResult) -> None:
        """Plan the chunk against the stored entities and write the plan, in file order."""
        ids = list(dict.fromkeys(e["id"] for e in entities if isinstance(e.get("id"), str)))
        stored: dict[str, Doc] = {}
        for i in range(0, len(ids), READ_SLICE):
            stored.update(self._stored(ids[i : i + READ_SLICE]))
        steps = self.planner.plan(entities, stored, self._history)
        for step in steps:
            if step.error is not None:
                result.errors.append((step.index, step.error.title, step.error.detail))
            elif step.unchanged:
                result.unchanged.append(step.index)
        for run in rounds([s for s in steps if s.error is None]):
            self._write_run(run, result)
        rejected = {i for i, _, _ in result.errors}
        self._write_late(
            [s for s in steps if s.late is not None and s.index not in rejected], result
        )

    def _write_late(self, steps: list[Step], result: ChunkResult) -> None:
        """Readings observed before the entity's own go to its history only (refresh.py), a
        write per entity (and LATE_SLICE instances), once the chunk's upserts created it."""
        by_entity: dict[str, list[Step]] = {}
        for s in steps:
            by_entity.setdefault(s.eid, []).append(s)
        n = 0
        for eid, rows in by_entity.items():
            for part, body in _late_bodies(rows):
                between(n)
                n += 1
                error = self._append(eid, body)
                if error is not None:
                    result.errors += [(s.index, *error) for s in part]
                else:  # a step that also had an upsert or a merge was counted with it
                    result.updated += sum(1 for s in part if s.upsert is None and s.delete is None)

    def _write_run(self, run: list[Step], result: ChunkResult) -> None:
        ups = [s for s in run if s.upsert is not None]
        failed: set[int] = set()
        if ups:
            created, rejects = self._upsert([s.upsert for s in ups if s.upsert is not None])
            failed = {ups[k].index for k, _, _ in rejects}
            result.errors += [(ups[k].index, t, d) for k, t, d in rejects]
            result.created += len(created)
            result.updated += len(ups) - len(rejects) - len(created)
            failed |= self._recreate(ups, set(created), failed, result)
        dels = [s for s in run if s.delete is not None and s.index not in failed]
        if dels:
            rejects = self._merge([s.delete for s in dels if s.delete is not None])
            result.errors += [(dels[k].index, t, d) for k, t, d in rejects]
            counted = {s.index for s in ups} | {dels[k].index for k, _, _ in rejects}
            result.updated += sum(1 for s in dels if s.index not in counted)

    def _recreate(
        self, ups: list[Step], created: set[str], failed: set[int], result: ChunkResult
    ) -> set[int]:
        """Complete an entity that an upsert of only its changes created (another client had
        deleted it since the read), so it holds what the file gives; returns their indexes."""
        again: list[Step] = []
        rest: list[Entity] = []
        for s in ups:
            if s.whole is None or s.upsert is None or s.eid not in created or s.index in failed:
                continue
            again.append(s)
            rest.append({k: v for k, v in s.whole.items() if k in ENTITY_KEYS or k not in s.upsert})
        if rest:
            _, rejects = self._upsert(rest)
            result.errors += [(again[k].index, t, d) for k, t, d in rejects]
        return {s.index for s in again}  # re-created whole: nothing of theirs to delete


def _late_bodies(rows: list[Step]) -> Iterator[tuple[list[Step], Entity]]:
    """An entity's late readings as temporal bodies of at most LATE_SLICE instances."""
    part: list[Step] = []
    body: Entity = {}
    size = 0
    for s in rows:
        late = s.late or {}
        n = sum(len(raw) if isinstance(raw, list) else 1 for raw in late.values())
        if part and size + n > LATE_SLICE:
            yield part, body
            part, body, size = [], {}, 0
        part.append(s)
        size += n
        for name, raw in late.items():
            body.setdefault(name, []).extend(raw if isinstance(raw, list) else [raw])
    if part:
        yield part, body


def between(start: int) -> None:
    """Leave the write lock free a moment before every slice but the first."""
    if start:
        time.sleep(GAP)


def objects(attrs: dict[str, Any], names: dict[str, str]) -> Links:
    """The ids each named relationship points at (its instances' objects), or a named
    Property lists (a GtfsAgency's feedAgencies)."""
    out: Links = {}
    for iri, name in names.items():
        for inst in attrs.get(iri, []):
            if not isinstance(inst, dict):
                continue
            target, value = inst.get("object"), inst.get("value")
            if isinstance(target, str):
                out.setdefault(name, []).append(target)
            elif isinstance(value, list):
                out.setdefault(name, []).extend(v for v in value if isinstance(v, str))
    return out
