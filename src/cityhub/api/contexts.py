"""/jsonldContexts (clause 5.13): list, serve, add and delete the @contexts the hub knows."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cityhub.api.http import JSON, JSONLD, negotiate, params_of, plain_json, read_body
from cityhub.ngsild.context import (
    CACHED,
    HOSTED,
    IMPLICIT,
    KINDS,
    RETIRED,
    ContextCache,
    ContextEntry,
    check_context,
    check_inline,
    is_absolute_iri,
)
from cityhub.ngsild.errors import (
    BadRequestData,
    Conflict,
    InvalidRequest,
    MethodNotAllowed,
    ResourceNotFound,
    shown,
)


def _cache(request: Request) -> ContextCache:
    cache: ContextCache = request.app.state.contexts
    return cache


def _url(request: Request, entry: ContextEntry) -> str:
    """The absolute URL of a context: remote ones keep theirs, the hub's own get this host's."""
    if not entry.local:
        return entry.url
    return f"{str(request.base_url).rstrip('/')}{entry.url_path}"


def _keep(request: Request, entry: ContextEntry, kind: str) -> None:
    """Store a context the cache just took on; if the store refuses (a full disk), the cache
    forgets it again: a refused request leaves nothing behind."""
    try:
        request.app.state.store.put_context(entry.url, entry.document, kind, entry.created_at)
    except Exception:
        _cache(request).remove(entry)
        raise
    entry.stored = True


def _flag(params: dict[str, str], name: str) -> bool:
    """A true/false query parameter (absent means false)."""
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false, not {shown(value)}")
    return value == "true"


def _ident(request: Request) -> str:
    """The context id in the path; without one the path names the collection (405)."""
    ident = str(request.path_params["cid"])
    if not ident:
        raise MethodNotAllowed(f"{request.method} needs a @context id in the path")
    return ident


def _users(request: Request, entry: ContextEntry) -> list[str]:
    """What would break if this hub-served context went: the hosted contexts that include it
    and the IoT sources and devices whose ldContext it is (a subscription keeps a retired copy
    instead, decision 002)."""
    if not entry.local:
        return []  # a cached one is fetched again when next used
    hosted = [f"hosted @context {lid}" for lid in _cache(request).includers(entry.local_id)]
    return hosted + request.app.state.iot.registry.naming_context(entry.local_id)


def _lookup(request: Request) -> ContextEntry:
    entry = _cache(request).find(_ident(request))
    if entry is None:
        raise ResourceNotFound(f"no @context {shown(request.path_params['cid'])}")
    return entry


async def list_contexts(request: Request) -> Response:
    """GET /jsonldContexts: URLs, or with details=true their metadata; kind filters."""
    params = params_of(request)
    negotiate(request)
    details = _flag(params, "details")
    kind = params.get("kind")
    if kind is not None and kind not in KINDS:
        raise BadRequestData(f"kind must be one of {', '.join(KINDS)}, not {shown(kind)}")
    entries = [e for e in _cache(request).entries() if kind is None or e.kind == kind]
    if details:
        return plain_json([e.details(_url(request, e)) for e in entries])
    return plain_json([_url(request, e) for e in entries])


async def get_context(request: Request) -> Response:
    """GET /jsonldContexts/{id}: the document, or with details=true its metadata.

    A hosted or implicitly created document is the body it was made from; a fetched one is
    only the @context member of what was downloaded (ContextCache._fetch).

    {id} is a local id or the (URL-encoded) URL of the context. Serving counts as a use (a
    HEAD does not); the details show the count from before this request.
    """
    params = params_of(request)
    media = negotiate(request)
    details = _flag(params, "details")
    entry = _lookup(request)
    info = entry.details(_url(request, entry)) if details else None  # before this use
    if request.method == "GET":  # a HEAD fetches nothing, so it is no use of the context
        entry.touch()
    if info is not None:
        return plain_json(info)
    return Response(orjson.dumps(entry.document), media_type=JSONLD if media == JSONLD else JSON)


async def add_context(request: Request) -> Response:
    """POST /jsonldContexts: host a @context; 201 with its path in Location.

    The body is a JSON object whose @context member is the context (an object, or an array
    of URLs and objects). Remote contexts it names are fetched now, so an unreachable one
    fails here with 503 rather than later in every request that uses the hosted one.
    """
    params_of(request)  # it takes none: an unknown one is a 400
    body, _ = await read_body(request)
    if not isinstance(body, dict) or "@context" not in body:
        raise InvalidRequest("the body must be a JSON object with an @context member")
    spec = body["@context"]
    check_context(spec)
    check_inline(spec)  # before what it names is fetched
    cache = _cache(request)
    await cache.prefetch(spec, count=False)
    document = {"@context": spec}
    cache.compile(spec)  # a context that cannot be compiled is refused before it is kept
    entry = cache.new_hosted(document)
    _keep(request, entry, HOSTED)
    return Response(status_code=201, headers={"Location": entry.url_path})


async def delete_context(request: Request) -> Response:
    """DELETE /jsonldContexts/{id}: remove it, or with reload=true download a cached one again.

    The core context cannot be deleted (reloading it is a no-op: it is bundled); hosted and
    implicitly created ones cannot be reloaded. A failed reload keeps the old copy (503).
    """
    params = params_of(request)
    reload = _flag(params, "reload")
    cache = _cache(request)
    ident = _ident(request)
    entry = cache.find(ident)
    if reload:
        if entry is None:
            if is_absolute_iri(ident):
                raise ResourceNotFound(f"no cached @context {shown(ident)}")
            raise BadRequestData(f"reload needs a cached @context, and {shown(ident)} is none")
        if entry.kind != CACHED:
            raise BadRequestData(f"a {entry.kind} @context cannot be reloaded")
        await cache.reload(entry)
        return Response(status_code=204)
    if entry is None:
        raise ResourceNotFound(f"no @context {shown(ident)}")
    if entry is cache.core_entry:
        raise BadRequestData("the NGSI-LD core @context cannot be deleted")
    users = _users(request, entry)
    if users:
        raise Conflict(
            f"@context {shown(ident)} is in use by {', '.join(users[:10])}"
            f"{f' and {len(users) - 10} more' if len(users) > 10 else ''}; "
            "delete or change those first"
        )
    store = request.app.state.store
    # stored first: a refused write (a full disk) leaves the context as it was
    if entry.local and (
        request.app.state.notifier.names_context(entry.local_id)
        or cache.included_by_retired(entry.local_id)
    ):
        store.put_context(entry.url, entry.document, RETIRED, entry.created_at)
        cache.retire(entry)  # gone from the API; the subscriptions that name it still compile
    else:
        store.delete_context(entry.url)  # a cached one's stored copy goes too
        cache.remove(entry)
    return Response(status_code=204)


def implicit_context(request: Request, spec: Any, *, keep: bool = True) -> str:
    """The absolute URL of an ImplicitlyCreated @context for an inline or compound @context.

    Equal @contexts share one entry. With ``keep`` (a subscription's jsonldContext, which must
    stay valid across restarts) it is stored now, so a refused write refuses the request;
    without (the Link of an answer) it lives in memory, among the bounded ones that go least
    recently used first, until a stored subscription names it.
    """
    entry = _cache(request).implicit(spec)
    if keep and not entry.stored:
        _keep(request, entry, IMPLICIT)
    return _url(request, entry)
