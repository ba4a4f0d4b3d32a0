"""Group commit: the writes of requests that arrive together share one SQLite transaction.

A commit costs about as much as a whole small write (the WAL frames of every page touched),
so under load the hub gathers write jobs while they keep arriving and runs them inside one
transaction, answering them all after the one COMMIT. Nothing is answered before it is
committed. A group closes at the first event-loop turn that brings no new job (or after
GATHER_TURNS turns): each turn polls the sockets once, so requests that were on their way join
the group, and a lone request waits only a few idle turns (microseconds).

A job that fails must leave nothing behind. Savepoints around every job cost about 7 % of a
small write, and jobs seldom fail after writing: a rejected body fails before any SQL, and a
duplicate id fails on its first INSERT, which SQLite undoes by itself. So a group first runs
without savepoints. If a job fails after it changed rows, the whole group is rolled back and
run again with a savepoint around each job (docs/decisions/011).

Creates (POST /entities) that follow one another in a group run as one bulk insert, as a
batch create of those entities would: a create's SQL cost a quarter more alone than in bulk
(decision 019). A merged run that raises makes the group run again, each job on its own.

Writes are validated and stored on the event loop, so a group holds every other request for
as long as it runs. A job says how large it is (the bytes of its JSON, the request body's
Content-Length for a single write), and a group takes jobs up to GROUP_BYTES: the rest wait
GATHER_TURNS loop turns, which read the sockets and move the requests that came meanwhile
on. Without it the slices of ten batch requests that arrived together ran as one group, and
the loop was held for all ten. The slices of one batch request are as many turns apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Iterator
from functools import partial
from typing import Any, TypeVar

import orjson
from starlette.requests import Request

from cityhub.ngsild.context import TermMap
from cityhub.ngsild.errors import NgsiLdError, storage_full
from cityhub.ngsild.service import BatchOutcome, item_id
from cityhub.notify.matching_cost import Weigh, weigher
from cityhub.store.base import EntityQuery, StoreBusy, StoreFull

log = logging.getLogger("cityhub.commit")
T = TypeVar("T")
Outcome = tuple[bool, Any]  # (ok, result) or (False, the error)
# Jobs with the same key that follow one another in a group may run as one call: key, the
# job's item, and the function that writes many items (one outcome each, nothing written
# for an item that fails).
Merge = tuple[Hashable, Any, Callable[[list[Any]], list[Outcome]]]
Job = tuple[Callable[[], Any], asyncio.Future[Any], Merge | None, int]  # ..., its bytes
GATHER_TURNS = 4  # at most this many loop turns between a group's first job and its flush
# A batch request is written in slices, each its own job, so that none holds the loop long:
# at most SLICE entities, SLICE_ELEMENTS elements of their JSON (members and array items,
# counted as its commas: the work is per attribute, array item or position, and 1,000
# entities of 200 attributes in one slice held every other request for 12 s) and
# SLICE_BYTES of it; the first entity of a slice whatever its size. A slice of 20,000
# elements takes some 0.2 s, about what 1,000 typical city entities took before (the bench's
# 486-byte ones have 18 commas: 1,000 of them stay one slice, one COMMIT, as (d) measures).
SLICE = 1_000
SLICE_ELEMENTS = 20_000
SLICE_BYTES = 1024 * 1024
# ... and at most SLICE_MATCHES (changed entity, candidate subscription) pairs, which matching
# tests inside the transaction at some 3-5 µs each (a q test; a watchedAttributes one that
# the index leaves out costs nothing): 10,000 subscriptions on one type made one 1,000-entity
# slice hold the loop for 52 s. A slice's job counts its pairs as bytes in proportion
# (SLICE_MATCHES of them as SLICE_BYTES), so a group holds no more matching either.
SLICE_MATCHES = 50_000
GROUP_BYTES = 256 * 1024  # jobs of one group: a large slice, or many small writes
# While another process holds the write lock (`cityhub import --db`), a group is tried again
# after BUSY_PAUSE seconds, doubling up to BUSY_PAUSE_MAX, for BUSY_WAIT seconds in all;
# then its jobs fail with StoreBusy (503). The loop serves other requests meanwhile.
BUSY_WAIT = 5.0
BUSY_PAUSE = 0.01
BUSY_PAUSE_MAX = 0.02  # a failed BEGIN costs microseconds; an importer's gap is 5 ms


class GroupCommitter:
    """Queue write jobs on the running loop; flush them in one transaction once they stop
    arriving."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._jobs: list[Job] = []
        self._scheduled = False
        self._busy_since: float | None = None  # when the lock was first found taken
        self._busy_pause = BUSY_PAUSE

    async def run(self, fn: Callable[[], T], merge: Merge | None = None, size: int = 0) -> T:
        """Run fn (which opens store.write blocks) in the next group transaction; with merge,
        it may instead run together with the jobs of the same key next to it. size: its
        bytes, which a group holds at most GROUP_BYTES of."""
        if not hasattr(self.store, "savepoint"):
            return fn()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._jobs.append((fn, fut, merge, size))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._gather, loop, 0, GATHER_TURNS)
        result: T = await fut
        return result

    def _gather(self, loop: asyncio.AbstractEventLoop, seen: int, turns: int) -> None:
        """Wait one more loop turn while the last one brought new jobs, then flush."""
        queued = len(self._jobs)
        if queued > seen and turns > 0:
            loop.call_soon(self._gather, loop, queued, turns - 1)
        else:
            self._flush()

    def _flush(self) -> None:
        taken, total = 1, self._jobs[0][3]
        while taken < len(self._jobs) and total + self._jobs[taken][3] <= GROUP_BYTES:
            total += self._jobs[taken][3]
            taken += 1
        jobs, self._jobs = self._jobs[:taken], self._jobs[taken:]
        self._scheduled = bool(self._jobs)  # the rest run a few turns later (_pause)
        try:
            outcomes = self._attempt(jobs, isolated=False)
            if outcomes is None:  # a job failed half-way: run the group again, each isolated
                outcomes = self._attempt(jobs, isolated=True)
                assert outcomes is not None  # isolated runs never ask for a redo
        except StoreBusy as exc:  # nothing was run: wait for the lock off the loop's back
            if self._wait_for_lock(jobs):
                return
            outcomes = [(False, exc)] * len(jobs)
        self._busy_since, self._busy_pause = None, BUSY_PAUSE
        for (_, fut, _, _), (ok, value) in zip(jobs, outcomes, strict=True):
            if fut.cancelled():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
        if self._jobs:
            asyncio.get_running_loop().call_soon(self._pause, GATHER_TURNS)

    def _wait_for_lock(self, jobs: list[Job]) -> bool:
        """Put the jobs back first in line and flush again after a pause, unless the lock
        has been taken for BUSY_WAIT already (False: they fail)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._busy_since is None:
            self._busy_since = now
        if now - self._busy_since >= BUSY_WAIT:
            return False
        self._jobs[:0] = jobs
        self._scheduled = True  # no other flush is due: _flush returns before its _pause
        loop.call_later(self._busy_pause, self._flush)
        self._busy_pause = min(self._busy_pause * 2, BUSY_PAUSE_MAX)
        return True

    def _pause(self, turns: int) -> None:
        """Flush the jobs a full group left after this many loop turns: each reads the
        sockets and runs what is ready, so requests that came meanwhile move on."""
        if turns > 0:
            asyncio.get_running_loop().call_soon(self._pause, turns - 1)
        else:
            self._flush()

    def _attempt(self, jobs: list[Job], *, isolated: bool) -> list[Outcome] | None:
        """Run the jobs in one transaction: (ok, result or error) per job, or None when a job
        failed after changing rows and the group was rolled back (only when not isolated).
        Isolated, every job runs on its own, merged or not."""
        store = self.store
        outcomes: list[Outcome] = []
        try:
            with store.group(savepoints=False):
                i = 0
                while i < len(jobs):
                    fn, _, merge, _ = jobs[i]
                    run = 1 if isolated or merge is None else _run_length(jobs, i, merge[0])
                    i += run
                    if run > 1:
                        outcomes += _merged([job[2] for job in jobs[i - run : i]])
                        continue
                    before = store.changes()
                    try:
                        if isolated:
                            with store.savepoint():
                                outcomes.append((True, fn()))
                        else:
                            outcomes.append((True, fn()))
                    except (StoreFull, StoreBusy):
                        raise  # SQLite may have rolled the whole transaction back: all fail
                    except Exception as exc:
                        if not isolated and store.changes() != before:
                            raise _Redo from exc
                        outcomes.append((False, exc))
        except _Redo:
            return None
        except StoreBusy:
            raise  # the lock was not had: nothing ran, the group may be tried again
        except Exception as exc:  # the COMMIT (or the disk) failed: nothing of it is stored
            return [(False, exc)] * len(jobs)
        return outcomes


def _run_length(jobs: list[Job], start: int, key: Hashable) -> int:
    """How many jobs from start on can merge under key."""
    end = start + 1
    while end < len(jobs) and (m := jobs[end][2]) is not None and m[0] == key:
        end += 1
    return end - start


def _merged(merges: list[Merge | None]) -> list[Outcome]:
    """Run merged jobs as one call. If it raises, the group runs again with every job on its
    own, so each gets its own answer."""
    first = merges[0]
    assert first is not None
    try:
        return first[2]([m[1] for m in merges if m is not None])
    except StoreFull:
        raise
    except Exception as exc:
        raise _Redo from exc


class _Redo(Exception):
    """A job failed after writing: roll the group back and run it again, jobs isolated."""


def body_size(request: Request) -> int:
    """The request body's bytes as its Content-Length declares them (0 when it does not)."""
    # the scope's list, not request.headers: building that costs ~10 µs (api/http.py::header)
    declared = next((v for k, v in request.scope["headers"] if k == b"content-length"), b"")
    return int(declared) if declared.isdigit() else 0


