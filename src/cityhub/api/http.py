"""Request parsing and response building shared by every NGSI-LD route."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cityhub import bigjson
from cityhub.api.allowed import UNSUPPORTED, allowed_for, options_for
from cityhub.api.body_budget import COUNTED
from cityhub.api.body_limits import MAX_BATCH_ITEMS, entity_body_limit
from cityhub.api.commit import grouped
from cityhub.bigjson import OFF_LOOP, in_thread
from cityhub.jsondepth import MAX_DEPTH, too_deep
from cityhub.jsonints import huge_integer, huge_integer_detail
from cityhub.ngsild.context import (
    MAX_CONTEXT_BYTES,
    ContextCache,
    TermMap,
    core_link,
    link_for,
    parse_link_header,
)
from cityhub.ngsild.core_context import CORE_CONTEXT_URL, CORE_CONTEXT_URLS
from cityhub.ngsild.entity import NULL_URI, check_uri, entity_object
from cityhub.ngsild.errors import (
    EXCERPT,
    BadRequestData,
    InvalidRequest,
    NgsiLdError,
    NonexistentTenant,
    NotAcceptable,
    RequestTooLarge,
    UnsupportedMediaType,
    excerpt,
    shown,
)
from cityhub.ngsild.params import flag, options
from cityhub.ngsild.temporal import OPTIONS as TEMPORAL_OPTIONS
from cityhub.ngsild.tenant import tenant_from_header

JSON = "application/json"
JSONLD = "application/ld+json"
GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
BASE = "/ngsi-ld/v1"


class Ctx:
    """What a request said about its @context, tenant and wanted representation."""

    __slots__ = ("accept", "implicit", "link_url", "spec", "tenant", "tm")

    def __init__(
        self,
        tm: TermMap,
        spec: Any,
        link_url: str | None,
        accept: str,
        tenant: str,
        implicit: Callable[[], str] | None = None,
    ) -> None:
        self.tm = tm
        self.spec = spec
        self.link_url = link_url
        self.accept = accept
        self.tenant = tenant
        # the URL of an ImplicitlyCreated copy of an inline @context, made only when a plain
        # JSON answer must link it
        self.implicit = implicit


def header(request: Request, name: bytes, default: str = "") -> str:
    """One request header by its lower-case name. Starlette's `headers.get` raises and catches
    a KeyError for each header a request lacks, and most requests lack most of these."""
    for key, value in request.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return default


def header_all(request: Request, name: bytes) -> str:
    """Every value of a header that may repeat, joined by commas as HTTP joins them."""
    return ",".join([v.decode("latin-1") for k, v in request.scope["headers"] if k == name])


TERMS = "cityhub.terms"  # scope key: a request's own term map, when not the core context's


def contexts(request: Request) -> ContextCache:
    """The app's context cache."""
    cache: ContextCache = request.app.state.contexts
    return cache


def tenant_of(request: Request, *, must_exist: bool) -> str:
    """The NGSILD-Tenant header ('' is the default tenant); reads need a known tenant.
    Two different values are refused: acting on either could reach the wrong city's data."""
    given = {v for k, v in request.scope["headers"] if k == b"ngsild-tenant"}
    if len(given) > 1:
        raise BadRequestData("NGSILD-Tenant is given more than once, with different values")
    tenant = tenant_from_header(given.pop()) if given else ""
    if tenant and must_exist and not request.app.state.store.has_tenant(tenant):
        raise NonexistentTenant(f"tenant {shown(tenant)} does not exist")
    return tenant


def negotiate(request: Request, allowed: tuple[str, ...] = (JSON, JSONLD)) -> str:
    """Pick the response media type from Accept (every Accept line), or 406."""
    accept = header_all(request, b"accept")
    if not accept:
        return JSON
    choice = _choose_media(accept, allowed)
    if choice is None:
        raise NotAcceptable(f"none of {excerpt(accept)} can be served; offer: {', '.join(allowed)}")
    return choice


