"""csourceSubscriptions that send the matching registrations (on creation and on each
timeInterval tick) read them on a thread, under the query deadline, at most once a second
(ngsild/subscriptions.py's MIN_TIME_INTERVAL, shared with entity subscriptions):
a 0.01 s timeInterval over 20,000 registrations held every request 0.3-0.5 s."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.ngsild import registrations as R
from cityhub.ngsild import subscriptions as S
from cityhub.notify import csource
from conftest import problem
from receivers import Receiver
from test_api_readers import Stall
from test_csource_notify import CSUBS, arrived, csubscribe, register

REGS_PATH = "/ngsi-ld/v1/csourceRegistrations"
SUB = {
    "type": "Subscription",
    "entities": [{"type": "Room"}],
    "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
}


async def test_a_short_time_interval_runs_at_the_floor(
    app: Starlette, hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    """One stored before the floor was checked (now a 400) runs at it."""
    await register(hub, "a")
    resp = await hub.post(CSUBS, json=SUB | {"timeInterval": 0.01})
    problem(resp, 400, "BadRequestData")
    sid = await csubscribe(hub, receiver.url(), timeInterval=1)
    await arrived(receiver, 1)
    store = app.state.store
    changed = store.resource_update(csource.KIND, "", sid, lambda d: d | {"timeInterval": 0.01})
    assert changed is not None
    await app.state.notifier.csource.refresh("", sid, initial=False)
    await asyncio.sleep(1.5)
    sent = len(receiver.received("/notify"))
    assert sent <= 4, f"{sent} notifications in 1.5 s"  # the first, one or two ticks
    assert S.MIN_TIME_INTERVAL >= 1


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
