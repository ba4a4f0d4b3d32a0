"""Provisioning use-cases: create, read, change and delete data sources and devices.

Each change is checked in full first (shape, source, mapping against NGSI-LD, @context), then
written through the app's group committer: the record, and the entities whose static
attributes, id, type or @context changed, in slices of the batch API's bounds with the record
in the last. The in-memory registry follows only after the write committed.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from cityhub.api.commit import batch_weigher, between_slices, entity_slices
from cityhub.ingest.agent import records
from cityhub.ingest.agent.mapping import check_effective, sample_attributes
from cityhub.ingest.agent.registry import DEVICE, SOURCE, Registry, Target
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import expand_entity
from cityhub.ngsild.errors import (
    AlreadyExists,
    BadRequestData,
    Conflict,
    NgsiLdError,
    ResourceNotFound,
)

Doc = dict[str, Any]
SAMPLE_ID = "urn:ngsi-ld:Sample:1"
CHECK_TURN = 100  # devices of a changed source checked between two turns of the event loop
_Change = TypeVar("_Change", bound=Callable[..., Awaitable[Any]])


def _one_at_a_time(method: _Change) -> _Change:
    """Run a provisioning change alone: each checks the registry, awaits its commit, then
    updates the registry, so two changes interleaved at the await both passed the check
    (three tenants creating one device id with one key all got 201, and its messages went
    to the last)."""

    @functools.wraps(method)
    async def serial(self: Provisioning, *args: Any) -> Any:
        async with self._changing:
            return await method(self, *args)

    return cast(_Change, serial)


class Provisioning:
    """Sources and devices, kept in the store and mirrored in the registry."""

    def __init__(self, registry: Registry, app_state: Any) -> None:
        self.registry = registry
        self.state = app_state  # store, committer, entities, contexts: the API's own
        self._changing = asyncio.Lock()

    # -- sources ----------------------------------------------------------------------------------
    def list_sources(self, tenant: str, limit: int, offset: int) -> tuple[list[Doc], int]:
        """A page of a tenant's sources (creation order) and their total."""
        docs = [d for (t, _), d in self.registry.sources.items() if t == tenant]
        return [records.view(d, tenant) for d in docs[offset : offset + limit]], len(docs)

    def get_source(self, tenant: str, sid: str) -> Doc:
        """One source, without its key."""
        return records.view(self._source(tenant, sid), tenant)

    def _source(self, tenant: str, sid: str) -> Doc:
        doc = self.registry.sources.get((tenant, sid))
        if doc is None:
            raise ResourceNotFound(f"no source {sid!r} in this tenant")
        return doc

    @_one_at_a_time
    async def create_source(self, tenant: str, body: Any) -> tuple[Doc, str | None]:
        """A new source, and its API key when the hub generated it (shown this once)."""
        doc, key = records.new_source(body)
        sid = doc["id"]
        if (tenant, sid) in self.registry.sources:
            raise AlreadyExists(f"source {sid!r} already exists")
        await self._check_source(doc)
        store = self.state.store

        def job() -> None:
            if not store.resource_create(SOURCE, tenant, sid, doc):
                raise AlreadyExists(f"source {sid!r} already exists")

        await self.state.committer.run(job)
        self.registry.put_source(tenant, doc, {})
        return records.view(doc, tenant), key

    @_one_at_a_time
    async def update_source(self, tenant: str, sid: str, body: Any) -> Doc:
        """Change a source; its devices follow (new key, mapping, @context, static attributes),
        and the entities of those whose static attributes, id, type or @context changed are
        written again."""
        old = self._source(tenant, sid)
        doc = records.changed_source(old, body)
        if doc == old:  # nothing new: nothing to check or write
            return records.view(doc, tenant)
        await self._check_source(doc)
        targets: dict[str, Target] = {}
        entities: list[tuple[Doc, TermMap]] = []
        for n, dev in enumerate(self.registry.dependants(tenant, sid)):
            if n and not n % CHECK_TURN:  # 5,000 devices checked in one go held the loop
                await asyncio.sleep(0)
            try:
                target = self.registry.resolve(tenant, dev, source=doc)
                entity = await self._changed_entity(tenant, target)
            except BadRequestData as exc:
                raise BadRequestData(f"device {dev['id']!r} of this source: {exc.detail}") from exc
            if self.registry.clash(tenant, target):
                raise Conflict(f"device {dev['id']!r} would share its id and key with another")
            targets[dev["id"]] = target
            if entity is not None:
                entities.append(entity)
        store = self.state.store

        def record() -> None:
            if store.resource_update(SOURCE, tenant, sid, lambda _old: doc) is None:
                raise ResourceNotFound(f"no source {sid!r} in this tenant")

        await self._write(tenant, entities, record)
        self.registry.put_source(tenant, doc, targets)
        return records.view(doc, tenant)

    @_one_at_a_time
    async def delete_source(self, tenant: str, sid: str) -> None:
        """Delete a source that no device uses any more."""
        self._source(tenant, sid)
        users = self.registry.dependants(tenant, sid)
        if users:
            names = ", ".join(repr(d["id"]) for d in users[:5])
            raise Conflict(f"source {sid!r} still has {len(users)} device(s) ({names}, …)")
        store = self.state.store
        await self.state.committer.run(lambda: store.resource_delete(SOURCE, tenant, sid))
        self.registry.drop_source(tenant, sid)

    async def _check_source(self, doc: Doc) -> None:
        """A source's mapping must make valid NGSI-LD on its own."""
        mapping = doc.get("mapping", {})
        check_effective(mapping)
        tm = await self.state.contexts.term_map(doc.get("ldContext"))
        sample = {"id": SAMPLE_ID, "type": doc.get("entityType", "Sample")}
        _validate({**sample, **sample_attributes(mapping)}, tm)

    # -- devices ----------------------------------------------------------------------------------
    def list_devices(self, tenant: str, limit: int, offset: int) -> tuple[list[Doc], int]:
        """A page of a tenant's devices (creation order) and their total."""
        docs = [d for (t, _), d in self.registry.devices.items() if t == tenant]
        return [records.view(d, tenant) for d in docs[offset : offset + limit]], len(docs)

    def get_device(self, tenant: str, did: str) -> Doc:
        """One device, without its key."""
        return records.view(self._device(tenant, did), tenant)

    def _device(self, tenant: str, did: str) -> Doc:
        doc = self.registry.devices.get((tenant, did))
        if doc is None:
            raise ResourceNotFound(f"no device {did!r} in this tenant")
        return doc

    @_one_at_a_time
    async def create_device(self, tenant: str, body: Any) -> tuple[Doc, str | None]:
        """A new device and its entity; its API key when the hub generated it (shown once)."""
        sid = body.get("source") if isinstance(body, dict) else None
        source = self.registry.sources.get((tenant, sid)) if isinstance(sid, str) else None
        if sid is not None and source is None:
            raise BadRequestData(f"source {sid!r} does not exist in this tenant")
        doc, key = records.new_device(body, source)
        did = doc["id"]
        if (tenant, did) in self.registry.devices:
            raise AlreadyExists(f"device {did!r} already exists")
        target = self._target(tenant, doc)
        entity, tm = await self._entity(target)
        store = self.state.store

        def job() -> None:
            if not store.resource_create(DEVICE, tenant, did, doc):
                raise AlreadyExists(f"device {did!r} already exists")
            try:
                self._upsert(tenant, entity, tm)
            except BaseException:
                store.resource_delete(DEVICE, tenant, did)
                raise

        await self.state.committer.run(job)
        self.registry.put_device(tenant, doc, target)
        return records.view(doc, tenant), key

    @_one_at_a_time
    async def update_device(self, tenant: str, did: str, body: Any) -> Doc:
        """Change a device; its entity gets the (new) static attributes if they, its id, type
        or @context changed."""
        old = self._device(tenant, did)
        doc = records.changed_device(old, body)
        if doc == old:  # nothing new: nothing to check or write
            return records.view(doc, tenant)
        target = self._target(tenant, doc)
        entity = await self._changed_entity(tenant, target)
        store = self.state.store

        def record() -> None:
            if store.resource_update(DEVICE, tenant, did, lambda _old: doc) is None:
                raise ResourceNotFound(f"no device {did!r} in this tenant")

        await self._write(tenant, [entity] if entity is not None else [], record)
        self.registry.put_device(tenant, doc, target)
        return records.view(doc, tenant)

    @_one_at_a_time
    async def delete_device(self, tenant: str, did: str) -> None:
        """Delete a device (its entity and history stay)."""
        self._device(tenant, did)
        store = self.state.store
        await self.state.committer.run(lambda: store.resource_delete(DEVICE, tenant, did))
        self.registry.drop_device(tenant, did)

    def _target(self, tenant: str, doc: Doc) -> Target:
        target = self.registry.resolve(tenant, doc)
        if self.registry.clash(tenant, target):
            raise Conflict(
                f"a device {doc['id']!r} with the same API key is provisioned already; "
                "give this one its own key"
            )
        return target

    # -- entities ---------------------------------------------------------------------------------
    async def _entity(self, target: Target) -> tuple[Doc, TermMap]:
        """The device's entity with its static attributes; 400 when the mapping cannot make
        valid NGSI-LD for it (checked with a sample value for every rule)."""
        tm = await self.state.contexts.term_map(target.context)
        head = {"id": target.entity_id, "type": target.entity_type}
        _validate({**head, **sample_attributes(target.mapping_doc)}, tm)
        return {**head, **target.mapping.static}, tm

    async def _changed_entity(self, tenant: str, target: Target) -> tuple[Doc, TermMap] | None:
        """The entity a changed device must write (None: what shapes it is as before: a
        description, key, protocol or source change writes only the record, and sends no
        notification), checked as _entity checks it unless its mapping did not change."""
        old = self.registry.target(tenant, target.device)
        if old is not None and _checked(old) == _checked(target):
            return None
        entity = await self._entity(target)
        return None if old is not None and _shape(old) == _shape(target) else entity

    async def _write(
        self, tenant: str, entities: list[tuple[Doc, TermMap]], record: Callable[[], None]
    ) -> None:
        """Upsert the entities a slice at a time (the batch API's bounds, `entity_slices`),
        each slice its own committer job with loop turns between, the record in the last one:
        one job for a source of 5,000 devices held every other request for seconds. Static
        attributes are idempotent, so a failure after some slices converges on a retry."""
        items = [entity for entity, _ in entities]
        tms = {id(entity): tm for entity, tm in entities}

        def tm_of(item: Any) -> TermMap:
            return tms[id(item)]

        upsert = self.state.entities.batch_upsert
        parts = list(entity_slices(items, batch_weigher(self.state, tenant, tm_of)))
        for n, (start, end, size) in enumerate(parts):
            if n:
                await between_slices()

            def job(part: list[Doc] = items[start:end], last: bool = n == len(parts) - 1) -> None:
                if part:
                    outcome = upsert(tenant, part, tm_of, mode="update")
                    if outcome.errors:
                        raise outcome.errors[0][1]
                if last:
                    record()

            await self.state.committer.run(job, size=size)

    def _upsert(self, tenant: str, entity: Doc, tm: TermMap) -> None:
        """Create the entity or add the static attributes to it (inside a committer job)."""
        outcome = self.state.entities.batch_upsert(tenant, [entity], tm, mode="update")
        if outcome.errors:
            raise outcome.errors[0][1]


def _checked(target: Target) -> tuple[Any, ...]:
    """What _entity checks of a device: unchanged, it needs no new check."""
    return (target.entity_id, target.entity_type, target.context, target.mapping_doc)


def _shape(target: Target) -> tuple[Any, ...]:
    """What the entity a device writes at provisioning is made of."""
    return (target.entity_id, target.entity_type, target.context, target.mapping.static)


def _validate(entity: Doc, tm: TermMap) -> None:
    try:
        expand_entity(entity, tm)
    except NgsiLdError as exc:
        raise BadRequestData(f"the mapping does not make valid NGSI-LD: {exc.detail}") from exc
