"""What a csourceSubscription cannot hold: its notifications carry registrations, so the
Subscription members (5.2.12) and NotificationParams (5.2.14) that shape entity
notifications would be stored and never applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cityhub.ngsild.errors import BadRequestData, shown
from cityhub.ngsild.registrations import TIMEPROPERTIES

# Members that select or show entity changes: which change notifies (entityCreated, ...),
# the languages and datasetIds of the attributes shown.
ENTITY_ONLY = ("notificationTrigger", "lang", "datasetId")
# NotificationParams that project, join or diff entities. `format` stays: every
# csourceSubscription of the ETSI suite names keyValues.
ENTITY_ONLY_NOTIFICATION = ("attributes", "pick", "omit", "showChanges", "join", "joinLevel")


def check_csource(doc: Mapping[str, Any]) -> None:
    """Refuse a stored-to-be csourceSubscription whose members would be silently ignored."""
    for key in ENTITY_ONLY:
        if key in doc:
            raise BadRequestData(
                f"{key} shapes notifications about entities; a csourceSubscription's "
                "notifications carry registrations"
            )
    notification = doc["notification"]
    for key in ENTITY_ONLY_NOTIFICATION:
        if key in notification:
            raise BadRequestData(
                f"notification.{key} applies to entities; a csourceSubscription's "
                "notifications carry registrations"
            )
    if notification["endpoint"].get("accept") == "application/geo+json":
        raise BadRequestData(
            "a csourceSubscription's notifications carry registrations, which have no "
            "GeoJSON form: notification.endpoint.accept cannot be application/geo+json"
        )
    prop = (doc.get("temporalQ") or {}).get("timeproperty", "observedAt")
    if prop not in TIMEPROPERTIES:  # as discovery's timeproperty (it was read as observedAt)
        raise BadRequestData(
            f"temporalQ.timeproperty must be one of {', '.join(TIMEPROPERTIES)}, got {shown(prop)}"
        )
