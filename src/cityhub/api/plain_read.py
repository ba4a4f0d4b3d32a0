"""The plain entity read, answered before Starlette's middleware and routing (decision 062);
the plain create too (`api/plain_create.py`, decision 068), and the plain attribute update
before the middleware (`api/plain_update.py`, decision 091).

`GET /entities/{id}` with no query and no Link header (dashboards' polls, bench b) passed
through Starlette's two exception-catching layers, the router and the route's request wrapper
before its handler ran, then sent its answer back through three wrapped `send`s: a third of
the read's CPU instructions in-process. Here the same handler code answers it directly. An
NGSI-LD error it raises (404, 406, a bad id...) is answered by the handler api/app.py
registered for it, found as Starlette's route wrapper finds it; any other error, and any
request that is not such a read, goes the whole way as before. So errors are still mapped in
one place (api/app.py), and every answer is the one the whole way gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cityhub.api import entities as E
from cityhub.api.body_budget import HELD
from cityhub.api.http import BASE
from cityhub.api.plain_create import (
    RAISED,
    first_post_route_is_create,
    is_plain_create,
    raising_stack,
)
from cityhub.api.plain_update import is_plain_update, update_route
from cityhub.ngsild.errors import NgsiLdError

PREFIX = BASE + "/entities/"
ROUTE_PATH = PREFIX + "{eid:path}"  # the first GET route: it takes every GET under PREFIX


class HubApp(Starlette):
    """Starlette, with the plain entity read, create and attribute update served without the
    middleware stack."""

    _direct: bool | None = None  # whether the first GET route is still get_entity's
    _creates: bool | None = None  # whether the first POST route on /entities is create's
    _raising: ASGIApp | None = None  # the stack a create's error is raised in (built on one)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A plain read's, create's or update's answer, or its error's; anything else takes Starlette's
        path. A large body's bytes are given back to the hub-wide budget once answered."""
        handler = self._direct_write(scope)
        if handler is not None:
            try:
                await self._write(scope, receive, send, handler)
            finally:
                if HELD in scope:  # its large body's bytes (body_budget.py)
                    self.state.bodies.give_back(scope)
            return
        if self._plain(scope):
            scope["app"] = self  # as Starlette sets it: handlers find the services there
            request = Request(scope)
            try:
                response = await E.plain_read(request, scope["path"][len(PREFIX) :])
            except NgsiLdError as exc:
                response = await self._answer(request, exc)
            except Exception:  # the store's and the driver's: the whole way answers and logs
                response = None
            if response is not None:
                await response(scope, receive, send)
                return
        try:
            await super().__call__(scope, receive, send)
        finally:
            if HELD in scope:
                self.state.bodies.give_back(scope)

    def _direct_write(self, scope: Scope) -> Callable[[Request], Any] | None:
        """The handler of a plain create or plain attribute update, which skips the
        middleware; None for any other request. An update's scope gets the route and path
        parameters the router gives it, as the router would put them there."""
        if is_plain_create(scope) and self._create_direct():
            return E.create_entity
        if is_plain_update(scope) and self._unwrapped():
            found = update_route(self.router, scope)
            if found is not None:
                route, child = found
                scope.setdefault("router", self.router)  # as IndexedRouter.app sets them
                scope["route"] = route
                scope.update(child)
                return E.update_attrs
        return None

    def _create_direct(self) -> bool:
        """Whether create_entity may answer a plain create here: no added middleware, no
        body limit middleware, and the router would pick it."""
        if self._creates is None:
            self._creates = first_post_route_is_create(self.routes)
        return self._creates and self._unwrapped()

    def _unwrapped(self) -> bool:
        """Whether a write may skip the middleware: none added (it sees every request) and
        no body limit middleware."""
        return not self.user_middleware and self.max_body_size is None

    async def _write(
        self, scope: Scope, receive: Receive, send: Send, handler: Callable[[Request], Any]
    ) -> None:
        """A write handler's answer; its exception raised again in Starlette's stack."""
        scope["app"] = self  # as Starlette sets it: handlers find the services there
        try:
            response = await handler(Request(scope, receive))
        except Exception as exc:
            if self._raising is None:
                self._raising = raising_stack(self)
            scope[RAISED] = exc
            await self._raising(scope, receive, send)
            return
        await response(scope, receive, send)

    def _plain(self, scope: Scope) -> bool:
        """A GET of one entity with no query, no Link header (whose @context might have to be
        fetched), no percent-encoding (a %2F is routed by segments, and the router refuses
        one that is not UTF-8) and no root path: what the first GET route takes and get_entity
        answers with `_read_plain`. (The route's pattern stops at a newline.)"""
        path = scope.get("path", "")
        raw = scope.get("raw_path") or b""
        if (
            not path.startswith(PREFIX)
            or len(path) == len(PREFIX)
            or "\n" in path
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("query_string")
            or scope.get("root_path")
            or b"%" in raw
            or not raw.isascii()
        ):
            return False
        if self._direct is None:
            self._direct = self._first_get_route_is_get_entity()
        return (
            self._direct
            and not self.user_middleware  # added middleware sees every request
            and b"link" not in [k for k, _ in scope["headers"]]
        )

    async def _answer(self, request: Request, exc: NgsiLdError) -> Response | None:
        """The answer of the handler registered for the error's most specific class, as the
        route's wrapper picks it (Exception's is the server-error middleware's, not its);
        None if there is none, or it is not a coroutine function."""
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None and cls is not Exception:
                if not asyncio.iscoroutinefunction(handler):
                    return None
                response: Response = await handler(request, exc)
                return response
        return None

    def _first_get_route_is_get_entity(self) -> bool:
        """Whether the first route that may take a GET is get_entity's: then the router picks
        it for every path under PREFIX."""
        for route in self.routes:
            if not isinstance(route, Route) or not route.methods or "GET" in route.methods:
                return (
                    isinstance(route, Route)
                    and route.path == ROUTE_PATH
                    and route.endpoint is E.get_entity
                )
        return False
