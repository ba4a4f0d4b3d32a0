"""Python functions the SQL calls: regular expressions, scope patterns, q terms, index rows."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import orjson

from cityhub.ngsild.entity import CONTENT_KEY
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.evaluate import ENTITY_FIELDS, matches_q
from cityhub.ngsild.query.none_of import grouped
from cityhub.ngsild.query.pattern import AnyPattern, Pattern, PatternError, compile_pattern
from cityhub.ngsild.timeutil import parse_ts
from cityhub.store.base import period_edge, period_index
from cityhub.store.reads import ReadLimit
from cityhub.store.sqlite import typesets
from cityhub.store.sqlite.index import geo_box_text, index_rows, number, ts_key
from cityhub.store.sqlite.ordering import order_key

Term = ast.Compare | ast.Exists
_read = threading.local()  # .limit: the ReadLimit of this thread's read; .tripped
_UNBOUNDED = ReadLimit(0)  # deadline inf: the limit of a thread outside any bounded read


class DeadlinePassed(Exception):
    """Raised inside a SQL function once the read's deadline has passed (or its client left:
    that lowers the deadline)."""


@contextmanager
def bounded(limit: ReadLimit) -> Iterator[None]:
    """Make the per-row functions of this thread's reads stop past limit.deadline: SQLite's
    progress handler runs every 10,000 steps, and when each step calls a costly function (a
    long pattern, a deep q term, a geometry) those steps took tens of seconds."""
    _read.limit, _read.tripped = limit, False
    try:
        yield
    finally:
        _read.limit = _UNBOUNDED


def tripped() -> bool:
    """Whether a function of this thread's last read stopped it at its deadline (SQLite
    reports that only as "user-defined function raised exception")."""
    return bool(getattr(_read, "tripped", False))


def checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn, raising DeadlinePassed first when this thread's read is past its deadline."""

    def call(*args: Any) -> Any:
        if time.monotonic() > getattr(_read, "limit", _UNBOUNDED).deadline:
            _read.tripped = True
            raise DeadlinePassed
        return fn(*args)

    return call


def check_deadline() -> None:
    """Raise DeadlinePassed when this thread's read is past its deadline: for Python work
    between statements (building aggregated periods, a scan's rows), which SQLite's handler
    never sees."""
    if time.monotonic() > getattr(_read, "limit", _UNBOUNDED).deadline:
        _read.tripped = True
        raise DeadlinePassed


def regexp(pattern: str, value: Any) -> bool:
    """SQL regexp(pattern, value): search semantics, False on non-strings and on strings too
    long for the pattern's program (pattern.MAX_WORK)."""
    if not isinstance(value, str):
        return False
    try:
        return compile_pattern(pattern).search(value) is not None
    except PatternError:
        return False


@lru_cache(maxsize=16)
def _any_pattern(patterns: str) -> AnyPattern:
    """A query's patterns (a JSON array) compiled once for all its rows."""
    return AnyPattern(tuple(orjson.loads(patterns)))


def regexp_any(patterns: str, value: Any) -> bool:
    """SQL regexp_any(patterns, value): regexp of any of the patterns (a JSON array), in one
    search where that answers the same (pattern.AnyPattern)."""
    if not isinstance(value, str):
        return False
    try:
        return _any_pattern(patterns).search(value)
    except PatternError:
        return any(regexp(p, value) for p in orjson.loads(patterns))


def pattern_fits(pattern: str, value: Any) -> bool:
    """SQL pattern_fits(pattern, value): whether regexp searches value at all, so `!~=` holds
    for the strings the evaluator searches, as `~=` does."""
    if not isinstance(value, str):
        return False
    try:
        return compile_pattern(pattern).fits(value)
    except PatternError:
        return False


def scope_match(pattern: str, scope: Any) -> bool:
    """scopeQ: `/a/b` exact, `/a/#` itself or any descendant, `+` one level, `/#` all."""
    if not isinstance(scope, str):
        return False
    if pattern == "/#":
        return True
    pat = pattern.strip("/").split("/")
    got = scope.strip("/").split("/")
    for i, seg in enumerate(pat):
        if seg == "#":
            return len(got) >= i
        if i >= len(got) or (seg != "+" and seg != got[i]):
            return False
    return len(got) == len(pat)


def encode_term(node: Term) -> str:
    """A q leaf as the text q_match takes (stdlib json: it keeps integers of any size)."""
    return json.dumps(_encode_leaf(node))


