"""The wire: POST a notification over HTTP(S), or publish it to an MQTT broker.

Each sender answers True (the receiver took it) or a Failed saying why not (refused,
unreachable, too slow, an HTTP status); it never raises for a receiver's fault, so a bad
endpoint only ever costs its own queue. Log lines show endpoints as masked_url does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import aiomqtt
import orjson
from yarl import URL

from cityhub.masked_url import masked_url, masked_urls
from cityhub.ngsild.context_guard import AddressGuard, AddressRefused
from cityhub.ngsild.mqtt_endpoint import topic_of
from cityhub.ngsild.subscriptions import RESERVED_HEADERS
from cityhub.notify.endpoint_guard import SETTING, check_literal, connector_options, default_guard
from cityhub.notify.http_pool import BoundedConnector
from cityhub.notify.outcome import Failed, Outcome, RetryLater, retry_after
from cityhub.notify.pieces import Pieces, as_bytes
from cityhub.notify.pool_shares import PoolShares, receiver
from cityhub.throttled_log import KeyedThrottledLog

log = logging.getLogger("cityhub.notify")
# Seconds a broker connection may go unused before it is closed: subscriptions come and go,
# and each broker and set of credentials they named would otherwise keep a socket for good.
MQTT_IDLE = 60.0
# aiomqtt warns "There are N pending publish calls." past 10 per connection; the hub has one
# publish in flight per endpoint queue, so N is the number of topics busy on a broker, and
# 10 of them is no sign of trouble (a broker that does not answer costs each publish its
# timeout, counted as a failed attempt).
MQTT_PENDING_WARN = 10_000
mqtt_log = logging.getLogger("cityhub.notify.mqtt")  # aiomqtt's own lines, in the hub's format
CONNECTIONS = 256  # sockets the HTTP sender holds open at most (CITYHUB_NOTIFY_CONNECTIONS)
# of them, sockets in use for one receiver (scheme, host and port) at most
# (CITYHUB_NOTIFY_HOST_CONNECTIONS): endpoints that never answer each hold one for an
# attempt's timeout, and 256 of them on one host held the whole pool from every other host
HOST_CONNECTIONS = 128
REDIRECTS = 5  # 307/308 hops followed in one attempt
ANSWER_READ = 64 * 1024  # bytes of a receiver's answer read, so its connection can be reused
DISCARD_WAIT = 1.0  # seconds to wait for them
REFUSED_LOG_EVERY = 600.0  # seconds between "refused" lines for one host


class HttpSender:
    """POST over one shared connection pool: keep-alive per receiver, at most `connections`
    sockets open at once (in use and idle), at most `host_connections` of them in use for
    one receiver, addresses checked by `guard`."""

    def __init__(
        self,
        connections: int = CONNECTIONS,
        guard: AddressGuard | None = None,
        host_connections: int = HOST_CONNECTIONS,
    ) -> None:
        self.connections = connections
        self.host_connections = host_connections
        self.guard = guard if guard is not None else default_guard()
        self._session: aiohttp.ClientSession | None = None
        self._shares: PoolShares | None = None  # made on the loop that sends
        self._refused_log = KeyedThrottledLog(log, REFUSED_LOG_EVERY)  # by host

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = BoundedConnector(
                limit=self.connections, ttl_dns_cache=300, **connector_options(self.guard)
            )
            # no cookie jar: one session serves every subscription of every tenant, so a
            # cookie one receiver set would ride with another tenant's notifications
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(
        self, uri: str, body: bytes | Pieces, headers: dict[str, str], timeout: float
    ) -> Outcome:
        """POST body; a 2xx answer within timeout seconds is a success. The wait for one of
        the pool's connections comes first and is not part of the timeout: a busy pool is no
        fault of the receiver."""
        if self._shares is None:
            self._shares = PoolShares(self.connections, self.host_connections)
        key = receiver(uri)
        async with self._shares.slot(key):
            try:
                ok = await self._post(URL(uri), body, headers, time.monotonic() + timeout)
            except AddressRefused as exc:
                return _refused(self._refused_log, exc, uri)
            except (TimeoutError, aiohttp.ClientConnectionError, OSError) as exc:
                self._shares.unanswered(key)  # it may hold a socket each attempt: half the pool
                failed = Failed(_cause(exc, timeout))
            except (aiohttp.ClientError, ValueError) as exc:
                failed = Failed(_cause(exc, timeout))
            else:
                self._shares.answered(key)
                return ok
            log.debug("notification to %s failed: %s", masked_url(uri), failed.why)
            return failed

    async def _post(
        self, url: URL, body: bytes | Pieces, headers: dict[str, str], deadline: float
    ) -> Outcome:
        """POST, following 307 and 308 (which keep the method and body) for REDIRECTS hops;
        any other redirect would turn the notification into a body-less GET, and is a
        failure. receiverInfo headers go to the endpoint's host only."""
        host = (url.host or "").lower()
        for _ in range(REDIRECTS + 1):
            check_literal(self.guard, url)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            data: bytes | AsyncIterator[memoryview]
            if isinstance(body, Pieces):  # its parts written in turn, each hop anew
                data, sent = body.slices(), {**headers, "Content-Length": str(len(body))}
            else:
                data, sent = body, headers
            async with self._client().post(
                url,
                data=data,
                headers=sent,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=left),
            ) as resp:
                status = resp.status
                if 200 <= status < 300:
                    await _discard(resp, deadline)
                    return True
                if status in (429, 503):
                    asked = retry_after(resp.headers.get("Retry-After"), time.time())
                    said = f"HTTP {status}"
                    return Failed(said) if asked is None else RetryLater(asked, said)
                target = resp.headers.get("Location")
                if status not in (307, 308) or not target:
                    return Failed(f"HTTP {status}")
                await _discard(resp, deadline)
            came_from, url = url, url.join(URL(target))
            if url.scheme not in ("http", "https"):
                return Failed(f"redirected to a {url.scheme or 'relative'} URL")
            if (url.host or "").lower() != host or came_from.scheme != url.scheme == "http":
                headers = {k: v for k, v in headers.items() if k.lower() in RESERVED_HEADERS}
        return Failed(f"more than {REDIRECTS} redirects")

    async def close(self) -> None:
        """Close the pool's connections."""
        if self._session is not None:
            await self._session.close()


