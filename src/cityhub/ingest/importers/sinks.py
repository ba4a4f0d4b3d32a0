"""Where imported entities go: straight into a SQLite store, or to a running hub over HTTP.

Both sinks take chunks of normalized entities and answer, per chunk, how many were created,
updated or already stored as the file has them, and which were rejected with which NGSI-LD
error, so the runner never needs to know which one it talks to. Both write only what the file
changes (refresh.py): an upsert (options=update), then a merge deleting what the file emptied.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson

from cityhub.ingest.headers import hub_url, tenant_headers
from cityhub.ingest.importers.prune import Links
from cityhub.ingest.importers.records import Entity, ImportFailed
from cityhub.ingest.importers.refresh import History, Planner, Span, Step, given, rounds
from cityhub.ngsild.context import ContextCache, TermMap
from cityhub.ngsild.entity import (
    ENTITY_KEYS,
    expand_attribute,
    expand_entity,
    expand_name,
    expand_types,
)
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.query.ast import TypeName, TypeOr
from cityhub.ngsild.service import EntityService
from cityhub.ngsild.temporal import TemporalService
from cityhub.ngsild.timeutil import format_ts, next_instant, parse_ts
from cityhub.settings import Settings
from cityhub.store.base import Doc, EntityQuery, StoreError, TemporalQuery

UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
MERGE_PATH = "/ngsi-ld/v1/entityOperations/merge"
QUERY_PATH = "/ngsi-ld/v1/entityOperations/query"
TEMPORAL_QUERY_PATH = "/ngsi-ld/v1/temporal/entityOperations/query"
TEMPORAL_PATH = "/ngsi-ld/v1/temporal/entities"
READ_SLICE = 1000  # ids per read of the stored entities (the hub's largest page)
DELETE_PATH = "/ngsi-ld/v1/entityOperations/delete"
ENTITIES_PATH = "/ngsi-ld/v1/entities"
LATE_SLICE = 5000  # instances per history-only write (a temporal write takes 10,000)
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


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


def term_map(context: str | None, settings: Settings) -> TermMap:
    """The core context, or the user's @context URL fetched once (mirrors apply). A failure is
    the one line ImportFailed prints, with the particulars the hub's log would have had: that
    warning came out too, through Python's last-resort handler, as a second line."""
    cache = ContextCache(timeout=settings.context_timeout, mirrors=settings.context_mirrors)
    contexts = logging.getLogger("cityhub.context")
    was, contexts.disabled = contexts.disabled, True
    try:
        return asyncio.run(cache.term_map(context, count=False))
    except NgsiLdError as exc:
        cause = exc.__cause__
        why = f" ({type(cause).__name__}: {cause})" if isinstance(cause, Exception) else ""
        raise ImportFailed(f"--context {context}: {exc.detail}{why}") from exc
    finally:
        contexts.disabled = was


def _locate(ids: Sequence[str], rejected: Sequence[str]) -> list[int]:
    """Positions of rejected ids in the chunk: a hub's 207 lists errors in item order, by id
    only, so of an id repeated in one chunk the first unplaced one is taken."""
    out: list[int] = []
    j = 0
    for eid in rejected:
        k = j
        while k < len(ids) and ids[k] != eid:
            k += 1
        if k == len(ids):  # not found in order (should not happen): take the first match
            k = ids.index(eid) if eid in ids else 0
        out.append(k)
        j = k + 1
    return out


Rejects = list[tuple[int, str, str]]  # (position in the list sent, title, detail)


class _Writer:
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
                _between(n)
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


# Entities per transaction of `import --db`, whatever --chunk-size: a hub serving the same
# file waits for the importer's lock (api/commit.py, BUSY_WAIT 5 s), and 60,000 in one
# transaction held it 12-18 s. A crash keeps the slices committed before it. Between slices
# the lock is left free DB_SLICE_GAP seconds, for a hub trying it every 20 ms to get in.
DB_SLICE = 1_000
DB_SLICE_GAP = 0.005


