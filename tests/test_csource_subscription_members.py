"""What a csourceSubscription may hold: members that only shape entity notifications (which
entity changes notify, which attributes and languages they show) were stored and never
applied, and a temporalQ.timeproperty discovery refuses was read as observedAt."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request

CSUBS = f"{BASE}/csourceSubscriptions"


def _body(**members: Any) -> dict[str, Any]:
    notification = {"endpoint": {"uri": "http://127.0.0.1:9/notify"}, **members.pop("notify", {})}
    return {
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "notification": notification,
        **members,
    }


async def test_an_unknown_timeproperty_is_refused(client: httpx.AsyncClient) -> None:
    """It was answered 201 and matched as observedAt."""
    tq = {"timerel": "after", "timeAt": "2024-01-01T00:00:00Z", "timeproperty": "foo"}
    resp = await client.post(CSUBS, json=_body(temporalQ=tq))
    assert "temporalQ.timeproperty" in bad_request(resp)["detail"]


@pytest.mark.parametrize("prop", ["observedAt", "createdAt", "modifiedAt"])
async def test_known_timeproperties_are_taken(client: httpx.AsyncClient, prop: str) -> None:
    """The ones discovery takes (the ETSI suite sends each)."""
    tq = {"timerel": "after", "timeAt": "2024-01-01T00:00:00Z", "timeproperty": prop}
    resp = await client.post(CSUBS, json=_body(temporalQ=tq))
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"notificationTrigger": ["entityCreated"]}, "notificationTrigger"),
        ({"lang": "en"}, "lang"),
        ({"datasetId": ["urn:ds:1"]}, "datasetId"),
        ({"notify": {"attributes": ["x"]}}, "notification.attributes"),
        ({"notify": {"pick": ["x"]}}, "notification.pick"),
        ({"notify": {"omit": ["x"]}}, "notification.omit"),
        ({"notify": {"showChanges": True}}, "notification.showChanges"),
        ({"notify": {"join": "inline"}}, "notification.join"),
        ({"notify": {"joinLevel": 2}}, "notification.joinLevel"),
    ],
)
async def test_entity_only_members_are_refused(
    client: httpx.AsyncClient, members: dict[str, Any], named: str
) -> None:
    """They were answered 201 and the notifications were sent as if they were absent."""
    resp = await client.post(CSUBS, json=_body(**members))
    assert named in bad_request(resp)["detail"]


async def test_a_patch_cannot_add_an_entity_only_member(client: httpx.AsyncClient) -> None:
    """An update is held to the same rule as a create."""
    resp = await client.post(CSUBS, json=_body())
    assert resp.status_code == 201, resp.text
    url = f"{BASE}{resp.headers['Location'].split('/ngsi-ld/v1', 1)[-1]}"
    resp = await client.patch(url, json={"notificationTrigger": ["entityDeleted"]})
    assert "notificationTrigger" in bad_request(resp)["detail"]


async def test_the_format_the_etsi_suite_sends_is_taken(client: httpx.AsyncClient) -> None:
    """Every csourceSubscription body of the ETSI suite names notification.format keyValues."""
    resp = await client.post(CSUBS, json=_body(notify={"format": "keyValues"}))
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize("csf", ["x==", "a==1;;b==2"])
async def test_an_invalid_csf_is_named_csf(client: httpx.AsyncClient, csf: str) -> None:
    """Its 400 said "invalid q", a member the body did not have."""
    detail = bad_request(await client.post(CSUBS, json=_body(csf=csf)))["detail"]
    assert detail.startswith("invalid csf: "), detail
    assert (await client.get(CSUBS)).json() == []


async def test_discovery_names_an_invalid_csf_csf(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"{BASE}/csourceRegistrations", params={"csf": "x=="})
    assert bad_request(resp)["detail"].startswith("invalid csf: ")
