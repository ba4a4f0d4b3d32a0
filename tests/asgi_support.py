"""Two views of one app for the shortcut tests: Starlette's whole way, and a spy on it."""

from __future__ import annotations

import orjson
from bench.write_path import http_scope
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]


def whole_way(app: Starlette) -> ASGIApp:
    """The app through Starlette's own __call__: middleware, router, route wrapper."""

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        await Starlette.__call__(app, scope, receive, send)

    return call


class Spy:
    """Stands in for Starlette's middleware stack, counting the requests that reach it."""

    def __init__(self, app: Starlette) -> None:
        self.stack = app.build_middleware_stack()
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += scope["type"] == "http"
        await self.stack(scope, receive, send)


class Record:
    """Middleware a test adds: notes the path of every request that passes it in `seen`."""

    def __init__(self, inner: ASGIApp, seen: list[str]) -> None:
        self.inner = inner
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append(scope["path"])
        await self.inner(scope, receive, send)


async def sent(
    method: str, app: ASGIApp, body: bytes, headers: Headers, path: str, query: bytes = b""
) -> tuple[list[Message], str | None]:
    """Every message the app sends for one request with a body, and the exception it raised
    to the server (by its type and text), the whole body sent as uvicorn hands it over."""
    head = [(b"host", b"127.0.0.1"), *headers, (b"content-length", str(len(body)).encode())]
    scope = http_scope(method, path, head, query)
    out: list[Message] = []
    given = False

    async def receive() -> Message:
        nonlocal given
        if given:
            return {"type": "http.disconnect"}
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        out.append(message)

    try:
        await app(scope, receive, send)
    except Exception as exc:
        return out, f"{type(exc).__name__}: {exc}"
    return out, None


def named(messages: list[Message], way: str) -> list[Message]:
    """The messages with the way's name in place of WAY, as sent (bodies and headers)."""
    text = orjson.dumps(messages, default=lambda b: b.decode("latin-1")).decode("latin-1")
    return orjson.loads(text.replace(way, "WAY"))  # type: ignore[no-any-return]
