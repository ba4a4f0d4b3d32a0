"""How much a request body may hold: its bytes, by what the request writes (decision 082),
and a batch's items (decision 094).

CITYHUB_MAX_BODY (64 MiB) leaves room for the largest batch: 1,000 entities each carrying an
inline @context. A request that writes one entity needs far less, and a 50 MB body sent to
one was read and parsed (0.35 s of CPU) only to be refused for its entity's size, so such a
request has a bound of its own, derived from CITYHUB_MAX_ENTITY_BYTES.
"""

from __future__ import annotations

from cityhub.ngsild.context import MAX_CONTEXT_BYTES
from cityhub.settings import Settings

# Bytes of body per byte stored: JSON may escape each character as \uXXXX (Python's
# json.dumps does, for every non-ASCII one), six bytes for the two of a Latin letter's UTF-8.
ESCAPED = 3

# Items one batch request may hold (decision 094): each earns its own line in a 207, about
# 180 bytes for an error, so 500,000 two-byte items (a 1 MB body) made an 89 MB answer. The
# largest chunk `cityhub import` sends.
MAX_BATCH_ITEMS = 100_000


def entity_body_limit(settings: Settings) -> int:
    """The most bytes of a body that writes one entity or part of one: CITYHUB_MAX_ENTITY_BODY,
    else an entity at CITYHUB_MAX_ENTITY_BYTES written out escaped beside the largest inline
    @context; never above CITYHUB_MAX_BODY."""
    if settings.max_entity_body is not None:
        return min(settings.max_entity_body, settings.max_body)
    if not settings.max_entity_bytes:  # no bound on an entity: none of its own on its body
        return settings.max_body
    return min(ESCAPED * settings.max_entity_bytes + MAX_CONTEXT_BYTES, settings.max_body)
