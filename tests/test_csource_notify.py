"""Context source registration subscriptions (/csourceSubscriptions) at work: which registration
writes notify whom, what a ContextSourceNotification holds, and the status it leaves.

A test that expects silence from one subscription lets a second one on the same endpoint
notify afterwards: one endpoint's notifications arrive in order, so once the second has
arrived, the first would have too.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE, JSONLD
from receivers import Receiver, wait_for

REGS = f"{BASE}/csourceRegistrations"
CSUBS = f"{BASE}/csourceSubscriptions"
CSR = "urn:ngsi-ld:ContextSourceRegistration:"
ROOM1 = "urn:ngsi-ld:Room:r1"


async def register(
    client: httpx.AsyncClient,
    name: str,
    *information: dict[str, Any],
    headers: dict[str, str] | None = None,
    **members: Any,
) -> str:
    """Create a registration (Room entities unless told) and return its id."""
    body = {
        "id": CSR + name,
        "type": "ContextSourceRegistration",
        "information": list(information) or [{"entities": [{"type": "Room"}]}],
        "endpoint": "http://csource.example.org:1026",
        **members,
    }
    resp = await client.post(REGS, json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return str(body["id"])


async def csubscribe(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> str:
    """Create a csourceSubscription to Room registrations notifying url; returns its id."""
    endpoint = {"uri": url, **members.pop("endpoint", {})}
    body = {
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "notification": {"endpoint": endpoint},
        **members,
    }
    resp = await client.post(CSUBS, json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.headers["Location"].rsplit("/", 1)[-1]


async def patch_reg(client: httpx.AsyncClient, rid: str, fragment: dict[str, Any]) -> None:
    """Update a registration."""
    resp = await client.patch(f"{REGS}/{rid}", json=fragment)
    assert resp.status_code == 204, resp.text


def got(receiver: Receiver, path: str = "/notify") -> list[tuple[str, list[str]]]:
    """(triggerReason, registration ids) of each notification received on a path."""
    return [
        (r.body["triggerReason"], [d["id"] for d in r.body["data"]])
        for r in receiver.received(path)
    ]


async def arrived(receiver: Receiver, count: int, path: str = "/notify") -> list[Any]:
    """Wait until count notifications arrived on a path; their bodies."""
    await wait_for(lambda: len(receiver.received(path)) >= count, what=f"{count} notifications")
    return [r.body for r in receiver.received(path)]


async def test_a_new_registration_notifies_newly_matching(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    sid = await csubscribe(hub, receiver.url())
    rid = await register(hub, "a")
    body = (await arrived(receiver, 1))[0]
    assert body["type"] == "ContextSourceNotification"
    assert body["id"].startswith("urn:ngsi-ld:Notification:")
    assert body["subscriptionId"] == sid and body["triggerReason"] == "newlyMatching"
    assert "notifiedAt" in body
    (data,) = body["data"]
    assert data["id"] == rid and data["type"] == "ContextSourceRegistration"
    assert data["information"] == [{"entities": [{"type": "Room"}]}]
    assert data["endpoint"] == "http://csource.example.org:1026"
    headers = receiver.received()[0].headers
    assert headers["Content-Type"] == "application/json"
    assert "ngsi-ld-core-context" in headers["Link"]


async def test_updates_notify_updated_then_no_longer_matching(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await csubscribe(hub, receiver.url())
    rid = await register(hub, "a")
    await patch_reg(hub, rid, {"endpoint": "http://other.example.org:1026"})
    await patch_reg(hub, rid, {"information": [{"entities": [{"type": "Sensor"}]}]})
    await patch_reg(hub, rid, {"endpoint": "http://third.example.org:1026"})  # matches no more
    await patch_reg(hub, rid, {"information": [{"entities": [{"type": "Room"}]}]})
    bodies = await arrived(receiver, 4)
    assert got(receiver) == [
        ("newlyMatching", [rid]),
        ("updated", [rid]),
        ("noLongerMatching", [rid]),
        ("newlyMatching", [rid]),
    ]
    assert bodies[1]["data"][0]["endpoint"] == "http://other.example.org:1026"
    # a registration that no longer matches is shown as it is now
    assert bodies[2]["data"][0]["information"] == [{"entities": [{"type": "Sensor"}]}]


async def test_deleting_a_registration_notifies_no_longer_matching(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await csubscribe(hub, receiver.url())
    rid = await register(hub, "a")
    assert (await hub.delete(f"{REGS}/{rid}")).status_code == 204
    await arrived(receiver, 2)
    assert got(receiver) == [("newlyMatching", [rid]), ("noLongerMatching", [rid])]


async def test_entity_selectors_match_types_ids_and_patterns(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await csubscribe(hub, receiver.url(), entities=[{"type": "Room", "id": ROOM1}])
    await register(hub, "other-type", {"entities": [{"type": "Sensor"}]})
    await register(hub, "other-id", {"entities": [{"type": "Room", "id": "urn:ngsi-ld:Room:r2"}]})
    await register(hub, "other-pattern", {"entities": [{"type": "Room", "idPattern": ".*r2$"}]})
    same_id = await register(hub, "same-id", {"entities": [{"type": "Room", "id": ROOM1}]})
    pattern = await register(hub, "pattern", {"entities": [{"type": "Room", "idPattern": ".*r1$"}]})
    every_room = await register(hub, "every-room")
    await arrived(receiver, 3)
    assert [ids for _, ids in got(receiver)] == [[same_id], [pattern], [every_room]]


async def test_watched_attributes_match_property_and_relationship_names(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await csubscribe(hub, receiver.url(), watchedAttributes=["temperature", "isIn"])
    room = [{"type": "Room"}]
    await register(hub, "humidity", {"entities": room, "propertyNames": ["humidity"]})
    prop = await register(hub, "temp", {"entities": room, "propertyNames": ["temperature"]})
    rel = await register(hub, "rel", {"entities": room, "relationshipNames": ["isIn"]})
    every_attr = await register(hub, "all", {"entities": room})
    await arrived(receiver, 3)
    assert [ids for _, ids in got(receiver)] == [[prop], [rel], [every_attr]]


async def test_a_notification_carries_only_the_matching_information(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await csubscribe(hub, receiver.url())
    await register(
        hub,
        "mixed",
        {"entities": [{"type": "Sensor"}], "propertyNames": ["humidity"]},
        {"entities": [{"type": "Room"}], "propertyNames": ["temperature"]},
    )
    body = (await arrived(receiver, 1))[0]
    assert body["data"][0]["information"] == [
        {"entities": [{"type": "Room"}], "propertyNames": ["temperature"]}
    ]


async def test_q_and_geoq_select_on_the_registration_itself(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    near = {"type": "Point", "coordinates": [-8.521, 41.2]}
    far = {"type": "Point", "coordinates": [2.35, 48.85]}
    geo = {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [-8.52, 41.2]}
    await csubscribe(hub, receiver.url(), q='operator=="porto"', geoQ=geo)
    await register(hub, "far", location=far, operator="porto")
    await register(hub, "other-operator", location=near, operator="lisbon")
    rid = await register(hub, "near", location=near, operator="porto")
    await arrived(receiver, 1)
    assert got(receiver) == [("newlyMatching", [rid])]


async def test_subscribing_sends_the_registrations_matching_now(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    first = await register(hub, "a")
    await register(hub, "sensors", {"entities": [{"type": "Sensor"}]})
    second = await register(hub, "b")
    sid = await csubscribe(hub, receiver.url())
    body = (await arrived(receiver, 1))[0]
    assert body["subscriptionId"] == sid and body["triggerReason"] == "newlyMatching"
    assert sorted(d["id"] for d in body["data"]) == sorted([first, second])
    # updating the subscription sends the set again, now for what it selects
    resp = await hub.patch(f"{CSUBS}/{sid}", json={"entities": [{"type": "Sensor"}]})
    assert resp.status_code == 204
    await arrived(receiver, 2)
    assert got(receiver)[1] == ("newlyMatching", [CSR + "sensors"])


async def test_no_registration_no_initial_notification(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await csubscribe(hub, receiver.url(), entities=[{"type": "Sensor"}])
    await register(hub, "a")  # a Room: not for this subscription
    rid = await register(hub, "s", {"entities": [{"type": "Sensor"}]})
    await arrived(receiver, 1)
    assert got(receiver) == [("newlyMatching", [rid])]


async def test_paused_subscription_is_silent_until_resumed(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    paused = await csubscribe(hub, receiver.url(), isActive=False)
    control = await csubscribe(hub, receiver.url(), entities=[{"type": "Sensor"}])
    rid = await register(hub, "a")
    sensor = await register(hub, "s", {"entities": [{"type": "Sensor"}]})
    await arrived(receiver, 1)
    assert [r.body["subscriptionId"] for r in receiver.received()] == [control]
    resp = await hub.patch(f"{CSUBS}/{paused}", json={"isActive": True})
    assert resp.status_code == 204
    bodies = await arrived(receiver, 2)
    assert bodies[1]["subscriptionId"] == paused
    assert [d["id"] for d in bodies[1]["data"]] == [rid]
    assert sensor not in [d["id"] for d in bodies[1]["data"]]


async def test_expired_subscription_is_silent(
    hub: httpx.AsyncClient, receiver: Receiver, app: Starlette
) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=0.5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    expiring = await csubscribe(hub, receiver.url(), expiresAt=soon)
    control = await csubscribe(hub, receiver.url(), entities=[{"type": "Sensor"}])
    expires = app.state.notifier.csource.get("", expiring).sub.expires
    await wait_for(lambda: datetime.now(UTC).timestamp() > expires, what="the expiry")
    await register(hub, "a")
    await register(hub, "s", {"entities": [{"type": "Sensor"}]})
    await arrived(receiver, 1)
    assert [r.body["subscriptionId"] for r in receiver.received()] == [control]
    resp = await hub.get(f"{CSUBS}/{expiring}")
    assert resp.json()["status"] == "expired"


async def test_throttling_holds_changes_inside_the_period(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await csubscribe(hub, receiver.url(), throttling=60)
    control = await csubscribe(hub, receiver.url(), entities=[{"type": "Sensor"}])
    rid = await register(hub, "a")
    await patch_reg(hub, rid, {"endpoint": "http://other.example.org:1026"})
    await register(hub, "s", {"entities": [{"type": "Sensor"}]})
    await arrived(receiver, 2)
    assert [r.body["subscriptionId"] for r in receiver.received()][1] == control
    assert got(receiver)[0] == ("newlyMatching", [rid])


async def test_throttling_sends_what_it_held_once_the_period_passed(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Each notification is about one registration: a change inside the period was dropped,
    so the receiver never learnt of the second source."""
    await csubscribe(hub, receiver.url(), throttling=1)
    first = await register(hub, "a")
    second = await register(hub, "b")
    await patch_reg(hub, first, {"endpoint": "http://other.example.org:1026"})
    await arrived(receiver, 3)
    assert got(receiver) == [
        ("newlyMatching", [first]),
        ("newlyMatching", [second]),
        ("updated", [first]),
    ]


