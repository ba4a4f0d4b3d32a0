"""The outbox on disk has a total bound: past CITYHUB_NOTIFY_OUTBOX_TOTAL rows the oldest
rows on disk of the largest backlogs are given up, so dead receivers cannot fill the disk
(and make every write answer 503), while smaller backlogs and what is in memory are kept."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.settings import Settings
from conftest import BASE, create
from receivers import ServerThread, wait_for
from test_notify_spill import entity, numbers, subscription


async def test_past_the_total_bound_the_largest_backlog_loses_its_oldest_rows_on_disk(
    hub: httpx.AsyncClient, app: Starlette, servers: ServerThread, monkeypatch: Any
) -> None:
    """Two dead receivers, 30 and 10 rows, a total bound of 20: the 30 give up their oldest
    20 on disk; the 10 of the smaller backlog are all kept, and the newest are sent."""
    from cityhub.notify import delivery

    monkeypatch.setattr(delivery, "TRIM_EVERY", 0.2)
    notifier = app.state.notifier
    policy = notifier.dispatcher.policy
    policy.queue_max, policy.backoff, policy.backoff_max = 2, 0.05, 0.05
    policy.attempts, policy.outbox_total = 10_000, 20
    big, small = servers.receiver(), servers.receiver()
    big.status["/notify"] = small.status["/notify"] = 503
    for rec, type_ in ((big, "Big"), (small, "Small")):
        resp = await hub.post(f"{BASE}/subscriptions", json=subscription(rec.url(), type_))
        assert resp.status_code == 201
    for n in range(30):
        assert (await create(hub, entity(n, "Big"))).status_code == 201
    for n in range(10):
        assert (await create(hub, entity(n, "Small"))).status_code == 201

    def rows() -> int:
        notifier.dispatcher.flush_acks()
        return len(notifier.store.outbox_pending())

    await wait_for(lambda: rows() <= 20, timeout=5, what="the total bound")
    assert notifier.dispatcher.counters.report()["droppedOutboxFull"] == 20
    health = (await hub.get("/health")).json()["notifications"]
    assert health["droppedOutboxFull"] == 20
    assert health["outboxRows"] == 20
    big.status["/notify"] = small.status["/notify"] = 200
    await wait_for(lambda: 29 in numbers(big.received()), timeout=10, what="the newest")
    await wait_for(lambda: 9 in numbers(small.received()), timeout=10, what="the small one")
    assert set(numbers(small.received())) == set(range(10)), "the smaller backlog is kept"
    got = list(dict.fromkeys(numbers(big.received())))
    assert got == sorted(got), f"in order: {got}"
    assert set(range(23, 30)) <= set(got), f"the newest are kept: {got}"
    assert len(got) == 10, f"3 in memory and the newest 7 on disk: {got}"


def test_the_total_bound_is_on_by_default_and_at_least_a_thousand_rows() -> None:
    """With no bound by default, a receiver down for days filled the disk, and then every
    write of the hub answered 503."""
    import pydantic

    assert Settings().notify_outbox_total == 2_000_000
    assert Settings(notify_outbox_total=0).notify_outbox_total == 0
    with pytest.raises(pydantic.ValidationError, match="at least 1000"):
        Settings(notify_outbox_total=10)


def test_the_largest_backlogs_are_cut_to_one_level_before_a_smaller_one_loses_a_row() -> None:
    """Giving up the oldest of every backlog alike would cost a receiver down a minute its
    notifications while one down for days keeps its own."""
    from cityhub.notify.outbox_bound import levelled

    a, b, c = ("", "a"), ("", "b"), ("", "c")
    assert levelled({a: 100, b: 10}, 30) == {a: 30}
    assert levelled({a: 100, b: 60, c: 10}, 50) == {a: 45, b: 5}
    assert sum(levelled({a: 100, b: 99, c: 10}, 3).values()) == 3
    assert levelled({a: 5, b: 3}, 20) == {a: 5, b: 3}, "all on disk, no more"
    assert levelled({a: 5}, 0) == {}
