"""The IoT agent as one object on app.state.iot, and its start/stop hooks for the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette

from cityhub.ingest.agent.deadletters import DeadLetters
from cityhub.ingest.agent.mqtt import (
    BrokerUrl,
    Connection,
    Session,
    device_levels,
    parse_broker,
    topic_filter,
)
from cityhub.ingest.agent.payload import Raw
from cityhub.ingest.agent.pipeline import Ingestor
from cityhub.ingest.agent.provisioning import Provisioning
from cityhub.ingest.agent.reasons import BAD_REQUEST, Rejected
from cityhub.ingest.agent.registry import Registry
from cityhub.ingest.agent.retry import Retries
from cityhub.ingest.agent.session import KeptFilters, stored_client_id
from cityhub.ingest.agent.stats import Stats

log = logging.getLogger("cityhub.iot")


class IotAgent:
    """Registry, message path, dead letters and the MQTT side of one hub process."""

    def __init__(self, settings: Any, state: Any) -> None:
        self.settings = settings
        self.state = state
        self.stats = Stats()
        self.registry = Registry()
        self.registry.load(state.store)
        self.root = settings.mqtt_topic_root
        self.letters = DeadLetters(state.store, settings.deadletter_max, self.root)
        self.ingestor = Ingestor(
            self.registry,
            self.letters,
            self.stats,
            state,
            window=settings.ingest_batch_ms / 1000,
            max_batch=settings.ingest_batch_max,
            max_ahead=settings.ingest_max_ahead,
            zone=settings.ingest_timezone,
        )
        self.provisioning = Provisioning(self.registry, state)
        self.retries = Retries(self.letters, self.registry, self.ingestor, state.committer)
        self.connection = Connection()
        self._broker: Any = None
        self._task: asyncio.Task[None] | None = None

    def on_mqtt(self, topic: str, payload: bytes, ack: Callable[[], None] | None = None) -> None:
        """One MQTT message: {root}/{apikey}/{deviceId}/attrs; ack, its PUBACK once settled."""
        levels = device_levels(topic, self.root)
        if levels is None:
            rej = Rejected(
                BAD_REQUEST, f"the topic is not {self.root}/{{apikey}}/{{deviceId}}/attrs"
            )
            self.ingestor.refuse(Raw("mqtt", "", "", payload, topic=topic, ack=ack), rej)
            return
        self.ingestor.submit(Raw("mqtt", levels[0], levels[1], payload, None, topic, ack=ack))

    async def start(self) -> None:
        """Start the embedded broker and/or the subscriber as the settings say; a broker that
        cannot start is logged, and the hub serves HTTP regardless."""
        mode = self.settings.mqtt
        if mode == "off":
            return
        from cityhub.ingest.agent.mqtt import subscribe_forever

        kept = None
        try:
            if mode == "embedded":
                from cityhub.ingest.agent.broker import client_host, start_broker

                host, port = self.settings.host, self.settings.mqtt_embedded_port
                self._broker = await start_broker(host, port)
                url, topic = BrokerUrl(client_host(host), port), topic_filter(self.root)
                session = Session(f"cityhub-{secrets.token_hex(8)}")
                self.connection.mode = "embedded"
            else:
                url = parse_broker(mode)
                group = self.settings.mqtt_group
                plain = topic_filter(self.root)
                topic = f"$share/{group}/{plain}" if group else plain
                session = Session(await self._client_id(), self.settings.mqtt_session_expiry)
                kept = KeptFilters(self.state.store, self.state.committer, session.client_id)
                self.connection.mode = "external"
        except Exception as exc:
            self.connection.last_error = f"{type(exc).__name__}: {exc}"
            log.error("the MQTT southbound is off: %s", self.connection.last_error)
            return
        self.connection.broker = str(url)
        ing = self.ingestor
        self._task = asyncio.create_task(
            subscribe_forever(
                url,
                topic,
                self.on_mqtt,
                ing.busy,
                ing.room,
                self.connection,
                queue_max=20 * self.settings.ingest_batch_max,
                session=session,
                kept=kept,
            )
        )

    async def _client_id(self) -> str:
        """The configured client id, else the one stored in the database."""
        if self.settings.mqtt_client_id:
            return str(self.settings.mqtt_client_id)
        store = self.state.store
        return str(await self.state.committer.run(lambda: stored_client_id(store)))

    async def stop(self) -> None:
        """Stop receiving, write what was received, stop the embedded broker."""
        if self._task is not None:
            from cityhub.ingest.agent.mqtt import deliver

            # Take no more, write what was taken or waits in the client's queue while the
            # connection is open, so their PUBACKs reach the broker; then disconnect.
            self.connection.reading.clear()
            for received in self.connection.left_over():
                deliver(received, self.on_mqtt)
            await self.ingestor.drain()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            # received meanwhile: written too (cancelling the subscriber dropped them, and a
            # clean stop lost seconds of messages); a QoS 1 one is sent again after a restart
            for received in self.connection.left_over():
                deliver(received, self.on_mqtt)
        await self.ingestor.drain()
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await self._broker.shutdown()
            self._broker = None

    def health(self) -> tuple[dict[str, Any] | None, str]:
        """/health's MQTT section (None when MQTT is off) and why it is degraded ('' if not):
        a broker that cannot be reached means device messages are not arriving."""
        conn = self.connection
        if self.settings.mqtt == "off":
            return None, ""
        section = {"mode": conn.mode, "broker": conn.broker, "connected": conn.connected}
        if conn.connected or not conn.last_error:  # up, or not tried yet
            return section, ""
        section["lastError"] = conn.last_error
        where = f" {conn.broker}" if conn.broker else ""
        return section, f"the MQTT broker{where} is not connected: {conn.last_error}"

    def snapshot(self) -> dict[str, Any]:
        """GET /iot/v1/stats."""
        out = self.stats.snapshot()
        out["deadLetters"] = self.letters.held
        out["deadLettersDropped"] = self.letters.dropped
        out["sources"] = len(self.registry.sources)
        out["devices"] = len(self.registry.devices)
        conn = self.connection
        out["mqtt"] = {
            "mode": conn.mode,
            "broker": conn.broker,
            "connected": conn.connected,
            "connects": conn.connects,
            "lastError": conn.last_error,
            "dropped": conn.dropped,
        }
        return out


def install(app: Starlette) -> None:
    """Create the agent on app.state.iot (the store, committer and services must be there)."""
    app.state.iot = IotAgent(app.state.settings, app.state)


async def start(app: Starlette) -> None:
    """Lifespan start-up hook."""
    await app.state.iot.start()


async def stop(app: Starlette) -> None:
    """Lifespan shutdown hook (before the store closes)."""
    await app.state.iot.stop()
