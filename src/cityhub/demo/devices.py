"""The device steps `cityhub demo` prints: one of the town's IoT weather stations fed over MQTT,
as commands that work when pasted (this hub's URL, its broker, its topic root)."""

from __future__ import annotations

import json
import secrets
import shlex
from urllib.parse import urlsplit

from cityhub.demo.city import SampleCity
from cityhub.settings import Settings

DEVICE = "ws-2"  # the device id the steps provision
MAPPING = {
    "attributes": {
        "t": {"name": "temperature", "type": "number", "unitCode": "CEL"},
        "h": {"name": "relativeHumidity", "type": "number", "unitCode": "C62"},
    }
}
READING = {"t": 3.5, "h": 0.61}  # what the printed mosquitto_pub sends


def station(city: SampleCity) -> str:
    """The entity id of the town's first IoT weather station (the first station is the KMA's)."""
    return [e["id"] for e in city.entities if e["type"] == "WeatherObserved"][1]


def device_steps(settings: Settings, city: SampleCity) -> list[str]:
    """Lines telling how to feed the demo from a device. Without a broker they say how to
    start one; "run `cityhub demo --mqtt embedded`" rebuilt a database on port 1026 whatever
    this demo's --port and --db were, and said nothing of the mapping, key and topic a
    device needs."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}"
    if settings.mqtt in ("", "off"):
        flags = ["--port", str(settings.port), "--db", settings.db]
        if settings.host != "127.0.0.1":
            flags = ["--host", settings.host, *flags]
        again = shlex.join(["cityhub", "demo", "--keep", "--mqtt", "embedded", *flags])
        return [f"Feed it from devices over MQTT: restart it with `{again}`."]
    if settings.mqtt == "embedded":
        broker = f"-h {host} -p {settings.mqtt_embedded_port}"
        where = f"the embedded broker, mqtt://{host}:{settings.mqtt_embedded_port}"
    else:
        parts = urlsplit(settings.mqtt)  # no user or password: they stay in the setting
        broker = f"-h {parts.hostname} -p {parts.port or 1883}"
        broker += " --cafile <CA file>" if parts.scheme == "mqtts" else ""
        where = f"the broker at {parts.hostname}:{parts.port or 1883} (add -u/-P if it asks)"
    key = secrets.token_urlsafe(24)  # chosen here, so the steps hold it; stored only if used
    topic = f"{settings.mqtt_topic_root}/{key}/{DEVICE}/attrs"
    entity = station(city)
    return [
        f"Feed it from a device: weather station {DEVICE} over MQTT, through {where}:",
        f"  echo '{json.dumps(MAPPING)}' | \\",
        f"  CITYHUB_URL={url} cityhub iot devices create {DEVICE} --entity-type WeatherObserved "
        f"--entity-id {entity} --apikey {key} --mapping -",
        f"  mosquitto_pub {broker} -q 1 -t '{topic}' -m '{json.dumps(READING)}'",
        f"  curl -s '{url}/ngsi-ld/v1/entities/{entity}?attrs=temperature,relativeHumidity"
        "&format=simplified'",
    ]
