"""Notification failures and MQTT publishes do not flood the log: a soak wrote 214,547 lines
of aiomqtt's "There are N pending publish calls." in 28 minutes, and one "gave up" line per
notification, for hours, for each dead endpoint."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from cityhub.notify.delivery import Dispatcher, Policy
from cityhub.notify.outcome import Outcome
from cityhub.notify.senders import HttpSender, MqttSender
from cityhub.store.base import OutboxItem
from conftest import free_port
from iot_support import MOSQUITTO, require_mosquitto


async def test_given_up_notifications_log_one_line_per_endpoint_and_are_all_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def dead(item: OutboxItem, attempt: int) -> bool:
        return False

    dispatcher = Dispatcher(dead, lambda seqs: None, Policy(attempts=2, backoff=0.0))
    items = [
        OutboxItem("", f"sub{n % 2}", f"http://127.0.0.1:9/{n % 2}", b"{}", seq=n + 1)
        for n in range(40)
    ]
    with caplog.at_level(logging.WARNING, logger="cityhub.notify"):
        dispatcher.submit(items)
        async with asyncio.timeout(10):
            while dispatcher.counters.given_up < 40:
                await asyncio.sleep(0.01)
        await dispatcher.close()
    lines = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert len(lines) == 2, lines
    assert {line.split(" to ")[1].split(" ")[0] for line in lines} == {
        "http://127.0.0.1:9/0",
        "http://127.0.0.1:9/1",
    }
    assert dispatcher.counters.report()["givenUp"] == 40, "/health still counts each one"
    assert dispatcher.counters.failed_attempts == 80


@pytest.mark.parametrize("scheme", ["http", "mqtt"])
async def test_a_given_up_line_masks_the_endpoint_and_says_the_last_failure(
    caplog: pytest.LogCaptureFixture, scheme: str
) -> None:
    """The endpoint's password masked, its query and fragment cut (tokens), and why the last
    attempt failed; debug lines and the bad-endpoint warning alike (probe 4, finding 4)."""
    http, mqtt = HttpSender(), MqttSender()
    port = free_port()  # nothing listens there: refused at once
    endpoint = f"{scheme}://admin:hunter2@127.0.0.1:{port}/notify?token=SECRET123#frag"

    async def deliver(item: OutboxItem, attempt: int) -> Outcome:
        sender = http if scheme == "http" else mqtt
        return await sender.send(item.endpoint, b"{}", {}, 2.0)

    dispatcher = Dispatcher(deliver, lambda seqs: None, Policy(attempts=2, backoff=0.0))
    with caplog.at_level(logging.DEBUG, logger="cityhub.notify"):
        dispatcher.submit([OutboxItem("", "sub", endpoint, b"{}", seq=1)])
        async with asyncio.timeout(10):
            while dispatcher.counters.given_up < 1:
                await asyncio.sleep(0.01)
        await dispatcher.close()
        await mqtt.send("mqtt://u:hunter2@:bad/x?token=SECRET123", b"{}", {}, 1.0)
    await http.close()
    await mqtt.close()
    assert "hunter2" not in caplog.text and "SECRET123" not in caplog.text, caplog.text
    lines = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert lines == [
        f"gave up a notification of sub to {scheme}://admin:***@127.0.0.1:{port}/notify after 2 "
        "attempts (the last: connection refused)"
    ], lines
    assert "bad MQTT endpoint mqtt://u:***@:bad/x:" in caplog.text


async def test_concurrent_publishes_to_many_topics_of_one_broker_warn_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_mosquitto()
    host, port = MOSQUITTO
    sender = MqttSender()
    base = f"mqtt://{host}:{port}/cityhub-test/{uuid.uuid4().hex}"
    with caplog.at_level(logging.DEBUG):
        for _ in range(5):
            sent = await asyncio.gather(
                *(sender.send(f"{base}/{i}", b"{}", {}, 5.0) for i in range(40))
            )
            assert all(sent)
        await sender.close()
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warned, [r.getMessage() for r in warned[:3]]
