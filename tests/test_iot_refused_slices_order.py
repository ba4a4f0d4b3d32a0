"""Slices the store refused for a passing cause (decision 089) are stored in the order they came,
also while those waiting are written one after another once the store takes writes again: a
slice that came then was written at once, before older ones still waiting in line, so with no
observedAt to order them an older reading overwrote a newer one."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from cityhub.ingest.agent import pipeline
from cityhub.ingest.agent.pipeline import Ingestor, Pending
from cityhub.ingest.agent.stats import Stats
from cityhub.ngsild.service import BatchOutcome
from cityhub.store.base import StoreBusy


def pending(name: str) -> Pending:
    """An MQTT message (no waiter, acknowledged by the agent) of one fragment."""
    raw = SimpleNamespace(ack=lambda: None, replay=False)
    return Pending(target=None, items=[{"id": name}], raw=raw, waiter=None)


async def until(check: Any) -> None:
    """Wait (at most about a second) until check() holds."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("never happened")


async def test_a_slice_that_comes_while_refused_ones_are_written_goes_after_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """a is refused and waits; b and d wait behind it; the store takes writes again and, while
    b is being written, c comes: it is written after d, not before."""
    monkeypatch.setattr(pipeline, "RETRY_FIRST", 0.01)
    stored: list[str] = []
    attempts: list[str] = []
    state = SimpleNamespace(open=False, go=asyncio.Event())

    async def run(job: Any, size: int = 0) -> BatchOutcome:  # the committer's
        name = job.name
        attempts.append(name)
        if not state.open:
            raise StoreBusy("the database is locked by another process")
        stored.append(name)  # the order the writes reach the store
        if name == "b":
            await state.go.wait()
        return BatchOutcome()

    agent = Ingestor(
        None, None, Stats(), SimpleNamespace(committer=SimpleNamespace(run=run)), 0.01, 100
    )

    def job(tenant: str, tm: Any, batch: list[Pending]) -> Any:  # names the slice
        return SimpleNamespace(name=batch[0].items[0]["id"])

    monkeypatch.setattr(agent, "_job", job)
    tasks: dict[str, asyncio.Task[None]] = {}

    def send(name: str) -> None:
        tasks[name] = asyncio.create_task(
            agent._write_slice("", None, [pending(name)], 1, lambda p, r: None)
        )

    send("a")
    await until(lambda: "a" in attempts)  # refused: it waits, holding the line
    send("b")
    send("d")
    await asyncio.sleep(0.005)
    state.open = True  # the store takes writes again: a, then b (slow), then d
    await until(lambda: "b" in stored)
    send("c")  # came after d
    await asyncio.sleep(0.02)
    state.go.set()
    await asyncio.wait_for(asyncio.gather(*tasks.values()), 5)
    assert stored == ["a", "b", "d", "c"]