@functools.lru_cache(maxsize=256)
def _choose_media(header: str, allowed: tuple[str, ...]) -> str | None:
    """The best allowed media type of an Accept header (clients repeat a few headers).

    RFC 9110 12.5.1: each offer takes the weight of the most specific range that names it
    (`application/json;q=0, */*` refuses JSON, whatever `*/*` allows); the highest weight
    wins, then the range written first, then the order of `allowed`."""
    ranges = [_media_range(part) for part in header.split(",")]
    best: tuple[float, int, int, str] | None = None
    for rank, offer in enumerate(allowed):
        kind = offer.split("/")[0] + "/*"
        found: tuple[int, float, int] | None = None  # (specificity, q, position)
        for position, (media, q) in enumerate(ranges):
            specific = {offer: 2, kind: 1, "*/*": 0}.get(media)
            if specific is not None and (found is None or specific > found[0]):
                found = (specific, q, position)
        if found is None or found[1] <= 0:
            continue
        key = (found[1], -found[2], -rank, offer)
        if best is None or key[:3] > best[:3]:
            best = key
    return None if best is None else best[3]


def _media_range(part: str) -> tuple[str, float]:
    """One Accept member: its media range and its weight (parameter names are
    case-insensitive; a weight that is no number counts as 1, one above 1 as 1)."""
    fields = [f.strip() for f in part.split(";")]
    q = 1.0
    for f in fields[1:]:
        name, _, value = f.partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 1.0
            q = 1.0 if weight != weight else min(max(weight, 0.0), 1.0)  # NaN too
    return fields[0].lower(), q


async def read_limited(request: Request, limit: int, setting: str = "") -> bytes:
    """The whole request body, or RequestTooLarge (naming the `setting` that bounds it) as
    soon as it passes `limit` bytes (a declared Content-Length is checked before anything is
    read); Overloaded (503) when a large one does not fit the hub-wide budget of bodies held
    at once (body_budget.py); ClientDisconnect when the client leaves first. Read once per request (every handler reads its body here), from
    the ASGI messages themselves: Starlette's `request.stream()`, an async generator, cost
    about 7,500 instructions a create more (decision 068)."""
    declared = header(request, b"content-length")
    named = f" ({setting})" if setting else ""
    held = 0  # bytes of it held in the hub-wide budget of large bodies (body_budget.py)
    if declared.isdigit():
        length = int(declared)
        if length > limit:
            raise RequestTooLarge(
                f"the request body has {length:,} bytes; at most {limit:,}{named}"
            )
        if length >= COUNTED:
            request.app.state.bodies.take(request.scope, length)
            held = length
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            continue  # (none other is defined for HTTP; Starlette skips one too)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"the request body has more than {limit:,} bytes{named}")
        if size > held and size >= COUNTED:  # no (or a wrong) Content-Length
            request.app.state.bodies.take(request.scope, size - held)
            held = size
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _check_charset(params: str) -> None:
    """JSON is UTF-8 (RFC 8259 8.1): another charset would be read wrongly, so it is a 415."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(
                f"charset {shown(charset)} is not supported: JSON bodies are UTF-8 (RFC 8259)"
            )


async def read_body(
    request: Request, *, patch: bool = False, one_entity: bool = False, batch: bool = False
) -> tuple[Any, str]:
    """The parsed JSON body and its media type; 415 for other types, 400 for bad JSON, 413
    past CITYHUB_MAX_BODY, or, for a request that writes `one_entity`, past its own bound,
    or, for a `batch`, past MAX_BATCH_ITEMS items."""
    media, _, params = header(request, b"content-type").partition(";")
    media = media.strip().lower()
    ok = (JSON, JSONLD, MERGE_PATCH) if patch else (JSON, JSONLD)
    if media not in ok:
        raise UnsupportedMediaType(
            f"Content-Type {media[:EXCERPT] or '(none)'} is not one of {', '.join(ok)}"
        )
    if params:
        _check_charset(params)
    settings = request.app.state.settings
    limit = entity_body_limit(settings) if one_entity else settings.max_body
    setting = "CITYHUB_MAX_ENTITY_BODY" if one_entity else "CITYHUB_MAX_BODY"
    raw = await read_limited(request, limit, setting)
    if not raw:
        raise InvalidRequest("the request body is empty")
    if len(raw) >= OFF_LOOP:  # parsed in pieces on a thread: other requests move on meanwhile
        body = await in_thread(_parsed, raw, bigjson.loads)
    else:
        body = _parsed(raw, orjson.loads)
    if batch and isinstance(body, list) and len(body) > MAX_BATCH_ITEMS:
        raise RequestTooLarge(
            f"a batch holds at most {MAX_BATCH_ITEMS:,} items and this one has "
            f"{len(body):,}; send them in several requests"
        )
    return body, media


def _parsed(raw: bytes, loads: Callable[[bytes], Any]) -> Any:
    """raw's JSON value, checked for depth; InvalidRequest or BadRequestData if it is bad."""
    try:
        body = loads(raw)
    except ValueError as exc:  # orjson.JSONDecodeError, bigjson.InvalidJson
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    if too_deep(raw, body):
        raise BadRequestData(f"the request body nests JSON deeper than {MAX_DEPTH} levels")
    huge = huge_integer(raw)
    if huge is not None:
        raise BadRequestData(huge_integer_detail(huge))
    return body


