"""numberOfHits and lastUsage of the @contexts (5.13.3), saved so a restart keeps them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial

from cityhub.api.commit import GroupCommitter
from cityhub.ngsild.context import ContextCache, ContextEntry
from cityhub.store.base import Store, StoreError
from cityhub.throttled_log import ThrottledLog

log = logging.getLogger(__name__)

SAVE_EVERY = 60.0  # seconds between saves: a crash loses at most this much of the counts
LOG_EVERY = 600.0  # seconds between two lines of a save that keeps failing (a lost store)

Changed = Sequence[tuple[ContextEntry, int, str | None]]


def _save(store: Store, changed: Changed) -> None:
    store.save_context_usage((e.url, hits, last) for e, hits, last in changed)


def _saved(changed: Changed) -> None:
    for entry, hits, _ in changed:
        entry.saved_hits = hits


def save_usage(cache: ContextCache, store: Store) -> None:
    """Save the counts that changed since the last save, at once (at shutdown); a failure is
    one line in the log: it costs the counts, never a request."""
    changed = cache.usage()
    if not changed:
        return
    try:
        _save(store, changed)
    except StoreError as exc:
        log.warning("could not save the usage counts of %d @contexts: %s", len(changed), exc)
        return
    _saved(changed)


async def save_usage_soon(
    cache: ContextCache, committer: GroupCommitter, failed: ThrottledLog
) -> bool:
    """Save the counts that changed as a job of the group committer, as the other periodic
    writes are: it waits its turn behind the writes and, while another process holds the
    write lock, waits off the loop's back (api/commit.py) instead of failing at once. A
    failure (a lost or full store, a lock held for long) is one throttled line, not a
    traceback a minute, and the counts are tried again at the next save."""
    changed = cache.usage()
    if not changed:
        return True
    try:
        await committer.run(partial(_save, committer.store, changed))
    except StoreError as exc:
        failed.warning(
            "could not save the usage counts of %d @contexts (tried again every %g s): %s",
            len(changed),
            SAVE_EVERY,
            exc,
        )
        return False
    except Exception:  # a bug: its traceback, but never the end of the saves
        log.exception("could not save the usage counts of %d @contexts", len(changed))
        return False
    _saved(changed)
    return True


async def keep_usage(
    cache: ContextCache, committer: GroupCommitter, every: float = SAVE_EVERY
) -> None:
    """Save the counts every `every` seconds while the hub serves (and at shutdown, by
    the app's lifespan)."""
    failed = ThrottledLog(log, LOG_EVERY)
    while True:
        await asyncio.sleep(every)
        await save_usage_soon(cache, committer, failed)
