"""Temporal evolution in SQLite: append, select with timerel/lastN, aggregate in SQL."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from cityhub.ngsild.timeutil import format_ts, parse_ts
from cityhub.store.base import Aggregation, Doc, EntityQuery, TemporalQuery
from cityhub.store.sqlite.qsql import Compiler

TIME_COLUMNS = {"observedAt": "t_observed", "createdAt": "t_created", "modifiedAt": "t_modified"}
Result = tuple[list[tuple[Doc, dict[str, list[Doc]]]], int | None]


def epoch(ts: str | None) -> float | None:
    """Seconds since the epoch of an ISO DateTime (None stays None)."""
    return parse_ts(ts).timestamp() if ts else None


def iso(seconds: float) -> str:
    """An epoch time in the hub's storage format."""
    return format_ts(datetime.fromtimestamp(seconds, UTC))


def _num(inst: Doc) -> float | None:
    value = inst.get("value")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return float(value) if isinstance(value, int | float) else None


def _tpk(conn: sqlite3.Connection, tenant: str, eid: str) -> int | None:
    row = conn.execute(
        "SELECT tpk FROM tentities WHERE tenant = ? AND id = ?", (tenant, eid)
    ).fetchone()
    return row[0] if row else None


def exists(conn: sqlite3.Connection, tenant: str, eid: str) -> bool:
    """Whether an entity has a temporal evolution."""
    return _tpk(conn, tenant, eid) is not None


def add(
    conn: sqlite3.Connection,
    tenant: str,
    eid: str,
    types: list[str],
    attr: str,
    instances: list[Doc],
) -> None:
    """Append instances (each already carries instanceId, createdAt and modifiedAt)."""
    tpk = _tpk(conn, tenant, eid)
    now = instances[0]["modifiedAt"] if instances else format_ts(datetime.now(UTC))
    if tpk is None:
        cur = conn.execute(
            "INSERT INTO tentities (tenant, id, types, created_at, modified_at) VALUES (?, ?, ?, ?, ?)",
            (tenant, eid, orjson.dumps(types).decode(), now, now),
        )
        tpk = int(cur.lastrowid or 0)
    else:
        conn.execute(
            "UPDATE tentities SET types = ?, modified_at = ? WHERE tpk = ?",
            (orjson.dumps(types).decode(), now, tpk),
        )
    # An instance observed at the same time (same attribute and datasetId) replaces the old one.
    conn.executemany(
        "DELETE FROM history WHERE tpk = ? AND attr = ? AND t_observed = ? AND dataset_id IS ?",
        [
            (tpk, attr, epoch(inst["observedAt"]), inst.get("datasetId"))
            for inst in instances
            if inst.get("observedAt")
        ],
    )
    conn.executemany(
        "INSERT INTO history (tpk, attr, dataset_id, instance_id, t_observed, t_created, t_modified, num, inst) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                tpk,
                attr,
                inst.get("datasetId"),
                inst["instanceId"],
                epoch(inst.get("observedAt")),
                epoch(inst["createdAt"]),
                epoch(inst["modifiedAt"]),
                _num(inst),
                orjson.dumps(inst).decode(),
            )
            for inst in instances
        ],
    )


def delete(
    conn: sqlite3.Connection, tenant: str, eid: str, attr: str | None, dataset_id: Any
) -> int:
    """Delete a whole temporal entity (attr None) or an attribute's instances."""
    tpk = _tpk(conn, tenant, eid)
    if tpk is None:
        return 0
    if attr is None:
        conn.execute("DELETE FROM history WHERE tpk = ?", (tpk,))
        conn.execute("DELETE FROM tentities WHERE tpk = ?", (tpk,))
        return 1
    sql = "DELETE FROM history WHERE tpk = ? AND attr = ?"
    params: list[Any] = [tpk, attr]
    if dataset_id is not ...:
        sql += " AND dataset_id IS ?"
        params.append(dataset_id)
    return conn.execute(sql, params).rowcount


def update_instance(
    conn: sqlite3.Connection, tenant: str, eid: str, attr: str, instance_id: str, inst: Doc
) -> bool:
    """Replace one instance's content, keeping its instanceId."""
    tpk = _tpk(conn, tenant, eid)
    if tpk is None:
        return False
    cur = conn.execute(
        "UPDATE history SET inst = ?, num = ?, t_observed = ?, t_modified = ?, dataset_id = ? "
        "WHERE tpk = ? AND attr = ? AND instance_id = ?",
        (
            orjson.dumps(inst).decode(),
            _num(inst),
            epoch(inst.get("observedAt")),
            epoch(inst["modifiedAt"]),
            inst.get("datasetId"),
            tpk,
            attr,
            instance_id,
        ),
    )
    return cur.rowcount > 0


