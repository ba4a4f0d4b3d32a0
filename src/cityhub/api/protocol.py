"""uvicorn's httptools protocol with a bound on the request line and headers, and on how long
a request body may stall.

httptools gathers a header until its end, so one client sending an endless header grew the
hub's memory without limit (105 MB sent in 20 s took the process from 79 to 244 MB RSS). Past
MAX_HEAD bytes the request is answered 431, and the connection is closed a second later
(what arrives meanwhile is dropped unparsed).

uvicorn has no timeout for a body that stops arriving: a client that sent its headers and
part of its body held its handler, and a graceful shutdown, for as long as it kept the
connection open. A body that makes no progress for BODY_IDLE seconds is answered 408 and its
connection closed (its handler sees the client leave). The clock is armed only when a read
ends with a body still incomplete, once per connection, so whole requests pay nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cityhub.ngsild.errors import InvalidRequest

# Request line plus headers. Long GET queries fit (some 10,000 ids); longer ones belong in
# POST /entityOperations/query, whose body has its own limit (CITYHUB_MAX_BODY).
MAX_HEAD = 256 * 1024
LINGER = 1.0  # seconds a refused connection stays open, its input dropped, before it closes
BODY_IDLE = 60.0  # seconds a request body may make no progress (nginx's client_body_timeout)
SHUTDOWN_IDLE = 1.0  # the same, once a graceful shutdown has begun
log = logging.getLogger("cityhub")


def _too_large() -> bytes:
    """The whole 431 response: a ProblemDetails body, then the connection closes."""
    err = InvalidRequest(
        f"the request line and headers exceed {MAX_HEAD // 1024} KiB; "
        "send a long query as POST /ngsi-ld/v1/entityOperations/query"
    )
    err.status = 431
    err.title = "Request header fields too large"
    return _closing(err, "431 Request Header Fields Too Large")


def _unparsable() -> bytes:
    """The whole 400 response to what the HTTP parser refuses (uvicorn's is plain text)."""
    err = InvalidRequest(
        "not a valid HTTP/1.1 request; a request line over 64 KiB is refused too: "
        "send a long query as POST /ngsi-ld/v1/entityOperations/query"
    )
    return _closing(err, "400 Bad Request")


def _stalled(idle: float) -> bytes:
    """The whole 408 response to a request whose body stopped arriving."""
    err = InvalidRequest(f"the request body made no progress for {idle:.1f} s")
    err.status = 408
    err.title = "Request timeout"
    return _closing(err, "408 Request Timeout")


def _closing(err: InvalidRequest, status_line: str) -> bytes:
    """A ProblemDetails response on a connection that closes after it."""
    body = orjson.dumps(err.problem())
    head = (
        f"HTTP/1.1 {status_line}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class BoundedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that counts the bytes of each request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._refused = False
        self._body_at = 0.0  # loop time the incomplete body last grew
        self._idle: asyncio.Handle | None = None  # checks a stalled body
        self._idle_limit = BODY_IDLE

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
            self.transport.write(_stalled(idle))
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
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """What the parser refuses gets a ProblemDetails, as every other error does."""
        self.transport.write(_unparsable())
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The next request's head starts counting here. Reset when a message began, the
        # chunk that began it (up to 64 KiB) was never counted.
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
