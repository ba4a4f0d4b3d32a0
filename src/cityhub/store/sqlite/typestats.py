"""Which attributes, of which kinds, the entities of each type hold: counted as entities are
written, so /types and /attributes read a few rows instead of every entity (decision 020).

`type_attrs` rows, per tenant:
- (type, 0, ""): how many entities have `type` (entityCount);
- (type, nid, kind): how many entities of `type` have attribute `nid` with an instance of `kind`
  (Property, Relationship, ...);
- ("", nid, ""): how many instances of attribute `nid` the entities hold, one per datasetId
  (attributeCount: "number of attribute instances with this attribute name", Table 5.2.28-1).

A row whose count reaches 0 is deleted, so every row stands for at least one entity (or
instance). The
counts change in the same transaction as the entities, so they roll back with them.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cityhub.store.sqlite.bulk import insert_rows

# (entity types, ((attribute id, its instances' kinds, its instances), ...)): what one entity
# adds to the counts
Shape = tuple[tuple[str, ...], tuple[tuple[int, tuple[str, ...], int], ...]]

DDL = """
CREATE TABLE IF NOT EXISTS type_attrs (
    tenant TEXT NOT NULL, type TEXT NOT NULL, nid INTEGER NOT NULL, kind TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant, type, nid, kind)
) WITHOUT ROWID;
"""

# One attribute's rows (/attributes/{attr}) and the types' entity counts (nid 0, /types) by
# index: the key leads with type, so both read every type x attribute row of the tenant
# (41 ms for one attribute of 2,000 types x 102 attributes). It holds the counts n too:
# SQLite's planner passes over an index that leaves a key lookup per row for n. Writes that
# change no type's attribute set (most PATCHes) do not touch the counts.
BY_NID = """
CREATE INDEX IF NOT EXISTS type_attrs_nid ON type_attrs (tenant, nid, type, kind, n);
"""

# Counts for a database written before the table existed (schema 3 -> 4), from the documents.
BACKFILL = """
DELETE FROM type_attrs;
INSERT INTO type_attrs (tenant, type, nid, kind, n)
    SELECT tenant, type, 0, '', count(*) FROM entity_types GROUP BY tenant, type;
INSERT INTO type_attrs (tenant, type, nid, kind, n)
    SELECT tenant, type, nid, kind, count(*) FROM (
        SELECT DISTINCT e.pk, e.tenant, t.value AS type, n.nid,
               json_extract(i.value, '$.type') AS kind
        FROM entities e, json_each(e.doc, '$.type') t, json_each(e.doc, '$.attrs') a,
             json_each(a.value) i JOIN attr_names n ON n.name = a.key)
    GROUP BY tenant, type, nid, kind;
"""

# The attribute instances per attribute name (a database of schema 11 counted the entities
# holding it); the 3 -> 4 backfill ends with it too.
INSTANCES = """
DELETE FROM type_attrs WHERE type = '';
INSERT INTO type_attrs (tenant, type, nid, kind, n)
    SELECT e.tenant, '', n.nid, '', sum(json_array_length(a.value))
    FROM entities e, json_each(e.doc, '$.attrs') a JOIN attr_names n ON n.name = a.key
    GROUP BY e.tenant, n.nid;
"""
BACKFILL += INSTANCES


# What shape() reads of a document: its types, and per attribute name its instances' kinds
# and how many there are.
Outline = tuple[tuple[str, ...], dict[str, tuple[tuple[str, ...], int]]]


def _kinds(instances: list[dict[str, Any]]) -> tuple[tuple[str, ...], int]:
    """What one attribute adds: its instances' kinds, and how many instances it has."""
    if len(instances) == 1:  # most attributes: no set to sort
        return (instances[0]["type"],), 1
    return tuple(sorted({i["type"] for i in instances})), len(instances)


def shape(
    doc: dict[str, Any], nid: Callable[[str], int], only: Iterable[str] | None = None
) -> Shape:
    """What a document adds to the counts; `only` keeps some attributes (the others are
    unchanged by a partial update, so they cancel out)."""
    attrs = doc["attrs"]
    names = attrs if only is None else [n for n in only if n in attrs]
    return tuple(doc["type"]), tuple([(nid(n), *_kinds(attrs[n])) for n in names])


def outline(doc: dict[str, Any]) -> Outline:
    """shape()'s reading of a document, before attribute names get their ids: taken when a
    write reads the entity, so an update needs no second read of the row for the counts."""
    return tuple(doc["type"]), {name: _kinds(insts) for name, insts in doc["attrs"].items()}


def outline_shape(
    seen: Outline, nid: Callable[[str], int], only: Iterable[str] | None = None
) -> Shape:
    """shape() of the document an outline was taken from."""
    types, attrs = seen
    names = attrs if only is None else [n for n in only if n in attrs]
    return types, tuple([(nid(n), *attrs[n]) for n in names])


