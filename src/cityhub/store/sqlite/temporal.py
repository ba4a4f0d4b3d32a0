"""Temporal evolution in SQLite: append, select with timerel/lastN/firstN, aggregate in SQL."""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from types import EllipsisType
from typing import Any, NamedTuple

import orjson

from cityhub.ngsild.entity_bytes import check_size
from cityhub.ngsild.instance_id import new_instance_id, time_of
from cityhub.ngsild.timeutil import END_OF_TIME, epoch_iso, format_ts, iso_seconds, next_instant
from cityhub.store.base import (
    RECORDED_AT,
    Aggregation,
    Doc,
    Erasure,
    HistoryEntry,
    TemporalQuery,
)
from cityhub.store.sqlite import (
    erasures,
    functions,
    instance_rows,
    period_records,
    period_text,
    temporal_q,
)
from cityhub.store.sqlite.bulk import insert_rows
from cityhub.store.sqlite.names import AttrNames
from cityhub.store.sqlite.qsql import Compiler, id_bound

# deletedAt has no column of its own: it is read from the instance (julian days → epoch seconds).
# epoch_of (store/sqlite/functions.py) reads the microseconds; julianday() kept milliseconds,
# so `timerel=after` at an instance's own deletedAt left it out. Only a deletion marker has a
# deletedAt, and a marker has no number: an instance with one (history_obs holds `num`) is
# passed over without reading its row, which parsed every sensor reading's JSON to find none.
_DELETED_AT = "CASE WHEN h.num IS NULL THEN epoch_of(json_extract(h.inst, '$.deletedAt')) END"
# the entity's own deletion (store/sqlite/deletions.py), on the deletedAt axis
_ENTITY_DELETED_AT = "epoch_of(tt.deleted_at)"
TIME_COLUMNS = {
    "observedAt": "h.t_observed",
    "createdAt": "h.t_created",
    "modifiedAt": "h.t_modified",
    "deletedAt": _DELETED_AT,
}
Result = tuple[list[tuple[Doc, dict[str, list[Doc]]]], int | None]
# per attribute, one series per datasetId (a series holds "datasetId" unless the default)
AggregateResult = tuple[list[tuple[Doc, dict[str, list[Doc]]]], int | None]
Binder = Callable[[Any], str]
Scope = list[str] | None | EllipsisType  # KEEP: leave the stored scope as it is
KEEP = ...


def epoch(ts: str | None) -> float | None:
    """Seconds since the epoch of an ISO DateTime (None stays None)."""
    return iso_seconds(ts) if ts else None


# a tuple, not `int | float`: that union is built anew at every call (once per instance)
_NUMERIC = (int, float)


def _num(inst: Doc) -> float | None:
    value = inst.get("value")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return float(value) if isinstance(value, _NUMERIC) else None


def _tpk(conn: sqlite3.Connection, tenant: str, eid: str) -> int | None:
    row = conn.execute(
        "SELECT tpk FROM tentities WHERE tenant = ? AND id = ?", (tenant, eid)
    ).fetchone()
    return row[0] if row else None


def types_of(conn: sqlite3.Connection, tenant: str, eid: str) -> list[str] | None:
    """A temporal entity's types, None when it has no temporal evolution."""
    row = conn.execute(
        "SELECT types FROM tentities WHERE tenant = ? AND id = ?", (tenant, eid)
    ).fetchone()
    return list(orjson.loads(row[0])) if row else None


def exists(conn: sqlite3.Connection, tenant: str, eid: str) -> bool:
    """Whether an entity has a temporal evolution."""
    return _tpk(conn, tenant, eid) is not None


def add(
    conn: sqlite3.Connection,
    names: AttrNames,
    tenant: str,
    eid: str,
    types: list[str],
    attr: str,
    instances: list[Doc],
    scope: Scope = KEEP,
    limit: int = 0,
) -> None:
    """Append one attribute's instances through the temporal API, where an observation
    replaces one the temporal API stored at its time (same attribute and datasetId): a client
    that sends an observation again corrects it instead of doubling it, and what entity
    writes recorded at that time stays (decision 034). Types sent add to
    those the temporal entity has, as on every write (decision 032); a scope sent replaces
    the one it has, and none sent keeps it. Each instance's JSON is at most `limit` bytes
    (0: no bound), as one entity's is (decision 074)."""
    add_many(
        conn,
        names,
        tenant,
        eid,
        types,
        {attr: instances},
        scope,
        replace_observed=True,
        limit=limit,
    )


def add_many(
    conn: sqlite3.Connection,
    names: AttrNames,
    tenant: str,
    eid: str,
    types: list[str],
    attrs: dict[str, list[Doc]],
    scope: Scope = KEEP,
    *,
    replace_observed: bool = False,
    limit: int = 0,
) -> None:
    """Append instances of several attributes of one entity in one round of statements.

    Each instance carries createdAt and modifiedAt; one without an instanceId gets a fresh
    one (the caller's dicts are never changed: they are often the entity's own instances).
    `types` add to those an existing temporal entity has (decision 032: its history stays
    findable by every type the entity had; empty ones add none). Entity writes
    keep every instance: a partial update keeps the attribute's observedAt, and replacing
    the stored instance observed then would erase the value it changed from. With
    replace_observed (the temporal API), an observation replaces one the temporal API stored
    at its time, attribute and datasetId, never one an entity write recorded. `scope` is the entity's scope (None:
    it has none), set in the same statement; KEEP leaves the stored one. An entity write
    ends the entity's deletion (decision 100); the temporal API's leave it.
    """
    now = write_time(attrs)
    types_json = orjson.dumps(types).decode() if types else None
    # an entity write makes the entity exist again; the temporal API's leave it deleted
    upserts = _TEMPORAL_UPSERTS if replace_observed else _ENTITY_UPSERTS
    if scope is KEEP or not scope:  # most writes: the scope is no parameter (see _UPSERT)
        sql = upserts[0 if scope is KEEP else 1]
        params: tuple[Any, ...] = (tenant, eid, types_json or "[]", now, now, types_json, now)
    else:
        sql = upserts[2]
        params = (tenant, eid, types_json or "[]", now, now, _scope_json(scope), types_json, now)
    row = conn.execute(sql, params).fetchone()
    tpk, fresh = row[0], bool(row[1])
    entry = (tpk, not fresh and replace_observed, attrs)
    _write_history(conn, names, [entry], sent=replace_observed, limit=limit, eid=eid)


# The scope is bound only when there is one: one more parameter made each insert ~0.5 µs
# slower (~20 % of this statement) for every entity, scoped or not; none is a literal NULL.
_UPSERT = (
    "INSERT INTO tentities (tenant, id, types, created_at, modified_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (tenant, id) DO UPDATE SET modified_at = excluded.modified_at, "
    "types = types_union(tentities.types, ?)"
)
_RETURNING = " RETURNING tpk, created_at = ?"
_UPSERT_WITH_SCOPE = (
    "INSERT INTO tentities (tenant, id, types, created_at, modified_at, scope) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO UPDATE SET "
    "modified_at = excluded.modified_at, types = types_union(tentities.types, ?), "
    "scope = excluded.scope"
)
# What an entity write sets besides: the entity exists (again), so it is no longer deleted
# (decision 100); a literal, no parameter bound.
CLEARS_DELETION = ", deleted_at = NULL"
# (scope kept, scope none, scope sent) for the temporal API's writes and for entity writes
_TEMPORAL_UPSERTS = (
    _UPSERT + _RETURNING,
    _UPSERT + ", scope = NULL" + _RETURNING,
    _UPSERT_WITH_SCOPE + _RETURNING,
)
_ENTITY_UPSERTS = (
    _UPSERT + CLEARS_DELETION + _RETURNING,
    _UPSERT + ", scope = NULL" + CLEARS_DELETION + _RETURNING,
    _UPSERT_WITH_SCOPE + CLEARS_DELETION + _RETURNING,
)


def _scope_json(scope: Scope) -> str | None:
    """A scope as tentities stores it: a JSON array (NULL for none)."""
    return orjson.dumps(scope).decode() if scope and scope is not KEEP else None


