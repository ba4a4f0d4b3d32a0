"""uvicorn's httptools protocol with a bound on the request line and headers, on how long a
request head and a stalled body may take, and on the connections held at once.

httptools gathers a header until its end, so one client sending an endless header grew the
hub's memory without limit (105 MB sent in 20 s took the process from 79 to 244 MB RSS). Past
MAX_HEAD bytes the request is answered 431, and the connection is closed a second later
(what arrives meanwhile is dropped unparsed).

uvicorn has no timeout for a body that stops arriving: a client that sent its headers and
part of its body held its handler, and a graceful shutdown, for as long as it kept the
connection open. A body that makes no progress for BODY_IDLE seconds is answered 408 and its
connection closed (its handler sees the client leave). The clock is armed only when a read
ends with a body still incomplete, once per connection, so whole requests pay nothing.

uvicorn has no timeout for a request head either: its keep-alive clock (5 s) starts after a
response and stops at the next byte, so a connection that sent nothing, or half a head, was
held for ever, and 19,980 of them took every file descriptor of the hub (no request of anyone
was answered, and nothing was logged). A head must now be complete HEAD_TIMEOUT seconds after
the connection opened or its previous response ended: else the connection is closed, with a
408 when part of a head came. One clock per connection, armed at its opening, looks again
when it fires; requests pay a loop.time() each.

And past MAX_CONNECTIONS open connections (CITYHUB_MAX_CONNECTIONS, `cityhub serve` makes a
subclass with its setting, `capped`) a new one is answered 503 and closed at once, so the
descriptors the hub needs for its database, notifications and @context downloads stay free.
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
BODY_IDLE = 60.0  # seconds a request body may make no progress (nginx's client_body_timeout)
SHUTDOWN_IDLE = 1.0  # the same, once a graceful shutdown has begun
HEAD_TIMEOUT = 60.0  # seconds for a whole request head (nginx's client_header_timeout)
MAX_CONNECTIONS = 1000  # open connections (CITYHUB_MAX_CONNECTIONS's default)
SPARE_FILES = 512  # descriptors kept beside the connections: SQLite, receivers, downloads
log = logging.getLogger("cityhub")
# one line per 10 s at most: a client holding connections open makes one per connection
slow_log = ThrottledLog(log)
full_log = ThrottledLog(log)


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
    """HttpToolsProtocol that counts the bytes of each request's head and times it."""

    max_connections = MAX_CONNECTIONS

    @classmethod
    def capped(cls, max_connections: int) -> type[BoundedHttpTools]:
        """The protocol with another bound on open connections (uvicorn takes a class)."""
        return type(cls.__name__, (cls,), {"max_connections": max_connections})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._began = False  # a request's first byte came and its message is not complete
        self._refused = False
        self._body_at = 0.0  # loop time the incomplete body last grew
        self._idle: asyncio.Handle | None = None  # checks a stalled body
        self._idle_limit = BODY_IDLE
        self._head_from = 0.0  # loop time the next request head became due
        self._head_clock: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            full_log.warning(
                "refused a connection: %d are open, the bound CITYHUB_MAX_CONNECTIONS",
                self.max_connections,
            )
            self._refused = True
            self.transport.write(_full(self.max_connections))
            self.transport.close()  # at once: a flood must not hold descriptors for a linger
            return
        self._head_from = self.loop.time()
        self._head_clock = self.loop.call_later(HEAD_TIMEOUT, self._head_check)

    def _head_check(self) -> None:
        """Close the connection if it waited HEAD_TIMEOUT seconds for a request head (408 when
        part of one came); look again later while a request is in progress or time is left."""
        self._head_clock = None
        if self._refused or self.transport.is_closing():
            return
        waited = self.loop.time() - self._head_from
        serving = not self._in_head or (self.cycle is not None and not self.cycle.response_complete)
        if serving or waited < HEAD_TIMEOUT:
            # a request in progress: its response's end sets the head clock anew
            later = HEAD_TIMEOUT if serving else HEAD_TIMEOUT - waited
            self._head_clock = self.loop.call_later(later, self._head_check)
            return
        slow_log.warning(
            "closed a connection whose request head was not complete after %.0f s (%s)",
            waited,
            "part of one came" if self._began else "it sent nothing",
        )
        if self._began:
            self.transport.write(
                _timed_out(f"the request head was not complete within {HEAD_TIMEOUT:.0f} s")
            )
        self.transport.close()

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
            self._body_at = self.loop.time()
            if self._idle is None:
                self._idle = self.loop.call_later(self._idle_limit, self._body_check)

    def _body_check(self) -> None:
        """Close the connection if its request body made no progress for BODY_IDLE seconds
        (408 when no answer has begun); look again later while it progresses."""
        self._idle = None
        if self._in_head or self.transport.is_closing():
            return
        idle = self.loop.time() - self._body_at
        if self.flow.read_paused:  # the handler has not taken what came: the hub is slow
            idle = 0.0
        if idle < self._idle_limit:
            self._idle = self.loop.call_later(self._idle_limit - idle, self._body_check)
            return
        log.info("closed a connection whose request body made no progress for %.1f s", idle)
        if self.cycle is not None and not self.cycle.response_started:
            self.transport.write(_timed_out(f"the request body made no progress for {idle:.1f} s"))
        self.transport.close()

    def shutdown(self) -> None:
        """A graceful shutdown began: a body that stalls now gets SHUTDOWN_IDLE seconds, not
        BODY_IDLE. Else it held the exit until CITYHUB_SHUTDOWN_TIMEOUT, and uvicorn then
        cancelled its handler with an ERROR traceback."""
        self._idle_limit = SHUTDOWN_IDLE
        if not self._in_head:
            if self._idle is not None:
                self._idle.cancel()
            self._idle = self.loop.call_soon(self._body_check)
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
