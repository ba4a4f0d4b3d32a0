"""numberOfHits and lastUsage of the @contexts (5.13.3), saved so a restart keeps them."""

from __future__ import annotations

import asyncio
import logging

from cityhub.ngsild.context import ContextCache
from cityhub.store.base import Store

log = logging.getLogger(__name__)

SAVE_EVERY = 60.0  # seconds between saves: a crash loses at most this much of the counts


def save_usage(cache: ContextCache, store: Store) -> None:
    """Save the counts that changed since the last save (one small write; a failure is
    logged and retried at the next save: it costs the counts, never a request)."""
    changed = cache.usage()
    if not changed:
        return
    try:
        store.save_context_usage((e.url, hits, last) for e, hits, last in changed)
    except Exception:
        log.exception("could not save the usage counts of %d @contexts", len(changed))
        return
    for entry, hits, _ in changed:
        entry.saved_hits = hits


async def keep_usage(cache: ContextCache, store: Store, every: float = SAVE_EVERY) -> None:
    """Save the counts every `every` seconds while the hub serves (and at shutdown, by
    the app's lifespan)."""
    while True:
        await asyncio.sleep(every)
        save_usage(cache, store)