def _tpks(conn: sqlite3.Connection, tenant: str, ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        out.update(
            conn.execute(
                f"SELECT id, tpk FROM tentities WHERE tenant = ? AND id IN ({marks})",
                [tenant, *chunk],
            ).fetchall()
        )
    return out


def add_bulk(
    conn: sqlite3.Connection,
    names: AttrNames,
    tenant: str,
    entries: list[HistoryEntry],
) -> None:
    """add_many for many entities at once (bulk creation): a few statements in all; each
    entry's types add to the temporal entity's (decision 032), and its scope (None: none) is
    the temporal entity's from then on."""
    now = next(
        (insts[0]["modifiedAt"] for _, _, attrs, _ in entries for insts in attrs.values() if insts),
        None,
    ) or format_ts(datetime.now(UTC))  # formatted only when needed: some 17,000 instructions
    add_timed(conn, names, tenant, [(entry, now) for entry in entries])


def write_time(attrs: dict[str, list[Doc]]) -> str:
    """The time of a write that recorded these instances, as add_many takes it: the first
    one's modifiedAt, else the present."""
    first = next((insts[0] for insts in attrs.values() if insts), None)
    return first["modifiedAt"] if first else format_ts(datetime.now(UTC))


def add_timed(
    conn: sqlite3.Connection,
    names: AttrNames,
    tenant: str,
    entries: list[tuple[HistoryEntry, str]],
) -> None:
    """What add_many would store for each (entry, its write's time) in turn, in a few
    statements in all: one row of tentities per entity (created at its first time, modified
    at its last, its types those of every entry, its scope the last entry's, no longer
    deleted: these are entity writes), then every
    instance in order, one history row each (decision 086)."""
    if not entries:
        return
    heads: dict[str, tuple[list[str], str, str, list[str] | None]] = {}
    for (eid, types, _, scope), now in entries:
        head = heads.get(eid)
        if head is None:
            heads[eid] = (types, now, now, scope)
        else:  # as types_union folds each write's types into the stored ones
            union = head[0] if types == head[0] else list(dict.fromkeys([*head[0], *types]))
            heads[eid] = (union, head[1], now, scope)
    insert_rows(
        conn,
        "INSERT INTO tentities (tenant, id, types, created_at, modified_at)",
        [
            (tenant, eid, orjson.dumps(types).decode(), created, modified)
            for eid, (types, created, modified, _) in heads.items()
        ],
        " ON CONFLICT (tenant, id) DO UPDATE SET modified_at = excluded.modified_at, "
        "types = types_union(tentities.types, excluded.types), scope = NULL" + CLEARS_DELETION,
    )
    tpks = _tpks(conn, tenant, list(heads))
    # the few with a scope get it by row id: binding it for all cost every entity (_UPSERT)
    scoped = [(_scope_json(h[3]), tpks[eid]) for eid, h in heads.items() if h[3]]
    if scoped:
        conn.executemany("UPDATE tentities SET scope = ? WHERE tpk = ?", scoped)
    _write_history(conn, names, [(tpks[eid], False, attrs) for (eid, _, attrs, _), _ in entries])


# Marks, in the stored JSON, an observation the temporal API wrote: only such an instance
# is replaced by one sent again at its time (decision 034); never rendered.
SENT = "@sent"
_SENT_PATH = f"'$.\"{SENT}\"'"


def _stored_json(inst: Doc, sent: bool = False) -> str:
    """An instance as the history stores it: without its instanceId, which has a column, and
    with the SENT mark when the temporal API wrote it with an observedAt."""
    if "instanceId" not in inst and not sent:
        return orjson.dumps(inst).decode()
    rest = inst.copy()
    rest.pop("instanceId", None)
    if sent:
        rest[SENT] = True
    return orjson.dumps(rest).decode()


def _instance(stored: str, instance_id: str) -> Doc:
    """A stored instance with its instanceId back (rows written before 2026-11-22 hold it in
    the JSON too; the column is the same value), without the SENT mark."""
    inst: Doc = orjson.loads(stored)
    inst["instanceId"] = instance_id
    inst.pop(SENT, None)
    return inst


class _Epochs(dict[str | None, float | None]):
    """Epoch seconds of ISO DateTimes, each computed once (a write's instances share a few:
    its modifiedAt, their observedAt); None for None. A dict: a known one is read in C."""

    def __missing__(self, ts: str | None) -> float | None:
        seconds = self[ts] = epoch(ts)
        return seconds


def _write_history(
    conn: sqlite3.Connection,
    names: AttrNames,
    entries: list[tuple[int, bool, dict[str, list[Doc]]]],
    *,
    sent: bool = False,
    limit: int = 0,
    eid: str = "",
) -> None:
    """Insert instances for (tpk, replace, attrs) entries. `sent` (the temporal API) marks
    each observation SENT; with replace, it also replaces those marked at its time, attribute
    and datasetId: what entity writes recorded there stays (decision 034)."""
    t = _Epochs()
    nids = names.memo(conn)
    rows: list[tuple[Any, ...]] = []
    replaced: list[tuple[Any, ...]] = []
    named: dict[int, str] = {}  # row index -> datasetId, for the few rows that have one
    for tpk, replace, attrs in entries:
        for attr, instances in attrs.items():
            nid = nids[attr]
            for inst in instances:
                observed, modified = t[inst.get("observedAt")], t[inst["modifiedAt"]]
                at = modified if observed is None else observed  # decision 024
                assert at is not None  # every instance has a modifiedAt (merge.stamp)
                mark = sent and observed is not None
                dataset = inst.get("datasetId")
                if dataset is not None:
                    named[len(rows)] = dataset
                if mark and replace:
                    replaced.append((tpk, nid, observed, dataset))
                iid = inst.get("instanceId")
                text = _stored_json(inst, mark)
                if limit and len(text) > limit:  # the temporal API's writes only
                    check_size(len(text), limit, eid, f"an instance of {attr} in")
                rows.append(
                    (
                        tpk,
                        nid,
                        iid or new_instance_id(at),
                        at,
                        t[inst["createdAt"]],
                        modified,
                        _num(inst),
                        text,
                        at if iid is None else time_of(iid),  # decision 060
                    )
                )
    _note_datasets(conn, rows, named)
    if replaced:
        conn.executemany(
            "DELETE FROM history WHERE tpk = ? AND nid = ? AND t_observed = ? "
            f"AND dataset_id IS ? AND inst ->> {_SENT_PATH} IS NOT NULL",
            replaced,
        )
    if named:
        full = [(r[0], r[1], named.get(i), *r[2:]) for i, r in enumerate(rows)]
        insert_rows(conn, f"INSERT INTO history (tpk, nid, dataset_id, {_HISTORY_REST})", full)
    else:  # SQLite fills dataset_id with NULL: each None bound cost ~1,100 instructions
        insert_rows(conn, f"INSERT INTO history (tpk, nid, {_HISTORY_REST})", rows)


_HISTORY_REST = "instance_id, t_observed, t_created, t_modified, num, inst, id_time"


# history_datasets' row for an attribute's instances without a datasetId, written only for
# an attribute that has named datasetIds too: reads then skip a default series it never had,
# which took a scan of the whole attribute to find empty (decision 026 addendum).
DEFAULT_SERIES = "@none"


def _note_datasets(
    conn: sqlite3.Connection, rows: list[tuple[Any, ...]], named: dict[int, str]
) -> None:
    """Record the series of history rows (tpk, nid, ...) about to be inserted, `named` the
    datasetIds of those that have one (by index)."""
    datasets = {(rows[i][0], rows[i][1], ds) for i, ds in named.items()}
    defaults = (
        {(r[0], r[1]) for i, r in enumerate(rows) if i not in named}
        if named
        else {(r[0], r[1]) for r in rows}
    )
    if datasets:
        for tpk, nid in {(t, n) for t, n, _ in datasets}:
            if _had_defaults(conn, tpk, nid):
                datasets.add((tpk, nid, DEFAULT_SERIES))
        conn.executemany(
            "INSERT OR IGNORE INTO history_datasets (tpk, nid, dataset_id) VALUES (?, ?, ?)",
            datasets,
        )
    if defaults and conn.execute("SELECT 1 FROM history_datasets LIMIT 1").fetchone():
        conn.execute(
            "INSERT OR IGNORE INTO history_datasets (tpk, nid, dataset_id) "
            "SELECT DISTINCT d.tpk, d.nid, ? FROM json_each(?) j JOIN history_datasets d "
            "ON d.tpk = j.value ->> 0 AND d.nid = j.value ->> 1",
            (DEFAULT_SERIES, orjson.dumps(sorted(defaults)).decode()),
        )


def _had_defaults(conn: sqlite3.Connection, tpk: int, nid: int, besides: str | None = None) -> bool:
    """Whether an attribute about to get its first datasetId already holds instances (other
    than `besides`): they have none, so they are its default series."""
    if conn.execute(
        "SELECT 1 FROM history_datasets WHERE tpk = ? AND nid = ? LIMIT 1", (tpk, nid)
    ).fetchone():
        return False  # not its first datasetId: the series are known
    return (
        conn.execute(
            "SELECT 1 FROM history WHERE tpk = ? AND nid = ? AND instance_id IS NOT ? LIMIT 1",
            (tpk, nid, besides),
        ).fetchone()
        is not None
    )


def delete(
    conn: sqlite3.Connection,
    names: AttrNames,
    tenant: str,
    eid: str,
    attr: str | None,
    dataset_id: Any,
) -> tuple[bool, Erasure | None]:
    """Delete a whole temporal entity (attr None) or an attribute's instances: whether there
    was one, and the rows left to remove in steps (erasures.py)."""
    tpk = _tpk(conn, tenant, eid)
    if tpk is None:
        return False, None
    if attr is None:
        return True, erasures.delete_entity(conn, tpk)
    return erasures.delete_attribute(conn, names, tpk, attr, dataset_id)


def prune(
    conn: sqlite3.Connection, before: float, after: int, limit: int
) -> tuple[int, int | None]:
    """One step of history retention: delete the instances after row `after`, in the order
    they were last written (row ids follow it: update_instance moves a rewritten row to the
    end), up to the first one written at `before` or later, `limit` at most; then drop the
    temporal entities this left empty whose entity is gone, with their datasetIds. Returns how
    many were deleted and where to go on (None: done)."""
    rows = conn.execute(
        "SELECT hid, t_modified FROM history WHERE hid > ? ORDER BY hid LIMIT ?", (after, limit)
    ).fetchall()
    old = 0
    while old < len(rows) and rows[old][1] < before:
        old += 1
    if not old:
        return 0, None
    last = rows[old - 1][0]
    tpks = conn.execute(
        "DELETE FROM history WHERE hid > ? AND hid <= ? RETURNING tpk", (after, last)
    ).fetchall()
    gone = conn.execute(
        "DELETE FROM tentities WHERE tpk IN (SELECT value FROM json_each(?)) "
        "AND NOT EXISTS (SELECT 1 FROM history h WHERE h.tpk = tentities.tpk) "
        # one being erased keeps its tpk until its erasure ends (erasures.py)
        "AND NOT EXISTS (SELECT 1 FROM history_erasures x WHERE x.tpk = tentities.tpk) "
        "AND NOT EXISTS (SELECT 1 FROM entities e "
        "WHERE e.tenant = tentities.tenant AND e.id = tentities.id) RETURNING tpk",
        (orjson.dumps(sorted({t for (t,) in tpks})).decode(),),
    ).fetchall()
    if gone:  # their series go with them: a new temporal entity may get the same tpk
        conn.execute(
            "DELETE FROM history_datasets WHERE tpk IN (SELECT value FROM json_each(?))",
            (orjson.dumps([t for (t,) in gone]).decode(),),
        )
    return old, last if old == limit else None


def update_instance(
    conn: sqlite3.Connection,
    names: AttrNames,
    tenant: str,
    eid: str,
    attr: str,
    instance_id: str,
    inst: Doc,
    limit: int = 0,
) -> bool:
    """Replace one instance's content, keeping its instanceId. The row moves to the end (a
    new row id), so that row ids stay in the order instances were last written (prune). An
    observation the temporal API stored, given the time of another it stored, replaces that
    one, as a POST at that time does (decision 034)."""
    tpk = _tpk(conn, tenant, eid)
    if tpk is None:
        return False
    nid = names.lookup(conn, attr)
    rows = instance_rows.locate(conn, tpk, nid, instance_id)
    if not rows:
        return False
    text = _stored_json(inst)
    check_size(len(text), limit, eid, f"an instance of {attr} in")
    conn.execute("UPDATE tentities SET modified_at = ? WHERE tpk = ?", (inst["modifiedAt"], tpk))
    values = (
        text,
        _num(inst),
        # an instance without observedAt keeps the time it was recorded at: a correction
        # does not move it to "now" on the observedAt axis (decision 024 addendum)
        epoch(inst.get("observedAt")),
        epoch(inst["modifiedAt"]),
        inst.get("datasetId"),
    )
    for hid, _ in rows:
        conn.execute(
            "UPDATE history SET hid = (SELECT max(hid) + 1 FROM history), "
            f"inst = iif(inst ->> {_SENT_PATH} IS NULL, ?1, json_set(?1, {_SENT_PATH}, json('true'))), "
            "num = ?, "
            "t_observed = coalesce(?, t_observed), t_modified = ?, dataset_id = ? WHERE hid = ?",
            (*values, hid),
        )
    observed = epoch(inst.get("observedAt"))
    sent = any(SENT in orjson.loads(stored) for _, stored in rows)
    if sent and observed is not None:  # moved onto another observation: it replaces that one
        conn.execute(
            "DELETE FROM history WHERE tpk = ? AND nid = ? AND t_observed = ? "
            f"AND dataset_id IS ? AND instance_id != ? AND inst ->> {_SENT_PATH} IS NOT NULL",
            (tpk, nid, observed, inst.get("datasetId"), instance_id),
        )
    if inst.get("datasetId") is not None:  # reads find its series there
        series = [(tpk, nid, inst["datasetId"])]
        if _had_defaults(conn, tpk, nid, besides=instance_id):
            series.append((tpk, nid, DEFAULT_SERIES))
        conn.executemany(
            "INSERT OR IGNORE INTO history_datasets (tpk, nid, dataset_id) VALUES (?, ?, ?)",
            series,
        )
    return True


def instance(
    conn: sqlite3.Connection, names: AttrNames, tenant: str, eid: str, attr: str, instance_id: str
) -> Doc | None:
    """One stored instance (with its instanceId), or None."""
    tpk = _tpk(conn, tenant, eid)
    if tpk is None:
        return None
    rows = instance_rows.locate(conn, tpk, names.lookup(conn, attr), instance_id)
    return _instance(rows[0][1], instance_id) if rows else None


def kind(
    conn: sqlite3.Connection, names: AttrNames, tenant: str, eid: str, attr: str
) -> str | None:
    """The attribute type of an attribute's stored instances (its first one), or None."""
    tpk = _tpk(conn, tenant, eid)
    return None if tpk is None else _first_kind(conn, tpk, names.lookup(conn, attr))


def _first_kind(conn: sqlite3.Connection, tpk: int, nid: int) -> str | None:
    """The type of an attribute's first stored instance (one index seek)."""
    row = conn.execute(
        "SELECT inst ->> '$.type' FROM history WHERE tpk = ? AND nid = ? LIMIT 1", (tpk, nid)
    ).fetchone()
    return None if row is None else row[0]


def delete_instance(
    conn: sqlite3.Connection, names: AttrNames, tenant: str, eid: str, attr: str, instance_id: str
) -> bool:
    """Delete one instance."""
    tpk = _tpk(conn, tenant, eid)
    if tpk is None:
        return False
    rows = instance_rows.locate(conn, tpk, names.lookup(conn, attr), instance_id)
    conn.executemany("DELETE FROM history WHERE hid = ?", [(hid,) for hid, _ in rows])
    return bool(rows)


# -- reading -----------------------------------------------------------------------------------


def _time_filter(query: TemporalQuery, bind: Binder, col: str | None = None) -> str:
    """timerel on the time property (deletedAt also selects only deleted instances), of the
    instances or of `col`."""
    col = col or TIME_COLUMNS[query.timeproperty]
    sql = f" AND {col} IS NOT NULL" if query.timeproperty == "deletedAt" else ""
    if query.timerel == "before":
        sql += f" AND {col} < {bind(query.time_at)}"
    elif query.timerel == "after":
        sql += f" AND {col} >= {bind(query.time_at)}"
    elif query.timerel == "between":
        sql += f" AND {col} >= {bind(query.time_at)} AND {col} < {bind(query.end_time_at)}"
    return sql


def _dataset_filter(dataset_ids: tuple[str, ...] | None, bind: Binder) -> str:
    if dataset_ids is None:
        return ""
    named = [d for d in dataset_ids if d != "@none"]
    alternatives = []
    if named:
        alternatives.append(f"h.dataset_id IN ({','.join(bind(d) for d in named)})")
    if len(named) != len(dataset_ids):
        alternatives.append("h.dataset_id IS NULL")
    return f" AND ({' OR '.join(alternatives)})"


def _attr_filter(nids: Iterable[int] | None, bind: Binder) -> str:
    if not nids:
        return ""
    return f" AND h.nid IN ({','.join(bind(n) for n in nids)})"


def _instance_filter(query: TemporalQuery, bind: Binder, nids: Iterable[int] | None) -> str:
    """Which instances a query selects: attributes (by id), datasetIds and the time window."""
    return (
        _attr_filter(nids, bind)
        + _dataset_filter(query.dataset_ids, bind)
        + _time_filter(query, bind)
    )


def _binder(params: list[Any]) -> Binder:
    def bind(value: Any) -> str:
        params.append(value)
        return "?"

    return bind


def _q_names(node: Any) -> set[str]:
    """The attributes a q tree reads."""
    from cityhub.ngsild.query import ast

    if isinstance(node, ast.And | ast.Or):
        return set().union(*(_q_names(n) for n in node.items))
    return {node.path.attr}


def _matches_history(
    conn: sqlite3.Connection, names: AttrNames, tpk: int, header: Doc, query: TemporalQuery
) -> bool:
    """q and geoQ over the instances in the time window: any reading may match. A deletion
    marker is none (the attribute did not exist then), except on the deletedAt axis, whose
    window holds only markers: there q asks which attributes were deleted. q reads its
    attributes' instances together; geoQ tests each reading as it is read and stops at the
    first that matches (a vehicle's 10,000 were all parsed first, then tested)."""
    from cityhub.ngsild.query.evaluate import geo_value, matches_q
    from cityhub.ngsild.query.geo import geo_matches

    eq = query.entities
    if eq.q is not None:
        attrs: dict[str, list[Doc]] = {}
        for name, doc in _window_instances(conn, names, tpk, query, _q_names(eq.q)):
            attrs.setdefault(name, []).append(doc)
        if not matches_q(eq.q, {**header, "attrs": attrs}):
            return False
    if eq.geo is None:
        return True
    for _, doc in _window_instances(conn, names, tpk, query, {eq.geo.geoproperty}):
        value = geo_value(doc)
        if value is not None and geo_matches(eq.geo, value):
            return True
    return False


def _window_instances(
    conn: sqlite3.Connection, names: AttrNames, tpk: int, query: TemporalQuery, wanted: set[str]
) -> Iterator[tuple[str, Doc]]:
    """(attribute, instance) of the wanted attributes in the window, as they are read; no
    deletion marker but on the deletedAt axis."""
    by_id = {names.lookup(conn, n): n for n in sorted(wanted)}
    params: list[Any] = [tpk]
    where = _instance_filter(query, _binder(params), by_id)
    markers = query.timeproperty == "deletedAt"
    for nid, inst in conn.execute(
        f"SELECT h.nid, h.inst FROM history h WHERE h.tpk = ?{where}", params
    ):
        if nid in by_id:
            doc = orjson.loads(inst)
            if markers or "deletedAt" not in doc:
                yield by_id[nid], doc


def _entities(
    conn: sqlite3.Connection,
    names: AttrNames,
    tenant: str,
    query: TemporalQuery,
    install_geo: Callable[[sqlite3.Connection, Compiler], None],
) -> tuple[list[tuple[int, Doc]], int | None]:
    """The temporal entities a query selects, paginated, with the total when asked.

    q and geoQ look at the attribute instances in the time window (a temporal entity need not
    exist in the current state); scopeQ at the temporal entity's own scope (decision 029).
    """
    eq = query.entities
    comp = Compiler(conn, names=names)
    parts = [f"tt.tenant = {comp.p(tenant)}"]
    nids = [names.lookup(conn, a) for a in query.attrs] if query.attrs else None
    parts += comp.selector(eq.ids, eq.id_pattern, eq.types, "tt.id", tenant)
    if eq.selectors:
        parts += comp.selector_ids(eq, "tt.id")
        parts.append(comp.selectors(eq.selectors, "tt.id", tenant))
    if query.with_instances:
        selected = (
            "EXISTS (SELECT 1 FROM history h WHERE h.tpk = tt.tpk"
            f"{_instance_filter(query, comp.p, nids)})"
        )
        if query.timeproperty == "deletedAt" and nids is None:  # or the entity's deletion
            went = _time_filter(query, comp.p, _ENTITY_DELETED_AT).removeprefix(" AND ")
            selected = f"({selected} OR ({went}))"
        parts.append(selected)
    elif nids:
        parts.append(
            f"EXISTS (SELECT 1 FROM history h WHERE h.tpk = tt.tpk{_attr_filter(nids, comp.p)})"
        )

    def window(nid: int) -> str:  # the instances a narrowing may look at, as _matches_history
        return _instance_filter(query, comp.p, [nid])

    if eq.q is not None:
        narrowed = temporal_q.prefilter(eq.q, conn, names, comp.p, window)
        if narrowed:
            parts.append(narrowed)
    if eq.geo is not None:
        narrowed = temporal_q.geo_prefilter(eq.geo, conn, names, comp.p, window)
        if narrowed:
            parts.append(narrowed)
    if eq.scope is not None:
        parts.append(comp.scope(eq.scope, "tt.scope"))
    install_geo(conn, comp)
    where = " AND ".join(parts)
    # by id: looked up on UNIQUE (tenant, id), then sorted (qsql.id_bound)
    source, order = "tentities tt", "+tt.tpk" if id_bound(eq) is not None else "tt.tpk"
    where_params = list(comp.params)
    if eq.order:
        # orderBy reads the current entity (id, type, times and attribute values)
        source = "tentities tt LEFT JOIN entities e ON e.tenant = tt.tenant AND e.id = tt.id"
        order = comp.order_by(eq.order, order).replace("e.id", "tt.id")
    select = (
        "SELECT tt.tpk, tt.id, tt.types, tt.created_at, tt.modified_at, tt.scope, tt.deleted_at "
        f"FROM {source} WHERE {where} ORDER BY {order}"
    )
    if eq.q is not None or eq.geo is not None:
        # matched in Python, in order; without count=true the walk stops at the page's end
        wanted = None if eq.count else eq.offset + eq.limit
        rows: list[tuple[int, Doc]] = []
        for tpk, *columns in conn.execute(select, comp.params):
            if wanted is not None and len(rows) >= wanted:
                break
            header = _header(*columns)
            if _matches_history(conn, names, tpk, header, query):
                rows.append((tpk, header))
        total = len(rows) if eq.count else None
        return rows[eq.offset : eq.offset + eq.limit], total
    total = None
    if eq.count:
        total = conn.execute(
            f"SELECT count(*) FROM tentities tt WHERE {where}", where_params
        ).fetchone()[0]
    page = conn.execute(f"{select} LIMIT ? OFFSET ?", [*comp.params, eq.limit, eq.offset])
    return [(tpk, _header(*columns)) for tpk, *columns in page.fetchall()], total


def _header(
    eid: str, types: str, created: str, modified: str, scope: str | None, deleted: str | None
) -> Doc:
    """A temporal entity's members besides its attributes (scope only when it has one,
    deletedAt only while its entity stays deleted: decision 100)."""
    out = {"id": eid, "type": orjson.loads(types), "createdAt": created, "modifiedAt": modified}
    if scope is not None:
        out["scope"] = orjson.loads(scope)
    if deleted is not None:
        out["deletedAt"] = deleted
    return out


def select(
    conn: sqlite3.Connection,
    names: AttrNames,
    tenant: str,
    query: TemporalQuery,
    install_geo: Callable[[sqlite3.Connection, Compiler], None],
) -> Result:
    """Instances per attribute, oldest first; lastN keeps the newest N of each datasetId of
    each attribute (each sensor's latest, as temporalValues and aggregation list them
    apart), firstN the oldest N. Each series is one index-ordered read: an attribute without
    datasetIds (most) is one read of history_obs, as before they counted apart."""
    ents, total = _entities(conn, names, tenant, query, install_geo)
    key = TIME_COLUMNS[query.timeproperty]
    n = query.last_n or query.first_n
    way = "DESC" if query.last_n else "ASC"
    out = []
    for tpk, header in ents:
        attrs: dict[str, list[Doc]] = {}
        for name, nid in _attr_ids(conn, names, tpk, query):
            found: list[Any] = []
            series = _series_filters(conn, query, tpk, nid)
            for _, ds_sql, ds_params in series:
                found += _series_rows(conn, query, key, way, n, tpk, nid, ds_sql, ds_params)
            if not found:
                continue
            if len(series) > 1:  # one attribute's instances in time order again
                found.sort(key=lambda r: (-math.inf if r[2] is None else r[2], r[3]))
            attrs[name] = [_read(query, row) for row in found]
        out.append((header, attrs))
    return out, total


def _read(query: TemporalQuery, row: Any) -> Doc:
    """An instance read on its time axis: one without observedAt whose modifiedAt a PATCH
    moved carries the time it sits at on the observedAt axis (RECORDED_AT)."""
    inst = _instance(row[0], row[1])
    if query.timeproperty == "observedAt" and row[2] != row[4] and "observedAt" not in inst:
        inst[RECORDED_AT] = epoch_iso(row[2])
    return inst


def _series_rows(
    conn: sqlite3.Connection,
    query: TemporalQuery,
    key: str,
    way: str,
    n: int | None,
    tpk: int,
    nid: int,
    ds_sql: str,
    ds_params: list[Any],
) -> list[Any]:
    """(inst, instanceId, time, hid, t_modified) of one series, oldest first: its newest n (DESC) or
    oldest n (ASC), with those tied with the last one when whole instants are asked for."""
    params: list[Any] = [tpk, nid, *ds_params]
    where = f"h.tpk = ? AND h.nid = ?{ds_sql}{_time_filter(query, _binder(params))}"
    ties_left = None  # how many instances tied with the last one may still come (None: all)
    if query.newest is not None:  # a page of the newest N (decision 058)
        if query.page_before is None:  # the first page: its rows are among the newest N
            ties_left = query.newest - (n or 0)
        else:  # a later one: those of the newest N older than the previous page
            tail = _last_n_bound(conn, key, where, params, query.newest)
            if tail is not None:
                where += tail[0]
                params += tail[1]
            where += f" AND {key} < ?"
            params.append(query.page_before)
    sql = (
        f"SELECT h.inst, h.instance_id, {key}, h.hid, h.t_modified FROM history h "
        f"WHERE {where} ORDER BY {key} {way}, h.hid {way}"
    )
    found = conn.execute(sql + (" LIMIT ?" if n else ""), [*params, n] if n else params).fetchall()
    if n and query.whole_instants and len(found) == n and found[-1][2] is not None:
        beyond = ">" if way == "ASC" else "<"
        ties = (
            f"SELECT h.inst, h.instance_id, {key}, h.hid, h.t_modified FROM history h "
            f"WHERE {where} AND {key} = ? AND h.hid {beyond} ? ORDER BY h.hid {way} LIMIT ?"
        )
        more = -1 if ties_left is None else ties_left  # LIMIT -1: no limit
        found += conn.execute(ties, [*params, found[-1][2], found[-1][3], more]).fetchall()
    if way == "DESC":
        found.reverse()
    return found


# -- aggregation -------------------------------------------------------------------------------

_METHOD_SQL = {
    "totalCount": ("count(*)",),
    "distinctCount": (
        # functions.distinct_key, whose key of a number is its double: a number other than
        # 0 and 1 is that double as history_obs holds it, read without the row (a REAL never
        # equals the TEXT keys); one call into Python per reading cost 5 s over 1,000,000.
        # 0 and 1 still go to Python: true and false hold them too, and -0.0 is its own key
        "count(DISTINCT CASE WHEN h.num NOT IN (0, 1) THEN h.num ELSE distinct_key(h.inst) END)",
    ),
    "sum": ("sum(h.num)",),
    # avg() is sum()/count() of the same numbers, to the bit (SQLite divides its own sum by
    # its count); read as those two, a period costs one aggregate step less per instance, and
    # period_records divides them (one number less to print and read per period)
    "avg": ("sum(h.num)", "count(h.num)"),
    "min": ("min(h.num)",),
    "max": ("max(h.num)",),
    "sumsq": ("sum(h.num * h.num)",),
    "stddev": ("stddev_pop(h.num)",),  # the population's (functions.PopulationStddev)
}


# min and max of instances without a number (strings, DateTimes, Dates, Times: decision
# 051): read only where a series is not proven to hold numbers alone, so a series of numbers
# never pays for them; an instance with a number never reaches extreme_key.
_ORDERED_SQL = {
    "min": "min(CASE WHEN h.num IS NULL THEN extreme_key(h.inst) END)",
    "max": "max(CASE WHEN h.num IS NULL THEN extreme_key(h.inst) END)",
}

_ORDERED_EXPRS = frozenset(_ORDERED_SQL.values())
_FIRST = operator.itemgetter(0)  # a period's number, the first of its row
_COUNT = operator.itemgetter(1)  # its count(*), the first aggregate

# Deletion markers (the urn:ngsi-ld:null instance a DELETE of an attribute records) are no
# readings: no method counts them. A number is never one, so an instance with `num` is kept
# from the index alone and only the others are looked up (SQLite seeks the row lazily).
_NOT_DELETION = " AND (h.num IS NOT NULL OR h.inst ->> '$.deletedAt' IS NULL)"

# Time properties with an index that starts (tpk, nid, time): periods can be read by range.
# Not createdAt: its index was dropped (schema.py), and a range read per period then scanned
# the whole series once per period (PT1S over 1,000,000 instances ran into the deadline).
_INDEXED_TIMES = ("observedAt",)
_MAX_RANGED_PERIODS = 50_000
_FEW_PERIODS = 64  # up to this many periods, reading each costs less than counting first


def aggregate(
    conn: sqlite3.Connection,
    names: AttrNames,
    tenant: str,
    query: TemporalQuery,
    aggr: Aggregation,
    install_geo: Callable[[sqlite3.Connection, Compiler], None],
) -> AggregateResult:
    """aggregatedValues in SQL, per attribute.

    Periods start at timeAt (after/between), else at the entity's first reading in the
    window, whichever attributes are asked for; without aggrPeriodDuration one period covers
    the whole requested range, up to endTimeAt (between), timeAt (before) or just past the
    last selected instance. Each attribute
    comes back as {method: [[value, startAt, endAt], ...]} (empty periods left out); the header
    lists the attribute types under "attrTypes".
    """
    ents, total = _entities(conn, names, tenant, query, install_geo)
    exprs = ["count(*)"]
    # only the counts see a marker: the other methods read `num`, which a marker lacks, so
    # they keep reading the index alone (the filter reads the row of every non-number)
    counted = not {"totalCount", "distinctCount"}.isdisjoint(aggr.methods)
    for m in aggr.methods:
        for e in _METHOD_SQL[m]:
            if e not in exprs:
                exprs.append(e)
    # Numbers only (a number is a Property's value) make one series of one type: the periods'
    # own read proves it, instead of a scan of the window for other types (_kinds). Counts
    # and lastN read less than the window, and a time without an index is not read by range.
    trusting = not counted and query.last_n is None and query.timeproperty in _INDEXED_TIMES
    ordered = [_ORDERED_SQL[m] for m in aggr.methods if m in _ORDERED_SQL]
    out: list[tuple[Doc, dict[str, list[Doc]]]] = []
    for tpk, header in ents:
        functions.check_deadline()
        found = None
        if trusting:
            numbers = exprs if _NUMBERS in exprs else [*exprs, _NUMBERS]
            found = _entity_series(conn, names, query, aggr, tpk, numbers, counted, True)
        if found is None:  # some instance is not a number: find the types of each series
            found = _entity_series(conn, names, query, aggr, tpk, [*exprs, *ordered], counted)
        assert found is not None
        attrs, kinds = found
        out.append((header if kinds is None else {**header, "attrTypes": kinds}, attrs))
    return out, total


# The extra aggregate of a trusting read: with count(*), it tells whether every instance read
# holds a number.
_NUMBERS = "count(h.num)"


def _entity_series(
    conn: sqlite3.Connection,
    names: AttrNames,
    query: TemporalQuery,
    aggr: Aggregation,
    tpk: int,
    exprs: list[str],
    counted: bool,
    trusting: bool = False,
) -> tuple[dict[str, list[Doc]], dict[str, str] | None] | None:
    """The aggregated series of one entity's attributes, and the type of each attribute
    (None: no attribute has an instance in the window).

    With _NUMBERS among the expressions, each series is taken to be of one type, and the
    result is None unless its read shows that every instance of its window is a number."""
    indexed = query.timeproperty in _INDEXED_TIMES
    col = TIME_COLUMNS[query.timeproperty]
    selected: dict[tuple[str, str | None, str | None], _Selected] = {}
    for name, nid in _attr_ids(conn, names, tpk, query):
        typed = _typed_series(conn, query, tpk, nid, trusting)
        if typed is None:
            return None
        for dataset, kind, ds_sql, ds_params in typed:
            params: list[Any] = [tpk, nid, *ds_params]
            where = f"h.tpk = ? AND h.nid = ?{ds_sql}"
            where += f"{_time_filter(query, _binder(params))} AND {col} IS NOT NULL"
            ends = where + _NOT_DELETION  # a marker does not stretch the range
            if query.last_n is not None:
                tail = _last_n_bound(conn, col, ends, params, query.last_n)
                if tail is not None:
                    bound, bound_params = tail
                    where, ends, ds_sql = where + bound, ends + bound, ds_sql + bound
                    params, ds_params = [*params, *bound_params], [*ds_params, *bound_params]
            first = conn.execute(
                f"SELECT {col} FROM history h WHERE {ends} ORDER BY {col} LIMIT 1", params
            ).fetchone()
            if first is None:
                continue
            last = conn.execute(
                f"SELECT {col} FROM history h WHERE {ends} ORDER BY {col} DESC LIMIT 1",
                params,
            ).fetchone()
            unmarked = _NOT_DELETION if counted else ""
            selected[name, dataset, kind] = _Selected(
                nid, where + unmarked, params, ds_sql + unmarked, ds_params, first[0], last[0]
            )
    if not selected:
        return {}, None
    if query.timerel in ("after", "between") and query.time_at is not None:
        start = query.time_at
    elif aggr.whole:
        start = min(sel.first for sel in selected.values())
    else:  # the same periods whichever attributes and datasetIds are asked for
        start = _first_reading(conn, query, col, tpk)
    if query.timerel == "between" and query.end_time_at is not None:
        end = query.end_time_at
    elif query.timerel == "before" and query.time_at is not None:
        end = query.time_at
    else:  # open: just past the last instance, so [start, end) holds it (decision 031)
        end = next_instant(max(sel.last for sel in selected.values()))
    attrs: dict[str, list[Doc]] = {}
    kinds: dict[str, str] = {}
    for (name, dataset, kind), sel in selected.items():
        functions.check_deadline()
        read = _periods(conn, query, col, exprs, sel, start, end, aggr, indexed, trusting)
        if trusting and not _numbers_only(conn, query, col, sel, read, exprs.index(_NUMBERS) + 1):
            return None
        if not read.rows:
            continue
        series = _series(read.rows, exprs, aggr, start, end)
        if _booleans(conn, sel, series):
            series = {m: _as_booleans(m, values) for m, values in series.items()}
        if kind is not None:  # the type of the series' instances, not the attribute's first
            series = {"type": kind, **series}
        attrs.setdefault(name, []).append(
            series if dataset is None else {"datasetId": dataset, **series}
        )
        if name not in kinds:
            kinds[name] = _first_kind(conn, tpk, sel.nid) or "Property"
    return attrs, kinds


def _numbers_only(
    conn: sqlite3.Connection,
    query: TemporalQuery,
    col: str,
    sel: _Selected,
    read: _Read,
    numbers: int,
) -> bool:
    """Whether every instance in a series' window holds a number (then all are Properties):
    each one the periods read did (count(h.num) = count(*)), and none lies outside them
    (index seeks: one range of the window below the span read, one above)."""
    if not read.complete:
        return False
    if list(map(operator.itemgetter(numbers), read.rows)) != list(map(_COUNT, read.rows)):
        return False
    series = f"h.tpk = ? AND h.nid = ?{sel.ds_sql}"
    params: list[Any] = [sel.params[0], sel.params[1], *sel.ds_params]
    # a window without bounds also holds instances without the time (NULL is in no other)
    outside: list[tuple[str, list[Any]]] = (
        [(f" AND {col} IS NULL", [])] if query.timerel is None else []
    )
    if read.span is not None:
        start = query.time_at if query.timerel in ("after", "between") else None
        stop = query.end_time_at if query.timerel == "between" else None
        stop = query.time_at if query.timerel == "before" else stop
        lo, hi = read.span
        for a, b in ((start, lo), (hi, stop)):
            cond, args = f" AND {col} < ?", [b]
            if b is None:
                cond, args = "", []
            if a is not None:
                cond, args = f" AND {col} >= ?{cond}", [a, *args]
            outside.append((cond, args))
    return all(
        conn.execute(
            f"SELECT 1 FROM history h WHERE {series}{cond} LIMIT 1", [*params, *args]
        ).fetchone()
        is None
        for cond, args in outside
    )


def _last_n_bound(
    conn: sqlite3.Connection, col: str, ends: str, params: list[Any], last_n: int
) -> tuple[str, list[Any]] | None:
    """The condition that keeps a series' last N instances in the window `ends` selects
    (lastN, 5.2.21: "the last n instances, per attribute, per entity"), ties at the Nth broken
    by row id as `select` breaks them; None when the series holds no more than N. One read of
    N index entries."""
    row = conn.execute(
        f"SELECT {col}, h.hid FROM history h WHERE {ends} ORDER BY {col} DESC, h.hid DESC "
        "LIMIT 1 OFFSET ?",
        [*params, last_n - 1],
    ).fetchone()
    if row is None:
        return None
    return f" AND ({col} > ? OR ({col} = ? AND h.hid >= ?))", [row[0], row[0], row[1]]


def _first_reading(conn: sqlite3.Connection, query: TemporalQuery, col: str, tpk: int) -> float:
    """The time of an entity's first reading in the window, over all its attributes and
    datasetIds: where its periods start when timeAt does not say (one index seek per
    attribute). Taken over those asked for, an attribute's periods moved with the others."""
    found: list[float] = []
    row = conn.execute("SELECT min(nid) FROM history WHERE tpk = ?", (tpk,)).fetchone()
    while row is not None and row[0] is not None:
        params: list[Any] = [tpk, row[0]]
        where = f"h.tpk = ? AND h.nid = ?{_time_filter(query, _binder(params))}"
        first = conn.execute(
            f"SELECT {col} FROM history h WHERE {where} AND {col} IS NOT NULL{_NOT_DELETION} "
            f"ORDER BY {col} LIMIT 1",
            params,
        ).fetchone()
        if first is not None:
            found.append(first[0])
        row = conn.execute(
            "SELECT min(nid) FROM history WHERE tpk = ? AND nid > ?", (tpk, row[0])
        ).fetchone()
    return min(found)


class _Selected(NamedTuple):
    """One series to aggregate: its attribute id, WHERE clause and the first and last of
    its selected instances' times; ds_sql/ds_params are its datasetId condition alone (and
    the marker filter, when counts are asked for)."""

    nid: int
    where: str
    params: list[Any]
    ds_sql: str
    ds_params: list[Any]
    first: float
    last: float


def _typed_series(
    conn: sqlite3.Connection, query: TemporalQuery, tpk: int, nid: int, first_only: bool = False
) -> list[tuple[str | None, str | None, str, list[Any]]] | None:
    """(datasetId, attribute type, SQL condition, parameters) of each aggregated series of one
    attribute: one per datasetId and type in the window (the type None when it holds no
    instance); `first_only` takes each datasetId's instances to be of its first type, and
    gives None when one's first instance holds no number."""
    out: list[tuple[str | None, str | None, str, list[Any]]] = []
    for dataset, sql, params in _series_filters(conn, query, tpk, nid):
        window_params: list[Any] = [tpk, nid, *params]
        window = f"h.tpk = ? AND h.nid = ?{sql}{_time_filter(query, _binder(window_params))}"
        kinds = _kinds(conn, window, window_params, first_only)
        if not kinds:
            return None
        if len(kinds) == 1:
            out.append((dataset, kinds[0], sql, params))
            continue
        typed = f"{sql} AND h.inst ->> '$.type' = ?"
        out += [(dataset, kind, typed, [*params, kind]) for kind in kinds]
    return out


def _series_filters(
    conn: sqlite3.Connection, query: TemporalQuery, tpk: int, nid: int
) -> list[tuple[str | None, str, list[Any]]]:
    """(datasetId, SQL condition, parameters) of each series of one attribute.

    Instances of different datasetIds are different sources (two sensors of one
    temperature), aggregated apart as temporalValues lists them apart. history_datasets
    names the datasetIds an attribute ever had, and "@none" when it had default instances
    too; most have none, and then the one series needs no condition, so its aggregation
    still reads the index alone.
    """
    named = [
        r[0]
        for r in conn.execute(
            "SELECT dataset_id FROM history_datasets WHERE tpk = ? AND nid = ? ORDER BY 1",
            (tpk, nid),
        )
    ]
    wanted = query.dataset_ids
    out: list[tuple[str | None, str, list[Any]]] = []
    if not named:
        if wanted is None or "@none" in wanted:
            out.append((None, "", []))
    elif named[0] == DEFAULT_SERIES:  # it also has instances without a datasetId
        named.pop(0)
        if wanted is None or "@none" in wanted:
            out.append((None, " AND h.dataset_id IS NULL", []))
    out += [(d, " AND h.dataset_id = ?", [d]) for d in named if wanted is None or d in wanted]
    return out


def _kinds(
    conn: sqlite3.Connection, where: str, params: list[Any], first_only: bool = False
) -> list[str | None]:
    """The attribute types of one series' instances in the window, in the order they first
    came ([None] when it holds none): entity writes may turn a Property into a Relationship,
    and both were counted as one series under the attribute's first type, where
    temporalValues gives one record per type.

    Finding out reads only the rows without a number when the first type is Property (a
    number is a Property's value): about as long as a count over the index. `first_only`
    stops at the first type, and gives [] when its instance holds no number (the caller
    checks the others).
    """
    row = conn.execute(
        f"SELECT h.inst ->> '$.type', h.num FROM history h WHERE {where} LIMIT 1", params
    )
    first = row.fetchone()
    if first is None:
        return [None]
    kind: str = first[0]
    if first_only:
        return [kind] if first[1] is not None else []
    other = "h.inst ->> '$.type' <> ?"
    if kind == "Property":
        other = f"h.num IS NULL AND {other}"
    found = conn.execute(
        f"SELECT 1 FROM history h WHERE {where} AND {other} LIMIT 1", [*params, kind]
    )
    if found.fetchone() is None:
        return [kind]
    kinds = conn.execute(
        f"SELECT h.inst ->> '$.type' AS k FROM history h WHERE {where} GROUP BY k "
        "ORDER BY min(h.hid)",
        params,
    )
    return [k for (k,) in kinds]


# SQLite (3.40) prints an overflowed double as a bare Inf, which is not JSON
_INFINITY = re.compile(r'"(?:[^"\\]|\\.)*"|(-?)Inf\b')


def _read_json(packed: str) -> Any:
    """A period's json_array as Python: a sum past a double's range is written Inf by SQLite
    and read here as an infinite float (shown as null, as the whole-range read shows it)."""
    try:
        return orjson.loads(packed)
    except orjson.JSONDecodeError:
        if "Inf" not in packed:
            raise
        return json.loads(_INFINITY.sub(_as_infinity, packed))  # orjson refuses infinities


def _as_infinity(m: re.Match[str]) -> str:
    """Inf as the Infinity json reads; strings stay as they are."""
    return m[0] if m[1] is None else f"{m[1]}Infinity"


def _periods(
    conn: sqlite3.Connection,
    query: TemporalQuery,
    col: str,
    exprs: list[str],
    sel: _Selected,
    start: float,
    end: float,
    aggr: Aggregation,
    ranged: bool,
    trusting: bool = False,
) -> _Read:
    """(period number, *aggregates) of each non-empty period of one attribute, and which of
    its instances were read.

    On an indexed time (`ranged`), each period is one range read of the index (no sort), as
    long as there are at least as many instances as periods: a read per period costs the
    same, full or empty, so 50,000 periods over 2 instances took seconds. Otherwise one
    GROUP BY over the period number.
    """
    where, params = sel.where, sel.params
    if aggr.whole:
        row = conn.execute(f"SELECT 0, {', '.join(exprs)} FROM history h WHERE {where}", params)
        return _Read([r for r in row.fetchall() if r[1]], None, True)
    i0, i1 = aggr.index(start, sel.first), aggr.index(start, sel.last)
    # the last DateTime rounds to END_OF_TIME, where the last period's range ends: a series
    # that holds it reads its last period open-ended (and numbers it as that period)
    open_end = sel.last >= END_OF_TIME
    if ranged and i1 - i0 < _MAX_RANGED_PERIODS and _as_many(conn, where, params, i1 - i0 + 1):
        ds_params: list[Any] = [params[0], params[1], *sel.ds_params]
        ds = sel.ds_sql
        upper = end if query.timerel in ("before", "between") else 1e300
        if aggr.months:  # calendar periods differ in length: their edges come from Python
            edges = [aggr.edge(start, i) for i in range(i0, i1 + 2)]
            spans = [[i0 + k, lo, hi] for k, (lo, hi) in enumerate(itertools.pairwise(edges))]
            if open_end:
                spans[-1][2] = _OPEN
            periods = (
                "q(i, lo, hi) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
                " json_extract(value, '$[2]') FROM json_each(?))"
            )
            period_args: list[Any] = [orjson.dumps(spans).decode()]
            # the first and last edges as SQL reads them from the JSON below
            edges = list(
                conn.execute(
                    "SELECT json_extract(?1, '$[0][1]'), json_extract(?1, '$[#-1][2]')",
                    period_args,
                ).fetchone()
            )
        else:
            ends, ends_args = "? + (i + 1) * ?", [start, aggr.seconds]
            if open_end:
                ends, ends_args = f"iif(i < ?, {ends}, {_OPEN})", [i1, *ends_args]
            periods = (
                "p(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM p WHERE i < ?), "
                f"q(i, lo, hi) AS (SELECT i, ? + i * ?, {ends} FROM p)"
            )
            period_args = [i0, i1, start, aggr.seconds, *ends_args]
            # the first and last edges as SQL computes them below
            last_edge = _OPEN if open_end else start + (i1 + 1) * aggr.seconds
            edges = [start + i0 * aggr.seconds, last_edge]
        # [i, *aggregates] of a period, NULL when it is empty (period_text)
        record = period_text.record_sql(exprs, _ORDERED_EXPRS, nulls=not trusting)
        within = f"h.tpk = ? AND h.nid = ?{ds} AND {col} >= lo AND {col} < min(hi, ?)"
        period = f"(SELECT CASE WHEN count(*) THEN {record} END FROM history h WHERE {within})"
        args = [*period_args, *ds_params, upper]
        span = (edges[0], min(edges[-1], upper))
        if not aggr.limit or i1 - i0 < aggr.limit:  # no cut: every period in one string
            sql = f"WITH RECURSIVE {periods} SELECT '[' || group_concat({period}) || ']' FROM q"
            (packed,) = conn.execute(sql, args).fetchone()
            rows = _read_json(packed) if packed is not None else []
            if packed is not None and period_text.EXPONENT in packed:
                rows = _exactly(conn, periods, within, exprs, args, rows)
            rows.sort(key=_FIRST)  # in period order, whichever order SQLite concatenated them
            return _Read(rows, span, True)
        rows = []
        complete = True
        for (packed,) in conn.execute(f"WITH RECURSIVE {periods} SELECT {period} FROM q", args):
            if packed is not None:  # periods are made as they are read
                rows.append(_read_json(packed))
                if len(rows) == aggr.limit:
                    complete = rows[-1][0] == i1
                    break
        rows = _exactly(conn, periods, within, exprs, args, rows)
        return _Read(rows, span, complete)
    if aggr.months:  # calendar periods are not all the same length: a function numbers them
        bucket, bucket_args = "period_index(?, " + col + ", ?, ?)", [start, aggr.months]
    else:
        bucket, bucket_args = f"CAST(({col} - ?) / ? AS INTEGER)", [start]
        if open_end:  # the last DateTime numbered as the last period that starts before it
            bucket = f"min({bucket}, {int(aggr.index(start, END_OF_TIME))})"
    bound = ""
    complete = not (aggr.limit and i1 - i0 >= aggr.limit)
    if not complete:
        if ranged:  # read no further than the first instance past the limit-th period
            hi = _first_past_page(conn, col, sel, start, aggr, bucket, bucket_args)
            if hi is not None:
                where, params = f"{where} AND {col} < ?", [*params, hi]
        else:  # no index on this time: SQLite reads all, Python takes a page
            bound = f" LIMIT {int(aggr.limit)}"
    sql = (
        f"SELECT {bucket} AS b, {', '.join(exprs)} FROM history h "
        f"WHERE {where} GROUP BY b ORDER BY b{bound}"
    )
    rows = conn.execute(sql, [*bucket_args, aggr.seconds, *params]).fetchall()
    return _Read(rows, None, complete)


def _exactly(
    conn: sqlite3.Connection,
    periods: str,
    within: str,
    exprs: list[str],
    args: list[Any],
    rows: list[Any],
) -> list[Any]:
    """The records holding a number printf may not print exactly (period_text), read again as
    rows over the same periods and instances (a join grouped by period: these are few)."""
    numbers = [k + 1 for k, e in enumerate(exprs) if not e.startswith("count(")]
    redo = period_text.large(rows, numbers)
    if not redo:
        return rows
    again = conn.execute(
        f"WITH RECURSIVE {periods} SELECT i, {', '.join(exprs)} FROM q JOIN history h "
        f"ON {within} WHERE i IN (SELECT value FROM json_each(?)) GROUP BY i",
        [*args, orjson.dumps(redo).decode()],
    ).fetchall()
    return period_text.replace(rows, again)


class _Read(NamedTuple):
    """What _periods read of one series: its non-empty periods, the [lo, hi) span of time it
    read by range (None: every instance of the series), and whether no period was cut."""

    rows: list[Sequence[Any]]
    span: tuple[float, float] | None
    complete: bool


_OPEN = 1e300  # the end of a last period that holds the last DateTime (END_OF_TIME itself)
_SLACK = 64  # seeks more than the page, for edges that float rounding puts before a period


def _first_past_page(
    conn: sqlite3.Connection,
    col: str,
    sel: _Selected,
    start: float,
    aggr: Aggregation,
    bucket: str,
    bucket_args: list[Any],
) -> float | None:
    """The time of the first instance of a series' (limit+1)-th non-empty period (None: it
    has no such period, or rounding hid it): one index seek per non-empty period, from each
    period's end to the next instance, numbered as the GROUP BY numbers them. Over 100,000
    instances one per period, the GROUP BY built all of them to keep the first 10,000."""
    step = "period_edge(?, period_index(?, s.t, ?, ?) + 1, ?, ?)"
    # each seek starts at s.t: the window's own lower bound (`col >= timeAt`) is made no
    # index bound (unary +), else SQLite ranged on it and every seek read the series from the
    # window's start, the square of the page in all (PT0.000001S: 4.8 s for 10,064 seeks)
    where = sel.where.replace(f" {col} >= ", f" +{col} >= ")
    sql = (
        f"WITH RECURSIVE s(t, k) AS (SELECT ?, 1 UNION ALL SELECT (SELECT {col} FROM history h "
        f"WHERE {where} AND {col} > s.t AND {col} >= {step} ORDER BY {col} LIMIT 1), "
        f"k + 1 FROM s WHERE s.t IS NOT NULL AND k < ?) "
        f"SELECT t, {bucket.replace(col, 't')} FROM s WHERE t IS NOT NULL"
    )
    edge = [start, start, aggr.months, aggr.seconds, aggr.months, aggr.seconds]
    cap = aggr.limit + 1 + _SLACK
    args = [sel.first, *sel.params, *edge, cap, *bucket_args, aggr.seconds]
    seen = 0
    last = None
    for t, b in conn.execute(sql, args):
        if b != last:
            seen, last = seen + 1, b
            if seen > aggr.limit:
                return float(t)
    return None


def _as_many(conn: sqlite3.Connection, where: str, params: list[Any], periods: int) -> bool:
    """Whether the selected instances are at least as many as the periods (reads at most
    `periods` index entries)."""
    if periods <= _FEW_PERIODS:
        return True
    sql = f"SELECT count(*) FROM (SELECT 1 FROM history h WHERE {where} LIMIT ?)"
    (n,) = conn.execute(sql, [*params, periods]).fetchone()
    return bool(n >= periods)


def _attr_ids(
    conn: sqlite3.Connection, names: AttrNames, tpk: int, query: TemporalQuery
) -> list[tuple[str, int]]:
    """(name, id) of the attributes a query reads: those its attrs or pick name, else every
    attribute the entity has (one index seek each, a skip scan, in name order), less those
    its omit names."""
    wanted = query.attrs if query.attrs is not None else query.picked
    if wanted is not None:
        return [(name, names.lookup(conn, name)) for name in wanted]
    found: list[tuple[str, int]] = []
    row = conn.execute("SELECT min(nid) FROM history WHERE tpk = ?", (tpk,)).fetchone()
    while row is not None and row[0] is not None:
        name = names.name(conn, row[0])
        if name and name not in query.omitted:
            found.append((name, row[0]))
        row = conn.execute(
            "SELECT min(nid) FROM history WHERE tpk = ? AND nid > ?", (tpk, row[0])
        ).fetchone()
    return sorted(found)


def _series(
    rows: list[Sequence[Any]],
    exprs: list[str],
    aggr: Aggregation,
    start: float,
    end: float,
) -> Doc:
    """{method: [[value, startAt, endAt], ...]} from GROUP BY rows (bucket number first)."""
    col = {e: i + 1 for i, e in enumerate(exprs)}
    columns = {m: (col[_METHOD_SQL[m][0]], col.get(_ORDERED_SQL.get(m, ""))) for m in aggr.methods}
    if "avg" in columns:  # [sum, count] of the numbers, which period_records divides
        columns["avg"] = (col[_METHOD_SQL["avg"][0]], col[_METHOD_SQL["avg"][1]])
    return period_records.records(rows, columns, aggr, start, end)


def _booleans(conn: sqlite3.Connection, sel: _Selected, series: Doc) -> bool:
    """Whether a series' min and max are of Booleans (num holds true as 1, false as 0), so
    they are given as the Boolean they were: the JSON type of a value the series held, as a
    number's and a DateTime's are. Looked up (the first instance with a number) only when
    some min or max is 0 or 1; a series mixing Booleans and numbers reads as its first."""
    extremes = {rec[0] for m in ("min", "max") for rec in series.get(m, ()) if type(rec[0]) is int}
    if not extremes & {0, 1}:
        return False
    row = conn.execute(
        f"SELECT json_type(h.inst, '$.value') FROM history h WHERE {sel.where} "
        "AND h.num IS NOT NULL LIMIT 1",
        sel.params,
    ).fetchone()
    return row is not None and row[0] in ("true", "false")


def _as_booleans(method: str, values: list[list[Any]]) -> list[list[Any]]:
    """min and max records of a series of Booleans with their 0 and 1 as false and true."""
    if method not in ("min", "max"):
        return values
    return [[bool(v) if type(v) is int and v in (0, 1) else v, *rest] for v, *rest in values]
