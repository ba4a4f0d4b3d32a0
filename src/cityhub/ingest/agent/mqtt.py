"""The MQTT southbound: one subscriber that reconnects with backoff and never gives up.

Topics are {root}/{apikey}/{deviceId}/attrs, the root `cityhub` unless CITYHUB_MQTT_TOPIC_ROOT
says otherwise. On an external broker the agent subscribes through the shared subscription
$share/{group}/{root}/+/+/attrs, so every agent of one group gets a share of the messages and
none gets a message twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, cast
from urllib.parse import unquote, urlsplit

from cityhub.ingest.agent.acks import Ack, Acks
from cityhub.ingest.agent.buffered_socket import buffer_reads
from cityhub.masked_url import masked

log = logging.getLogger("cityhub.iot")

ROOT = "cityhub"  # the default topic root (the default of settings.mqtt_topic_root)
TOPIC = f"{ROOT}/+/+/attrs"
BACKOFF_MIN = 0.5  # seconds before the first reconnect attempt
BACKOFF_MAX = 30.0
RUN_MAX = 64  # messages taken from the client's queue in one go (receive)


def topic_filter(root: str) -> str:
    """The filter of every device's attrs topic under root."""
    return f"{root}/+/+/attrs"


def device_levels(topic: str, root: str) -> tuple[str, str] | None:
    """(apikey, deviceId) of a {root}/{apikey}/{deviceId}/attrs topic; None for another shape."""
    if not topic.startswith(root + "/"):
        return None
    parts = topic[len(root) + 1 :].split("/")
    if len(parts) != 3 or parts[2] != "attrs":
        return None
    return parts[0], parts[1]


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
        raise ValueError(f"not an MQTT broker URL (mqtt://host:port): {masked(text)!r}")
    if parts.port == 0:  # falsy: it was taken for no port, and the default port used
        raise ValueError(f"port 0 names no broker port: {masked(text)!r}")
    tls = parts.scheme == "mqtts"
    return BrokerUrl(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


@dataclass(slots=True)
class Received:
    """A message as the client received it, with the PUBACK it waits for (None: QoS 0, or a
    client that acknowledges on receipt)."""

    message: Any  # aiomqtt.Message
    ack: Ack | None = None


def bounded_queue(
    state: Connection, maxsize: int, acks: Acks | None = None
) -> type[asyncio.Queue[Any]]:
    """The queue class aiomqtt keeps received messages in, as `Received` items (each QoS 1
    one in line for its PUBACK when acks is given): past maxsize a message is dropped and
    counted (aiomqtt's own full queue would log one warning per message), and acknowledged,
    since a PUBACK withheld would hold up every later one."""
    warned = [0.0]

    class DroppingQueue(asyncio.Queue[Any]):
        def __init__(self, maxsize: int = maxsize) -> None:
            super().__init__(maxsize)
            state.queue = self  # what was received but not yet taken, for a clean stop

        def put_nowait(self, item: Any) -> None:
            ack = acks.received(item.mid) if acks is not None and item.qos == 1 else None
            if self.full():
                if ack is not None:
                    ack()
                state.dropped += 1
                now = time.monotonic()
                if now - warned[0] >= 10:
                    warned[0] = now
                    log.warning(
                        "the IoT agent cannot keep up: %d MQTT messages dropped so far",
                        state.dropped,
                    )
                return
            super().put_nowait(Received(item, ack))

    return DroppingQueue


@dataclass(frozen=True)
class Session:
    """Who the hub is to the broker: a stable client id with a session the broker keeps for
    `expiry` seconds (MQTT 5), so QoS 1 messages wait while the hub is away; expiry None is a
    clean MQTT 3.1.1 session (the embedded broker, which stops with the hub anyway).

    A kept session acknowledges QoS 1 messages once stored (`manual_ack`); at most
    `receive_max` of them are unacknowledged at once (MQTT 5 Receive Maximum), as many as the
    client's queue holds, so the broker never sends one the queue must drop."""

    client_id: str
    expiry: int | None = None

    @property
    def manual_ack(self) -> bool:
        """Whether PUBACKs wait for the write (the embedded broker runs in the hub's process:
        a crash takes its queue too, so there is nothing to keep)."""
        return self.expiry is not None

    def client_options(self, receive_max: int = 65_535) -> dict[str, Any]:
        """aiomqtt.Client keyword arguments for this session."""
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        if self.expiry is None:
            return {"identifier": self.client_id, "clean_session": True}
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.expiry
        props.ReceiveMaximum = max(1, min(receive_max, 65_535))
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
    reading: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: take no more

    def __post_init__(self) -> None:
        self.reading.set()

    def left_over(self) -> list[Received]:
        """Messages received that the agent has not taken: a stop hands them over instead of
        dropping them with the subscriber."""
        out = []
        while self.queue is not None and not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


OnMessage = Callable[[str, bytes, Ack | None], None]


class Kept(Protocol):
    """The filters a kept session holds from before (session.KeptFilters)."""

    async def stale(self, topic: str) -> list[str]: ...

    async def settled(self, topic: str) -> None: ...


class SubscriptionRefused(Exception):
    """The broker answered the SUBSCRIBE with a failure reason code: connected, but nothing
    will arrive, so /health must not say ok."""


def refusal(topic: str, granted: Any) -> SubscriptionRefused | None:
    """The SUBACK's refusal, if it is one (reason codes of 0x80 and up; MQTT 3.1.1 has 0x80
    alone, MQTT 5 names the reason, e.g. not authorized or shared subscriptions not
    supported)."""
    for code in granted:
        value = int(getattr(code, "value", code))
        if value >= 0x80:
            name = str(code) if hasattr(code, "value") else "failure"
            return SubscriptionRefused(
                f"the broker refused the subscription to {topic} ({name}, 0x{value:02X})"
            )
    return None


def deliver(received: Received, on_message: OnMessage) -> None:
    """Hand one received MQTT message to the agent with its PUBACK to send once it is stored
    (retained ones are old state a broker replays on subscribe, not news: acknowledged now)."""
    message = received.message
    if message.retain:
        if received.ack is not None:
            received.ack()
        return
    payload = message.payload
    on_message(
        message.topic.value,
        payload if isinstance(payload, bytes) else str(payload or "").encode(),
        received.ack,
    )


async def receive(
    client: Any,
    on_message: OnMessage,
    busy: Callable[[], bool],
    room: Callable[[], Awaitable[None]],
    state: Connection,
) -> None:
    """Hand each message the client receives to the agent until the connection ends (an
    aiomqtt.MqttError); reading pauses while the writes lag or a stop is under way.

    aiomqtt's iterator makes a task and an asyncio.wait for every message; the messages
    already waiting in the client's queue (`bounded_queue`) are taken straight from it, up to
    RUN_MAX before the loop is let go."""
    queue = state.queue
    async for message in client.messages:
        deliver(cast(Received, message), on_message)
        for _ in range(RUN_MAX):
            if busy():
                await room()
            await state.reading.wait()
            if queue is None or queue.empty():
                break
            deliver(queue.get_nowait(), on_message)
        else:
            if busy():
                await room()
            await state.reading.wait()


def make_client(
    url: BrokerUrl, state: Connection, queue_max: int, session: Session, acks: Acks | None
) -> Any:
    """The aiomqtt client of one connection: received messages in a `bounded_queue`, read
    through a `BufferedSocket`, QoS 1 ones acknowledged through acks when given."""
    import aiomqtt

    client = aiomqtt.Client(
        url.host,
        url.port,
        username=url.username,
        password=url.password,
        keepalive=30,
        timeout=10,
        tls_context=ssl.create_default_context() if url.tls else None,
        queue_type=bounded_queue(state, queue_max, acks),
        **session.client_options(receive_max=queue_max),
    )
    paho = client._client
    buffer_reads(paho)
    if acks is not None:  # aiomqtt 2.5 has no option for it: its paho client has
        paho.manual_ack_set(True)
        acks.send = partial(paho.ack, qos=1)
    return client


async def subscribe_forever(
    url: BrokerUrl,
    topic: str,
    on_message: OnMessage,
    busy: Callable[[], bool],
    room: Callable[[], Awaitable[None]],
    state: Connection,
    queue_max: int,
    session: Session,
    kept: Kept | None = None,
) -> None:
    """Receive messages until cancelled; every failure is logged and retried with backoff.

    At most queue_max received messages wait for the agent; past that they are dropped and
    counted (memory stays bounded however far the publishers outrun the writes). With a kept
    session, QoS 1 messages are acknowledged once settled (`acks.py`), and those of a
    connection that ended are sent again by the broker on the next one.
    """
    import aiomqtt  # paho and aiomqtt load only when MQTT is on

    delay = BACKOFF_MIN
    while True:
        acks = Acks() if session.manual_ack else None
        try:
            client = make_client(url, state, queue_max, session, acks)
            async with client:
                stale = await kept.stale(topic) if kept is not None else []
                refused = refusal(topic, await client.subscribe(topic, qos=1))
                if refused is not None:
                    raise refused
                if stale:  # after the subscribe: a message in between comes twice, not never
                    await client.unsubscribe(stale)
                    log.info(
                        "IoT agent unsubscribed from %s (an earlier setting)", ", ".join(stale)
                    )
                if kept is not None:
                    await kept.settled(topic)
                state.connected, state.last_error = True, ""
                state.connects += 1
                delay = BACKOFF_MIN
                log.info("IoT agent subscribed to %s on %s", topic, url)
                await receive(client, on_message, busy, room, state)
        except asyncio.CancelledError:
            raise
        except SubscriptionRefused as exc:
            state.last_error = str(exc)
            log.warning("MQTT broker %s: %s; trying again in %.1f s", url, exc, delay)
        except aiomqtt.MqttError as exc:
            state.last_error = str(exc)
            log.warning("MQTT broker %s: %s; reconnecting in %.1f s", url, exc, delay)
        except Exception as exc:  # whatever it was, the hub keeps serving and retries
            state.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("MQTT southbound failed; reconnecting in %.1f s", delay)
        finally:
            state.connected = False
            if acks is not None:
                acks.close()
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, BACKOFF_MAX)
