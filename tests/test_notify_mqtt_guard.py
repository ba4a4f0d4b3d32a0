"""MQTT endpoints go through CITYHUB_NOTIFY_PRIVATE_NETWORKS as HTTP ones do (decision 033,
addendum): a hub told to notify public addresses only still connected to any broker a
client named, loopback and LAN included, and its delivery status told what answered there."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path

import aiomqtt
import pytest

from cityhub.api.app import create_app
from cityhub.ngsild.context_guard import AddressGuard, parse_networks
from cityhub.notify.outcome import why
from cityhub.notify.senders import MqttSender
from cityhub.settings import Settings
from iot_support import MOSQUITTO, require_mosquitto


async def test_a_guard_without_loopback_keeps_mqtt_notifications_off_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_mosquitto()
    host, port = MOSQUITTO
    topic = f"cityhub-test/{uuid.uuid4().hex}"
    closed = MqttSender(guard=AddressGuard([]))
    allowed = MqttSender()
    try:
        async with aiomqtt.Client(host, port) as listener:
            await listener.subscribe(topic, qos=1)
            with caplog.at_level(logging.WARNING, "cityhub.notify"):
                for name in (host, "localhost"):
                    uri = f"mqtt://{name}:{port}/{topic}"
                    outcome = await closed.send(uri, b'"refused"', {}, 5.0, [])
                    assert not outcome
                    assert "CITYHUB_NOTIFY_PRIVATE_NETWORKS" in why(outcome)
            info = [{"key": "MQTT-QoS", "value": "1"}]
            assert await allowed.send(f"mqtt://{host}:{port}/{topic}", b'"marker"', {}, 5.0, info)
            async with asyncio.timeout(10):
                message = await anext(aiter(listener.messages))
    finally:
        await closed.close()
        await allowed.close()
    assert json.loads(bytes(message.payload))["body"] == "marker"  # type: ignore[arg-type]
    assert "CITYHUB_NOTIFY_PRIVATE_NETWORKS" in caplog.text


async def test_an_address_outside_the_allowed_networks_is_refused_before_connecting() -> None:
    sender = MqttSender(guard=AddressGuard(parse_networks(["127.0.0.1/32"])))
    try:
        outcome = await sender.send("mqtt://127.0.0.2:1883/cityhub-test/x", b"{}", {}, 5.0)
    finally:
        await sender.close()
    assert not outcome and "CITYHUB_NOTIFY_PRIVATE_NETWORKS" in why(outcome)


async def test_the_hub_gives_its_mqtt_sender_the_notification_networks(tmp_path: Path) -> None:
    app = create_app(Settings(db=str(tmp_path / "g.db"), notify_private_networks=["10.0.0.0/8"]))
    guard = app.state.notifier.mqtt.guard
    assert guard.allows("10.1.2.3") and not guard.allows("127.0.0.1")
    await app.state.notifier.close()
