"""The hub's MQTT client id: stable per database, so a broker keeps the hub's session (and
queues its QoS 1 messages) while the hub restarts or reconnects."""

from __future__ import annotations

import secrets
from typing import Any

KIND = "iot-mqtt"  # one resource, in the default tenant
RID = "session"


def stored_client_id(store: Any) -> str:
    """The client id kept in the database, created on first use (run it as a committer job:
    it may write)."""
    doc = store.resource_get(KIND, "", RID)
    if doc is not None and isinstance(doc.get("clientId"), str):
        return str(doc["clientId"])
    client_id = f"cityhub-{secrets.token_hex(8)}"
    if not store.resource_create(KIND, "", RID, {"id": RID, "clientId": client_id}):
        doc = store.resource_get(KIND, "", RID)  # written meanwhile: that one holds
        return str(doc["clientId"]) if doc else client_id
    return client_id