async def context_of(
    request: Request,
    body: Any = None,
    media: str = JSON,
    *,
    accept: tuple[str, ...] = (JSON, JSONLD),
    must_exist: bool = False,
) -> Ctx:
    """Resolve the request's @context (Link header or body) into a term map."""
    want = negotiate(request, accept)
    tenant = tenant_of(request, must_exist=must_exist)
    link = parse_link_header(header_all(request, b"link"))
    spec: Any = None
    if body == NULL_URI:  # no attribute body at all; ETSI names InvalidRequest for this body
        raise InvalidRequest(
            f"the body is {NULL_URI} alone, which names nothing to write; delete an attribute "
            "with DELETE .../attrs/{attrId}, or give the marker inside a merge or an update"
        )
    if body is not None and not (isinstance(body, dict) or (isinstance(body, list) and body)):
        raise InvalidRequest("the body must be a JSON object (or a non-empty array for batches)")
    if media == JSONLD and body is not None:
        if link is not None:
            raise BadRequestData(
                "application/ld+json requests carry their @context in the body, not a Link header"
            )
        items = body if isinstance(body, list) else [body]
        specs = [i.get("@context") for i in items if isinstance(i, dict)]
        if not specs or any(s is None for s in specs):
            raise BadRequestData("application/ld+json bodies must carry an @context")
        spec = specs[0]
        # a plain-JSON answer links the @context that compacted it: the body's one URL, or
        # an ImplicitlyCreated copy of an inline or compound one (made if the answer needs it)
        link = _one_url(spec)
    else:
        if body is not None:
            items = body if isinstance(body, list) else [body]
            if any(isinstance(i, dict) and "@context" in i for i in items):
                raise BadRequestData(
                    "application/json bodies must not carry an @context; use a Link header"
                )
        spec = link
    cache = contexts(request)
    if spec is None:  # the common case: the core context alone, compiled once
        return Ctx(cache.core, None, None, want, tenant)
    implicit = None if link is not None else functools.partial(_implicit_url, request, spec)
    tm = await cache.term_map(spec)
    request.scope[TERMS] = tm  # an error answered outside the handler names terms by it
    return Ctx(tm, spec, link, want, tenant, implicit)


def request_terms(request: Request) -> TermMap:
    """The term map of the request's @context, once context_of resolved it (else the core
    context's): what an error answered outside its handler compacts its IRIs with."""
    tm: TermMap | None = request.scope.get(TERMS)
    return tm if tm is not None else contexts(request).core


def _one_url(spec: Any) -> str | None:
    """The one URL an @context names when it is that URL, alone or before the core (which is
    applied last anyway); None for an inline or compound @context."""
    if isinstance(spec, list):
        rest = [s for s in spec if not (isinstance(s, str) and s in CORE_CONTEXT_URLS)]
        if len(rest) == 1 and spec[0] is rest[0]:
            spec = rest[0]
    return spec if isinstance(spec, str) else None


def _implicit_url(request: Request, spec: Any) -> str:
    from cityhub.api.contexts import implicit_context  # contexts builds on this module

    return implicit_context(request, spec, keep=False)  # a read writes nothing


def response_context(ctx: Ctx) -> Any:
    """The @context to put in (or link from) a response."""
    if ctx.spec is None:
        return CORE_CONTEXT_URL
    return ctx.spec


def json_response(
    ctx: Ctx,
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    entities: bool = True,
) -> Response:
    """A JSON or JSON-LD body; JSON links its @context, JSON-LD embeds it."""
    return encoded_response(ctx, encode(ctx, body, entities), status, headers, entities=entities)


def encode(ctx: Ctx, body: Any, entities: bool = True) -> bytes:
    """The bytes of a response body; JSON-LD entities embed their @context."""
    if ctx.accept == JSONLD and entities:
        ctx_value = response_context(ctx)
        if isinstance(body, list):
            body = [{**b, "@context": ctx_value} for b in body]
        elif isinstance(body, dict):
            body = {**body, "@context": ctx_value}
    return orjson.dumps(body)


