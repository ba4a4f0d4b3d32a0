"""The plain create, POST /entities, answered before Starlette's middleware and routing
(decision 068).

Bench (a)'s request passed Starlette's two exception-catching layers, the router, the route's
request wrapper and three wrapped `send`s on its way to `create_entity` and back: with the
201's header lines, about 80,000 CPU instructions of a create's 970,000. Here `create_entity`
itself runs directly. A write
cannot be sent the whole way again once it failed (its body is read, its job may have run),
so an exception it raises is raised again inside Starlette's own middleware stack, built
around an app that only raises it (`raising_stack`): the same handlers answer it, and the
server-error middleware logs an unexpected one and re-raises it to the server, as on the
whole way. Errors are still mapped in one place, `api/app.py`'s handlers.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cityhub.api import entities as E
from cityhub.api.http import BASE

PATH = BASE + "/entities"
RAW_PATH = PATH.encode()
RAISED = "cityhub.raised"  # scope key: the exception raising_stack's endpoint raises again


def is_plain_create(scope: Scope) -> bool:
    """An HTTP POST /entities exactly, no query string (params_of reads parameters against
    the route in the scope), no root path, the path unencoded: what the router sends to
    create_entity, with nothing in its child scope that the handler reads."""
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and scope.get("path") == PATH
        and (scope.get("raw_path") or RAW_PATH) == RAW_PATH
        and not scope.get("query_string")
        and not scope.get("root_path")
    )


def first_post_route_is_create(routes: Sequence[BaseRoute]) -> bool:
    """Whether the first route that may take a POST on PATH is create_entity's, as the
    router (api/router.py) would pick it."""
    for route in routes:
        if not isinstance(route, Route):
            return False  # a mount or another app could take the path first
        if (route.methods is None or "POST" in route.methods) and route.path_regex.match(PATH):
            return route.endpoint is E.create_entity
    return False


def raising_stack(app: Starlette) -> ASGIApp:
    """Starlette's middleware stack for the app, built by Starlette around an endpoint that
    raises the scope's RAISED exception in place of the router: a shortcut's error is then
    answered, logged and re-raised as an endpoint's error reached through the router is."""
    router = app.router
    app.router = _raise  # type: ignore[assignment]  # the stack's inner app, while it is built
    try:
        return app.build_middleware_stack()
    finally:
        app.router = router


async def _raise(scope: Scope, receive: Receive, send: Send) -> None:
    """The endpoint of raising_stack: raise what the shortcut caught."""
    raise scope[RAISED]
