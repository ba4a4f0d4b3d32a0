"""Query-string parameters → typed, validated requests (framework-free)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cityhub.ngsild.context import TermMap
from cityhub.ngsild.core_context import NGSI_LD
from cityhub.ngsild.entity import check_name, check_uri
from cityhub.ngsild.errors import BadRequestData, InvalidRequest, TooManyResults, excerpt
from cityhub.ngsild.languages import LANGUAGE_TAG, MAX_RANGE_CHARS, MAX_RANGES, TAG
from cityhub.ngsild.linked import MAX_JOIN_LEVEL
from cityhub.ngsild.merge_forms import MergeForm
from cityhub.ngsild.projection import Projection, check_names, parse_projection
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.geo import GeoQuery, parse_geoq
from cityhub.ngsild.query.qlang import compile_regex, parse_path, parse_q
from cityhub.ngsild.query.scope import parse_scope
from cityhub.ngsild.query.typeexpr import parse_types
from cityhub.ngsild.render import FORMATS, RenderOptions
from cityhub.ngsild.timeutil import parse_ts
from cityhub.store.base import EntityQuery, EntitySelector, OrderKey

MAX_LIMIT = 1000
DEFAULT_LIMIT = 20
_OPTIONS = {
    "keyValues",
    "simplified",
    "concise",
    "normalized",
    "sysAttrs",
    "count",
    "noOverwrite",
    "replace",
    "update",
    "temporalValues",
    "aggregatedValues",
    "deleteAll",
    "noDetail",
}
# the options of entity reads (GET /entities, GET /entities/{id}, POST .../query): a write's
# or a temporal read's option there was a 200 in normalized form, as if nothing were asked
READ_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "sysAttrs", "count"})


def csv(value: str | None, name: str) -> list[str]:
    """The comma-separated parameter `name` as a list; an empty item is refused by the
    parameter's name (quoting only the value said nothing when the value was empty)."""
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")]
    if not value.strip():
        raise BadRequestData(f"parameter {name} is empty: give it one item or more")
    if any(not v for v in items):
        raise BadRequestData(f"parameter {name} holds an empty item: {excerpt(value)}")
    return items


def options(params: Mapping[str, str], known: frozenset[str] | None = None) -> set[str]:
    """The `options` parameter, validated (an unknown option is an InvalidRequest); `known`
    are the options of one kind of request, which the error lists (temporal reads: no
    write options; each entity write: its own)."""
    allowed = _OPTIONS if known is None else known
    opts = set(csv(params.get("options"), "options"))
    unknown = opts - allowed
    if not unknown:
        return opts
    names, takes = ", ".join(sorted(unknown)), ", ".join(sorted(allowed)) or "none"
    if unknown <= _OPTIONS:  # an option of another operation, accepted and ignored before
        raise InvalidRequest(f"option(s) {names} do not apply to this operation; it takes: {takes}")
    raise InvalidRequest(f"unknown option(s): {names}; known: {takes}")


def flag(params: Mapping[str, str], name: str) -> bool:
    """A boolean parameter (true/false)."""
    value = params.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false")
    return value == "true"


_DIGITS = re.compile(r"[0-9]+")


