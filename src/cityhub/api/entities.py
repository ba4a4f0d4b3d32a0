"""/entities and /entityOperations routes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cityhub.api.commit import grouped, grouped_create, grouped_slices, purge_slices
from cityhub.api.http import (
    GEOJSON,
    JSON,
    JSONLD,
    Ctx,
    add_page_links,
    batch_context,
    context_of,
    created,
    delete_attribute_via,
    encode,
    encoded_response,
    json_response,
    no_content,
    params_of,
    plain_json,
    read_body,
    response_context,
)
from cityhub.api.query_body import merged_params
from cityhub.api.read_memo import ReadMemo
from cityhub.api.readers import off_loop, off_loop_for_write
from cityhub.api.router import ENCODED
from cityhub.gcpause import collector_paused
from cityhub.ngsild import params as P
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import check_path_id, expand_entity, expand_name
from cityhub.ngsild.errors import BadRequestData, ClaimedAttribute, NgsiLdError, ResourceNotFound
from cityhub.ngsild.geojson import Geometries, collection, feature, stored_geometries
from cityhub.ngsild.linked import listed_once, render_joined
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.ast import TypeNode
from cityhub.ngsild.query.evaluate import matches_types
from cityhub.ngsild.query.typeexpr import parse_types
from cityhub.ngsild.render import DEFAULT, render_entity
from cityhub.ngsild.service import AttrOutcome, BatchOutcome, EntityService
from cityhub.store.base import EntityQuery

T = TypeVar("T")

GET_TYPES = (JSON, JSONLD, GEOJSON)


def service(request: Request) -> EntityService:
    """The app's entity service."""
    svc: EntityService = request.app.state.entities
    return svc


def _eid(request: Request) -> str:
    return check_path_id(request.path_params["eid"], "eid" in request.scope.get(ENCODED, ()))


@dataclass
class _Rendered:
    """Rendered entities, each with the id it is stored under (a projection may hide it),
    the stored documents queried, and (GeoJSON with join=flat) the geometries of the linked
    ones: a Feature's geometry is read from the stored entity."""

    entities: list[Any]
    ids: list[str]
    docs: list[dict[str, Any]]
    linked: Geometries


def _joins(params: dict[str, str]) -> bool:
    """Whether a read joins linked entities: they are read by statements after the entity's
    own (or the page's), which in autocommit each saw the database as it was then (an entity
    beside linked entities a write had changed since), so such a read runs in one snapshot
    (store.read_snapshot); one that does not join is one statement and needs none."""
    join, level = P.join_options(params)
    return join is not None and level > 0


def _render(
    request: Request, ctx: Ctx, docs: list[dict[str, Any]], params: dict[str, str]
) -> _Rendered:
    """Render entities with projections and linked-entity joins; flat joins append targets."""
    if not params:
        rendered = [render_entity(d, ctx.tm, DEFAULT) for d in docs]
        return _Rendered(rendered, [d["id"] for d in docs], docs, {})
    opts = P.render_options(params, ctx.tm)
    pick, omit = P.projections(params)
    join, level = P.join_options(params)
    store = request.app.state.store
    linked: Geometries = {}
    # a flat join's entities become Features: their geometries are kept, not their documents
    # (holding the documents of a 10,000-entity join doubled its time: 1.3 s -> 2.5 s)
    iri = _geometry_iri(ctx, params) if ctx.accept == GEOJSON and join == "flat" else None

    def fetch(ids: list[str]) -> dict[str, dict[str, Any]]:
        found, _ = store.query(
            ctx.tenant, EntityQuery(ids=tuple(dict.fromkeys(ids)), limit=len(ids))
        )
        if iri is not None:  # datasetId picks the queried entities' instances only
            linked.update(stored_geometries(found, iri, None))
        return {d["id"]: d for d in found}

    rendered, extra = render_joined(docs, ctx.tm, opts, pick, omit, join, level, fetch)
    # a projection that leaves nothing drops the entity (the ETSI suite, 019_17_01); a pick
    # of attributes alone already selected in the query (params._picked_attributes)
    pairs = [(d["id"], r) for d, r in zip(docs, rendered, strict=True) if r]
    if join == "flat":  # linked entities always name themselves; each is listed once
        pairs = listed_once(pairs + [(e["id"], e) for e in extra])
    return _Rendered([r for _, r in pairs], [i for i, _ in pairs], docs, linked)