def has_instance(conn: sqlite3.Connection, tenant: str, eid: str, attr: str, instance_id: str) -> bool:
    """Whether an instance exists."""
    row = conn.execute(
        "SELECT 1 FROM history h JOIN tentities t ON t.tpk = h.tpk WHERE t.tenant = ? AND t.id = ? "
        "AND h.attr = ? AND h.instance_id = ?",
        (tenant, eid, attr, instance_id),
    ).fetchone()
    return row is not None


def delete_instance(
    conn: sqlite3.Connection, tenant: str, eid: str, attr: str, instance_id: str
) -> bool:
    """Delete one instance."""
    tpk = _tpk(conn, tenant, eid)
    if tpk is None:
        return False
    cur = conn.execute(
        "DELETE FROM history WHERE tpk = ? AND attr = ? AND instance_id = ?",
        (tpk, attr, instance_id),
    )
    return cur.rowcount > 0


def _entities(
    conn: sqlite3.Connection,
    tenant: str,
    query: TemporalQuery,
    install_geo: Callable[[sqlite3.Connection, Compiler], None],
) -> tuple[list[tuple[int, Doc]], int | None]:
    """The temporal entities a query selects, paginated, with the total when asked."""
    eq = query.entities
    comp = Compiler()
    parts = [f"tt.tenant = {comp.p(tenant)}"]
    if eq.ids is not None:
        parts.append(f"tt.id IN ({','.join(comp.p(i) for i in eq.ids)})")
    if eq.id_pattern is not None:
        parts.append(f"regexp({comp.p(eq.id_pattern)}, tt.id)")
    if eq.types is not None:
        parts.append(_types_sql(comp, eq.types))
    if query.attrs:
        marks = ",".join(comp.p(a) for a in query.attrs)
        parts.append(
            f"EXISTS (SELECT 1 FROM history h WHERE h.tpk = tt.tpk AND h.attr IN ({marks}))"
        )
    if eq.q is not None or eq.geo is not None or eq.scope is not None:
        inner = EntityQuery(q=eq.q, geo=eq.geo, scope=eq.scope)
        parts.append(
            f"EXISTS (SELECT 1 FROM entities e WHERE e.id = tt.id AND {comp.where(tenant, inner)})"
        )
    install_geo(conn, comp)
    where = " AND ".join(parts)
    total = None
    if eq.count:
        total = conn.execute(
            f"SELECT count(*) FROM tentities tt WHERE {where}", comp.params
        ).fetchone()[0]
    rows = conn.execute(
        f"SELECT tt.tpk, tt.id, tt.types, tt.created_at, tt.modified_at FROM tentities tt WHERE {where} "
        "ORDER BY tt.tpk LIMIT ? OFFSET ?",
        [*comp.params, eq.limit, eq.offset],
    ).fetchall()
    out = [
        (tpk, {"id": eid, "type": orjson.loads(types), "createdAt": c, "modifiedAt": m})
        for tpk, eid, types, c, m in rows
    ]
    return out, total


def _types_sql(comp: Compiler, node: Any) -> str:
    from cityhub.ngsild.query import ast

    if isinstance(node, ast.TypeName):
        return f"EXISTS (SELECT 1 FROM json_each(tt.types) jt WHERE jt.value = {comp.p(node.name)})"
    joiner = " AND " if isinstance(node, ast.TypeAnd) else " OR "
    return "(" + joiner.join(_types_sql(comp, n) for n in node.items) + ")"


def _time_filter(query: TemporalQuery, col: str) -> tuple[str, list[Any]]:
    if query.timerel == "before":
        return f" AND h.{col} < ?", [query.time_at]
    if query.timerel == "after":
        return f" AND h.{col} >= ?", [query.time_at]
    if query.timerel == "between":
        return f" AND h.{col} >= ? AND h.{col} < ?", [query.time_at, query.end_time_at]
    return "", []


