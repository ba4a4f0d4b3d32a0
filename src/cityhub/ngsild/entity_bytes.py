"""How many bytes of JSON one stored entity may take (CITYHUB_MAX_ENTITY_BYTES, decision 074).

Every write and every read of an entity parses or serialises its whole document on the event
loop: a 50 MB value held it 1.3 s on its create and 9.8 s under a 32-key orderBy. The store
checks the document it is about to write, so every path that stores an entity (create, PUT,
merges, batches, imports, the IoT agent) meets the same bound, and the temporal API's
instances meet it one by one.
"""

from __future__ import annotations

from cityhub.ngsild.errors import BadRequestData

DEFAULT_MAX_ENTITY_BYTES = 2 * 1024 * 1024  # a 20,000-position polygon: 0.46 MB of JSON


class EntityTooLarge(BadRequestData):
    """An entity (or a temporal instance) whose JSON would pass the bound; nothing is stored."""


def check_size(size: int, bound: int, eid: str, what: str = "entity") -> None:
    """Refuse a document of `size` bytes past `bound` (0: no bound), naming the entity."""
    if bound and size > bound:
        raise EntityTooLarge(
            f"{what} {eid} would take {size:,} bytes of JSON as stored, more than the "
            f"{bound:,} the hub keeps for one (CITYHUB_MAX_ENTITY_BYTES); nothing of it was "
            "written: split large values over several entities"
        )
