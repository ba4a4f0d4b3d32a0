"""What a create stores, row by row, pinned: the rows of every table a create writes, for
entities of every attribute form, whether they arrive together (one bulk insert) or one by
one, and the answers read back. The write path is tuned for speed (decision 066); these rows
are what it must keep writing. create_rows.json holds them; after a deliberate change to what
is stored, write it again with CITYHUB_PIN_ROWS=1."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import BASE

from cityhub.ngsild import service

PINNED = Path(__file__).with_name("create_rows.json")
NOW = "2026-12-07T10:00:00.000000Z"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
LINK = f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def _bench(n: int) -> dict[str, Any]:
    """bench (a)'s entity (bench/data.py's city entity 1 under another id and type)."""
    return {
        "id": f"urn:ngsi-ld:BenchSensor:hub-{n}",
        "type": "BenchSensor",
        "temperature": {
            "type": "Property",
            "value": 5.37,
            "unitCode": "CEL",
            "observedAt": "2024-01-01T00:00:07Z",
        },
        "humidity": {"type": "Property", "value": 87.7, "unitCode": "P1"},
        "battery": {"type": "Property", "value": 13},
        "status": {"type": "Property", "value": "ok"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [2.388011, 48.826449]},
        },
        "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:dev-1"},
    }


ENTITIES: list[dict[str, Any]] = [
    _bench(1),
    _bench(2),
    {  # concise forms, two types, a scope
        "id": "urn:ngsi-ld:Room:concise",
        "type": ["Room", "Space"],
        "scope": ["/city/north", "/city"],
        "temperature": 21.5,
        "name": "Hall",
        "open": True,
        "count": 9007199254740993,
        "negative": -3,
        "since": "2024-05-01T12:30:00+02:00",
        "day": "2024-05-01",
        "at": "12:30:00",
        "tags": ["a", "b", 3],
        "shape": {"kind": "square", "sides": [1, 2]},
        "empty": [],
        "where": {"type": "Point", "coordinates": [13.4, 52.5, 34.0]},
        "owner": {"object": "urn:ngsi-ld:Person:ann"},
    },
    {  # several instances, sub-attributes, every member an instance may carry
        "id": "urn:ngsi-ld:Sensor:multi",
        "type": "Sensor",
        "speed": [
            {"type": "Property", "value": 10, "observedAt": "2024-03-01T00:00:00Z"},
            {
                "type": "Property",
                "value": 12,
                "datasetId": "urn:ngsi-ld:Dataset:radar",
                "unitCode": "KMH",
                "accuracy": {"type": "Property", "value": 0.5},
                "calibratedBy": {"type": "Relationship", "object": "urn:ngsi-ld:Lab:1"},
            },
        ],
        "linkedTo": {
            "type": "Relationship",
            "object": ["urn:ngsi-ld:Sensor:a", "urn:ngsi-ld:Sensor:b"],
            "objectType": "Sensor",
            "datasetId": "urn:ngsi-ld:Dataset:links",
        },
        "https://example.org/ns#extra": {"type": "Property", "value": "by IRI"},
    },
    {  # the other attribute types
        "id": "urn:ngsi-ld:Thing:kinds",
        "type": "Thing",
        "label": {"type": "LanguageProperty", "languageMap": {"en": "bin", "fr": ["bac", "pou"]}},
        "category": {"type": "VocabProperty", "vocab": ["Property", "recycling"]},
        "readings": {"type": "ListProperty", "valueList": [1, "two", {"three": 3}]},
        "route": {
            "type": "ListRelationship",
            "objectList": ["urn:ngsi-ld:Stop:1", {"object": "urn:ngsi-ld:Stop:2"}],
        },
        "config": {"type": "JsonProperty", "json": {"a": [1, None, {"b": "c"}]}},
        "area": {
            "type": "GeoProperty",
            "value": {
                "type": "Polygon",
                "coordinates": [[[2.0, 48.0], [2.5, 48.0], [2.5, 48.5], [2.0, 48.0]]],
            },
        },
        "path": {
            "type": "GeoProperty",
            "value": {"type": "LineString", "coordinates": [[1.0, 1.0], [2.0, 3.0]]},
        },
        "observed": {
            "type": "Property",
            "value": {"@type": "DateTime", "@value": "2024-01-01T00:00:00Z"},
        },
    },
    {"id": "urn:ngsi-ld:Thing:bare", "type": "Thing"},
    {  # a term and its IRI name one attribute
        "id": "urn:ngsi-ld:Thing:joined",
        "type": "https://example.org/ns#Thing",
        "level": {"type": "Property", "value": 1},
        "https://uri.etsi.org/ngsi-ld/default-context/level": {
            "type": "Property",
            "value": 2,
            "datasetId": "urn:ngsi-ld:Dataset:two",
        },
    },
]

# The tables a create writes, each row as the test compares it: attribute names as names (their
# ids follow the order names were first seen), instanceIds as their order of creation.
DUMPS = {
    "entities": "SELECT pk, id, created_at, modified_at, doc FROM entities WHERE tenant = ? "
    "ORDER BY pk",
    "entity_types": "SELECT type, pk FROM entity_types WHERE tenant = ? ORDER BY pk, type",
    "attr_index": "SELECT a.pk, n.name, a.seq, a.num, a.txt, a.ts FROM attr_index a "
    "JOIN attr_names n USING (nid) JOIN entities e ON e.pk = a.pk AND e.tenant = ? "
    "ORDER BY a.pk, n.name, a.seq",
    "geo": "SELECT g.gid, g.pk, g.name, g.geojson, r.minx, r.maxx, r.miny, r.maxy FROM geo g "
    "JOIN geo_rtree r USING (gid) JOIN entities e ON e.pk = g.pk AND e.tenant = ? ORDER BY g.gid",
    "tentities": "SELECT tpk, id, types, created_at, modified_at, scope FROM tentities "
    "WHERE tenant = ? ORDER BY tpk",
    "history": "SELECT h.hid, h.tpk, n.name, h.dataset_id, h.t_observed, h.t_created, "
    "h.t_modified, h.num, h.inst FROM history h JOIN attr_names n USING (nid) "
    "JOIN tentities t ON t.tpk = h.tpk AND t.tenant = ? ORDER BY h.hid",
    "history_datasets": "SELECT d.tpk, n.name, d.dataset_id FROM history_datasets d "
    "JOIN attr_names n USING (nid) JOIN tentities t ON t.tpk = d.tpk AND t.tenant = ? "
    "ORDER BY d.tpk, n.name, d.dataset_id",
    "type_attrs": "SELECT t.type, coalesce(n.name, ''), t.kind, t.n FROM type_attrs t "
    "LEFT JOIN attr_names n USING (nid) WHERE t.tenant = ? ORDER BY 1, 2, 3",
}


def _rows(db: Path, tenant: str) -> dict[str, Any]:
    """The tenant's rows of every table a create writes, renumbered where a second tenant's
    differ only by where they start (row ids, instanceIds)."""
    with sqlite3.connect(db) as conn:
        out = {name: [list(r) for r in conn.execute(sql, (tenant,))] for name, sql in DUMPS.items()}
        ids = conn.execute(
            "SELECT h.instance_id FROM history h JOIN tentities t ON t.tpk = h.tpk "
            "AND t.tenant = ? ORDER BY h.hid",
            (tenant,),
        ).fetchall()
    assert len({i for (i,) in ids}) == len(ids), "instanceIds must be unique"
    for row in out["tentities"]:  # an entity without attributes: the store's own clock
        assert row[3] == row[4]
        row[3:5] = ["(written)"] * 2
    for table, cols in (
        ("entities", [0]),
        ("entity_types", [1]),
        ("attr_index", [0]),
        ("geo", [0, 1]),
        ("tentities", [0]),
        ("history", [0, 1]),
        ("history_datasets", [0]),
    ):
        for col in cols:
            firsts = sorted({r[col] for r in out[table]})
            for r in out[table]:
                r[col] = firsts.index(r[col])
    return out


async def _create(client: httpx.AsyncClient, tenant: str, together: bool) -> list[int]:
    def post(body: dict[str, Any]) -> Any:
        return client.post(f"{BASE}/entities", json=body, headers={"NGSILD-Tenant": tenant})

    if together:
        answers = await asyncio.gather(*(post(e) for e in ENTITIES))
    else:
        answers = [await post(e) for e in ENTITIES]
    return [a.status_code for a in answers]


async def _answers(client: httpx.AsyncClient, tenant: str) -> list[Any]:
    """Every entity as GET answers it (normalized and keyValues) and its temporal evolution,
    with the instanceIds left out (each tenant has its own)."""
    headers = {"NGSILD-Tenant": tenant}
    out = []
    for entity in ENTITIES:
        path = f"/entities/{entity['id']}"
        one = (await client.get(BASE + path, headers=headers)).json()
        kv = (await client.get(BASE + path, params={"format": "keyValues"}, headers=headers)).json()
        temporal = (await client.get(f"{BASE}/temporal{path}", headers=headers)).json()
        out.append([one, kv, _without_instance_ids(temporal)])
    return out


def _without_instance_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_instance_ids(v) for k, v in value.items() if k != "instanceId"}
    if isinstance(value, list):
        return [_without_instance_ids(v) for v in value]
    return value


def _pinned_text(got: dict[str, Any]) -> str:
    """The pinned rows as JSON, a row (or an answer) a line, so that a diff shows which."""

    def lines(items: list[Any]) -> str:
        return "[\n" + ",\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n]"

    tables = ",\n".join(f"{json.dumps(t)}: {lines(rows)}" for t, rows in got["rows"].items())
    return f'{{"rows": {{\n{tables}\n}},\n"answers": {lines(got["answers"])}}}\n'


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every create at the same instant, so that the rows can be compared."""
    monkeypatch.setattr(service, "now_iso", lambda: NOW)