def select(
    conn: sqlite3.Connection,
    tenant: str,
    query: TemporalQuery,
    install_geo: Callable[[sqlite3.Connection, Compiler], None],
) -> Result:
    """Instances per attribute, oldest first (lastN keeps the newest N of each)."""
    ents, total = _entities(conn, tenant, query, install_geo)
    col = TIME_COLUMNS[query.timeproperty]
    time_sql, time_params = _time_filter(query, col)
    attr_sql, attr_params = "", []
    if query.attrs:
        attr_sql = f" AND h.attr IN ({','.join('?' * len(query.attrs))})"
        attr_params = list(query.attrs)
    out = []
    for tpk, header in ents:
        base = (
            f"SELECT h.attr, h.inst, h.{col} AS t, h.hid FROM history h WHERE h.tpk = ?"
            f"{attr_sql}{time_sql}"
        )
        params = [tpk, *attr_params, *time_params]
        if query.last_n:
            sql = (
                "SELECT attr, inst FROM (SELECT attr, inst, t, hid, row_number() OVER "
                f"(PARTITION BY attr ORDER BY t DESC, hid DESC) AS rn FROM ({base})) "
                "WHERE rn <= ? ORDER BY attr, t, hid"
            )
            params.append(query.last_n)
        else:
            sql = f"SELECT attr, inst FROM ({base}) ORDER BY attr, t, hid"
        attrs: dict[str, list[Doc]] = {}
        for attr, inst in conn.execute(sql, params):
            attrs.setdefault(attr, []).append(orjson.loads(inst))
        out.append((header, attrs))
    return out, total


_SQL_AGGR = (
    "count(*) AS totalCount, count(DISTINCT coalesce(h.num, json_extract(h.inst, '$.value'))) "
    "AS distinctCount, sum(h.num) AS sum, avg(h.num) AS avg, min(h.num) AS min, max(h.num) AS max, "
    "sum(h.num * h.num) AS sumsq, count(h.num) AS n"
)


def aggregate(
    conn: sqlite3.Connection,
    tenant: str,
    query: TemporalQuery,
    aggr: Aggregation,
    install_geo: Callable[[sqlite3.Connection, Compiler], None],
) -> Result:
    """aggregatedValues: one SQL GROUP BY per entity over fixed-length periods."""
    ents, total = _entities(conn, tenant, query, install_geo)
    col = TIME_COLUMNS[query.timeproperty]
    time_sql, time_params = _time_filter(query, col)
    attr_sql, attr_params = "", []
    if query.attrs:
        attr_sql = f" AND h.attr IN ({','.join('?' * len(query.attrs))})"
        attr_params = list(query.attrs)
    out = []
    for tpk, header in ents:
        params: list[Any] = [tpk, *attr_params, *time_params]
        start = query.time_at if query.timerel in ("after", "between") else None
        if start is None:
            row = conn.execute(
                f"SELECT min(h.{col}) FROM history h WHERE h.tpk = ?{attr_sql}{time_sql}", params
            ).fetchone()
            start = row[0]
        if start is None:
            out.append((header, {}))
            continue
        period = aggr.period or 1e18
        sql = (
            f"SELECT h.attr, CAST((h.{col} - ?) / ? AS INTEGER) AS b, {_SQL_AGGR} FROM history h "
            f"WHERE h.tpk = ?{attr_sql}{time_sql} AND h.{col} IS NOT NULL GROUP BY h.attr, b ORDER BY h.attr, b"
        )
        attrs: dict[str, list[Doc]] = {}
        cur = conn.execute(sql, [start, period, *params])
        names = [d[0] for d in cur.description]
        for row in cur:
            rec = dict(zip(names, row, strict=True))
            lo = start + rec["b"] * period if aggr.period else start
            hi = lo + period if aggr.period else (query.end_time_at or lo)
            attrs.setdefault(rec["attr"], []).append(_bucket(rec, aggr.methods, lo, hi))
        out.append((header, attrs))
    return out, total


def _bucket(rec: dict[str, Any], methods: tuple[str, ...], lo: float, hi: float) -> Doc:
    """One period's values for each requested method."""
    values: dict[str, Any] = {}
    n = rec["n"]
    for m in methods:
        if m == "stddev":
            v = None
            if n:
                mean = rec["sum"] / n
                v = math.sqrt(max(0.0, rec["sumsq"] / n - mean * mean))
        else:
            v = rec.get(m)
        values[m] = v
    return {"start": iso(lo), "end": iso(hi), "values": values}
