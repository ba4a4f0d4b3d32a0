"""`python -m bench.iot_path N [--batch B] [--digest] [--profile FILE]`: bench (g)'s device
messages, N of them, fed to the hub's MQTT client and IoT agent in this process.

No broker and no sockets: the messages are bench/mqtt_load.py's PUBLISH packets (QoS 0,
`{"t": ..., "ts": ...}` round-robin over (g)'s 1,000 devices of one source), read by the
agent's own aiomqtt/paho client from an in-memory socket whose readiness is a pipe, so the
event loop calls paho's reader as it would for the broker's socket. What runs is the hub's own
work per message: packet decoding, aiomqtt's queue, the agent's receive loop, key lookup,
payload decoding, mapping, the batch through the group committer, the entity update and its
history row. B messages (default 25: 5,000 messages/s over the agent's 5 ms window) arrive
together and are written as one batch (the agent's batch bound is set to B, so a slow run
batches alike), and the next B arrive once they are stored.

Under callgrind with BENCH_CALLGRIND=1, only the messages are counted (instrumentation is
turned on and off around them); run two N and divide the difference by the difference of N:

    BENCH_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \\
        python -m bench.iot_path 2000

--digest prints a digest of the stored entities and history (times of the write left out,
the observedAt kept), so two versions of the hub can be shown to store the same.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.iot import MAPPING
from bench.mqtt_load import publish_packet
from bench.write_path import exchange, instrument, lifespan

DEVICES = 1000  # as (g)'s full plan
KEY = "bench-iot-path-key-0123456789"
# the first message's observedAt (epoch seconds, 2023-11-14); each next one 200 µs on. In the
# past: the agent refuses readings dated ahead of its clock (decision 080)
T0 = 1_700_000_000.0


class PipeSocket:
    """What paho reads the broker from: bytes fed in memory, readable (to the event loop)
    while any are left, as a non-blocking socket is."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self._buf = bytearray()
        self._ready = False

    def feed(self, data: bytes) -> None:
        """Bytes from the broker: the event loop sees the socket readable."""
        self._buf += data
        if not self._ready:
            os.write(self._w, b"x")
            self._ready = True

    def recv(self, n: int) -> bytes:
        if not self._buf:
            if self._ready:
                os.read(self._r, 1)
                self._ready = False
            raise BlockingIOError
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def fileno(self) -> int:
        return self._r

    def setblocking(self, flag: bool) -> None:
        pass

    def close(self) -> None:
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)


def packets(n: int) -> list[bytes]:
    """(g)'s publisher's packets, deterministic: its values, its device order, fixed times."""
    topics = [f"cityhub/{KEY}/dev{i}/attrs".encode() for i in range(DEVICES)]
    return [
        publish_packet(
            topics[(k * 7) % DEVICES],
            b'{"t":%.1f,"ts":%.6f}' % (15 + (k % 200) / 10, T0 + k * 0.0002),
        )
        for k in range(n)
    ]


async def provision(app: Any) -> None:
    """(g)'s source and its devices, through /iot/v1."""
    body = {"id": "bench", "apikey": KEY, "entityType": "BenchSensor", "mapping": MAPPING}
    status, _ = await exchange(app, "POST", "/iot/v1/sources", orjson.dumps(body))
    assert status == 201, status
    for i in range(DEVICES):
        dev = orjson.dumps({"id": f"dev{i}", "source": "bench"})
        status, _ = await exchange(app, "POST", "/iot/v1/devices", dev)
        assert status == 201, status