def _geometry_iri(ctx: Ctx, params: dict[str, str]) -> str:
    """The attribute whose GeoProperty value is a Feature's geometry."""
    return expand_name(params.get("geometryProperty", "location"), ctx.tm, "geometryProperty")


def _geo_body(ctx: Ctx, params: dict[str, str], out: _Rendered, one: bool) -> Any:
    """A Feature (one) or FeatureCollection; the geometries come from the stored documents,
    by stored id: what the rendering shows does not change them."""
    iri = _geometry_iri(ctx, params)
    prop = ctx.tm.compact(iri)  # a full IRI or another prefix names the same attribute
    stored = {
        **out.linked,
        **stored_geometries(out.docs, iri, P.dataset_ids(params.get("datasetId"))),
    }
    context = response_context(ctx)
    if one:
        return feature(out.entities[0], prop, context, stored, out.ids[0])
    return collection(out.entities, prop, context, stored, out.ids)


def _geometry_property_fits(ctx: Ctx, params: dict[str, str]) -> None:
    """geometryProperty only shapes a GeoJSON answer: with any other Accept it is a 400
    (5.7.1.4, 5.7.2.4), not a parameter silently ignored."""
    if "geometryProperty" in params and ctx.accept != GEOJSON:
        raise BadRequestData("geometryProperty needs Accept: application/geo+json")


async def create_entity(request: Request) -> Response:
    """POST /entities."""
    params_of(request)  # refuses unknown parameters
    body, media = await read_body(request, one_entity=True)
    ctx = await context_of(request, body, media)
    eid = await grouped_create(request, ctx.tenant, expand_entity(body, ctx.tm))
    return created("/entities", eid)


async def query_entities(request: Request) -> Response:
    """GET /entities, with prev and next Link headers (a POST body has no URL to link)."""
    params = params_of(request)
    ctx = await context_of(request, accept=GET_TYPES, must_exist=True)
    _geometry_property_fits(ctx, params)
    return await off_loop(request, _query, request, ctx, params, None, True)


def _query(
    request: Request,
    ctx: Ctx,
    params: dict[str, str],
    selectors: Any = None,
    links: bool = False,
) -> Response:
    """Run, render and encode a query (on a reader thread)."""
    query = P.entity_query(params, ctx.tm, selectors=selectors)
    # without a count, one row past the page tells whether a next page exists: a full last
    # page linked `next` to an empty one (5.5.9.1: the last page gives only `prev`)
    if "join" in params and _joins(params):
        with request.app.state.store.read_snapshot():
            return _answer(request, ctx, params, query, links)
    return _answer(request, ctx, params, query, links)


def _answer(
    request: Request, ctx: Ctx, params: dict[str, str], query: EntityQuery, links: bool
) -> Response:
    """_query's page, rendered and encoded."""
    peek = links and not query.count and query.limit > 0
    docs, total = service(request).query(
        ctx.tenant, replace(query, limit=query.limit + 1) if peek else query
    )
    more = len(docs) > query.limit if peek else False
    docs = docs[: query.limit]
    out = _render(request, ctx, docs, params)
    headers = {"NGSILD-Results-Count": str(total)} if total is not None else {}
    if ctx.accept == GEOJSON:
        body: Any = _geo_body(ctx, params, out, one=False)
        resp = json_response(ctx, body, headers=headers, entities=False)
    else:
        resp = json_response(ctx, out.entities, headers=headers)
    if links:
        if total is not None:
            more = query.offset + query.limit < total
        add_page_links(resp, request.url.path, params, query.limit, query.offset, more)
    return resp


async def post_query(request: Request) -> Response:
    """POST /entityOperations/query: the query in a body."""
    body, media = await read_body(request)
    ctx = await context_of(request, body, media, accept=GET_TYPES, must_exist=True)
    params = merged_params(params_of(request), body)
    P.options(params, P.READ_OPTIONS)  # the body's options too
    _geometry_property_fits(ctx, params)
    return await off_loop(request, _query, request, ctx, params, body.get("entities"))


