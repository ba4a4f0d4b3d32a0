"""MQTT notification connections are closed once unused: a soak's 300 deleted subscriptions,
each with its own credentials, left 300 connections (and fds) open for good."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cityhub.notify import senders
from cityhub.notify.senders import MqttSender


class FakeClient:
    """Stands in for aiomqtt.Client: records connections and publishes."""

    open: set[FakeClient] = set()  # shared by every instance of one test
    block: asyncio.Event | None = None

    def __init__(self, host: str, port: int, **kw: Any) -> None:
        self.username = kw.get("username")

    async def __aenter__(self) -> FakeClient:
        FakeClient.open.add(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        FakeClient.open.discard(self)

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        if FakeClient.block is not None and self.username == "busy":
            await FakeClient.block.wait()


@pytest.fixture(autouse=True)
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeClient.open = set()
    FakeClient.block = None
    monkeypatch.setattr(senders.aiomqtt, "Client", FakeClient)


async def send(sender: MqttSender, user: str) -> bool:
    uri = f"mqtt://{user}:pw@127.0.0.1:1883/t/{user}"
    return await sender.send(uri, b'{"type": "Notification"}', {}, 5.0)


async def test_an_unused_connection_is_closed_and_its_lock_dropped() -> None:
    sender = MqttSender()
    sender.idle = 0.1
    assert all([await send(sender, f"u{i}") for i in range(5)])
    assert len(FakeClient.open) == 5
    await asyncio.sleep(0.3)
    assert FakeClient.open == set(), "idle connections are closed"
    assert not sender._clients and not sender._locks and not sender._used
    assert await send(sender, "u0"), "a later notification connects again"
    assert len(FakeClient.open) == 1
    await sender.close()
    assert FakeClient.open == set()


async def test_a_connection_in_use_stays_open() -> None:
    sender = MqttSender()
    sender.idle = 0.1
    FakeClient.block = asyncio.Event()
    slow = asyncio.create_task(send(sender, "busy"))
    for _ in range(8):  # one publish every half idle period keeps a connection too
        assert await send(sender, "steady")
        await asyncio.sleep(0.05)
    assert {c.username for c in FakeClient.open} == {"busy", "steady"}
    assert len(FakeClient.open) == 2, "each was connected once"
    FakeClient.block.set()
    assert await slow
    await asyncio.sleep(0.3)
    assert FakeClient.open == set()
    await sender.close()
