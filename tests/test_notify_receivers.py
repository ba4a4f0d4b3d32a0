"""How the HTTP sender treats what receivers do: redirects, huge or endless answers, 429 with
Retry-After, many endpoints at once, addresses it may not reach (probe 2, findings 1, 4, 5,
10 and 12)."""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import pytest

from cityhub.api import protocol
from cityhub.api.app import create_app
from cityhub.ngsild.context_guard import AddressGuard, parse_networks
from cityhub.notify.delivery import Dispatcher, Policy
from cityhub.notify.outcome import RetryLater, retry_after, why
from cityhub.notify.senders import HttpSender
from cityhub.settings import Settings
from cityhub.store.base import OutboxItem
from receivers import wait_for

Answer = Callable[["Request", asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Request:
    """One request as a raw server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Raw:
    """A minimal HTTP/1.1 server on 127.0.0.1 that records requests and counts open
    connections; `answer` writes each response (keep-alive unless it closes)."""

    answer: Answer
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    open: int = 0
    most_open: int = 0
    server: asyncio.Server | None = None

    def url(self, path: str = "/notify", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")
                method, path, _ = line.split(" ", 2)
                headers = {}
                for f in fields:
                    if f:
                        name, _, value = f.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, path, headers, body)
                self.requests.append(request)
                await self.answer(request, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def start(self) -> Raw:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self


def reply(status: int, body: bytes = b"", **headers: str) -> Answer:
    """An answer with a status, headers and a body, keeping the connection."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n{extra}\r\n".encode() + body
        )
        await writer.drain()

    return answer


@pytest.fixture
async def servers() -> AsyncIterator[list[Raw]]:
    started: list[Raw] = []
    yield started
    for raw in started:
        assert raw.server is not None
        raw.server.close()


@pytest.fixture
async def sender() -> AsyncIterator[HttpSender]:
    out = HttpSender()
    yield out
    await out.close()


async def serve(servers: list[Raw], answer: Answer) -> Raw:
    raw = await Raw(answer).start()
    servers.append(raw)
    return raw


HEADERS = {
    "Content-Type": "application/json",
    "NGSILD-Tenant": "t1",
    "Link": "<http://ctx>; rel=http://www.w3.org/ns/json-ld#context",
    "X-Api-Key": "s3cr3t",
    "Authorization": "Bearer s3cr3t",
}


# -- redirects (finding 1, and 10's headers) ------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303])
async def test_a_redirect_that_turns_the_post_into_a_get_is_a_failure(
    servers: list[Raw], sender: HttpSender, code: int
) -> None:
    target = await serve(servers, reply(200))
    moved = await serve(servers, reply(code, location=target.url("/landed")))
    ok = await sender.send(moved.url(), b'{"n": 1}', dict(HEADERS), 5.0)
    assert not ok
    assert target.requests == []  # no body-less GET was sent anywhere


@pytest.mark.parametrize("code", [307, 308])
async def test_307_and_308_post_again_and_receiver_info_stays_with_the_endpoints_host(
    servers: list[Raw], sender: HttpSender, code: int
) -> None:
    target = await serve(servers, reply(204))
    same = await serve(servers, reply(code, location=target.url("/same")))
    other = await serve(servers, reply(code, location=target.url("/other", host="localhost")))
    assert await sender.send(same.url(), b'{"n": 1}', dict(HEADERS), 5.0)
    assert await sender.send(other.url(), b'{"n": 2}', dict(HEADERS), 5.0)
    landed = {r.path: r for r in target.requests}
    assert landed["/same"].method == "POST" and landed["/same"].body == b'{"n": 1}'
    assert landed["/same"].headers["x-api-key"] == "s3cr3t"
    moved = landed["/other"]
    assert moved.method == "POST" and moved.body == b'{"n": 2}'
    assert "x-api-key" not in moved.headers and "authorization" not in moved.headers
    assert moved.headers["ngsild-tenant"] == "t1"
    assert moved.headers["content-type"] == "application/json"
    assert "link" in moved.headers


async def test_a_body_in_pieces_goes_whole_with_its_length_and_again_after_a_redirect(
    servers: list[Raw], sender: HttpSender
) -> None:
    """The notifications of a shared change are sent as their envelope around the shared
    data (notify/pieces.py): one body with its Content-Length, not chunked, written anew on
    each hop."""
    from cityhub.notify.pieces import Pieces

    target = await serve(servers, reply(204))
    hop = await serve(servers, reply(307, location=target.url("/there")))
    data = b"[" + b'"' + b"x" * 300_000 + b'"]'
    body = Pieces((b'{"id":"n"', b',"data":', data, b"}"))
    assert await sender.send(hop.url(), body, dict(HEADERS), 5.0)
    assert [r.body for r in hop.requests + target.requests] == [body.joined()] * 2
    sent = target.requests[0].headers
    assert sent["content-length"] == str(len(body)) and "transfer-encoding" not in sent


async def test_a_redirect_loop_is_a_failure_after_a_few_hops(
    servers: list[Raw], sender: HttpSender
) -> None:
    loop = await serve(servers, reply(307, location="/again"))
    assert not await sender.send(loop.url(), b"{}", dict(HEADERS), 5.0)
    assert 2 <= len(loop.requests) <= 11


# -- the answer's body (finding 5) ----------------------------------------------------------------


async def endless(request: Request, writer: asyncio.StreamWriter) -> None:
    """200 with a 1 GiB body written as fast as the client reads it."""
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n")
    chunk = b"x" * 2**20
    while True:
        writer.write(chunk)
        await writer.drain()
        endless.sent += len(chunk)  # type: ignore[attr-defined]


async def test_a_huge_answer_is_not_read_and_a_2xx_status_is_delivered(
    servers: list[Raw], sender: HttpSender
) -> None:
    endless.sent = 0  # type: ignore[attr-defined]
    raw = await serve(servers, endless)
    started = time.monotonic()
    assert await sender.send(raw.url(), b"{}", dict(HEADERS), 5.0)
    assert time.monotonic() - started < 2.5
    await asyncio.sleep(0.2)
    assert endless.sent < 64 * 2**20  # type: ignore[attr-defined]  # socket buffers, no more


async def test_a_small_answer_keeps_its_connection(servers: list[Raw], sender: HttpSender) -> None:
    raw = await serve(servers, reply(200, b'{"ok": true}'))
    for _ in range(3):
        assert await sender.send(raw.url(), b"{}", dict(HEADERS), 5.0)
    assert len(raw.requests) == 3 and raw.most_open == 1


# -- 429 and Retry-After (finding 12) -------------------------------------------------------------


async def test_429_says_when_to_try_again(servers: list[Raw], sender: HttpSender) -> None:
    busy = await serve(servers, reply(429, retry_after="30"))
    ok = await sender.send(busy.url(), b"{}", dict(HEADERS), 5.0)
    assert not ok and isinstance(ok, RetryLater) and ok.seconds == 30
    plain = await serve(servers, reply(429))
    ok = await sender.send(plain.url(), b"{}", dict(HEADERS), 5.0)
    assert not ok and not isinstance(ok, RetryLater)


def test_retry_after_reads_seconds_and_dates() -> None:
    now = time.time()
    assert retry_after("120", now) == 120
    assert retry_after(formatdate(now + 60, usegmt=True), now) == pytest.approx(60, abs=1)
    assert retry_after(formatdate(now - 60, usegmt=True), now) == 0
    for bad in (None, "", "soon", "-5", "1e9999", "nan"):
        assert retry_after(bad, now) is None


# -- many endpoints at once (finding 4) -----------------------------------------------------------


async def test_open_connections_in_use_and_idle_stay_within_the_bound(
    servers: list[Raw],
) -> None:
    async def slow(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.05)
        await reply(200)(request, writer)

    receivers = [await serve(servers, slow) for _ in range(30)]
    sender = HttpSender(connections=6)
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, sum(r.open for r in receivers))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        for _ in range(2):
            results = await asyncio.gather(
                *(sender.send(r.url(f"/{n}"), b"{}", {}, 5.0) for r in receivers for n in range(3))
            )
            assert all(results)
        await asyncio.sleep(0.05)
        assert most <= 6, most
        assert 0 < sum(r.open for r in receivers) <= 6  # idle ones kept, within the bound
    finally:
        watcher.cancel()
        await sender.close()
    assert sum(len(r.requests) for r in receivers) == 180


