"""The plain entity read, answered before Starlette's middleware and routing (decision 050).

`GET /entities/{id}` with no query and no Link header (dashboards' polls, bench b) passed
through Starlette's two exception-catching layers, the router and the route's request wrapper
before its handler ran, then sent its answer back through three wrapped `send`s: a third of
the read's CPU instructions in-process. Here the same handler code answers it directly. Any
error, and any request that is not such a read, goes the whole way as before, so errors are
still mapped in one place (api/app.py) and answered exactly as before.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cityhub.api import entities as E
from cityhub.api.http import BASE
from cityhub.api.router import encoded_slash

PREFIX = BASE + "/entities/"
ROUTE_PATH = PREFIX + "{eid:path}"  # the first GET route: it takes every GET under PREFIX


class HubApp(Starlette):
    """Starlette, with the plain entity read served without the middleware stack."""

    _direct: bool | None = None  # whether the first GET route is still get_entity's

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The plain read's answer if it is one and succeeds; otherwise Starlette's path."""
        if self._plain(scope):
            scope["app"] = self  # as Starlette sets it: handlers find the services there
            try:
                response = await E.plain_read(Request(scope), scope["path"][len(PREFIX) :])
            except Exception:  # 404, 406, a bad id...: the whole path answers, mapped once
                response = None
            if response is not None:
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _plain(self, scope: Scope) -> bool:
        """A GET of one entity with no query, no Link header (whose @context might have to be
        fetched), no %2F and no root path: what the first GET route takes and get_entity
        answers with `_read_plain`."""
        path = scope.get("path", "")
        if (
            not path.startswith(PREFIX)
            or len(path) == len(PREFIX)
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("query_string")
            or scope.get("root_path")
            or encoded_slash(scope)
        ):
            return False
        if self._direct is None:
            self._direct = self._first_get_route_is_get_entity()
        return (
            self._direct
            and not self.user_middleware  # added middleware sees every request
            and b"link" not in [k for k, _ in scope["headers"]]
        )

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
