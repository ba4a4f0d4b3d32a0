"""Compile the backend-neutral query AST to SQLite WHERE clauses over the entities table."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from cityhub.ngsild.core_context import NGSI_LD
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query import ast
from cityhub.ngsild.query.distance import reach_box
from cityhub.ngsild.query.evaluate import ENTITY_FIELDS
from cityhub.ngsild.query.geo import every_instance
from cityhub.store.base import EntityQuery, OrderKey
from cityhub.store.sqlite import ordering, typestats
from cityhub.store.sqlite.functions import encode_q, encode_term
from cityhub.store.sqlite.index import ELEMENT, EXACT, REL, literal_key
from cityhub.store.sqlite.names import AttrNames

_SQL_OPS = {"==": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
_ENTITY_TIMES = {NGSI_LD + "createdAt": "e.created_at", NGSI_LD + "modifiedAt": "e.modified_at"}
MAX_PARAMS = 32000  # SQLite takes 32,766 parameters in one statement; the rest is headroom
LONG_LIST = 100  # ids beyond which an IN list is one JSON parameter
SELECTIVE = 2000  # matches below which a q term is evaluated once as an IN list
# type names ORed past which they are one list of their entities: one list per name was
# probed per walked entity per name (301 names over 105,000 entities: 4.8 s), but for a few
# names their separate lists, each built in pk order, cost less (5 names and a rare q over
# 100,000 entities: 22 ms of CPU, one list 37)
SEPARATE_NAMES = 8
EVALUATED_TERMS = 64  # correlated q terms past which the evaluator takes the whole q (q_whole)
_RANGE_OPS = frozenset({"==", ">", ">=", "<", "<="})
# The bounds of the pk span a count_sql statement counts, bound per half (SqliteStore's split)
SPAN_LOW, SPAN_HIGH = object(), object()
_VALUE_INDEX = {"num": "attr_index_num", "txt": "attr_index_txt", "ts": "attr_index_ts"}
_NOT_REL = f"(a.seq & {REL}) = 0"  # the row is not a Relationship's (index.REL)
_SCOPE = "json_extract(e.doc, '$.scope[0]')"
_ABSENT = f"x'{ordering.ABSENT.hex()}'"
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
        tenant: str | None = None,
    ) -> None:
        self.params: list[Any] = []
        self.geo_queries: list[Any] = []
        self.conn = conn  # when given, selectivity probes choose how each q term is joined
        self.pk = pk  # t.pk when the query is driven from entity_types (one type)
        self.names = names
        # an uncorrelated IN list (a selective q term, a geoQ) does the work once, not per
        # candidate row: splitting the candidates would only do it twice
        self.narrowed = False
        self.correlated = 0  # correlated probes of attr_index written (q_whole)
        # the tenant, and the one type when driven by it: a value index range lies within the
        # type sets that hold it, else within every one of the tenant's (typesets.py)
        self.tenant = tenant  # where() sets it
        self.type_name: str | None = None

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
        self.tenant = tenant
        if self.pk == "t.pk":
            self.type_name = query.types.name
            parts = [f"t.tenant = {self.p(tenant)} AND t.type = {self.p(query.types.name)}"]
        else:
            parts = [f"e.tenant = {self.p(tenant)}"]
        own_types = query.types if self.pk != "t.pk" else None
        parts += self.selector(query.ids, query.id_pattern, own_types, "e.id", tenant)
        if query.selectors:
            parts += self.selector_ids(query, "e.id")
            parts.append(self.selectors(query.selectors, "e.id", tenant))
        if id_bound(query) is not None:
            self.narrowed = True  # one row per id at most: a count is never split in halves
        if query.attrs:
            marks = ",".join(self.p(self.nid(a)) for a in query.attrs)
            parts.append(
                f"EXISTS (SELECT 1 FROM attr_index a WHERE a.pk = {self.pk} AND a.nid IN ({marks}))"
            )
        if query.beyond is not None:
            parts.append(self.beyond(query.beyond))
        if query.q is not None:
            parts.append(self.q_whole(query.q))
        if query.scope is not None:
            parts.append(self.scope(query.scope))
        if query.geo is not None:
            parts.append(self.geo(query.geo, self._walk(tenant, query) if query.count else None))
        return " AND ".join(parts)

    def count_sql(self, tenant: str, query: EntityQuery) -> str | None:
        """count(*) of a query of one type whose q is a term, or an AND of terms, at least one
        of which a value index answers; None for any other query.

        Driven by that index (decision 067): one range per type set holding the type (pk
        d.pk), each entity counted at its first matching row; the other such terms are IN
        lists SQLite builds once and probes per row, the rest are tested per row. The walk
        of every entity of the type with a look-up per term took 174M instructions for
        15,791 matches among 20,000 (bench (e)). Only entities whose pk lies in a span are
        counted, its bounds bound as SPAN_LOW and SPAN_HIGH (`span_params`), tested before
        anything else per row and within each IN list, so two halves of the span counted at
        once each cost about half (4.8 ms of CPU each for bench (e)'s 8.5 ms; a span test
        after the others saved nothing).
        """
        plain = (query.ids, query.id_pattern, query.selectors, query.scope, query.geo)
        if not isinstance(query.types, ast.TypeName) or query.q is None or any(plain):
            return None
        if query.attrs is not None or query.beyond is not None:
            return None
        node = distinct(query.q)
        if ast.leaves(node) > EVALUATED_TERMS:
            return None
        items = list(node.items) if isinstance(node, ast.And) else [node]
        indexed = [n for n in items if isinstance(n, ast.Compare) and _indexed(n)]
        if not indexed:
            return None
        self.tenant, self.type_name = tenant, query.types.name
        # a range drives (its rows come in value order); equalities list pks in pk order,
        # which SQLite's IN list takes in cheaply
        driver = next((n for n in indexed if n.op != "=="), indexed[0])
        index = _VALUE_INDEX[str(_column(driver.value))]
        parts = [
            f"d.nid = {self.p(self.nid(driver.path.attr))} AND d.tid IN {self._tids()} AND "
            + self._match("d", driver.op, driver.value),
            f"+d.pk BETWEEN {self.p(SPAN_LOW)} AND {self.p(SPAN_HIGH)}",
            # each entity once: at its first matching row (element 0 of target 0 is seq 0)
            "(d.seq = 0 OR NOT EXISTS (SELECT 1 FROM attr_index c WHERE c.pk = d.pk AND "
            f"c.nid = d.nid AND c.seq < d.seq AND {self._match('+c', driver.op, driver.value)}))",
        ]
        for item in items:
            if item is driver:
                continue
            if item in indexed:  # "+": probed, not a seek per row
                parts.append(f"+d.pk IN {self._index_range(item, span=True)}")
            else:
                parts.append(self.q(item))
        where = " AND ".join(parts)
        source = f"attr_index d INDEXED BY {index}"
        if "e." in where:  # a term for the evaluator reads the document
            source += " CROSS JOIN entities e ON e.pk = d.pk"
        return f"SELECT count(*) FROM {source} WHERE {where}"

    def _tids(self) -> str:
        """The type sets a value index range lies in: those holding the query's one type,
        else all of its tenant's (one range each)."""
        if self.tenant is None:
            raise RuntimeError("value index ranges need the query's tenant")
        if self.type_name is not None:
            return (
                f"(SELECT tid FROM type_set_members WHERE tenant = {self.p(self.tenant)} "
                f"AND type = {self.p(self.type_name)})"
            )
        return f"(SELECT tid FROM type_sets WHERE tenant = {self.p(self.tenant)})"

    def _index_range(self, node: Any, what: str = "a.pk", span: bool = False) -> str:
        """(the pks of the rows a value index finds for a comparison), an uncorrelated list;
        `what` another column list (the probe's "1" reads no column of the rows); `span`:
        only pks within count_sql's span."""
        column = str(_column(node.value))
        head = (
            f"(SELECT {what} FROM attr_index a INDEXED BY {_VALUE_INDEX[column]} "
            f"WHERE a.nid = {self.p(self.nid(node.path.attr))} AND a.tid IN {self._tids()} AND "
        )
        if span:
            head += f"a.pk BETWEEN {self.p(SPAN_LOW)} AND {self.p(SPAN_HIGH)} AND "
        return head + self._match("a", node.op, node.value) + ")"

    def span_params(self, low: int, high: int) -> list[Any]:
        """The parameters of a count_sql statement that counts the pks from low to high."""
        return [low if v is SPAN_LOW else high if v is SPAN_HIGH else v for v in self.params]

    def beyond(self, omitted: tuple[str, ...]) -> str:
        """The entity has an attribute not omitted, or a scope unless "scope" is omitted too
        (EntityQuery.beyond); every attribute has attr_index rows (index.NO_TARGET)."""
        marks = ",".join(self.p(self.nid(a)) for a in omitted if a != "scope")
        others = f" AND a.nid NOT IN ({marks})" if marks else ""
        cond = f"EXISTS (SELECT 1 FROM attr_index a WHERE a.pk = {self.pk}{others})"
        if "scope" in omitted:
            return cond
        return f"({cond} OR json_extract(e.doc, '$.scope') IS NOT NULL)"

    def _walk(self, tenant: str, query: EntityQuery) -> int:
        """About how many entities the query walks: its type's, or all of the tenant's (the
        discovery counts; an entity of several types counts once per type)."""
        if self.conn is None:
            return 0
        only = query.types.name if self.pk == "t.pk" and query.types is not None else None
        return sum(n for _, n in typestats.type_counts(self.conn, tenant, only))

    def order_by(self, order: tuple[OrderKey, ...], tiebreak: str) -> str:
        """ORDER BY terms for orderBy keys (the default instance's target), then insertion
        order. An attribute key is one byte string per row (ordering.order_key): its
        direction, and null and absent values last, are in its bytes."""
        terms = []
        for key in order:
            head = key.path[0]
            direction = "DESC" if key.desc else "ASC"
            if head == "scope":  # the first scope; an entity without one last either way
                terms += [f"{_SCOPE} IS NULL", f"{_SCOPE} {direction}"]
                continue
            if head in _ORDER_MEMBERS:
                terms.append(f"{_ORDER_MEMBERS[head]} {direction}")
                continue
            spec = orjson.dumps([key.path[1:], key.keys, key.desc]).decode()
            # the default instance (no datasetId), wherever it sits among the instances
            terms.append(
                f"coalesce((SELECT order_key(j.value, {self.p(spec)}) FROM json_each(e.doc, "
                f"{self.p(json_path(['attrs', head]))}) j "
                f"WHERE json_extract(j.value, '$.datasetId') IS NULL), {_ABSENT})"
            )
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
            parts.append(self.types(tenant, types, id_col, by_id=ids is not None))
        return parts

    def selector_ids(self, query: EntityQuery, id_col: str) -> list[str]:
        """The ids of all the selectors together, when each names ids and the query itself
        does not: the index on (tenant, id) then finds the candidates, which the
        alternatives test, instead of a walk of the whole tenant."""
        if query.ids is not None or (ids := id_bound(query)) is None:
            return []
        return [self.in_list(id_col, ids)]

    def selectors(self, selectors: Any, id_col: str, tenant: str) -> str:
        """Several EntitySelectors: an entity meets any of them. Those naming only a type
        expression are one alternative, their expressions ORed, so their names are one
        look-up (`types`): 2,001 type-only selectors, one list each, ran 30 s. Those naming
        an idPattern and no ids are one alternative per type expression, their patterns
        searched together (`regexp_any`): 1,000 of them, one regexp each, also ran 30 s."""
        only = tuple(s.types for s in selectors if _type_only(s))
        alternatives = [self.types(tenant, ast.TypeOr(only), id_col)] if len(only) > 1 else []
        patterns: dict[Any, list[str]] = {}  # idPattern-only selectors, by type expression
        for s in selectors:
            if s.ids is None and s.id_pattern is not None:
                patterns.setdefault(s.types, []).append(s.id_pattern)
        for types, listed in patterns.items():
            if len(listed) > 1:
                typed = [] if types is None else [self.types(tenant, types, id_col)]
                found = f"regexp_any({self.p(orjson.dumps(listed).decode())}, {id_col})"
                alternatives.append(balanced(" AND ", [*typed, found]))
        alternatives += [
            balanced(" AND ", self.selector(s.ids, s.id_pattern, s.types, id_col, tenant) or ["1"])
            for s in selectors
            if not (len(only) > 1 and _type_only(s))
            and not (s.ids is None and s.id_pattern is not None and len(patterns[s.types]) > 1)
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

    def types(self, tenant: str, node: Any, id_col: str = "e.id", by_id: bool = False) -> str:
        """Type expressions: each name is an index look-up on entity_types, or, when the id
        column is tentities' (`tt.id`), a match in its JSON array of types.

        Beside an id list (`by_id`) each name is tested per entity found by id: the
        uncorrelated `pk IN (...)` listed every entity of the type first (597 ms for two ids
        among 400,000 entities of that type, 0.06 ms correlated).

        The names an OR holds (`A,B,C`, nested ORs too), past SEPARATE_NAMES of them, are
        one list of their entities; beside an id list or in tentities, one test per entity.
        """
        if isinstance(node, ast.TypeName):
            return self._type_names(tenant, [node.name], id_col, by_id)
        if isinstance(node, ast.TypeAnd):
            return balanced(" AND ", [self.types(tenant, n, id_col, by_id) for n in node.items])
        names, others = or_names(node)
        parts = [self._type_names(tenant, names, id_col, by_id)] if names else []
        parts += [self.types(tenant, n, id_col, by_id) for n in others]
        return balanced(" OR ", parts)

    def _type_names(self, tenant: str, names: list[str], id_col: str, by_id: bool) -> str:
        """The entity has any of these types (see `types`)."""
        if id_col == "tt.id":
            return (
                "EXISTS (SELECT 1 FROM json_each(tt.types) jt "
                f"WHERE {self.in_list('jt.value', names)})"
            )
        if by_id:
            return (
                f"EXISTS (SELECT 1 FROM entity_types ty WHERE ty.tenant = {self.p(tenant)} "
                f"AND {self.in_list('ty.type', names)} AND ty.pk = e.pk)"
            )
        if len(names) <= SEPARATE_NAMES:  # a list per name, ORed: built in pk order
            return balanced(" OR ", [self._type_list(tenant, [n], "e.pk") for n in names])
        # "+": the list is a test per walked entity, as the OR was; a list SQLite could seek
        # drove the walk instead of a selective q's short list
        return self._type_list(tenant, names, "+e.pk")

    def _type_list(self, tenant: str, names: list[str], pk: str) -> str:
        """pk is among the entities of these types (an uncorrelated list, built once)."""
        return (
            f"{pk} IN (SELECT t.pk FROM entity_types t WHERE t.tenant = {self.p(tenant)} "
            f"AND {self.in_list('t.type', names)})"
        )

    def scope(self, node: Any, scopes: str = "e.doc, '$.scope'") -> str:
        """scopeQ: a Python function matches each stored scope against the pattern; `scopes`
        are json_each's arguments that list them (tentities: its own `tt.scope` array)."""
        if isinstance(node, ast.ScopePattern):
            return (
                f"EXISTS (SELECT 1 FROM json_each({scopes}) s "
                f"WHERE scope_match({self.p(node.path)}, s.value))"
            )
        joiner = " AND " if isinstance(node, ast.ScopeAnd) else " OR "
        return balanced(joiner, [self.scope(n, scopes) for n in node.items])

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
        if every_instance(gq):  # held by the entity, and by each of its instances
            return (
                f"(SELECT min(geo_match({qid}, g.geojson)) FROM geo g WHERE g.pk = {self.pk} "
                f"AND g.name = {self.p(gq.geoproperty)}) = 1"
            )
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
    def q_whole(self, node: Any) -> str:
        """A query's whole q, its repeated terms dropped. Past EVALUATED_TERMS correlated
        probes of attr_index, the reference evaluator runs on each candidate entity instead
        (functions.q_match_doc, one parse of its document): SQLite's cost per row grew with
        the square of their number (400 `!=` terms took 14 s over 455 entities). Terms that
        became uncorrelated IN lists (few matches) cost the same however many there are."""
        node = distinct(node)
        if ast.leaves(node) <= EVALUATED_TERMS:
            return self.q(node)
        params, correlated, narrowed = len(self.params), self.correlated, self.narrowed
        sql = self.q(node)
        if self.correlated - correlated <= EVALUATED_TERMS:
            return sql  # most terms became uncorrelated IN lists, computed once each
        del self.params[params:]
        self.correlated, self.narrowed = correlated, narrowed
        return f"q_match_doc({self.p(encode_q(node))}, e.doc)"

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
        """A bare attribute path: the attribute (or what the path names in it) is present."""
        if path.attr in _ENTITY_TIMES and not path.sub and not path.keys:
            return "1"
        if path.sub or path.keys or path.attr in ENTITY_FIELDS:
            return self._evaluated(ast.Exists(path))
        # seq >= 0: an attribute with nothing to compare is no target (index.NO_TARGET)
        return f"{self._rows(path.attr)} AND a.seq >= 0)"

    def compare(self, node: Any) -> str:
        """A comparison: top-level attributes on attr_index, deeper paths by the evaluator."""
        path = node.path
        plain = not path.sub and not path.keys
        # (a pattern is a string literal, so ~= and !~= take the evaluator's way)
        if plain and path.attr in _ENTITY_TIMES and _kinds(node.value) == {"datetime"}:
            return self._time_column(_ENTITY_TIMES[path.attr], node.op, node.value)
        if not plain or path.attr in ENTITY_FIELDS or _past_exact(node.value):
            return self._evaluated(node)
        return self._top_level(node)

    def _rows(self, attr: str, alias: str = "a") -> str:
        """The opening of an EXISTS over one entity's attr_index rows of an attribute."""
        self.correlated += 1
        return (
            f"EXISTS (SELECT 1 FROM attr_index {alias} WHERE {alias}.pk = {self.pk} "
            f"AND {alias}.nid = {self.p(self.nid(attr))}"
        )

    def _evaluated(self, node: Any) -> str:
        """A term attr_index does not hold (sub-attributes, [key] paths, entity members): the
        reference evaluator on the attribute's stored instances (functions.q_match), for the
        entities that have the attribute."""
        if node.path.attr in ENTITY_FIELDS:
            return f"q_match({self.p(encode_term(node))}, e.doc)"
        has = self._rows(node.path.attr) + ")"  # (parameters bind in the order of the text)
        term = self.p(encode_term(node))
        attr = self.p(json_path(["attrs", node.path.attr]))
        return f"({has} AND q_match({term}, json_extract(e.doc, {attr})))"

    def _top_level(self, node: Any) -> str:
        """A top-level comparison on attr_index (see index.attr_rows for its rows).

        `==` and the orderings, when every value is of one kind, take the cheaper of two
        equivalent forms. Few matches (a probe of the value index finds at most SELECTIVE
        rows): an uncorrelated `pk IN (...)` that SQLite computes once. Many: a correlated
        look-up per candidate on the (pk, nid) primary key, which stops at the first LIMIT
        rows. `!=` and `!~=` look for a target (index.TARGET) that none of whose rows equal
        or match the value; `~=` and the orderings leave Relationships out (index.REL).
        """
        op, value = node.op, node.value
        if op == "!=":  # a target's first row (a), then its others (b): most have none
            head = self._rows(node.path.attr) + f" AND (a.seq & {ELEMENT}) = 0 AND "
            head += f"coalesce({self._equal('+a', value)}, 0) = 0 AND NOT EXISTS "
            inner = (
                "(SELECT 1 FROM attr_index b WHERE b.pk = a.pk AND b.nid = a.nid "
                f"AND b.seq BETWEEN a.seq + 1 AND a.seq + {ELEMENT} AND "
            )
            return head + inner + self._equal("+b", value) + "))"
        if op == "!~=":
            # "+a.txt": a.txt IS NOT NULL alone would let SQLite drive this from the partial
            # index attr_index_txt, every tenant's rows of the attribute for each candidate
            text = str(value.value)
            head = self._rows(node.path.attr) + f" AND +a.txt IS NOT NULL AND {_NOT_REL} "
            head += f"AND pattern_fits({self.p(text)}, a.txt) "  # as the evaluator: searched
            inner = (
                "AND NOT EXISTS (SELECT 1 FROM attr_index b WHERE b.pk = a.pk AND b.nid = a.nid "
                f"AND b.seq BETWEEN a.seq - (a.seq & {ELEMENT}) AND (a.seq | {ELEMENT}) "
            )
            return head + inner + f"AND b.txt REGEXP {self.p(text)}))"
        column = _column(value)
        if column is not None and op in _RANGE_OPS and self._selective(node, column):
            self.narrowed = True
            return f"{self.pk} IN {self._index_range(node)}"
        # "+a.column" keeps SQLite on the (pk, nid) primary key instead of a value index
        return self._rows(node.path.attr) + " AND " + self._match("+a", op, value) + ")"

    def _selective(self, node: Any, column: str) -> bool:
        """Probe the value index: does this term match at most SELECTIVE attribute rows?"""
        if self.conn is None:
            return False
        probe = Compiler(self.conn, names=self.names)
        probe.tenant, probe.type_name = self.tenant, self.type_name
        sql = f"SELECT count(*) FROM ({probe._index_range(node, '1')[1:-1]} LIMIT ?)"
        (n,) = self.conn.execute(sql, [*probe.params, SELECTIVE + 1]).fetchone()
        return bool(n <= SELECTIVE)

    def _match(self, ref: str, op: str, value: Any) -> str:
        """One attr_index row (`a`, or `+a` to keep value indexes out) against `==`, an
        ordering or `~=`: same kind only, Relationships only for `==`."""
        if op == "==":
            return self._equal(ref, value)
        not_rel = " AND " + _NOT_REL.replace("a.", ref.lstrip("+") + ".")
        if op == "~=":
            return f"{ref}.txt REGEXP {self.p(str(value.value))}{not_rel}"
        column, param = literal_key(value)
        cond = f"{ref}.{column} {op} {self.p(param)}"
        if column == "num":  # a Relationship's objects are never numbers
            return cond
        if column == "ts":  # stay within the literal's kind: its tag
            tag = param[0]
            cond += f" AND {ref}.ts > '{tag}'" if op in ("<", "<=") else ""
            cond += f" AND {ref}.ts < '{chr(ord(tag) + 1)}'" if op in (">", ">=") else ""
        return cond + not_rel

    def _equal(self, ref: str, value: Any) -> str:
        """One attr_index row equals a value, any of a list, or lies in a range (same kind)."""
        if isinstance(value, ast.Range):
            column, low = literal_key(value.low)
            _, high = literal_key(value.high)
            return f"{ref}.{column} BETWEEN {self.p(low)} AND {self.p(high)}"
        by_column: dict[str, list[Any]] = {}
        for v in value.values if isinstance(value, ast.ValueList) else (value,):
            column, param = literal_key(v)
            by_column.setdefault(column, []).append(param)
        parts = [
            f"{ref}.{c} IN ({','.join(self.p(v) for v in ps)})"
            if len(ps) > 1
            else f"{ref}.{c} = {self.p(ps[0])}"
            for c, ps in by_column.items()
        ]
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _time_column(self, expr: str, op: str, value: Any) -> str:
        """createdAt / modifiedAt (stored UTC, one per entity) against DateTime literals."""
        if isinstance(value, ast.Range):
            inside = f"{expr} BETWEEN {self.p(value.low.norm)} AND {self.p(value.high.norm)}"
            return inside if op == "==" else f"NOT ({inside})"
        if isinstance(value, ast.ValueList):
            listed = self.in_list(expr, [v.norm for v in value.values])
            return listed if op == "==" else f"NOT ({listed})"
        return f"{expr} {_SQL_OPS[op]} {self.p(value.norm)}"


def id_bound(query: EntityQuery) -> tuple[str, ...] | None:
    """The ids a query's entities are among, if it says (its id list, or those of its
    selectors when every one names some): such a query is looked up by id and sorted, not
    walked in insertion order, which SQLite otherwise prefers for a LIMIT."""
    if query.ids is not None:
        return tuple(query.ids)
    lists = [s.ids for s in query.selectors or ()]
    if lists and all(ids is not None for ids in lists):
        return tuple(dict.fromkeys(i for ids in lists for i in ids or ()))
    return None


def _type_only(selector: Any) -> bool:
    """Does an EntitySelector name a type expression and nothing else?"""
    return selector.ids is None and selector.id_pattern is None and selector.types is not None


def or_names(node: Any) -> tuple[list[str], list[Any]]:
    """The type names an OR of types holds, its nested ORs' too (each once, in order), and
    its other items (conjunctions)."""
    names: dict[str, None] = {}
    others: list[Any] = []
    for item in node.items:
        if isinstance(item, ast.TypeName):
            names[item.name] = None
        elif isinstance(item, ast.TypeOr):
            inner, rest = or_names(item)
            names.update(dict.fromkeys(inner))
            others += rest
        else:
            others.append(item)
    return list(names), others


def distinct(node: Any) -> Any:
    """A q tree with each AND and OR holding a term once (`a;a` is `a`)."""
    if not isinstance(node, ast.And | ast.Or):
        return node
    items = tuple(dict.fromkeys(distinct(item) for item in node.items))
    return items[0] if len(items) == 1 else type(node)(items)


def balanced(joiner: str, parts: list[str]) -> str:
    """Terms joined as a balanced tree: SQLite refuses expressions nested over 1,000 deep,
    and a flat chain of n terms nests n deep."""
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    return f"({balanced(joiner, parts[:mid])}{joiner}{balanced(joiner, parts[mid:])})"


def _literals(value: Any) -> tuple[ast.Value, ...]:
    """The literals of a term's value: a range's two ends, a list's items, or the one."""
    if isinstance(value, ast.Range):
        return value.low, value.high
    return value.values if isinstance(value, ast.ValueList) else (value,)


def _kinds(value: Any) -> set[str]:
    return {v.kind for v in _literals(value)}


def _past_exact(value: Any) -> bool:
    """Does a number literal reach 2^53 (index.EXACT)? attr_index.num holds doubles, which
    cannot tell 2^53 from 2^53 + 1, so such a term is the evaluator's (decision 023)."""
    return any(
        isinstance(v.value, int | float) and v.kind == "number" and abs(v.value) >= EXACT
        for v in _literals(value)
    )


def _indexed(node: Any) -> bool:
    """Is this q term one a value index answers: a comparison of a top-level attribute
    (as Compiler.compare sends to _top_level) by `==` or an ordering, of one kind?"""
    if not isinstance(node, ast.Compare) or node.op not in _RANGE_OPS:
        return False
    path = node.path
    if path.sub or path.keys or path.attr in ENTITY_FIELDS or _past_exact(node.value):
        return False
    if path.attr in _ENTITY_TIMES and _kinds(node.value) == {"datetime"}:
        return False
    return _column(node.value) is not None


def _column(value: Any) -> str | None:
    """The one attr_index column a literal (or every literal of a list) compares with."""
    columns = {literal_key(v)[0] for v in _literals(value)}  # a range's ends: one kind
    return columns.pop() if len(columns) == 1 else None


def json_path(steps: list[str]) -> str:
    """A SQLite JSON path with every label quoted (IRIs hold '.' and ':')."""
    return "$" + "".join(f'."{s}"' for s in steps)


def prefilter_box(gq: Any) -> tuple[float, float, float, float] | None:
    """The lon/lat box any match must touch, or None when the predicate can't be boxed
    (disjoint, minDistance; near;maxDistance: distance.reach_box)."""
    rel = gq.georel
    if rel in ("disjoint",) or (rel == "near" and getattr(gq, "min_distance", None) is not None):
        return None
    dist = getattr(gq, "max_distance", None) if rel == "near" else None
    return reach_box(gq.geometry.bounds, dist or 0.0)
