"""A router that tries only the routes that can take a request's method and path.

Starlette tries every route in order, a regular expression each, and the hub has about a
hundred: PATCH /entities/{id}/attrs is the 19th (18.5 µs of matching) and GET
/subscriptions/{id} the 68th (54 µs). This router keeps, per method, the routes that allow it
with the literal start of their path, and tries only those whose start the path has. The first
full match among them is the route Starlette would pick: a route that does not allow the
method can match only partially, and Starlette takes the first full match. A request that no
route takes fully (an unknown path: 404, a known one with another method: 405) goes through
Starlette's own scan and is answered as before.
"""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

from starlette.routing import BaseRoute, Match, Route, Router, get_route_path
from starlette.types import Receive, Scope, Send

from cityhub.ngsild.errors import BadRequestData

Candidates = list[tuple[str, BaseRoute]]
# An encoded '/' inside one path segment while routing: "\x00" is in no valid id or name.
_SLASH = "\x00"
ENCODED = "cityhub.encoded_params"  # scope key: the path parameters that held a %2F


def literal_start(route: BaseRoute) -> str:
    """The part of a route's path before its first parameter ('' for routes of any path)."""
    if not isinstance(route, Route):
        return ""
    return route.path.split("{", 1)[0]


def method_index(routes: list[BaseRoute]) -> dict[str, Candidates]:
    """Per method, in route order: (literal start, route) of every route that may take it."""
    methods = {m for r in routes if isinstance(r, Route) and r.methods for m in r.methods}
    index: dict[str, Candidates] = {m: [] for m in methods}
    for route in routes:
        allowed = route.methods if isinstance(route, Route) and route.methods else methods
        for method in allowed:
            index[method].append((literal_start(route), route))
    return index


def check_utf8(scope: Scope) -> None:
    """A path or query string whose percent-encoded bytes are not UTF-8 is a 400: decoded with
    replacement characters, `q=city!="K%F6ln"` ran as "not K\ufffdln" and a purge with it
    deleted the Köln shop too (RFC 3986 3.4, RFC 3987: a URI carries UTF-8)."""
    raw_path = scope.get("raw_path") or b""
    path, _, on_path = raw_path.partition(b"?")  # httpx's ASGI transport keeps the query here
    for part, what in ((path, "path"), (scope.get("query_string") or on_path, "query string")):
        if b"%" not in part and part.isascii():
            continue
        try:
            unquote_to_bytes(part).decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = unquote_to_bytes(part)[exc.start : exc.end]
            raise BadRequestData(
                f"the {what} is not percent-encoded UTF-8 (byte {bad.hex()} at {exc.start} "
                "once decoded); encode text as UTF-8 before percent-encoding it"
            ) from None


def encoded_slash(scope: Scope) -> bool:
    """Whether the request's path holds a %2F (IndexedRouter.segment_match routes it)."""
    raw = scope.get("raw_path")
    return bool(raw and b"%" in raw and b"%2f" in raw.lower())  # most paths have no %


class IndexedRouter(Router):
    """Starlette's Router, with the full match found through a per-method index."""

    _index: dict[str, Candidates] | None = None

    def full_match(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        """The first route that takes this method and path, with its child scope."""
        if self._index is None:
            self._index = method_index(self.routes)  # routes are all in by the first request
        path = get_route_path(scope)
        for start, route in self._index.get(scope["method"], ()):
            if path.startswith(start):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    return route, child_scope
        return None

    def segment_match(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        """The full match of a path whose segments hold encoded slashes (%2F).

        The server decodes the path before routing, so an attribute named by an IRI
        (/attrs/https%3A%2F%2Fex.org%2Fspeed) became extra path segments, and the request
        fell through to the entity routes, whose ids may hold '/'. Segments are decoded one
        by one instead, each '/' inside one kept out of the way until the route is chosen.
        """
        if not encoded_slash(scope):
            return self.full_match(scope)
        raw = scope["raw_path"]
        # (some clients, httpx's ASGI transport among them, leave the query on raw_path)
        parts = [unquote(p) for p in raw.split(b"?", 1)[0].decode("latin-1").split("/")]
        if any(_SLASH in p for p in parts):
            return self.full_match(scope)
        path = "/".join(p.replace("/", _SLASH) for p in parts)
        found = self.full_match({**scope, "path": path})
        if found is None:
            return self.full_match(scope)
        route, child = found
        params = child.get("path_params", {})
        encoded = {k for k, v in params.items() if isinstance(v, str) and _SLASH in v}
        params = {k: v.replace(_SLASH, "/") if k in encoded else v for k, v in params.items()}
        # which parameters held an encoded '/': an id ending in %2Fattrs is that id, not a
        # path to its attributes (check_path_id)
        return route, {**child, "path_params": params, ENCODED: frozenset(encoded)}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            check_utf8(scope)  # before any route reads a parameter or an id
        found = self.segment_match(scope) if scope["type"] == "http" else None
        if found is None:
            await super().app(scope, receive, send)
            return
        route, child_scope = found
        scope.setdefault("router", self)
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)