async def test_creates_store_the_pinned_rows_together_or_one_by_one(
    client: httpx.AsyncClient, db_path: Path
) -> None:
    assert await _create(client, "together", together=True) == [201] * len(ENTITIES)
    assert await _create(client, "alone", together=False) == [201] * len(ENTITIES)
    got = {
        "rows": _rows(db_path, "together"),
        "answers": await _answers(client, "together"),
    }
    alone = {"rows": _rows(db_path, "alone"), "answers": await _answers(client, "alone")}
    assert alone == got, "a create alone must store what a bulk insert stores"
    if os.environ.get("CITYHUB_PIN_ROWS"):
        PINNED.write_text(_pinned_text(got))
    pinned = json.loads(PINNED.read_text())
    for table, rows in pinned["rows"].items():
        assert got["rows"][table] == rows, f"{table} differs from the pinned rows"
    assert got["answers"] == pinned["answers"]


async def test_a_link_header_context_stores_what_the_core_context_does(
    client: httpx.AsyncClient, db_path: Path
) -> None:
    """The same bodies under a Link to the core context: another term map, the same rows."""
    headers = {"NGSILD-Tenant": "linked", "Link": LINK}
    answers = await asyncio.gather(
        *(client.post(f"{BASE}/entities", json=e, headers=headers) for e in ENTITIES)
    )
    assert [a.status_code for a in answers] == [201] * len(ENTITIES)
    assert await _create(client, "core", together=True) == [201] * len(ENTITIES)
    assert _rows(db_path, "linked") == _rows(db_path, "core")
