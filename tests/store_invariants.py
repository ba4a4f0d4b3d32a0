"""The store's invariants checked with SQL against the entities' documents: every index row
(entity_types, attr_index, geo, geo_rtree, type_attrs) is what the documents give, none is
left of a deleted entity, and every temporal row has its temporal entity. Races and crashes
are judged by what is left in the file, so tests of concurrent writes read it back here."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from cityhub.store.sqlite import index, typestats


def _rows(conn: sqlite3.Connection, sql: str) -> Counter[tuple[Any, ...]]:
    """The rows of a query as a multiset."""
    return Counter(tuple(r) for r in conn.execute(sql))


def _expected(conn: sqlite3.Connection) -> dict[str, Counter[tuple[Any, ...]]]:
    """The index rows the stored documents call for."""
    nids = dict(conn.execute("SELECT name, nid FROM attr_names"))
    types: Counter[tuple[Any, ...]] = Counter()
    attrs: Counter[tuple[Any, ...]] = Counter()
    geo: Counter[tuple[Any, ...]] = Counter()
    counts: Counter[tuple[Any, ...]] = Counter()
    for pk, tenant, text in conn.execute("SELECT pk, tenant, doc FROM entities"):
        doc = orjson.loads(text)
        types.update((tenant, t, pk) for t in doc["type"])
        for name, *row in index.attr_rows(doc):
            attrs[(pk, nids.get(name, f"missing name {name}"), *row)] += 1
        geo.update((pk, name, geojson) for name, geojson, _ in index.geo_rows(doc))
        for key, n in typestats._keys(typestats.shape(doc, lambda name: nids.get(name, -1))):
            counts[(tenant, *key)] += n
    return {
        "entity_types": types,
        "attr_index": attrs,
        "geo": geo,
        "type_attrs": Counter((*key, n) for key, n in counts.items() if n),
    }


def problems(db: Path | str) -> list[str]:
    """What breaks an invariant in the database at db (empty when it is sound), read through
    a connection of its own."""
    conn = sqlite3.connect(db)
    try:
        found: list[str] = []
        want = _expected(conn)
        have = {
            "entity_types": _rows(conn, "SELECT tenant, type, pk FROM entity_types"),
            "attr_index": _rows(conn, "SELECT pk, nid, seq, num, txt, ts FROM attr_index"),
            "geo": _rows(conn, "SELECT pk, name, geojson FROM geo"),
            "type_attrs": _rows(conn, "SELECT tenant, type, nid, kind, n FROM type_attrs"),
        }
        for table, rows in want.items():
            extra, missing = have[table] - rows, rows - have[table]
            if extra:
                found.append(
                    f"{table}: {sum(extra.values())} rows no document gives: "
                    f"{sorted(extra, key=repr)[:3]}"
                )
            if missing:
                found.append(
                    f"{table}: {sum(missing.values())} rows missing: "
                    f"{sorted(missing, key=repr)[:3]}"
                )
        checks = {
            "geo_rtree rows without a geo row": "SELECT count(*) FROM geo_rtree "
            "WHERE gid NOT IN (SELECT gid FROM geo)",
            "geo rows without a geo_rtree row": "SELECT count(*) FROM geo "
            "WHERE gid NOT IN (SELECT gid FROM geo_rtree)",
            "history rows without a temporal entity": "SELECT count(*) FROM history "
            "WHERE tpk NOT IN (SELECT tpk FROM tentities)",
            "history_datasets rows without a temporal entity": "SELECT count(*) FROM "
            "history_datasets WHERE tpk NOT IN (SELECT tpk FROM tentities)",
            "entities of a tenant not in tenants": "SELECT count(*) FROM entities "
            "WHERE tenant NOT IN (SELECT tenant FROM tenants)",
        }
        for what, sql in checks.items():
            n = conn.execute(sql).fetchone()[0]
            if n:
                found.append(f"{n} {what}")
        return found
    finally:
        conn.close()
