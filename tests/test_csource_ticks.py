"""csourceSubscriptions that send the matching registrations (on creation and on each
timeInterval tick) read them on a thread, under the query deadline, at most once a second:
a 0.01 s timeInterval over 20,000 registrations held every request 0.3-0.5 s."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from cityhub.ngsild import registrations as R
from cityhub.notify import csource
from receivers import Receiver
from test_api_readers import Stall
from test_csource_notify import arrived, csubscribe, register

REGS_PATH = "/ngsi-ld/v1/csourceRegistrations"


async def test_a_short_time_interval_runs_at_the_floor(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await register(hub, "a")
    await csubscribe(hub, receiver.url(), timeInterval=0.01)
    await arrived(receiver, 1)
    await asyncio.sleep(1.5)
    sent = len(receiver.received("/notify"))
    assert sent <= 3, f"{sent} notifications in 1.5 s"  # the first, one tick, one in flight
    assert csource.MIN_TIME_INTERVAL >= 1


async def test_the_matching_read_holds_up_no_request(
    hub: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await register(hub, "a")
    stall = Stall(R.matches)
    monkeypatch.setattr(R, "matches", stall)
    creating = asyncio.create_task(csubscribe(hub, receiver.url()))
    assert await asyncio.to_thread(stall.started.wait, 5)
    try:
        r = await hub.get(f"{REGS_PATH}/{rid}")
        assert r.status_code == 200, r.text
        assert not creating.done()
    finally:
        stall.release.set()
    await creating
    await arrived(receiver, 1)
    assert not stall.timed_out
