"""The MQTT southbound end to end: the real Mosquitto (127.0.0.1:1883), a broker that goes away
and comes back, and `cityhub serve --mqtt embedded` (amqtt) driven with the `cityhub iot` CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiomqtt
import httpx
import pytest
from starlette.applications import Starlette

import iot_support
from cityhub.api.app import create_app
from cityhub.cli import main
from cityhub.ingest.agent.acks import Acks
from cityhub.ingest.agent.mqtt import (
    TOPIC,
    BrokerUrl,
    Connection,
    Session,
    bounded_queue,
    subscribe_forever,
)
from cityhub.ingest.agent.session import KeptFilters, held_filters, stored_client_id
from cityhub.settings import Settings
from conftest import BASE, free_port, get_entity
from iot_support import (
    IOT,
    MOSQUITTO,
    on_mosquitto,
    provision,
    require_mosquitto,
    stats,
    wait_for,
    wait_stats,
)
from test_serve import process

MAPPING = {
    "attributes": {"t": {"name": "temperature", "unitCode": "CEL", "scale": 0.1}},
    "observedAt": "ts",
}
EID = "urn:ngsi-ld:Thermometer:q1"


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (the MQTT side starts there) and a client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            yield client


async def connected(client: httpx.AsyncClient, connects: int = 1) -> None:
    async def ok() -> bool:
        mqtt = (await stats(client))["mqtt"]
        return bool(mqtt["connected"]) and mqtt["connects"] >= connects

    await wait_for(ok, f"MQTT connection number {connects}")


def hub_on(db_path: Path, broker: str) -> Starlette:
    """A hub whose agent has its own topic root and group (nobody else publishes there) and a
    broker session that ends when it disconnects (tests leave none behind)."""
    return create_app(Settings(db=str(db_path), **on_mosquitto(mqtt=broker)))


def attrs(app: Starlette, key: str, device: str) -> str:
    """The topic a device of app's agent publishes on (under that agent's own root)."""
    return f"{app.state.settings.mqtt_topic_root}/{key}/{device}/attrs"


async def test_mqtt_through_mosquitto(db_path: Path) -> None:
    require_mosquitto()
    app = hub_on(db_path, f"mqtt://{MOSQUITTO[0]}:{MOSQUITTO[1]}")
    async with running(app) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        await connected(client)
        topic = attrs(app, key, "q1")
        async with aiomqtt.Client(*MOSQUITTO) as device:
            await device.publish(topic, json.dumps({"t": 215, "ts": 1714557600}))
            await device.publish(topic, "t|220|ts|1714557660")
            await device.publish(topic, "{broken")  # malformed: dead-lettered
            await device.publish(attrs(app, key, "ghost"), "t|1")  # unknown device
            await device.publish(topic, json.dumps({"t": 230, "ts": 1714557720}), qos=1)
        body = await wait_stats(client, stored=3, deadLetters=2)
        assert body["rejectedByReason"]["malformed"] == 1
        assert body["rejectedByReason"]["unknown_device"] == 1
        assert body["receivedByProtocol"]["mqtt"] == 5
        entity = await get_entity(client, EID)
        assert entity["temperature"] == {
            "type": "Property",
            "value": 23.0,
            "unitCode": "CEL",
            "observedAt": "2024-05-01T10:02:00.000000Z",
        }
        resp = await client.get(f"{BASE}/temporal/entities/{EID}")
        history = [(i["value"], i["observedAt"][11:19]) for i in resp.json()["temperature"]]
        assert history == [(21.5, "10:00:00"), (22.0, "10:01:00"), (23.0, "10:02:00")]
        letters = (await client.get(f"{IOT}/deadletters")).json()
        assert [x["reason"] for x in letters] == ["malformed"]
        unrouted = await client.get(f"{IOT}/deadletters", params={"unrouted": "true"})
        assert [x["reason"] for x in unrouted.json()] == ["unknown_device"]
        letters += unrouted.json()
        assert all(key not in json.dumps(x) for x in letters)


async def test_two_agents_split_one_shared_subscription(tmp_path: Path) -> None:
    require_mosquitto()
    shared = on_mosquitto()  # one root and group for both
    apps = [create_app(Settings(db=str(tmp_path / f"hub{n}.db"), **shared)) for n in (1, 2)]
    key = "split-test-key-" + uuid.uuid4().hex[:12]
    body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING, "apikey": key}
    async with running(apps[0]) as one, running(apps[1]) as two:
        for client in (one, two):
            await provision(client, body)
            await connected(client)
        async with aiomqtt.Client(*MOSQUITTO) as device:
            for n in range(40):
                await device.publish(attrs(apps[0], key, "q1"), f"t|{n}", qos=1)

        async def all_stored() -> bool:
            return (await stats(one))["stored"] + (await stats(two))["stored"] >= 40

        await wait_for(all_stored, "40 messages stored by the two agents together")
        stored = [(await stats(c))["stored"] for c in (one, two)]
    assert sum(stored) == 40, stored  # each message once
    assert min(stored) > 0, f"one agent took every message: {stored}"


class Proxy:
    """A TCP relay to Mosquitto that can be cut: the broker "goes away" and comes back."""

    def __init__(self, port: int, tap: Callable[[bytes], None] | None = None) -> None:
        self.port = port
        self.tap = tap  # sees every byte the hub sends the broker
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*MOSQUITTO)
        self.writers += [writer, up_writer]

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, tap: Callable[[bytes], None]
        ) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    tap(data)
                    dst.write(data)
                    await dst.drain()
            dst.close()

        up_tap = self.tap or (lambda data: None)
        await asyncio.gather(pipe(reader, up_writer, up_tap), pipe(up_reader, writer, len))


async def test_the_agent_outlives_its_broker(db_path: Path) -> None:
    require_mosquitto()
    proxy = Proxy(free_port())
    app = hub_on(db_path, f"mqtt://127.0.0.1:{proxy.port}")
    try:
        async with running(app) as client:
            # No broker yet: the hub serves anyway and says why MQTT is down.
            assert (await client.get("/health")).status_code == 200
            await wait_for(lambda: _has_error(client), "the MQTT error in the stats", timeout=5.0)
            health = await client.get("/health")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded", health.json()
            assert "MQTT" in health.json()["reason"]
            assert health.json()["mqtt"]["connected"] is False
            body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
            key = (await provision(client, body))["apikey"]
            await proxy.start()
            await connected(client, 1)
            health = (await client.get("/health")).json()
            assert health["status"] == "ok" and health["mqtt"]["connected"] is True
            topic = attrs(app, key, "q1")
            async with aiomqtt.Client(*MOSQUITTO) as device:
                # Retained: the broker replays it on the next subscribe, which must not count.
                await device.publish(topic, "t|100", retain=True)
                await wait_stats(client, stored=1)
                await proxy.stop()  # the broker goes away ...
                await wait_for(lambda: _down(client), "the agent to notice the broker is gone")
                await proxy.start()  # ... and comes back
                await connected(client, 2)
                await device.publish(topic, "t|200")
                body = await wait_stats(client, stored=2)
                await device.publish(topic, b"", retain=True)  # clear the retained message
            assert body["received"] == 2
            assert (await get_entity(client, EID))["temperature"]["value"] == 20.0
    finally:
        await proxy.stop()


async def _has_error(client: httpx.AsyncClient) -> bool:
    mqtt = (await stats(client))["mqtt"]
    return not mqtt["connected"] and bool(mqtt["lastError"])


async def _down(client: httpx.AsyncClient) -> bool:
    return not (await stats(client))["mqtt"]["connected"]


# -- cityhub serve --mqtt embedded, provisioned with the CLI -------------------------------------
def serve_embedded(tmp_path: Path, http_port: int, mqtt_port: int) -> Any:
    """`cityhub serve --mqtt embedded` as a real process (MQTT on mqtt_port)."""
    args = ["serve", "--port", str(http_port), "--db", str(tmp_path / "embedded.db")]
    return process([*args, "--mqtt", "embedded"], {"CITYHUB_MQTT_EMBEDDED_PORT": str(mqtt_port)})


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `cityhub ...` in-process; (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_serve_with_the_embedded_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    http_port, mqtt_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}"
    with serve_embedded(tmp_path, http_port, mqtt_port) as proc:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:

            async def up() -> bool:
                if proc.poll() is not None:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"cityhub serve exited with {proc.returncode}: {out}")
                try:
                    return (await stats(client))["mqtt"]["connected"] is True
                except httpx.TransportError:
                    return False

            await wait_for(up, "cityhub serve with its embedded broker", timeout=20)
            mapping = tmp_path / "mapping.json"
            mapping.write_text(json.dumps(MAPPING))
            code, out, err = cli(
                capsys, "iot", "devices", "create", "e1", "--url", url,
                "--entity-type", "Thermometer", "--mapping", str(mapping),
            )  # fmt: skip
            assert code == 0, err
            key = json.loads(out)["apikey"]
            assert "shown only this once" in err
            async with aiomqtt.Client("127.0.0.1", mqtt_port) as device:
                await device.publish(f"cityhub/{key}/e1/attrs", "t|215|ts|1714557600", qos=1)
                await device.publish(f"cityhub/{key}/e1/attrs", "t|nan")  # bad value
            await wait_stats(client, stored=1, deadLetters=1)
            entity = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Thermometer:e1")).json()
            assert entity["temperature"]["value"] == 21.5
        code, out, _ = cli(capsys, "iot", "stats", "--url", url)
        assert code == 0 and json.loads(out)["mqtt"]["mode"] == "embedded"
        code, out, _ = cli(capsys, "iot", "deadletters", "list", "--url", url)
        assert code == 0 and [x["reason"] for x in json.loads(out)] == ["bad_value"]
        code, out, _ = cli(capsys, "iot", "devices", "list", "--url", url)
        assert code == 0 and [d["id"] for d in json.loads(out)] == ["e1"]
        code, _, err = cli(capsys, "iot", "devices", "create", "e2", "--url", url)
        assert code == 1
        assert (
            err.strip()
            == "cityhub iot: 400 Bad request data: entityType is required (on the device or on its source)"
        )
        code, out, _ = cli(capsys, "iot", "deadletters", "clear", "--url", url)
        assert code == 0 and json.loads(out) == {"deleted": 1}


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    nan, huge, deep = (tmp_path / f"{n}.json" for n in ("nan", "huge", "deep"))
    nan.write_text('{"attributes": {"t": {"name": "t", "type": "number", "scale": NaN}}}')
    huge.write_text('{"attributes": {"t": {"name": "t", "type": "number", "scale": 1e400}}}')
    deep.write_text("[" * 100_000 + "]" * 100_000)
    latin = tmp_path / "latin.json"  # a mapping saved as Latin-1 or cp949: a traceback before
    latin.write_bytes(b'{"static": {"name": {"type": "Property", "value": "caf\xe9"}}}')
    for argv, status, words in (
        (["devices", "list", "--url", nowhere], 1, f"cannot reach the hub at {nowhere}"),
        (["devices", "create", "x", "--mapping", str(bad)], 2, "is not valid JSON"),
        # Python's json loads these, then the request could not be sent: a traceback before.
        (["devices", "create", "x", "--mapping", str(nan), "--url", nowhere], 2, "holds NaN"),
        (["devices", "create", "x", "--mapping", str(huge), "--url", nowhere], 2, "holds 1e400"),
        (["devices", "create", "x", "--mapping", str(deep), "--url", nowhere], 2, "too deeply"),
        (["sources", "create", "x", "--mapping", str(tmp_path / "no")], 2, "cannot read the"),
        (["devices", "create", "x", "--mapping", str(latin)], 2, "is not UTF-8"),
        (["devices", "update", "x", "--file", str(latin)], 2, "record file"),
    ):
        code, out, err = cli(capsys, "iot", *argv)
        assert code == status and not out
        assert err.startswith("cityhub iot: ") and words in err, err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_a_taken_embedded_port_fails_cleanly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**os.environ, "CITYHUB_MQTT_EMBEDDED_PORT": str(taken.getsockname()[1])}
        argv = ["serve", "--mqtt", "embedded", "--port", str(free_port())]
        proc = subprocess.run(
            [sys.executable, "-m", "cityhub.cli", *argv, "--db", str(tmp_path / "x.db")],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert proc.returncode == 2
    assert not (tmp_path / "x.db").exists(), "a hub that cannot listen creates no database"
    assert "embedded MQTT broker cannot listen" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_missing_broker_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iot_support, "broker_reachable", lambda host, port: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must provide Mosquitto"):
        require_mosquitto()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no Mosquitto"):
        require_mosquitto()


async def test_messages_past_the_queue_bound_are_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = Connection()
    queue = bounded_queue(state, 10)()
    with caplog.at_level(logging.WARNING):
        for i in range(1000):
            queue.put_nowait(i)
    assert queue.qsize() == 10 and state.dropped == 990
    assert [(await queue.get()).message for _ in range(3)] == [0, 1, 2]
    assert sum("cannot keep up" in r.getMessage() for r in caplog.records) == 1


async def test_messages_sent_while_the_hub_is_down_wait_in_its_session(db_path: Path) -> None:
    """A hub that restarts on the same database resumes its broker session: QoS 1 messages
    published while it was away are delivered (a random id and a clean session lost them)."""
    require_mosquitto()
    own = on_mosquitto(mqtt_session_expiry=60)  # the same root and group after the restart

    def hub() -> Starlette:
        return create_app(Settings(db=str(db_path), **own))

    async with running(hub()) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        await connected(client)
    async with aiomqtt.Client(*MOSQUITTO) as device:  # the hub is down
        for n in range(20):
            await device.publish(attrs(hub(), key, "q1"), f"t|{n}", qos=1)
    async with running(hub()) as client:
        body = await wait_stats(client, stored=20)
        assert body["received"] == 20
        assert (await get_entity(client, EID))["temperature"]["value"] == 1.9


async def test_an_empty_group_subscribes_plainly(db_path: Path) -> None:
    """CITYHUB_MQTT_GROUP="" subscribes without $share (Mosquitto 2.0 keeps such a
    subscription across its restarts, and drops shared ones)."""
    require_mosquitto()
    app = create_app(Settings(db=str(db_path), **on_mosquitto(mqtt_group="")))
    async with running(app) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        await connected(client)
        async with aiomqtt.Client(*MOSQUITTO) as device:
            await device.publish(attrs(app, key, "q1"), "t|5", qos=1)
        await wait_stats(client, stored=1)


class Pubacks:
    """Counts the PUBACK packets in a byte stream from a client to its broker."""

    def __init__(self) -> None:
        self.seen: list[int] = []  # their packet ids, in the order sent
        self._buf = b""

    def __call__(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= 2:
            length, shift, at = 0, 0, 1
            while at < len(self._buf):
                byte = self._buf[at]
                length |= (byte & 0x7F) << shift
                shift, at = shift + 7, at + 1
                if not byte & 0x80:
                    break
            else:
                return
            if len(self._buf) < at + length:
                return
            packet, self._buf = self._buf[: at + length], self._buf[at + length :]
            if packet[0] >> 4 == 4:  # PUBACK
                self.seen.append(int.from_bytes(packet[at : at + 2], "big"))


async def test_qos1_is_acknowledged_only_once_stored(db_path: Path) -> None:
    """The hub's PUBACK means the message is in the database: while its write is held up, the
    broker gets no PUBACK (a `kill -9` then loses nothing the broker gave the hub), and once
    the write committed every message is acknowledged, in the order it came. More than
    Mosquitto's 20 in flight arrive meanwhile: the hub's Receive Maximum raises it."""
    require_mosquitto()
    pubacks = Pubacks()
    proxy = Proxy(free_port(), tap=pubacks)
    await proxy.start()
    app = hub_on(db_path, f"mqtt://127.0.0.1:{proxy.port}")
    try:
        async with running(app) as client:
            body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
            key = (await provision(client, body))["apikey"]
            await connected(client)
            ingestor = app.state.iot.ingestor
            held = asyncio.Event()
            write_slice = ingestor._write_slice

            async def held_write(*args: Any, **kwargs: Any) -> None:
                await held.wait()
                await write_slice(*args, **kwargs)

            ingestor._write_slice = held_write
            async with aiomqtt.Client(*MOSQUITTO) as device:
                for n in range(30):
                    await device.publish(attrs(app, key, "q1"), f"t|{n}", qos=1)
                await device.publish(attrs(app, key, "q1"), "{broken", qos=1)
            await wait_stats(client, received=31)
            await asyncio.sleep(0.3)  # what a PUBACK sent meanwhile needs to pass the proxy
            assert pubacks.seen == [], "acknowledged before the write committed"
            held.set()
            await wait_stats(client, stored=30, deadLetters=1)
            await wait_for(lambda: _count(pubacks.seen, 31), "31 PUBACKs")
            assert pubacks.seen == sorted(pubacks.seen), pubacks.seen
    finally:
        await proxy.stop()


async def _count(seen: list[int], n: int) -> bool:
    return len(seen) >= n


def test_pubacks_go_in_the_order_messages_came() -> None:
    """A PUBACK waits for the messages received before it (MQTT 4.6), a dropped message is
    acknowledged at once (withheld, it would hold up every later one), QoS 0 has none, and a
    connection that ended sends nothing."""
    sent: list[int] = []
    acks = Acks()
    acks.send = sent.append
    queue = bounded_queue(Connection(), 4, acks)()
    for mid, qos in ((1, 1), (2, 1), (0, 0), (3, 1), (4, 1)):  # 4: past the bound
        queue.put_nowait(SimpleNamespace(mid=mid, qos=qos))
    got = [queue.get_nowait() for _ in range(3)]
    assert [r.ack.mid if r.ack else None for r in got] == [1, 2, None]
    assert sent == []  # 4 is settled, but 1-3 are not
    got[1].ack()
    assert sent == []
    got[0].ack()
    got[0].ack()  # once only
    assert sent == [1, 2]
    acks.close()
    queue.get_nowait().ack()
    assert sent == [1, 2] and len(acks) == 0


async def test_a_clean_stop_acknowledges_what_it_stored(db_path: Path) -> None:
    """A stop writes what it took while its connection is open, so the PUBACKs reach the
    broker: the hub started again gets none of those messages a second time."""
    require_mosquitto()
    own = on_mosquitto(mqtt_session_expiry=60)  # the same root and group after the restart

    def hub() -> Starlette:
        return create_app(Settings(db=str(db_path), **own))

    app = hub()
    async with running(app) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        await connected(client)
        ingestor = app.state.iot.ingestor
        held = asyncio.Event()
        write_slice = ingestor._write_slice

        async def held_write(*args: Any, **kwargs: Any) -> None:
            await held.wait()
            await write_slice(*args, **kwargs)

        ingestor._write_slice = held_write
        async with aiomqtt.Client(*MOSQUITTO) as device:
            for n in range(20):
                await device.publish(attrs(app, key, "q1"), f"t|{n}", qos=1)
        await wait_stats(client, received=20)
        asyncio.get_running_loop().call_later(0.2, held.set)  # the stop waits for the writes
    async with running(hub()) as client:
        await connected(client)
        await asyncio.sleep(0.5)  # what the broker would send again arrives at once
        body = await stats(client)
        assert body["received"] == 0, body
        assert (await get_entity(client, EID))["temperature"]["value"] == 1.9


async def test_a_changed_group_drops_the_old_subscription(db_path: Path) -> None:
    """The broker session a hub resumes still holds the subscription of the group it had;
    started with another group, the hub unsubscribes that one, so each message is stored
    once (it came through both, stored twice, for as long as the session lived)."""
    require_mosquitto()
    own = on_mosquitto(mqtt_session_expiry=60)  # one root: only the group changes

    def hub(group: str) -> Starlette:
        return create_app(Settings(db=str(db_path), **{**own, "mqtt_group": group}))

    async with running(hub(f"test-{uuid.uuid4().hex[:8]}")) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        await connected(client)
    app = hub(f"test-{uuid.uuid4().hex[:8]}")
    async with running(app) as client:
        await connected(client)
        async with aiomqtt.Client(*MOSQUITTO) as device:
            for n in range(20):
                await device.publish(attrs(app, key, "q1"), f"t|{n}", qos=1)
            await device.publish(attrs(app, key, "q1"), "t|99", qos=1)  # the last one
        await wait_for(lambda: _last_stored(client), "the last message")
        await asyncio.sleep(0.3)  # what a second copy needs to arrive after the first
        body = await stats(client)
        assert (body["received"], body["stored"]) == (21, 21)
        resp = await client.get(f"{BASE}/temporal/entities/{EID}", params={"lastN": 100})
        assert len(resp.json()["temperature"]) == 21


async def _last_stored(client: httpx.AsyncClient) -> bool:
    resp = await client.get(f"{BASE}/entities/{EID}")
    # the device's entity exists from its provisioning on; temperature comes with a message
    return resp.status_code == 200 and resp.json().get("temperature", {}).get("value") == 9.9


@pytest.mark.filterwarnings("ignore:The 'acl' option is deprecated")  # amqtt 0.12.1 has no other
async def test_a_refused_subscription_is_not_healthy(db_path: Path) -> None:
    """A broker that refuses the subscription (SUBACK 0x80 here: an ACL; 0x87 or 0x9E on
    MQTT 5) leaves the hub connected but receiving nothing: /health says degraded with the
    refusal, and the agent keeps trying."""
    from amqtt.broker import Broker

    port = free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {
                    "acl": {"anonymous": ["other/#"]}
                },
            },
        }
    )
    await broker.start()
    app = create_app(Settings(db=str(db_path), mqtt=f"mqtt://127.0.0.1:{port}"))
    state = app.state.iot.connection
    task = asyncio.create_task(
        subscribe_forever(
            BrokerUrl("127.0.0.1", port),
            TOPIC,
            lambda *_: None,
            lambda: False,
            _no_wait,
            state,
            queue_max=10,
            session=Session("cityhub-refused"),
        )
    )
    try:

        async def refused() -> bool:
            return "refused the subscription" in state.last_error

        await wait_for(refused, "the refusal")
        section, reason = app.state.iot.health()
        assert section is not None and section["connected"] is False
        assert "refused the subscription to cityhub/+/+/attrs" in section["lastError"]
        assert "refused" in reason
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await broker.shutdown()


async def _no_wait() -> None:
    return None


async def test_the_filters_a_session_holds_are_recorded(db_path: Path) -> None:
    """Which filters a hub drops after subscribing: those recorded for its client id, or,
    from a database that recorded none, the plain and the default group's filters."""
    app = create_app(Settings(db=str(db_path)))
    async with running(app):
        store = app.state.store
        kept = KeptFilters(store, app.state.committer, "cityhub-c1")
        shared = f"$share/g1/{TOPIC}"
        assert await kept.stale(shared) == [TOPIC, f"$share/cityhub/{TOPIC}"]
        await kept.settled(shared)
        assert await kept.stale(TOPIC) == [shared]
        assert held_filters(store, "cityhub-c1") == [shared, TOPIC]  # until the drop is done
        await kept.settled(TOPIC)
        assert await kept.stale(TOPIC) == []
        assert held_filters(store, "cityhub-other") is None
        client_id = stored_client_id(store)  # a record with filters only gains an id
        assert client_id.startswith("cityhub-") and stored_client_id(store) == client_id
        assert held_filters(store, "cityhub-c1") == [TOPIC]


async def test_a_fresh_database_has_no_earlier_filters_to_drop(db_path: Path) -> None:
    """A client id created now has no session from before filters were recorded: its first
    start logged that it unsubscribed from the plain and default group's filters (an earlier
    setting) though the database had never held a session."""
    app = create_app(Settings(db=str(db_path)))
    async with running(app):
        store = app.state.store
        client_id = await app.state.committer.run(lambda: stored_client_id(store))
        kept = KeptFilters(store, app.state.committer, client_id)
        assert await kept.stale(f"$share/g1/{TOPIC}") == []
