"""Where imported entities go: straight into a SQLite store (dbsink.py), or to a running hub
over HTTP (httpsink.py).

Both sinks take chunks of normalized entities and answer, per chunk, how many were created,
updated or already stored as the file has them, and which were rejected with which NGSI-LD
error, so the runner never needs to know which one it talks to. Both write only what the file
changes (refresh.py, carried out by writer.Writer): an upsert (options=update), then a merge
deleting what the file emptied.
"""

from __future__ import annotations

import asyncio
import logging

from cityhub.ingest.importers.dbsink import DbSink
from cityhub.ingest.importers.httpsink import HttpSink
from cityhub.ingest.importers.records import ImportFailed
from cityhub.ingest.importers.writer import ChunkResult, Sink
from cityhub.ngsild.context import ContextCache, TermMap
from cityhub.ngsild.errors import NgsiLdError
from cityhub.settings import Settings

__all__ = ["ChunkResult", "DbSink", "HttpSink", "Sink", "term_map"]


def term_map(context: str | None, settings: Settings) -> TermMap:
    """The core context, or the user's @context URL fetched once (mirrors apply). A failure is
    the one line ImportFailed prints, with the particulars the hub's log would have had: that
    warning came out too, through Python's last-resort handler, as a second line."""
    cache = ContextCache(timeout=settings.context_timeout, mirrors=settings.context_mirrors)
    contexts = logging.getLogger("cityhub.context")
    was, contexts.disabled = contexts.disabled, True
    try:
        return asyncio.run(cache.term_map(context, count=False))
    except NgsiLdError as exc:
        cause = exc.__cause__
        why = f" ({type(cause).__name__}: {cause})" if isinstance(cause, Exception) else ""
        raise ImportFailed(f"--context {context}: {exc.detail}{why}") from exc
    finally:
        contexts.disabled = was