def _keys(s: Shape) -> Iterator[tuple[tuple[str, int, str], int]]:
    """Each count a shape adds to, and by how much."""
    types, attrs = s
    for t in types:
        yield (t, 0, ""), 1
    for nid, kinds, instances in attrs:
        yield ("", nid, ""), instances
        for t in types:
            for k in kinds:
                yield (t, nid, k), 1


def apply(conn: sqlite3.Connection, tenant: str, shapes: Counter[Shape]) -> None:
    """Add each shape's keys to the counts as many times as it is counted (negative: removed)."""
    delta: Counter[tuple[str, int, str]] = Counter()
    for s, times in shapes.items():
        if times:
            for key, weight in _keys(s):
                delta[key] += times * weight
    rows = [(tenant, t, nid, k, n) for (t, nid, k), n in delta.items() if n]
    if not rows:
        return
    insert_rows(
        conn,
        "INSERT INTO type_attrs (tenant, type, nid, kind, n)",
        rows,
        " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    )
    gone = [r[:4] for r in rows if r[4] < 0]
    if gone:
        conn.executemany(
            "DELETE FROM type_attrs WHERE tenant = ? AND type = ? AND nid = ? AND kind = ? "
            "AND n <= 0",
            gone,
        )


def change(
    conn: sqlite3.Connection, tenant: str, before: Shape | None, after: Shape | None
) -> None:
    """One entity went from `before` to `after` (None: it did not exist / no longer does)."""
    if before == after:
        return
    shapes: Counter[Shape] = Counter()
    if before is not None:
        shapes[before] -= 1
    if after is not None:
        shapes[after] += 1
    apply(conn, tenant, shapes)


# -- reads -------------------------------------------------------------------------------------
def type_counts(conn: sqlite3.Connection, tenant: str, only: str | None) -> list[tuple[str, int]]:
    """(type, entity count) for the tenant's types (or one), by type."""
    sql = "SELECT type, n FROM type_attrs WHERE tenant = ? AND type != '' AND nid = 0"
    args = [tenant]
    if only is not None:
        sql += " AND type = ?"
        args.append(only)
    return conn.execute(sql + " ORDER BY type", args).fetchall()


def type_attr_names(
    conn: sqlite3.Connection, tenant: str, only: str | None
) -> dict[str, list[str]]:
    """{type: its entities' attribute names, sorted} for the tenant (or one type)."""
    sql = (
        "SELECT DISTINCT s.type, n.name FROM type_attrs s JOIN attr_names n ON n.nid = s.nid "
        "WHERE s.tenant = ? AND s.type != ''"
    )
    args = [tenant]
    if only is not None:
        sql += " AND s.type = ?"
        args.append(only)
    out: dict[str, list[str]] = {}
    for typ, name in conn.execute(sql + " ORDER BY n.name", args):
        out.setdefault(typ, []).append(name)
    return out


def attribute_names(conn: sqlite3.Connection, tenant: str) -> list[str]:
    """Every attribute name the tenant's entities hold, sorted."""
    rows = conn.execute(
        "SELECT n.name FROM type_attrs s JOIN attr_names n ON n.nid = s.nid "
        "WHERE s.tenant = ? AND s.type = '' ORDER BY n.name",
        (tenant,),
    )
    return [r[0] for r in rows]


def attributes(
    conn: sqlite3.Connection, tenant: str, nid: int | None = None
) -> list[tuple[str, list[str], list[str], int]]:
    """(name, attribute kinds, entity types, instance count) of every attribute, or of one."""
    sql = (
        "SELECT n.name, s.type, s.kind, s.n FROM type_attrs s JOIN attr_names n ON n.nid = s.nid "
        "WHERE s.tenant = ?"
    )
    args: list[Any] = [tenant]
    if nid is not None:
        sql += " AND s.nid = ?"
        args.append(nid)
    found: dict[str, tuple[set[str], set[str], list[int]]] = {}
    for name, typ, kind, n in conn.execute(sql, args):
        kinds, types, count = found.setdefault(name, (set(), set(), [0]))
        if typ:
            kinds.add(kind)
            types.add(typ)
        else:
            count[0] = n
    return [(name, sorted(k), sorted(t), c[0]) for name, (k, t, c) in sorted(found.items())]


def type_attributes(conn: sqlite3.Connection, tenant: str, typ: str) -> list[tuple[str, list[str]]]:
    """(attribute name, kinds) of the entities of one type, by name."""
    rows = conn.execute(
        "SELECT n.name, s.kind FROM type_attrs s JOIN attr_names n ON n.nid = s.nid "
        "WHERE s.tenant = ? AND s.type = ? ORDER BY n.name, s.kind",
        (tenant, typ),
    )
    out: dict[str, list[str]] = {}
    for name, kind in rows:
        out.setdefault(name, []).append(kind)
    return list(out.items())
