"""Reference evaluator of query trees on stored entities, for subscriptions and as SQL oracle."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cityhub.ngsild.query.ast import (
    And,
    AttrPath,
    Compare,
    Exists,
    Or,
    QNode,
    Range,
    ScopeAnd,
    ScopeNode,
    ScopeOr,
    ScopePattern,
    TypeAnd,
    TypeName,
    TypeNode,
    TypeOr,
    Value,
    ValueList,
)
from cityhub.ngsild.query.geo import GeoQuery, every_instance, geo_matches
from cityhub.ngsild.query.none_of import NoneOf
from cityhub.ngsild.query.pattern import Pattern
from cityhub.ngsild.query.qlang import compile_regex, norm_date, norm_datetime, norm_time

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
# Sub-attribute names that read an instance's own member instead of a sub-attribute.
_META = ("observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId")
META_KEYS = {name: name for name in _META} | {NGSI_LD + name: name for name in _META}
ENTITY_FIELDS = {
    "id": "id",
    "@id": "id",
    "type": "type",
    "@type": "type",
    "createdAt": "createdAt",
    "modifiedAt": "modifiedAt",
    NGSI_LD + "createdAt": "createdAt",
    NGSI_LD + "modifiedAt": "modifiedAt",
}
_CONTENT = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "VocabProperty": "vocab",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
    "JsonProperty": "json",
}
_RELATIONSHIPS = frozenset({"Relationship", "ListRelationship"})
_NORMALISERS = {"datetime": norm_datetime, "date": norm_date, "time": norm_time}

# the signs of (target - value) each relational operator holds for
_WANTED = {">": (1,), ">=": (0, 1), "<": (-1,), "<=": (-1, 0)}
Target = tuple[Any, bool]  # (target value, whether it comes from a Relationship)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _dig(value: Any, keys: tuple[str, ...], rel: bool) -> Iterator[Target]:
    """Follow a trailing path into a JSON value; a missing member means no target."""
    for key in keys:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return
    yield value, rel


def _languages(langmap: Mapping[str, Any], keys: tuple[str, ...]) -> Iterator[Target]:
    """A languageMap's target: one language's value for `lp[xx]` (the tag without case, as
    lang= and merges compare it: `lp[en-gb]` is en-GB's); for `lp` and `lp[*]` every
    language's values as one list, so `!=` holds only when no language has the value
    (clause 4.9: color[*]!="red" does not match {"en": "red", "fr": "rouge"})."""
    if len(keys) > 1 or not langmap:
        return
    if keys and keys[0] != "*":
        value = langmap.get(keys[0])
        if value is None:
            tag = keys[0].lower()
            value = next((v for k, v in langmap.items() if k.lower() == tag), None)
        if value is not None:
            yield value, False
        return
    every = (value if isinstance(value, list) else [value] for value in langmap.values())
    yield [v for values in every for v in values], False


def _content(inst: Mapping[str, Any], keys: tuple[str, ...]) -> Iterator[Target]:
    """The target value(s) of one attribute instance, by attribute type."""
    kind = inst.get("type", "Property")
    if kind == "LanguageProperty":
        langmap = inst.get("languageMap")
        if isinstance(langmap, dict):
            yield from _languages(langmap, keys)
        return
    member = _CONTENT.get(kind, "value")
    if member not in inst:
        return
    value = inst[member]
    if kind == "ListRelationship" and isinstance(value, list):
        value = [v.get("object") if isinstance(v, dict) else v for v in value]
    yield from _dig(value, keys, kind in _RELATIONSHIPS)


# Attribute types whose whole-attribute target is their content member as it is (no language
# map to join, no objectList items to unwrap): _content's own reading, without its generators.
_PLAIN = frozenset(_CONTENT) - {"ListRelationship"}


def attribute_targets(instances: Any) -> list[Target]:
    """The targets of a whole attribute (a path without sub-attributes or keys): what the
    index stores for every attribute of every write, so it skips the path walk (and, for
    the plain types, _content's generators: a create's index rows spent a fifth of their
    time in them)."""
    out: list[Target] = []
    for inst in instances if isinstance(instances, list) else _as_list(instances):
        kind = inst.get("type", "Property")
        if kind in _PLAIN:
            member = _CONTENT[kind]
            if member in inst:
                out.append((inst[member], kind == "Relationship"))
        else:
            out += _content(inst, ())
    return out


def _walk(
    inst: Mapping[str, Any], subs: tuple[str, ...], keys: tuple[str, ...]
) -> Iterator[Target]:
    """Descend sub-attributes (or read a meta member such as observedAt) to the target."""
    if not subs:
        yield from _content(inst, keys)
        return
    name, rest = subs[0], subs[1:]
    meta = META_KEYS.get(name)
    if meta is not None and not rest and meta in inst:
        yield from _dig(inst[meta], keys, False)
        return
    children = inst.get("sub")
    for child in _as_list(children.get(name) if isinstance(children, dict) else None):
        if isinstance(child, dict):
            yield from _walk(child, rest, keys)


def instance_target(inst: Mapping[str, Any], subs: tuple[str, ...], keys: tuple[str, ...]) -> Any:
    """The one value a path reaches in one instance (what orderBy sorts by), or MISSING."""
    for value, _ in _walk(inst, subs, keys):
        return value
    return MISSING


MISSING = object()  # instance_target: the path reaches nothing


def targets(path: AttrPath, doc: Mapping[str, Any]) -> list[Target]:
    """Every target value a path reaches in a stored entity (any instance may match)."""
    attrs = doc.get("attrs") or {}
    if path.attr in attrs:
        if not path.sub and not path.keys:
            return attribute_targets(attrs[path.attr])
        found = (_walk(inst, path.sub, path.keys) for inst in _as_list(attrs[path.attr]))
        return [t for group in found for t in group]
    field = ENTITY_FIELDS.get(path.attr)
    if field is not None and not path.sub and field in doc:
        return list(_dig(doc[field], path.keys, False))
    return []


def _order(q: Value, target: Any) -> int | None:
    """Sign of (target - q) when both have q's kind, else None (kinds never coerce)."""
    if isinstance(target, dict) and "@value" in target:
        target = target["@value"]
    a: Any
    b: Any
    if q.kind == "number":
        if isinstance(target, bool) or not isinstance(target, int | float):
            return None
        a, b = target, q.value
    elif q.kind == "string":
        if not isinstance(target, str):
            return None
        a, b = target, q.value
    elif q.kind == "bool":
        return (0 if target is q.value else 1) if isinstance(target, bool) else None
    elif q.kind == "null":
        return 0 if target is None else None
    else:
        a = _NORMALISERS[q.kind](target) if isinstance(target, str) else None
        if a is None:
            return None
        b = q.norm
    return (a > b) - (a < b)


def _equals(q: Value | Range | ValueList, target: Any) -> bool:
    """`==` against one scalar: equal to the value, any list member, or inside the range."""
    if isinstance(q, ValueList):
        return any(_order(v, target) == 0 for v in q.values)
    if isinstance(q, Range):
        low, high = _order(q.low, target), _order(q.high, target)
        return low is not None and high is not None and low >= 0 and high <= 0
    return _order(q, target) == 0


def _holds(node: Compare, target: Any, patterns: dict[str, Pattern] | None = None) -> bool:
    """One target value (a list means: its elements) against one comparison; `patterns`
    keeps the compiled patterns of a long q across entities (compile_regex's cache holds 512:
    a q of 1,000 distinct patterns compiled each one again for every entity)."""
    items = target if isinstance(target, list) else (target,)
    op, q = node.op, node.value
    if op == "==" or op == "!=":
        hit = False
        for t in items:  # (a loop: a generator per term was a third of a long q's time)
            if _order(q, t) == 0 if isinstance(q, Value) else _equals(q, t):
                hit = True
                break
        return hit if op == "==" else not hit
    if op in ("~=", "!~="):
        assert isinstance(q, Value)
        text = str(q.value)
        regex = patterns.get(text) if patterns is not None else None
        if regex is None:
            regex = compile_regex(text, bounded=False)  # checked when the q was parsed
            if patterns is not None:
                patterns[text] = regex
        # a typed value ({"@type": "Date", "@value": "2024-03-01"}) is its string, as in _order;
        # a string too long for the pattern's program is not searched: neither op holds for it
        plain = (t["@value"] if isinstance(t, dict) and "@value" in t else t for t in items)
        strings = [t for t in plain if isinstance(t, str) and regex.fits(t)]
        hit = any(regex.search(t) for t in strings)
        return hit if op == "~=" else bool(strings) and not hit
    assert isinstance(q, Value)
    wanted = _WANTED[op]
    return any(_order(q, t) in wanted for t in items)


def matches_q(
    node: QNode,
    doc: Mapping[str, Any],
    seen: dict[int, list[Target]] | None = None,
    patterns: dict[str, Pattern] | None = None,
) -> bool:
    """Whether a stored entity satisfies a q tree. A long q passes `seen`, this entity's
    targets by the id() of each path object (terms that share one path object, as
    functions.decode_q makes them, find it once), and `patterns`, see _holds."""
    # (loops, not all()/any() over generators: a third faster on a 1,000-term q)
    if isinstance(node, And):
        for item in node.items:  # noqa: SIM110
            if not matches_q(item, doc, seen, patterns):
                return False
        return True
    if isinstance(node, Or):
        for item in node.items:  # noqa: SIM110
            if matches_q(item, doc, seen, patterns):
                return True
        return False
    if seen is None:
        found = targets(node.path, doc)
    elif (found := seen.get(id(node.path))) is None:  # type: ignore[assignment]
        found = seen[id(node.path)] = targets(node.path, doc)
    if isinstance(node, Exists):
        return bool(found)
    if isinstance(node, NoneOf):  # a long q's `!=` terms on one path (decode_q)
        return node.holds(found)
    relational_ok = node.op in ("==", "!=")
    for value, rel in found:  # noqa: SIM110
        if (relational_ok or not rel) and _holds(node, value, patterns):
            return True
    return False


def matches_types(node: TypeNode, doc: Mapping[str, Any]) -> bool:
    """Whether a stored entity's (expanded) types satisfy a type selection."""
    if isinstance(node, TypeName):
        return node.name in _as_list(doc.get("type"))
    if isinstance(node, TypeAnd):
        return all(matches_types(item, doc) for item in node.items)
    assert isinstance(node, TypeOr)
    return any(matches_types(item, doc) for item in node.items)


def scope_matches(pattern: ScopePattern, scope: str) -> bool:
    """One scope path against one pattern: `+` is one level, a trailing `#` any descendants."""
    if not isinstance(scope, str) or not scope.startswith("/"):
        return False
    levels = scope.split("/")[1:]
    pat = pattern.levels
    if pat and pat[-1] == "#":
        pat = pat[:-1]
        if len(levels) < len(pat):
            return False
        levels = levels[: len(pat)]
    return len(levels) == len(pat) and all(
        p in ("+", lv) for p, lv in zip(pat, levels, strict=True)
    )


def matches_scope(node: ScopeNode, doc: Mapping[str, Any]) -> bool:
    """Whether any of a stored entity's scopes satisfies each pattern of a scopeQ."""
    if isinstance(node, ScopePattern):
        return any(scope_matches(node, s) for s in _as_list(doc.get("scope")))
    if isinstance(node, ScopeAnd):
        return all(matches_scope(item, doc) for item in node.items)
    assert isinstance(node, ScopeOr)
    return any(matches_scope(item, doc) for item in node.items)


def geo_value(inst: Any) -> dict[str, Any] | None:
    """The geometry a geoQ tests in one attribute instance: a GeoProperty's value only (clause
    4.10), so a Property holding GeoJSON, which keeps its type, is matched nowhere: not by
    the SQL index (store/sqlite/index.geo_rows), subscriptions or temporal queries."""
    if isinstance(inst, dict) and inst.get("type") == "GeoProperty":
        value = inst.get("value")
        if isinstance(value, dict):
            return value
    return None


def matches_geo(query: GeoQuery, doc: Mapping[str, Any], attr: str | None = None) -> bool:
    """Whether the entity's GeoProperty (attr, else the query's) satisfies geoQ: any instance,
    or for disjoint and minDistance every one of them (geo.every_instance)."""
    attrs = doc.get("attrs") or {}
    name = attr or query.geoproperty
    if name not in attrs and ":" not in name:
        name = NGSI_LD + name
    values = (geo_value(inst) for inst in _as_list(attrs.get(name)))
    held = [v for v in values if v is not None]
    if every_instance(query):
        return bool(held) and all(geo_matches(query, v) for v in held)
    return any(geo_matches(query, v) for v in held)