async def test_waiting_for_a_connection_is_not_charged_to_the_receiver(
    servers: list[Raw],
) -> None:
    async def slow(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.3)
        await reply(200)(request, writer)

    raw = await serve(servers, slow)
    sender = HttpSender(connections=1)
    try:  # each attempt may take 0.5 s; the fourth waits 0.9 s for the one connection first
        sends = (sender.send(raw.url(f"/{n}"), b"{}", {}, 0.5) for n in range(4))
        results = await asyncio.gather(*sends)
    finally:
        await sender.close()
    assert all(results)


# -- the address guard (finding 10) ---------------------------------------------------------------


async def hung(request: Request, writer: asyncio.StreamWriter) -> None:
    """A receiver that reads the request and never answers."""
    await asyncio.sleep(3600)


async def test_hung_receivers_of_one_host_leave_the_pool_to_the_others(
    servers: list[Raw],
) -> None:
    """Endpoints of one host that never answer take at most its share of the pool's sockets
    (each for an attempt's timeout): a healthy receiver elsewhere is served at once, not
    after their timeouts; the host's further notifications wait for its own sockets."""
    dead = await serve(servers, hung)
    healthy = await serve(servers, reply(204))
    sender = HttpSender(connections=8, host_connections=2)
    try:
        stuck = [
            asyncio.create_task(sender.send(dead.url(f"/{n}"), b"{}", {}, 1.5)) for n in range(12)
        ]
        await wait_for(lambda: len(dead.requests) >= 2, timeout=5, what="the hung receiver")
        await asyncio.sleep(0.1)
        started = time.monotonic()
        assert await sender.send(healthy.url("/h"), b"{}", {}, 5.0)
        waited = time.monotonic() - started
        reached = len(dead.requests)
        assert waited < 0.5, f"the healthy receiver waited {waited:.2f} s"
        assert reached == 2  # the host's other notifications wait for its two sockets
        assert not any(await asyncio.gather(*stuck))  # each timed out in its own attempt
    finally:
        await sender.close()


