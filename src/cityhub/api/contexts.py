"""/jsonldContexts: list, get, add and delete the @contexts the hub knows."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cityhub.api.http import BASE, negotiate, params_of, plain_json, read_body
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.core_context import CORE_CONTEXT, CORE_CONTEXT_URL
from cityhub.ngsild.errors import BadRequestData, ResourceNotFound

HOSTED = "Hosted"
CACHED = "Cached"
IMPLICIT = "ImplicitlyCreated"


def _cache(request: Request) -> ContextCache:
    cache: ContextCache = request.app.state.contexts
    return cache


def _own_url(request: Request, cid: str) -> str:
    return f"{str(request.base_url).rstrip('/')}{BASE}/jsonldContexts/{cid}"


def _entries(request: Request) -> list[dict[str, Any]]:
    cache = _cache(request)
    out = [{"URL": CORE_CONTEXT_URL, "localId": "core", "kind": CACHED}]
    for url in cache.hosted():
        out.append({"URL": url, "localId": url.rsplit("/", 1)[-1], "kind": HOSTED})
    for url in cache.cached():
        out.append({"URL": url, "localId": _local_id(url), "kind": CACHED})
    return out


def _local_id(url: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, url))


async def list_contexts(request: Request) -> Response:
    """GET /jsonldContexts (details=true, kind=Hosted|Cached|ImplicitlyCreated)."""
    params = params_of(request)
    negotiate(request)
    kind = params.get("kind")
    if kind is not None and kind not in (HOSTED, CACHED, IMPLICIT):
        raise BadRequestData(f"unknown kind {kind!r}")
    entries = [e for e in _entries(request) if kind is None or e["kind"] == kind]
    if params.get("details") == "true":
        return plain_json(entries)
    return plain_json([e["URL"] for e in entries])


def _find(request: Request, cid: str) -> tuple[str, Any, str]:
    cache = _cache(request)
    if cid == "core" or cid == CORE_CONTEXT_URL:
        return CORE_CONTEXT_URL, CORE_CONTEXT, CACHED
    for url, doc in cache.hosted().items():
        if url.rsplit("/", 1)[-1] == cid or url == cid:
            return url, doc, HOSTED
    for url, doc in cache.cached().items():
        if _local_id(url) == cid or url == cid:
            return url, doc, CACHED
    raise ResourceNotFound(f"no @context {cid}")


async def get_context(request: Request) -> Response:
    """GET /jsonldContexts/{id}: the document (details=true: its metadata)."""
    params = params_of(request)
    negotiate(request)
    url, doc, kind = _find(request, request.path_params["cid"])
    if params.get("details") == "true":
        return plain_json({"URL": url, "localId": request.path_params["cid"], "kind": kind})
    return Response(orjson.dumps(doc), media_type="application/ld+json")


async def add_context(request: Request) -> Response:
    """POST /jsonldContexts: host a context; answers with its URL."""
    body, _ = await read_body(request)
    if not isinstance(body, dict) or "@context" not in body:
        raise BadRequestData("a hosted context must be an object with an @context member")
    spec = body["@context"]
    if not isinstance(spec, dict | list | str):
        raise BadRequestData("@context must be an object, a list or a URL")
    cid = str(uuid.uuid4())
    url = _own_url(request, cid)
    cache = _cache(request)
    await cache.prefetch(spec)
    cache.compile(spec)
    cache.host(url, {"@context": spec})
    request.app.state.store.put_context(url, {"@context": spec}, HOSTED)
    return Response(status_code=201, headers={"Location": url})


async def delete_context(request: Request) -> Response:
    """DELETE /jsonldContexts/{id} (reload=true refetches a cached one)."""
    params = params_of(request)
    url, _, kind = _find(request, request.path_params["cid"])
    if url == CORE_CONTEXT_URL:
        raise BadRequestData("the core context cannot be deleted")
    reload = params.get("reload")
    if reload not in (None, "true", "false"):
        raise BadRequestData("reload must be true or false")
    cache = _cache(request)
    if reload == "true":
        if kind == HOSTED:
            raise BadRequestData("a hosted context cannot be reloaded")
        cache.forget(url)
        await cache.prefetch(url)
        return Response(status_code=204)
    cache.forget(url)
    request.app.state.store.delete_context(url)
    return Response(status_code=204)