def encode_q(node: ast.QNode) -> str:
    """A whole q tree as the text q_match_doc takes."""
    return json.dumps(_encode_tree(node))


def _encode_tree(node: ast.QNode) -> Any:
    if isinstance(node, ast.And | ast.Or):
        kind = "and" if isinstance(node, ast.And) else "or"
        return {kind: [_encode_tree(item) for item in node.items]}
    return _encode_leaf(node)


def _encode_leaf(node: Term) -> list[Any]:
    path = [node.path.attr, node.path.sub, node.path.keys]
    if isinstance(node, ast.Exists):
        return path
    return [*path, node.op, _encode_value(node.value)]


def _encode_value(value: ast.Value | ast.Range | ast.ValueList) -> Any:
    if isinstance(value, ast.Range):
        return {"range": [_encode_value(value.low), _encode_value(value.high)]}
    if isinstance(value, ast.ValueList):
        return {"list": [_encode_value(v) for v in value.values]}
    return [value.kind, value.value, value.norm]


def _decode_value(data: Any) -> Any:
    if isinstance(data, dict) and "range" in data:
        return ast.Range(*(_decode_value(v) for v in data["range"]))
    if isinstance(data, dict):
        return ast.ValueList(tuple(_decode_value(v) for v in data["list"]))
    return ast.Value(*data)


@lru_cache(maxsize=256)
def decode_term(text: str) -> Term:
    """The q leaf encode_term wrote (decoded once per distinct term)."""
    return _decode_leaf(json.loads(text))


@lru_cache(maxsize=64)
def decode_q(text: str) -> tuple[ast.QNode, dict[str, Pattern]]:
    """The q tree encode_q wrote (decoded once per query), with the patterns it compiles as
    it meets them, kept for its next entities."""
    return _decode_tree(json.loads(text), {}), {}


def _decode_tree(data: Any, paths: dict[ast.AttrPath, ast.AttrPath]) -> ast.QNode:
    """A q tree whose equal paths are one object (matches_q finds each path's targets once)."""
    if isinstance(data, dict):
        items = tuple(_decode_tree(item, paths) for item in next(iter(data.values())))
        if "and" in data:  # its plain `!=` terms on one path tested as one (none_of.py)
            return ast.And(tuple(grouped(items)))
        return ast.Or(items)
    return _decode_leaf(data, paths)


def _decode_leaf(data: list[Any], paths: dict[ast.AttrPath, ast.AttrPath] | None = None) -> Term:
    attr, sub, keys, *rest = data
    path = ast.AttrPath(attr, tuple(sub), tuple(keys))
    if paths is not None:
        path = paths.setdefault(path, path)
    if not rest:
        return ast.Exists(path)
    op, value = rest
    return ast.Compare(path, op, _decode_value(value))


def q_match(term: str, source: Any) -> bool:
    """SQL q_match(term, json): the reference evaluator on one attribute's instances (or, for
    id/type/createdAt/modifiedAt, the whole document), for the terms attr_index cannot answer
    (sub-attributes, [key] paths), so SQL and subscriptions agree by construction."""
    if not isinstance(source, str):
        return False
    node = decode_term(term)
    data = orjson.loads(source)
    doc = data if node.path.attr in ENTITY_FIELDS else {"attrs": {node.path.attr: data}}
    return matches_q(node, doc)


def q_match_doc(q: str, doc: Any) -> bool:
    """SQL q_match_doc(q, e.doc): the reference evaluator on a whole q and a whole entity, for
    a q too long for a correlated probe per term (qsql.EVALUATED_TERMS)."""
    if not isinstance(doc, str):
        return False
    node, patterns = decode_q(q)
    return matches_q(node, orjson.loads(doc), {}, patterns)


