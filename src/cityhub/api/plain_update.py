"""The plain attribute update, PATCH /entities/{id}/attrs, answered before Starlette's
middleware (decision 091), as the plain create is (decision 068).

Bench (c)'s request passed Starlette's two exception-catching layers and the route's request
wrapper, with their wrapped `send`s, on its way to `update_attrs` and back. Here the hub's
own router (`IndexedRouter.full_match`, the match the whole way makes) picks the route, and
only when that is update_attrs's does the handler run directly, with the child scope the
router would give it. Its exception is raised again inside Starlette's stack
(`plain_create.raising_stack`), so it is answered, logged and re-raised as on the whole way.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route, Router
from starlette.types import Scope

from cityhub.api import entities as E
from cityhub.api.http import BASE
from cityhub.api.router import IndexedRouter

PREFIX = BASE + "/entities/"
SUFFIX = "/attrs"


def is_plain_update(scope: Scope) -> bool:
    """An HTTP PATCH of a path under /entities/ that ends in /attrs, no query string (the
    handler reads its parameters against the route), no root path, and a raw path of ASCII
    without percent-encoding: nothing for the router's UTF-8 check to refuse, no %2F for it
    to route segment by segment."""
    if scope["type"] != "http" or scope["method"] != "PATCH":
        return False
    path = scope.get("path", "")
    raw = scope.get("raw_path") or b""
    return (
        path.startswith(PREFIX)
        and path.endswith(SUFFIX)
        and not scope.get("query_string")
        and not scope.get("root_path")
        and b"%" not in raw
        and raw.isascii()
    )


def update_route(router: Router, scope: Scope) -> tuple[BaseRoute, Scope] | None:
    """The route and child scope the router gives this request, when the route is
    update_attrs's; None when it would send it anywhere else."""
    if not isinstance(router, IndexedRouter):
        return None
    found = router.full_match(scope)
    if found is None or not isinstance(found[0], Route) or found[0].endpoint is not E.update_attrs:
        return None
    return found
