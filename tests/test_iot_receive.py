"""What the MQTT southbound costs per message: a burst of packets is read in one system call
and one loop turn, and messages waiting in the client's queue are taken without a task each."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiomqtt
import httpx
from bench.iot_path import PipeSocket
from bench.mqtt_load import publish_packet

from cityhub.api.app import create_app
from cityhub.ingest.agent.mqtt import (
    BrokerUrl,
    Connection,
    Session,
    bounded_queue,
    make_client,
    receive,
)
from cityhub.settings import Settings
from iot_support import (
    MOSQUITTO,
    on_mosquitto,
    provision,
    require_mosquitto,
    stats,
    wait_for,
    wait_stats,
)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (letting the loop run) until condition holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.001)


class BrokerSocket(PipeSocket):
    """bench.iot_path's in-memory broker socket, each recv counted."""

    def __init__(self) -> None:
        super().__init__()
        self.recvs = 0

    def recv(self, n: int) -> bytes:
        self.recvs += 1
        return super().recv(n)


async def test_a_burst_of_packets_is_read_in_one_go() -> None:
    """paho asked the socket three times for every packet and aiomqtt read one packet per
    loop turn: 200 device messages took 600 system calls and 200 turns. The agent's client
    reads them in one recv, in one turn, whole and in order, a packet cut between two reads
    included."""
    state = Connection()
    client = make_client(BrokerUrl("127.0.0.1", 1883), state, 1000, Session("t"), None)
    paho = client._client
    paho.keepalive = 0
    sock = BrokerSocket()
    paho._sock = sock
    paho._call_socket_open(sock)  # as paho's connect does: aiomqtt adds its reader
    try:
        burst = b"".join(
            publish_packet(f"cityhub/k/d{i}/attrs".encode(), b'{"t": %d}' % i) for i in range(200)
        )
        cut = len(burst) - 7  # the last packet arrives in two pieces
        sock.feed(burst[:cut])
        queue = state.queue
        assert queue is not None
        await until(lambda: queue.qsize() > 0)  # the reader runs once the socket is readable
        assert queue.qsize() == 199 and sock.recvs <= 3, (queue.qsize(), sock.recvs)
        sock.feed(burst[cut:])
        await until(lambda: queue.qsize() == 200)
        got = [queue.get_nowait().message for _ in range(200)]
        assert [m.topic.value for m in got] == [f"cityhub/k/d{i}/attrs" for i in range(200)]
        assert [m.payload for m in got] == [b'{"t": %d}' % i for i in range(200)]
        assert sock.recvs <= 6
    finally:
        asyncio.get_running_loop().remove_reader(sock.fileno())
        paho._sock = None
        sock.close()


class CountingClient:
    """An aiomqtt client as receive() sees it: `messages` iterates the queue, each step
    counted (aiomqtt makes a task and an asyncio.wait for each)."""

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue
        self.steps = 0

    @property
    def messages(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            self.steps += 1
            yield await self.queue.get()


def message(i: int) -> Any:
    return SimpleNamespace(
        topic=SimpleNamespace(value=f"cityhub/k/d{i}/attrs"),
        payload=b"%d" % i,
        retain=False,
        qos=0,
        mid=0,
    )


async def test_waiting_messages_are_taken_without_a_step_each() -> None:
    """Messages already in the client's queue go to the agent in order without one iterator
    step (a task and a wait) each; a stop (reading cleared) and a lagging write (busy) still
    hold the next message back."""
    state = Connection()
    queue = bounded_queue(state, 1000)()
    client = CountingClient(queue)
    seen: list[bytes] = []
    lagging = asyncio.Event()
    lagging.set()

    def on_message(topic: str, payload: bytes, ack: Any) -> None:
        seen.append(payload)
        if len(seen) == 150:
            state.reading.clear()  # a stop begins after the 150th message

    async def room() -> None:
        await lagging.wait()

    for i in range(200):
        queue.put_nowait(message(i))
    task = asyncio.create_task(receive(client, on_message, lambda: False, room, state))
    await until(lambda: len(seen) >= 150)
    await asyncio.sleep(0.05)
    assert seen == [b"%d" % i for i in range(150)]
    assert client.steps <= 4, client.steps
    state.reading.set()
    await until(lambda: len(seen) == 200)
    assert seen == [b"%d" % i for i in range(200)]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    busy = [True]
    seen.clear()
    lagging.clear()
    for i in range(10):
        queue.put_nowait(message(i))
    task = asyncio.create_task(receive(client, on_message, lambda: busy[0], room, state))
    await asyncio.sleep(0.05)
    assert seen == [b"0"]  # the writes lag: nothing more is taken
    busy[0] = False
    lagging.set()
    await until(lambda: len(seen) == 10)
    assert seen == [b"%d" % i for i in range(10)]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_burst_through_mosquitto_is_stored_whole_and_in_order(db_path: Path) -> None:
    """Read 16 KiB at a time, packets cross the reads (payloads of up to 40 KB among small
    ones): each of 1,500 QoS 1 messages is stored once, with its own value, in the order sent."""
    require_mosquitto()
    settings = Settings(db=str(db_path), **on_mosquitto())  # nobody else publishes there
    app = create_app(settings)
    topic = f"{settings.mqtt_topic_root}/{{key}}/b1/attrs"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            mapping = {"attributes": {"n": {"name": "n"}}}
            body = {"id": "b1", "entityType": "Burst", "mapping": mapping}
            key = (await provision(client, body))["apikey"]
            await wait_for(lambda: _connected(client), "the agent subscribed", timeout=10)
            async with aiomqtt.Client(*MOSQUITTO) as device:
                for n in range(1500):
                    pad = "x" * (40_000 if n % 97 == 0 else n % 300)
                    payload = json.dumps({"n": n, "pad": pad})
                    await device.publish(topic.format(key=key), payload, qos=1)
            await wait_stats(client, timeout=60, stored=1500)
            assert (await stats(client))["rejected"] == 0
    with sqlite3.connect(db_path) as conn:
        values = [r[0] for r in conn.execute("SELECT num FROM history ORDER BY hid")]
    assert values == [float(n) for n in range(1500)]


async def _connected(client: httpx.AsyncClient) -> bool:
    return bool((await stats(client))["mqtt"]["connected"])