def distinct_key(inst: str) -> str | None:
    """What distinctCount tells apart in a stored instance: its content as canonical JSON, so
    true is not 1 (both were 1.0) and {"a":1,"b":2} is {"b":2,"a":1} (their texts differed);
    1 and 1.0 are one number."""
    doc = orjson.loads(inst)
    member = CONTENT_KEY.get(doc.get("type"), "value")
    if member not in doc:
        return None
    value = doc[member]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(number(value))
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class PopulationStddev:
    """stddev_pop(x): Welford's running mean and squared distance. From sum and sum of
    squares it cancelled: 1000000001, 1000000002, 1000000003 gave 0 instead of 0.816.
    Values past 2**500 are taken scaled down by 2**600 (exact: a power of two), so the squared
    distances stay finite: for 1e308, 1e308, -1e308 it overflowed and gave 0.0."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.scale = 1.0

    def step(self, value: Any) -> None:  # a number, or None for a non-numeric instance
        if value is None:
            return
        if self.scale == 1.0 and abs(value) > _LARGE:
            self.scale = _SCALE
            self.mean /= _SCALE
            self.m2 /= _SCALE * _SCALE  # what was small before is negligible now
        value = value / self.scale
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)

    def finalize(self) -> Any:  # float | None (typeshed's protocol says int)
        if not self.n:
            return None
        result = math.sqrt(max(0.0, self.m2 / self.n)) * self.scale
        return result if math.isfinite(result) else None


_LARGE = 2.0**500
_SCALE = 2.0**600


def extreme_key(inst: str) -> str | None:
    """What min and max order a Property that holds no number by (decision 054): a
    DateTime, Date or Time (a typed value, {"@type": ..., "@value": ...}) by its instant
    under its kind's tag, as attr_index orders them for q (index.ts_key), then the value;
    a string by its characters. None for the rest (objects, arrays, deletion markers)."""
    doc = orjson.loads(inst)
    if doc.get("type") != "Property" or "deletedAt" in doc:
        return None
    value = doc.get("value")
    if isinstance(value, str):
        return _STRING + value
    if isinstance(value, dict) and isinstance(value.get("@value"), str) and "@type" in value:
        key = ts_key(value["@value"])
        if key is not None:
            return key + _APART + orjson.dumps(value).decode()
    return None


def ordered_value(key: str | None) -> Any:
    """The value an extreme_key was made from."""
    if key is None:
        return None
    if key.startswith(_STRING):
        return key[len(_STRING) :]
    return orjson.loads(key.partition(_APART)[2])


_APART = "\x1f"  # after a typed value's instant: below any character its JSON starts with
_STRING = "s" + _APART  # a tag ts_key gives no kind


def epoch_of(text: Any) -> float | None:
    """Seconds since the epoch of a stored DateTime, to the microsecond (None if it is none)."""
    if not isinstance(text, str):
        return None
    try:
        return parse_ts(text).timestamp()
    except (BadRequestData, OverflowError):
        return None


def types_union(stored: str, sent: str | None) -> str:
    """A temporal entity's types (JSON arrays) with those of a write added, in order: its
    history stays findable by every type the entity had (decision 032)."""
    if sent is None or sent == stored:  # most writes: the same types
        return stored
    kept: list[str] = orjson.loads(stored)
    merged = list(dict.fromkeys([*kept, *orjson.loads(sent)]))
    return stored if len(merged) == len(kept) else orjson.dumps(merged).decode()


def register(conn: sqlite3.Connection) -> None:
    """Install the functions every connection needs."""
    conn.create_function("regexp", 2, checked(regexp), deterministic=True)
    conn.create_function("regexp_any", 2, checked(regexp_any), deterministic=True)
    conn.create_function("pattern_fits", 2, pattern_fits, deterministic=True)
    conn.create_function("scope_match", 2, checked(scope_match), deterministic=True)
    conn.create_function(
        "period_index",
        4,
        lambda start, t, months, seconds: (
            None if t is None else period_index(start, t, months, seconds)
        ),
        deterministic=True,
    )
    conn.create_function(
        "period_edge",
        4,
        lambda start, i, months, seconds: period_edge(start, i, months, seconds),
        deterministic=True,
    )
    conn.create_function("q_match", 2, checked(q_match), deterministic=True)
    conn.create_function("q_match_doc", 2, checked(q_match_doc), deterministic=True)
    conn.create_function("order_key", 2, checked(order_key), deterministic=True)
    conn.create_function("index_rows", 1, index_rows, deterministic=True)
    conn.create_function("geo_box", 1, geo_box_text, deterministic=True)
    conn.create_function("distinct_key", 1, distinct_key, deterministic=True)
    conn.create_function("epoch_of", 1, epoch_of, deterministic=True)
    conn.create_function("extreme_key", 1, checked(extreme_key), deterministic=True)
    conn.create_function("types_union", 2, types_union, deterministic=True)
    conn.create_function("type_set_key", 1, typesets.sql_key, deterministic=True)
    conn.create_aggregate("stddev_pop", 1, PopulationStddev)