async def purge_entities(request: Request) -> Response:
    """DELETE /entities: purge what a query selects (drop= / keep= only trim attributes)."""
    params = params_of(request)
    ctx = await context_of(request, must_exist=True)
    local = P.flag(params, "local")
    selection = {k: v for k, v in params.items() if k not in ("drop", "keep", "local")}
    query = P.entity_query(selection, ctx.tm, require_filter=not local, ids_filter=True)
    query = replace(query, limit=2**31, offset=0)
    drop = {ctx.tm.expand(a) for a in P.csv(params.get("drop"), "drop")}
    keep = {ctx.tm.expand(a) for a in P.csv(params.get("keep"), "keep")}
    if drop and keep:
        raise BadRequestData("drop and keep cannot be combined")
    store = service(request).store
    docs, _ = await off_loop_for_write(request, store.query, ctx.tenant, query)
    await purge_slices(request, ctx.tenant, [d["id"] for d in docs], drop, keep, query)
    return no_content()


async def get_entity(request: Request) -> Response:
    """GET /entities/{id}."""
    if not request.path_params["eid"]:
        return await query_entities(request)
    params = params_of(request)
    ctx = await context_of(request, accept=GET_TYPES, must_exist=True)
    eid = _eid(request)
    _geometry_property_fits(ctx, params)
    if not params and ctx.accept != GEOJSON:
        return _read_plain(request, ctx, eid)
    join, level = None, 0
    if params:  # validate before looking anything up
        P.flag(params, "local")  # (every entity here is local)
        P.render_options(params, ctx.tm)
        P.projections(params)
        join, level = P.join_options(params)
    if join and level > 0:  # up to MAX_LINKED fetches and renders: not on the loop
        return await off_loop(request, _retrieve, request, ctx, eid, params)
    return _retrieve(request, ctx, eid, params)


def _retrieve(request: Request, ctx: Ctx, eid: str, params: dict[str, str]) -> Response:
    """Read, render and encode one entity (on a reader thread when it joins others)."""
    if "join" in params and _joins(params):
        with request.app.state.store.read_snapshot():
            return _entity(request, ctx, eid, params)
    return _entity(request, ctx, eid, params)


def _entity(request: Request, ctx: Ctx, eid: str, params: dict[str, str]) -> Response:
    """_retrieve's entity, rendered and encoded."""
    doc = service(request).get(ctx.tenant, eid)
    types = _types(request, ctx)
    if types is not None and not matches_types(types, doc):
        raise ResourceNotFound(f"entity {eid} is not of type {params['type']}")
    if params.get("attrs") and not any(
        ctx.tm.expand(a) in doc["attrs"] for a in P.csv(params["attrs"], "attrs")
    ):
        raise ResourceNotFound(f"entity {eid} has none of the attributes {params['attrs']}")
    out = _render(request, ctx, [doc], params)
    if not out.entities:  # the ETSI suite, 018_19_01 and 018_19_02
        raise ResourceNotFound(f"nothing of entity {eid} is left after pick/omit")
    many = len(out.entities) > 1  # a flat join lists the linked entities beside it
    if ctx.accept == GEOJSON:
        return json_response(ctx, _geo_body(ctx, params, out, one=not many), entities=False)
    return json_response(ctx, out.entities if many else out.entities[0])


async def plain_read(request: Request, eid: str) -> Response | None:
    """GET /entities/{eid} with no query, before routing (api/plain_read.py): get_entity's
    answer, or None for a GeoJSON one."""
    ctx = await context_of(request, accept=GET_TYPES, must_exist=True)
    if ctx.accept == GEOJSON:
        return None
    return _read_plain(request, ctx, check_path_id(eid))


def _read_plain(request: Request, ctx: Ctx, eid: str) -> Response:
    """GET /entities/{id} without parameters (most reads): the body rendered from the same
    stored text is reused (api/read_memo.py)."""
    text = service(request).get_json(ctx.tenant, eid)
    memo: ReadMemo = request.app.state.read_memo
    key = (ctx.tenant, eid, ctx.accept)
    raw = memo.get(key, text, ctx.tm)
    if raw is None:
        raw = encode(ctx, render_entity(orjson.loads(text), ctx.tm, DEFAULT))
        memo.put(key, text, ctx.tm, raw)
    return encoded_response(ctx, raw)


