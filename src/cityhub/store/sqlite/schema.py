"""SQLite schema: entities as JSON documents plus index tables that keep queries fast."""

from collections.abc import Callable
from sqlite3 import Connection

from cityhub.store.sqlite import deletions, erasures, instance_rows, outbox, typesets, typestats

SCHEMA_VERSION = 22

# numberOfHits and lastUsage of each @context (the core one too), saved now and then and at
# shutdown (api/context_usage.py), so a restart does not show every context as never used.
CONTEXT_USAGE_DDL = """
CREATE TABLE IF NOT EXISTS context_usage (
    url TEXT PRIMARY KEY, hits INTEGER NOT NULL, last_usage TEXT
) WITHOUT ROWID;
"""

TENANTS_DDL = """
-- Every tenant that has ever stored something: it stays known once its content is deleted.
CREATE TABLE IF NOT EXISTS tenants (tenant TEXT PRIMARY KEY) WITHOUT ROWID;
"""
# scope: the entity's scope as a JSON array (NULL without one), as the last write through
# either API gave it, so that scopeQ selects temporal entities that have no current entity
# (docs/decisions/029). deleted_at: when the entity was last deleted, while no entity write
# has made it again (store/sqlite/deletions.py, docs/decisions/100).
TENTITIES_DDL = """
CREATE TABLE IF NOT EXISTS tentities (
    tpk INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL, id TEXT NOT NULL, types TEXT NOT NULL,
    created_at TEXT NOT NULL, modified_at TEXT NOT NULL,
    scope TEXT, deleted_at TEXT,
    UNIQUE (tenant, id)
);
"""
DATASETS_DDL = """
-- The datasetIds each temporal attribute ever had: aggregatedValues and lastN make a series
-- of each (most attributes have none, and their reads use history_obs alone); '@none' when
-- an attribute with datasetIds also had instances without one (decision 026).
CREATE TABLE IF NOT EXISTS history_datasets (
    tpk INTEGER NOT NULL, nid INTEGER NOT NULL, dataset_id TEXT NOT NULL,
    PRIMARY KEY (tpk, nid, dataset_id)
) WITHOUT ROWID;
"""

# The value indexes, by attribute, type set and value (decision 067).
VALUE_INDEXES = """
CREATE INDEX IF NOT EXISTS attr_index_ts ON attr_index (nid, tid, ts) WHERE ts IS NOT NULL;
CREATE INDEX IF NOT EXISTS attr_index_num ON attr_index (nid, tid, num) WHERE num IS NOT NULL;
CREATE INDEX IF NOT EXISTS attr_index_txt ON attr_index (nid, tid, txt) WHERE txt IS NOT NULL;
"""

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=OFF",
    "PRAGMA busy_timeout=5000",
    "PRAGMA cache_size=-65536",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA mmap_size=268435456",
    "PRAGMA journal_size_limit=67108864",
    # deleted content is overwritten with zeros, in the page and in freed pages: a build of
    # SQLite without SECURE_DELETE (upstream's default) left an erased person's values in
    # the file's free space (docs/decisions/072)
    "PRAGMA secure_delete=ON",
)

