"""Two views of one app for the shortcut tests: Starlette's whole way, and a spy on it."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send


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
