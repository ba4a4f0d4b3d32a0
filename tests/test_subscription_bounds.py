"""Subscription members the hub could accept but never honour, or honour at a cost it cannot
bear, are refused at create and update: joinLevel past the API's bound, a timeInterval
below the floor, MQTT endpoints no broker can publish to."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cityhub.ngsild.subscription_names import MAX_NAMES
from conftest import BASE, problem

SUBS = f"{BASE}/subscriptions"
CSUBS = f"{BASE}/csourceSubscriptions"
SID = "urn:ngsi-ld:Subscription:bounds"
HTTP = {"uri": "http://localhost:1111/notify"}


def sub(endpoint: dict[str, Any] | None = None, **members: Any) -> dict[str, Any]:
    """A valid subscription with members replaced or added."""
    notification = {"endpoint": endpoint or HTTP, **members.pop("notification", {})}
    return {
        "id": SID,
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": notification,
        **members,
    }


def mqtt(uri: str, **info: str) -> dict[str, Any]:
    """An MQTT endpoint with notifierInfo pairs."""
    out: dict[str, Any] = {"uri": uri}
    if info:
        out["notifierInfo"] = [{"key": k.replace("_", "-"), "value": v} for k, v in info.items()]
    return out


REFUSED = [
    pytest.param(sub(notification={"join": "flat", "joinLevel": 17}), id="joinLevel-17"),
    pytest.param(sub(notification={"join": "flat", "joinLevel": 100000}), id="joinLevel-100000"),
    pytest.param(sub(timeInterval=0.0001), id="timeInterval-0.0001"),
    pytest.param(sub(timeInterval=0.999), id="timeInterval-below-1s"),
    pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/city/+/#")), id="mqtt-wildcards"),
    pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/city/#")), id="mqtt-multi-level-wildcard"),
    pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/")), id="mqtt-empty-topic"),
    pytest.param(sub(mqtt("mqtt://127.0.0.1:1883")), id="mqtt-no-topic"),
    pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/a%00b")), id="mqtt-nul-in-topic"),
    pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/a", MQTT_Version="mqtt9")), id="mqtt-version"),
    pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/a", MQTT_QoS="7")), id="mqtt-qos-7"),
    pytest.param(sub(mqtt("mqtts://127.0.0.1:8883/a", MQTT_QoS="one")), id="mqtt-qos-word"),
    # no host: stored, and MQTT ones were published to the hub's own localhost broker
    pytest.param(sub(mqtt("mqtt://:1883/a")), id="mqtt-port-but-no-host"),
    pytest.param(sub(mqtt("mqtt://user@/a")), id="mqtt-user-but-no-host"),
    pytest.param(sub({"uri": "http://user:pw@/notify"}), id="http-user-but-no-host"),
    # brokers keep $ topics to themselves: the publish is acknowledged and reaches no one
    pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/$SYS/city")), id="mqtt-dollar-topic"),
    # MQTT topics are UTF-8: %FF was published as U+FFFD, a topic the client never named
    pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/caf%FF")), id="mqtt-topic-not-utf8"),
    pytest.param(
        sub(
            {
                "uri": "mqtt://127.0.0.1:1883/a",
                "notifierInfo": [
                    {"key": "MQTT-QoS", "value": "0"},
                    {"key": "MQTT-QoS", "value": "2"},
                ],
            }
        ),
        id="mqtt-qos-twice",
    ),
    # a subscription of 200,000 entities held every request for 17 s (hostile probe)
    pytest.param(
        sub(entities=[{"type": "B", "id": f"urn:b:{i}"} for i in range(1001)]),
        id="entities-1001",
    ),
    # names are bounded by MAX_NAMES (as many as one entity write may carry), not 1,000
    pytest.param(
        sub(watchedAttributes=[f"a{i}" for i in range(MAX_NAMES + 1)]), id="watched-past-max"
    ),
    pytest.param(
        sub(notification={"attributes": [f"a{i}" for i in range(MAX_NAMES + 1)]}),
        id="attributes-past-max",
    ),
]


@pytest.mark.parametrize("body", REFUSED)
async def test_create_refuses(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    problem(await client.post(SUBS, json=body), 400, "BadRequestData")
    assert (await client.get(SUBS)).json() == []


@pytest.mark.parametrize("body", REFUSED)
async def test_update_refuses(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    resp = await client.post(SUBS, json=sub())
    assert resp.status_code == 201, resp.text
    fragment = {
        k: v
        for k, v in body.items()
        if k not in ("id", "type") and not (k == "entities" and v == sub()["entities"])
    }
    problem(await client.patch(f"{SUBS}/{SID}", json=fragment), 400, "BadRequestData")
    stored = (await client.get(f"{SUBS}/{SID}")).json()
    assert stored["notification"] == {"endpoint": HTTP} and "timeInterval" not in stored


async def test_csource_subscription_time_interval_has_the_same_floor(
    client: httpx.AsyncClient,
) -> None:
    problem(await client.post(CSUBS, json=sub(timeInterval=0.5)), 400, "BadRequestData")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(sub(notification={"join": "flat", "joinLevel": 16}), id="joinLevel-16"),
        pytest.param(sub(timeInterval=1), id="timeInterval-1s"),
        pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/city/rooms/t")), id="mqtt-topic"),
        pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/city/$x")), id="mqtt-dollar-inside"),
        pytest.param(sub(mqtt("mqtt://127.0.0.1:1883/caf%C3%A9")), id="mqtt-utf8-topic"),
        pytest.param(sub(mqtt("mqtt://[::1]:1883/a")), id="mqtt-ipv6-host"),
        pytest.param(
            sub(mqtt("mqtt://127.0.0.1:1883/a", MQTT_Version="mqtt5.0", MQTT_QoS="2")),
            id="mqtt5-qos2",
        ),
        pytest.param(
            sub(mqtt("mqtts://127.0.0.1:8883/a", MQTT_Version="mqtt3.1.1", MQTT_QoS="1")),
            id="mqtt311-qos1",
        ),
        pytest.param(
            sub({**HTTP, "notifierInfo": [{"key": "MQTT-QoS", "value": "7"}]}),
            id="http-ignores-mqtt-keys",
        ),
        pytest.param(
            sub(entities=[{"type": "B", "id": f"urn:b:{i}"} for i in range(1000)]),
            id="entities-1000",
        ),
        pytest.param(sub(watchedAttributes=[f"a{i}" for i in range(1000)]), id="watched-1000"),
    ],
)
async def test_accepts_within_bounds(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    resp = await client.post(SUBS, json=body)
    assert resp.status_code == 201, resp.text


async def test_a_tenant_holds_at_most_max_subscriptions(tmp_path: Any) -> None:
    """Past CITYHUB_MAX_SUBSCRIPTIONS a tenant's next subscription is refused (3,000 were
    made in 21 s and one change then opened a connection to each endpoint)."""
    from cityhub.api.app import create_app
    from cityhub.settings import Settings

    app = create_app(Settings(db=str(tmp_path / "cap.db"), max_subscriptions=2))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for i in range(2):
            resp = await client.post(SUBS, json={**sub(), "id": f"{SID}:{i}"})
            assert resp.status_code == 201, resp.text
        body = problem(
            await client.post(SUBS, json={**sub(), "id": f"{SID}:2"}), 422, "OperationNotSupported"
        )
        assert "2" in body["detail"]
        other = {"NGSILD-Tenant": "other"}
        resp = await client.post(SUBS, json={**sub(), "id": f"{SID}:2"}, headers=other)
        assert resp.status_code == 201, "another tenant has its own count"
        resp = await client.post(CSUBS, json={**sub(), "id": f"{SID}:c"})
        assert resp.status_code == 201, "csourceSubscriptions are counted apart"
        assert (await client.delete(f"{SUBS}/{SID}:0")).status_code == 204
        resp = await client.post(SUBS, json={**sub(), "id": f"{SID}:2"})
        assert resp.status_code == 201, "a deleted one frees its place"
    app.state.store.close()


async def test_all_tenants_together_hold_at_most_max_subscriptions_total(tmp_path: Any) -> None:
    """A tenant is made by its first write, so CITYHUB_MAX_SUBSCRIPTIONS alone bounded nothing:
    10,000 in each of any number of tenants, about 5 KiB of memory each."""
    from cityhub.api.app import create_app
    from cityhub.settings import Settings

    app = create_app(
        Settings(db=str(tmp_path / "cap.db"), max_subscriptions=5, max_subscriptions_total=3)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for i, tenant in enumerate(["a", "a", "b"]):
            headers = {"NGSILD-Tenant": tenant}
            resp = await client.post(SUBS, json={**sub(), "id": f"{SID}:{i}"}, headers=headers)
            assert resp.status_code == 201, resp.text
        c = {"NGSILD-Tenant": "c"}
        body = problem(
            await client.post(SUBS, json={**sub(), "id": f"{SID}:3"}, headers=c),
            422,
            "OperationNotSupported",
        )
        assert "CITYHUB_MAX_SUBSCRIPTIONS_TOTAL" in body["detail"]
        assert (await client.get(SUBS, headers=c)).status_code == 404, "nothing stored in c"
        resp = await client.post(CSUBS, json={**sub(), "id": f"{SID}:c"}, headers=c)
        assert resp.status_code == 201, "csourceSubscriptions are counted apart"
        a = {"NGSILD-Tenant": "a"}
        assert (await client.delete(f"{SUBS}/{SID}:0", headers=a)).status_code == 204
        resp = await client.post(SUBS, json={**sub(), "id": f"{SID}:3"}, headers=c)
        assert resp.status_code == 201, "a deleted one frees its place"
    app.state.store.close()


def names(n: int) -> list[str]:
    """n attribute names."""
    return [f"a{i}" for i in range(n)]


TOO_MANY_NAMES = [
    pytest.param(sub(watchedAttributes=names(MAX_NAMES + 1)), id="watchedAttributes"),
    pytest.param(sub(notification={"attributes": names(MAX_NAMES + 1)}), id="attributes"),
    pytest.param(sub(notification={"pick": names(MAX_NAMES + 1)}), id="pick"),
    pytest.param(sub(notification={"omit": ",".join(names(MAX_NAMES + 1))}), id="omit-text"),
    pytest.param(
        sub(notification={"pick": ["x{" + ",".join(names(MAX_NAMES)) + "}"]}), id="pick-nested"
    ),
]


@pytest.mark.parametrize("body", TOO_MANY_NAMES)
async def test_too_many_attribute_names_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    """200,000 watchedAttributes held the event loop 4-5 s to be created."""
    problem(await client.post(SUBS, json=body), 400, "BadRequestData")
    assert (await client.post(SUBS, json=sub())).status_code == 201
    patch = {k: v for k, v in body.items() if k in ("watchedAttributes", "notification")}
    problem(await client.patch(f"{SUBS}/{SID}", json=patch), 400, "BadRequestData")


async def test_as_many_attribute_names_as_an_entity_may_carry_are_taken(
    client: httpx.AsyncClient,
) -> None:
    body = sub(watchedAttributes=names(MAX_NAMES), notification={"pick": names(MAX_NAMES)})
    assert (await client.post(SUBS, json=body)).status_code == 201
