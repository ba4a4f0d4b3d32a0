"""/csourceRegistrations (clauses 5.9 and 5.10): stored, validated context source
registrations and their discovery; every write is handed to the csourceSubscriptions
(``notify/csource.py``). Nothing is forwarded to a registered context source."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from cityhub.api.http import (
    context_of,
    created,
    json_response,
    no_content,
    params_of,
    read_body,
    tenant_of,
)
from cityhub.api.readers import off_loop
from cityhub.api.subscriptions import (
    delete_resource,
    fetch_resource,
    new_id,
    page,
    paged_response,
    path_id,
    require_tenant,
    resource_routes,
    store,
    sys_attrs,
)
from cityhub.ngsild import params as P
from cityhub.ngsild import registrations as R
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import check_name, check_uri
from cityhub.ngsild.errors import AlreadyExists, BadRequestData, ResourceNotFound
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.qlang import compile_regex, norm_datetime, parse_q
from cityhub.ngsild.query.scope import parse_scope
from cityhub.ngsild.query.typeexpr import parse_types
from cityhub.ngsild.registration_claims import RegistrationClaims

KIND = R.REGISTRATIONS
# The members whose change can make a registration claim what another one, or the hub, holds.
CLAIM_MEMBERS = ("mode", "information", "expiresAt")
PATH = "/csourceRegistrations"
WHAT = "registration id"


def csource(request: Request) -> Any:
    """The csourceSubscriptions' notifier, told about every registration write."""
    return request.app.state.notifier.csource


def claims(request: Request) -> RegistrationClaims:
    """What exclusive and redirect registrations claim (checked on every entity write too)."""
    held: RegistrationClaims = request.app.state.claims
    return held


def check_claims(request: Request, tenant: str, doc: dict[str, Any], tm: TermMap) -> None:
    """Conflict when a registration to be stored meets another's exclusive claim or data the
    hub holds (4.3.6.3, 5.9.2.4); read inside the registration's store group."""
    with store(request).write(tenant) as tx:
        claims(request).check_registration(tenant, doc, tx, tm.compact)


def registration_query(params: dict[str, str], tm: TermMap) -> R.RegistrationQuery:
    """The discovery query of GET /csourceRegistrations; it needs at least one filter."""
    ids = tuple(check_uri(i, "id") for i in P.csv(params.get("id"), "id")) or None
    id_pattern = params.get("idPattern")
    if id_pattern is not None:
        compile_regex(id_pattern)
    raw_type = params.get("type")
    types = ast.map_names(parse_types(raw_type), tm.expand) if raw_type is not None else None
    attrs = frozenset(tm.expand(check_name(a)) for a in P.csv(params.get("attrs"), "attrs")) or None
    q = ast.map_names(parse_q(params["q"]), tm.expand) if "q" in params else None
    csf = ast.map_names(parse_q(params["csf"], what="csf"), tm.expand) if "csf" in params else None
    geo = P.geo_param(params, tm)
    scope = parse_scope(params["scopeQ"]) if "scopeQ" in params else None
    timerel = params.get("timerel")
    time_at = end_time_at = None
    timeproperty = R.TIMEPROPERTIES.get(params.get("timeproperty", "observedAt"))
    if timeproperty is None:
        raise BadRequestData(f"timeproperty must be one of {', '.join(R.TIMEPROPERTIES)}")
    if timerel is not None or "timeAt" in params:
        if timerel not in ("before", "after", "between"):
            raise BadRequestData("timerel must be before, after or between")
        time_at = norm_datetime(params.get("timeAt", ""))
        if time_at is None:
            raise BadRequestData("timerel needs timeAt, an ISO 8601 DateTime")
        if timerel == "between":
            end_time_at = norm_datetime(params.get("endTimeAt", ""))
            if end_time_at is None or end_time_at <= time_at:
                raise BadRequestData("timerel=between needs an endTimeAt after timeAt")
    if not any((ids, id_pattern, types, attrs, q, csf, geo, scope)):
        raise BadRequestData(
            "a registration query needs at least one of id, idPattern, type, attrs, q, csf, "
            "geoQ or scopeQ"
        )
    return R.RegistrationQuery(
        ids=ids,
        id_pattern=id_pattern,
        types=types,
        attrs=attrs,
        q=q,
        csf=csf,
        geo=geo,
        scope=scope,
        timeproperty=timeproperty,
        timerel=timerel,
        time_at=time_at,
        end_time_at=end_time_at,
    )


