"""CITYHUB_MQTT_TOPIC_ROOT: a hub on a broker that others use (another hub, other systems, a
city's own devices) receives only the topics under its root. Before it, every hub subscribed to
cityhub/+/+/attrs: a shared-subscription group of its own still got a copy of every message
there, and the burst test counted 21 rejected messages of someone else's devices."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pydantic
import pytest

from cityhub.api.app import create_app
from cityhub.ingest.agent.deadletters import DeadLetters
from cityhub.ingest.agent.payload import Raw
from cityhub.ingest.agent.reasons import Rejected
from cityhub.settings import Settings
from conftest import get_entity
from iot_support import (
    MOSQUITTO,
    on_mosquitto,
    own_root,
    provision,
    require_mosquitto,
    stats,
    wait_stats,
)
from test_iot_mqtt import EID, MAPPING, attrs, connected, running


@pytest.mark.parametrize(
    "root", ["", "a/", "/a", "a//b", "a/+/b", "a/#", "$SYS", "a b", "a/\u00e9", "x" * 129]
)
def test_a_root_that_is_no_plain_topic_prefix_is_refused(root: str) -> None:
    """A wildcard or an empty level would subscribe to other systems' topics, and `$` ones are
    the broker's own: the hub does not start with such a root."""
    with pytest.raises(pydantic.ValidationError, match="mqtt_topic_root"):
        Settings(mqtt_topic_root=root)


@pytest.mark.parametrize("root", ["cityhub", "city-a/cityhub", "x" * 128, "a.b/c_d/E-1"])
def test_a_root_of_plain_levels_is_taken(root: str) -> None:
    assert Settings(mqtt_topic_root=root).mqtt_topic_root == root


async def test_messages_under_another_root_never_reach_the_hub(db_path: Path) -> None:
    """A stranger publishes on the default root, with the hub's own key and device id, and
    under a root that merely starts like the hub's: none of it is received or counted."""
    require_mosquitto()
    app = create_app(Settings(db=str(db_path), **on_mosquitto()))
    root = app.state.settings.mqtt_topic_root
    async with running(app) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        await connected(client)
        async with aiomqtt.Client(*MOSQUITTO) as device:
            await device.publish(f"cityhub/{key}/q1/attrs", "t|1", qos=1)
            await device.publish(f"{root}x/{key}/q1/attrs", "t|2", qos=1)
            await device.publish(f"{root}/{key}/q1/other", "t|3", qos=1)
            await device.publish("cityhub/some-key/stranger/attrs", "{broken", qos=1)
            await device.publish(attrs(app, key, "q1"), "t|215", qos=1)  # the hub's own
        await wait_stats(client, stored=1)
        await asyncio.sleep(0.3)  # what came after the hub's own message
        body = await stats(client)
        assert (body["received"], body["rejected"], body["deadLetters"]) == (1, 0, 0), body
        assert (await get_entity(client, EID))["temperature"]["value"] == 21.5


async def test_a_changed_root_drops_the_old_subscription(db_path: Path) -> None:
    """The broker session a hub resumes still holds the filter of the root it had; started
    under another root, the hub unsubscribes it, as it does a changed group's."""
    require_mosquitto()
    own = on_mosquitto(mqtt_session_expiry=60)
    async with running(create_app(Settings(db=str(db_path), **own))) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        await connected(client)
    old_root = own["mqtt_topic_root"]
    app = create_app(Settings(db=str(db_path), **{**own, "mqtt_topic_root": own_root()}))
    async with running(app) as client:
        await connected(client)
        async with aiomqtt.Client(*MOSQUITTO) as device:
            await device.publish(f"{old_root}/{key}/q1/attrs", "t|1", qos=1)
            await device.publish(attrs(app, key, "q1"), "t|2", qos=1)
        await wait_stats(client, stored=1)
        await asyncio.sleep(0.3)
        assert (await stats(client))["received"] == 1


def test_a_letter_blanks_the_key_after_the_root() -> None:
    """Letters must not hold keys: the level after a root of several levels is the key."""

    class NoStore:
        def resource_count_all(self, kind: str) -> int:
            return 0

    letters = DeadLetters(NoStore(), bound=10, root="city-a/cityhub")
    raw = Raw("mqtt", "", "", b"{}", topic="city-a/cityhub/s3cr3t-key/dev1/wrong")
    doc = letters.letter(raw, Rejected("bad_request", "test"))
    assert doc["topic"] == "city-a/cityhub/<apikey>/dev1/wrong"


async def test_the_embedded_broker_routes_under_the_root_too(db_path: Path) -> None:
    """The agent reads apikey and device after the root whatever the broker; the default
    root's topic is then another shape, refused as a bad request."""
    app = create_app(Settings(db=str(db_path), mqtt_topic_root="city-a/cityhub"))
    async with running(app) as client:
        body = {"id": "q1", "entityType": "Thermometer", "mapping": MAPPING}
        key = (await provision(client, body))["apikey"]
        app.state.iot.on_mqtt(f"city-a/cityhub/{key}/q1/attrs", b"t|215")
        app.state.iot.on_mqtt(f"cityhub/{key}/q1/attrs", b"t|1")
        body = await wait_stats(client, stored=1, bad_request=1)
        assert body["received"] == 2
        assert (await get_entity(client, EID))["temperature"]["value"] == 21.5


@pytest.mark.parametrize(
    ("module", "name", "setting"),
    [
        ("cityhub.ingest.agent.mqtt", "ROOT", "mqtt_topic_root"),
        ("cityhub.ingest.agent.session", "DEFAULT_GROUP", "mqtt_group"),
    ],
)
def test_the_settings_defaults_are_the_agent_s(module: str, name: str, setting: str) -> None:
    """The default root (and group) is written once, in the agent, and the settings take it
    from there: a fresh interpreter that changes the agent's value before the settings are
    imported sees it as the default (and imports either module first without a cycle)."""
    script = (
        f"import {module} as m; m.{name} = 'elsewhere'\n"
        "from cityhub.settings import Settings\n"
        f"print(Settings.model_fields[{setting!r}].default)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "elsewhere", out.stderr
    first = subprocess.run(
        [sys.executable, "-c", f"import cityhub.settings, {module}"], env=env, check=False
    )
    assert first.returncode == 0