def encoded_response(
    ctx: Ctx,
    raw: bytes,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    entities: bool = True,
) -> Response:
    """A response for a body encode() made; plain JSON entities link their @context."""
    link = None
    if entities and ctx.accept != JSONLD:
        if ctx.link_url:
            link = link_for(ctx.link_url)
        elif ctx.implicit is not None:
            link = link_for(ctx.implicit())
        else:
            link = core_link()
    media = ctx.accept if ctx.accept in (JSONLD, GEOJSON) else JSON
    if status == 200 and headers is None:
        return BodyResponse(raw, media, link)
    hdrs = dict(headers or {})
    if link is not None:
        hdrs["Link"] = link
    return Response(raw, status_code=status, media_type=media, headers=hdrs)


class BodyResponse(Response):
    """A 200 with a JSON body and at most a Link header, its header lines made directly:
    Starlette's init_headers lower-cases, encodes and searches a dict of them for every
    answer. The lines and their order are Starlette's (test_plain_read pins them)."""

    def __init__(self, body: bytes, media: str, link: str | None) -> None:
        self.status_code = 200
        self.media_type = media
        self.background = None
        self.body = body
        head = [(b"link", link.encode("latin-1"))] if link is not None else []
        head.append((b"content-length", str(len(body)).encode("latin-1")))
        head.append((b"content-type", media.encode("latin-1")))
        self.raw_headers = head


def no_content() -> Response:
    """204 with no body."""
    return Response(status_code=204)


# What quote(..., safe=":") leaves as it is: most ids (urn:ngsi-ld:Type:n) need no quote(),
# about 7,000 instructions, a third of what a create's 201 cost.
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~:-]*")


def created(path: str, rid: str) -> Response:
    """201 with the Location of the new resource under `path` (its id percent-encoded)."""
    part = rid if _URL_SAFE.fullmatch(rid) else quote(rid, safe=":")
    return CreatedResponse(f"{BASE}{path}/{part}")


class CreatedResponse(Response):
    """A body-less 201 with its Location, the header lines made directly as BodyResponse's
    (Starlette's init_headers lower-cases, encodes and searches a dict of them); the lines
    and their order are Starlette's (test_plain_create pins them)."""

    def __init__(self, location: str) -> None:
        self.status_code = 201
        self.media_type = None
        self.background = None
        self.body = b""
        self.raw_headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]


