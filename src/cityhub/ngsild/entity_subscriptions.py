"""What an entity subscription (/subscriptions) cannot hold: the members that only filter
context source registrations (5.2.12), which matching entities never reads, so a client
would get none of the filtering it asked for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cityhub.ngsild.errors import BadRequestData

# csf filters registrations by their own properties, temporalQ by their observationInterval
# or managementInterval: both are applied to csourceSubscriptions only (notify/csource.py).
CSOURCE_ONLY = ("csf", "temporalQ")


def check_entity(doc: Mapping[str, Any]) -> None:
    """Refuse a stored-to-be entity subscription whose members would be silently ignored."""
    for key in CSOURCE_ONLY:
        if key in doc:
            raise BadRequestData(
                f"{key} filters context source registrations; it applies to a "
                "csourceSubscription (/csourceSubscriptions), not to a subscription to entities"
            )