class DbSink(_Writer):
    """Writes through EntityService into a SQLite file: offline bulk loading, no HTTP."""

    def __init__(self, path: str, tenant: str, tm: TermMap, replace: bool = False) -> None:
        from cityhub.store.sqlite import SqliteStore
        from cityhub.store.sqlite.files import removed_on_failure, unopenable

        try:
            with removed_on_failure(path):
                self.store = SqliteStore(path)
        except (StoreError, sqlite3.Error) as exc:
            raise ImportFailed(f"cannot open the database {path}: {unopenable(path, exc)}") from exc
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
            _between(start)
            part = entities[start : start + DB_SLICE]
            out = self.service.batch_upsert(self.tenant, part, self.tm, "update")
            created += out.created
            rejects += [(start + i, t, d) for i, t, d in _rejects(out.failed, out.errors)]
        return created, rejects

    def _append(self, eid: str, body: Entity) -> tuple[str, str] | None:
        try:
            self.temporal.append(self.tenant, eid, body, self.tm)
        except NgsiLdError as err:
            return err.title, err.detail
        return None

    def _merge(self, entities: list[Entity]) -> Rejects:
        rejects: Rejects = []
        for start in range(0, len(entities), DB_SLICE):
            _between(start)
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
                yield doc["id"], _objects(doc["attrs"], names)
            if len(docs) < READ_SLICE:
                return
            offset += READ_SLICE

    def delete(self, ids: list[str]) -> Rejects:
        rejects: Rejects = []
        for start in range(0, len(ids), DB_SLICE):
            _between(start)
            out = self.service.batch_delete(self.tenant, ids[start : start + DB_SLICE])
            rejects += [(start + i, t, d) for i, t, d in _rejects(out.failed, out.errors)]
        return rejects

    def close(self) -> None:
        """Checkpoint and close the database."""
        self.store.close()


def _between(start: int) -> None:
    """Leave the write lock free a moment before every slice but the first."""
    if start:
        time.sleep(DB_SLICE_GAP)


def _rejects(failed: list[int], errors: list[tuple[str, NgsiLdError]]) -> Rejects:
    return [(i, err.title, err.detail) for i, (_, err) in zip(failed, errors, strict=True)]