async def replace_entity(request: Request) -> Response:
    """PUT /entities/{id}."""
    params_of(request)  # refuses unknown parameters
    body, media = await read_body(request, one_entity=True)
    ctx = await context_of(request, body, media, must_exist=True)
    replace_fn = _selected(request, ctx, service(request).replace)
    await grouped(request, replace_fn, ctx.tenant, _eid(request), body, ctx.tm)
    return no_content()


async def merge_entity(request: Request) -> Response:
    """PATCH /entities/{id}; options/format say how the body is written."""
    form = P.merge_form(params_of(request))
    body, media = await read_body(request, patch=True, one_entity=True)
    ctx = await context_of(request, body, media, must_exist=True)
    merge_fn = _selected(request, ctx, service(request).merge)
    await grouped(request, merge_fn, ctx.tenant, _eid(request), body, ctx.tm, form)
    return no_content()


async def delete_entity(request: Request) -> Response:
    """DELETE /entities/{id}."""
    eid = _eid(request)  # first: `<id>/attrs/` is a 405, whatever the parameters
    params_of(request)  # refuses unknown parameters
    ctx = await context_of(request, must_exist=True)
    await grouped(request, _selected(request, ctx, service(request).delete), ctx.tenant, eid)
    return no_content()


def _attr_result(out: AttrOutcome) -> Response:
    if not out.not_updated:
        return no_content()
    return plain_json(
        {
            "updated": out.updated,
            "notUpdated": [{"attributeName": n, "reason": r} for n, r in out.not_updated],
        },
        status=207,
    )


async def append_attrs(request: Request) -> Response:
    """POST /entities/{id}/attrs."""
    params = params_of(request)
    body, media = await read_body(request, one_entity=True)
    ctx = await context_of(request, body, media, must_exist=True)
    no_overwrite = "noOverwrite" in P.options(params)
    append_fn = _selected(request, ctx, service(request).append)
    out = await grouped(request, append_fn, ctx.tenant, _eid(request), body, ctx.tm, no_overwrite)
    return _attr_result(out)


async def update_attrs(request: Request) -> Response:
    """PATCH /entities/{id}/attrs."""
    params_of(request)  # refuses unknown parameters
    body, media = await read_body(request, patch=True, one_entity=True)
    ctx = await context_of(request, body, media, must_exist=True)
    update_fn = _selected(request, ctx, service(request).update)
    out = await grouped(request, update_fn, ctx.tenant, _eid(request), body, ctx.tm)
    return _attr_result(out)


async def _write_attr(request: Request, method: Any, *, patch: bool) -> Response:
    """PATCH or PUT of one attribute: the same parsing, a different service method."""
    params_of(request)  # refuses unknown parameters
    body, media = await read_body(request, patch=patch, one_entity=True)
    ctx = await context_of(request, body, media, must_exist=True)
    attr = request.path_params["attr"]
    method = _selected(request, ctx, method)
    await grouped(request, method, ctx.tenant, _eid(request), attr, body, ctx.tm)
    return no_content()


async def patch_attr(request: Request) -> Response:
    """PATCH /entities/{id}/attrs/{attr}."""
    return await _write_attr(request, service(request).patch_attribute, patch=True)


async def replace_attr(request: Request) -> Response:
    """PUT /entities/{id}/attrs/{attr}."""
    return await _write_attr(request, service(request).replace_attribute, patch=False)


async def delete_attr(request: Request) -> Response:
    """DELETE /entities/{id}/attrs/{attr}; lang= deletes those strings of a LanguageProperty."""
    lang = P.check_lang(params_of(request).get("lang"))
    await delete_attribute_via(
        request,
        functools.partial(service(request).delete_attribute, lang=lang),
        _eid(request),
        lambda ctx, method: _selected(request, ctx, method),
    )
    return no_content()


def _types(request: Request, ctx: Ctx) -> TypeNode | None:
    """The `type` selector as an expanded type expression (`A,B`, `A;B`, `(A;B)|C`), as
    GET /entities reads it; None when not given."""
    raw = params_of(request).get("type")
    return None if raw is None else ast.map_names(parse_types(raw), ctx.tm.expand)


