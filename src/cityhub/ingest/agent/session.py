"""The hub's MQTT client id: stable per database, so a broker keeps the hub's session (and
queues its QoS 1 messages) while the hub restarts or reconnects; and the topic filters that
kept session holds, so a changed CITYHUB_MQTT_GROUP drops the old subscription instead of
receiving every message through both."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from cityhub.ingest.agent.mqtt import TOPIC

log = logging.getLogger("cityhub.iot")

KIND = "iot-mqtt"  # one resource, in the default tenant
RID = "session"
# the default of settings.mqtt_group, so what a database from before `filters` was kept
# most likely used
DEFAULT_GROUP = "cityhub"
Doc = dict[str, Any]


def stored_client_id(store: Any) -> str:
    """The client id kept in the database, created on first use (run it as a committer job:
    it may write)."""
    doc = store.resource_get(KIND, "", RID)
    if doc is not None and isinstance(doc.get("clientId"), str):
        return str(doc["clientId"])
    client_id = f"cityhub-{secrets.token_hex(8)}"
    # a new id has held no filters: none is taken for a legacy record's (held_filters None)
    fresh = {"id": RID, "clientId": client_id, "filters": {client_id: []}}
    if doc is None and store.resource_create(KIND, "", RID, fresh):
        return client_id

    def add(old: Doc) -> Doc:  # a record with filters only, or one written meanwhile
        if isinstance(old.get("clientId"), str):
            return old
        filters = {**(old.get("filters") or {}), client_id: []}
        return {**old, "clientId": client_id, "filters": filters}

    doc = store.resource_update(KIND, "", RID, add)
    return str(doc["clientId"]) if doc else client_id


def held_filters(store: Any, client_id: str) -> list[str] | None:
    """The topic filters the broker session of client_id may hold (None: not recorded, a
    database from before they were)."""
    doc = store.resource_get(KIND, "", RID) or {}
    held = (doc.get("filters") or {}).get(client_id)
    return [str(f) for f in held] if isinstance(held, list) else None


def keep_filters(store: Any, client_id: str, filters: list[str]) -> None:
    """Record the filters client_id's session may hold (a committer job)."""

    def change(old: Doc) -> Doc:
        return {**old, "filters": {**(old.get("filters") or {}), client_id: filters}}

    if store.resource_update(KIND, "", RID, change) is None:
        store.resource_create(KIND, "", RID, change({"id": RID}))


def legacy_filters(topic: str) -> list[str]:
    """What a session recorded before filters were kept may hold besides topic: the plain
    filter and the default group's (another group's name is not known)."""
    return [f for f in (TOPIC, f"$share/{DEFAULT_GROUP}/{TOPIC}") if f != topic]


class KeptFilters:
    """The subscriptions of a kept broker session, remembered in the database: before the
    hub subscribes, the filters that session may hold besides the configured one (to
    unsubscribe); after, only the configured one. Both write through the group committer."""

    def __init__(self, store: Any, committer: Any, client_id: str) -> None:
        self.store = store
        self.committer = committer
        self.client_id = client_id

    async def stale(self, topic: str) -> list[str]:
        """The filters to drop once topic is subscribed; topic is recorded as held first, so
        a hub stopped before the drop still knows every filter its session may hold."""
        store, cid = self.store, self.client_id
        try:
            held = await self.committer.run(lambda: held_filters(store, cid))
            stale = legacy_filters(topic) if held is None else [f for f in held if f != topic]
            if held != [*stale, topic]:
                await self.committer.run(lambda: keep_filters(store, cid, [*stale, topic]))
        except Exception as exc:  # a database that cannot answer must not stop the intake
            log.warning("the MQTT subscriptions kept in the database cannot be read: %s", exc)
            return legacy_filters(topic)
        return stale

    async def settled(self, topic: str) -> None:
        """Record that the session now holds topic alone."""
        store, cid = self.store, self.client_id
        try:
            await self.committer.run(lambda: keep_filters(store, cid, [topic]))
        except Exception as exc:
            log.warning("the MQTT subscription cannot be recorded in the database: %s", exc)
