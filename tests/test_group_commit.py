"""Group commit: jobs that arrive together share a transaction, and a failed job leaves nothing.

The committer first runs a group without savepoints; a job that fails after writing makes it
roll the group back and run every job again in its own savepoint (docs/decisions/011).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.api import commit
from cityhub.api.commit import GroupCommitter
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.errors import AlreadyExists
from cityhub.ngsild.service import EntityService
from cityhub.store.base import Change, OutboxItem
from cityhub.store.sqlite import SqliteStore

TM = ContextCache().core


class Sink:
    """One outbox item per changed entity; records what is handed over after COMMIT."""

    def __init__(self) -> None:
        self.delivered: list[str] = []

    def wants(self, tenant: str) -> bool:
        return True

    def outbox_items(self, tenant: str, changes: list[Change]) -> list[OutboxItem]:
        return [OutboxItem(tenant, "sub", "http://x", c.eid.encode()) for c in changes]

    def rolled_back(self, items: list[OutboxItem]) -> None:
        pass

    def committed(self, items: list[OutboxItem]) -> None:
        self.delivered += [i.payload.decode() for i in items]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[SqliteStore, EntityService, Sink]]:
    store = SqliteStore(tmp_path / "hub.db")
    sink = Sink()
    store.sink = sink
    yield store, EntityService(store), sink
    store.close()


def _entity(n: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:T:{n}", "type": "T", "v": {"type": "Property", "value": n}}


def _together(committer: GroupCommitter, jobs: list[Callable[[], Any]]) -> list[Any]:
    """Submit the jobs in one loop turn, so they share one group; results or exceptions."""

    async def go() -> list[Any]:
        return await asyncio.gather(*(committer.run(j) for j in jobs), return_exceptions=True)

    return asyncio.run(go())


def _counted(calls: dict[str, int], name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    def job() -> Any:
        calls[name] = calls.get(name, 0) + 1
        return fn()

    return job


def test_a_job_that_fails_before_writing_costs_the_others_nothing(
    hub: tuple[SqliteStore, EntityService, Sink],
) -> None:
    store, svc, sink = hub
    svc.create("", _entity(0), TM)
    calls: dict[str, int] = {}
    results = _together(
        GroupCommitter(store),
        [
            _counted(calls, "a", lambda: svc.create("", _entity(1), TM)),
            _counted(calls, "dup", lambda: svc.create("", _entity(0), TM)),  # fails on INSERT
            _counted(calls, "c", lambda: svc.create("", _entity(2), TM)),
        ],
    )
    assert results[0] == "urn:ngsi-ld:T:1" and results[2] == "urn:ngsi-ld:T:2"
    assert isinstance(results[1], AlreadyExists)
    assert calls == {"a": 1, "dup": 1, "c": 1}, "no redo: the failed job had written nothing"
    assert store.get("", "urn:ngsi-ld:T:1") and store.get("", "urn:ngsi-ld:T:2")
    assert sink.delivered[-2:] == ["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2"]


def test_a_job_that_fails_after_writing_leaves_nothing_and_the_others_commit(
    hub: tuple[SqliteStore, EntityService, Sink],
) -> None:
    store, svc, sink = hub

    def half_way() -> None:
        svc.create("", _entity(9), TM)  # written, then the job fails
        raise RuntimeError("the job gives up after its first write")

    calls: dict[str, int] = {}
    results = _together(
        GroupCommitter(store),
        [
            _counted(calls, "a", lambda: svc.create("", _entity(1), TM)),
            _counted(calls, "half", half_way),
            _counted(calls, "c", lambda: svc.create("", _entity(2), TM)),
        ],
    )
    assert results[0] == "urn:ngsi-ld:T:1" and results[2] == "urn:ngsi-ld:T:2"
    assert isinstance(results[1], RuntimeError)
    # the first pass stops at the failed job; the second runs every job in its own savepoint
    assert calls == {"a": 2, "half": 2, "c": 1}
    assert store.get("", "urn:ngsi-ld:T:9") is None, "the failed job's write was rolled back"
    assert store.get("", "urn:ngsi-ld:T:1") and store.get("", "urn:ngsi-ld:T:2")
    assert sink.delivered == ["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2"], "no notification for T:9"
    pending = {i.payload.decode() for i in store.outbox_pending()}
    assert "urn:ngsi-ld:T:9" not in pending


def test_every_write_of_a_failed_job_is_undone_not_only_the_last(
    hub: tuple[SqliteStore, EntityService, Sink],
) -> None:
    store, svc, _ = hub

    def two_writes_then_fail() -> None:
        svc.create("", _entity(7), TM)
        svc.create("", _entity(8), TM)
        raise RuntimeError("fails after two separate writes")

    results = _together(GroupCommitter(store), [two_writes_then_fail])
    assert isinstance(results[0], RuntimeError)
    assert store.get("", "urn:ngsi-ld:T:7") is None and store.get("", "urn:ngsi-ld:T:8") is None


def _groups_of(store: SqliteStore, arrivals: list[int]) -> list[int]:
    """Submit one job at each of these loop turns; how many jobs each transaction held."""
    sizes: list[int] = []
    committer = GroupCommitter(store)
    flush = committer._flush

    def counting_flush() -> None:
        sizes.append(len(committer._jobs))
        flush()

    committer._flush = counting_flush  # type: ignore[method-assign]

    async def go() -> None:
        jobs = []
        turn = 0
        for at in arrivals:
            while turn < at:
                await asyncio.sleep(0)  # one loop turn
                turn += 1
            jobs.append(asyncio.ensure_future(committer.run(lambda: store.changes())))
        await asyncio.gather(*jobs)

    asyncio.run(go())
    return sizes


def test_writes_that_keep_arriving_share_one_transaction(
    hub: tuple[SqliteStore, EntityService, Sink],
) -> None:
    store, _, _ = hub
    # one job per loop turn for three turns: one COMMIT for all three
    assert _groups_of(store, [0, 1, 2]) == [3]
    # a gap of several idle turns closes the group: a lone write is not held back
    assert _groups_of(store, [0, 20]) == [1, 1]


def test_a_steady_stream_still_commits_every_few_turns(
    hub: tuple[SqliteStore, EntityService, Sink],
) -> None:
    store, _, _ = hub
    sizes = _groups_of(store, list(range(40)))
    assert sum(sizes) == 40 and len(sizes) > 1, "a group must not wait for the stream to end"


def test_large_jobs_that_arrive_together_run_in_turns_of_their_own(
    hub: tuple[SqliteStore, EntityService, Sink], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group holds jobs up to GROUP_BYTES, and the rest wait a few loop turns: the slices
    of several batch requests that arrived together ran as one group, holding the loop for
    all of them, and no other request was read in between."""
    store, svc, _ = hub
    monkeypatch.setattr(commit, "GROUP_BYTES", 1000)
    committer = GroupCommitter(store)
    order: list[str] = []

    def job(n: int) -> Callable[[], Any]:
        def run() -> None:
            order.append(f"job {n}")
            svc.create("", _entity(n), TM)
            # what the loop does next: another request's turn, or the next job at once
            asyncio.get_running_loop().call_soon(order.append, f"turn after {n}")

        return run

    async def go() -> None:
        small = [committer.run(job(n), size=100) for n in (4, 5)]
        await asyncio.gather(*(committer.run(job(n), size=600) for n in (1, 2, 3)), *small)

    asyncio.run(go())
    assert order == [
        "job 1",
        "turn after 1",
        "job 2",
        "turn after 2",
        "job 3",
        "job 4",  # 600 + 100 + 100: small jobs join a group up to the bound
        "job 5",
        "turn after 3",
        "turn after 4",
        "turn after 5",
    ]
    assert all(store.get("", f"urn:ngsi-ld:T:{n}") for n in range(1, 6))