def plain_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON body with no @context handling (errors, batch results)."""
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def params_of(request: Request) -> dict[str, str]:
    """Query parameters; an unknown or repeated parameter is an InvalidRequest."""
    out: dict[str, str] = {}
    if not request.scope.get("query_string"):
        return out
    route = request.scope.get("route")
    path = getattr(route, "path", "")
    if path.endswith("{eid:path}") and not request.path_params.get("eid"):
        path = path[: -len("{eid:path}")]  # GET /entities/ is the collection
    allowed = allowed_for(request.method, path[len(BASE) :]) if path.startswith(BASE) else None
    for key, value in request.query_params.multi_items():
        if allowed is not None and key not in allowed:
            if key in UNSUPPORTED:
                raise BadRequestData(f"parameter {key} is not supported: {UNSUPPORTED[key]}")
            raise InvalidRequest(f"unknown query parameter {excerpt(key)}")
        if key in out:
            raise InvalidRequest(f"parameter {key} is given more than once")
        out[key] = value
    if "options" in out:  # an unknown option is refused by every operation, not only by reads
        known = options_for(request.method, path[len(BASE) :])
        if path.startswith(f"{BASE}/temporal/"):
            known = TEMPORAL_OPTIONS
        options(out, known)
    return out


def add_page_links(
    resp: Response, path: str, params: dict[str, str], limit: int, offset: int, more: bool
) -> None:
    """prev and next Link headers of a page (5.5.9), beside any @context Link already set."""
    if limit <= 0:
        return
    extra = {k: v for k, v in params.items() if k not in ("limit", "offset")}

    def link(off: int, rel: str) -> str:
        query = urlencode({**extra, "limit": limit, "offset": off}, safe=",:")
        return f'<{path}?{query}>;rel="{rel}";type="{JSONLD}"'

    links = [link(max(0, offset - limit), "prev")] if offset > 0 else []
    if more:
        links.append(link(offset + limit, "next"))
    if links:
        prior = resp.headers.get("link")
        resp.headers["Link"] = ",".join([*links, prior] if prior else links)


def add_interval_link(
    resp: Response, path: str, params: dict[str, str], rel: str, window: dict[str, str]
) -> None:
    """The Link to a 206 temporal answer's next page of instances: the request with its time
    window (and page) replaced (decisions 031, 058), beside the other Links."""
    window_keys = ("timerel", "timeAt", "endTimeAt", "pageBefore")
    kept = {k: v for k, v in params.items() if k not in window_keys}
    query = urlencode({**kept, **window}, safe=",:")
    link = f'<{path}?{query}>;rel="{rel}";type="{JSONLD}"'
    prior = resp.headers.get("link")
    resp.headers["Link"] = f"{link},{prior}" if prior else link


# Remote @contexts of one batch fetched at once; more wait for a free slot.
BATCH_FETCHES = 16


async def _prefetch_together(cache: ContextCache, specs: list[Any]) -> None:
    """Fetch what a batch's @contexts name, BATCH_FETCHES at a time and within the cache's
    timeout in all: one after another, 20 unreachable URLs held the request for 60 s. An
    item whose @context is not fetched by then fails alone, LdContextNotAvailable."""
    gate = asyncio.Semaphore(BATCH_FETCHES)

    async def one(spec: Any) -> None:
        async with gate:
            with contextlib.suppress(NgsiLdError):  # reported per item when compiled
                await cache.prefetch(spec)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(one(s) for s in specs)), cache.timeout)


class _InlineBudget:
    """The distinct inline @contexts one batch's items bring, at most MAX_CONTEXT_BYTES of
    JSON in all: each is compiled on the loop, and 15 items of 4 MiB each took 5.9 s of CPU.
    An item past the bound fails alone, as any item with a bad @context does."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self.total = 0

    def take(self, spec: Any) -> None:
        """Count an item's @context once; BadRequestData when it passes the bound."""
        if not isinstance(spec, dict | list):
            return
        key = orjson.dumps(spec)
        if key in self.seen:
            return
        if self.total + len(key) > MAX_CONTEXT_BYTES:
            raise BadRequestData(
                f"the items before this one brought {self.total:,} bytes of distinct inline "
                f"@contexts, and a batch takes {MAX_CONTEXT_BYTES:,} in all; host them and "
                "name their URLs"
            )
        self.seen.add(key)
        self.total += len(key)


async def batch_context(
    request: Request, body: Any, media: str, *, must_exist: bool = False
) -> tuple[Ctx, Callable[[Any], TermMap]]:
    """Contexts of a batch: ld+json items each carry their own, JSON items share the Link one.

    A bad or missing @context fails only its own item, never the whole batch.
    """
    want = negotiate(request)
    tenant = tenant_of(request, must_exist=must_exist)
    link = parse_link_header(header_all(request, b"link"))
    cache = contexts(request)
    items = body if isinstance(body, list) else []
    if media == JSONLD:
        if link is not None:
            raise BadRequestData(
                "application/ld+json requests carry their @context in the body, not a Link header"
            )
        specs = {
            orjson.dumps(i["@context"]): i["@context"]
            for i in items
            if isinstance(i, dict) and "@context" in i
        }
        await _prefetch_together(cache, list(specs.values()))
        inline = _InlineBudget()

        def per_item(item: Any) -> TermMap:
            if "@context" not in entity_object(item):
                raise BadRequestData("an application/ld+json entity must carry an @context")
            inline.take(item["@context"])
            return cache.compile(item["@context"])

        return Ctx(cache.core, None, None, want, tenant), per_item
    if link is not None:
        await cache.prefetch(link)
    tm = cache.compile(link)

    def shared(item: Any) -> TermMap:
        if isinstance(item, dict) and "@context" in item:
            raise BadRequestData("an application/json entity must not carry an @context")
        return tm

    return Ctx(tm, link, link, want, tenant), shared


async def delete_attribute_via(request: Request, method: Any, eid: str, select: Any = None) -> Any:
    """DELETE …/attrs/{attr} (entities and temporal): datasetId and deleteAll, then the method
    (first given to `select` with the request's context, to apply a selector); its result."""
    params = params_of(request)
    ctx = await context_of(request, must_exist=True)
    if select is not None:
        method = select(ctx, method)
    ds = params.get("datasetId")
    if ds == "@none":  # the default instance, as in queries
        ds = None
    elif ds is not None:
        check_uri(ds, "datasetId")
    attr = request.path_params["attr"]
    return await grouped(
        request, method, ctx.tenant, eid, attr, ctx.tm, ds, flag(params, "deleteAll")
    )
