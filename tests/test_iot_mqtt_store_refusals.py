"""MQTT device messages that arrive while the store cannot write (another process's write lock,
a full disk, a deleted database file): they wait for it, and are never acknowledged to the
broker unstored. Probe (resilience, finding 1): 100 QoS 1 messages during a 12 s
`BEGIN IMMEDIATE` of another process were all PUBACKed, none stored, no dead letter kept."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from starlette.applications import Starlette

from cityhub.api import commit
from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import get_entity
from iot_support import MOSQUITTO, on_mosquitto, provision, require_mosquitto, stats, wait_stats
from test_iot_mqtt import EID, MAPPING, attrs, connected, running


def hub(db_path: Path, own: dict[str, Any], expiry: int = 0) -> Starlette:
    """A hub on the shared Mosquitto under its own topic root and group (on_mosquitto)."""
    return create_app(Settings(db=str(db_path), **{**own, "mqtt_session_expiry": expiry}))


def write_lock(db_path: Path) -> sqlite3.Connection:
    """Another process's write lock on the database, as `cityhub import --db` or a backup
    tool holds it."""
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def release(other: sqlite3.Connection) -> None:
    other.execute("ROLLBACK")
    other.close()


async def test_messages_wait_for_a_store_another_process_holds(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each attempt meets the lock (503 for an HTTP device); MQTT messages are written once it
    is let go, none of them dead-lettered, in the order they came: the entity ends with the
    last reading (these carry no observedAt to order them by)."""
    require_mosquitto()
    monkeypatch.setattr(commit, "BUSY_WAIT", 0.2)
    app = hub(db_path, on_mosquitto())
    async with running(app) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        await connected(client)
        other = write_lock(db_path)
        try:
            async with aiomqtt.Client(*MOSQUITTO) as device:
                for n in range(10):
                    await device.publish(attrs(app, key, "q1"), f"t|{n}", qos=1)
                    if n == 4:  # the rest in a later batch
                        await wait_stats(client, received=5)
                        # several attempts, each refused, so these wait longer and longer
                        await asyncio.sleep(4.0)
            await wait_stats(client, received=10)
            await asyncio.sleep(0.3)
            waiting = await stats(client)
            assert waiting["stored"] == 0 and waiting["waitingForStore"] == 10, waiting
        finally:
            release(other)
        body = await wait_stats(client, stored=10)
        assert body["rejected"] == 0 and body["deadLetters"] == 0, body
        assert body["waitingForStore"] == 0, body
        assert (await get_entity(client, EID))["temperature"]["value"] == pytest.approx(0.9)
        history = await client.get(f"/ngsi-ld/v1/temporal/entities/{EID}", params={"lastN": 20})
        assert len(history.json()["temperature"]) == 10, history.text


async def test_a_stop_while_the_store_refuses_leaves_qos1_messages_with_the_broker(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop does not wait for the store for ever, and does not acknowledge what it could not
    store: the broker sends those messages again to the hub started next."""
    require_mosquitto()
    monkeypatch.setattr(commit, "BUSY_WAIT", 0.2)
    own = on_mosquitto()  # the same root and group after the restart
    async with running(app := hub(db_path, own, expiry=60)) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        await connected(client)
        other = write_lock(db_path)
        try:
            async with aiomqtt.Client(*MOSQUITTO) as device:
                for n in range(5):
                    await device.publish(attrs(app, key, "q1"), f"t|{n}", qos=1)
            await wait_stats(client, received=5)
            await asyncio.sleep(0.5)
        except BaseException:
            release(other)
            raise
    release(other)  # after the stop: it stored nothing
    async with running(hub(db_path, own, expiry=0)) as client:
        await connected(client)
        body = await wait_stats(client, stored=5)
        assert body["received"] == 5, body
        assert (await get_entity(client, EID))["temperature"]["value"] == pytest.approx(0.4)
