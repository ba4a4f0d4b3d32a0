"""Notifications over HTTP: what fires, what a notification holds, and the status it leaves."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette

from conftest import BASE, CORE, JSONLD, create
from iot_support import IOT, provision
from receivers import Receiver, wait_for

ROOM = "urn:ngsi-ld:Room:n1"


def room(temp: float = 20, **extra: Any) -> dict[str, Any]:
    """A Room entity with a temperature."""
    return {
        "id": ROOM,
        "type": "Room",
        "temperature": {"type": "Property", "value": temp},
        **extra,
    }


async def subscribe(client: httpx.AsyncClient, url: str, **members: Any) -> str:
    """Create a subscription to Room entities notifying url; returns its id."""
    notification = {"endpoint": {"uri": url}, **members.pop("notification", {})}
    body = {
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "notification": notification,
        **members,
    }
    resp = await client.post(f"{BASE}/subscriptions", json=body)
    assert resp.status_code == 201, resp.text
    return resp.headers["Location"].rsplit("/", 1)[-1]


async def patch_temp(client: httpx.AsyncClient, value: float) -> None:
    """Update the room's temperature."""
    resp = await client.patch(
        f"{BASE}/entities/{ROOM}/attrs", json={"temperature": {"type": "Property", "value": value}}
    )
    assert resp.status_code == 204, resp.text


