"""One typed settings object, built in the app factory (never at import time)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cityhub.ingest.agent.mqtt import ROOT as MQTT_ROOT
from cityhub.ingest.agent.session import DEFAULT_GROUP as MQTT_GROUP
from cityhub.ngsild.context_guard import DEFAULT_PRIVATE_NETWORKS, parse_networks
from cityhub.ngsild.entity_bytes import DEFAULT_MAX_ENTITY_BYTES
from cityhub.ngsild.notify_timeout import MAX_SECONDS as NOTIFY_MAX_SECONDS


def _networks_help(use: str, who: str, refusal: str, tail: str = "") -> str:
    """One text for the two address guards' settings, so they cannot drift apart."""
    return (
        f"Non-public networks (CIDR, or single addresses) {use}, checked on every address "
        f"{who} connects to, redirects included; any other loopback, link-local, private or "
        f"unique-local address is refused ({refusal}). The default allows loopback, 10/8, "
        "172.16/12, 192.168/16, 100.64/10 and fc00::/7, not link-local (cloud metadata); [] "
        'allows public addresses only; ["0.0.0.0/0", "::/0"] turns the check off.' + tail
    )


class Settings(BaseSettings):
    """Every setting of the hub; each can come from a CITYHUB_* environment variable."""

    model_config = SettingsConfigDict(
        env_prefix="CITYHUB_", toml_file="cityhub.toml", extra="forbid"
    )

    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(1026, ge=1, le=65535, description="HTTP port (NGSI-LD brokers use 1026).")
    db: str = Field("./cityhub.db", description="Path of the embedded SQLite database file.")
    sync: str = Field(
        "normal",
        pattern=r"^(normal|full)$",
        description="When a write reaches the disk. normal: at the next checkpoint (every 0.5 s), "
        "so a power cut can lose the last moment of acknowledged writes, never the database; "
        "full: before it is acknowledged (one fsync per group commit).",
    )
    max_body: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        le=4 * 1024**3,
        description="Largest request body in bytes, at most 4 GiB (a 1,000-entity batch of "
        "points is about "
        "0.5 MB); a larger one is refused with 413 before it is read whole. A request that "
        "writes one entity has a tighter bound, max_entity_body.",
    )
    max_entity_bytes: int = Field(
        DEFAULT_MAX_ENTITY_BYTES,
        ge=0,
        le=4 * 1024**3,
        description="Largest JSON document of one stored entity in bytes, as the hub stores it "
        "(expanded), and of one instance written through the temporal API; 0: no bound. A "
        "write past it (create, PUT, a merge or append that would grow the entity, a batch "
        "item, an import, an IoT message) is refused with 400 BadRequestData and nothing of "
        "it is stored; a batch item fails alone. The default, 2 MiB, is ~1,400 times the demo "
        "city's largest entity; every read of an entity parses all of it (decision 074).",
    )
    max_entity_body: int | None = Field(
        None,
        ge=1024,
        le=4 * 1024**3,
        description="Largest body in bytes of a request that writes one entity or part of one "
        "(POST /entities, PUT or PATCH of an entity or of its attributes, POST of attributes, "
        "PATCH of a temporal instance), at most 4 GiB; a larger one is refused with 413 "
        "before it is read whole. Unset: 3 times CITYHUB_MAX_ENTITY_BYTES plus 4 MiB (an "
        "entity at that bound with every non-ASCII character escaped as \\uXXXX, beside the largest "
        "inline @context), 10 MiB by default, never more than CITYHUB_MAX_BODY, and "
        "CITYHUB_MAX_BODY when CITYHUB_MAX_ENTITY_BYTES is 0 (decision 082).",
    )
    query_timeout: float = Field(
        30.0,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        description="Seconds a query may take, counted from when it is queued for a reader "
        "thread, before it is stopped with 503 (0: no limit), at most 86400 (a day). "
        "A stopped query frees its reader thread and its share of the CPU for the others; "
        "one that waited all of it for a thread is not started (503, Retry-After).",
    )
    query_threads: int = Field(
        4,
        ge=1,
        le=64,
        description="Threads that run queries, temporal reads and discovery, each with its own "
        "SQLite reader, so that a long read never holds up writes, device messages or reads "
        "by id; more queries than threads wait their turn (within CITYHUB_QUERY_TIMEOUT), and "
        "one whose client has disconnected is not started, or is stopped.",
    )
    history_days: float = Field(
        0.0,
        ge=0,
        le=36_500,
        allow_inf_nan=False,
        description="Days (at most 36500, a century) a temporal instance is kept after it was "
        "last written; older ones "
        "are deleted in the background every ten minutes (0: kept for ever). A deleted "
        "entity's temporal evolution goes with its last instance.",
    )
    context_timeout: float = Field(
        3.0,
        gt=0,
        le=60,
        allow_inf_nan=False,
        description="Seconds to wait for a remote @context before answering 503.",
    )
    context_ttl: float = Field(
        3600.0,
        gt=0,
        le=315_360_000,
        allow_inf_nan=False,
        description="Seconds a fetched remote @context stays cached, at most 315360000 (ten "
        "years).",
    )
    context_memory_mb: int = Field(
        32,
        ge=1,
        le=4096,
        description="MiB of JSON of the @contexts kept in memory that may leave it: the fetched "
        "ones (their stored copy stays) and, apart, the ImplicitlyCreated ones made for answers "
        "to inline @contexts; beyond, the least recently used go.",
    )
    context_mirrors: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Remote @context URL -> local file path or other URL, for sites without internet "
            'access, e.g. {"https://smartdatamodels.org/context.jsonld": "/srv/ctx/sdm.jsonld"}.'
        ),
    )
    context_private_networks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRIVATE_NETWORKS),
        description=_networks_help(
            "remote @contexts may be fetched from",
            "a download",
            "503",
            " Mirrors are never checked.",
        ),
    )
    shutdown_timeout: float = Field(
        10.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds (at most 3600) `serve` waits, after SIGTERM or Ctrl-C, for the "
        "requests in progress to finish before it cancels them and stops; the listener is "
        "closed meanwhile, so a client stalled mid-request must not hold every restart.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Most client connections `serve` holds open at once (at most 1000000); a "
        "connection past them is answered 503 and closed, so the descriptors the database, "
        "notifications and @context downloads need stay free, unless some wait on slow "
        "clients: those are closed to make room.",
    )
    client_timeout: float = Field(
        60.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds (at most 3600) a client has to send a request head, and over which "
        "`serve` averages the rate of a request body and of the reading of an answer "
        "(CITYHUB_CLIENT_MIN_RATE).",
    )
    client_min_rate: float = Field(
        1024.0,
        ge=0,
        le=1024**3,
        allow_inf_nan=False,
        description="Bytes per second a request body must arrive at, and an unread answer drain "
        "at, averaged over CITYHUB_CLIENT_TIMEOUT, else `serve` closes the connection (408 for a "
        "body); 0: only no progress at all. 1024 lets a 64 MiB upload take 18 hours, and makes "
        "a client holding every connection send at least a MiB/s at the default bound.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "info",
        description="Log level of the hub and uvicorn: critical, error, warning, info, debug or "
        "trace.",
    )
    temporal_limit: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Most instances of one attribute a temporal response holds (at most "
        "1000000); beyond it the "
        "answer is 206 Partial Content with a date-time Content-Range (clause 6.3.10).",
    )
    notify_timeout: float = Field(
        5.0,
        gt=0,
        le=NOTIFY_MAX_SECONDS,
        allow_inf_nan=False,
        description="Seconds a receiver has to answer one notification (an endpoint's own "
        "`timeout` member, in milliseconds, takes precedence; at most 300000 ms, 400 past it).",
    )
    notify_attempts: int = Field(
        5, ge=1, le=100, description="Attempts per notification before it is given up."
    )
    notify_backoff: float = Field(
        1.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds before the first retry of a failed notification; each further "
        "retry waits twice as long, up to 60 s.",
    )
    max_subscriptions: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Most subscriptions one tenant may hold, and apart from them most "
        "csourceSubscriptions (at most 10000000); past it a create is refused with 422 "
        "OperationNotSupported (each one can make the hub open a connection per change).",
    )
    max_subscriptions_total: int = Field(
        100_000,
        ge=1,
        le=100_000_000,
        description="Most subscriptions all tenants may hold together, and apart from them "
        "most csourceSubscriptions (at most 100000000): a tenant is made by its first write, "
        "so the bound per tenant alone bounded nothing (each one costs about 5 KiB of memory "
        "and 0.05 ms of start-up CPU); past it a create is refused with 422 OperationNotSupported.",
    )
    notify_queue_max: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Most notifications waiting in memory for one endpoint (at most 10000000); "
        "beyond it the newest wait in the outbox only and are read back in order, so a dead "
        "receiver cannot fill the memory; only timeInterval notifications, which have no outbox "
        "row, are dropped.",
    )
    body_memory_mb: int = Field(
        256,
        ge=1,
        le=1_048_576,
        description="MiB (at most 1048576, 1 TiB) of request bodies of 256 KiB or more that "
        "the hub reads and works on at once; one past it is answered 503 with Retry-After "
        "before it is read (one body is always taken while no other is held, up to "
        "CITYHUB_MAX_BODY). A body costs about three times its size while it is parsed and "
        "written: four 61 MB batches at once took the hub from 176 to 805 MB.",
    )
    notify_memory_mb: int = Field(
        128,
        ge=1,
        le=1_048_576,
        description="MiB (at most 1048576, 1 TiB) of notifications that may wait in memory "
        "over all endpoints; beyond "
        "it the newest of the longest queues wait in the outbox only, so many dead receivers "
        "cannot exhaust the memory.",
    )
    notify_outbox_max: int = Field(
        0,
        ge=0,
        le=1_000_000_000,
        description="Outbox rows one subscription may keep on disk once its backlog outgrew "
        "memory (0: no bound; else at least 1000); past it its oldest rows only on disk are "
        "given up unsent (/health droppedOutboxFull), so a dead receiver cannot fill the disk.",
    )
    notify_outbox_total: int = Field(
        2_000_000,
        ge=0,
        le=1_000_000_000_000,
        description="Outbox rows all subscriptions together may keep on disk (0: no bound; else "
        "at least 1000): past it the oldest rows only on disk of the largest backlogs are given "
        "up unsent (/health droppedOutboxFull), so dead receivers cannot fill the disk and stop "
        "every write (decision 090).",
    )
    notify_backlog_degraded: int = Field(
        1_000_000,
        ge=0,
        le=1_000_000_000_000,
        description="/health says degraded while the outbox holds more undelivered "
        "notifications than this (notifications.outboxRows; 0: never).",
    )
    notify_connections: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Most sockets (at most 100000) notification delivery over HTTP holds "
        "open at once, idle keep-alive ones included; a notification waits for one before "
        "its timeout starts. `serve` raises the open-file limit for them beside the client "
        "connections, so a fan-out to many endpoints cannot take the listener's and "
        "SQLite's descriptors.",
    )
    notify_host_connections: int = Field(
        128,
        ge=1,
        le=100_000,
        description="Most of those sockets (at most 100000) in use at once for one receiver "
        "(scheme, host and port of an endpoint URI); its further notifications wait for one "
        "before their timeout starts. Receivers that never answer hold a socket each for "
        "an attempt's timeout: endpoints of one such host cannot take the whole pool from "
        "the others (and receivers whose last attempt got no answer share half the pool).",
    )
    notify_private_networks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRIVATE_NETWORKS),
        description=_networks_help(
            "notifications may be sent to", "a delivery", "a failed attempt"
        ),
    )

    mqtt: str = Field(
        "off",
        pattern=r"^(off|embedded|mqtts?://\S+)$",
        description="MQTT southbound of the IoT agent: off, embedded (an in-process broker on "
        "mqtt_embedded_port) or an external broker URL such as mqtt://127.0.0.1:1883.",
    )
    mqtt_embedded_port: int = Field(
        1884, ge=1, le=65535, description="Port of the embedded MQTT broker (--mqtt embedded)."
    )
    mqtt_group: str = Field(
        MQTT_GROUP,
        pattern=r"^[A-Za-z0-9_.-]*$",
        description="Shared-subscription group on an external broker: the agents of one group "
        "split the device messages between them; empty: a plain subscription (one hub), which "
        "Mosquitto 2.0 keeps across its own restarts and shared ones it does not.",
    )
    mqtt_topic_root: str = Field(
        MQTT_ROOT,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="Topic levels before {apikey}/{deviceId}/attrs that the agent subscribes "
        "to: a system sharing a broker with others takes a root of its own (such as "
        "city/cityhub) so their messages never reach it; no wildcard, '$' or empty level.",
    )
    mqtt_client_id: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_.-]{0,64}$",
        description="MQTT client id of the hub on an external broker; empty (the default) "
        "takes an id created once and stored in the database, so a restarted hub resumes its "
        "session. Give each copy of a database (a restored backup) its own id if both run.",
    )
    mqtt_session_expiry: int = Field(
        86_400,
        ge=0,
        le=4_294_967_294,
        description="Seconds an external broker keeps the hub's session, and queues QoS 1 "
        "messages for it, while the hub is away (0: no session; the broker drops messages "
        "sent meanwhile).",
    )
    deadletter_max: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Most refused device messages kept for inspection (all tenants together, at "
        "most 10000000); "
        "beyond it the oldest are dropped.",
    )
    ingest_batch_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        allow_inf_nan=False,
        description="Milliseconds the IoT agent collects device messages before writing them "
        "in one transaction.",
    )
    ingest_max_ahead: float = Field(
        600.0,
        ge=0,
        le=31_622_400,
        allow_inf_nan=False,
        description="Seconds a device's observedAt may be ahead of the hub's clock (clock "
        "drift); a reading dated later is refused (bad_value), since it would stay its "
        "entity's latest until that time came.",
    )
    ingest_timezone: str | None = Field(
        None,
        description="IANA time zone (e.g. Asia/Seoul) in which a device reading's time "
        "written without a zone offset is read; unset, such a time is UTC.",
    )
    ingest_batch_max: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Most device messages in one write; a full batch is written at once.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: object, info: ValidationInfo) -> object:
        """A TOML true/false became 1/0 for a number (history_days = true kept one day of
        history): it goes on as the text a variable would give, and is refused as that is."""
        field = cls.model_fields[info.field_name] if info.field_name else None
        if isinstance(value, bool) and field is not None and field.annotation in (int, float):
            return "true" if value else "false"
        return value

    @field_validator("host")
    @classmethod
    def _named_host(cls, value: str) -> str:
        """An empty host binds every interface, so a blank CITYHUB_HOST= line would quietly
        expose the unauthenticated API to the whole network: all interfaces must be asked for."""
        if not value.strip():
            raise ValueError(
                "an empty host would listen on every interface; write 0.0.0.0 (or ::) if that "
                "is what you want, 127.0.0.1 for this machine only"
            )
        return value

    @field_validator("db")
    @classmethod
    def _named_db(cls, value: str) -> str:
        """An empty path (a blank CITYHUB_DB= line) names no file; say so, not "cannot open"."""
        if not value.strip():
            raise ValueError("an empty path names no database file; give one, e.g. ./cityhub.db")
        return value

    @field_validator("notify_outbox_max", "notify_outbox_total")
    @classmethod
    def _outbox_bound(cls, value: int) -> int:
        """A bound under 1000 rows would give up a backlog a short outage leaves."""
        if 0 < value < 1000:
            raise ValueError("0 (no bound) or at least 1000")
        return value

    @field_validator("ingest_timezone")
    @classmethod
    def _zone_name(cls, value: str | None) -> str | None:
        """A misspelt zone would read every zone-less device time as UTC, hours off."""
        if value is not None:
            from cityhub.ingest.agent.mapping import device_zone

            device_zone(value)  # its ValueError becomes the setting's validation error
        return value

    @field_validator("mqtt")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        """A broker URL must name a host and a valid port, or the hub would start with MQTT off."""
        if value not in ("off", "embedded"):
            from cityhub.ingest.agent.mqtt import parse_broker

            parse_broker(value)  # its ValueError becomes the setting's validation error
        return value

    @field_validator("context_private_networks", "notify_private_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        """Each entry is a network or an address, written as ipaddress reads it."""
        try:
            return [str(net) for net in parse_networks(value)]
        except ValueError as exc:
            raise ValueError(f"not a network: {exc}") from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: arguments (CLI flags), then CITYHUB_* variables, then ./cityhub.toml."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))