async def grouped(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run a service write through the app's group committer."""
    committer: GroupCommitter = request.app.state.committer
    return await committer.run(lambda: fn(*args), size=body_size(request))


async def grouped_create(request: Request, tenant: str, doc: dict[str, Any]) -> str:
    """POST /entities: the creates that follow one another in a group are inserted together
    (EntityService.create_many) with a few bulk statements instead of several each."""
    entities = request.app.state.entities
    created: str = await request.app.state.committer.run(
        lambda: entities.create_expanded(tenant, doc),
        merge=(("create", tenant), doc, lambda docs: entities.create_many(tenant, docs)),
        size=body_size(request),
    )
    return created


def job_size(size: int, matches: int) -> int:
    """What a job counts as in a group: its bytes, or its matching pairs if they weigh more."""
    return max(size, matches * SLICE_BYTES // SLICE_MATCHES)


def entity_slices(items: list[Any], weigh: Weigh | None = None) -> Iterator[tuple[int, int, int]]:
    """(start, end, size) of each slice: at most SLICE entities, SLICE_ELEMENTS elements,
    SLICE_BYTES of JSON and, with weigh (an item's candidate subscriptions), SLICE_MATCHES
    matching pairs; the first entity of a slice whatever its size. size: job_size's."""
    start, size, elements, matches = 0, 0, 0, 0
    for i, item in enumerate(items):
        text = orjson.dumps(item)
        n, e = len(text), text.count(b",") + 1
        m = weigh(item) if weigh is not None else 0
        if i > start and (
            i - start >= SLICE
            or size + n > SLICE_BYTES
            or elements + e > SLICE_ELEMENTS
            or matches + m > SLICE_MATCHES
        ):
            yield start, i, job_size(size, matches)
            start, size, elements, matches = i, 0, 0, 0
        size += n
        elements += e
        matches += m
    yield start, len(items), job_size(size, matches)


def batch_weigher(
    state: Any, tenant: str, terms: TermMap | Callable[[Any], TermMap] | None
) -> Weigh | None:
    """How much subscription matching each item of a batch written to tenant costs, with the
    app's state (None: no subscription to match)."""
    notifier = getattr(state, "notifier", None)
    return weigher(notifier.change_index(tenant) if notifier is not None else None, terms)


async def between_slices() -> None:
    """The loop turns a group leaves other requests before a batch's next slice."""
    for _ in range(GATHER_TURNS):
        await asyncio.sleep(0)


async def grouped_slices(
    request: Request,
    fn: Callable[..., BatchOutcome],
    tenant: str,
    items: Any,
    *args: Any,
    terms: TermMap | Callable[[Any], TermMap] | None = None,
) -> BatchOutcome:
    """Run a batch operation a slice at a time (entity_slices), each slice its own group-commit
    job; terms: the items' term maps, which read their types to weigh their matching work.

    Writes run on the event loop, so one job for a whole batch held every other request for
    as long as it took: 2.75 s for 20,000 entities. Batch operations are per entity (one bad
    entity never blocks the rest), so slicing changes no outcome. If a slice fails (a full
    disk, or a fault) after earlier slices were stored, the rest fail entity by entity, so the
    answer names exactly what was stored.
    """
    if not isinstance(items, list):
        return await grouped(request, fn, tenant, items, *args)
    committer: GroupCommitter = request.app.state.committer
    out = BatchOutcome()
    for start, end, size in entity_slices(items, batch_weigher(request.app.state, tenant, terms)):
        part_items = items if end - start == len(items) else items[start:end]
        try:
            part = await committer.run(partial(fn, tenant, part_items, *args), size=size)
        except Exception as exc:
            if not start:
                raise  # nothing was stored: the whole request fails as one
            # earlier slices are stored: a 500 would read as "nothing happened"
            log.exception("batch slice from entity %d failed; the rest are reported", start)
            err = exc if isinstance(exc, NgsiLdError) else _unstored(exc)
            out.errors += [(item_id(item), err) for item in items[start:]]
            out.failed += range(start, len(items))
            break
        out.extend(part, start)
        if end < len(items):
            await between_slices()
    return out


def _unstored(exc: Exception) -> NgsiLdError:
    """The per-entity error of a slice that failed after earlier ones were stored."""
    if isinstance(exc, StoreFull):  # the request's earlier slices are stored: not "nothing"
        return storage_full("this entity and the ones after it were not stored; those before were")
    return NgsiLdError(f"not stored: the hub failed while writing ({type(exc).__name__})")


async def purge_slices(
    request: Request,
    tenant: str,
    ids: list[str],
    drop: set[str],
    keep: set[str],
    query: EntityQuery | None = None,
) -> None:
    """DELETE /entities: purge the selected ids SLICE at a time, as grouped_slices does, each
    slice only what still meets the query; a refused slice after earlier ones were stored
    says how many were purged."""
    entities, committer = request.app.state.entities, request.app.state.committer
    done = 0
    for start, end, size in entity_slices(ids, batch_weigher(request.app.state, tenant, None)):
        part = ids[start:end]
        if start:
            await between_slices()
        try:
            await committer.run(partial(entities.purge, tenant, part, drop, keep, query), size=size)
        except StoreFull as exc:
            if not start:
                raise
            raise storage_full(f"{done} of the {len(ids)} selected entities were purged") from exc
        done += len(part)
