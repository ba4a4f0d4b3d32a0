"""/types and /attributes: what kinds of data the hub holds."""

from __future__ import annotations

import uuid
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from cityhub.api.http import context_of, json_response, params_of
from cityhub.api.readers import off_loop
from cityhub.ngsild import params as P
from cityhub.ngsild.entity import check_name
from cityhub.ngsild.errors import ResourceNotFound

T = TypeVar("T")


async def list_types(request: Request) -> Response:
    """GET /types (details=true gives EntityType objects)."""
    params = params_of(request)
    ctx = await context_of(request, must_exist=True)
    tm = ctx.tm
    details = P.flag(params, "details")
    P.flag(params, "local")  # every type here is local
    rows = await off_loop(request, request.app.state.store.entity_types, ctx.tenant, names=details)
    rows = _page(rows, params)
    if details:
        body = [
            {
                "id": iri,
                "type": "EntityType",
                "typeName": tm.compact(iri),
                "attributeNames": [tm.compact(a) for a in attrs],
            }
            for iri, attrs, _ in rows
        ]
        return json_response(ctx, body)
    return json_response(
        ctx,
        {
            "id": f"urn:ngsi-ld:EntityTypeList:{uuid.uuid4()}",
            "type": "EntityTypeList",
            "typeList": [tm.compact(iri) for iri, _, _ in rows],
        },
    )


def _page(items: list[T], params: dict[str, str]) -> list[T]:
    """limit and offset over the names in order (accepted, they were ignored); without a
    limit every name, as before."""
    offset = P.integer(params, "offset", 0, 0, 2**31)
    limit = P.integer(params, "limit", len(items), 0, 2**31)
    return items[offset : offset + limit]


async def get_type(request: Request) -> Response:
    """GET /types/{type}: EntityTypeInfo with attribute details."""
    P.flag(params_of(request), "local")  # an unknown parameter was answered 200
    ctx = await context_of(request, must_exist=True)
    tm = ctx.tm
    iri = tm.expand(check_name(request.path_params["type"], "entity type"))
    store = request.app.state.store
    info = await off_loop(request, store.type_info, ctx.tenant, iri)
    if info is None:
        raise ResourceNotFound(f"no entity of type {request.path_params['type']}")
    count, found = info
    return json_response(
        ctx,
        {
            "id": iri,
            "type": "EntityTypeInfo",
            "typeName": tm.compact(iri),
            "entityCount": count,
            "attributeDetails": [
                {
                    "id": name,
                    "type": "Attribute",
                    "attributeName": tm.compact(name),
                    "attributeTypes": kinds,
                }
                for name, kinds in found
            ],
        },
    )


def _attribute(
    tm: object, name: str, kinds: list[str], types: list[str], count: int
) -> dict[str, object]:
    compact = tm.compact  # type: ignore[attr-defined]
    return {
        "id": name,
        "type": "Attribute",
        "attributeName": compact(name),
        "attributeCount": count,
        "attributeTypes": kinds,
        "typeNames": [compact(t) for t in types],
    }


async def list_attributes(request: Request) -> Response:
    """GET /attributes (details=true gives Attribute objects)."""
    params = params_of(request)
    ctx = await context_of(request, must_exist=True)
    store = request.app.state.store
    P.flag(params, "local")  # every attribute here is local
    if P.flag(params, "details"):
        found = await off_loop(request, store.attribute_stats, ctx.tenant)
        body = [_attribute(ctx.tm, *r) for r in _page(found, params)]
        for item in body:  # the list form carries names and types only (5.7.8)
            item.pop("attributeCount")
            item.pop("attributeTypes")
        return json_response(ctx, body)
    names = _page(await off_loop(request, store.attribute_names, ctx.tenant), params)
    return json_response(
        ctx,
        {
            "id": f"urn:ngsi-ld:AttributeList:{uuid.uuid4()}",
            "type": "AttributeList",
            "attributeList": [ctx.tm.compact(n) for n in names],
        },
    )


async def get_attribute(request: Request) -> Response:
    """GET /attributes/{attr}."""
    P.flag(params_of(request), "local")  # an unknown parameter was answered 200
    ctx = await context_of(request, must_exist=True)
    iri = ctx.tm.expand(check_name(request.path_params["attr"]))
    info = await off_loop(request, request.app.state.store.attribute_info, ctx.tenant, iri)
    if info is None:
        raise ResourceNotFound(f"no attribute {request.path_params['attr']}")
    return json_response(ctx, _attribute(ctx.tm, iri, *info))
