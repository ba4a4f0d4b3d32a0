"""A small MQTT 3.1.1 publisher on raw asyncio streams: the devices of the IoT benchmark (g).

It runs as its own process: `python -m bench.mqtt_load` reads one job (JSON) on stdin and
writes one result (JSON) on stdout. It publishes QoS 0 messages, under the run's topic root
(`topic_root`), open-loop at `rate` per second
(spread over `connections` TCP connections, round-robin over the devices) for `duration`
seconds. Each payload carries the send time, `{"t": <value>, "ts": <epoch seconds>}`, so the
receiver can compute device-to-stored latency. Only the given broker (loopback) is contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from cityhub.ingest.agent.mqtt import ROOT

TICK = 0.001  # seconds between bursts of the open loop
TOPIC_ROOT_ENV = "CITYHUB_MQTT_TOPIC_ROOT"  # the hub's setting of it (settings.mqtt_topic_root)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session, keep-alive off."""
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: bytes, payload: bytes) -> bytes:
    """PUBLISH, QoS 0."""
    body = len(topic).to_bytes(2, "big") + topic + payload
    return b"\x30" + _varint(len(body)) + body


def topic_root() -> str:
    """The topic root of this run, CITYHUB_MQTT_TOPIC_ROOT as the hub reads it (bench/iot.py
    gives every run one of its own, so no other hub or test on the broker meets its
    messages, nor it theirs), else the hub's default."""
    return os.environ.get(TOPIC_ROOT_ENV) or ROOT


async def publisher(
    job: dict[str, Any], index: int, share: float, counter: list[int], start: float
) -> None:
    """One connection publishing its share of the rate until the deadline."""
    reader, writer = await asyncio.open_connection(job["host"], job["port"])
    writer.write(connect_packet(f"bench-pub-{index}-{int(start * 1000) % 100000}"))
    await writer.drain()
    ack = await reader.readexactly(4)
    if ack[0] != 0x20 or ack[3] != 0:
        raise RuntimeError(f"CONNACK refused: {ack!r}")
    root = topic_root()
    topics = [f"{root}/{key}/{dev}/attrs".encode() for key, dev in job["devices"]]
    rate, duration = float(job["rate"]) * share, float(job["duration"])
    sent = 0
    deadline = start + duration
    while True:
        now = time.time()
        if now >= deadline:
            break
        due = int((now - start) * rate) - sent
        if due > 0:
            burst = []
            for k in range(sent, sent + due):
                payload = b'{"t":%.1f,"ts":%.6f}' % (15 + (k % 200) / 10, time.time())
                burst.append(publish_packet(topics[(k * 7 + index) % len(topics)], payload))
            writer.write(b"".join(burst))
            sent += due
            counter[0] += due
            await writer.drain()
        await asyncio.sleep(TICK)
    writer.write(b"\xe0\x00")  # DISCONNECT
    await writer.drain()
    writer.close()


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Publish for the job's duration; report how many messages went out and how fast."""
    conns = int(job.get("connections", 2))
    counter = [0]
    cpu0 = time.process_time()
    start = time.time()
    await asyncio.gather(*(publisher(job, i, 1 / conns, counter, start) for i in range(conns)))
    wall = time.time() - start
    return {
        "sent": counter[0],
        "start": start,  # epoch seconds: the first message was due then
        "end": start + wall,
        "wall_s": wall,
        "rate": counter[0] / wall,
        "cpu_s": time.process_time() - cpu0,
    }


def main() -> None:
    job = json.loads(sys.stdin.read())
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a hub dependency
        pass
    print(json.dumps(asyncio.run(run_job(job))))


if __name__ == "__main__":
    main()
