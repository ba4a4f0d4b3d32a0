"""The NGSI-LD use-cases on entities, written against the Store contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cityhub.gcpause import collector_paused
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import (
    CONTENT_KEY,
    ENTITY_KEYS,
    NULL_URI,
    Attrs,
    Instance,
    check_body_id,
    check_uri,
    entity_object,
    expand_attrs,
    expand_entity,
    expand_instance,
    expand_name,
    expand_scope,
    expand_types,
    is_geo_type,
    unaliased,
)
from cityhub.ngsild.errors import (
    AlreadyExists,
    BadRequestData,
    NgsiLdError,
    ResourceNotFound,
)
from cityhub.ngsild.languages import ranked_languages
from cityhub.ngsild.late import split_late
from cityhub.ngsild.merge import (
    emptied,
    find,
    merge_instance,
    stamp,
    without_nulls,
)
from cityhub.ngsild.merge_forms import PLAIN, MergeForm, as_fragment, fill_observed_at
from cityhub.ngsild.query.ast import TypeNode
from cityhub.ngsild.query.evaluate import matches_types
from cityhub.ngsild.timeutil import now_iso
from cityhub.store.base import Doc, EntityExists, EntityQuery, Store, WriteTx


@dataclass
class AttrOutcome:
    """Which attributes an attribute operation changed and which it refused, and why."""

    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class BatchOutcome:
    """Per-entity results of a batch operation."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    # the item index of each error: an id can repeat in one batch, so ids cannot place them
    failed: list[int] = field(default_factory=list)

    def extend(self, other: BatchOutcome, offset: int) -> None:
        """Add the results of a later part of the same batch, which starts at item offset."""
        self.success += other.success
        self.errors += other.errors
        self.created += other.created
        self.failed += [offset + i for i in other.failed]


