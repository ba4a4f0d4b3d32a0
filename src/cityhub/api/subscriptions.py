"""/subscriptions (clause 5.8) and /csourceSubscriptions (5.11): stored, validated
subscriptions, handed to the notifier (``notify/``) after every write.

The request helpers at the top (tenant check, ids, paging) are shared with the
/csourceRegistrations routes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cityhub.api.contexts import implicit_context
from cityhub.api.http import (
    BASE,
    MERGE_PATCH,
    Ctx,
    add_page_links,
    context_of,
    contexts,
    created,
    json_response,
    no_content,
    params_of,
    read_body,
    tenant_of,
)
from cityhub.ngsild import params as P
from cityhub.ngsild import subscriptions as S
from cityhub.ngsild.context import is_compound
from cityhub.ngsild.csource_subscriptions import check_csource
from cityhub.ngsild.entity import check_uri
from cityhub.ngsild.entity_subscriptions import check_entity
from cityhub.ngsild.errors import (
    AlreadyExists,
    MethodNotAllowed,
    NonexistentTenant,
    OperationNotSupported,
    ResourceNotFound,
    shown,
)
from cityhub.notify.subscription import subscription_contexts

Endpoint = Callable[[Request], Awaitable[Response]]


# -- shared request helpers ---------------------------------------------------------------------
def store(request: Request) -> Any:
    """The app's store (resource_* methods)."""
    return request.app.state.store


def require_tenant(request: Request, tenant: str) -> None:
    """Reads and changes need a tenant that has stored something (entities or resources)."""
    if tenant and not store(request).has_tenant(tenant):
        raise NonexistentTenant(f"tenant {shown(tenant)} does not exist")


def path_id(request: Request, what: str) -> str:
    """The resource id in the path (it may hold '/'), which must be an absolute URI.

    Without one the path names the collection, which has no such method: 405.
    """
    rid = request.path_params["rid"]
    if not rid:
        raise MethodNotAllowed(f"{request.method} needs a {what} in the path")
    return check_uri(rid, what)


def public_base(request: Request) -> str:
    """The hub's URL as this request reached it: the Link of a notification names a context
    the hub serves under it (the bind address, 0.0.0.0 under --host 0.0.0.0, is no URL a
    receiver can fetch)."""
    return str(request.base_url).rstrip("/")


def within_limit(request: Request, kind: str, tenant: str) -> None:
    """A tenant holds at most CITYHUB_MAX_SUBSCRIPTIONS of a kind: 3,000 were made in 21 s,
    and one change then opened a connection to each endpoint (decision 036); and all tenants
    together at most CITYHUB_MAX_SUBSCRIPTIONS_TOTAL, since any request makes a new tenant."""
    settings = request.app.state.settings
    most = settings.max_subscriptions
    _, held = store(request).resource_list(kind, tenant, 0)
    if held >= most:
        raise OperationNotSupported(
            f"this tenant holds {held} {kind}s, the most it may "
            f"(CITYHUB_MAX_SUBSCRIPTIONS={most}); delete one first"
        )
    most = settings.max_subscriptions_total
    held = store(request).resource_count_all(kind)
    if held >= most:
        raise OperationNotSupported(
            f"the hub holds {held} {kind}s over all tenants, the most it may "
            f"(CITYHUB_MAX_SUBSCRIPTIONS_TOTAL={most}); delete one first"
        )


def new_id(type_name: str) -> str:
    """A generated id: urn:ngsi-ld:<Type>:<uuid4>."""
    return f"urn:ngsi-ld:{type_name}:{uuid.uuid4()}"


def sys_attrs(params: dict[str, str]) -> bool:
    """Whether options=sysAttrs was asked (other options are validated, then ignored)."""
    return "sysAttrs" in P.options(params)


def page(params: dict[str, str]) -> tuple[int, int, bool]:
    """limit, offset and count of a list request."""
    limit = P.page_limit(params)
    offset = P.integer(params, "offset", 0, 0, 2**31)
    count = P.flag(params, "count") or "count" in P.options(params)
    return limit, offset, count


def paged_response(
    ctx: Ctx,
    path: str,
    params: dict[str, str],
    items: list[Any],
    total: int,
    limit: int,
    offset: int,
    count: bool,
) -> Response:
    """A page of rendered resources, with NGSILD-Results-Count and prev/next Link headers."""
    headers = {"NGSILD-Results-Count": str(total)} if count else {}
    resp = json_response(ctx, items, headers=headers)
    add_page_links(resp, BASE + path, params, limit, offset, offset + limit < total)
    return resp


def collection(path: str, endpoint: Endpoint, methods: list[str]) -> list[BaseRoute]:
    """A collection route, with and without a trailing slash."""
    return [
        Route(BASE + path, endpoint, methods=methods),
        Route(BASE + path + "/", endpoint, methods=methods),
    ]


def resource_routes(
    path: str,
    create: Endpoint,
    query: Endpoint,
    retrieve: Endpoint,
    update: Endpoint,
    delete: Endpoint,
) -> list[BaseRoute]:
    """The five routes of a stored NGSI-LD resource kind (ids may hold '/')."""
    return [
        *collection(path, create, ["POST"]),
        *collection(path, query, ["GET"]),
        Route(BASE + path + "/{rid:path}", retrieve, methods=["GET"]),
        Route(BASE + path + "/{rid:path}", update, methods=["PATCH"]),
        Route(BASE + path + "/{rid:path}", delete, methods=["DELETE"]),
    ]