async def test_receivers_that_never_answer_share_half_the_pool_from_their_second_attempt(
    servers: list[Raw],
) -> None:
    """Hung receivers on distinct hosts (ports here) each hold a socket per attempt: once
    an attempt got no answer, they share half the pool, and a healthy receiver is served
    while their next attempts wait; an answer takes a receiver out of that half."""
    dead = [await serve(servers, hung) for _ in range(12)]
    healthy = await serve(servers, reply(204))
    sender = HttpSender(connections=8)
    try:
        first = await asyncio.gather(*(sender.send(d.url(), b"{}", {}, 0.5) for d in dead))
        assert not any(first)
        again = [asyncio.create_task(sender.send(d.url(), b"{}", {}, 1.5)) for d in dead]
        await wait_for(
            lambda: sum(len(d.requests) for d in dead) >= 16, timeout=5, what="second attempts"
        )
        await asyncio.sleep(0.1)
        started = time.monotonic()
        assert await sender.send(healthy.url(), b"{}", {}, 5.0)
        waited = time.monotonic() - started
        reached = sum(len(d.requests) for d in dead) - 12
        assert waited < 0.5, f"the healthy receiver waited {waited:.2f} s"
        assert reached == 4  # half the pool of 8
        assert not any(await asyncio.gather(*again))
    finally:
        await sender.close()


async def test_a_guard_without_loopback_refuses_it_by_address_and_by_name(
    servers: list[Raw],
) -> None:
    raw = await serve(servers, reply(200))
    sender = HttpSender(guard=AddressGuard([]))
    try:
        assert not await sender.send(raw.url(), b"{}", {}, 5.0)
        assert not await sender.send(raw.url(host="localhost"), b"{}", {}, 5.0)
    finally:
        await sender.close()
    assert raw.requests == []


