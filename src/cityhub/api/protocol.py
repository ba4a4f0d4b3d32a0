"""uvicorn's httptools protocol with a bound on the request line and headers.

httptools gathers a header until its end, so one client sending an endless header grew the
hub's memory without limit (105 MB sent in 20 s took the process from 79 to 244 MB RSS). Past
MAX_HEAD bytes the request is answered 431, and the connection is closed a second later
(what arrives meanwhile is dropped unparsed).
"""

from __future__ import annotations

from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cityhub.ngsild.errors import InvalidRequest

# Request line plus headers. Long GET queries fit (some 10,000 ids); longer ones belong in
# POST /entityOperations/query, whose body has its own limit (CITYHUB_MAX_BODY).
MAX_HEAD = 256 * 1024
LINGER = 1.0  # seconds a refused connection stays open, its input dropped, before it closes


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