async def test_create_and_update_notify_with_the_entity(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    sid = await subscribe(hub, receiver.url())
    await create(hub, room(20))
    await patch_temp(hub, 21.5)
    got = await wait_for(lambda: len(receiver.received()) >= 2 and receiver.received())
    first, second = got[0].body, got[1].body
    assert first["type"] == "Notification" and first["subscriptionId"].endswith(sid)
    assert first["data"] == [
        {"id": ROOM, "type": "Room", "temperature": {"type": "Property", "value": 20}}
    ]
    assert first["triggerReason"] == "attributeCreated"
    assert second["triggerReason"] == "attributeUpdated"
    assert second["data"][0]["temperature"]["value"] == 21.5
    assert "previousValue" not in second["data"][0]["temperature"]  # showChanges is off
    assert got[0].headers["Content-Type"] == "application/json"
    assert "ngsi-ld-core-context" in got[0].headers["Link"]


async def test_show_changes_carries_previous_values(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(hub, room(20, label={"type": "Property", "value": "a"}))
    await subscribe(
        hub,
        receiver.url(),
        notification={"showChanges": True},
        notificationTrigger=["attributeUpdated", "attributeDeleted"],
    )
    await patch_temp(hub, 25)
    resp = await hub.delete(f"{BASE}/entities/{ROOM}/attrs/label")
    assert resp.status_code == 204
    await wait_for(lambda: len(receiver.received()) >= 2)
    updated, deleted = (r.body["data"][0] for r in receiver.received()[:2])
    assert updated["temperature"] == {"type": "Property", "value": 25, "previousValue": 20}
    assert deleted["label"] == {
        "type": "Property",
        "value": "urn:ngsi-ld:null",
        "previousValue": "a",
    }


async def test_watched_attributes_ignore_other_changes(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(hub, room(20, humidity={"type": "Property", "value": 40}))
    await subscribe(hub, receiver.url(), watchedAttributes=["temperature"])
    resp = await hub.patch(
        f"{BASE}/entities/{ROOM}/attrs", json={"humidity": {"type": "Property", "value": 41}}
    )
    assert resp.status_code == 204
    await patch_temp(hub, 22)
    await wait_for(lambda: receiver.received())
    await hub.get(f"{BASE}/entities/{ROOM}")  # let any stray delivery land
    got = receiver.received()
    assert len(got) == 1, [r.body for r in got]
    assert got[0].body["data"][0]["temperature"]["value"] == 22


async def test_q_selects_which_changes_notify(hub: httpx.AsyncClient, receiver: Receiver) -> None:
    await create(hub, room(20))
    await subscribe(hub, receiver.url(), q="temperature>30")
    await patch_temp(hub, 25)  # does not match
    await patch_temp(hub, 35)  # matches
    await wait_for(lambda: receiver.received())
    values = [r.body["data"][0]["temperature"]["value"] for r in receiver.received()]
    assert values == [35]


async def test_entity_created_and_deleted_triggers(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(hub, receiver.url(), notificationTrigger=["entityCreated", "entityDeleted"])
    await create(hub, room(20))
    await patch_temp(hub, 21)  # attributeUpdated is not asked for
    assert (await hub.delete(f"{BASE}/entities/{ROOM}")).status_code == 204
    await wait_for(lambda: len(receiver.received()) >= 2)
    got = receiver.received()
    assert [r.body["triggerReason"] for r in got] == ["entityCreated", "entityDeleted"]
    deleted = got[1].body["data"][0]
    assert set(deleted) == {"id", "type", "deletedAt"} and deleted["id"] == ROOM


async def test_paused_subscription_is_silent_until_resumed(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(hub, room(20))
    sid = await subscribe(hub, receiver.url(), isActive=False)
    await patch_temp(hub, 21)
    resp = await hub.patch(f"{BASE}/subscriptions/{sid}", json={"isActive": True})
    assert resp.status_code == 204
    await patch_temp(hub, 22)
    await wait_for(lambda: receiver.received())
    values = [r.body["data"][0]["temperature"]["value"] for r in receiver.received()]
    assert values == [22]


async def test_throttling_drops_changes_inside_the_period(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(hub, room(20))
    await subscribe(hub, receiver.url(), throttling=60)
    for value in (21, 22, 23):
        await patch_temp(hub, value)
    await wait_for(lambda: receiver.received())
    await hub.get(f"{BASE}/entities/{ROOM}")
    assert [r.body["data"][0]["temperature"]["value"] for r in receiver.received()] == [21]


class CommitFails:
    """The store's writer on a disk that fills up at COMMIT: SQLITE_FULL, nothing stored."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT":
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
            raise exc
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


async def test_a_refused_write_uses_up_no_throttling_window(
    hub: httpx.AsyncClient, receiver: Receiver, app: Starlette
) -> None:
    """The refused write's stamp stayed: the next acknowledged change was never notified."""
    await create(hub, room(20))
    await subscribe(hub, receiver.url(), throttling=60)
    store = app.state.store
    real, store._writer = store._writer, CommitFails(store._writer)
    try:
        body = {"temperature": {"type": "Property", "value": 500}}
        resp = await hub.patch(f"{BASE}/entities/{ROOM}/attrs", json=body)
        assert resp.status_code == 503, resp.text
    finally:
        store._writer = real
    await patch_temp(hub, 600)
    await wait_for(lambda: receiver.received(), what="the acknowledged change's notification")
    assert [r.body["data"][0]["temperature"]["value"] for r in receiver.received()] == [600]


async def test_a_group_run_again_job_by_job_keeps_the_innocent_jobs_notification(
    hub: httpx.AsyncClient, receiver: Receiver, app: Starlette
) -> None:
    """A job that fails after writing rolls its group back; the others run again, and their
    first run's stamps must not throttle the second."""
    await create(hub, room(20))
    await subscribe(hub, receiver.url(), throttling=60)
    svc, tm = app.state.entities, app.state.contexts.core
    body = {"temperature": {"type": "Property", "value": 31}}

    def innocent() -> Any:
        return svc.update("", ROOM, body, tm)

    def half_way() -> None:
        svc.create("", {"id": "urn:ngsi-ld:Other:1", "type": "Other"}, tm)
        raise RuntimeError("fails after writing")

    committer = app.state.committer
    results = await asyncio.gather(
        committer.run(innocent), committer.run(half_way), return_exceptions=True
    )
    assert not isinstance(results[0], BaseException) and isinstance(results[1], RuntimeError)
    await wait_for(lambda: receiver.received(), what="the innocent job's notification")
    assert [r.body["data"][0]["temperature"]["value"] for r in receiver.received()] == [31]


async def test_time_interval_notifies_without_changes(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(hub, room(20))
    await subscribe(hub, receiver.url(), timeInterval=1)
    got = await wait_for(lambda: receiver.received(), timeout=4, what="a periodic notification")
    assert got[0].body["data"][0]["id"] == ROOM


async def test_format_attributes_sysattrs_and_receiver_info(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(
        hub,
        receiver.url(),
        notification={
            "format": "keyValues",
            "attributes": ["temperature"],
            "sysAttrs": True,
            "endpoint": {
                "uri": receiver.url(),
                "receiverInfo": [{"key": "X-City-Key", "value": "namwon"}],
            },
        },
    )
    await create(hub, room(20, humidity={"type": "Property", "value": 40}))
    got = await wait_for(lambda: receiver.received())
    entity = got[0].body["data"][0]
    assert entity["temperature"] == 20 and "humidity" not in entity
    assert "createdAt" in entity and "modifiedAt" in entity
    assert got[0].headers["X-City-Key"] == "namwon"


async def test_json_ld_endpoint_gets_the_context_in_the_body(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(
        hub, receiver.url(), notification={"endpoint": {"uri": receiver.url(), "accept": JSONLD}}
    )
    await create(hub, room(20))
    got = await wait_for(lambda: receiver.received())
    assert got[0].headers["Content-Type"] == JSONLD
    assert "Link" not in got[0].headers
    assert "ngsi-ld-core-context" in got[0].body["data"][0]["@context"]


async def test_tenant_header_and_isolation(hub: httpx.AsyncClient, receiver: Receiver) -> None:
    tenant = {"NGSILD-Tenant": "namwon"}
    resp = await hub.post(
        f"{BASE}/subscriptions",
        json={
            "type": "Subscription",
            "entities": [{"type": "Room"}],
            "notification": {"endpoint": {"uri": receiver.url()}},
        },
        headers=tenant,
    )
    assert resp.status_code == 201
    await create(hub, room(1))  # the default tenant: nobody subscribed there
    await create(hub, room(2), headers=tenant)
    got = await wait_for(lambda: receiver.received())
    await hub.get(f"{BASE}/entities/{ROOM}")
    assert len(receiver.received()) == 1
    assert got[0].headers["NGSILD-Tenant"] == "namwon"
    assert got[0].body["data"][0]["temperature"]["value"] == 2


async def test_rejected_request_notifies_nothing(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(hub, room(20))
    await subscribe(hub, receiver.url())
    bad = await hub.patch(f"{BASE}/entities/{ROOM}/attrs", json={"temperature": {"type": "Nope"}})
    assert bad.status_code == 400
    await patch_temp(hub, 30)
    await wait_for(lambda: receiver.received())
    assert [r.body["data"][0]["temperature"]["value"] for r in receiver.received()] == [30]


async def test_status_records_success_and_failure(
    hub: httpx.AsyncClient, receiver: Receiver, app: Starlette
) -> None:
    await create(hub, room(20))
    receiver.status["/fails"] = 500
    ok_sid = await subscribe(hub, receiver.url())
    bad_sid = await subscribe(hub, receiver.url("/fails"))
    app.state.notifier.dispatcher.policy.attempts = 2
    app.state.notifier.dispatcher.policy.backoff = 0.05
    await patch_temp(hub, 21)

    async def status(sid: str) -> dict[str, Any]:
        resp = await hub.get(f"{BASE}/subscriptions/{sid}")
        return dict(resp.json()["notification"])

    await wait_for(lambda: len(receiver.received("/fails")) >= 2, what="two failed attempts")
    # the receiver answers before the hub records the answer: wait until it has given up
    assert await wait_for(lambda: app.state.notifier.dispatcher.counters.given_up == 1)
    ok = await status(ok_sid)
    assert ok["status"] == "ok" and ok["timesSent"] == 1 and "lastSuccess" in ok
    bad = await status(bad_sid)
    assert bad["status"] == "failed" and bad["timesFailed"] == 2 and "lastFailure" in bad
    assert "lastSuccess" not in bad
    health = (await hub.get("/health")).json()["notifications"]
    assert health["delivered"] == 1 and health["failedAttempts"] == 2


async def test_device_measurements_notify_like_api_updates(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    device = await provision(
        hub,
        {
            "id": "t1",
            "entityType": "Room",
            "protocol": "http",
            "mapping": {"attributes": {"t": {"name": "temperature", "type": "number"}}},
        },
    )
    await subscribe(hub, receiver.url(), notification={"showChanges": True})
    resp = await hub.post(
        f"{IOT}/json", params={"k": device["apikey"], "i": "t1"}, json={"t": 19.5}
    )
    assert resp.status_code == 204, resp.text
    got = await wait_for(lambda: receiver.received(), what="the device's notification")
    entity = got[0].body["data"][0]
    assert entity["id"] == "urn:ngsi-ld:Room:t1"
    assert entity["temperature"]["value"] == 19.5


async def test_delivery_status_is_stored_with_the_subscription(
    hub: httpx.AsyncClient, receiver: Receiver, app: Starlette
) -> None:
    sid = await subscribe(hub, receiver.url())
    await create(hub, room(20))
    live = app.state.notifier.get("", sid)
    await wait_for(lambda: live.status.get("timesSent"), what="the delivery to be recorded")
    await app.state.notifier.close()  # flushes what the once-a-second writer has not written
    stored = app.state.store.resource_get("subscription", "", sid)
    assert stored["_notif"]["timesSent"] == 1 and stored["_notif"]["status"] == "ok"


async def test_a_compound_context_is_linked_by_a_url_the_hub_serves(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    inline = [{"warmth": "https://vocab.example.org/temperature"}, CORE]
    body = {
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "notification": {"endpoint": {"uri": receiver.url()}},
        "@context": inline,
    }
    resp = await hub.post(f"{BASE}/subscriptions", json=body, headers={"Content-Type": JSONLD})
    assert resp.status_code == 201, resp.text
    await create(hub, room(20))
    (got,) = await wait_for(lambda: receiver.received())
    url = got.headers["Link"].split(">", 1)[0].lstrip("<")
    served = await hub.get(urlsplit(url).path)  # what a receiver that follows the Link gets
    assert served.status_code == 200, (url, served.text)
    assert served.json()["@context"] == inline


async def test_the_notifiers_own_link_to_a_compound_context_is_served(
    hub: httpx.AsyncClient, app: Starlette
) -> None:
    inline = [{"warmth": "https://vocab.example.org/temperature"}, CORE]
    url = app.state.notifier.link(inline).split(">", 1)[0].lstrip("<")
    served = await hub.get(urlsplit(url).path)
    assert served.status_code == 200, (url, served.text)
    assert served.json()["@context"] == inline


async def test_a_cookie_one_tenants_receiver_set_is_not_sent_for_another(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A receiver's Set-Cookie answering one tenant's notification was kept by the sender's
    shared cookie jar and sent with every later notification to that host, another
    tenant's included: a notification carries its subscription's receiverInfo, no more."""
    receiver.cookies["/a"] = "session=city-a-secret; Path=/"
    host = f"http://localhost:{receiver.port}"  # aiohttp keeps no cookies for IP addresses
    for tenant in ("city-a", "city-b"):
        resp = await hub.post(
            f"{BASE}/subscriptions",
            json={
                "type": "Subscription",
                "entities": [{"type": "Room"}],
                "notification": {"endpoint": {"uri": f"{host}/{tenant[-1]}"}},
            },
            headers={"NGSILD-Tenant": tenant},
        )
        assert resp.status_code == 201, resp.text
    await create(hub, room(1), headers={"NGSILD-Tenant": "city-a"})
    await wait_for(lambda: receiver.received("/a"), what="city-a's notification")
    await create(hub, room(2), headers={"NGSILD-Tenant": "city-b"})
    got = await wait_for(lambda: receiver.received("/b"), what="city-b's notification")
    assert got[0].headers["NGSILD-Tenant"] == "city-b"
    assert "Cookie" not in got[0].headers, got[0].headers
