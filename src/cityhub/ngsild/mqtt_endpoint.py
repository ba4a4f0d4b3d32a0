"""What an MQTT notification endpoint must be for a broker to take its publishes: a topic a
client may publish to, and the notifierInfo values the MQTT binding defines. Anything else
was stored, then every delivery failed (or fell back silently to MQTT 3.1.1 and QoS 0)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from cityhub.ngsild.errors import BadRequestData, shown

MQTT_SCHEMES = ("mqtt", "mqtts")
MQTT_VERSIONS = ("mqtt3.1.1", "mqtt5.0")  # notifierInfo MQTT-Version
MQTT_QOS = ("0", "1", "2")  # notifierInfo MQTT-QoS
MQTT_KEYS = ("MQTT-Version", "MQTT-QoS")
MAX_TOPIC_BYTES = 65_535  # MQTT strings carry a two-byte length


def topic_of(uri: str) -> str:
    """The topic an MQTT endpoint names: its path after the one `/` that ends the authority
    (`mqtt://h//a` is topic `/a`, which MQTT tells from `a`)."""
    path = urlsplit(uri).path
    return unquote(path[1:] if path.startswith("/") else path, errors="strict")  # UTF-8 only


def check_mqtt(uri: str, notifier_info: list[dict[str, str]] | None) -> None:
    """Refuse an MQTT endpoint no broker could be published to as it stands."""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in MQTT_SCHEMES:
        return
    where = "notification.endpoint.uri"
    if "#" in uri or "?" in uri:  # a raw # is a fragment to a URI parser, a wildcard to MQTT
        raise BadRequestData(
            f"{where}: an MQTT endpoint takes no query or fragment (# is a topic wildcard, "
            "which a publish cannot use; percent-encode a ? that belongs to the topic)"
        )
    try:
        topic = topic_of(uri)
    except UnicodeDecodeError:  # was published as U+FFFD, a topic the client never named
        raise BadRequestData(f"{where}: the MQTT topic is not UTF-8 once percent-decoded") from None
    if not topic:
        raise BadRequestData(f"{where} names no MQTT topic (mqtt://host[:port]/topic)")
    if "+" in topic or "#" in topic:
        raise BadRequestData(
            f"{where}: the MQTT topic {shown(topic)} holds a wildcard (+ or #), which a "
            "publish cannot use"
        )
    if topic.startswith("$"):  # MQTT 3.1.1 4.7.2: taken, never delivered to subscribers
        raise BadRequestData(
            f"{where}: the MQTT topic {shown(topic)} begins with $, which brokers keep for "
            "themselves: a publish there reaches no subscriber"
        )
    if "\x00" in topic:
        raise BadRequestData(f"{where}: an MQTT topic cannot hold a NUL character")
    if len(topic.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        raise BadRequestData(f"{where}: the MQTT topic is longer than {MAX_TOPIC_BYTES} bytes")
    seen: set[str] = set()
    for pair in notifier_info or []:
        key, value = pair["key"], pair["value"]
        if key in MQTT_KEYS and key in seen:
            raise BadRequestData(f"notifierInfo names {key} more than once")
        seen.add(key)
        if key == "MQTT-Version" and value not in MQTT_VERSIONS:
            raise BadRequestData(
                f"notifierInfo MQTT-Version must be one of {', '.join(MQTT_VERSIONS)}, "
                f"got {shown(value)}"
            )
        if key == "MQTT-QoS" and value not in MQTT_QOS:
            raise BadRequestData(f"notifierInfo MQTT-QoS must be 0, 1 or 2, got {shown(value)}")