async def create(request: Request) -> Response:
    """POST /csourceRegistrations."""
    params_of(request)
    body, media = await read_body(request)
    ctx = await context_of(request, body, media)
    rid = R.body_id(body) or new_id(R.REGISTRATION)
    doc = R.new_registration(body, ctx.tm, ctx.spec, rid)
    # the registration, its claims and its notifications commit together
    with claims(request).changing() as claiming, store(request).group():
        if not store(request).resource_create(KIND, ctx.tenant, rid, doc):
            raise AlreadyExists(f"registration {rid} already exists")
        check_claims(request, ctx.tenant, doc, ctx.tm)
        claiming.replace(ctx.tenant, None, doc)
        csource(request).registration_changed(ctx.tenant, None, doc)
    return created(PATH, rid)


async def query(request: Request) -> Response:
    """GET /csourceRegistrations: discovery by entities, attributes, q/csf, geo and time; a
    scan of the tenant's registrations in Python, so on a reader thread under the query
    deadline (decision 016; on the loop, 20,000 registrations held every request 0.6 s)."""
    params = params_of(request)
    ctx = await context_of(request)
    selection = registration_query(params, ctx.tm)
    limit, offset, count = page(params)
    show_sys = sys_attrs(params)
    require_tenant(request, ctx.tenant)

    def keep(doc: dict[str, Any]) -> bool:
        """Whether a stored registration answers the query."""
        return R.matches(doc, selection)

    found, total = await off_loop(
        request, store(request).resource_scan, KIND, ctx.tenant, keep, limit, offset
    )
    items = [R.render_registration(d, ctx.tm, sys_attrs=show_sys) for d in found]
    return paged_response(ctx, PATH, params, items, total, limit, offset, count)


async def retrieve(request: Request) -> Response:
    """GET /csourceRegistrations/{id}."""
    params = params_of(request)
    show_sys = sys_attrs(params)
    ctx, doc = await fetch_resource(request, KIND, WHAT, "registration")
    return json_response(ctx, R.render_registration(doc, ctx.tm, sys_attrs=show_sys))


async def update(request: Request) -> Response:
    """PATCH /csourceRegistrations/{id}: the fragment's members replace the stored ones."""
    params_of(request)
    body, media = await read_body(request, patch=True)
    ctx = await context_of(request, body, media)
    rid = path_id(request, WHAT)
    require_tenant(request, ctx.tenant)
    members, props = R.patch_members(body, ctx.tm, rid)
    before: list[Any] = []

    def change(old: Any) -> Any:
        """The patched registration; the old one is kept for its subscribers' comparison."""
        before.append(old)
        return R.apply_patch(old, members, props)

    with claims(request).changing() as claiming, store(request).group():
        changed = store(request).resource_update(KIND, ctx.tenant, rid, change)
        if changed is None:
            raise ResourceNotFound(f"registration {rid} does not exist")
        if any(key in members for key in CLAIM_MEMBERS):  # one stored before stays patchable
            check_claims(request, ctx.tenant, changed, ctx.tm)
        claiming.replace(ctx.tenant, before[0], changed)
        csource(request).registration_changed(ctx.tenant, before[0], changed)
    return no_content()


async def delete(request: Request) -> Response:
    """DELETE /csourceRegistrations/{id}."""
    params_of(request)
    tenant = tenant_of(request, must_exist=False)
    with claims(request).changing() as claiming, store(request).group():
        before = store(request).resource_get(KIND, tenant, path_id(request, WHAT))
        response = delete_resource(request, KIND, WHAT, "registration")
        claiming.replace(tenant, before, None)
        csource(request).registration_changed(tenant, before, None)
    return response


def routes() -> list[BaseRoute]:
    """/csourceRegistrations."""
    return resource_routes(PATH, create, query, retrieve, update, delete)


__all__ = ["registration_query", "routes"]