DDL = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Current state: one row per entity, the whole stored document as JSON text.
CREATE TABLE IF NOT EXISTS entities (
    pk INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (tenant, id)
);
-- (tenant, pk) in pk order: a query not driven by one type pages a tenant's entities in
-- insertion order without sorting all of them first (UNIQUE (tenant, id) is in id order).
CREATE INDEX IF NOT EXISTS entities_tenant ON entities (tenant);
CREATE TABLE IF NOT EXISTS entity_types (
    tenant TEXT NOT NULL, type TEXT NOT NULL, pk INTEGER NOT NULL,
    PRIMARY KEY (tenant, type, pk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_types_pk ON entity_types (pk);
-- One row per compared element of each top-level attribute: q compiles to index look-ups
-- (store/sqlite/index.py: numbers in num, strings in txt, other kinds as tagged ts keys,
-- Relationships and the targets `!=` needs in seq).
-- Clustered by (pk, nid): the table itself answers "does entity pk have name OP value".
-- nid is the attribute name's id in attr_names (store/sqlite/names.py); tid the entity's
-- type set (store/sqlite/typesets.py), so each value index range lies within one set of
-- types of one tenant (docs/decisions/067).
CREATE TABLE IF NOT EXISTS attr_names (nid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS attr_index (
    pk INTEGER NOT NULL, nid INTEGER NOT NULL, seq INTEGER NOT NULL, num REAL, txt TEXT, ts TEXT,
    tid INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pk, nid, seq)
) WITHOUT ROWID;
"""
    + VALUE_INDEXES
    + typesets.DDL
    + """-- Geometries: an R*Tree on bounding boxes, exact predicates in shapely.
CREATE TABLE IF NOT EXISTS geo (
    gid INTEGER PRIMARY KEY, pk INTEGER NOT NULL, name TEXT NOT NULL, geojson TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS geo_pk ON geo (pk);
CREATE VIRTUAL TABLE IF NOT EXISTS geo_rtree USING rtree (gid, minx, maxx, miny, maxy);
-- Temporal evolution: every attribute instance ever written.
"""
    + TENTITIES_DDL
    + """-- (tenant, tpk) in tpk order: a temporal query pages a tenant's entities in insertion order
-- without sorting all of them first (the UNIQUE (tenant, id) index is in id order).
CREATE INDEX IF NOT EXISTS tentities_tenant ON tentities (tenant);
CREATE TABLE IF NOT EXISTS history (
    hid INTEGER PRIMARY KEY,
    tpk INTEGER NOT NULL,
    nid INTEGER NOT NULL,  -- the attribute, as its attr_names id
    dataset_id TEXT,
    instance_id TEXT NOT NULL,
    -- observedAt, or modifiedAt for an instance never observed (docs/decisions/024)
    t_observed REAL, t_created REAL NOT NULL, t_modified REAL NOT NULL,
    num REAL,
    inst TEXT NOT NULL,
    -- the t_observed its instance_id names (decision 060; NULL in rows from before schema 16)
    id_time REAL
);
-- num rides along so aggregatedValues reads only the index.
CREATE INDEX IF NOT EXISTS history_obs ON history (tpk, nid, t_observed, num);
-- createdAt/modifiedAt time filters narrow by (tpk, nid) through history_obs, and an instance
-- id names its t_observed there; an index on either would cost every write a B-tree insert
-- per instance (history_moved holds only the rows whose id names another time).
DROP INDEX IF EXISTS history_created;
DROP INDEX IF EXISTS history_instance;
"""
    + instance_rows.MOVED_DDL
    + """-- @contexts that survive a restart: hosted ones, the last copy of each fetched one, and the
-- ImplicitlyCreated and Retired ones a subscription (or a hosted context) names.
CREATE TABLE IF NOT EXISTS contexts (
    url TEXT PRIMARY KEY, kind TEXT NOT NULL, doc TEXT NOT NULL, created_at TEXT NOT NULL
);
"""
    + CONTEXT_USAGE_DDL
    + """CREATE TABLE IF NOT EXISTS resources (pk INTEGER PRIMARY KEY, kind TEXT NOT NULL, tenant TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE (kind, tenant, id));
-- Attribute names and kinds per entity type, counted on write (store/sqlite/typestats.py).
"""
    + typestats.DDL
    + typestats.BY_NID
    + TENANTS_DDL
    + DATASETS_DDL
    + erasures.DDL
)

# Upgrades in place, by the version they start from; each runs in one transaction.
MIGRATIONS = {
    # 2 -> 3: attribute names in attr_index and history become ids in attr_names
    # (docs/decisions/010).
    2: """
CREATE TABLE attr_names (nid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO attr_names (name)
    SELECT name FROM attr_index UNION SELECT attr FROM history ORDER BY 1;
CREATE TABLE attr_index_v3 (
    pk INTEGER NOT NULL, nid INTEGER NOT NULL, seq INTEGER NOT NULL, num REAL, txt TEXT, ts TEXT,
    PRIMARY KEY (pk, nid, seq)
) WITHOUT ROWID;
INSERT INTO attr_index_v3 (pk, nid, seq, num, txt, ts)
    SELECT a.pk, n.nid, a.seq, a.num, a.txt, a.ts
    FROM attr_index a JOIN attr_names n ON n.name = a.name;
DROP TABLE attr_index;
ALTER TABLE attr_index_v3 RENAME TO attr_index;
CREATE TABLE history_v3 (
    hid INTEGER PRIMARY KEY,
    tpk INTEGER NOT NULL,
    nid INTEGER NOT NULL,
    dataset_id TEXT,
    instance_id TEXT NOT NULL,
    t_observed REAL, t_created REAL NOT NULL, t_modified REAL NOT NULL,
    num REAL,
    inst TEXT NOT NULL
);
INSERT INTO history_v3
    SELECT h.hid, h.tpk, n.nid, h.dataset_id, h.instance_id, h.t_observed, h.t_created,
           h.t_modified, h.num, h.inst
    FROM history h JOIN attr_names n ON n.name = h.attr ORDER BY h.hid;
DROP TABLE history;
ALTER TABLE history_v3 RENAME TO history;
""",
    # 3 -> 4: discovery counts per type and attribute, filled from the documents
    # (docs/decisions/020).
    3: typestats.DDL + typestats.BACKFILL,
    # 4 -> 5: attr_index rows keep kinds apart (booleans, dates, times, nulls get tagged ts
    # keys; Relationships and each compared target are marked in seq), rebuilt from the
    # documents by index.attr_rows (functions.index_rows).
    4: """
DELETE FROM attr_index;
INSERT OR IGNORE INTO attr_names (name)
    SELECT DISTINCT a.key FROM entities e, json_each(e.doc, '$.attrs') a;
INSERT INTO attr_index (pk, nid, seq, num, txt, ts)
    SELECT e.pk, n.nid, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4
    FROM entities e, json_each(index_rows(e.doc)) r JOIN attr_names n ON n.name = r.value ->> 0;
""",
    # 5 -> 6: an instance without observedAt sits on the observedAt axis at its modifiedAt
    # (docs/decisions/024).
    5: "UPDATE history SET t_observed = t_modified WHERE t_observed IS NULL;",
    # 6 -> 7: tenants are recorded when they first store something, not inferred from what
    # they hold now (docs/decisions/025); the datasetIds of each temporal attribute, so
    # aggregatedValues gives each its own series.
    6: TENANTS_DDL
    + """INSERT OR IGNORE INTO tenants (tenant)
    SELECT tenant FROM entities UNION SELECT tenant FROM tentities
    UNION SELECT tenant FROM resources;
"""
    + DATASETS_DDL
    + """INSERT OR IGNORE INTO history_datasets (tpk, nid, dataset_id)
    SELECT DISTINCT tpk, nid, dataset_id FROM history WHERE dataset_id IS NOT NULL;
""",
    # 7 -> 8: '@none' in history_datasets for an attribute with datasetIds that also has
    # instances without one, so that reads skip a default series it never had (decision 026).
    7: """INSERT OR IGNORE INTO history_datasets (tpk, nid, dataset_id)
    SELECT DISTINCT h.tpk, h.nid, '@none' FROM history h
    WHERE h.dataset_id IS NULL AND EXISTS (
        SELECT 1 FROM history_datasets d WHERE d.tpk = h.tpk AND d.nid = h.nid);
""",
    # 8 -> 9: temporal entities keep their scope, filled from the current entities
    # (docs/decisions/029). The table is rebuilt rather than altered, so that a database
    # marked older than it is (as upgrade tests make them) upgrades the same way.
    8: TENTITIES_DDL.replace("tentities", "tentities_v9")
    + """INSERT INTO tentities_v9 (tpk, tenant, id, types, created_at, modified_at, scope)
    SELECT t.tpk, t.tenant, t.id, t.types, t.created_at, t.modified_at,
           (SELECT e.doc -> '$.scope' FROM entities e WHERE e.tenant = t.tenant AND e.id = t.id)
    FROM tentities t ORDER BY t.tpk;
DROP TABLE tentities;
ALTER TABLE tentities_v9 RENAME TO tentities;
CREATE INDEX IF NOT EXISTS tentities_tenant ON tentities (tenant);
""",
    # 9 -> 10: a LanguageProperty instance is one q target, its values in every language
    # together, so that `lp!="v"` means no language has "v" (decision 023). The attr_index
    # rows of the entities that hold one are rebuilt by index.attr_rows; no others change.
    9: """
CREATE TEMP TABLE lang_pks AS
    SELECT e.pk FROM entities e
    WHERE e.doc LIKE '%"LanguageProperty"%' AND EXISTS (
        SELECT 1 FROM json_each(e.doc, '$.attrs') a, json_each(a.value) i
        WHERE i.value ->> 'type' = 'LanguageProperty');
DELETE FROM attr_index WHERE pk IN (SELECT pk FROM temp.lang_pks);
INSERT INTO attr_index (pk, nid, seq, num, txt, ts)
    SELECT e.pk, n.nid, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4
    FROM temp.lang_pks l JOIN entities e ON e.pk = l.pk, json_each(index_rows(e.doc)) r
    JOIN attr_names n ON n.name = r.value ->> 0;
DROP TABLE temp.lang_pks;
""",
    # 10 -> 11: the items of one change that notifies several subscriptions share one stored
    # body (store/sqlite/outbox.py); the pending rows are kept as they are.
    10: outbox.MIGRATION,
    # 11 -> 12: attributeCount counts attribute instances (one per datasetId), not the
    # entities holding the attribute (Table 5.2.28-1).
    11: typestats.INSTANCES,
    # 12 -> 13: history retention dropped temporal entities but kept their history_datasets
    # rows, which a new temporal entity given the same tpk inherited as series of its own.
    12: "DELETE FROM history_datasets WHERE tpk NOT IN (SELECT tpk FROM tentities);",
    # 13 -> 14: discovery reads one attribute's counts, and the types', by an index.
    13: typestats.BY_NID,
    # 14 -> 15: each outbox row names the incarnation of its subscription, so that one deleted
    # and made again under its id is not sent the items of the one before (the column is
    # added by BEFORE_MIGRATION[14]).
    14: "",
    # 15 -> 16: a PATCH or DELETE of one temporal instance finds its row by the time its id
    # names (decision 060); the rows already there, whose ids name none, are indexed by id
    # (the column is added by BEFORE_MIGRATION[15]).
    15: instance_rows.MOVED_DDL,
    # 16 -> 17: outbox_rows counts the outbox's rows for /health, kept by every write to it,
    # counted here once.
    16: outbox.COUNT_MIGRATION,
    # 17 -> 18: attr_index rows carry their entity's type set, and the value indexes lead
    # with (nid, tid) (decision 067).
    17: typesets.MIGRATION + VALUE_INDEXES,
    # 18 -> 19: a polygon's R*Tree box holds all its rings, not its shell alone: one with a
    # hole outside the shell, stored before decision 088, is matched there too, and the
    # R*Tree plan dropped it (index.geo_box). Only polygons with holes get a new box.
    18: """
CREATE TEMP TABLE geo_boxes AS
    SELECT gid, geo_box(geojson) AS b FROM geo WHERE geojson LIKE '%Polygon%';
UPDATE geo_rtree SET minx = x.b ->> 0, maxx = x.b ->> 1, miny = x.b ->> 2, maxy = x.b ->> 3
    FROM temp.geo_boxes x WHERE x.gid = geo_rtree.gid AND x.b IS NOT NULL;
DROP TABLE temp.geo_boxes;
""",
    # 19 -> 20: the @contexts' numberOfHits and lastUsage survive a restart (none saved yet).
    19: CONTEXT_USAGE_DDL,
    # 20 -> 21: a line or polygon with an edge across the antimeridian is matched as cut there
    # (decision 099); its box went the long way round, from its westmost position to its
    # eastmost, so the R*Tree plan missed it near 180. Only those get a new box.
    20: """
CREATE TEMP TABLE geo_boxes AS
    SELECT gid, geo_box(geojson) AS b FROM geo
    WHERE geojson LIKE '%String%' OR geojson LIKE '%Polygon%';
UPDATE geo_rtree SET minx = x.b ->> 0, maxx = x.b ->> 1, miny = x.b ->> 2, maxy = x.b ->> 3
    FROM temp.geo_boxes x WHERE x.gid = geo_rtree.gid AND x.b IS NOT NULL;
DROP TABLE temp.geo_boxes;
""",
    # 21 -> 22: a temporal entity keeps when its entity was deleted (decision 100); the column
    # is added by BEFORE_MIGRATION[21], NULL for the deletions before it (no time was kept).
    21: "",
}
# Run before the migration from a version, outside its transaction (idempotent DDL): the
# outbox is not part of DDL, and a database from before it or its kind column lacks them.
BEFORE_MIGRATION: dict[int, Callable[[Connection], None]] = {
    10: outbox.before_upgrade,
    14: outbox.add_incarnations,
    15: instance_rows.add_id_time,
    21: deletions.add_column,
}


def opens(version: int) -> bool:
    """Whether this cityhub can open a database of that schema version (upgrading it)."""
    return version <= SCHEMA_VERSION and all(
        v in MIGRATIONS for v in range(version, SCHEMA_VERSION)
    )
