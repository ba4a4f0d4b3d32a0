"""Compile the backend-neutral query AST to SQLite WHERE clauses over the entities table."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from cityhub.ngsild.core_context import NGSI_LD
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query import ast
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import typestats
from cityhub.store.sqlite.names import AttrNames

_SQL_OPS = {"==": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
_META_SUBS = {
    NGSI_LD + "observedAt": "observedAt",
    NGSI_LD + "createdAt": "createdAt",
    NGSI_LD + "modifiedAt": "modifiedAt",
    NGSI_LD + "unitCode": "unitCode",
    NGSI_LD + "datasetId": "datasetId",
}
_ENTITY_TIMES = {NGSI_LD + "createdAt": "e.created_at", NGSI_LD + "modifiedAt": "e.modified_at"}
_TIME_KINDS = ("datetime", "date", "time")
MAX_PARAMS = 32000  # SQLite takes 32,766 parameters in one statement; the rest is headroom
LONG_LIST = 100  # ids beyond which an IN list is one JSON parameter
SELECTIVE = 2000  # matches below which a q term is evaluated once as an IN list
_RANGE_OPS = frozenset({"==", ">", ">=", "<", "<="})
_VALUE_INDEX = {"a.num": "attr_index_num", "a.txt": "attr_index_txt", "a.ts": "attr_index_ts"}
_KEYED = ("value", "json", "languageMap")
_ORDER_MEMBERS = {
    "id": "e.id",
    "type": "json_extract(e.doc, '$.type[0]')",
    "createdAt": "e.created_at",
    "modifiedAt": "e.modified_at",
}


class Compiler:
    """Accumulates SQL fragments and their parameters for one query."""

    def __init__(
        self,
        conn: sqlite3.Connection | None = None,
        pk: str = "e.pk",
        names: AttrNames | None = None,
    ) -> None:
        self.params: list[Any] = []
        self.geo_queries: list[Any] = []
        self.conn = conn  # when given, selectivity probes choose how each q term is joined
        self.pk = pk  # t.pk when the query is driven from entity_types (one type)
        self.names = names
        # an uncorrelated IN list (a selective q term, a geoQ) does the work once, not per
        # candidate row: splitting the candidates would only do it twice
        self.narrowed = False

    def p(self, value: Any) -> str:
        """A bound parameter (a statement takes at most MAX_PARAMS)."""
        if len(self.params) >= MAX_PARAMS:
            raise BadRequestData("the query is too large: shorten its q, type or id lists")
        self.params.append(value)
        return "?"

    def nid(self, name: str) -> int:
        """The attr_index id of an attribute name (MISSING when nothing has it)."""
        if self.names is None or self.conn is None:
            raise RuntimeError("attribute conditions need the store's connection and names")
        return self.names.lookup(self.conn, name)

    # -- the whole selection -----------------------------------------------------------------
    def where(self, tenant: str, query: EntityQuery) -> str:
        """The WHERE clause (without the keyword) for an EntityQuery.

        Driven from entity_types (pk = t.pk), the single type is the first condition and every
        index-only condition tests t.pk, so entity rows are read only for what matches.
        """
        if self.pk == "t.pk":
            parts = [f"t.tenant = {self.p(tenant)} AND t.type = {self.p(query.types.name)}"]
        else:
            parts = [f"e.tenant = {self.p(tenant)}"]
        own_types = query.types if self.pk != "t.pk" else None
        parts += self.selector(query.ids, query.id_pattern, own_types, "e.id", tenant)
        if query.selectors:
            parts.append(self.selectors(query.selectors, "e.id", tenant))
        if query.attrs:
            marks = ",".join(self.p(self.nid(a)) for a in query.attrs)
            parts.append(
                f"EXISTS (SELECT 1 FROM attr_index a WHERE a.pk = {self.pk} AND a.nid IN ({marks}))"
            )
        if query.q is not None:
            parts.append(self.q(query.q))
        if query.scope is not None:
            parts.append(self.scope(query.scope))
        if query.geo is not None:
            parts.append(self.geo(query.geo, self._walk(tenant, query) if query.count else None))
        return " AND ".join(parts)

    def _walk(self, tenant: str, query: EntityQuery) -> int:
        """About how many entities the query walks: its type's, or all of the tenant's (the
        discovery counts; an entity of several types counts once per type)."""
        if self.conn is None:
            return 0
        only = query.types.name if self.pk == "t.pk" and query.types is not None else None
        return sum(n for _, n in typestats.type_counts(self.conn, tenant, only))

    def order_by(self, order: Any, tiebreak: str) -> str:
        """ORDER BY terms for orderBy paths (default instances), then insertion order."""
        terms = []
        for path, desc in order:
            head = path[0]
            if head in _ORDER_MEMBERS:
                expr = _ORDER_MEMBERS[head]
            else:
                steps = ["attrs", head, "0"]
                for sub in path[1:]:
                    steps += (
                        [sub]
                        if sub in ("createdAt", "modifiedAt", "observedAt")
                        else [
                            "sub",
                            sub,
                        ]
                    )
                base = json_path(steps).replace('."0"', "[0]")
                last = path[-1] if len(path) > 1 else ""
                if last in ("createdAt", "modifiedAt", "observedAt"):
                    expr = f"json_extract(e.doc, {self.p(base)})"
                else:
                    expr = (
                        f"coalesce(json_extract(e.doc, {self.p(base + '.value')}), "
                        f"json_extract(e.doc, {self.p(base + '.object')}))"
                    )
            terms.append(f"{expr} {'DESC' if desc else 'ASC'}")
        return ", ".join([*terms, tiebreak])

    def selector(
        self, ids: Any, id_pattern: str | None, types: Any, id_col: str, tenant: str
    ) -> list[str]:
        """The conditions of one entity selection (ids, idPattern, type expression) on the
        column holding the id: `e.id` (entities) or `tt.id` (tentities)."""
        parts = []
        if ids is not None:
            parts.append(self.in_list(id_col, ids))
        if id_pattern is not None:
            parts.append(f"regexp({self.p(id_pattern)}, {id_col})")
        if types is not None:
            parts.append(self.types(tenant, types, id_col))
        return parts

    def selectors(self, selectors: Any, id_col: str, tenant: str) -> str:
        """Several EntitySelectors: an entity meets any of them."""
        alternatives = [
            balanced(" AND ", self.selector(s.ids, s.id_pattern, s.types, id_col, tenant) or ["1"])
            for s in selectors
        ]
        return balanced(" OR ", alternatives)

    def in_list(self, expr: str, values: Any) -> str:
        """expr IN (values); a long list is one JSON parameter, since a statement takes at
        most 32,766 parameters."""
        if len(values) > LONG_LIST:
            return (
                f"{expr} IN (SELECT value FROM json_each({self.p(orjson.dumps(values).decode())}))"
            )
        return f"{expr} IN ({','.join(self.p(v) for v in values)})"

    def types(self, tenant: str, node: Any, id_col: str = "e.id") -> str:
        """Type expressions: each name is an index look-up on entity_types, or, when the id
        column is tentities' (`tt.id`), a match in its JSON array of types."""
        if isinstance(node, ast.TypeName):
            if id_col == "tt.id":
                return (
                    "EXISTS (SELECT 1 FROM json_each(tt.types) jt "
                    f"WHERE jt.value = {self.p(node.name)})"
                )
            return (
                "e.pk IN (SELECT t.pk FROM entity_types t WHERE t.tenant = "
                f"{self.p(tenant)} AND t.type = {self.p(node.name)})"
            )
        joiner = " AND " if isinstance(node, ast.TypeAnd) else " OR "
        return balanced(joiner, [self.types(tenant, n, id_col) for n in node.items])

    def scope(self, node: Any) -> str:
        """scopeQ: a Python function matches each stored scope against the pattern."""
        if isinstance(node, ast.ScopePattern):
            return (
                "EXISTS (SELECT 1 FROM json_each(e.doc, '$.scope') s "
                f"WHERE scope_match({self.p(node.path)}, s.value))"
            )
        joiner = " AND " if isinstance(node, ast.ScopeAnd) else " OR "
        return balanced(joiner, [self.scope(n) for n in node.items])

    def geo(self, gq: Any, walk: int | None = None) -> str:
        """geoQ: an R*Tree prefilter on bounding boxes, then the exact shapely predicate.

        Few candidate boxes: an uncorrelated `pk IN (...)`, so SQLite walks the R*Tree once and
        calls shapely only for those. Many (a city-wide polygon): a correlated test of each
        walked entity's own geometry, which stops at the first LIMIT matches instead of testing
        every point in the city first. "Many" is more than SELECTIVE for a page; for a count,
        which tests every walked entity either way, more than `walk` (the entities walked).
        Either way the plan counts as narrowed: geo_match lives on this query's connection
        only, so a count is never split.
        """
        self.geo_queries.append(gq)
        self.narrowed = True
        qid = len(self.geo_queries) - 1
        box = prefilter_box(gq)
        if box is not None and not self._crowded(box, SELECTIVE if walk is None else walk):
            minx, miny, maxx, maxy = box
            return (
                f"{self.pk} IN (SELECT g.pk FROM geo_rtree r CROSS JOIN geo g ON g.gid = r.gid "
                f"WHERE r.maxx >= {self.p(minx)} AND r.minx <= {self.p(maxx)} AND "
                f"r.maxy >= {self.p(miny)} AND r.miny <= {self.p(maxy)} AND "
                f"g.name = {self.p(gq.geoproperty)} AND geo_match({qid}, g.geojson))"
            )
        # disjoint and minDistance have no box; a crowded box prefilters nothing worth a pass
        return (
            f"EXISTS (SELECT 1 FROM geo g WHERE g.pk = {self.pk} "
            f"AND g.name = {self.p(gq.geoproperty)} AND geo_match({qid}, g.geojson))"
        )

    def _crowded(self, box: tuple[float, float, float, float], limit: int) -> bool:
        """Does the R*Tree hold more than `limit` boxes that meet this one?"""
        if self.conn is None:
            return False
        minx, miny, maxx, maxy = box
        (n,) = self.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM geo_rtree WHERE maxx >= ? AND minx <= ? "
            "AND maxy >= ? AND miny <= ? LIMIT ?)",
            (minx, maxx, miny, maxy, limit + 1),
        ).fetchone()
        return bool(n > limit)

    # -- q -----------------------------------------------------------------------------------
    def q(self, node: Any) -> str:
        """A q expression."""
        if isinstance(node, ast.And | ast.Or):
            joiner = " AND " if isinstance(node, ast.And) else " OR "
            return balanced(joiner, [self.q(n) for n in node.items])
        if isinstance(node, ast.Exists):
            return self.exists(node.path)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        raise BadRequestData(f"unsupported q term {node!r}")

    def exists(self, path: Any) -> str:
        """A bare attribute path: the attribute (or its sub-attribute) is present."""
        if path.attr in _ENTITY_TIMES and not path.sub:
            return "1"
        if not path.sub and not path.keys:
            return (
                "EXISTS (SELECT 1 FROM attr_index a "
                f"WHERE a.pk = {self.pk} AND a.nid = {self.p(self.nid(path.attr))})"
            )
        head = f"EXISTS (SELECT 1 FROM {self._instances(path.attr)} WHERE "
        return f"{head}{self._json(path)} IS NOT NULL)"

    def compare(self, node: Any) -> str:
        """A comparison; top-level attributes use attr_index, deeper paths JSON functions."""
        path = node.path
        if path.attr in _ENTITY_TIMES and not path.sub and not path.keys:
            return self._cmp(_ENTITY_TIMES[path.attr], node.op, node.value, ts_column=True)
        if not path.sub and not path.keys:
            return self._top_level(node)
        head = f"EXISTS (SELECT 1 FROM {self._instances(path.attr)} WHERE "
        if path.keys == ("*",) and not path.sub:
            # name[*]: any language of a LanguageProperty
            langs = f"json_each(j.value, {self.p('$.languageMap')}) l"
            cond = self._cmp("l.value", node.op, node.value, json_expr=True)
            return f"{head}EXISTS (SELECT 1 FROM {langs} WHERE {cond}))"
        expr = self._json(path)
        return head + self._cmp(expr, node.op, node.value, json_expr=True) + ")"

    def _instances(self, attr: str) -> str:
        return f"json_each(e.doc, {self.p(json_path(['attrs', attr]))}) j"

    def _json(self, path: Any) -> str:
        """The JSON expression of a sub-attribute / key path inside one instance (j.value)."""
        steps: list[str] = []
        for i, sub in enumerate(path.sub):
            if sub in _META_SUBS and i == len(path.sub) - 1:
                steps.append(_META_SUBS[sub])
                return f"json_extract(j.value, {self.p(json_path(steps))})"
            steps += ["sub", sub]
        if path.keys:
            # The keyed content is a Property's value, a JsonProperty's json or a
            # LanguageProperty's languageMap, whichever the instance holds.
            roots = [json_path([*steps, member, *path.keys]) for member in _KEYED]
            parts = ", ".join(f"json_extract(j.value, {self.p(r)})" for r in roots)
            return f"coalesce({parts})"
        base = json_path(steps)
        return (
            f"coalesce(json_extract(j.value, {self.p(base + '.value')}), "
            f"json_extract(j.value, {self.p(base + '.object')}))"
        )

    def _column(self, node: Any) -> str:
        kinds = _kinds(node.value)
        if kinds & set(_TIME_KINDS):
            return "a.ts"
        return "a.num" if kinds & {"number", "bool"} else "a.txt"

    def _top_level(self, node: Any) -> str:
        """A top-level comparison, as the cheaper of two equivalent forms.

        Few matches (a probe of the value index finds at most SELECTIVE rows): an uncorrelated
        `pk IN (...)` that SQLite computes once. Many: a correlated look-up per candidate on
        the (pk, name) primary key, which stops at the first LIMIT rows.
        """
        column = self._column(node)
        value_index = _VALUE_INDEX[column]
        if value_index and node.op in _RANGE_OPS and self._selective(node, column, value_index):
            self.narrowed = True
            head = (
                f"{self.pk} IN (SELECT a.pk FROM attr_index a INDEXED BY {value_index} "
                f"WHERE a.nid = {self.p(self.nid(node.path.attr))} AND "
            )
            return head + self._cmp(column, node.op, node.value, ts_column=column == "a.ts") + ")"
        head = (
            "EXISTS (SELECT 1 FROM attr_index a "
            f"WHERE a.pk = {self.pk} AND a.nid = {self.p(self.nid(node.path.attr))} AND "
        )
        # "+column" keeps SQLite on the (pk, name) primary key instead of a value index
        cond = self._cmp("+" + column, node.op, node.value, ts_column=column == "a.ts")
        return head + cond + ")"

    def _selective(self, node: Any, column: str, value_index: str) -> bool:
        """Probe the value index: does this term match at most SELECTIVE attribute rows?"""
        if self.conn is None:
            return False
        probe = Compiler()
        cond = probe._cmp(column, node.op, node.value, ts_column=column == "a.ts")
        sql = (
            f"SELECT count(*) FROM (SELECT 1 FROM attr_index a INDEXED BY {value_index} "
            f"WHERE a.nid = ? AND {cond} LIMIT {SELECTIVE + 1})"
        )
        (n,) = self.conn.execute(sql, [self.nid(node.path.attr), *probe.params]).fetchone()
        return bool(n <= SELECTIVE)

    def _cmp(
        self, expr: str, op: str, value: Any, *, ts_column: bool = False, json_expr: bool = False
    ) -> str:
        """expr OP value for every value form: single, list (any of) and range."""
        if op in ("~=", "!~="):
            pattern = self.p(str(_scalar(value, ts_column)))
            match = f"{expr} REGEXP {pattern}"
            return match if op == "~=" else f"NOT {match}"
        if json_expr and _kinds(value) & set(_TIME_KINDS):
            expr = f"norm_ts({expr})"
            ts_column = True
        if isinstance(value, ast.Range):
            lo = self.p(_scalar(value.low, ts_column))
            hi = self.p(_scalar(value.high, ts_column))
            inside = f"{expr} BETWEEN {lo} AND {hi}"
            return inside if op == "==" else f"NOT ({inside})"
        if isinstance(value, ast.ValueList):
            marks = ",".join(self.p(_scalar(v, ts_column)) for v in value.values)
            return f"{expr} IN ({marks})" if op == "==" else f"{expr} NOT IN ({marks})"
        if op not in _SQL_OPS:
            raise BadRequestData(f"unsupported operator {op!r}")
        return f"{expr} {_SQL_OPS[op]} {self.p(_scalar(value, ts_column))}"


