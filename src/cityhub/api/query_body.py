"""The Query object of POST /entityOperations/query and POST /temporal/entityOperations/query
(5.2.23), read into the GET parameters of the same query. A member the hub does not read is a
400 naming it, as an unknown GET parameter is: dropped, it widened the query (`"qq"` answered
every entity, a `temporalQ.timeProperty` read the observedAt axis; decision 061)."""

from __future__ import annotations

from typing import Any

import orjson

from cityhub.api.allowed import UNSUPPORTED
from cityhub.ngsild.errors import BadRequestData, shown

# Query members both queries read (Table 5.2.23-1), the GET parameters a body may carry too
# (options, format, geometryProperty) and the body's own @context.
_MEMBERS = frozenset(
    {
        "type",
        "entities",
        "attrs",
        "pick",
        "omit",
        "q",
        "geoQ",
        "csf",
        "scopeQ",
        "lang",
        "join",
        "joinLevel",
        "containedBy",
        "datasetId",
        "options",
        "format",
        "geometryProperty",
        "@context",
    }
)
# Only a temporal query has a temporalQ (Table 5.2.23-1: "only for Query Temporal Evolution
# of Entities"); aggrParams (5.2.44, in 1.9) names its aggregation as temporalQ's members do.
_TEMPORAL_MEMBERS = frozenset({"temporalQ", "aggrParams"})
# TemporalQuery (5.2.21) members, each the GET parameter of its name
_TEMPORAL_Q = ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN")
_AGGREGATION = ("aggrMethods", "aggrPeriodDuration")
_GEO_Q = ("georel", "geometry", "coordinates", "geoproperty")


def query_params(body: Any, *, temporal: bool = False) -> dict[str, str]:
    """A Query body's members as the equivalent GET parameters, but for its EntitySelectors
    (`entities`, read by the query itself). A member that is unknown, or of the wrong type,
    is a 400 BadRequestData."""
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise BadRequestData("the body must be a Query object with type 'Query'")
    if not temporal and "temporalQ" in body:
        raise BadRequestData(
            "temporalQ belongs to POST /temporal/entityOperations/query (Table 5.2.23-1)"
        )
    _only(body, (_MEMBERS | _TEMPORAL_MEMBERS) if temporal else _MEMBERS, "a Query")
    for key in ("containedBy", "csf"):  # refused as the GET parameters are (api/allowed.py)
        if body.get(key) is not None:
            raise BadRequestData(f"{key} is not supported: {UNSUPPORTED[key]}")
    out: dict[str, str] = {}
    for key in ("attrs", "pick", "omit", "datasetId"):
        if body.get(key) is not None:
            out[key] = _names(body, key)
    for key in ("q", "scopeQ", "lang", "join", "options", "format"):
        if body.get(key) is not None:
            out[key] = _string(body, key)
    if body.get("geometryProperty") is not None:
        out["geometryProperty"] = _string(body, "geometryProperty")
    level = body.get("joinLevel")
    if level is not None:
        if not isinstance(level, int) or isinstance(level, bool):
            raise BadRequestData("joinLevel must be an integer")
        out["joinLevel"] = str(level)
    out.update(_geo_q(body.get("geoQ")))
    if temporal:
        out.update(_temporal_q(body.get("temporalQ")))
        out.update(_aggregation(body))
    return out


def merged_params(url: dict[str, str], body: Any, *, temporal: bool = False) -> dict[str, str]:
    """The URL's parameters and the Query body's members as one set of GET parameters; one
    named in both with different values is a 400, as the body's alone was read, silently
    (`?lang=de` with "lang": "en" answered English)."""
    members = query_params(body, temporal=temporal)
    for key, value in members.items():
        if key in url and url[key] != value:
            raise BadRequestData(
                f"{key} is given both as a URL parameter and in the Query body, with different "
                "values; give it once"
            )
    return {**url, **members}