def integer(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A bounded integer parameter in ASCII digits: int() alone also read "+2", " 2", "2_0"
    (as 20) and other scripts' digits."""
    raw = params.get(name)
    if raw is None:
        return default
    try:  # (a digit string too long for int() is past any bound)
        value = int(raw) if _DIGITS.fullmatch(raw) else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise BadRequestData(f"{name} must be a whole number from {low} to {high}, in digits 0-9")
    return value


def page_limit(params: Mapping[str, str]) -> int:
    """limit= of a paged list: digits above MAX_LIMIT are TooManyResults (clause 5.5.9: a
    page past the hard limit is refused with that type), not BadRequestData (decision 087)."""
    try:
        return integer(params, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
    except BadRequestData:
        if _DIGITS.fullmatch(params["limit"]):  # a whole number, so one above the bound
            raise TooManyResults(
                f"limit is at most {MAX_LIMIT}: ask for the rest with offset"
            ) from None
        raise


# one lang= item: a BCP 47 language range (RFC 4647) or *, with an optional q weight from 0
# to 1 (RFC 9110 12.4.2: q=1.5 was taken)
_LANG_ITEM = re.compile(rf"\s*(\*|{TAG})\s*(;\s*q=(0(\.\d{{0,3}})?|1(\.0{{0,3}})?)\s*)?")


def check_lang(lang: str | None) -> str | None:
    """lang= as clause 4.15 allows it (tags or *, each with a q weight), at most MAX_RANGES of
    them of MAX_RANGE_CHARS each; 400 otherwise, as an empty or garbled value was read as no
    preference at all."""
    if lang is None:
        return None
    items = lang.split(",")
    if len(items) > MAX_RANGES:
        raise BadRequestData(
            f"lang names {len(items):,} language ranges, at most {MAX_RANGES}: {excerpt(lang)}"
        )
    if not all(_LANG_ITEM.fullmatch(item) for item in items):
        raise BadRequestData(f"lang must be language tags or *, not {excerpt(lang)}")
    longest = max(items, key=lambda item: len(item.partition(";")[0].strip()))
    if len(longest.partition(";")[0].strip()) > MAX_RANGE_CHARS:
        raise BadRequestData(
            f"a language range of lang holds at most {MAX_RANGE_CHARS} characters: "
            f"{excerpt(longest.strip())}"
        )
    return lang


def render_options(params: Mapping[str, str], tm: TermMap) -> RenderOptions:
    """options/format/lang/datasetId → RenderOptions (projections come from `projections`)."""
    opts = options(params)
    fmt = "normalized"
    if "concise" in opts:
        fmt = "concise"
    if opts & {"keyValues", "simplified"}:
        fmt = "keyValues"
    if "format" in params:
        fmt = {"simplified": "keyValues", "keyValues": "keyValues"}.get(
            params["format"], params["format"]
        )
        if fmt not in FORMATS:  # temporalValues and aggregatedValues only on /temporal
            raise InvalidRequest(
                f"unknown format {excerpt(params['format'])}; use normalized, concise or "
                "keyValues (simplified); GeoJSON is asked for with "
                "Accept: application/geo+json"
            )
    ds = params.get("datasetId")
    return RenderOptions(
        format=fmt,
        sys_attrs="sysAttrs" in opts,
        lang=check_lang(params.get("lang")),
        dataset_ids=dataset_ids(ds),
    )


def merge_form(params: Mapping[str, str]) -> MergeForm:
    """options/format of Merge Entity: the representation its body is written in (a
    keyValues body was read as concise, so {"value": 3, "unit": "m"} became sub-attributes);
    lang: the one language of the strings it merges into LanguageProperties; observedAt: the
    time of the instances it merges into observed ones without giving theirs."""
    key_values = bool(options(params) & {"keyValues", "simplified"})
    if "format" in params:
        fmt = params["format"]
        if fmt not in ("normalized", "concise", "keyValues", "simplified"):
            raise InvalidRequest(
                f"unknown format {excerpt(fmt)}; a merge body is normalized, concise or keyValues"
            )
        key_values = fmt in ("keyValues", "simplified")
    lang = params.get("lang")
    if lang is not None and not LANGUAGE_TAG.fullmatch(lang):
        raise BadRequestData(
            f"lang of a merge names the one language of its strings (en, de-CH), not {excerpt(lang)}"
        )
    observed_at = params.get("observedAt")
    if observed_at is not None:
        parse_ts(observed_at, "observedAt")
    return MergeForm(key_values=key_values, lang=lang, observed_at=observed_at)


def dataset_ids(value: str | None) -> frozenset[str] | None:
    """datasetId=: URIs, or @none for the default instance. A read took any text (and found
    nothing), while a DELETE refused it."""
    if value is None:
        return None
    return frozenset(
        d if d == "@none" else check_uri(d, "datasetId") for d in csv(value, "datasetId")
    )


def projections(params: Mapping[str, str]) -> tuple[Projection | None, Projection | None]:
    """pick and omit trees; attrs is pick's older form and excludes both."""
    pick = params.get("pick")
    omit = params.get("omit")
    attrs = params.get("attrs")
    if attrs is not None and (pick is not None or omit is not None):
        raise BadRequestData("attrs cannot be combined with pick or omit")
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be combined")
    if attrs is not None:
        names = csv(attrs, "attrs")
        check_names(len(names), "attrs")
        if any(n in ("id", "type") for n in names):
            raise BadRequestData("id and type are entity members, not attributes")
        for n in names:
            check_name(n)
        # attrs picks attributes: the entity keeps its id and type, and its system times for
        # options=sysAttrs (they are shown only then)
        members = dict.fromkeys(("id", "type", "createdAt", "modifiedAt"))
        return {**members, **dict.fromkeys(names)}, None
    return (
        parse_projection(pick) if pick is not None else None,
        parse_projection(omit) if omit is not None else None,
    )


_ENTITY_MEMBERS = ("id", "type", "createdAt", "modifiedAt")


def _picked_attributes(pick: str | None, tm: TermMap) -> tuple[str, ...] | None:
    """A pick of attributes only selects too: an entity holding none of them renders as
    nothing and is left out (as the ETSI suite has it), so the query leaves it out before
    paging and counting, as `attrs` does, and pages stay full and the count true."""
    if pick is None:
        return None
    names = list(parse_projection(pick))
    if any(n in (*_ENTITY_MEMBERS, "scope") for n in names):
        return None
    return tuple(tm.expand(check_name(n)) for n in names) or None


def _omitted_all_but(params: Mapping[str, str], tm: TermMap) -> tuple[str, ...] | None:
    """An omit of id and type leaves an entity only its other attributes and its scope to
    show: one with none renders as nothing and is left out (_render), so the query leaves it
    out before paging and counting, and the count is what the pages hold. The attributes
    omitted, and "scope" when the scope is omitted too; None when every entity shows
    something (sysAttrs shows an entity's times)."""
    omit = params.get("omit")
    if omit is None:
        return None
    leaves = {n for n, sub in parse_projection(omit).items() if sub is None}
    if not {"id", "type"} <= leaves:
        return None
    if "sysAttrs" in options(params) and not {"createdAt", "modifiedAt"} <= leaves:
        return None
    names = leaves - {*_ENTITY_MEMBERS, "scope", "deletedAt"}
    omitted = [tm.expand(check_name(n)) for n in sorted(names)]
    return (*omitted, "scope") if "scope" in leaves else tuple(omitted)


_META_SUBS = ("createdAt", "modifiedAt", "observedAt")
_ORDER_MEMBERS = (*_ENTITY_MEMBERS, "scope")


MAX_ORDER_KEYS = 32


def order_by(text: str | None, tm: TermMap) -> tuple[OrderKey, ...]:
    """orderBy=path[;asc|desc],... (4.23.3): id, type, scope, createdAt, modifiedAt, or an
    attribute path as q writes it (attr, attr.sub, attr.observedAt, attr[key.key])."""
    if text is None:
        return ()
    items = csv(text, "orderBy")
    if len(items) > MAX_ORDER_KEYS:  # each key is a correlated subquery per row
        raise BadRequestData(f"orderBy takes at most {MAX_ORDER_KEYS} keys, not {len(items)}")
    out: list[OrderKey] = []
    for item in items:
        text_path, _, direction = item.partition(";")
        if direction in ("dist-asc", "dist-desc"):
            raise BadRequestData(
                f"orderBy {direction} is not supported: the hub does not sort by distance"
            )
        if direction not in ("", "asc", "desc"):
            raise BadRequestData(f"orderBy direction must be asc or desc, not {excerpt(direction)}")
        desc = direction == "desc"
        if text_path in _ORDER_MEMBERS:
            out.append(OrderKey((text_path,), desc))
            continue
        path = parse_path(text_path, "orderBy path")
        if path.attr in _ORDER_MEMBERS:
            raise BadRequestData(
                f"orderBy {excerpt(text_path)}: {excerpt(path.attr)} has no sub-paths"
            )
        steps = [tm.expand(check_name(path.attr))]
        steps += [n if n in _META_SUBS else tm.expand(check_name(n)) for n in path.sub]
        out.append(OrderKey(tuple(steps), desc, path.keys))
    return tuple(out)


def join_options(params: Mapping[str, str]) -> tuple[str | None, int]:
    """join=flat|inline and joinLevel (default 1)."""
    join = params.get("join")
    if join is not None and join not in ("flat", "inline", "@none"):
        raise BadRequestData("join must be flat, inline or @none")
    level = integer(params, "joinLevel", 1, 0, MAX_JOIN_LEVEL)
    return (None if join == "@none" else join), level


def _expand_q(node: Any, tm: TermMap) -> Any:
    return ast.expand_q(node, tm.expand)


def _q_param(params: Mapping[str, str], tm: TermMap) -> Any:
    """q, parsed and expanded; the attributes expandValues names take bare terms as values."""
    named = {tm.expand(a) for a in csv(params.get("expandValues"), "expandValues")}
    return _expand_q(parse_q(params["q"], lambda attr: tm.expand(attr) in named), tm)


def geo_param(params: Mapping[str, str], tm: TermMap) -> GeoQuery | None:
    """georel/geometry/coordinates/geoproperty as a GeoQuery on an expanded GeoProperty."""
    geo = parse_geoq(
        params.get("georel"),
        params.get("geometry"),
        params.get("coordinates"),
        params.get("geoproperty"),
    )
    return None if geo is None else replace(geo, geoproperty=tm.expand(geo.geoproperty))


def entity_query(
    params: Mapping[str, str],
    tm: TermMap,
    *,
    require_filter: bool = True,
    ids_filter: bool = False,
    selectors: Any = None,
) -> EntityQuery:
    """The entity selection of GET /entities (and of the temporal queries); `selectors` is
    the `entities` member of a Query body, which takes the place of id, idPattern and type."""
    ids = tuple(check_uri(i, "id") for i in csv(params.get("id"), "id")) or None
    id_pattern = params.get("idPattern")
    if id_pattern is not None:
        _check_id_pattern(id_pattern)
    types = None
    raw_type = params.get("type")
    if raw_type is not None:
        types = ast.map_names(parse_types(raw_type), tm.expand)
    alternatives = None
    if selectors is not None:
        folded = fold_selectors(entity_selectors(selectors, tm))
        if len(folded) == 1:
            ids, id_pattern, types = folded[0].ids, folded[0].id_pattern, folded[0].types
        else:
            alternatives = tuple(folded)
    q = _q_param(params, tm) if params.get("q") is not None else None
    scope = parse_scope(params["scopeQ"]) if params.get("scopeQ") is not None else None
    geo = geo_param(params, tm)
    listed = csv(params.get("attrs"), "attrs")
    check_names(len(listed), "attrs")
    attrs = tuple(tm.expand(check_name(a)) for a in listed) or None
    # each of a Query body's selectors names a type, "*" too, an id or an idPattern
    filters: list[Any] = [types, q, scope, geo, attrs, selectors is not None]
    if ids_filter:
        filters += [ids, id_pattern]
    local = flag(params, "local")  # checked whatever else is given: local=banana was a 200
    if require_filter and not any(filters) and not local:
        raise BadRequestData("a query needs at least one of type, attrs, q, geoQ or scopeQ")
    attrs = attrs or _picked_attributes(params.get("pick"), tm)
    return EntityQuery(
        beyond=_omitted_all_but(params, tm),
        order=order_by(params.get("orderBy"), tm),
        ids=ids,
        id_pattern=id_pattern,
        types=types,
        selectors=alternatives,
        q=q,
        scope=scope,
        geo=geo,
        attrs=attrs,
        limit=page_limit(params),
        offset=integer(params, "offset", 0, 0, 2**31),
        count=flag(params, "count") or "count" in options(params),
    )


def _check_id_pattern(pattern: str, what: str = "idPattern") -> None:
    """An idPattern is a non-empty regular expression: an empty one matched every entity, so
    `idPattern=` left a query unfiltered."""
    if not pattern:
        raise BadRequestData(f"{what} must not be empty")
    compile_regex(pattern)


# EntitySelectors one Query body may hold, counted before any is read (~11 µs each: a body of
# 1,000,000 took 13 s of CPU, then a 30 s read); more than SQLite's 32,766 parameters, which a
# long id list goes past as one JSON parameter, and the importer asks for 1,000 at a time.
MAX_SELECTORS = 50_000


def entity_selectors(raw: Any, tm: TermMap) -> list[EntitySelector]:
    """The EntitySelectors of a Query body, validated, with their types expanded."""
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise BadRequestData("entities must be a list of EntitySelector objects")
    if len(raw) > MAX_SELECTORS:
        raise BadRequestData(
            f"entities holds {len(raw):,} EntitySelectors, more than the {MAX_SELECTORS:,} a "
            "query takes; ask in several queries"
        )
    out = []
    for sel in raw:
        ids = (check_uri(sel["id"], "EntitySelector id"),) if "id" in sel else None
        pattern = sel.get("idPattern")
        if pattern is not None:
            if not isinstance(pattern, str):
                raise BadRequestData("an EntitySelector idPattern must be a string")
            _check_id_pattern(pattern, "an EntitySelector idPattern")
        # 5.2.33 makes type mandatory ("*": every type); a selector naming an id or idPattern
        # selects without one (the importer reads by id alone). One that selects nothing was
        # refused alone and matched every entity beside another selector.
        raw_type = sel.get("type")
        if raw_type is None and ids is None and pattern is None:
            raise BadRequestData(
                'every EntitySelector needs type (5.2.33; "*" for every type), or an id or '
                "idPattern"
            )
        if raw_type is not None and not isinstance(raw_type, str):
            raise BadRequestData("an EntitySelector type must be a string")
        types = None
        if raw_type is not None and raw_type != "*":
            types = ast.map_names(parse_types(raw_type), tm.expand)
        out.append(EntitySelector(ids, pattern, types))
    if not out:
        raise BadRequestData("entities must hold at least one EntitySelector")
    return out


def fold_selectors(selectors: list[EntitySelector]) -> list[EntitySelector]:
    """The same selection in as few selectors as possible: those that differ only by id
    become one with an id list (a dashboard asking for 1,000 sensors by id and type is one
    IN list), and those with neither id nor idPattern one with a type disjunction."""
    by_kind: dict[tuple[Any, str | None], list[str] | None] = {}
    for sel in selectors:
        key = (sel.types, sel.id_pattern)
        if sel.ids is None:
            by_kind[key] = None
        elif (known := by_kind.setdefault(key, [])) is not None:
            known.extend(sel.ids)
    if (None, None) in by_kind and by_kind[(None, None)] is None:
        return [EntitySelector()]  # one selector matches every entity
    plain = [types for (types, pattern), ids in by_kind.items() if ids is None and not pattern]
    out = [
        EntitySelector(tuple(dict.fromkeys(ids)) if ids is not None else None, pattern, types)
        for (types, pattern), ids in by_kind.items()
        if ids is not None or pattern
    ]
    if plain:
        types = plain[0] if len(plain) == 1 else ast.TypeOr(tuple(plain))
        out.append(EntitySelector(types=types))
    if len(out) > ast.MAX_TERMS:
        raise BadRequestData(f"entities: more than {ast.MAX_TERMS:,} distinct selectors")
    return out


LOCATION = NGSI_LD + "location"