async def test_time_interval_notifies_initially_and_periodically(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    rid = await register(hub, "a")
    await csubscribe(hub, receiver.url(), timeInterval=1)
    await wait_for(lambda: len(receiver.received()) >= 2, timeout=4, what="two notifications")
    assert got(receiver)[:2] == [("newlyMatching", [rid]), ("newlyMatching", [rid])]
    await patch_reg(hub, rid, {"endpoint": "http://other.example.org:1026"})
    assert all(reason == "newlyMatching" for reason, _ in got(receiver))  # no change-driven


async def test_status_records_success_and_failure(
    hub: httpx.AsyncClient, receiver: Receiver, app: Starlette
) -> None:
    receiver.status["/fails"] = 500
    app.state.notifier.dispatcher.policy.attempts = 2
    app.state.notifier.dispatcher.policy.backoff = 0.05
    ok_sid = await csubscribe(hub, receiver.url())
    bad_sid = await csubscribe(hub, receiver.url("/fails"))
    await register(hub, "a")

    async def notification(sid: str) -> dict[str, Any]:
        resp = await hub.get(f"{CSUBS}/{sid}")
        return dict(resp.json()["notification"])

    await wait_for(lambda: len(receiver.received("/fails")) >= 2, what="two failed attempts")
    await wait_for(lambda: receiver.received())
    ok = await notification(ok_sid)
    assert ok["status"] == "ok" and ok["timesSent"] == 1
    assert "lastSuccess" in ok and "lastNotification" in ok and "lastFailure" not in ok

    def bad_status() -> dict[str, Any] | None:
        status: dict[str, Any] = app.state.notifier.csource.get("", bad_sid).sub.status
        return status if status.get("timesSent") == 2 else None

    bad = await wait_for(bad_status, what="the second attempt recorded")
    assert bad["status"] == "failed" and bad["timesFailed"] == 2
    shown = await notification(bad_sid)
    assert shown["status"] == "failed" and "lastFailure" in shown and "lastSuccess" not in shown
    await app.state.notifier.close()  # writes the status into the stored subscription
    stored = app.state.store.resource_get("csourceSubscription", "", ok_sid)
    assert stored["_notif"]["timesSent"] == 1


async def test_tenants_are_isolated(hub: httpx.AsyncClient, receiver: Receiver) -> None:
    tenant = {"NGSILD-Tenant": "namwon"}
    sid = await csubscribe(hub, receiver.url(), headers=tenant)
    await register(hub, "default-tenant")
    rid = await register(hub, "namwon", headers=tenant)
    await arrived(receiver, 1)
    await hub.get(CSUBS)  # let a stray delivery land
    assert got(receiver) == [("newlyMatching", [rid])]
    received = receiver.received()[0]
    assert received.headers["NGSILD-Tenant"] == "namwon"
    assert received.body["subscriptionId"] == sid


async def test_json_ld_endpoint_gets_the_context_in_the_body(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await csubscribe(hub, receiver.url(), endpoint={"accept": JSONLD})
    await register(hub, "a")
    body = (await arrived(receiver, 1))[0]
    received = receiver.received()[0]
    assert received.headers["Content-Type"] == JSONLD and "Link" not in received.headers
    assert "ngsi-ld-core-context" in body["@context"]


async def test_temporal_q_and_csf_select_registrations(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    interval = {"startAt": "2020-08-01T22:07:00Z", "endAt": "2021-08-01T21:07:00Z"}
    await csubscribe(
        hub,
        receiver.url(),
        temporalQ={"timerel": "after", "timeAt": "2020-06-01T22:07:00Z"},
        csf='operator=="porto"',
    )
    await register(hub, "no-interval", operator="porto")
    await register(hub, "other-operator", observationInterval=interval, operator="lisbon")
    await register(hub, "managed-only", managementInterval=interval, operator="porto")
    rid = await register(hub, "observed", observationInterval=interval, operator="porto")
    await arrived(receiver, 1)
    assert got(receiver) == [("newlyMatching", [rid])]


async def test_stored_subscriptions_notify_after_a_restart(
    db_path: Path, receiver: Receiver
) -> None:
    first = create_app(Settings(db=str(db_path)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="http://a"
    ) as c:
        sid = await csubscribe(c, receiver.url())
    await first.state.notifier.close()
    first.state.store.close()
    again = create_app(Settings(db=str(db_path)))
    try:
        transport = httpx.ASGITransport(app=again)
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as c:
            rid = await register(c, "a")
            await arrived(receiver, 1)
    finally:
        await again.state.notifier.close()
        again.state.store.close()
    assert got(receiver) == [("newlyMatching", [rid])]
    assert receiver.received()[0].body["subscriptionId"] == sid


async def test_a_registration_change_is_notified_after_a_restart(
    db_path: Path, receiver: Receiver
) -> None:
    """The notification is in the outbox with the registration: a hub that stops before it
    could deliver (the receiver refuses) delivers it when it starts again."""
    receiver.status["/notify"] = 503
    first = create_app(Settings(db=str(db_path)))
    transport = httpx.ASGITransport(app=first)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        first.state.notifier.dispatcher.policy.backoff = 60.0  # no second attempt before the stop
        await csubscribe(client, receiver.url())
        await register(client, "restart")
        await wait_for(lambda: receiver.received(), what="the refused first attempt")
    await first.state.notifier.close()
    pending = first.state.store.outbox_pending()
    assert [(i.kind, i.sub_id != "") for i in pending] == [("csource", True)]
    first.state.store.close()
    receiver.status["/notify"] = 200
    second = create_app(Settings(db=str(db_path)))
    async with second.router.lifespan_context(second):
        await wait_for(lambda: len(receiver.received()) >= 2, what="the redelivery")
    assert got(receiver)[-1] == ("newlyMatching", [CSR + "restart"])
    assert second.state.store.outbox_pending() == []


async def test_an_expired_registration_is_not_sent_to_a_new_subscription(
    hub: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new csourceSubscription gets the registrations it matches now; one past its
    expiresAt is invalid (5.2.9) and is left out."""
    from cityhub.ngsild import subscriptions

    await register(hub, "old", expiresAt="2030-01-01T00:00:00Z")
    live = await register(hub, "live")
    monkeypatch.setattr(subscriptions, "now_iso", lambda: "2030-01-01T00:00:01.000000Z")
    await csubscribe(hub, receiver.url())
    await arrived(receiver, 1)
    assert got(receiver) == [("newlyMatching", [live])]


async def test_a_paused_subscription_keeps_the_no_longer_matching_it_owed(
    hub: httpx.AsyncClient, app: Starlette, receiver: Receiver
) -> None:
    """A registration's deletion, owed when the subscription was paused, was dropped: the
    receiver never heard the registration was gone (resuming sends only what matches now)."""
    app.state.notifier.csource.dispatcher.policy.backoff = 0.05
    app.state.notifier.csource.dispatcher.policy.backoff_max = 0.05
    sid = await csubscribe(hub, receiver.url())
    rid = await register(hub, "a")
    await arrived(receiver, 1)
    receiver.status["/notify"] = 503  # down: the deletion waits, retried
    assert (await hub.delete(f"{REGS}/{rid}")).status_code == 204
    await arrived(receiver, 2)
    assert (await hub.patch(f"{CSUBS}/{sid}", json={"isActive": False})).status_code == 204
    await asyncio.sleep(0.3)  # the next attempt finds it paused
    receiver.status["/notify"] = 200
    tried = len(receiver.received())
    assert (await hub.patch(f"{CSUBS}/{sid}", json={"isActive": True})).status_code == 204
    await arrived(receiver, tried + 1)
    assert got(receiver)[tried] == ("noLongerMatching", [rid])