class EntityService:
    """Create, read, update and delete entities, recording every change in history."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _record(
        tx: WriteTx, doc: Doc, attrs: dict[str, list[Instance]], rescoped: bool = False
    ) -> None:
        """Append what was written to the temporal evolution (one round of statements), with
        the entity's scope, which scopeQ on temporal queries reads (decision 029); the store
        gives each instance its instanceId. A write that changed only the scope (`rescoped`)
        records just that."""
        if any(attrs.values()) or rescoped:
            tx.add_history_many(doc["id"], doc["type"], attrs, doc.get("scope"))

    @staticmethod
    def _stamp_all(attrs: Attrs, now: str) -> Attrs:
        for instances in attrs.values():
            for inst in instances:
                stamp(inst, now)
        return attrs

    def check_type(self, tenant: str, eid: str, types: TypeNode, named: str) -> None:
        """ResourceNotFound unless the entity's types match this (expanded) type expression:
        the `type` selector of the single-entity operations. Read inside the write, as a
        group job."""
        with self.store.write(tenant) as tx:
            doc = self._existing(tx, eid)
        if not matches_types(types, doc):
            raise ResourceNotFound(f"entity {eid} is not of type {named}")

    def _existing(self, tx: WriteTx, eid: str, doc: Doc | None = None) -> Doc:
        doc = doc or tx.get(eid)
        if doc is None:
            raise ResourceNotFound(f"entity {eid} not found")
        return doc

    # -- entities ----------------------------------------------------------------------------
    def create(self, tenant: str, body: Any, tm: TermMap) -> str:
        """Create an entity; AlreadyExists when the id is taken."""
        return self.create_expanded(tenant, expand_entity(body, tm))

    def create_expanded(self, tenant: str, doc: Doc) -> str:
        """Create an entity from its expanded document; AlreadyExists when the id is taken."""
        with self.store.write(tenant) as tx:
            self._insert(tx, doc)
        return str(doc["id"])

    def create_many(self, tenant: str, docs: list[Doc]) -> list[tuple[bool, Any]]:
        """Create expanded entities with a few bulk statements (concurrent POST /entities, see
        api/commit.py): per document (True, id), or (False, AlreadyExists) when its id is
        taken, by a stored entity or by an earlier document of the list, or (False,
        EntityTooLarge) past the byte bound."""
        with self.store.write(tenant) as tx:
            done = self._insert_new(tx, list(enumerate(docs)))
        return [
            (True, got[0])
            if isinstance(got := done.get(i), tuple)
            else (False, got or AlreadyExists(f"entity {doc['id']} already exists"))
            for i, doc in enumerate(docs)
        ]

    def _insert(self, tx: WriteTx, doc: Doc) -> None:
        now = now_iso()
        doc["createdAt"] = doc["modifiedAt"] = now
        self._stamp_all(doc["attrs"], now)
        try:
            tx.insert(doc)
        except EntityExists as exc:
            raise AlreadyExists(f"entity {doc['id']} already exists") from exc
        # a create starts the temporal entity even with no attributes, as a bulk create does
        tx.add_history_many(doc["id"], doc["type"], doc["attrs"], doc.get("scope"))

    def get(self, tenant: str, eid: str) -> Doc:
        """The stored entity, or ResourceNotFound."""
        doc = self.store.get(tenant, eid)
        if doc is None:
            raise ResourceNotFound(f"entity {eid} not found")
        return doc

    def get_json(self, tenant: str, eid: str) -> str:
        """The stored entity as JSON text, or ResourceNotFound."""
        text = self.store.get_json(tenant, eid)
        if text is None:
            raise ResourceNotFound(f"entity {eid} not found")
        return text

    def query(self, tenant: str, query: EntityQuery) -> tuple[list[Doc], int | None]:
        """Entities matching a query."""
        return self.store.query(tenant, query)

    def delete(self, tenant: str, eid: str) -> None:
        """Delete an entity (its temporal evolution stays)."""
        with self.store.write(tenant) as tx:
            if not self._delete(tx, eid):
                raise ResourceNotFound(f"entity {eid} not found")

    def _delete(self, tx: WriteTx, eid: str) -> bool:
        """Delete an entity and record each of its instances as deleted in its history, as an
        attribute DELETE records it, and the entity's deletedAt: the history used to end
        without saying the entity went, and said nothing of one without attributes."""
        old = tx.delete(eid)
        if old is None:
            return False
        now = now_iso()
        self._record(tx, old, {n: [deletion(i, now) for i in v] for n, v in old["attrs"].items()})
        tx.record_deletion(old["id"], old["type"], now)
        return True

    def replace(self, tenant: str, eid: str, body: Any, tm: TermMap) -> None:
        """PUT /entities/{id}: everything but id and createdAt is replaced."""
        body = unaliased(body)
        check_body_id(body, eid)
        if isinstance(body, dict) and "id" not in body:
            body = {**body, "id": eid}
        doc = expand_entity(body, tm)
        with self.store.write(tenant) as tx:
            self._replace_into(tx, self._existing(tx, eid), doc)

    def _replace_into(self, tx: WriteTx, old: Doc, doc: Doc) -> None:
        """Put doc in place of old, keeping createdAt; the instances doc no longer has are
        recorded as deleted, as an attribute DELETE records them (PUT and upsert used to drop
        them from the history's view without a trace)."""
        now = now_iso()
        doc["createdAt"], doc["modifiedAt"] = old["createdAt"], now
        self._stamp_all(doc["attrs"], now)
        tx.update(doc)
        written = dict(doc["attrs"])
        for name, instances in old["attrs"].items():
            kept = {i.get("datasetId") for i in doc["attrs"].get(name, [])}
            gone = [deletion(i, now) for i in instances if i.get("datasetId") not in kept]
            if gone:
                written[name] = [*written.get(name, []), *gone]
        self._record(tx, doc, written, doc.get("scope") != old.get("scope"))

    def merge(self, tenant: str, eid: str, body: Any, tm: TermMap, form: MergeForm = PLAIN) -> None:
        """PATCH /entities/{id}: merge-patch attributes; urn:ngsi-ld:null deletes. A keyValues
        body (form) is read against the stored attributes, inside the write."""
        if not isinstance(body, dict):
            raise BadRequestData("merge body must be a JSON object")
        body = unaliased(body)
        check_body_id(body, eid)
        types = body.get("type")
        new_types = expand_types(types, tm) if types else None
        scope = _scope_of(body, nulls=True)
        with self.store.write(tenant) as tx:
            doc = tx.get(eid)
            fragment = as_fragment(body, tm, doc["attrs"] if doc else None, form)
            incoming = _merge_attrs(fragment, tm, doc)
            fill_observed_at(incoming, doc["attrs"] if doc else {}, form)
            self._merge_into(tx, self._existing(tx, eid, doc), incoming, new_types, scope)

    def _merge_into(
        self,
        tx: WriteTx,
        doc: Doc,
        incoming: Attrs,
        new_types: list[str] | None,
        scope: Scope = None,
    ) -> None:
        now = now_iso()
        written = _apply_instances(doc, incoming, now, merge=True)
        types_before, scope_before = doc["type"], doc.get("scope")
        if new_types:
            doc["type"] = list(dict.fromkeys(doc["type"] + new_types))
        _apply_scope(doc, scope, replace=True)
        rescoped = doc.get("scope") != scope_before
        if not written and not rescoped and doc["type"] == types_before:
            return  # nothing changed (`{}`, nulls for what is absent): modifiedAt stays
        doc["modifiedAt"] = now
        tx.update(doc, _changed_names(incoming, types_before, doc))
        self._record(tx, doc, written, rescoped)

    # -- attributes --------------------------------------------------------------------------
    def append(
        self, tenant: str, eid: str, body: Any, tm: TermMap, no_overwrite: bool = False
    ) -> AttrOutcome:
        """POST /entities/{id}/attrs: add attributes, overwriting unless noOverwrite."""
        body = unaliased(body)
        check_body_id(body, eid)
        incoming = expand_attrs(_strip_type(body), tm)
        with self.store.write(tenant) as tx:
            doc = self._existing(tx, eid)
            return self._append_into(tx, doc, incoming, no_overwrite, tm, body)

    def _append_into(
        self,
        tx: WriteTx,
        doc: Doc,
        incoming: Attrs,
        no_overwrite: bool,
        tm: TermMap,
        body: Any,
        nulls: bool = False,
        types: list[str] | None = None,
    ) -> AttrOutcome:
        """Add or overwrite instances by datasetId; with nulls (batch update), null markers
        delete what they name, as PATCH /entities/{id}/attrs has them, unless noOverwrite
        keeps it. `types`: the body's types when the caller has expanded them already.
        An outcome names each attribute by its expanded name (ETSI 010_04)."""
        out = AttrOutcome()
        now = now_iso()
        kept: Attrs = incoming
        if no_overwrite:
            kept = {}
            for name, instances in incoming.items():
                current = doc["attrs"].get(name, [])
                keep = [i for i in instances if find(current, i.get("datasetId")) is None]
                if len(keep) < len(instances):
                    out.not_updated.append((name, "attribute exists and noOverwrite is set"))
                if keep:
                    kept[name] = keep
        written = _apply_instances(doc, kept, now, merge=False)
        out.updated += [name for name in kept if name in written]
        types_before, scope_before = doc["type"], doc.get("scope")
        if isinstance(body, dict) and body.get("type"):
            added = expand_types(body["type"], tm) if types is None else types
            doc["type"] = list(dict.fromkeys(doc["type"] + added))
        scope = _scope_of(body, nulls=nulls)
        if scope == NULL_URI and no_overwrite and "scope" in doc:
            out.not_updated.append(("scope", "scope exists and noOverwrite is set"))
        elif scope == NULL_URI and "scope" not in doc:
            pass  # nothing to remove
        elif scope is not None:
            _apply_scope(doc, scope, replace=not no_overwrite)
            out.updated.append("scope")
        if not out.updated and doc["type"] == types_before:
            return out  # nothing written: the entity, modifiedAt included, stays as it was
        doc["modifiedAt"] = now
        tx.update(doc, _changed_names(incoming, types_before, doc))
        self._record(tx, doc, written, doc.get("scope") != scope_before)
        return out

    def update(self, tenant: str, eid: str, body: Any, tm: TermMap) -> AttrOutcome:
        """PATCH /entities/{id}/attrs: update attributes by datasetId (nulls delete).

        Attributes and instances the entity lacks are appended, as clause 5.6.2.4 and the
        ETSI suite (011_01_03) ask (decision 003 and its addendum).
        """
        body = unaliased(body)
        check_body_id(body, eid)
        incoming = expand_attrs(_strip_type(body), tm, nulls=True)  # keyed by expanded name
        out = AttrOutcome()
        with self.store.write(tenant) as tx:
            doc = self._existing(tx, eid)
            now = now_iso()
            written = _apply_instances(doc, incoming, now, merge=False)
            for name in incoming:
                if name in written:
                    out.updated.append(name)
                else:  # only nulls, for an attribute (or datasetId) the entity lacks
                    out.not_updated.append((name, "no such attribute to delete"))
            types_before, scope_before = doc["type"], doc.get("scope")
            if isinstance(body, dict) and body.get("type"):
                doc["type"] = list(dict.fromkeys(doc["type"] + expand_types(body["type"], tm)))
            scope = _scope_of(body, nulls=True)
            if scope is not None:
                if "scope" in doc:
                    _apply_scope(doc, scope, replace=True)
                    out.updated.append("scope")
                else:
                    what = "delete" if scope == NULL_URI else "update"
                    out.not_updated.append(("scope", f"the entity has no scope to {what}"))
            if not out.updated and doc["type"] == types_before:
                return out  # nothing written: modifiedAt stays
            doc["modifiedAt"] = now
            tx.update(doc, _changed_names(incoming, types_before, doc))
            self._record(tx, doc, written, doc.get("scope") != scope_before)
        return out

    def patch_attribute(self, tenant: str, eid: str, attr: str, body: Any, tm: TermMap) -> None:
        """PATCH /entities/{id}/attrs/{attr}: merge a fragment into one existing instance."""
        _not_scope(attr)
        name = expand_name(attr, tm)
        if not isinstance(body, dict) or not [k for k in body if k != "@context"]:
            raise BadRequestData("the attribute fragment must be a non-empty JSON object")
        fragment = {k: v for k, v in body.items() if k != "@context"}
        inst = expand_instance(fragment, tm, nulls=True, fragment=True)
        with self.store.write(tenant) as tx:
            doc = self._existing(tx, eid)
            current = doc["attrs"].get(name)
            if not current:
                raise ResourceNotFound(f"attribute {attr} not found in {eid}")
            i = find(current, inst.get("datasetId"))
            if i is None:
                raise ResourceNotFound(f"attribute {attr} has no instance with that datasetId")
            now = now_iso()  # one time for the attribute and the entity
            merged: Instance | None = None
            if not inst.get("null"):
                kind = current[i]["type"]
                if "type" not in fragment and _geometry_value(fragment, kind):
                    inst = expand_instance(
                        {**fragment, "type": kind}, tm, nulls=True, fragment=True
                    )
                elif "type" not in fragment and kind == "GeoProperty" and "value" in fragment:
                    # inference took it for a Property, and said so of a fragment naming none
                    raise BadRequestData(
                        f"attribute {attr} is a GeoProperty: its value must be a GeoJSON "
                        'geometry, such as {"type": "Point", "coordinates": [lon, lat]}'
                    )
                if inst.get("type", kind) != kind:
                    raise BadRequestData(
                        f"attribute {attr} is a {current[i]['type']}, not a {inst['type']}"
                    )
                inst.setdefault("type", current[i]["type"])
                merged = merge_instance(current[i], inst, now, by_language=False)
            written: list[Instance]
            if merged is None or emptied(merged):
                # a deletion (or its last language went): recorded as DELETE .../attrs/{attr}
                written = [deletion(current.pop(i), now)]
                if not current:
                    del doc["attrs"][name]
            else:
                current[i] = merged
                written = [merged]
            doc["modifiedAt"] = now
            tx.update(doc, {name})
            self._record(tx, doc, {name: written})

    def replace_attribute(self, tenant: str, eid: str, attr: str, body: Any, tm: TermMap) -> None:
        """PUT /entities/{id}/attrs/{attr}: replace one existing instance."""
        _not_scope(attr)
        name = expand_name(attr, tm)
        incoming = expand_attrs({attr: body}, tm).get(name)
        if incoming is None:  # a member that is no attribute (createdAt, id, ...)
            raise ResourceNotFound(f"{attr} is not an attribute of {eid}")
        with self.store.write(tenant) as tx:
            doc = self._existing(tx, eid)
            current = doc["attrs"].get(name)
            if not current:
                raise ResourceNotFound(f"attribute {attr} not found in {eid}")
            now = now_iso()
            for inst in incoming:
                i = find(current, inst.get("datasetId"))
                if i is None:
                    raise ResourceNotFound(f"attribute {attr} has no instance with that datasetId")
                current[i] = stamp(inst, now, current[i].get("createdAt"))
            doc["modifiedAt"] = now
            tx.update(doc, {name})
            self._record(tx, doc, {name: incoming})

    def delete_attribute(
        self,
        tenant: str,
        eid: str,
        attr: str,
        tm: TermMap,
        dataset_id: str | None = None,
        delete_all: bool = False,
        lang: str | None = None,
    ) -> None:
        """DELETE /entities/{id}/attrs/{attr} (one datasetId, or all instances); with lang,
        only those strings of a LanguageProperty (the instance goes with its last one)."""
        name = expand_name(attr, tm)
        with self.store.write(tenant) as tx:
            doc = self._existing(tx, eid)
            if attr == "scope" and name not in doc["attrs"]:
                if "scope" not in doc:
                    raise ResourceNotFound(f"entity {eid} has no scope")
                del doc["scope"]
                doc["modifiedAt"] = now_iso()
                tx.update(doc, set())
                self._record(tx, doc, {}, rescoped=True)
                return
            current = doc["attrs"].get(name)
            if not current:
                raise ResourceNotFound(f"attribute {attr} not found in {eid}")
            now = now_iso()
            written: list[Instance]
            if lang is not None:
                kept = _drop_languages(current, dataset_id, lang, attr, now)
                written = [kept] if isinstance(kept, dict) else [deletion(kept[0], now)]
            elif delete_all:
                written = [deletion(old, now) for old in current]
                current.clear()
            else:
                i = find(current, dataset_id)
                if i is None:
                    raise ResourceNotFound(f"attribute {attr} has no instance with that datasetId")
                written = [deletion(current.pop(i), now)]
            if not current:
                del doc["attrs"][name]
            doc["modifiedAt"] = now
            tx.update(doc, {name})
            self._record(tx, doc, {name: written})

    def purge(
        self,
        tenant: str,
        ids: list[str],
        drop: set[str],
        keep: set[str],
        query: EntityQuery | None = None,
    ) -> int:
        """DELETE /entities for some of the selected ids: delete each entity, or drop (or keep
        only) some of its attributes, each dropped one recorded as a deletion in its history
        as DELETE /entities/{id}/attrs/{attr} records it. With the query that selected them,
        only those that still meet it (it ran before this transaction). How many changed."""
        changed = 0
        with self.store.write(tenant) as tx:
            if query is not None:
                still = tx.matching(replace(query, ids=tuple(ids)))
                ids = [i for i in ids if i in still]
            for eid in ids:
                if not drop and not keep:
                    changed += self._delete(tx, eid)
                    continue
                doc = tx.get(eid)  # read in the transaction: never over a newer write
                if doc is None:
                    continue
                gone = [n for n in doc["attrs"] if n in drop or (keep and n not in keep)]
                if not gone:
                    continue
                now = now_iso()
                removed = {n: [deletion(old, now) for old in doc["attrs"].pop(n)] for n in gone}
                doc["modifiedAt"] = now
                tx.update(doc, set(gone))
                self._record(tx, doc, removed)
                changed += 1
        return changed

    # -- batch -------------------------------------------------------------------------------
    def batch(
        self,
        tenant: str,
        items: Any,
        op: Callable[..., str | tuple[str, bool]],
        bulk_tm: TmSource | None = None,
    ) -> BatchOutcome:
        """Run op per item in one transaction; one bad item never blocks the rest.

        With bulk_tm, new entities are first inserted together (insert_bulk) and op runs only
        for the items that need it (existing ids, repeats), as op(tx, item, doc) with the
        item's document as insert_bulk expanded it (not expanded twice); else op(tx, item).
        """
        if not isinstance(items, list) or not items:
            raise BadRequestData("a batch body must be a non-empty JSON array")
        out = BatchOutcome()
        # the collector held off: each failed item leaves an error that lives until the answer,
        # and their growth set off full collections, each walking the whole heap (about 3 s for
        # 100,000 failures); what is garbage is freed by reference counting meanwhile
        with collector_paused(), self.store.write(tenant) as tx, tx.history_in_one_round():
            done: dict[int, tuple[str, bool] | NgsiLdError] = {}
            docs: dict[int, Doc] | None = None
            if bulk_tm is not None:
                done, docs = self._insert_bulk(tx, items, bulk_tm)
            for i, item in enumerate(items):
                result: str | tuple[str, bool]
                try:
                    pre = done.get(i)
                    if isinstance(pre, NgsiLdError):
                        raise pre
                    if pre is not None:
                        result = pre
                    elif docs is not None:
                        result = op(tx, item, docs[i])
                    else:
                        result = op(tx, item)
                except NgsiLdError as err:  # kept without its frames: fewer objects alive
                    out.errors.append((item_id(item), err.with_traceback(None)))
                    out.failed.append(i)
                    continue
                eid, created = result if isinstance(result, tuple) else (result, False)
                out.success.append(eid)
                if created:
                    out.created.append(eid)
        return out

    def _insert_bulk(
        self, tx: WriteTx, items: list[Any], tm: TmSource
    ) -> tuple[dict[int, tuple[str, bool] | NgsiLdError], dict[int, Doc]]:
        """Validate every item and insert the new, unrepeated ones with a few bulk statements:
        the results of those (and of the invalid ones), and the expanded documents of the
        others, by index."""
        results: dict[int, tuple[str, bool] | NgsiLdError] = {}
        expanded: list[tuple[int, Doc]] = []
        for i, item in enumerate(items):
            try:
                expanded.append((i, expand_entity(unaliased(item), _tm(tm, item))))
            except NgsiLdError as err:
                results[i] = err
        results.update(self._insert_new(tx, expanded))
        return results, {i: doc for i, doc in expanded if i not in results}

    def _insert_new(
        self, tx: WriteTx, expanded: list[tuple[int, Doc]]
    ) -> dict[int, tuple[str, bool] | NgsiLdError]:
        """Insert the (index, document) pairs whose ids are neither stored nor repeated in
        the list, with a few bulk statements; (id, True) for each one inserted, the error of
        each the store refused (past the byte bound)."""
        results: dict[int, tuple[str, bool] | NgsiLdError] = {}
        existing = tx.existing_ids([d["id"] for _, d in expanded])
        fresh: list[tuple[int, Doc]] = []
        seen: set[str] = set()
        for i, doc in expanded:
            if doc["id"] not in existing and doc["id"] not in seen:
                seen.add(doc["id"])
                fresh.append((i, doc))
        if not fresh:
            return results
        now = now_iso()
        history = []
        for i, doc in fresh:
            doc["createdAt"] = doc["modifiedAt"] = now
            self._stamp_all(doc["attrs"], now)
            history.append((doc["id"], doc["type"], doc["attrs"], doc.get("scope")))
            results[i] = (doc["id"], True)
        refused = tx.insert_many([doc for _, doc in fresh])
        if refused:  # past the byte bound: neither stored nor recorded in the history
            for at, err in refused.items():
                results[fresh[at][0]] = err
            history = [h for at, h in enumerate(history) if at not in refused]
        if history:
            tx.add_history_bulk(history)
        return results

    def batch_create(self, tenant: str, items: Any, tm: TmSource) -> BatchOutcome:
        """entityOperations/create."""

        def op(tx: WriteTx, item: Any, doc: Doc) -> str:
            self._insert(tx, doc)
            return str(doc["id"])

        return self.batch(tenant, items, op, bulk_tm=tm)

    def batch_upsert(
        self, tenant: str, items: Any, tm: TmSource, mode: str, late: bool = False
    ) -> BatchOutcome:
        """entityOperations/upsert with options=replace (default) or update; with late (the
        IoT agent, update only), an instance observed before the one the entity holds goes
        to the history alone (ngsild/late.py)."""

        def op(tx: WriteTx, item: Any, doc: Doc) -> tuple[str, bool]:
            t = _tm(tm, item)
            item = unaliased(item)  # insert_bulk expanded it unaliased; _append_into reads it
            old = tx.get(doc["id"])
            if old is None:
                self._insert(tx, doc)
                return doc["id"], True
            if mode == "update":
                past = split_late(old["attrs"], doc["attrs"]) if late else None
                self._append_into(tx, old, doc["attrs"], False, t, item, types=doc["type"])
                if past:  # history only: the state, modifiedAt and subscribers stay as they were;
                    # after the state's write, which may refuse the item (past the byte bound)
                    self._record(tx, old, self._stamp_all(past, now_iso()))
                return doc["id"], False
            self._replace_into(tx, old, doc)
            return doc["id"], False

        return self.batch(tenant, items, op, bulk_tm=tm)

    def batch_update(
        self, tenant: str, items: Any, tm: TmSource, no_overwrite: bool
    ) -> BatchOutcome:
        """entityOperations/update: append attributes to existing entities; it is an update
        (5.6.9), so the null marker deletes, as in PATCH /entities/{id}/attrs."""

        def op(tx: WriteTx, item: Any) -> str:
            t = _tm(tm, item)
            item = unaliased(item)
            doc = expand_entity(item, t, nulls=True)
            old = self._existing(tx, doc["id"])
            result = self._append_into(tx, old, doc["attrs"], no_overwrite, t, item, nulls=True)
            if result.not_updated:  # 5.6.9: the others are appended, the entity is an error
                kept = {n for n, _ in result.not_updated}
                written = [k for k in item if k not in ENTITY_KEYS and t.expand(k) in kept]
                raise BadRequestData(
                    "attributes not overwritten (noOverwrite is set; the entity's other "
                    "attributes were appended): " + ", ".join(written or sorted(kept))
                )
            return str(doc["id"])

        return self.batch(tenant, items, op)

    def batch_merge(self, tenant: str, items: Any, tm: TmSource) -> BatchOutcome:
        """entityOperations/merge."""

        def op(tx: WriteTx, item: Any) -> str:
            t = _tm(tm, item)
            item = unaliased(entity_object(item))
            eid = check_uri(item.get("id"), "entity id")
            types = expand_types(item["type"], t) if item.get("type") else None
            old = tx.get(eid)
            attrs = _merge_attrs(item, t, old)
            scope = _scope_of(item, nulls=True)
            self._merge_into(tx, self._existing(tx, eid, old), attrs, types, scope)
            return eid

        return self.batch(tenant, items, op)

    def batch_delete(self, tenant: str, items: Any) -> BatchOutcome:
        """entityOperations/delete: a list of entity ids."""

        def op(tx: WriteTx, eid: Any) -> str:
            check_uri(eid, "entity id")
            if not self._delete(tx, eid):
                raise ResourceNotFound(f"entity {eid} not found")
            return str(eid)

        return self.batch(tenant, items, op)


TmSource = TermMap | Callable[[Any], TermMap]


def _tm(source: TmSource, item: Any) -> TermMap:
    """The term map of one batch item (ld+json batches carry one @context per entity)."""
    return source if isinstance(source, TermMap) else source(item)


def _apply_instances(doc: Doc, incoming: Attrs, now: str, *, merge: bool) -> Attrs:
    """Put incoming instances into an entity by datasetId: null markers delete, new datasetIds
    append, matches are merged (merge-patch) or replaced; returns what was written."""
    written: Attrs = {}
    for name, instances in incoming.items():
        current = doc["attrs"].setdefault(name, [])
        for inst in instances:
            i = find(current, inst.get("datasetId"))
            if inst.get("null"):
                if i is not None:
                    written.setdefault(name, []).append(deletion(current.pop(i), now))
                continue
            if i is None:
                new = stamp(without_nulls(inst), now)
            elif merge:
                new = merge_instance(current[i], inst, now, by_key=True)
            else:
                new = stamp(without_nulls(inst), now, current[i].get("createdAt"))
            if emptied(new):  # every language given as null: as DELETE ?lang= of the last one
                if i is not None:
                    written.setdefault(name, []).append(deletion(current.pop(i), now))
                continue
            if i is None:
                current.append(new)
            else:
                current[i] = new
            written.setdefault(name, []).append(new)
        if not current:
            del doc["attrs"][name]
    return written


def _drop_languages(
    current: list[Instance], dataset_id: str | None, lang: str, attr: str, now: str
) -> Instance | list[Instance]:
    """Remove the lang= tags (or every one, for *) from one LanguageProperty instance: the
    instance with the strings left, or [the instance] when none is left and it went."""
    i = find(current, dataset_id)
    if i is None:
        raise ResourceNotFound(f"attribute {attr} has no instance with that datasetId")
    inst = current[i]
    if inst.get("type") != "LanguageProperty":
        raise BadRequestData(f"lang deletes strings of a LanguageProperty; {attr} is not one")
    languages = dict(inst.get("languageMap") or {})
    tags = {t.lower() for t in ranked_languages(lang)}  # q=0: not to be deleted
    gone = set(languages) if "*" in tags else {t for t in languages if t.lower() in tags}
    if not gone:
        raise ResourceNotFound(f"attribute {attr} has no string in {lang}")
    for tag in gone:
        del languages[tag]
    if not languages:
        return [current.pop(i)]
    current[i] = {**inst, "languageMap": languages, "modifiedAt": now}
    return current[i]


def _merge_attrs(body: Any, tm: TermMap, doc: Doc | None) -> Attrs:
    """A merge's attributes read against the stored ones; an invalid body is a 400 before an
    absent entity is a 404 (ETSI 057_03_02)."""
    return expand_attrs(body, tm, nulls=True, merge=True, stored=doc["attrs"] if doc else None)


def _geometry_value(raw: Any, kind: str) -> bool:
    """A type-less fragment whose value is a GeoJSON geometry, for a GeoProperty: the usual
    "move it" update, which inference alone would take for a Property."""
    value = raw.get("value") if isinstance(raw, dict) else None
    return kind == "GeoProperty" and isinstance(value, dict) and is_geo_type(value.get("type"))


def deletion(old: Instance, now: str) -> Instance:
    """The history record of a deleted instance: its type, the null marker and deletedAt."""
    typ = old["type"]
    key = CONTENT_KEY[typ]
    null: Any = {
        "languageMap": {"@none": NULL_URI},
        "valueList": [NULL_URI],
        "objectList": [NULL_URI],
    }.get(key, NULL_URI)
    out: Instance = {"type": typ, key: null, "deletedAt": now, "createdAt": now, "modifiedAt": now}
    if "datasetId" in old:
        out["datasetId"] = old["datasetId"]
    return out


def _changed_names(incoming: Attrs, types_before: list[str], doc: Doc) -> set[str]:
    """What an update rewrites in the index: its attributes, and "@type" only when the
    entity's types really changed (devices repeat their type on every message)."""
    return set(incoming) | ({"@type"} if doc["type"] != types_before else set())


# A body's scope: the scopes given, NULL_URI (a merge or an update removes the scope), or None.
Scope = list[str] | str | None


def _scope_of(body: Any, nulls: bool = False) -> Scope:
    """The scope member of a body, validated, or None; with nulls, the null marker (which
    removes the scope, as DELETE /entities/{id}/attrs/scope does) comes back as NULL_URI."""
    if isinstance(body, dict) and "scope" in body:
        if nulls and body["scope"] == NULL_URI:
            return NULL_URI
        return expand_scope(body["scope"])
    return None


def _apply_scope(doc: Doc, scope: Scope, *, replace: bool) -> None:
    """Replace an entity's scope, add to it, or remove it (NULL_URI)."""
    if scope is None:
        return
    if isinstance(scope, str):
        doc.pop("scope", None)
    elif replace or "scope" not in doc:
        doc["scope"] = scope
    else:
        doc["scope"] = list(dict.fromkeys(doc["scope"] + scope))


def _not_scope(attr: str) -> None:
    """The scope is a member of the entity, not an attribute one instance of which a PUT or
    PATCH of /attrs/{attr} writes: a 400 saying where it is written (the PATCH answered 404
    "attribute scope not found" for an entity showing its scope)."""
    if attr == "scope":
        raise BadRequestData(
            "scope is not an attribute; write it with PATCH or POST on /entities/{id}/attrs, "
            "or PATCH /entities/{id}"
        )


def _strip_type(body: Any) -> Any:
    """Attribute payloads may carry the entity's type/id; they are not attributes."""
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k not in ("id", "type", "@context")}
    return body


def item_id(item: Any) -> str:
    """The id a batch result names an item by ("" when it has none)."""
    if isinstance(item, dict):
        eid = item.get("id", item.get("@id"))
        return eid if isinstance(eid, str) else ""
    return item if isinstance(item, str) else ""
