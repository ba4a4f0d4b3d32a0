"""uvicorn's httptools protocol with a bound on the request line and headers, on how long a
request head and a stalled body may take, and on the connections held at once.

httptools gathers a header until its end, so one client sending an endless header grew the
hub's memory without limit (105 MB sent in 20 s took the process from 79 to 244 MB RSS). Past
MAX_HEAD bytes the request is answered 431, and the connection is closed a second later
(what arrives meanwhile is dropped unparsed).

uvicorn has no timeout for a body that stops arriving: a client that sent its headers and
part of its body held its handler, and a graceful shutdown, for as long as it kept the
connection open. Cutting only a body that made no progress for 60 s was not enough: one
byte every 30 s held a connection for ever, and CITYHUB_MAX_CONNECTIONS such sockets locked
every other client out, /health included. A body must now arrive at MIN_RATE bytes per second
or more (CITYHUB_CLIENT_MIN_RATE), averaged over each WINDOW seconds (CITYHUB_CLIENT_TIMEOUT),
else it is answered 408 and its connection closed (its handler sees the client leave): a
small body gets the whole window, a 64 MiB one the 18 hours 1 KiB/s allows. The clock is
armed only when a read ends with a body still incomplete, and such a read adds its length to
a counter, so whole requests pay nothing.

uvicorn has no timeout for a request head either: its keep-alive clock (5 s) starts after a
response and stops at the next byte, so a connection that sent nothing, or half a head, was
held for ever, and 19,980 of them took every file descriptor of the hub (no request of anyone
was answered, and nothing was logged). A head must now be complete WINDOW seconds after
the connection opened or its previous response ended: else the connection is closed, with a
408 when part of a head came. One clock per connection, armed at its opening, looks again
when it fires; requests pay a loop.time() each. The same clock watches a response the client
does not read: uvicorn closes a connection 5 s after its response, but a close waits for the
unsent part, so a client that never read a large answer held its connection (and the answer's
memory) for ever. Once the unsent part has drained slower than MIN_RATE over a window, the
connection is dropped.

And past MAX_CONNECTIONS open connections (CITYHUB_MAX_CONNECTIONS, `cityhub serve` makes a
subclass with its setting, `capped`) a new one is answered 503 and closed at once, so the
descriptors the hub needs for its database, notifications and @context downloads stay free,
unless open connections wait on their clients: a head not complete EVICT_AFTER seconds after
it became due, or a body below MIN_RATE over EVICT_AFTER seconds or more. Those are closed
(408 when a request had begun) to make room, in one pass over the connections at most every
EVICT_EVERY seconds, so slow clients cannot keep every slot between their windows.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from http import HTTPStatus
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cityhub.ngsild.errors import InvalidRequest, NgsiLdError
from cityhub.throttled_log import ThrottledLog

# Request line plus headers. Long GET queries fit (some 10,000 ids); longer ones belong in
# POST /entityOperations/query, whose body has its own limit (CITYHUB_MAX_BODY).
MAX_HEAD = 256 * 1024
LINGER = 1.0  # seconds a refused connection stays open, its input dropped, before it closes
WINDOW = 60.0  # seconds for a request head, and over which body and reading rates are averaged
MIN_RATE = 1024.0  # bytes per second a body must arrive at, and an unsent answer drain at
SHUTDOWN_IDLE = 1.0  # the window once a graceful shutdown has begun (then any progress will do)
EVICT_AFTER = 2.0  # seconds waiting on its client before a connection may be closed for room
EVICT_EVERY = 1.0  # seconds between two passes over the connections for room, at the bound
MAX_CONNECTIONS = 1000  # open connections (CITYHUB_MAX_CONNECTIONS's default)
SPARE_FILES = 512  # descriptors kept beside the connections: SQLite, receivers, downloads
log = logging.getLogger("cityhub")
# one line per 10 s at most: a client holding connections open makes one per connection
slow_log = ThrottledLog(log)
full_log = ThrottledLog(log)
evict_log = ThrottledLog(log)


def _too_large() -> bytes:
    """The whole 431 response: a ProblemDetails body, then the connection closes."""
    return _closing(
        431,
        f"the request line and headers exceed {MAX_HEAD // 1024} KiB; "
        "send a long query as POST /ngsi-ld/v1/entityOperations/query",
    )


def _unparsable() -> bytes:
    """The whole 400 response to what the HTTP parser refuses (uvicorn's is plain text)."""
    return _closing(
        400,
        "not a valid HTTP/1.1 request; a request line over 64 KiB is refused too: "
        "send a long query as POST /ngsi-ld/v1/entityOperations/query",
    )


def _timed_out(what: str) -> bytes:
    """The whole 408 response to a request whose head or body stopped arriving."""
    return _closing(408, what)


def _full(limit: int) -> bytes:
    """The whole 503 response to a connection past the bound."""
    return _closing(
        503,
        f"the hub holds {limit:,} connections, its bound (CITYHUB_MAX_CONNECTIONS); "
        "try again shortly",
        NgsiLdError,
    )


def _closing(status: int, detail: str, kind: type[NgsiLdError] = InvalidRequest) -> bytes:
    """A ProblemDetails response on a connection that closes after it; a status other than
    400 is titled by its reason phrase."""
    err = kind(detail)
    phrase = HTTPStatus(status).phrase
    if status != 400:
        err.status, err.title = status, phrase.capitalize()
    body = orjson.dumps(err.problem())
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def open_files_for(connections: int, notify: int = 0) -> int:
    """Raise this process's open-file limit to hold `connections`, the `notify` sockets of
    notification delivery and SPARE_FILES more, as far as its hard limit allows; the
    connections it leaves room for (systemd's soft limit is 1,024, which the default bound
    alone would nearly take)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    kept = SPARE_FILES + notify
    want = connections + kept
    if soft != resource.RLIM_INFINITY and soft < want:
        soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft == resource.RLIM_INFINITY or soft - kept >= connections:
        return connections
    room = max(1, soft - kept)
    log.warning(
        "the open-file limit, %d (the hard limit), leaves room for %d connections, not "
        "CITYHUB_MAX_CONNECTIONS=%d: raise it (systemd: LimitNOFILE=)",
        soft,
        room,
        connections,
    )
    return room


class BoundedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that counts the bytes of each request's head and times it, and holds
    a connection only while its client keeps up."""

    max_connections = MAX_CONNECTIONS
    window = WINDOW
    min_rate = MIN_RATE
    _evicted_at = float("-inf")  # loop time of the last pass for room (per capped class)

    @classmethod
    def capped(
        cls, max_connections: int, window: float = WINDOW, min_rate: float = MIN_RATE
    ) -> type[BoundedHttpTools]:
        """The protocol with other bounds: open connections, the window for a head and for
        rates, the least rate (uvicorn takes a class)."""
        bounds = {"max_connections": max_connections, "window": window, "min_rate": min_rate}
        return type(cls.__name__, (cls,), bounds)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._began = False  # a request's first byte came and its message is not complete
        self._refused = False
        self._body_from = 0.0  # loop time the body's current window began
        self._body_bytes = 0  # what came in that window, by reads that left a body incomplete
        self._idle: asyncio.Handle | None = None  # checks an incomplete body's rate
        self._idle_limit = self.window
        self._head_from = 0.0  # loop time the next request head became due
        self._head_clock: asyncio.TimerHandle | None = None
        self._unsent = 0  # bytes of answers not yet taken by the client, at the last look
        self._unsent_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._make_room():
            full_log.warning(
                "refused a connection: %d are open, the bound CITYHUB_MAX_CONNECTIONS",
                self.max_connections,
            )
            self._refused = True
            self.transport.write(_full(self.max_connections))
            self.transport.close()  # at once: a flood must not hold descriptors for a linger
            return
        self._head_from = self.loop.time()
        self._head_clock = self.loop.call_later(self.window, self._head_check)

    def _make_room(self) -> bool:
        """Close the connections that wait on a slow client, at most once per EVICT_EVERY
        seconds; whether any was."""
        now = self.loop.time()
        cls = type(self)
        if now - cls._evicted_at < EVICT_EVERY:
            return False
        cls._evicted_at = now
        slow = [
            c
            for c in self.connections
            if c is not self and isinstance(c, BoundedHttpTools) and c._slow(now)
        ]
        for conn in slow:
            conn._evict()
        if slow:
            evict_log.warning(
                "closed %d connections waiting on slow clients to make room past the bound "
                "CITYHUB_MAX_CONNECTIONS (%d)",
                len(slow),
                self.max_connections,
            )
        return bool(slow)

    def _slow(self, now: float) -> bool:
        """Whether this connection waits on its client, for a head for EVICT_AFTER seconds,
        or for a body arriving below the least rate."""
        if self._refused or self.transport.is_closing():
            return False
        if self._in_head:
            serving = self.cycle is not None and not self.cycle.response_complete
            unsent = self.transport.get_write_buffer_size()
            return not serving and not unsent and now - self._head_from > EVICT_AFTER
        waited = now - self._body_from
        return (
            not self.flow.read_paused
            and waited > EVICT_AFTER
            and self._body_bytes < max(1.0, self.min_rate * waited)
        )

    def _evict(self) -> None:
        """Close this slow connection for room: 408 when a request began and is unanswered."""
        unanswered = self._in_head or self.cycle is None or not self.cycle.response_started
        if self._began and unanswered:
            self.transport.write(
                _timed_out(
                    "the hub is at its bound on connections and this one waited on its client"
                )
            )
        self.transport.close()

    def _head_check(self) -> None:
        """Close the connection if it waited a window for a request head (408 when part of one
        came), or drop it if its client reads an answer too slowly; look again later while a
        request is in progress, time is left or an answer drains."""
        self._head_clock = None
        if self._refused:
            return
        if self._reads_slowly():
            slow_log.warning(
                "dropped a connection whose client took less than %.0f bytes/s of its answer "
                "(%d bytes unsent)",
                self.min_rate,
                self._unsent,
            )
            self.transport.abort()
            return
        if self.transport.is_closing():
            if self._unsent:  # a close waits for the answer to drain: watch it
                self._head_clock = self.loop.call_later(self.window, self._head_check)
            return
        waited = self.loop.time() - self._head_from
        serving = not self._in_head or (self.cycle is not None and not self.cycle.response_complete)
        if serving or waited < self.window:
            # a request in progress: its response's end sets the head clock anew
            later = self.window if serving else self.window - waited
            self._head_clock = self.loop.call_later(later, self._head_check)
            return
        slow_log.warning(
            "closed a connection whose request head was not complete after %.0f s (%s)",
            waited,
            "part of one came" if self._began else "it sent nothing",
        )
        if self._began:
            self.transport.write(
                _timed_out(f"the request head was not complete within {self.window:g} s")
            )
        self.transport.close()
        if self._unsent:  # the last answer is not read yet: watch it drain
            self._head_clock = self.loop.call_later(self.window, self._head_check)

    def _reads_slowly(self) -> bool:
        """Whether answers waited unsent at this look and the last, and drained by less than
        the least rate between them."""
        now = self.loop.time()
        unsent = self.transport.get_write_buffer_size()
        before, elapsed = self._unsent, now - self._unsent_at
        self._unsent, self._unsent_at = unsent, now
        return bool(unsent and before) and before - unsent < max(1.0, self.min_rate * elapsed)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_from = self.loop.time()  # the next head is due from now on

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # dropped unparsed, until the linger ends
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                self._refused = True
                self.transport.write(_too_large())
                # Read and drop what is still on its way for a moment, then close: closing on
                # unread data resets the connection, and the client may lose the answer.
                self.loop.call_later(LINGER, self.transport.close)
                return
        super().data_received(data)
        if not self._in_head:  # headers read, body incomplete: it is still on its way
            self._body_bytes += len(data)
            if self._idle is None:
                self._body_from = self.loop.time()
                self._idle = self.loop.call_later(self._idle_limit, self._body_check)

    def _body_check(self) -> None:
        """Close the connection if its request body came slower than the least rate over the
        window (408 when no answer has begun); else begin the next window."""
        self._idle = None
        came, self._body_bytes = self._body_bytes, 0
        if self._in_head or self.transport.is_closing():
            return
        now = self.loop.time()
        took, self._body_from = now - self._body_from, now
        # the handler has not taken what came: the hub is slow, not the client
        if self.flow.read_paused or came >= max(1.0, self.min_rate * took):
            self._idle = self.loop.call_later(self._idle_limit, self._body_check)
            return
        rate = f"{came:,} bytes in {took:.1f} s, under {self.min_rate:,.0f} bytes/s"
        log.info("closed a connection whose request body came too slowly: %s", rate)
        if self.cycle is not None and not self.cycle.response_started:
            self.transport.write(_timed_out(f"the request body came too slowly: {rate}"))
        self.transport.close()

    def shutdown(self) -> None:
        """A graceful shutdown began: a body that makes no progress for SHUTDOWN_IDLE seconds
        is cut now, whatever its rate before. Else it held the exit until
        CITYHUB_SHUTDOWN_TIMEOUT, and uvicorn then cancelled its handler with an ERROR
        traceback."""
        self._idle_limit = SHUTDOWN_IDLE
        self.min_rate = 0.0  # any progress will do: the shutdown timeout bounds the rest
        if not self._in_head:
            if self._idle is not None:
                self._idle.cancel()
            self._body_from, self._body_bytes = self.loop.time(), 0
            self._idle = self.loop.call_later(SHUTDOWN_IDLE, self._body_check)
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._head_clock is not None:
            self._head_clock.cancel()
            self._head_clock = None
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """What the parser refuses gets a ProblemDetails, as every other error does."""
        self.transport.write(_unparsable())
        self.transport.close()

    def on_message_begin(self) -> None:
        self._began = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The next request's head starts counting here. Reset when a message began, the
        # chunk that began it (up to 64 KiB) was never counted.
        super().on_message_complete()
        self._in_head = True
        self._began = False
        self._head_bytes = 0
