"""`import --db`: the plan written through EntityService into a SQLite file, no HTTP."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from cityhub.ingest.importers.claimsguard import FreshClaims
from cityhub.ingest.importers.prune import Links
from cityhub.ingest.importers.records import Entity, ImportFailed
from cityhub.ingest.importers.refresh import History, Planner, Span
from cityhub.ingest.importers.writer import (
    READ_SLICE,
    ChunkResult,
    Rejects,
    Writer,
    between,
    objects,
)
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import expand_name, expand_types
from cityhub.ngsild.entity_bytes import DEFAULT_MAX_ENTITY_BYTES
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.query.ast import TypeName, TypeOr
from cityhub.ngsild.service import EntityService
from cityhub.ngsild.temporal import TemporalService
from cityhub.ngsild.timeutil import next_instant
from cityhub.store.base import Doc, EntityQuery, StoreError, TemporalQuery

# Entities per transaction of `import --db`, whatever --chunk-size: a hub serving the same
# file waits for the importer's lock (api/commit.py, BUSY_WAIT 5 s), and 60,000 in one
# transaction held it 12-18 s. A crash keeps the slices committed before it; between slices
# the lock is left free (writer.GAP).
DB_SLICE = 1_000


class DbSink(Writer):
    """Writes through EntityService into a SQLite file: offline bulk loading, no HTTP."""

    def __init__(
        self,
        path: str,
        tenant: str,
        tm: TermMap,
        replace: bool = False,
        max_entity_bytes: int = DEFAULT_MAX_ENTITY_BYTES,
    ) -> None:
        from cityhub.store.sqlite import SqliteStore
        from cityhub.store.sqlite.files import removed_on_failure, unopenable

        try:
            with removed_on_failure(path):
                self.store = SqliteStore(path, max_entity_bytes=max_entity_bytes)
        except (StoreError, sqlite3.Error) as exc:
            raise ImportFailed(f"cannot open the database {path}: {unopenable(path, exc)}") from exc
        # exclusively registered attributes are refused here too (decision 083), as the
        # registrations stand when each slice is written
        self.claims = self.store.guard = FreshClaims(self.store)
        self.service = EntityService(self.store)
        self.temporal = TemporalService(self.store)
        self.tenant = tenant
        self.tm = tm
        self.planner = Planner(tm, replace)

    def send(self, entities: list[Entity]) -> ChunkResult:
        """Batch upserts (options=update) and merges, one transaction each."""
        result = ChunkResult()
        try:
            self._write(entities, result)
        except (StoreError, sqlite3.Error) as exc:  # StoreFull: the disk is full
            raise ImportFailed(f"the database {self.store.path} failed: {exc}") from exc
        result.errors.sort()
        return result

    def _stored(self, ids: list[str]) -> dict[str, Doc]:
        query = EntityQuery(ids=tuple(ids), limit=len(ids))
        docs, _ = self.store.query(self.tenant, query)
        return {d["id"]: d for d in docs}

    def _history(self, spans: list[Span]) -> History:
        out: History = {}
        for span in spans:
            query = TemporalQuery(
                entities=EntityQuery(ids=span.ids, limit=len(span.ids)),
                attrs=span.attrs,
                timerel="between",
                time_at=span.start,
                end_time_at=next_instant(span.end),
                with_instances=True,
            )
            rows, _ = self.store.temporal(self.tenant, query)
            for header, attrs in rows:
                out[header["id"]] = attrs
        return out

    def _upsert(self, entities: list[Entity]) -> tuple[list[str], Rejects]:
        created: list[str] = []
        rejects: Rejects = []
        for start in range(0, len(entities), DB_SLICE):  # one transaction each
            between(start)
            part = entities[start : start + DB_SLICE]
            self.claims.next_transaction()
            out = self.service.batch_upsert(self.tenant, part, self.tm, "update")
            created += out.created
            rejects += [(start + i, t, d) for i, t, d in _rejects(out.failed, out.errors)]
        return created, rejects

    def _append(self, eid: str, body: Entity) -> tuple[str, str] | None:
        try:
            self.claims.next_transaction()
            self.temporal.append(self.tenant, eid, body, self.tm)
        except NgsiLdError as err:
            return err.title, err.detail
        return None

    def _merge(self, entities: list[Entity]) -> Rejects:
        rejects: Rejects = []
        for start in range(0, len(entities), DB_SLICE):
            between(start)
            self.claims.next_transaction()
            out = self.service.batch_merge(self.tenant, entities[start : start + DB_SLICE], self.tm)
            rejects += [(start + i, t, d) for i, t, d in _rejects(out.failed, out.errors)]
        return rejects

    def _types(self, etype: str) -> TypeOr:
        return TypeOr(tuple(TypeName(t) for t in expand_types(etype, self.tm)))

    def count(self, etype: str, pattern: str | None) -> int:
        query = EntityQuery(types=self._types(etype), id_pattern=pattern, limit=0, count=True)
        return self.store.query(self.tenant, query)[1] or 0

    def listing(self, etype: str, links: tuple[str, ...]) -> Iterator[tuple[str, Links]]:
        names = {expand_name(name, self.tm): name for name in links}
        types = self._types(etype)
        offset = 0
        while True:
            query = EntityQuery(types=types, limit=READ_SLICE, offset=offset)
            docs, _ = self.store.query(self.tenant, query)
            for doc in docs:
                yield doc["id"], objects(doc["attrs"], names)
            if len(docs) < READ_SLICE:
                return
            offset += READ_SLICE

    def delete(self, ids: list[str]) -> Rejects:
        rejects: Rejects = []
        for start in range(0, len(ids), DB_SLICE):
            between(start)
            out = self.service.batch_delete(self.tenant, ids[start : start + DB_SLICE])
            rejects += [(start + i, t, d) for i, t, d in _rejects(out.failed, out.errors)]
        return rejects

    def close(self) -> None:
        """Checkpoint and close the database."""
        self.store.close()


def _rejects(failed: list[int], errors: list[tuple[str, NgsiLdError]]) -> Rejects:
    return [(i, err.title, err.detail) for i, (_, err) in zip(failed, errors, strict=True)]
