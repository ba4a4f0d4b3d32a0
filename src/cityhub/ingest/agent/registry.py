"""Sources and devices in memory, with the hot-path index keyed by (sha256(apikey), device id).

The store keeps the records (resources table, kinds iot-source and iot-device); this module
keeps a copy of them for the message path, resolved against their sources, and is changed
only by provisioning calls (after their write committed) and by loading at start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cityhub.ingest.agent.keys import key_hash
from cityhub.ingest.agent.mapping import Mapping, check_effective, compile_mapping, merge
from cityhub.ingest.agent.reasons import UNKNOWN_DEVICE, Rejected
from cityhub.ingest.agent.records import SECRET
from cityhub.ngsild.context import url_local_ids
from cityhub.ngsild.errors import BadRequestData, NgsiLdError

log = logging.getLogger("cityhub.iot")

SOURCE = "iot-source"
DEVICE = "iot-device"

Doc = dict[str, Any]
Key = tuple[str, str]  # (tenant, id) of a record; (key digest, device id) in the hot index


@dataclass(frozen=True, slots=True)
class Target:
    """Where one device's messages go: everything the message path needs, resolved."""

    tenant: str
    device: str
    entity_id: str
    entity_type: str
    protocol: str
    mapping: Mapping
    mapping_doc: Doc
    context: str | None
    digest: str


class Registry:
    """The provisioned sources and devices of every tenant."""

    def __init__(self) -> None:
        self.sources: dict[Key, Doc] = {}
        self.devices: dict[Key, Doc] = {}
        self._hot: dict[Key, Target] = {}
        self._hot_of: dict[Key, Key] = {}  # (tenant, device id) -> its hot-index key

    def load(self, store: Any) -> None:
        """Read every record once at start-up; a record that no longer resolves is skipped."""
        for tenant, doc in store.resource_every_tenant(SOURCE):
            self.sources[(tenant, doc["id"])] = doc
        for tenant, doc in store.resource_every_tenant(DEVICE):
            try:
                self.put_device(tenant, doc, self.resolve(tenant, doc))
            except NgsiLdError as exc:  # listed, but no message reaches it
                self.devices[(tenant, doc["id"])] = doc
                log.warning("IoT device %r (tenant %r) is not active: %s", doc["id"], tenant, exc)

    # -- resolution -------------------------------------------------------------------------------
    def _source_of(self, tenant: str, doc: Doc, source: Doc | None = None) -> Doc | None:
        sid = doc.get("source")
        if sid is None:
            return None
        if source is not None and source["id"] == sid:
            return source
        source = self.sources.get((tenant, sid))
        if source is None:
            raise BadRequestData(f"source {sid!r} does not exist in this tenant")
        return source

    def resolve(self, tenant: str, doc: Doc, source: Doc | None = None) -> Target:
        """A device record with its source's key, mapping and @context filled in (source: a
        changed source record not yet in the registry)."""
        source = self._source_of(tenant, doc, source) or {}
        digest = doc.get(SECRET) or source.get(SECRET)
        if not digest:
            raise BadRequestData("the device needs an apikey (its own or its source's)")
        mapping_doc = merge(source.get("mapping"), doc.get("mapping"))
        check_effective(mapping_doc)
        return Target(
            tenant=tenant,
            device=doc["id"],
            entity_id=doc["entityId"],
            entity_type=doc["entityType"],
            protocol=doc["protocol"],
            mapping=compile_mapping(mapping_doc),
            mapping_doc=mapping_doc,
            context=doc.get("ldContext") or source.get("ldContext"),
            digest=digest,
        )

    def clash(self, tenant: str, target: Target) -> bool:
        """Whether another device (in any tenant) already answers to this key and device id."""
        other = self._hot.get((target.digest, target.device))
        return other is not None and other.tenant != tenant

    def target(self, tenant: str, did: str) -> Target | None:
        """Where a device's messages go now (None: not active)."""
        hot = self._hot_of.get((tenant, did))
        return self._hot.get(hot) if hot is not None else None

    def naming_context(self, local_id: str) -> list[str]:
        """The sources and devices (any tenant) whose ldContext is the hub-served @context of
        this local id: deleting it would refuse all their messages."""
        found = []
        for kind, records in (("source", self.sources), ("device", self.devices)):
            for (tenant, rid), doc in records.items():
                if local_id in url_local_ids([doc.get("ldContext")]):
                    found.append(f"{kind} {rid!r} (tenant {tenant!r})")
        return found

    def dependants(self, tenant: str, sid: str) -> list[Doc]:
        """The devices of one source."""
        return [d for (t, _), d in self.devices.items() if t == tenant and d.get("source") == sid]

    # -- changes (after the store committed them) -------------------------------------------------
    def put_source(self, tenant: str, doc: Doc, targets: dict[str, Target]) -> None:
        """A created or changed source; targets are its devices resolved against it."""
        self.sources[(tenant, doc["id"])] = doc
        for did, target in targets.items():
            self.put_device(tenant, self.devices[(tenant, did)], target)

    def drop_source(self, tenant: str, sid: str) -> None:
        """A deleted source (it had no devices)."""
        self.sources.pop((tenant, sid), None)

    def put_device(self, tenant: str, doc: Doc, target: Target) -> None:
        """A created or changed device (a changed one keeps its place in listings)."""
        self._unindex(tenant, doc["id"])
        self.devices[(tenant, doc["id"])] = doc
        hot = (target.digest, target.device)
        self._hot[hot] = target
        self._hot_of[(tenant, doc["id"])] = hot

    def drop_device(self, tenant: str, did: str) -> None:
        """A deleted device."""
        self.devices.pop((tenant, did), None)
        self._unindex(tenant, did)

    def _unindex(self, tenant: str, did: str) -> None:
        hot = self._hot_of.pop((tenant, did), None)
        if hot is not None:
            self._hot.pop(hot, None)

    # -- the message path -------------------------------------------------------------------------
    def lookup(self, apikey: str, device: str) -> Target:
        """The device a message is for; Rejected (unknown_device) otherwise, the same for an
        id that no tenant has and one with another key, so letters cannot probe ids."""
        target = self._hot.get((key_hash(apikey), device))
        if target is not None:
            return target
        raise Rejected(UNKNOWN_DEVICE, f"no device {device!r} with this API key")

    def by_digest(self, digest: str, device: str) -> Target | None:
        """The device a key (by its digest) and an id name now: an unrouted letter's retry."""
        return self._hot.get((digest, device))
