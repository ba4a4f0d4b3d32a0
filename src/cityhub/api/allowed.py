"""The query parameters each operation accepts; anything else is an InvalidRequest (6.3.7)."""

from __future__ import annotations

import re

from cityhub.ngsild.params import READ_OPTIONS

_RENDER = {"options", "format", "lang", "attrs", "pick", "omit", "datasetId", "geometryProperty"}
_JOIN = {"join", "joinLevel", "expandValues", "jsonKeys", "local"}
_SELECT = {
    "id",
    "type",
    "idPattern",
    "q",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "scopeQ",
    "limit",
    "offset",
    "count",
    "orderBy",
}

# Parameters of 1.9.1's entity queries that the hub does not apply: accepted, they changed
# nothing and said nothing (a csf client got no filter, an entityMap one no stable pages).
UNSUPPORTED = {
    "csf": "it selects the context sources a query is forwarded to, and the hub forwards none",
    "entityMap": "the hub keeps no EntityMaps (5.5.9.3); page with limit and offset",
    "collapse": "it shapes EntityMaps, which the hub does not keep",
    "collation": "strings are ordered by Unicode code point, not by an ICU collation (README)",
    "containedBy": "it guards distributed joins against loops, and the hub joins only its own "
    "entities (a join stops at an entity already on its path)",
}
_TEMPORAL = {
    "timerel",
    "timeAt",
    "endTimeAt",
    "timeproperty",
    "lastN",
    "aggrMethods",
    "aggrPeriodDuration",
}

# (method, route path suffix) → accepted parameters; a route missing here accepts anything.
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("GET", "/entities"): _SELECT | _RENDER | _JOIN,
    ("POST", "/entities"): {"local"},
    ("DELETE", "/entities"): _SELECT | {"drop", "keep", "local"},
    ("GET", "/entities/{eid}"): {"type"} | _RENDER | _JOIN,
    ("PUT", "/entities/{eid}"): {"type", "local"},
    ("PATCH", "/entities/{eid}"): {"type", "local", "options", "format", "lang", "observedAt"},
    ("DELETE", "/entities/{eid}"): {"type", "local"},
    ("POST", "/entities/{eid}/attrs"): {"options", "type", "local"},
    ("PATCH", "/entities/{eid}/attrs"): {"options", "type", "local"},
    ("PATCH", "/entities/{eid}/attrs/{attr}"): {"type", "local", "options"},
    ("PUT", "/entities/{eid}/attrs/{attr}"): {"type", "local"},
    ("DELETE", "/entities/{eid}/attrs/{attr}"): {"type", "datasetId", "deleteAll", "lang", "local"},
    ("POST", "/entityOperations/query"): _RENDER | _JOIN | {"limit", "offset", "count"},
    ("GET", "/types"): {"details", "local", "limit", "offset"},
    ("GET", "/types/{type:path}"): {"local"},
    ("GET", "/attributes"): {"details", "local", "limit", "offset"},
    ("GET", "/attributes/{attr:path}"): {"local"},
    # 5.13: a misspelt reload deleted the context it meant to download again
    ("GET", "/jsonldContexts"): {"details", "kind"},
    ("POST", "/jsonldContexts"): set(),
    ("GET", "/jsonldContexts/{cid:path}"): {"details"},
    ("DELETE", "/jsonldContexts/{cid:path}"): {"reload"},
    # expandValues: the q values of those attributes are terms (5.7.4.3), as on GET /entities
    # pageBefore: the hub's own, in the Links of a lastN answer's pages (decision 058)
    ("GET", "/temporal/entities"): _SELECT
    | _RENDER
    | _TEMPORAL
    | {"local", "expandValues", "pageBefore"},
    ("GET", "/temporal/entities/{eid}"): {"type"} | _RENDER | _TEMPORAL | {"local", "pageBefore"},
    ("POST", "/temporal/entityOperations/query"): _RENDER
    | _TEMPORAL
    | {"limit", "offset", "count", "expandValues"},
}
for _op in ("create", "upsert", "update", "delete", "merge"):
    ALLOWED[("POST", f"/entityOperations/{_op}")] = {"options", "local"}
for _path in ("/subscriptions", "/csourceSubscriptions", "/csourceRegistrations"):
    ALLOWED[("POST", _path)] = set()
    ALLOWED[("GET", _path)] = {"limit", "offset", "count", "options"}
    ALLOWED[("GET", _path + "/{rid:path}")] = {"options"}
    ALLOWED[("PATCH", _path + "/{rid:path}")] = set()
    ALLOWED[("DELETE", _path + "/{rid:path}")] = set()
ALLOWED[("GET", "/csourceRegistrations")] |= {
    "scopeQ",
    "id",
    "type",
    "idPattern",
    "attrs",
    "q",
    "csf",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "timeproperty",
    "timerel",
    "timeAt",
    "endTimeAt",
}


# (method, route) → the `options` an entity write or read accepts; the others are refused by
# name, as PATCH .../attrs?options=noOverwrite answered 204 and overwrote, and a read took
# noOverwrite or temporalValues and answered normalized. A route missing here takes every
# option the hub knows (temporal reads check theirs themselves). Batch merge takes none, nor lang or
# observedAt: Batch Entity Merge (5.6.20.3, 6.31) gives its entity array and `local` alone,
# unlike Merge Entity (5.6.17); batch create and update take no representation either.
OPTIONS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/entities"): READ_OPTIONS,
    ("GET", "/entities/{eid}"): READ_OPTIONS,
    ("POST", "/entityOperations/query"): READ_OPTIONS,
    ("PATCH", "/entities/{eid}"): frozenset({"keyValues", "simplified", "concise", "normalized"}),
    ("POST", "/entities/{eid}/attrs"): frozenset({"noOverwrite"}),
    ("PATCH", "/entities/{eid}/attrs"): frozenset(),
    ("PATCH", "/entities/{eid}/attrs/{attr}"): frozenset(),
    ("POST", "/entityOperations/create"): frozenset(),
    ("POST", "/entityOperations/upsert"): frozenset({"replace", "update"}),
    ("POST", "/entityOperations/update"): frozenset({"noOverwrite"}),
    ("POST", "/entityOperations/delete"): frozenset(),
    ("POST", "/entityOperations/merge"): frozenset(),
}

_CONVERTER = re.compile(r":\w+}")


def _key(method: str, path: str) -> tuple[str, str]:
    """A route's key without path converters ("{eid:path}" and "{eid}" are the same route)."""
    return method, _CONVERTER.sub("}", path).rstrip("/") or path


def allowed_for(method: str, path: str) -> set[str] | None:
    """The accepted parameters of an operation (path as routed, without /ngsi-ld/v1)."""
    return _NORMALISED.get(_key(method, path))


def options_for(method: str, path: str) -> frozenset[str] | None:
    """The options an operation accepts, or None when it takes any the hub knows."""
    return _NORMALISED_OPTIONS.get(_key(method, path))


_NORMALISED = {_key(m, p): v for (m, p), v in ALLOWED.items()}
_NORMALISED_OPTIONS = {_key(m, p): v for (m, p), v in OPTIONS.items()}