def balanced(joiner: str, parts: list[str]) -> str:
    """Terms joined as a balanced tree: SQLite refuses expressions nested over 1,000 deep,
    and a flat chain of n terms nests n deep."""
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    return f"({balanced(joiner, parts[:mid])}{joiner}{balanced(joiner, parts[mid:])})"


def _kinds(value: Any) -> set[str]:
    if isinstance(value, ast.Range):
        return {value.low.kind, value.high.kind}
    if isinstance(value, ast.ValueList):
        return {v.kind for v in value.values}
    return {value.kind}


def _scalar(value: Any, ts: bool) -> Any:
    """The SQL parameter for a q literal."""
    if value.kind in _TIME_KINDS:
        return getattr(value, "norm", None) or value.value
    if value.kind == "bool":
        return 1.0 if value.value else 0.0
    if ts and isinstance(value.value, str):
        from cityhub.store.sqlite.index import norm_datetime

        return norm_datetime(value.value) or value.value
    return value.value


def json_path(steps: list[str]) -> str:
    """A SQLite JSON path with every label quoted (IRIs hold '.' and ':')."""
    return "$" + "".join(f'."{s}"' for s in steps)


def prefilter_box(gq: Any) -> tuple[float, float, float, float] | None:
    """The lon/lat box any match must touch, or None when the predicate can't be boxed."""
    rel = gq.georel
    if rel in ("disjoint",) or (rel == "near" and getattr(gq, "min_distance", None) is not None):
        return None
    minx, miny, maxx, maxy = gq.geometry.bounds
    dist = getattr(gq, "max_distance", None) if rel == "near" else None
    if dist:
        import math

        dlat = dist / 111_000.0
        coslat = max(0.01, math.cos(math.radians((miny + maxy) / 2)))
        dlon = dist / (111_320.0 * coslat)
        return minx - dlon * 1.01, miny - dlat * 1.01, maxx + dlon * 1.01, maxy + dlat * 1.01
    return minx, miny, maxx, maxy