def _only(obj: dict[str, Any], known: frozenset[str] | tuple[str, ...], what: str) -> None:
    """A 400 naming the first member of `obj` that is not `known`."""
    unknown = sorted(k for k in obj if k not in known)
    if unknown:
        raise BadRequestData(
            f"{what} has no member {shown(unknown[0])}; its members are {', '.join(sorted(known))}"
        )


def _names(body: dict[str, Any], key: str) -> str:
    """attrs, pick, omit, datasetId: an array of names (a datasetId may be one string)."""
    names = body[key]
    if key == "datasetId" and isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequestData(f"{key} must be an array of strings")
    if key in ("attrs", "datasetId") and any("," in n for n in names):  # joined, two names
        raise BadRequestData(f"a name in {key} cannot hold a comma")
    return ",".join(names)


def _string(obj: dict[str, Any], key: str, where: str = "") -> str:
    """A member that must be a string."""
    value = obj[key]
    if not isinstance(value, str):
        raise BadRequestData(f"{where}{key} must be a string")
    return value


def _geo_q(geo: Any) -> dict[str, str]:
    """geoQ (GeoQuery, 5.2.13) as georel, geometry, coordinates and geoproperty."""
    if geo is None:
        return {}
    if not isinstance(geo, dict) or not geo:
        raise BadRequestData("geoQ must be a GeoQuery object with georel, geometry, coordinates")
    _only(geo, _GEO_Q, "geoQ")
    out = {
        key: _string(geo, key, "geoQ.")
        for key in ("georel", "geometry", "geoproperty")
        if key in geo
    }
    if "coordinates" in geo:
        coords = geo["coordinates"]
        out["coordinates"] = coords if isinstance(coords, str) else orjson.dumps(coords).decode()
    return out


def _temporal_q(tq: Any) -> dict[str, str]:
    """temporalQ (TemporalQuery, 5.2.21): its members as the GET parameters of their names."""
    if tq is None:
        return {}
    if not isinstance(tq, dict):
        raise BadRequestData("temporalQ must be a TemporalQuery object")
    _only(tq, _TEMPORAL_Q + _AGGREGATION, "temporalQ")
    out: dict[str, str] = {}
    for key in _TEMPORAL_Q:
        value = tq.get(key)
        if value is not None:
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise BadRequestData(f"temporalQ.{key} must be a string (lastN: an integer)")
            out[key] = str(value)
    return {**out, **_aggregation_members(tq, "temporalQ")}


def _aggregation(body: dict[str, Any]) -> dict[str, str]:
    """aggrParams (AggregationParams, 5.2.44): aggrMethods and aggrPeriodDuration, which
    temporalQ may give instead, but not both."""
    params = body.get("aggrParams")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise BadRequestData("aggrParams must be an AggregationParams object")
    _only(params, _AGGREGATION, "aggrParams")
    twice = [k for k in params if k in (body.get("temporalQ") or {})]
    if twice:
        raise BadRequestData(f"{twice[0]} is given in both temporalQ and aggrParams")
    return _aggregation_members(params, "aggrParams")


def _aggregation_members(obj: dict[str, Any], where: str) -> dict[str, str]:
    """aggrMethods (an array, or its comma-separated text) and aggrPeriodDuration as the query
    parameters of the GET form; ignored, a POST asking for aggregatedValues was told it named
    no methods."""
    out: dict[str, str] = {}
    methods = obj.get("aggrMethods")
    if methods is not None:
        if isinstance(methods, list) and all(isinstance(m, str) and m for m in methods):
            methods = ",".join(methods)
        if not isinstance(methods, str) or not methods:
            raise BadRequestData(f"{where}.aggrMethods must be an array of method names")
        out["aggrMethods"] = methods
    period = obj.get("aggrPeriodDuration")
    if period is not None:
        if not isinstance(period, str):
            raise BadRequestData(f"{where}.aggrPeriodDuration must be a duration string")
        out["aggrPeriodDuration"] = period
    return out
