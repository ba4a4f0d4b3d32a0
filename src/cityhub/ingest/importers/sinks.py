"""Where imported entities go: straight into a SQLite store, or to a running hub over HTTP.

Both sinks take chunks of normalized entities and answer, per chunk, how many were created
and updated and which were rejected with which NGSI-LD error, so the runner never needs to
know which one it talks to.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from cityhub.ingest.importers.records import Entity, ImportFailed
from cityhub.ngsild.context import ContextCache, TermMap
from cityhub.ngsild.entity import expand_entity
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.service import EntityService
from cityhub.settings import Settings
from cityhub.store.base import StoreError

UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


@dataclass
class ChunkResult:
    """What happened to one chunk: counts, and (index in chunk, error title, detail) per reject."""

    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)


class Sink(Protocol):
    """Takes chunks of entities; a failure that stops the import raises ImportFailed."""

    def send(self, entities: list[Entity]) -> ChunkResult:
        """Upsert one chunk (existing entities get the given attributes overwritten)."""
        ...

    def close(self) -> None:
        """Release the database or the connection."""
        ...


def term_map(context: str | None, settings: Settings) -> TermMap:
    """The core context, or the user's @context URL fetched once (mirrors apply)."""
    cache = ContextCache(timeout=settings.context_timeout, mirrors=settings.context_mirrors)
    try:
        return asyncio.run(cache.term_map(context, count=False))
    except NgsiLdError as exc:
        raise ImportFailed(f"--context {context}: {exc.detail}") from exc


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


class DbSink:
    """Writes through EntityService into a SQLite file: offline bulk loading, no HTTP."""

    def __init__(self, path: str, tenant: str, tm: TermMap) -> None:
        from cityhub.store.sqlite import SqliteStore

        try:
            self.store = SqliteStore(path)
        except (StoreError, sqlite3.Error) as exc:
            raise ImportFailed(f"cannot open the database {path}: {exc}") from exc
        self.service = EntityService(self.store)
        self.tenant = tenant
        self.tm = tm

    def send(self, entities: list[Entity]) -> ChunkResult:
        """One batch upsert (options=update), one transaction per chunk."""
        try:
            out = self.service.batch_upsert(self.tenant, entities, self.tm, "update")
        except (StoreError, sqlite3.Error) as exc:  # StoreFull: the disk is full
            raise ImportFailed(f"the database {self.store.path} failed: {exc}") from exc
        errors = [
            (i, err.title, err.detail) for i, (_, err) in zip(out.failed, out.errors, strict=True)
        ]
        return ChunkResult(len(out.created), len(out.success) - len(out.created), errors)

    def close(self) -> None:
        """Checkpoint and close the database."""
        self.store.close()


class HttpSink:
    """POSTs chunks to a hub's entityOperations/upsert?options=update, so it notifies.

    Entities are checked locally first with the hub's own validation: a chunk the hub then
    accepts whole answers 201 (the created ids) or 204, which gives exact created/updated
    counts. A 207 lists only successes, so those count as updated.
    """

    def __init__(
        self, url: str, tenant: str, tm: TermMap, context: str | None, timeout: float = 120.0
    ) -> None:
        base = url.rstrip("/")
        base = base.removesuffix("/ngsi-ld/v1")
        if not base.startswith(("http://", "https://")):
            raise ImportFailed(f"--url must start with http:// or https://, got {url!r}")
        self.endpoint = base + UPSERT_PATH
        self.tm = tm
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if tenant:
            headers["NGSILD-Tenant"] = tenant
        if context is not None:
            headers["Link"] = f"<{context}>; {LINK_REL}"
        self.client = httpx.Client(headers=headers, timeout=timeout)

    def send(self, entities: list[Entity]) -> ChunkResult:
        """Validate locally, POST the valid ones, read the hub's verdict."""
        result = ChunkResult()
        good: list[int] = []
        for i, entity in enumerate(entities):
            try:
                expand_entity(entity, self.tm)
            except NgsiLdError as err:
                result.errors.append((i, err.title, err.detail))
            else:
                good.append(i)
        if not good:
            return result
        body = orjson.dumps([entities[i] for i in good])
        try:
            resp = self.client.post(self.endpoint, params={"options": "update"}, content=body)
        except httpx.HTTPError as exc:
            raise ImportFailed(f"cannot reach the hub at {self.endpoint}: {exc}") from exc
        if resp.status_code == 201:
            created = len(_json(resp))
            result.created, result.updated = created, len(good) - created
        elif resp.status_code == 204:
            result.updated = len(good)
        elif resp.status_code == 207:
            report = _json(resp)
            rejected = [e for e in report.get("errors", []) if isinstance(e, dict)]
            ids = [str(entities[i].get("id", "")) for i in good]
            places = _locate(ids, [str(e.get("entityId", "")) for e in rejected])
            for k, item in zip(places, rejected, strict=True):
                problem = item.get("error") or {}
                result.errors.append(
                    (good[k], str(problem.get("title", "")), str(problem.get("detail", "")))
                )
            result.updated = len(good) - len(rejected)
        else:
            raise ImportFailed(
                f"the hub refused the batch: HTTP {resp.status_code} {_problem(resp)}"
            )
        result.errors.sort()
        return result

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


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
