"""The embedded MQTT broker (amqtt) for `cityhub serve --mqtt embedded`: no other process."""

from __future__ import annotations

import logging
from typing import Any

# amqtt logs every connection at INFO; its state machine library logs each transition.
for _name in ("amqtt", "transitions"):
    logging.getLogger(_name).setLevel(logging.WARNING)


async def start_broker(host: str, port: int) -> Any:
    """Listen on host:port (anonymous clients: devices prove themselves with the API key)."""
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    return broker


def client_host(host: str) -> str:
    """The address the agent's own client uses to reach a broker bound to host."""
    return "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
