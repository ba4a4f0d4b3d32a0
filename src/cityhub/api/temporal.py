"""/temporal routes."""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cityhub.api.commit import grouped
from cityhub.api.http import (
    Ctx,
    add_interval_link,
    add_page_links,
    context_of,
    created,
    delete_attribute_via,
    json_response,
    no_content,
    params_of,
    read_body,
)
from cityhub.api.query_body import merged_params
from cityhub.api.readers import off_loop, off_loop_for_write
from cityhub.api.router import ENCODED
from cityhub.ngsild.entity import check_path_id
from cityhub.ngsild.errors import MethodNotAllowed, NgsiLdError, storage_full
from cityhub.ngsild.temporal import TemporalResult, TemporalService
from cityhub.store.base import QueryTimeout, StoreBusy, StoreFull


def service(request: Request) -> TemporalService:
    """The app's temporal service."""
    svc: TemporalService = request.app.state.temporal
    return svc


def _respond(
    ctx: Ctx, result: TemporalResult, body: Any, request: Request | None = None
) -> Response:
    """200, or 206 with a Content-Range when instances were cut (temporal pagination), and
    a Link to the next page when the `request` has a URL to link (a GET)."""
    headers: dict[str, str] = {}
    if result.total is not None:
        headers["NGSILD-Results-Count"] = str(result.total)
    if result.content_range is None:
        return json_response(ctx, body, headers=headers)
    headers["Content-Range"] = result.content_range
    resp = json_response(ctx, body, status=206, headers=headers)
    if request is not None and result.next_page is not None:
        rel, window = result.next_page
        add_interval_link(resp, request.url.path, params_of(request), rel, window)
    return resp


def _eid(request: Request) -> str:
    return check_path_id(request.path_params["eid"], "eid" in request.scope.get(ENCODED, ()))


async def create(request: Request) -> Response:
    """POST /temporal/entities."""
    body, media = await read_body(request)
    ctx = await context_of(request, body, media)
    is_new = await grouped(request, service(request).create, ctx.tenant, body, ctx.tm)
    if is_new:
        return created("/temporal/entities", body["id"])
    return no_content()


async def query(request: Request) -> Response:
    """GET /temporal/entities, with prev and next Link headers as GET /entities has (a POST
    body has no URL to link)."""
    params = params_of(request)
    ctx = await context_of(request, must_exist=True)
    result = await off_loop(request, service(request).query, ctx.tenant, params, ctx.tm)
    resp = _respond(ctx, result, result.entities, request)
    if result.page is not None:
        limit, offset = result.page
        total = result.total  # without a count, a full page may have a next one
        more = len(result.entities) == limit if total is None else offset + limit < total
        add_page_links(resp, request.url.path, params, limit, offset, more)
    return resp


async def post_query(request: Request) -> Response:
    """POST /temporal/entityOperations/query."""
    body, media = await read_body(request)
    ctx = await context_of(request, body, media, must_exist=True)
    params = merged_params(params_of(request), body, temporal=True)
    result = await off_loop(
        request, service(request).query, ctx.tenant, params, ctx.tm, selectors=body.get("entities")
    )
    return _respond(ctx, result, result.entities)


async def get(request: Request) -> Response:
    """GET /temporal/entities/{id}."""
    params = params_of(request)
    ctx = await context_of(request, must_exist=True)
    result = await off_loop(
        request, service(request).query, ctx.tenant, params, ctx.tm, one_entity=_eid(request)
    )
    return _respond(ctx, result, result.entities[0], request)


async def delete(request: Request) -> Response:
    """DELETE /temporal/entities/{id} (the collection itself cannot be deleted: 405)."""
    if not request.path_params.get("eid"):
        raise MethodNotAllowed("DELETE /temporal/entities needs an entity id")
    ctx = await context_of(request, must_exist=True)
    eid, store = _eid(request), request.app.state.store
    # the unsent notifications it takes back are looked for first, on a reader thread: a
    # receiver's long backlog is then not scanned while every write waits (decision 095)
    with contextlib.suppress(QueryTimeout):  # past the read deadline: the write scans
        await off_loop_for_write(request, store.outbox_read_for_erasure, ctx.tenant, eid)
    try:
        rest = await grouped(request, service(request).delete, ctx.tenant, eid)
    finally:
        store.outbox_read_done(ctx.tenant, eid)
    if rest is not None:  # hidden already: its remaining rows go in the background
        request.app.state.eraser.later(rest)
    return no_content()


async def append(request: Request) -> Response:
    """POST /temporal/entities/{id}/attrs."""
    body, media = await read_body(request)
    ctx = await context_of(request, body, media, must_exist=True)
    await grouped(request, service(request).append, ctx.tenant, _eid(request), body, ctx.tm)
    return no_content()


async def delete_attr(request: Request) -> Response:
    """DELETE /temporal/entities/{id}/attrs/{attr}."""
    rest = await delete_attribute_via(request, service(request).delete_attribute, _eid(request))
    if rest is not None:  # answered once every instance is gone, the loop free between steps
        try:
            await request.app.state.eraser.finish(rest)
        except (StoreFull, StoreBusy) as exc:  # the job is stored: it ends without the client
            raise _begun(exc) from exc
    return no_content()


def _begun(exc: StoreFull | StoreBusy) -> NgsiLdError:
    """The 503 of an attribute DELETE held up after its job was stored: "nothing was stored"
    would be false, its instances are going (decision 040, addendum)."""
    begun = (
        "the DELETE has begun and will complete by itself: some instances are deleted, the "
        "rest go in the background once writes resume (repeating the DELETE is harmless)"
    )
    if isinstance(exc, StoreFull):
        return storage_full(begun)
    err = NgsiLdError(f"another process holds the database's write lock; {begun}")
    err.status = 503
    return err


async def modify_instance(request: Request) -> Response:
    """PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}."""
    body, media = await read_body(request, patch=True, one_entity=True)
    ctx = await context_of(request, body, media, must_exist=True)
    p = request.path_params
    await grouped(
        request,
        service(request).modify_instance,
        ctx.tenant,
        _eid(request),
        p["attr"],
        p["iid"],
        body,
        ctx.tm,
    )
    return no_content()


async def delete_instance(request: Request) -> Response:
    """DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}."""
    ctx = await context_of(request, must_exist=True)
    p = request.path_params
    await grouped(
        request,
        service(request).delete_instance,
        ctx.tenant,
        _eid(request),
        p["attr"],
        p["iid"],
        ctx.tm,
    )
    return no_content()