async def drive(n: int, batch: int, db: Path, prof: cProfile.Profile | None) -> float:
    """Set the hub up, feed n messages `batch` at a time; the seconds they took."""
    from cityhub.api.app import create_app
    from cityhub.cli import tune_runtime
    from cityhub.ingest.agent.mqtt import BrokerUrl, Connection, Session, make_client, receive
    from cityhub.settings import Settings

    # a batch is written when `batch` messages wait (the window never closes it first), so
    # batches are the same size however slowly this runs (callgrind, a busy machine)
    settings = Settings(
        db=str(db), log_level="warning", ingest_batch_max=batch, ingest_batch_ms=1000
    )
    app = create_app(settings)
    tune_runtime()
    task, inbox = await lifespan(app)
    await provision(app)
    agent = app.state.iot
    ing, stats = agent.ingestor, agent.stats
    conn = Connection()
    url, session = BrokerUrl("127.0.0.1", 1883), Session("bench-iot-path")
    client = make_client(url, conn, 20 * ing.max_batch, session, None)  # as the agent's
    paho = client._client
    paho.keepalive = 0  # no broker to ping: paho would close a socket silent for 30 s
    sock = PipeSocket()
    paho._sock = sock
    paho._call_socket_open(sock)  # as paho's connect does: aiomqtt adds its reader
    reader = asyncio.create_task(receive(client, agent.on_mqtt, ing.busy, ing.room, conn))
    data = packets(n)
    base = stats.stored

    async def stored(upto: int) -> None:
        while stats.stored - base < upto:
            if sum(stats.rejected.values()):  # never stored: fail rather than wait for ever
                raise SystemExit(f"messages refused: {dict(stats.rejected)}")
            await asyncio.sleep(0.0005)

    instrument("on")
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        sock.feed(b"".join(data[start : start + batch]))
        await stored(min(start + batch, n))
    took = time.perf_counter() - t0
    if prof:
        prof.disable()
    instrument("off")
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    asyncio.get_running_loop().remove_reader(sock.fileno())
    paho._sock = None
    sock.close()
    assert stats.received - base == n and not conn.dropped, (stats.snapshot(), conn.dropped)
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    return took


def without_write_times(value: Any) -> Any:
    """A stored document without the times of its write (which differ run to run)."""
    if isinstance(value, dict):
        return {
            k: without_write_times(v)
            for k, v in value.items()
            if k not in ("createdAt", "modifiedAt", "instanceId")
        }
    if isinstance(value, list):
        return [without_write_times(v) for v in value]
    return value


def digest(db: Path) -> tuple[str, int, int]:
    """sha256 of every entity, history row and temporal entity as stored, less the times of
    the writes, and of the rows that index them; the counts of entities and history rows."""
    h = hashlib.sha256()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        ents = conn.execute("SELECT tenant, id, doc FROM entities ORDER BY pk").fetchall()
        for tenant, eid, doc in ents:
            h.update(orjson.dumps([tenant, eid, without_write_times(orjson.loads(doc))]))
        rows = conn.execute(
            "SELECT tpk, nid, dataset_id, t_observed, num, inst FROM history ORDER BY hid"
        ).fetchall()
        for *head, inst in rows:
            h.update(orjson.dumps([*head, without_write_times(orjson.loads(inst))]))
        for row in conn.execute("SELECT tenant, id, types, scope FROM tentities ORDER BY tpk"):
            h.update(orjson.dumps(row))
        for table in ("history_datasets", "attr_index", "entity_types", "type_attrs", "geo"):
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3"):
                h.update(orjson.dumps(row))
    return h.hexdigest(), len(ents), len(rows)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run on uvloop as the server does, print the rate (and digest)."""
    import uvloop

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--batch", type=int, default=25, help="messages that arrive together")
    ap.add_argument("--digest", action="store_true", help="print a digest of what was stored")
    ap.add_argument("--profile", help="write cProfile stats of the messages to this file")
    args = ap.parse_args(argv)
    prof = cProfile.Profile(time.process_time) if args.profile else None
    with tempfile.TemporaryDirectory(prefix="cityhub-iot-path-") as tmp:
        db = Path(tmp) / "hub.db"
        took = uvloop.run(drive(args.n, args.batch, db, prof))
        summary = digest(db) if args.digest else None
    if prof:
        prof.dump_stats(args.profile)
    print(
        f"iot {args.n} (batches of {args.batch}): {took:.2f} s "
        f"({took / max(args.n, 1) * 1e6:.1f} µs a message)",
        flush=True,
    )
    if summary:
        print(f"digest {summary[0]} ({summary[1]} entities, {summary[2]} history rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