def _refused(refused_log: KeyedThrottledLog, exc: AddressRefused, uri: str) -> Failed:
    """A receiver or broker outside the allowed networks: logged once a while per host, and
    the attempt failed with the setting named (HTTP and MQTT alike)."""
    refused_log.warning(
        exc.host,
        "notification to %s refused: %s, not in %s (docs/decisions/033)",
        masked_url(uri),
        exc,
        SETTING,
    )
    return Failed(f"its address is not allowed ({SETTING})")


def _cause(exc: BaseException, timeout: float) -> str:
    """Why an attempt failed, in a few words: refused, timed out, or the error's own words
    (any URL in them as masked_url shows it)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if any(isinstance(e, ConnectionRefusedError) for e in _chain(exc)):
        return "connection refused"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    text = masked_urls(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    """An error and what it wraps (aiohttp's os_error, aiomqtt's cause), a few levels deep."""
    out: list[BaseException] = []
    at: BaseException | None = exc
    while at is not None and len(out) < 5:
        out.append(at)
        wrapped = at.os_error if isinstance(at, aiohttp.ClientConnectorError) else None
        at = wrapped or at.__cause__ or at.__context__
    return out


async def _discard(resp: aiohttp.ClientResponse, deadline: float) -> None:
    """Read what is left of a small answer (at most ANSWER_READ bytes, DISCARD_WAIT
    seconds), so its connection is kept for the next one; a larger or slower answer is not
    read, and its connection is closed. The status alone decides the outcome: a receiver's
    answer body was read whole into memory (3 GB answers: 925 MB of the hub's memory)."""
    left = ANSWER_READ
    wait = min(DISCARD_WAIT, deadline - time.monotonic())
    try:
        async with asyncio.timeout(max(wait, 0.0)):
            while left > 0:
                chunk = await resp.content.read(left)
                if not chunk:
                    return
                left -= len(chunk)
    except (TimeoutError, aiohttp.ClientError, OSError):
        pass
    resp.close()  # not read to its end: the connection goes


@dataclass(frozen=True)
class MqttTarget:
    """Where an mqtt:// endpoint publishes: broker, credentials, topic, QoS and version."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    topic: str
    qos: int
    version: aiomqtt.ProtocolVersion

    @property
    def broker(self) -> tuple[Any, ...]:
        """Endpoints that share this key share one broker connection."""
        return (self.host, self.port, self.tls, self.username, self.password, self.version)


def mqtt_target(uri: str, notifier_info: list[dict[str, str]] | None) -> MqttTarget:
    """Parse mqtt[s]://[user[:password]@]host[:port]/topic plus MQTT-QoS/MQTT-Version."""
    parts = urlsplit(uri)
    tls = parts.scheme.lower() == "mqtts"
    info = {i["key"]: i["value"] for i in notifier_info or []}
    qos = int(info.get("MQTT-QoS", "0")) if info.get("MQTT-QoS", "0") in ("0", "1", "2") else 0
    version = (
        aiomqtt.ProtocolVersion.V5
        if info.get("MQTT-Version") == "mqtt5.0"
        else aiomqtt.ProtocolVersion.V311
    )
    if not parts.hostname:  # stored before create refused it: never the local broker
        raise ValueError("the URI names no host")
    return MqttTarget(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        topic=topic_of(uri),
        qos=qos,
        version=version,
    )


class MqttSender:
    """Publish to MQTT brokers, one connection per broker and credentials, kept while it is
    used and closed after ``idle`` seconds without a publish."""

    def __init__(self, idle: float = MQTT_IDLE, guard: AddressGuard | None = None) -> None:
        self.idle = idle
        self.guard = guard if guard is not None else default_guard()
        self._refused_log = KeyedThrottledLog(log, REFUSED_LOG_EVERY)  # by host
        self._clients: dict[tuple[Any, ...], aiomqtt.Client] = {}
        self._locks: dict[tuple[Any, ...], asyncio.Lock] = {}
        self._busy: dict[tuple[Any, ...], int] = {}  # publishes (or connects) under way
        self._used: dict[tuple[Any, ...], float] = {}  # time.monotonic() of the last one
        self._reaper: asyncio.Task[None] | None = None

    async def _client(self, target: MqttTarget, timeout: float) -> aiomqtt.Client:
        key = target.broker
        client = self._clients.get(key)
        if client is not None:
            return client
        async with self._locks.setdefault(key, asyncio.Lock()):
            client = self._clients.get(key)
            if client is None:
                address = await asyncio.wait_for(self._address(target), timeout)
                client = aiomqtt.Client(
                    address,
                    target.port,
                    username=target.username,
                    password=target.password,
                    protocol=target.version,
                    tls_context=ssl.create_default_context() if target.tls else None,
                    timeout=timeout,
                    logger=mqtt_log,
                )
                client.pending_calls_threshold = MQTT_PENDING_WARN
                await asyncio.wait_for(client.__aenter__(), timeout)
                self._clients[key] = client
        return client

    async def _address(self, target: MqttTarget) -> str:
        """Where to connect: the broker's host once every address it resolves to is allowed
        (decision 033), by the address checked, so a name cannot resolve elsewhere the
        second time; by name over TLS, whose certificate names the host."""
        if self.guard.open:
            return target.host
        found = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM
        )
        addresses = [str(info[4][0]) for info in found]
        for address in addresses:
            if not self.guard.allows(address):
                raise AddressRefused(target.host, address)
        return target.host if target.tls else addresses[0]

    async def send(
        self,
        uri: str,
        body: bytes | Pieces,
        headers: dict[str, str],
        timeout: float,
        notifier_info: list[dict[str, str]] | None = None,
    ) -> Outcome:
        """Publish {"metadata": headers, "body": notification} to the endpoint's topic (the
        notification's JSON as it is, not parsed again)."""
        try:
            target = mqtt_target(uri, notifier_info)
        except ValueError as exc:
            said = masked_urls(str(exc))
            log.warning("bad MQTT endpoint %s: %s", masked_url(uri), said)
            return Failed(f"bad MQTT endpoint: {said}")
        whole = orjson.Fragment(as_bytes(body))
        message = orjson.dumps({"metadata": headers, "body": whole})
        key = target.broker
        self._busy[key] = self._busy.get(key, 0) + 1
        try:
            client = await self._client(target, timeout)
            await asyncio.wait_for(client.publish(target.topic, message, qos=target.qos), timeout)
            return True
        except AddressRefused as exc:
            return _refused(self._refused_log, exc, uri)
        except (TimeoutError, aiomqtt.MqttError, OSError, ValueError) as exc:
            why = _cause(exc, timeout)
            log.debug("MQTT notification to %s failed: %s", masked_url(uri), why)
            await self._drop(key)
            return Failed(why)
        finally:
            left = self._busy[key] - 1
            if left:
                self._busy[key] = left
            else:
                del self._busy[key]
            self._used[key] = time.monotonic()
            if self._reaper is None or self._reaper.done():
                self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        """Close the connections (and forget the locks) of brokers unused for ``idle``
        seconds; runs while any broker was used since it last looked."""
        while self._used:
            await asyncio.sleep(self.idle / 2)
            now = time.monotonic()
            for key, when in list(self._used.items()):
                if key in self._busy or now - when < self.idle or self._used.get(key) != when:
                    continue
                del self._used[key]
                self._locks.pop(key, None)
                await self._drop(key)

    async def _drop(self, key: tuple[Any, ...]) -> None:
        """Forget a broken connection; the next notification reconnects."""
        client = self._clients.pop(key, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def close(self) -> None:
        """Disconnect from every broker."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for key in list(self._clients):
            await self._drop(key)
        self._locks.clear()
        self._used.clear()