def _selected(request: Request, ctx: Ctx, method: Callable[..., T]) -> Callable[..., T]:
    """The service method, run only on an entity of a type the `type` selector names (a
    404 and nothing written otherwise); the check is part of the same group job."""
    types = _types(request, ctx)
    if types is None:
        return method
    check, named = service(request).check_type, params_of(request)["type"]

    def run(tenant: str, eid: str, *args: Any) -> T:
        check(tenant, eid, types, named)
        return method(tenant, eid, *args)

    return run


def _batch_result(
    out: BatchOutcome,
    ok_status: int,
    ok_body: Any = None,
    items: Any = None,
    terms: Callable[[Any], TermMap] | None = None,
) -> Response:
    """201/204 with ok_body, or the 207 BatchOperationResult; terms: each item's term map."""
    if not out.errors:
        if ok_body is None:
            return no_content()
        return plain_json(ok_body, status=ok_status)
    if terms is not None:
        _in_item_terms(out, items, terms)
    with collector_paused():  # two objects an error, all alive until encoded (as in batch)
        errors = [{"entityId": eid, "error": err.problem()} for eid, err in out.errors]
        return plain_json({"success": out.success, "errors": errors}, status=207)


def _in_item_terms(out: BatchOutcome, items: list[Any], terms: Callable[[Any], TermMap]) -> None:
    """Name each claimed attribute of a 409 as its item does: an ld+json item brings its own
    @context (a JSON batch's items share the Link one), so the batch has no one term map."""
    for at, (_, err) in zip(out.failed, out.errors, strict=True):
        if isinstance(err, ClaimedAttribute):
            try:
                tm = terms(items[at])
            except NgsiLdError:  # (compiled once already: only a context gone since)
                continue
            err.in_terms(tm.compact)


async def batch_create(request: Request) -> Response:
    """POST /entityOperations/create."""
    params_of(request)  # refuses unknown parameters
    body, media = await read_body(request, batch=True)
    ctx, tm_of = await batch_context(request, body, media)
    out = await grouped_slices(
        request, service(request).batch_create, ctx.tenant, body, tm_of, terms=tm_of
    )
    return _batch_result(out, 201, out.success, body, tm_of)


async def batch_upsert(request: Request) -> Response:
    """POST /entityOperations/upsert."""
    params = params_of(request)
    body, media = await read_body(request, batch=True)
    ctx, tm_of = await batch_context(request, body, media)
    opts = P.options(params)
    if {"replace", "update"} <= opts:
        raise BadRequestData("options replace and update exclude each other")
    mode = "update" if "update" in opts else "replace"
    out = await grouped_slices(
        request, service(request).batch_upsert, ctx.tenant, body, tm_of, mode, terms=tm_of
    )
    if not out.errors and out.created:
        return plain_json(out.created, status=201)
    return _batch_result(out, 204, None, body, tm_of)


async def batch_update(request: Request) -> Response:
    """POST /entityOperations/update."""
    params = params_of(request)
    body, media = await read_body(request, batch=True)
    ctx, tm_of = await batch_context(request, body, media, must_exist=True)
    out = await grouped_slices(
        request,
        service(request).batch_update,
        ctx.tenant,
        body,
        tm_of,
        "noOverwrite" in P.options(params),
        terms=tm_of,
    )
    return _batch_result(out, 204, None, body, tm_of)


async def batch_merge(request: Request) -> Response:
    """POST /entityOperations/merge."""
    params_of(request)  # refuses unknown parameters
    body, media = await read_body(request, batch=True)
    ctx, tm_of = await batch_context(request, body, media, must_exist=True)
    out = await grouped_slices(
        request, service(request).batch_merge, ctx.tenant, body, tm_of, terms=tm_of
    )
    return _batch_result(out, 204, None, body, tm_of)


async def batch_delete(request: Request) -> Response:
    """POST /entityOperations/delete."""
    params_of(request)  # refuses unknown parameters
    body, _ = await read_body(request, batch=True)
    ctx = await context_of(request, must_exist=True)
    out = await grouped_slices(request, service(request).batch_delete, ctx.tenant, body)
    return _batch_result(out, 204)