async def fetch_resource(request: Request, kind: str, what: str, noun: str) -> tuple[Any, Any]:
    """(request context, stored document) of GET /{kind}/{id}, or ResourceNotFound."""
    ctx = await context_of(request)
    rid = path_id(request, what)
    require_tenant(request, ctx.tenant)
    doc = store(request).resource_get(kind, ctx.tenant, rid)
    if doc is None:
        raise ResourceNotFound(f"{noun} {rid} does not exist")
    return ctx, doc


def delete_resource(request: Request, kind: str, what: str, noun: str) -> Response:
    """DELETE /{kind}/{id}: 204, or ResourceNotFound."""
    params_of(request)
    tenant = tenant_of(request, must_exist=False)
    rid = path_id(request, what)
    require_tenant(request, tenant)
    if not store(request).resource_delete(kind, tenant, rid):
        raise ResourceNotFound(f"{noun} {rid} does not exist")
    return no_content()


# -- the subscription resources ------------------------------------------------------------------
def _crud(kind: str, path: str, *, csource: bool) -> list[BaseRoute]:
    """Create, query, retrieve, update and delete routes for one kind of subscription."""
    what = "subscription id"

    async def create(request: Request) -> Response:
        params_of(request)
        body, media = await read_body(request)
        ctx = await context_of(request, body, media)
        rid = S.body_id(body) or new_id(S.SUBSCRIPTION)
        doc = S.new_subscription(body, ctx.tm, ctx.spec, rid)
        if csource:
            check_csource(doc)
        else:
            check_entity(doc)
        doc[S.BASE_URL] = public_base(request)
        if "jsonldContext" in doc:
            await contexts(request).prefetch(doc["jsonldContext"])
        elif is_compound(ctx.spec):
            # one URL names the @context notifications use: an ImplicitlyCreated one (5.13)
            doc["jsonldContext"] = implicit_context(request, ctx.spec)
        within_limit(request, kind, ctx.tenant)
        if not store(request).resource_create(kind, ctx.tenant, rid, doc):
            raise AlreadyExists(f"subscription {rid} already exists")
        await changed(request, ctx.tenant, rid)
        return created(path, rid)

    async def query(request: Request) -> Response:
        params = params_of(request)
        ctx = await context_of(request)
        require_tenant(request, ctx.tenant)
        limit, offset, count = page(params)
        show_sys = sys_attrs(params)
        docs, total = store(request).resource_list(kind, ctx.tenant, limit, offset)
        items = [
            S.render_subscription(
                live(request, ctx.tenant, d), ctx.tm, csource=csource, sys_attrs=show_sys
            )
            for d in docs
        ]
        return paged_response(ctx, path, params, items, total, limit, offset, count)

    async def retrieve(request: Request) -> Response:
        params = params_of(request)
        show_sys = sys_attrs(params)
        ctx, doc = await fetch_resource(request, kind, what, "subscription")
        doc = live(request, ctx.tenant, doc)
        return json_response(
            ctx, S.render_subscription(doc, ctx.tm, csource=csource, sys_attrs=show_sys)
        )

    async def update(request: Request) -> Response:
        params_of(request)
        body, media = await read_body(request, patch=True)
        ctx = await context_of(request, body, media)
        rid = path_id(request, what)
        require_tenant(request, ctx.tenant)
        members = S.patch_members(body, ctx.tm, rid, merge_patch=media == MERGE_PATCH)
        missing = ResourceNotFound(f"subscription {rid} does not exist")
        old = store(request).resource_get(kind, ctx.tenant, rid)
        if old is None:
            raise missing  # before fetching a context it would not use
        # every @context the updated subscription compiles with must be at hand (503 if
        # not): a 204 the notifier cannot take up left it notifying as before
        patched = S.apply_patch(old, members, ctx.spec)
        if csource:
            check_csource(patched)
        else:  # what the fragment gives: one stored before the check can still be changed
            check_entity({k: v for k, v in members.items() if v is not None})
        for spec in subscription_contexts(patched):
            if spec is not None:
                await contexts(request).prefetch(spec, count=False)
        base = public_base(request)
        updated = store(request).resource_update(
            kind,
            ctx.tenant,
            rid,
            lambda old: {**S.apply_patch(old, members, ctx.spec), S.BASE_URL: base},
        )
        if updated is None:
            raise missing
        await changed(request, ctx.tenant, rid)
        return no_content()

    async def delete(request: Request) -> Response:
        response = delete_resource(request, kind, what, "subscription")
        await changed(request, tenant_of(request, must_exist=False), path_id(request, what))
        return response

    def notifier(request: Request) -> Any:
        """The part of the notifier that keeps this kind of subscription."""
        entities = request.app.state.notifier
        return entities.csource if csource else entities

    async def changed(request: Request, tenant: str, rid: str) -> None:
        """Tell the notifier (a csourceSubscription then gets the registrations it matches)."""
        await notifier(request).refresh(tenant, rid)

    def live(request: Request, tenant: str, doc: Any) -> Any:
        """The stored subscription with its current delivery status."""
        return notifier(request).status(tenant, doc)

    return resource_routes(path, create, query, retrieve, update, delete)


SUBSCRIPTIONS = "subscription"
CSOURCE_SUBSCRIPTIONS = "csourceSubscription"


def routes() -> list[BaseRoute]:
    """/subscriptions and /csourceSubscriptions."""
    return _crud(SUBSCRIPTIONS, "/subscriptions", csource=False) + _crud(
        CSOURCE_SUBSCRIPTIONS, "/csourceSubscriptions", csource=True
    )
