"""timeInterval subscriptions: every period notifies every matching entity, in notifications
of at most PERIODIC_PAGE entities each, none left out and none twice."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from conftest import BASE
from receivers import Receiver, wait_for

SUBS = f"{BASE}/subscriptions"


async def test_every_matching_entity_is_notified_each_period(
    app: Starlette, hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    from cityhub.notify import notifier

    page = notifier.PERIODIC_PAGE
    total = 2 * page + 500
    many = [
        {"id": f"urn:e:p{i:05d}", "type": "P", "n": {"type": "Property", "value": i}}
        for i in range(total)
    ]
    resp = await hub.post(f"{BASE}/entityOperations/create", json=many)
    assert resp.status_code == 201, resp.text[:300]
    other = {"id": "urn:e:other", "type": "Q", "n": {"type": "Property", "value": 0}}
    assert (await hub.post(f"{BASE}/entities", json=other)).status_code == 201
    body = {
        "type": "Subscription",
        "entities": [{"type": "P"}, {"idPattern": "urn:e:p0000.*", "type": "P"}],
        "timeInterval": 1,
        "notification": {"format": "keyValues", "endpoint": {"uri": receiver.url()}},
    }
    assert (await hub.post(SUBS, json=body)).status_code == 201

    pages = 3  # one period: two full pages and the rest
    got = await wait_for(
        lambda: len(receiver.received()) >= pages and receiver.received(),
        timeout=15,
        what="one period's notifications",
    )
    first = got[:pages]
    sizes = [len(r.body["data"]) for r in first]
    assert sizes == [page, page, 500]
    ids = [e["id"] for r in first for e in r.body["data"]]
    assert sorted(ids) == [f"urn:e:p{i:05d}" for i in range(total)], "each once, none left out"


async def test_a_period_whose_query_fails_leaves_the_next_periods_running(
    app: Starlette, hub: httpx.AsyncClient, receiver: Receiver, caplog: Any
) -> None:
    """A period's query stopped at CITYHUB_QUERY_TIMEOUT (or failing on the database) skips
    that period only: it ended the subscription's timer, and it never notified again until it
    was updated or the hub restarted, while GET still showed it active."""
    from cityhub.store.base import QueryTimeout

    entity = {"id": "urn:e:t1", "type": "T", "n": {"type": "Property", "value": 1}}
    assert (await hub.post(f"{BASE}/entities", json=entity)).status_code == 201
    store = app.state.store
    real_query = store.query
    failed: list[str] = []

    def query_once_too_slow(tenant: str, query: Any) -> Any:
        if not failed:
            failed.append(tenant)
            raise QueryTimeout(30.0)
        return real_query(tenant, query)

    store.query = query_once_too_slow
    body = {
        "type": "Subscription",
        "entities": [{"type": "T"}],
        "timeInterval": 1,
        "notification": {"endpoint": {"uri": receiver.url()}},
    }
    assert (await hub.post(SUBS, json=body)).status_code == 201
    got = await wait_for(receiver.received, timeout=10, what="a notification after a failed period")
    assert failed, "the first period's query failed"
    assert got[0].body["data"][0]["id"] == "urn:e:t1"
    assert "timeInterval" in caplog.text, "the skipped period is logged"