class HttpSink(_Writer):
    """POSTs chunks to a hub's entityOperations/upsert?options=update, so it notifies.

    Entities are checked locally first with the hub's own validation, and the stored ones
    read by id (entityOperations/query?local=true) to send only what changed. A chunk the hub then accepts
    whole answers 201 (the created ids) or 204, which gives exact created/updated counts. A
    207 lists only successes, so those count as updated.
    """

    def __init__(
        self,
        url: str,
        tenant: str,
        tm: TermMap,
        context: str | None,
        timeout: float = 120.0,
        replace: bool = False,
    ) -> None:
        try:
            self.base = hub_url(url).removesuffix("/ngsi-ld/v1")
        except ValueError as exc:
            raise ImportFailed(f"bad --url {url!r}: {exc}") from None
        self.endpoint = self.base + UPSERT_PATH
        self.tm = tm
        self.planner = Planner(tm, replace)
        headers = tenant_headers(tenant)
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json"
        if context is not None:
            headers["Link"] = f"<{context}>; {LINK_REL}"
        self.client = httpx.Client(headers=headers, timeout=timeout)

    def send(self, entities: list[Entity]) -> ChunkResult:
        """Validate locally, then write what the valid ones change."""
        result = ChunkResult()
        good: list[int] = []
        for i, entity in enumerate(entities):
            try:
                expand_entity(given(entity), self.tm)
            except NgsiLdError as err:
                result.errors.append((i, err.title, err.detail))
            else:
                good.append(i)
        if good:
            part = ChunkResult()
            self._write([entities[i] for i in good], part)
            result.created, result.updated = part.created, part.updated
            result.errors += [(good[k], t, d) for k, t, d in part.errors]
            result.unchanged = [good[k] for k in part.unchanged]
        result.errors.sort()
        return result

    def _post(self, path: str, entities: Any, params: dict[str, str] | None = None) -> Any:
        """POST JSON to the hub; ImportFailed when it cannot be reached."""
        try:
            return self.client.post(self.base + path, params=params, content=orjson.dumps(entities))
        except httpx.HTTPError as exc:
            raise ImportFailed(f"cannot reach the hub at {self.base + path}: {exc}") from exc

    def _stored(self, ids: list[str]) -> dict[str, Doc]:
        """By id alone, so an entity stored under other types is compared too: with local=true
        a query needs no type or attrs (and asks no context source)."""
        selectors = [{"id": eid} for eid in ids]
        params = {"limit": str(READ_SLICE), "local": "true"}
        resp = self._post(QUERY_PATH, {"type": "Query", "entities": selectors}, params)
        if resp.status_code == 404:  # a tenant the hub does not have yet: nothing stored
            return {}
        if resp.status_code != 200:
            raise ImportFailed(
                f"the hub refused to read the stored entities: HTTP {resp.status_code} "
                f"{_problem(resp)}"
            )
        out: dict[str, Doc] = {}
        for entity in _json(resp):
            try:
                doc = expand_entity({k: v for k, v in entity.items() if k != "@context"}, self.tm)
            except (NgsiLdError, AttributeError):
                continue  # not comparable: the file's entity is then sent whole
            out[doc["id"]] = doc
        return out

    def _history(self, spans: list[Span]) -> History:
        """POST temporal/entityOperations/query per span, paged on past each cut (206)."""
        out: History = {}
        for span in spans:
            start, end = span.start, next_instant(span.end)
            while start < end:
                body = {
                    "type": "Query",
                    "entities": [{"id": eid} for eid in span.ids],
                    "attrs": list(span.attrs),
                    "temporalQ": {
                        "timerel": "between",
                        "timeAt": format_ts(_utc(start)),
                        "endTimeAt": format_ts(_utc(end)),
                    },
                }
                resp = self._post(TEMPORAL_QUERY_PATH, body, {"limit": str(len(span.ids))})
                if resp.status_code not in (200, 206):
                    raise ImportFailed(
                        f"the hub refused to read the stored history: HTTP {resp.status_code} "
                        f"{_problem(resp)}"
                    )
                last = self._read_history(_json(resp), out)
                if resp.status_code == 200 or last is None or last < start:
                    break
                start = next_instant(last)  # the page holds every instance up to its cut
        return out

    def _read_history(self, entities: Any, out: History) -> float | None:
        """Add a page of temporal entities to out; the latest observedAt it holds."""
        last: float | None = None
        for entity in entities if isinstance(entities, list) else []:
            if not isinstance(entity, dict) or not isinstance(entity.get("id"), str):
                continue
            attrs = out.setdefault(entity["id"], {})
            for name, items in entity.items():
                if name in ENTITY_KEYS or not isinstance(items, list):
                    continue
                iri = expand_name(name, self.tm)
                for item in items:
                    if not isinstance(item, dict) or "deletedAt" in item:
                        continue  # a deletion's record holds no reading
                    try:
                        attrs.setdefault(iri, []).extend(
                            expand_attribute(iri, item, self.tm, history=True)
                        )
                        at = parse_ts(item["observedAt"]).timestamp()
                    except (NgsiLdError, KeyError):
                        continue  # not comparable: the file's row is then written
                    last = at if last is None else max(last, at)
        return last

    def _upsert(self, entities: list[Entity]) -> tuple[list[str], Rejects]:
        resp = self._post(UPSERT_PATH, entities, {"options": "update"})
        if resp.status_code == 201:
            return [str(eid) for eid in _json(resp)], []
        if resp.status_code == 204:
            return [], []
        return [], self._rejects(resp, entities, "batch")  # a 207 does not say which are new

    def _append(self, eid: str, body: Entity) -> tuple[str, str] | None:
        """POST temporal/entities/{id}/attrs; a refusal of this entity rejects its rows."""
        resp = self._post(f"{TEMPORAL_PATH}/{quote(eid, safe=':')}/attrs", body)
        if resp.status_code == 204:
            return None
        if resp.status_code in (400, 404, 409, 422):
            problem = _json(resp) if resp.content else {}
            if isinstance(problem, dict):
                return str(problem.get("title", "")), str(problem.get("detail", ""))
        raise ImportFailed(
            f"the hub refused the history of {eid}: HTTP {resp.status_code} {_problem(resp)}"
        )

    def _merge(self, entities: list[Entity]) -> Rejects:
        resp = self._post(MERGE_PATH, entities)
        return [] if resp.status_code == 204 else self._rejects(resp, entities, "deletions")

    @staticmethod
    def _rejects(resp: httpx.Response, entities: list[Entity], what: str) -> Rejects:
        """The items a 207 rejected; any other answer stops the import."""
        if resp.status_code != 207:
            raise ImportFailed(
                f"the hub refused the {what}: HTTP {resp.status_code} {_problem(resp)}"
            )
        report = _json(resp)
        rejected = [e for e in report.get("errors", []) if isinstance(e, dict)]
        ids = [str(e.get("id", "")) for e in entities]
        places = _locate(ids, [str(e.get("entityId", "")) for e in rejected])
        out: Rejects = []
        for k, item in zip(places, rejected, strict=True):
            problem = item.get("error") or {}
            out.append((k, str(problem.get("title", "")), str(problem.get("detail", ""))))
        return out

    def _get(self, etype: str, params: dict[str, str]) -> httpx.Response | None:
        """GET /entities of a type (local only); None when the hub has no such tenant."""
        try:
            resp = self.client.get(
                self.base + ENTITIES_PATH, params={"type": etype, "local": "true", **params}
            )
        except httpx.HTTPError as exc:
            raise ImportFailed(f"cannot reach the hub at {self.base}: {exc}") from exc
        if resp.status_code == 404:  # a tenant the hub does not have: nothing stored
            return None
        if resp.status_code != 200:
            raise ImportFailed(
                f"the hub refused to list the stored {etype} entities: HTTP "
                f"{resp.status_code} {_problem(resp)}"
            )
        return resp

    def count(self, etype: str, pattern: str | None) -> int:
        """NGSILD-Results-Count of an empty page."""
        params = {"count": "true", "limit": "0", **({"idPattern": pattern} if pattern else {})}
        resp = self._get(etype, params)
        return 0 if resp is None else int(resp.headers.get("NGSILD-Results-Count", "0"))

    def listing(self, etype: str, links: tuple[str, ...]) -> Iterator[tuple[str, Links]]:
        """GET /entities?type=...&pick=id,<links>, a page of READ_SLICE at a time."""
        names = {expand_name(name, self.tm): name for name in links}
        offset = 0
        while True:
            page = {"pick": ",".join(("id", *links)), "limit": str(READ_SLICE)}
            resp = self._get(etype, {**page, "offset": str(offset)})
            if resp is None:
                return
            entities = [e for e in _json(resp) if isinstance(e, dict)]
            for entity in entities:
                attrs = {
                    expand_name(k, self.tm): v if isinstance(v, list) else [v]
                    for k, v in entity.items()
                    if k not in ENTITY_KEYS
                }
                yield str(entity.get("id")), _objects(attrs, names)
            if len(entities) < READ_SLICE:
                return
            offset += READ_SLICE

    def delete(self, ids: list[str]) -> Rejects:
        rejects: Rejects = []
        for start in range(0, len(ids), READ_SLICE):
            part = ids[start : start + READ_SLICE]
            resp = self._post(DELETE_PATH, part)
            if resp.status_code != 204:
                found = self._rejects(resp, [{"id": eid} for eid in part], "deletions")
                rejects += [(start + k, t, d) for k, t, d in found]
        return rejects

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def _objects(attrs: dict[str, Any], names: dict[str, str]) -> Links:
    """The ids each named relationship points at (its instances' objects)."""
    out: Links = {}
    for iri, name in names.items():
        for inst in attrs.get(iri, []):
            target = inst.get("object") if isinstance(inst, dict) else None
            if isinstance(target, str):
                out.setdefault(name, []).append(target)
    return out


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise ImportFailed(
            f"the hub answered HTTP {resp.status_code} with a non-JSON body"
        ) from exc


def _problem(resp: httpx.Response) -> str:
    """The title and detail of a ProblemDetails answer, or the start of the body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        return f"{body.get('title', '')}: {body.get('detail', '')}".strip(": ")
    return str(body)[:200]
