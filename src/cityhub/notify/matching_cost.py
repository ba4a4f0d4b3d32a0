"""How much subscription matching an entity of a batch will cost, so that batches are sliced
by it too: matching runs inside the write transaction on the event loop, once per (changed
entity, candidate subscription), and 10,000 subscriptions on one type made one 1,000-entity
slice hold every other request for 52 s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import expand_types
from cityhub.ngsild.errors import NgsiLdError
from cityhub.notify.index import SubscriptionIndex

Weigh = Callable[[Any], int]  # an item of a batch (an entity, a fragment or an id) -> cost


def weigher(
    index: SubscriptionIndex | None, tm_of: TermMap | Callable[[Any], TermMap] | None
) -> Weigh | None:
    """The candidate subscriptions of each item of a batch written to a tenant with this
    index (None: no change-driven subscription, nothing to weigh): by its id and its types
    expanded with tm_of (a term map, or one per item); an item without a type (an update's
    fragment, a deletion's id) counts as its id's and the largest type's, a bad one as 1
    (it fails before any matching)."""
    if not index:
        return None

    def weigh(item: Any) -> int:
        if isinstance(item, str):
            return index.weight(item, None)
        if not isinstance(item, dict):
            return 1
        eid = item.get("id", item.get("@id"))
        eid = eid if isinstance(eid, str) else None
        raw = item.get("type", item.get("@type"))
        if raw is None or tm_of is None:
            return index.weight(eid, None)
        try:
            tm = tm_of(item) if callable(tm_of) else tm_of
            types = expand_types(raw, tm)
        except NgsiLdError:
            return 1
        return index.weight(eid, types)

    return weigh
