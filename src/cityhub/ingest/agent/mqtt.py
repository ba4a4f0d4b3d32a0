"""The MQTT southbound: one subscriber that reconnects with backoff and never gives up.

Topics are cityhub/{apikey}/{deviceId}/attrs. On an external broker the agent subscribes
through the shared subscription $share/{group}/cityhub/+/+/attrs, so every agent of one group
gets a share of the messages and none gets a message twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger("cityhub.iot")

TOPIC = "cityhub/+/+/attrs"
BACKOFF_MIN = 0.5  # seconds before the first reconnect attempt
BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class BrokerUrl:
    """Where the broker is: mqtt://[user[:password]@]host[:port] (mqtts:// for TLS)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker(text: str) -> BrokerUrl:
    """A broker URL; ValueError with a readable message when it is not one."""
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"not an MQTT broker URL (mqtt://host:port): {text!r}")
    tls = parts.scheme == "mqtts"
    return BrokerUrl(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def bounded_queue(state: Connection, maxsize: int) -> type[asyncio.Queue[Any]]:
    """The queue class aiomqtt keeps received messages in: past maxsize a message is dropped
    and counted (aiomqtt's own full queue would log one warning per message)."""
    warned = [0.0]

    class DroppingQueue(asyncio.Queue[Any]):
        def __init__(self, maxsize: int = maxsize) -> None:
            super().__init__(maxsize)
            state.queue = self  # what was received but not yet taken, for a clean stop

        def put_nowait(self, item: Any) -> None:
            if self.full():
                state.dropped += 1
                now = time.monotonic()
                if now - warned[0] >= 10:
                    warned[0] = now
                    log.warning(
                        "the IoT agent cannot keep up: %d MQTT messages dropped so far",
                        state.dropped,
                    )
                return
            super().put_nowait(item)

    return DroppingQueue


@dataclass(frozen=True)
class Session:
    """Who the hub is to the broker: a stable client id with a session the broker keeps for
    `expiry` seconds (MQTT 5), so QoS 1 messages wait while the hub is away; expiry None is a
    clean MQTT 3.1.1 session (the embedded broker, which stops with the hub anyway)."""

    client_id: str
    expiry: int | None = None

    def client_options(self) -> dict[str, Any]:
        """aiomqtt.Client keyword arguments for this session."""
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        if self.expiry is None:
            return {"identifier": self.client_id, "clean_session": True}
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.expiry
        return {
            "identifier": self.client_id,
            "protocol": aiomqtt.ProtocolVersion.V5,
            "clean_start": False,
            "properties": props,
        }


@dataclass
class Connection:
    """What /iot/v1/stats says about the MQTT side."""

    mode: str = "off"  # off | embedded | external
    broker: str = ""
    connected: bool = False
    connects: int = 0
    last_error: str = ""
    dropped: int = 0  # messages discarded because the writes fell too far behind
    queue: asyncio.Queue[Any] | None = None  # the client's received messages (bounded_queue)

    def left_over(self) -> list[Any]:
        """Messages received (and acknowledged to the broker) that the agent has not taken:
        a stop hands them over instead of dropping them with the subscriber."""
        out = []
        while self.queue is not None and not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


def deliver(message: Any, on_message: Callable[[str, bytes], None]) -> None:
    """Hand one received MQTT message to the agent (retained ones are old state a broker
    replays on subscribe, not news)."""
    if message.retain:
        return
    payload = message.payload
    on_message(
        message.topic.value,
        payload if isinstance(payload, bytes) else str(payload or "").encode(),
    )


async def subscribe_forever(
    url: BrokerUrl,
    topic: str,
    on_message: Callable[[str, bytes], None],
    busy: Callable[[], bool],
    room: Callable[[], Awaitable[None]],
    state: Connection,
    queue_max: int,
    session: Session,
) -> None:
    """Receive messages until cancelled; every failure is logged and retried with backoff.

    At most queue_max received messages wait for the agent; past that they are dropped and
    counted (memory stays bounded however far the publishers outrun the writes).
    """
    import aiomqtt  # paho and aiomqtt load only when MQTT is on

    delay = BACKOFF_MIN
    queue_type = bounded_queue(state, queue_max)
    while True:
        try:
            async with aiomqtt.Client(
                url.host,
                url.port,
                username=url.username,
                password=url.password,
                keepalive=30,
                timeout=10,
                tls_context=ssl.create_default_context() if url.tls else None,
                queue_type=queue_type,
                **session.client_options(),
            ) as client:
                await client.subscribe(topic, qos=1)
                state.connected, state.last_error = True, ""
                state.connects += 1
                delay = BACKOFF_MIN
                log.info("IoT agent subscribed to %s on %s", topic, url)
                async for message in client.messages:
                    deliver(message, on_message)
                    if busy():
                        await room()
        except asyncio.CancelledError:
            raise
        except aiomqtt.MqttError as exc:
            state.last_error = str(exc)
            log.warning("MQTT broker %s: %s; reconnecting in %.1f s", url, exc, delay)
        except Exception as exc:  # whatever it was, the hub keeps serving and retries
            state.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("MQTT southbound failed; reconnecting in %.1f s", delay)
        finally:
            state.connected = False
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, BACKOFF_MAX)