async def test_the_guard_checks_every_redirect_hop(servers: list[Raw]) -> None:
    target = await serve(servers, reply(200))
    hop = await serve(servers, reply(307, location=target.url(host="127.0.0.2")))
    sender = HttpSender(guard=AddressGuard(parse_networks(["127.0.0.1/32"])))
    try:
        assert not await sender.send(hop.url(), b"{}", {}, 5.0)
    finally:
        await sender.close()
    assert len(hop.requests) == 1 and target.requests == []


async def test_the_default_guard_lets_loopback_receivers_be_notified_not_link_local(
    servers: list[Raw], sender: HttpSender, caplog: pytest.LogCaptureFixture
) -> None:
    raw = await serve(servers, reply(200))
    assert await sender.send(raw.url(host="localhost"), b"{}", {}, 5.0)
    with caplog.at_level(logging.WARNING, "cityhub.notify"):
        assert not await sender.send("http://169.254.169.254/latest", b"{}", {}, 1.0)
    assert "169.254.169.254" in caplog.text
    assert "CITYHUB_NOTIFY_PRIVATE_NETWORKS" in caplog.text


# -- retries honour Retry-After within the backoff bounds (finding 12) ---------------------------


async def test_the_dispatcher_waits_as_long_as_retry_after_says_up_to_the_backoff_bound() -> None:
    attempts: list[float] = []

    async def deliver(item: OutboxItem, attempt: int) -> bool | RetryLater:
        attempts.append(time.monotonic())
        return RetryLater(30.0) if attempt == 0 else (RetryLater(0.0) if attempt == 1 else True)

    dispatcher = Dispatcher(deliver, lambda seqs: None, Policy(backoff=0.01, backoff_max=0.4))
    dispatcher.submit([OutboxItem("", "s", "http://x/", b"{}", seq=1)])
    await wait_for(lambda: dispatcher.counters.delivered == 1, timeout=3)
    assert 0.35 <= attempts[1] - attempts[0] < 0.6  # 30 s asked, 0.4 s the bound
    assert attempts[2] - attempts[1] < 0.2  # 0 asked: the backoff's own 0.02 s
    await dispatcher.close()


def test_the_open_file_limit_holds_the_notification_sockets_beside_the_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = [(1024, 4096)]
    monkeypatch.setattr(resource, "getrlimit", lambda _: limits[-1])
    monkeypatch.setattr(resource, "setrlimit", lambda _, pair: limits.append(pair))
    assert protocol.open_files_for(1000, 256) == 1000
    assert limits[-1] == (1000 + 256 + protocol.SPARE_FILES, 4096)
    limits[:] = [(1536, 1536)]  # the probe's limit: clients get what is left
    assert protocol.open_files_for(1000, 256) == 1536 - 256 - protocol.SPARE_FILES


async def test_the_hub_sends_with_its_settings_connections_and_networks(tmp_path: Path) -> None:
    settings = Settings(
        db=str(tmp_path / "s.db"),
        notify_connections=7,
        notify_host_connections=3,
        notify_private_networks=["10.0.0.0/8"],
    )
    app = create_app(settings)
    http = app.state.notifier.http
    assert http.connections == 7 and http.host_connections == 3
    assert http.guard.allows("10.1.2.3") and not http.guard.allows("127.0.0.1")
    await app.state.notifier.close()


# -- a failed attempt says why, for the line that gives a notification up (probe 4, finding 4) --


async def test_a_failed_attempt_says_why(servers: list[Raw], sender: HttpSender) -> None:
    failing = await serve(servers, reply(500))
    assert why(await sender.send(failing.url(), b"{}", {}, 5.0)) == "HTTP 500"
    busy = await serve(servers, reply(503, retry_after="5"))
    assert why(await sender.send(busy.url(), b"{}", {}, 5.0)) == "HTTP 503"
    gone = await serve(servers, reply(200))
    assert gone.server is not None
    gone.server.close()
    await gone.server.wait_closed()
    assert why(await sender.send(gone.url(), b"{}", {}, 5.0)) == "connection refused"

    async def silent(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    slow = await serve(servers, silent)
    assert why(await sender.send(slow.url(), b"{}", {}, 0.3)) == "no answer within 0.3 s"
